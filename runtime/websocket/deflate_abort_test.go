package websocket_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestDeflateContextAfterRefusedMessage guards permessage-deflate's
// context takeover across a message that a frame extension refused before
// any fragment went out. The compressor had taken the message into its
// window, which the peer's decompressor never saw; the connection stayed
// usable, as documented, and the next message, compressed against that
// window, reached the peer as matches into history it did not have (1007,
// or other bytes than were sent). At levels 2-9 a refusal inside a
// Writer's Write also stayed in klauspost's writer, which returned it for
// every later message.
func TestDeflateContextAfterRefusedMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		level  int
		writer bool // refused inside a Writer's Write, not at the end of Write
	}{{1, false}, {6, false}, {1, true}, {6, true}} {
		t.Run(fmt.Sprintf("level %d writer %v", tc.level, tc.writer), func(t *testing.T) {
			deflate := &websocket.DeflateOptions{Level: tc.level, Threshold: -1}
			fs := &ownerSession{frame: true}
			sset := websocket.MustExtensionSet(websocket.PerMessageDeflate(deflate), ownerExt{"x-frame", websocket.RSV3, fs})
			cset := websocket.MustExtensionSet(websocket.PerMessageDeflate(deflate), ownerExt{"x-frame", websocket.RSV3, &ownerSession{frame: true}})
			srv, cli := statsPair(t, &websocket.AcceptOptions{Extensions: sset, CloseTimeout: time.Second},
				&websocket.DialOptions{Extensions: cset, CloseTimeout: time.Second})

			// 4 KiB blocks of bytes that compress only against
			// themselves; each is sent again after the refused message,
			// so that some are in the window, however much of the message
			// the compressor took. In a Writer's message of several
			// fragments each block comes twice, so that the compressor
			// keeps finding matches (and hashing their positions).
			var blocks [][]byte
			var refusedMsg []byte
			n := 1
			if tc.writer {
				n = 32
			}
			x := uint32(1)
			for range n {
				b := make([]byte, 4<<10)
				for i := range b {
					x ^= x << 13
					x ^= x >> 17
					x ^= x << 5
					b[i] = byte(x)
				}
				blocks = append(blocks, b)
				refusedMsg = append(refusedMsg, b...)
				if tc.writer {
					refusedMsg = append(refusedMsg, b...)
				}
			}
			refused := false
			fs.change = func(f *websocket.Frame) {
				if !f.Opcode.IsControl() && !refused {
					refused = true
					f.Fin = !f.Fin // broken: the write is refused (checkOutgoing)
				}
			}
			if tc.writer {
				// The first fragment goes out (and is refused) inside
				// Write.
				w, err := srv.Writer(ctx, websocket.MessageBinary)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.Write(refusedMsg); err == nil {
					t.Fatal("the refused message's Write returned nil")
				}
				if err := w.Close(); err == nil {
					t.Fatal("the refused message's Close returned nil")
				}
			} else if err := srv.Write(ctx, websocket.MessageBinary, refusedMsg); err == nil {
				t.Fatal("the refused message's Write returned nil")
			}
			for i, msg := range blocks {
				if err := srv.Write(ctx, websocket.MessageBinary, msg); err != nil {
					t.Fatalf("the connection should stay usable: %v", err)
				}
				_, got, err := cli.Read(ctx)
				if err != nil {
					t.Fatalf("block %d failed the client: %v", i, err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("block %d came through changed (%d bytes)", i, len(got))
				}
			}
		})
	}
}
