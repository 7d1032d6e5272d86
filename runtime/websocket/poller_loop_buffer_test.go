package websocket_test

import (
	"bytes"
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestPollerLoopKeepsNoLargeBuffer: a connection the poller cannot watch
// (TLS here; any net.Conn that is not a socket, and every connection on
// systems without epoll) is read by a goroutine of its own. A peer that
// sent one large message, then went idle, kept that message's buffer on
// the server for the rest of the connection's life — 4 MiB per
// connection with the default limit, for a subscribe-only hub endpoint
// that discards what it reads — where a worker of the polled path drops
// any buffer over largeBufSize. Measured in bytes: the heap held after
// each of conns connections sent a large message and then a small one.
func TestPollerLoopKeepsNoLargeBuffer(t *testing.T) {
	noLeaks(t)
	const (
		conns = 4
		large = 4 << 20
	)
	got := make(chan int, 2*conns)
	s := startPollServer(t, nil, true, func(_ *websocket.Conn, _ websocket.MessageType, msg []byte) {
		got <- len(msg)
	})
	tr := s.srv.Client().Transport.(*http.Transport)
	cs := make([]*websocket.Conn, conns)
	for i := range cs {
		cs[i] = s.dial(&websocket.DialOptions{TLSConfig: tr.TLSClientConfig.Clone()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	// Warm up each connection with a small message, so that what the
	// baseline holds and what the end holds differ by the large ones only.
	for _, c := range cs {
		if err := c.Write(ctx, websocket.MessageBinary, []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-got:
			case <-time.After(wireTimeout):
				t.Fatal("message not handled")
			}
		}
	}
	wait(conns)
	base := heapInUse()
	msg := bytes.Repeat([]byte("x"), large)
	for _, c := range cs {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		// Handled after the large one: the server's read loop has left it.
		if err := c.Write(ctx, websocket.MessageBinary, []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	wait(2 * conns)
	msg = nil
	held := int64(heapInUse()) - int64(base)
	t.Logf("heap held after %d idle connections each sent a %d-byte message: %d bytes", conns, large, held)
	if held > large { // one message's worth in all, not one per connection
		t.Fatalf("%d idle connections hold %d bytes after a %d-byte message each", conns, held, large)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
