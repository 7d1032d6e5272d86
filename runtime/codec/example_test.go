package codec_test

import (
	"fmt"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// A server picks the codec for a WebSocket connection from the
// subprotocols the client offered, in the client's order of preference.
func ExampleBySubprotocol() {
	offered := []string{"wsrpc.cbor", "wsrpc.msgpack", "wsrpc.json"}
	for _, sub := range offered {
		if c, ok := codec.BySubprotocol(sub); ok {
			fmt.Println("selected", sub, "binary:", c.Binary())
			break
		}
	}
	// Output: selected wsrpc.msgpack binary: true
}

// MarshalAppend reuses one buffer across messages.
func ExampleCodec_marshalAppend() {
	var buf []byte
	for i := range 3 {
		var err error
		buf, err = codec.Msgpack.MarshalAppend(buf[:0], &testingv1.Nested{Id: int32(i)})
		if err != nil {
			panic(err)
		}
		var m testingv1.Nested
		if err := codec.Msgpack.Unmarshal(buf, &m); err != nil {
			panic(err)
		}
		fmt.Printf("% x -> id %d\n", buf, m.GetId())
	}
	// Output:
	// 80 -> id 0
	// 81 a2 69 64 01 -> id 1
	// 81 a2 69 64 02 -> id 2
}
