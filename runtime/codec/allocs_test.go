//go:build !race

// Allocation counts are only meaningful without the race detector, as in
// runtime/websocket and runtime/sse: scripts/test.sh runs the Allocs
// tests in a pass of their own.

package codec_test

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// allocatedPerByte returns the bytes one Unmarshal of in allocates, per
// input byte (after a first, warming call).
func allocatedPerByte(t *testing.T, c codec.Codec, in []byte) float64 {
	t.Helper()
	var m testingv1.AllTypes
	if err := c.Unmarshal(in, &m); err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := c.Unmarshal(in, &m); err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(len(in))
}

// TestDecodeAmplificationAllocs guards the decoders' worst case in bytes
// allocated per input byte, which docs/security.md gives as the bound to
// plan for against MaxMessageSize: a repeated google.protobuf.Value whose
// elements are empty maps, each the smallest encoding of a Value holding
// a Struct (msgpack 0x80, 1 byte; JSON "{}," 3; proto 5). Each element
// costs a Value, its oneof wrapper, a Struct and the list's growth in
// every codec; the msgpack decoder also made each Struct's Go map (Mutable
// on an empty map), 300 B per input byte against JSON's 100, and it must
// now stay within 2.5 times JSON's figure (it is about 1.9; the 1-byte
// element is what keeps it above JSON's).
func TestDecodeAmplificationAllocs(t *testing.T) {
	const n = 1 << 14
	mpIn := append([]byte{0x81}, mp(t, "rValue")...)
	mpIn = binary.BigEndian.AppendUint32(append(mpIn, 0xdd), n)
	mpIn = append(mpIn, bytes.Repeat([]byte{0x80}, n)...)
	jsonIn := []byte(`{"rValue":[` + strings.Repeat("{},", n-1) + `{}]}`)
	var pbIn []byte
	for range n {
		pbIn = protowire.AppendTag(pbIn, 48, protowire.BytesType)
		pbIn = protowire.AppendBytes(pbIn, []byte{0x2a, 0}) // struct_value, empty
	}
	msgpackB := allocatedPerByte(t, codec.Msgpack, mpIn)
	jsonB := allocatedPerByte(t, codec.JSON, jsonIn)
	protoB := allocatedPerByte(t, codec.Proto, pbIn)
	t.Logf("bytes allocated per input byte: msgpack %.0f, json %.0f, proto %.0f", msgpackB, jsonB, protoB)
	if msgpackB > 2.5*jsonB {
		t.Errorf("msgpack allocates %.0f bytes per input byte, more than 2.5 times JSON's %.0f on the same elements", msgpackB, jsonB)
	}
}

// TestJSONAnyCheckAllocs: the JSON encoder's Any-nesting pre-walk
// (anynest.go) adds no allocation to protojson's own for a generated
// message whose type cannot hold an Any: one cached lookup. The cache
// keeps only registered descriptors, so this guards that generated types
// are still found in it.
func TestJSONAnyCheckAllocs(t *testing.T) {
	var buf []byte
	var err error
	for _, m := range []proto.Message{benchMessage, &testingv1.Nested{Id: 1, Children: []*testingv1.Nested{{Name: "x"}}}} {
		codecAllocs := testing.AllocsPerRun(100, func() {
			if buf, err = codec.JSON.MarshalAppend(buf[:0], m); err != nil {
				t.Fatal(err)
			}
		})
		protojsonAllocs := testing.AllocsPerRun(100, func() {
			if buf, err = (protojson.MarshalOptions{}).MarshalAppend(buf[:0], m); err != nil {
				t.Fatal(err)
			}
		})
		if codecAllocs != protojsonAllocs {
			t.Errorf("%T: the JSON codec allocates %v times per Marshal, protojson %v", m, codecAllocs, protojsonAllocs)
		}
	}
}

// TestMsgpackMarshalAllocs: encoding into a reused buffer allocates
// nothing of the encoder's own, at any nesting — a server that pushes
// state to many clients encodes once per client and message. What is
// left is protobuf's: reading a repeated field through protoreflect
// (Message.Get) makes a view of the list, one allocation per non-empty
// repeated field. Every message level cost one more (the extensions
// slice, declared where a closure captured it, lived on the heap whether
// or not the message had extension ranges): 1 for Small, 6 for the tree.
func TestMsgpackMarshalAllocs(t *testing.T) {
	tree := &testingv1.Nested{Id: 1, Name: "root", Children: []*testingv1.Nested{
		{Id: 2, Name: "a", Children: []*testingv1.Nested{{Id: 3}}}, {Id: 4, Name: "b"}}}
	for _, tc := range []struct {
		m     proto.Message
		lists float64 // non-empty repeated fields
	}{{benchMessage, 0}, {tree, 2}} {
		buf, err := codec.Msgpack.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if buf, err = codec.Msgpack.MarshalAppend(buf[:0], tc.m); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tc.lists {
			t.Errorf("%T: %v allocations per MarshalAppend into a reused buffer, want at most %v (protoreflect's list views)", tc.m, allocs, tc.lists)
		}
	}
}
