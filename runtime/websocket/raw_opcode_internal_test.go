package websocket

import (
	"context"
	"io"
	"testing"
	"time"
)

// WriteFrame refuses an opcode that does not fit the header's four bits
// (RFC 6455 §5.2), and sends nothing: ORed into the header's first byte,
// its high bits set FIN and RSV bits the caller did not ask for (0x82
// with Fin false went out as a final binary frame).
func TestRawWriteFrameRefusesWideOpcode(t *testing.T) {
	local, peer := tcpPair(t)
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, 0, time.Second, true), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })
	ctx := context.Background()
	for _, op := range []Opcode{0x82, 0x11, 0x4A} {
		if err := c.WriteFrame(ctx, Frame{FrameHeader: FrameHeader{Opcode: op}, Payload: []byte("x")}); err == nil {
			t.Errorf("WriteFrame with opcode %#x: nil error", byte(op))
		}
	}
	// The connection stays usable: the next frame is the first on the wire.
	if err := c.WriteFrame(ctx, Frame{FrameHeader: FrameHeader{Fin: true, Opcode: OpBinary}, Payload: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [4]byte
	if _, err := io.ReadFull(peer, b[:]); err != nil {
		t.Fatal(err)
	}
	if b != [4]byte{0x82, 2, 'o', 'k'} {
		t.Fatalf("first frame on the wire % x, want 82 02 6f 6b", b)
	}
}
