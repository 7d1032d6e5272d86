// Package sockbuf gives tests sockets with small kernel buffers, so that
// backpressure (a peer that stops reading, a write that stalls) shows after
// kilobytes instead of megabytes.
package sockbuf

import (
	"net"
	"syscall"
)

// Dialer returns a dialer whose sockets get SO_RCVBUF rcvbuf and SO_SNDBUF
// sndbuf bytes (0 leaves one as the system sets it). They are set before
// the socket connects: TCP agrees on its window scale in the handshake, so
// a receive buffer shrunk afterwards would still be advertised as large.
func Dialer(rcvbuf, sndbuf int) *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if rcvbuf > 0 {
				serr = setInt(fd, syscall.SO_RCVBUF, rcvbuf)
			}
			if sndbuf > 0 && serr == nil {
				serr = setInt(fd, syscall.SO_SNDBUF, sndbuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
