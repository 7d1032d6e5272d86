//go:build !linux

package echo

import (
	"errors"
	"net"
)

var errNoURing = errors.New("tcp-uring: io_uring is Linux only")

// URingSupported reports why tcp-uring cannot run here.
func URingSupported() error { return errNoURing }

func serveTCPUring(net.Listener) error { return errNoURing }
