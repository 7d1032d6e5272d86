//go:build !unix

package websocket

// setupIdleRead: without a readiness wait, reads block holding a buffer.
func (c *Conn) setupIdleRead() {}

func (c *Conn) fillIdle() error { return ErrClosed } // never called: rawConn is nil here
