// Package netfail classifies the errors of socket I/O, for the runtime
// and the typed layer alike, so that both tell the same failures apart.
package netfail

import (
	"errors"
	"syscall"
)

// Reset reports whether a write failed because the peer reset the
// connection (a broken pipe is the same, seen by a later write): the
// system call's errno, wrapped, as net and the raw socket writes report it.
func Reset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
