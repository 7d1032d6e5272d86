//go:build unix

// Package fdlimit lifts the open-file limit for the tools and benchmarks
// that hold thousands of connections (the soak run, the hub's broadcast
// benchmark). Linux tooling first; elsewhere Raise does what it can.
package fdlimit

import "syscall"

// Raise lifts the soft limit on open descriptors to the hard limit. It
// is best effort: a limit it cannot change is left as it was.
func Raise() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
