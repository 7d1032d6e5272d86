package websocket_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// §5.6: text is UTF-8. Write refuses invalid text before anything is sent
// and the connection stays usable; Writer refuses a chunk that would make
// its message invalid, and a message that would end inside a code point
// fails the connection with 1011 rather than reach the peer.
func TestSendInvalidUTF8(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
			ctx := context.Background()
			if err := c.Write(ctx, websocket.MessageText, []byte("bad \xff")); !errors.Is(err, websocket.ErrInvalidUTF8) {
				return errors.New("Write of invalid text: " + errString(err))
			}
			if err := c.Write(ctx, websocket.MessageText, []byte("still open")); err != nil {
				return err
			}
			// Binary messages are not text: anything goes.
			if err := c.Write(ctx, websocket.MessageBinary, []byte{0xff}); err != nil {
				return err
			}
			w, err := c.Writer(ctx, websocket.MessageText)
			if err != nil {
				return err
			}
			// "é" cut between two writes is fine; "\xff" is refused whole.
			for _, chunk := range []string{"caf\xc3", "\xa9 ", "\xff", "ok"} {
				_, err := w.Write([]byte(chunk))
				if invalid := chunk == "\xff"; invalid != errors.Is(err, websocket.ErrInvalidUTF8) {
					return errors.New("Writer chunk " + chunk + ": " + errString(err))
				}
			}
			if err := w.Close(); err != nil {
				return err
			}
			w, err = c.Writer(ctx, websocket.MessageText)
			if err != nil {
				return err
			}
			if _, err := w.Write([]byte("half \xe2\x82")); err != nil {
				return err
			}
			if err := w.Close(); !errors.Is(err, websocket.ErrInvalidUTF8) {
				return errors.New("Close inside a code point: " + errString(err))
			}
			return nil
		})
		s.expectMessage(opText, []byte("still open"))
		s.expectMessage(opBinary, []byte{0xff})
		s.expectMessage(opText, []byte("café ok"))
		// The last message never completes: the connection fails with 1011
		// (fragments already sent may come first).
		for {
			f := s.mustRead()
			if f.op == opClose {
				if code := int(f.payload[0])<<8 | int(f.payload[1]); code != 1011 {
					t.Fatalf("close code %d, want 1011", code)
				}
				break
			}
			if f.op != opText && f.op != opCont {
				t.Fatalf("unexpected op %#x", f.op)
			}
		}
		if err := s.result(); err != nil {
			t.Fatal(err)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
