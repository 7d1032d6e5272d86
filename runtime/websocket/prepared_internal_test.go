package websocket

import (
	"bytes"
	"testing"
)

// TestPreparedFrameSharing checks that frames are built once per form and
// shared: one plain frame, one compressed frame per (level, window), and
// nil (encode per connection) for context takeover, clients and
// frame-level extensions.
func TestPreparedFrameSharing(t *testing.T) {
	data := bytes.Repeat([]byte("shared "), 100)
	pm, err := NewPreparedMessage(MessageText, data)
	if err != nil {
		t.Fatal(err)
	}
	deflate := func(noCtx bool, bits int) *Conn {
		s := newDeflateSession(DeflateOptions{Level: 1, Threshold: 128}, noCtx, false, bits, 15)
		return &Conn{neg: &negotiation{exts: []*negotiated{newNegotiated(PerMessageDeflate(nil), nil, s)}}}
	}
	plain := &Conn{}
	a, b := pm.frame(plain), pm.frame(&Conn{})
	if a == nil || &a[0] != &b[0] {
		t.Fatal("plain frame not shared")
	}
	z1, z2 := pm.frame(deflate(true, 15)), pm.frame(deflate(true, 15))
	if z1 == nil || &z1[0] != &z2[0] || z1[0]&RSV1 == 0 {
		t.Fatal("compressed frame not shared or not marked RSV1")
	}
	if z3 := pm.frame(deflate(true, 9)); z3 == nil || &z3[0] == &z1[0] {
		t.Fatal("a different window must get its own frame")
	}
	if pm.frame(deflate(false, 15)) != nil {
		t.Fatal("context takeover must compress per connection")
	}
	if pm.frame(&Conn{client: true}) != nil {
		t.Fatal("clients mask each frame: nothing to share")
	}
	if len(pm.deflated) != 2 {
		t.Fatalf("%d compressed forms, want 2", len(pm.deflated))
	}
}
