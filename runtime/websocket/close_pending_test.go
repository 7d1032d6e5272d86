package websocket_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

// TestCloseBoundedBehindStuckWrite: a write in progress holds the frame
// lock until its bytes are out, which a peer that has stopped reading
// stretches to the write timeout (30 s by default). Close waited for that
// lock before it could send its close frame, so one stalled client held a
// server's shutdown for the whole write timeout. The close timeout bounds
// that wait as well: when it runs out the TCP connection is closed, which
// ends the stuck write, and Close reports the failed handshake, with
// ErrCloseNotSent: the peer saw 1006, not the code.
func TestCloseBoundedBehindStuckWrite(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		wrote := make(chan error, 1)
		closed := make(chan error, 1)
		start(t, r, engOpts{CloseTimeout: 200 * time.Millisecond}, func(c *websocket.Conn) error {
			go func() { wrote <- c.Write(context.Background(), websocket.MessageBinary, make([]byte, 64<<20)) }()
			// Wait until the write holds the frame lock: 64 MiB to a peer
			// that does not read keeps it there. A fixed sleep was too
			// short on a loaded machine, and Close then sent its frame
			// first and waited for an answer that never came.
			for deadline := time.Now().Add(10 * time.Second); !websocket.FrameLockHeld(c); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					closed <- errors.New("the write never took the frame lock")
					return nil
				}
			}
			closed <- c.Close(websocket.StatusGoingAway, "shutting down")
			return nil
		})
		select {
		case err := <-closed:
			if err == nil {
				t.Fatal("Close returned nil: the peer never answered")
			}
			if !errors.Is(err, websocket.ErrClosed) || !errors.Is(err, websocket.ErrCloseNotSent) {
				t.Fatalf("Close = %v; want ErrClosed and ErrCloseNotSent: the close frame never went out", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close is waiting for a write stuck behind a peer that does not read")
		}
		if err := <-wrote; err == nil {
			t.Fatal("the stuck write returned nil")
		}
	})
}
