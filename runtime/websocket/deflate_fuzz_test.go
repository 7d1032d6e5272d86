package websocket_test

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// nopWriteCloser collects what a MessageTransformer writes.
type nopWriteCloser struct{ *bytes.Buffer }

func (nopWriteCloser) Close() error { return nil }

func deflateSessions(t testing.TB) (*websocket.DeflateSession, *websocket.DeflateSession) {
	ext := websocket.PerMessageDeflate(&websocket.DeflateOptions{Threshold: -1})
	_, s, ok := ext.ServerNegotiate([][]websocket.Param{nil})
	if !ok {
		t.Fatal("declined")
	}
	c, err := ext.ClientAccept(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*websocket.DeflateSession), c.(*websocket.DeflateSession)
}

// FuzzInflate feeds arbitrary bytes to the decompressor as a compressed
// message: it must return data or an error, never panic or run away, and
// a compressed round trip of the same bytes must come back unchanged.
func FuzzInflate(f *testing.F) {
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}) // "Hello" (RFC 7692 §7.2.3.1)
	f.Add([]byte{0x00})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{0x01, 0x05, 0x00, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o'})
	f.Add(bytes.Repeat([]byte{0x00}, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := deflateSessions(t)
		r := server.ReadMessage(bytes.NewReader(data), websocket.RSV1)
		// Bound the output as MaxMessageSize does: a bomb stops here.
		n, _ := io.Copy(io.Discard, io.LimitReader(r, 1<<20))
		if n > 1<<20 {
			t.Fatalf("read %d bytes past the limit", n)
		}

		var wire bytes.Buffer
		w, rsv, err := client.WriteMessage(nopWriteCloser{&wire}, websocket.MessageBinary, len(data))
		if err != nil || rsv != websocket.RSV1 {
			t.Fatalf("WriteMessage: %v rsv %#x", err, rsv)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		server2, _ := deflateSessions(t)
		got, err := io.ReadAll(server2.ReadMessage(bytes.NewReader(wire.Bytes()), websocket.RSV1))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v (%d bytes, want %d)", err, len(got), len(data))
		}
	})
}

// FuzzDeflateOffer checks the server's negotiation against RFC 7692 §7.1
// for any offer: if it accepts, the answer has each parameter at most once,
// client_max_window_bits only if offered, server_max_window_bits no larger
// than offered, and server_no_context_takeover whenever offered.
func FuzzDeflateOffer(f *testing.F) {
	for _, s := range []string{"", "client_max_window_bits", "server_max_window_bits=10", "server_no_context_takeover; client_no_context_takeover",
		"client_max_window_bits=8; server_max_window_bits=15", "x=1", "server_max_window_bits"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, offer string) {
		els, err := websocket.ParseExtensions([]string{"permessage-deflate; " + offer})
		if err != nil || len(els) != 1 {
			return
		}
		ps := els[0].Params
		answer, _, ok := websocket.PerMessageDeflate(nil).ServerNegotiate([][]websocket.Param{ps})
		if !ok {
			return
		}
		offered := map[string]string{}
		for _, p := range ps {
			offered[p.Name] = p.Value
		}
		seen := map[string]bool{}
		for _, p := range answer {
			if seen[p.Name] {
				t.Fatalf("answer repeats %s", p.Name)
			}
			seen[p.Name] = true
			switch p.Name {
			case "client_max_window_bits":
				ov, ok := offered[p.Name]
				if !ok {
					t.Fatal("answered client_max_window_bits without an offer")
				}
				if ov != "" && atoi(p.Value) > atoi(ov) {
					t.Fatalf("client_max_window_bits %s above offered %s", p.Value, ov)
				}
			case "server_max_window_bits":
				if ov, ok := offered[p.Name]; ok && atoi(p.Value) > atoi(ov) {
					t.Fatalf("server_max_window_bits %s above offered %s", p.Value, ov)
				}
			}
		}
		if _, ok := offered["server_no_context_takeover"]; ok && !seen["server_no_context_takeover"] {
			t.Fatal("server_no_context_takeover offered but not answered")
		}
		if strings.Contains(websocket.FormatExtension("permessage-deflate", answer), ",") {
			t.Fatal("answer is not one element")
		}
	})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
