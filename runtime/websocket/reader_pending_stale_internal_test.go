package websocket

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A Reader of a message Close kept (read while it waited for the peer's
// close frame) is stale after the next read call, as any Reader is: its
// Read returns ErrReaderDiscarded, not the rest of its message.
func TestReaderOfKeptMessageStaleAfterNextRead(t *testing.T) {
	c, peer, _ := serverPair(t, 2*time.Second)
	var in []byte
	for _, m := range []string{"first message", "second"} {
		in = append(in, clientFrame(OpBinary, []byte(m))...)
	}
	in = append(in, clientClose(StatusNormalClosure)...)
	if _, err := peer.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	_, r, err := c.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.Read(ctx); err != nil || string(m) != "second" {
		t.Fatalf("Read: %q, %v", m, err)
	}
	if n, err := r.Read(make([]byte, 64)); !errors.Is(err, ErrReaderDiscarded) {
		t.Fatalf("the first Reader after the next Read: %d bytes, %v; want ErrReaderDiscarded", n, err)
	}
}
