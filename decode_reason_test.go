package wsrpc_test

import (
	"errors"
	"testing"

	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestDecodeErrorCloseReason guards what a client without Go's errors (a
// page, a Node program) learns of a message the server could not decode:
// the close reason of 4003 invalid_argument alone, cut to 123 bytes (RFC
// 6455 §5.5). It must say what was wrong and where within them. It read
// "unmarshal msgpack: codec: unmarshal failed: msgpack:
// wsrpc.testing.v1.EchoRequest.seq: codec: wrong type for field: msgpack",
// cut before the cause.
func TestDecodeErrorCloseReason(t *testing.T) {
	base := serve(t)
	ctx := testContext(t)
	for _, tc := range []struct {
		c    codec.Codec
		msg  string
		want string
	}{
		// @msgpack/msgpack encode({seq: 1.5})
		{codec.Msgpack, "\x81\xa3seq\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00",
			"bad message: msgpack: field seq (wsrpc.testing.v1.EchoRequest.seq): float where int64 expected: 1.5"},
		{codec.JSON, `{"seq":1.5}`, "bad message: json: (line 1:8): invalid value for int64 field seq: 1.5"},
		{codec.Proto, "\xff", "bad message: proto: cannot parse invalid wire-format data"},
	} {
		t.Run(tc.c.Name(), func(t *testing.T) {
			c, _, err := websocket.Dial(ctx, base+testingv1wsrpc.StreamServiceEchoPath, &websocket.DialOptions{Subprotocols: []string{codec.Subprotocol(tc.c)}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			typ := websocket.MessageBinary
			if !tc.c.Binary() {
				typ = websocket.MessageText
			}
			if err := c.Write(ctx, typ, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Read(ctx)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4003 || ce.Reason != tc.want {
				t.Fatalf("close = %v, want 4003 %q", err, tc.want)
			}
		})
	}
}
