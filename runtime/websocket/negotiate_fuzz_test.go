package websocket_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// deflateOptionsFrom spends 9 bits of b on DeflateOptions: both
// no-context-takeover flags, both window sizes (absent or 8-14) and the
// level (1, the encoder of our own, or 6, klauspost's).
func deflateOptionsFrom(b uint16) *websocket.DeflateOptions {
	bits := func(v uint16) int {
		if v&7 == 0 {
			return 0
		}
		return 7 + int(v&7)
	}
	o := &websocket.DeflateOptions{
		Threshold:               -1,
		ServerNoContextTakeover: b&1 != 0,
		ClientNoContextTakeover: b&2 != 0,
		ServerMaxWindowBits:     bits(b >> 2),
		ClientMaxWindowBits:     bits(b >> 5),
	}
	if b&(1<<8) != 0 {
		o.Level = 6
	}
	return o
}

// FuzzDeflateNegotiate runs permessage-deflate's negotiation between a
// client and a server of any options, through the header as Dial and
// Accept write and parse it, then sends messages both ways (context
// takeover across them, matches further back than the smallest window).
// The server must accept our own client's offer, the client must accept
// the server's answer, the two sessions must agree (what one side
// compresses with fits what the other decompresses with: window sizes,
// context takeover), and every message must come through unchanged.
func FuzzDeflateNegotiate(f *testing.F) {
	f.Add(uint16(0), uint16(0), []byte("hello, hello, hello"), uint16(300))
	f.Add(uint16(0b1_001_001_11), uint16(0), []byte("abcdefgh"), uint16(1000))
	f.Add(uint16(0), uint16(0b0_010_011_10), []byte{0, 1, 2, 3, 4, 5}, uint16(5000))
	f.Add(uint16(0b0_111_000_00), uint16(0b1_000_111_01), []byte("window"), uint16(40000))
	f.Fuzz(func(t *testing.T, clientBits, serverBits uint16, data []byte, gap uint16) {
		if len(data) > 4096 {
			return
		}
		client := websocket.PerMessageDeflate(deflateOptionsFrom(clientBits))
		server := websocket.PerMessageDeflate(deflateOptionsFrom(serverBits))

		var offers []string
		for _, o := range client.ClientOffers() {
			offers = append(offers, websocket.FormatExtension(client.Name(), o))
		}
		offered, err := websocket.ParseExtensions(offers)
		if err != nil {
			t.Fatalf("our offer %q does not parse: %v", offers, err)
		}
		var ps [][]websocket.Param
		for _, el := range offered {
			ps = append(ps, el.Params)
		}
		answer, ss, ok := server.ServerNegotiate(ps)
		if !ok {
			t.Fatalf("the server declined our client's offer %q", offers)
		}
		answered, err := websocket.ParseExtensions([]string{websocket.FormatExtension(server.Name(), answer)})
		if err != nil || len(answered) != 1 {
			t.Fatalf("the answer %+v does not parse as one element: %v", answer, err)
		}
		cs, err := client.ClientAccept(answered[0].Params)
		if err != nil {
			t.Fatalf("offer %q, answer %q: the client refused: %v", offers, websocket.FormatExtension(server.Name(), answer), err)
		}
		sp, cp := ss.(*websocket.DeflateSession).Params(), cs.(*websocket.DeflateSession).Params()
		if sp.WriteWindowBits > cp.ReadWindowBits || cp.WriteWindowBits > sp.ReadWindowBits {
			t.Fatalf("windows disagree: server %+v client %+v (answer %+v)", sp, cp, answer)
		}
		if !sp.ReadContextTakeover && cp.WriteContextTakeover || !cp.ReadContextTakeover && sp.WriteContextTakeover {
			t.Fatalf("context takeover disagrees: server %+v client %+v (answer %+v)", sp, cp, answer)
		}

		// A message whose second half repeats its first gap bytes later:
		// a match further back than an 8-bit window reaches.
		msg := make([]byte, 0, 2*len(data)+int(gap))
		msg = append(msg, data...)
		for i := 0; i < int(gap); i++ {
			msg = append(msg, byte(i*7+i>>8))
		}
		msg = append(msg, data...)
		for _, m := range [][]byte{data, msg, msg[len(msg)/3:], data} {
			roundTripDeflate(t, cs.(*websocket.DeflateSession), ss.(*websocket.DeflateSession), m, "client to server")
			roundTripDeflate(t, ss.(*websocket.DeflateSession), cs.(*websocket.DeflateSession), m, "server to client")
		}
	})
}

// roundTripDeflate compresses m with from and decompresses it with to.
func roundTripDeflate(t *testing.T, from, to *websocket.DeflateSession, m []byte, dir string) {
	t.Helper()
	var wire bytes.Buffer
	w, rsv, err := from.WriteMessage(nopWriteCloser{&wire}, websocket.MessageBinary, len(m))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(m); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(to.ReadMessage(bytes.NewReader(wire.Bytes()), rsv))
	if err != nil || !bytes.Equal(got, m) {
		t.Fatalf("%s: %d bytes came through as %d (%v); writer %+v reader %+v", dir, len(m), len(got), err, from.Params(), to.Params())
	}
}
