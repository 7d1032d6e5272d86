//go:build unix

package websocket

// The write deadline of a raw socket write (sockio_unix.go's sockWrite):
// elsewhere a connection's writes go through net.Conn, which sets it
// per write.

import (
	"context"
	"io"
	"testing"
	"time"
)

// A socket write that had to wait sets the write deadline and clears it
// when done (sockWrite.wait, disarm): left set, it expires while the
// connection is idle and the next write fails before it starts. Here a
// large Write waits for a peer that reads late, the connection then idles
// for twice WriteTimeout, and the next Write must go out; a write that
// did not wait sets no deadline at all.
func TestWriteAfterIdleLongerThanTimeout(t *testing.T) {
	c, peer, br := serverPair(t, 0)
	c.cfg.writeTimeout = 200 * time.Millisecond
	const size = 8 << 20
	wrote := stallWrite(t, c, peer, size)
	go func() {
		_ = peer.SetReadDeadline(time.Now().Add(ioBound))
		_, _ = io.CopyN(io.Discard, br, int64(headerLen(size, false)+size))
	}()
	if err := waitFor(t, 30*time.Second, wrote, "the large Write"); err != nil {
		t.Fatalf("large Write to a peer that reads: %v", err)
	}
	if c.tx.armed {
		t.Fatal("the write deadline stayed armed after the write")
	}
	time.Sleep(2 * c.cfg.writeTimeout)
	if err := c.Write(context.Background(), MessageBinary, []byte("after idle")); err != nil {
		t.Fatalf("Write after an idle longer than WriteTimeout: %v", err)
	}
	if c.tx.armed {
		t.Fatal("a write that did not wait armed the deadline")
	}
}
