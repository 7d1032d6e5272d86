package codec_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// fuzzCodec is the shared property for each codec's fuzz target: decoding
// arbitrary bytes never panics and fails only with ErrUnmarshal; what
// decodes re-encodes, and that encoding decodes to an equal message. Every
// message that decoded is also pushed through the msgpack codec, whose
// mapping must carry anything the others accept or refuse it cleanly.
func fuzzCodec(f *testing.F, c codec.Codec) {
	// Small seeds, one per feature group: the fuzzer minimizes every new
	// interesting input, which is quick only for short ones.
	for _, m := range fuzzSeeds() {
		f.Add(mustMarshal(f, c, m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m testingv1.AllTypes
		if err := c.Unmarshal(data, &m); err != nil {
			if !errors.Is(err, codec.ErrUnmarshal) {
				t.Fatalf("error does not wrap ErrUnmarshal: %v", err)
			}
			return
		}
		b, err := c.Marshal(&m)
		if err != nil {
			if c.Name() == codec.NameProto {
				t.Fatalf("proto: decoded message does not re-encode: %v", err)
			}
			// ProtoJSON and msgpack validate ranges on both sides, so a
			// value that decoded must encode.
			t.Fatalf("%s: decoded message does not re-encode: %v", c.Name(), err)
		}
		var again testingv1.AllTypes
		if err := c.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !proto.Equal(&m, &again) {
			t.Fatalf("re-decode differs:\n%s", cmpDiff(&m, &again))
		}
		crossMsgpack(t, &m)
	})
}

// crossMsgpack checks that the msgpack encoding of m, if m is within its
// mapping, is stable: decode(encode(x)) == x for x = decode(encode(m)).
func crossMsgpack(t *testing.T, m proto.Message) {
	b, err := codec.Msgpack.Marshal(m)
	if err != nil {
		if !errors.Is(err, codec.ErrMarshal) {
			t.Fatalf("msgpack marshal error does not wrap ErrMarshal: %v", err)
		}
		return // e.g. a proto-decoded Timestamp out of range
	}
	var x testingv1.AllTypes
	if err := codec.Msgpack.Unmarshal(b, &x); err != nil {
		t.Fatalf("msgpack cannot decode its own output: %v", err)
	}
	var y testingv1.AllTypes
	if err := codec.Msgpack.Unmarshal(mustMarshal(t, codec.Msgpack, &x), &y); err != nil || !proto.Equal(&x, &y) {
		t.Fatalf("msgpack not stable: %v\n%s", err, cmpDiff(&x, &y))
	}
}

func FuzzProto(f *testing.F)   { fuzzCodec(f, codec.Proto) }
func FuzzJSON(f *testing.F)    { fuzzCodec(f, codec.JSON) }
func FuzzMsgpack(f *testing.F) { fuzzCodec(f, codec.Msgpack) }

func fuzzSeeds() []proto.Message {
	return []proto.Message{
		&testingv1.AllTypes{FInt32: -1, FUint64: 1 << 40, FDouble: 0.5, FFloat: -2, FBool: true, FString: "é", FBytes: []byte{0}, FEnum: 2},
		&testingv1.AllTypes{RSint32: []int32{-1, 1}, RString: []string{"a", ""}, RNested: []*testingv1.Nested{{Id: 1}}},
		&testingv1.AllTypes{MInt32Int32: map[int32]int32{1: 2}, MBoolString: map[bool]string{true: "t"}, MStringNested: map[string]*testingv1.Nested{"k": {}}},
		&testingv1.AllTypes{Choice: &testingv1.AllTypes_CNested{CNested: &testingv1.Nested{Child: &testingv1.Nested{Name: "c"}}}, OInt32: proto.Int32(0)},
		&testingv1.AllTypes{WTimestamp: &timestamppb.Timestamp{Seconds: 1 << 35, Nanos: 1}, WDuration: &durationpb.Duration{Seconds: -1, Nanos: -5}},
		&testingv1.AllTypes{WValue: structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNullValue(), structpb.NewBoolValue(true)}}), WStruct: &structpb.Struct{Fields: map[string]*structpb.Value{"n": structpb.NewNumberValue(1)}}},
		&testingv1.AllTypes{WAny: mustAny(&testingv1.Nested{Id: 3}), WInt64: wrapperspb.Int64(-5), WString: wrapperspb.String("")},
	}
}
