package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestWriteCtxEndsStalledSmallWrite guards a Write's ctx while its message
// waits on a peer that stopped reading. A small message is written into
// the write buffer and flushed as the Write leaves (the last writer out
// flushes for all), and that flush ran after ctx's watch was disarmed:
// once the socket's buffers were full, a Write whose ctx ended waited out
// WriteTimeout (30 s by default; 300 ms contexts took 30 s each in
// review) instead of ending with ctx and closing the connection, as Write
// promises. WriteTimeout here is longer than the test's bound, so a
// Write that waits for it fails the test. WritePrepared leaves the same
// way.
func TestWriteCtxEndsStalledSmallWrite(t *testing.T) {
	const writeTimeout = time.Minute
	pm, err := websocket.NewPreparedMessage(websocket.MessageBinary, make([]byte, 1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, c *websocket.Conn) error
	}{
		{"Write", func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageBinary, pm.Data())
		}},
		{"WritePrepared", func(ctx context.Context, c *websocket.Conn) error {
			return c.WritePrepared(ctx, pm)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forRoles(t, func(t *testing.T, r role) {
				// The peer reads nothing: the socket's buffers fill, and a
				// Write then waits until its ctx ends.
				run := func(c *websocket.Conn) error {
					for i := 0; i < 1<<20; i++ {
						ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
						err := tc.write(ctx, c)
						cancel()
						if err == nil {
							continue
						}
						if !errors.Is(err, context.DeadlineExceeded) {
							return fmt.Errorf("write %d: %v, want context.DeadlineExceeded", i, err)
						}
						// Ended inside its write: the connection is closed.
						if err := c.Write(context.Background(), websocket.MessageBinary, nil); !errors.Is(err, websocket.ErrClosed) {
							return fmt.Errorf("Write after the cut one: %v, want ErrClosed", err)
						}
						return nil
					}
					return errors.New("the peer's socket never filled")
				}
				var s *session
				if r == roleServer {
					s = startServer(t, &websocket.AcceptOptions{WriteTimeout: writeTimeout}, run)
				} else {
					s = startClient(t, &websocket.DialOptions{WriteTimeout: writeTimeout}, run)
				}
				if err := s.result(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
