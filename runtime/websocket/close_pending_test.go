package websocket_test

import (
	"context"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestCloseKeepsLateMessages: messages the peer sends after our close
// frame and before its own are read by Close (no reader was active) and
// handed to the reads that follow, in order, before the *CloseError.
func TestCloseKeepsLateMessages(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		closed := make(chan error, 1)
		s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
			closed <- c.Close(websocket.StatusNormalClosure, "done")
			ctx := context.Background()
			for _, want := range []string{"late 1", "late 2", "late 3"} {
				typ, got, err := c.Read(ctx)
				if err != nil || typ != websocket.MessageText || string(got) != want {
					t.Errorf("read %q %v, want %q", got, err, want)
				}
			}
			_, rd, err := c.Reader(ctx)
			if err == nil {
				t.Errorf("reader %v after the close, want the close error", rd)
			}
			return err
		})
		if f := s.mustRead(); f.op != opClose {
			t.Fatalf("got op %#x, want our close frame", f.op)
		}
		for _, m := range []string{"late 1", "late 2", "late 3"} {
			s.send(opText, []byte(m))
		}
		s.sendClose(1000, "")
		if r == roleClient {
			s.nc.Close() // the server closes TCP first (§7.1.1)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if code := websocket.CloseStatus(s.result()); code != websocket.StatusNormalClosure {
			t.Fatalf("after the late messages: close status %d, want 1000", code)
		}
	})
}
