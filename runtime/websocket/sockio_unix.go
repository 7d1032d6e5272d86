//go:build unix

package websocket

import (
	"errors"
	"io"
	"syscall"
)

// setupIdleRead lets a plain TCP connection wait for data without holding a
// read buffer: fillIdle asks the runtime's poller for readiness through
// syscall.RawConn and takes a pooled buffer only when bytes are there.
func (c *Conn) setupIdleRead() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.rawConn = rc
	c.rawRead = c.rawReadOnce
}

// rawReadOnce is the RawConn.Read callback: one non-blocking read into a
// pooled buffer; on EAGAIN it gives the buffer back and asks to be called
// again when the socket is readable, or, for a Poller's worker (rawNoWait),
// reports errWouldBlock.
func (c *Conn) rawReadOnce(fd uintptr) bool {
	if c.rbuf == nil {
		c.rbuf = c.readBuf()
	}
	for {
		n, err := syscall.Read(int(fd), *c.rbuf)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			putBuf(c.rbuf)
			c.rbuf = nil
			if c.rawNoWait {
				c.rawErr = errWouldBlock
				return true
			}
			return false
		}
		c.rawN, c.rawErr = n, err
		c.rbig = n == len(*c.rbuf)
		c.rfull = c.rbig
		return true
	}
}

func (c *Conn) fillIdle() error {
	c.rawN, c.rawErr = 0, nil
	err := c.rawConn.Read(c.rawRead)
	if err == nil {
		err = c.rawErr
	}
	if c.rawN > 0 {
		c.rpos, c.rend = 0, c.rawN
		return nil
	}
	if c.rbuf != nil {
		putBuf(c.rbuf)
		c.rbuf = nil
	}
	c.rfull = false
	if err == errWouldBlock {
		return err
	}
	if err == nil {
		err = io.EOF
	}
	if errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF
	}
	return c.ioErr(err)
}
