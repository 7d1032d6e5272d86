package websocket_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestZeroPoller checks that a Poller not created with NewPoller fails at
// once instead of hanging: its Close waited for a dispatcher that never
// started (for ever on Linux), and its Serve took the connection and
// failed it on an epoll descriptor it never opened. Each method now
// returns an error wrapping ErrPollerClosed, and Serve leaves the
// connection as it was.
func TestZeroPoller(t *testing.T) {
	server, client := afterClosePair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var p websocket.Poller
	calls := []struct {
		name string
		call func() error
	}{
		{"Serve", func() error {
			return p.Serve(server, websocket.HandlerFuncs{
				Message: func(*websocket.Conn, websocket.MessageType, []byte) { t.Error("zero Poller called OnMessage") },
				Close:   func(*websocket.Conn, error) { t.Error("zero Poller called OnClose") },
			})
		}},
		{"Close", p.Close},
		{"Shutdown", func() error { return p.Shutdown(ctx) }},
		{"Close again", p.Close},
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, websocket.ErrPollerClosed) || !strings.Contains(err.Error(), "NewPoller") {
				t.Fatalf("zero Poller: %s = %v; want an error wrapping ErrPollerClosed that names NewPoller", c.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("zero Poller: %s did not return", c.name)
		}
	}
	// The connection was left alone: its own reads still work.
	if err := client.Write(ctx, websocket.MessageText, []byte("still mine")); err != nil {
		t.Fatal(err)
	}
	typ, msg, err := server.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(msg) != "still mine" {
		t.Fatalf("server Read after a refused Serve: %v %q %v", typ, msg, err)
	}
}
