package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestRawCloseReturnsOnPeerClose guards Close on a raw connection, which
// ReadFrame's doc offers for answering the peer's close frame. Raw reads
// hand the close frame to the caller and end nothing, so Close, its own
// close frame out and the peer's in, waited the whole close timeout
// before it closed the connection: when ReadFrame had returned the peer's
// close frame before Close (Close's drain even waited for a second one),
// and when a concurrent ReadFrame read the peer's reply. Now Close ends
// the connection as soon as both close frames have crossed (RFC 6455
// §7.1.1: the server closes TCP, the client waits for its FIN). The
// close timeout is longer than the test's bound, so a Close that waits
// for it fails the test.
func TestRawCloseReturnsOnPeerClose(t *testing.T) {
	opts := engOpts{Raw: true, CloseTimeout: time.Minute}
	// finish checks that Close returned nil and that the engine closed
	// TCP: a server at once, a client once the peer (the server) did.
	finish := func(t *testing.T, r role, s *session) {
		t.Helper()
		if err := s.result(); err != nil {
			t.Fatal(err)
		}
		if r == roleClient {
			_ = s.nc.(*net.TCPConn).CloseWrite()
		}
		s.expectEOF()
	}
	t.Run("answering", func(t *testing.T) {
		forRoles(t, func(t *testing.T, r role) {
			s := start(t, r, opts, func(c *websocket.Conn) error {
				f, err := c.ReadFrame(context.Background(), nil)
				if err != nil {
					return err
				}
				if f.Opcode != websocket.OpClose {
					return fmt.Errorf("ReadFrame: %v frame, want the peer's close frame", f.Opcode)
				}
				return c.Close(websocket.StatusNormalClosure, "")
			})
			s.sendClose(4000, "raw")
			s.expectCloseFrame(1000)
			finish(t, r, s)
		})
	})
	t.Run("reply read by ReadFrame", func(t *testing.T) {
		forRoles(t, func(t *testing.T, r role) {
			// The peer's close frame arrives in two writes: its header,
			// then (after our close frame) its payload. Once the engine
			// has read the header, its ReadFrame holds the read lock, and
			// it is that ReadFrame, not Close, that reads the reply.
			whole := encodeFrame(true, 0, opClose, r == roleServer, [4]byte{1, 2, 3, 4}, closePayload(1000, ""))
			head := 2
			if r == roleServer {
				head += 4 // the client's masking key
			}
			s := start(t, r, opts, func(c *websocket.Conn) error {
				got := make(chan error, 1)
				go func() {
					f, err := c.ReadFrame(context.Background(), nil)
					if err == nil && f.Opcode != websocket.OpClose {
						err = fmt.Errorf("ReadFrame: %v frame, want the peer's close frame", f.Opcode)
					}
					got <- err
				}()
				for i := 0; c.Stats().WireBytesRead < uint64(head); i++ {
					if i == 5000 {
						return errors.New("ReadFrame did not read the close frame's header")
					}
					time.Sleep(time.Millisecond)
				}
				err := c.Close(websocket.StatusNormalClosure, "")
				return errors.Join(err, <-got)
			})
			s.writeRaw(whole[:head])
			s.expectCloseFrame(1000)
			s.writeRaw(whole[head:])
			finish(t, r, s)
		})
	})
}
