//go:build !unix

package websocket

// Without a readiness wait, reads block holding a buffer, and reads and
// writes go through net.Conn: rawConn is always nil here, so none of the
// raw functions below is called.

func (c *Conn) setupSocketIO() {}

// connReset reports whether err is the peer's reset of the connection;
// elsewhere than Unix a reset stays the read error it is.
func connReset(error) bool { return false }

// unreadBytes has no count of the bytes waiting unread here: the
// keepalive closes a connection whose pong nobody read (sockio_unix.go).
func (c *Conn) unreadBytes() (int, bool) { return 0, false }

func (c *Conn) fillIdle() error                             { return ErrClosed }
func (c *Conn) readRaw(p []byte) (int, error)               { return 0, ErrClosed }
func (c *Conn) writeRaw(tx *writeSpare, b []byte) error     { return ErrClosed }
func (c *Conn) writevRaw(tx *writeSpare, a, b []byte) error { return ErrClosed }

type sockWrite struct{}

func newWriteSpare() *writeSpare { return new(writeSpare) }
