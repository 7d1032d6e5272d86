package websocket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// §5.6: text is UTF-8. Write refuses invalid text before anything is sent
// and the connection stays usable; Writer takes a code point split between
// two writes, and a message that would end inside a code point fails the
// connection with 1011 rather than reach the peer. (A chunk Writer refuses:
// TestTextWriterRefusalIsSticky.)
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
			// "é" cut between two writes is fine.
			for _, chunk := range []string{"caf\xc3", "\xa9 ", "ok"} {
				if _, err := w.Write([]byte(chunk)); err != nil {
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

// TestTextWriterRefusalIsSticky guards a text Writer that refused a chunk
// for invalid UTF-8 (§5.6). The message used to stay open: the chunks
// after it were written, Close returned nil, and the peer got the message
// with the refused chunk cut out ("name=Jos balance=100" for
// "name=Jos", "\xff", " balance=100"), a spliced text passing for a whole
// one. The refusal now sticks: later Writes and Close return it, and Close
// fails the connection with 1011 (the code of a message ending inside a
// code point), whether or not fragments already went out.
func TestTextWriterRefusalIsSticky(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // bytes written before the refused chunk
	}{
		{"nothing sent", len("name=Jos")},
		{"fragments sent", 200 << 10}, // over a fragment's 64 KiB: some go out first
	} {
		t.Run(tc.name, func(t *testing.T) {
			forRoles(t, func(t *testing.T, r role) {
				s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
					w, err := c.Writer(context.Background(), websocket.MessageText)
					if err != nil {
						return err
					}
					if _, err := w.Write(bytes.Repeat([]byte("a"), tc.before)); err != nil {
						return err
					}
					if _, err := w.Write([]byte("\xff")); !errors.Is(err, websocket.ErrInvalidUTF8) {
						return errors.New("refused chunk: " + errString(err))
					}
					if n, err := w.Write([]byte(" balance=100")); n != 0 || !errors.Is(err, websocket.ErrInvalidUTF8) {
						return fmt.Errorf("Write after the refusal: %d, %v; want 0, ErrInvalidUTF8", n, err)
					}
					if err := w.Close(); !errors.Is(err, websocket.ErrInvalidUTF8) {
						return errors.New("Close after the refusal: " + errString(err))
					}
					return nil
				})
				// Fragments that went out before may come first, but the
				// message never ends: the next frame after them is the close.
				for {
					f, err := s.read()
					if err != nil {
						t.Fatalf("wire peer: %v; writer: %v", err, s.result())
					}
					if f.op == opClose {
						if code := int(f.payload[0])<<8 | int(f.payload[1]); code != 1011 {
							t.Fatalf("close code %d, want 1011", code)
						}
						break
					}
					if (f.op != opText && f.op != opCont) || f.fin {
						t.Fatalf("frame op %#x fin %v: the message must not be completed", f.op, f.fin)
					}
				}
				if err := s.result(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
