package websocket

import (
	"context"
	"testing"
	"time"
)

// A message left in the write buffer for the writer counted to come after
// it (leaveWriterLocked, writeFrameLocked) goes out even when the message
// lock goes first to a Writer that was waiting for it, and that Writer
// then writes nothing for a while (it streams from a slow source): the
// Writer flushes what waits when it takes the lock. The message stayed
// unsent until that Writer had written a whole fragment or closed, its
// Close having returned nil long before.
func TestWriterFlushesMessageLeftForCountedWriter(t *testing.T) {
	c, peer, br := serverPair(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w0, err := c.Writer(ctx, MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w0.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	// A Writer waits for the message lock, then a Write, which counts as
	// a writer to come (writers), behind it.
	idle := make(chan struct{})
	defer close(idle)
	go func() {
		w, err := c.Writer(ctx, MessageBinary)
		if err != nil {
			return
		}
		<-idle // a Writer whose data is slow to come
		_ = w.Close()
	}()
	time.Sleep(50 * time.Millisecond) // let the Writer queue first (ordering only)
	go func() { _ = c.Write(ctx, MessageBinary, []byte("second")) }()
	for c.writers.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := w0.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := readWireFrame(peer, br, 5*time.Second)
	if err != nil {
		t.Fatalf("the closed Writer's message never left: %v", err)
	}
	if f.op != OpBinary || string(f.payload) != "first" {
		t.Fatalf("first frame op=%v %q, want the binary message \"first\"", f.op, f.payload)
	}
}
