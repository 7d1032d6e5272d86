package codec_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

var deterministic = codec.NewMsgpack(&codec.MsgpackOptions{Deterministic: true})

// mp encodes v with the msgpack library itself: an independent encoder, as
// a peer in another language would be.
func mp(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestMsgpackGolden pins the exact bytes of the mapping described in the
// package documentation.
func TestMsgpackGolden(t *testing.T) {
	cases := []struct {
		name string
		m    proto.Message
		hex  string
	}{
		{"empty message", &testingv1.AllTypes{}, "80"},
		{"json names, field order", &testingv1.Nested{Name: "a", Id: 1},
			"82 a2 6964 01 a4 6e616d65 a1 61"},
		// Declaration order, as ProtoJSON, not number order: extendee (2)
		// is declared after number (3).
		{"declaration order", &descriptorpb.FieldDescriptorProto{Name: proto.String("f"), Extendee: proto.String(".x"), Number: proto.Int32(3)},
			"83 a4 6e616d65 a1 66 a6 6e756d626572 03 a8 657874656e646565 a2 2e78"},
		{"negative and large ints", &testingv1.AllTypes{FInt32: -1, FUint64: math.MaxUint64},
			"82 a6 66496e743332 ff a7 6655696e743634 cf ffffffffffffffff"},
		{"float is float32, double float64", &testingv1.AllTypes{FFloat: 1.5, FDouble: 1.5},
			"82 a6 66466c6f6174 ca 3fc00000 a7 66446f75626c65 cb 3ff8000000000000"},
		{"bytes are bin, enum is int", &testingv1.AllTypes{FBytes: []byte{1, 2}, FEnum: testingv1.Color_COLOR_BLUE},
			"82 a6 664279746573 c4 02 0102 a5 66456e756d 03"},
		{"timestamp 32", &timestamppb.Timestamp{Seconds: 1}, "d6 ff 00000001"},
		{"timestamp 64", &timestamppb.Timestamp{Seconds: 1, Nanos: 1}, "d7 ff 00000004 00000001"},
		{"timestamp 96", &timestamppb.Timestamp{Seconds: -1, Nanos: 5}, "c7 0c ff 00000005 ffffffffffffffff"},
		{"duration", &durationpb.Duration{Seconds: -1, Nanos: -500000000}, "a7 2d312e353030 73"},
		{"duration whole", &durationpb.Duration{Seconds: 3}, "a2 3373"},
		{"duration micros", &durationpb.Duration{Nanos: 1000}, "a9 302e303030303031 73"},
		{"null value", structpb.NewNullValue(), "c0"},
		{"number value", structpb.NewNumberValue(2), "cb 4000000000000000"},
		{"struct", &structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewBoolValue(true)}}, "81 a1 6b c3"},
		{"list value", &structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("s")}}, "91 a1 73"},
		{"wrapper", wrapperspb.Int32(-2), "fe"},
		{"empty", &emptypb.Empty{}, "80"},
		{"field mask", &fieldmaskpb.FieldMask{Paths: []string{"a.b", "c"}}, "92 a3 612e62 a1 63"},
		{"empty any", &anypb.Any{}, "80"},
		{"any", mustAny(&testingv1.Nested{Id: 1}),
			"82 a5 4074797065 d9 2b 747970652e676f6f676c65617069732e636f6d2f77737270632e74657374696e672e76312e4e6573746564 a5 76616c7565 81 a2 6964 01"},
		{"oneof case only", &testingv1.AllTypes{Choice: &testingv1.AllTypes_CInt64{CInt64: 0}}, "81 a6 63496e743634 00"},
		// Integer and bool map keys are str, as in ProtoJSON (they were
		// native ints and bools before: TestMsgpackMapKeysWrittenAsStr).
		{"sorted map keys", &testingv1.AllTypes{MInt32Int32: map[int32]int32{3: 0, -1: 0, 2: 0}},
			"81 ab 6d496e743332496e743332 83 a2 2d31 00 a1 32 00 a1 33 00"},
		{"bool map keys", &testingv1.AllTypes{MBoolString: map[bool]string{true: "t", false: "f"}},
			"81 ab 6d426f6f6c537472696e67 82 a5 66616c7365 a1 66 a4 74727565 a1 74"},
		{"64-bit map key", &testingv1.AllTypes{MUint64Double: map[uint64]float64{math.MaxUint64: 0}},
			"81 ad 6d55696e743634446f75626c65 81 b4 3138343436373434303733373039353531363135 cb 0000000000000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := deterministic.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(tc.hex); !bytes.Equal(got, want) {
				t.Fatalf("got  % x\nwant % x", got, want)
			}
			back := tc.m.ProtoReflect().Type().New().Interface()
			if err := deterministic.Unmarshal(got, back); err != nil || !proto.Equal(back, tc.m) {
				t.Fatalf("decode: %v, %v", back, err)
			}
		})
	}
}

// TestMsgpackReadByLibrary: a generic msgpack decoder (here the library
// itself, standing in for a browser or another language) reads the output
// as plain maps, with Timestamp as the standard timestamp extension.
func TestMsgpackReadByLibrary(t *testing.T) {
	ts := time.Date(2024, 2, 29, 12, 30, 0, 123456789, time.UTC)
	m := &testingv1.Small{Room: "lobby", User: "ann", Seq: -3, SentAt: timestamppb.New(ts)}
	b, err := codec.Msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["room"] != "lobby" || got["user"] != "ann" || got["seq"] != int8(-3) {
		t.Fatalf("got %#v", got)
	}
	if sent, ok := got["sentAt"].(time.Time); !ok || !sent.Equal(ts) {
		t.Fatalf("sentAt = %#v, want %v", got["sentAt"], ts)
	}
}

// TestMsgpackFromForeignEncoder: input as another encoder writes it: proto
// field names as keys, integral floats as ints, ints in wider encodings than
// needed, enums by name, nil for unset fields, keys in any order.
func TestMsgpackFromForeignEncoder(t *testing.T) {
	in := mp(t, map[string]any{
		"f_double":    int64(3),
		"fFloat":      uint8(2),
		"fInt32":      int64(-7),
		"fUint32":     int64(7),
		"fEnum":       "COLOR_GREEN",
		"rEnum":       []any{1, "COLOR_BLUE", 42},
		"fString":     nil,
		"wValue":      nil,
		"wTimestamp":  time.Unix(1700000000, 5).UTC(),
		"wAny":        map[string]any{"value": map[string]any{"id": 9}, "@type": "type.googleapis.com/wsrpc.testing.v1.Nested"},
		"wStruct":     map[string]any{"n": 1, "l": []any{nil, "x", true, map[string]any{}}},
		"unknown":     map[string]any{"deep": []any{1, 2, map[string]any{"x": []byte{1}}}},
		"mBoolString": map[bool]string{true: "t"},
		"wUint64":     uint64(math.MaxUint64),
	})
	var got testingv1.AllTypes
	if err := codec.Msgpack.Unmarshal(in, &got); err != nil {
		t.Fatal(err)
	}
	st, _ := structpb.NewStruct(map[string]any{"n": 1, "l": []any{nil, "x", true, map[string]any{}}})
	want := &testingv1.AllTypes{
		FDouble: 3, FFloat: 2, FInt32: -7, FUint32: 7, FEnum: testingv1.Color_COLOR_GREEN,
		REnum:       []testingv1.Color{1, 3, 42},
		WValue:      structpb.NewNullValue(),
		WTimestamp:  &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 5},
		WAny:        mustAny(&testingv1.Nested{Id: 9}),
		WStruct:     st,
		MBoolString: map[bool]string{true: "t"},
		WUint64:     wrapperspb.UInt64(math.MaxUint64),
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("%s", cmpDiff(want, &got))
	}
}

// TestMsgpackAnyValueBeforeType: an Any's keys may come in any order, as
// a JavaScript object's do ({value: m, "@type": url}). The value, read
// before its type is known, is skipped and decoded once the type is; the
// decode's end was checked against the end of the whole Any, so an Any
// with "value" before "@type" (or before an unknown key) was refused with
// "google.protobuf.Any value". mp sorts keys and so always wrote "@type"
// first, which hid it.
func TestMsgpackAnyValueBeforeType(t *testing.T) {
	const nestedURL = "type.googleapis.com/wsrpc.testing.v1.Nested"
	// ordered writes a map with its keys in the order given.
	type kv struct {
		k string
		v any
	}
	var ordered func(e *msgpack.Encoder, kvs ...kv)
	ordered = func(e *msgpack.Encoder, kvs ...kv) {
		if err := e.EncodeMapLen(len(kvs)); err != nil {
			t.Fatal(err)
		}
		for _, p := range kvs {
			if err := e.EncodeString(p.k); err != nil {
				t.Fatal(err)
			}
			if f, ok := p.v.(func(*msgpack.Encoder)); ok {
				f(e)
			} else if err := e.Encode(p.v); err != nil {
				t.Fatal(err)
			}
		}
	}
	msg := func(kvs ...kv) func(*msgpack.Encoder) {
		return func(e *msgpack.Encoder) { ordered(e, kvs...) }
	}
	encode := func(kvs ...kv) []byte {
		var buf bytes.Buffer
		ordered(msgpack.NewEncoder(&buf), kvs...)
		return buf.Bytes()
	}
	inner := msg(kv{"id", 9}, kv{"name", "n"})
	for _, tc := range []struct {
		name string
		in   []byte
		want *testingv1.AllTypes
	}{
		{"value then type", encode(kv{"wAny", msg(kv{"value", inner}, kv{"@type", nestedURL})}), &testingv1.AllTypes{WAny: mustAny(&testingv1.Nested{Id: 9, Name: "n"})}},
		{"value then unknown key", encode(kv{"wAny", msg(kv{"@type", nestedURL}, kv{"value", inner}, kv{"x", 1})}), &testingv1.AllTypes{WAny: mustAny(&testingv1.Nested{Id: 9, Name: "n"})}},
		{"then a field", encode(kv{"wAny", msg(kv{"value", inner}, kv{"@type", nestedURL})}, kv{"fInt32", 5}), &testingv1.AllTypes{WAny: mustAny(&testingv1.Nested{Id: 9, Name: "n"}), FInt32: 5}},
		{"Any in Any", encode(kv{"wAny", msg(
			kv{"value", msg(kv{"value", inner}, kv{"@type", nestedURL})},
			kv{"@type", "type.googleapis.com/google.protobuf.Any"})}),
			&testingv1.AllTypes{WAny: mustAny(mustAny(&testingv1.Nested{Id: 9, Name: "n"}))}},
		{"well-known type", encode(kv{"rAny", []any{}}, kv{"wAny", msg(kv{"value", "1.5s"}, kv{"@type", "type.googleapis.com/google.protobuf.Duration"})}),
			&testingv1.AllTypes{WAny: mustAny(durationpb.New(1500 * time.Millisecond))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got testingv1.AllTypes
			if err := codec.Msgpack.Unmarshal(tc.in, &got); err != nil {
				t.Fatalf("% x: %v", tc.in, err)
			}
			if !proto.Equal(&got, tc.want) {
				t.Fatalf("%s", cmpDiff(tc.want, &got))
			}
		})
	}
}

// TestMsgpackKeysAsProtoJSON guards that the msgpack decoder resolves a
// key to a field as ProtoJSON does (JSON name, else text name). It once
// refused the proto name of every field of GroupKind, which in Editions
// includes any message field with message_encoding = DELIMITED: its value
// was dropped as unknown while the JSON codec took it. Proto2 groups keep
// ProtoJSON's names: the field name and the group's message name.
func TestMsgpackKeysAsProtoJSON(t *testing.T) {
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	delimited := func(f *descriptorpb.FieldDescriptorProto) *descriptorpb.FieldDescriptorProto {
		f.Options = &descriptorpb.FieldOptions{Features: &descriptorpb.FeatureSet{
			MessageEncoding: descriptorpb.FeatureSet_DELIMITED.Enum(),
		}}
		return f
	}
	x := field("x", 1, descriptorpb.FieldDescriptorProto_TYPE_INT32, "")
	files := []*descriptorpb.FileDescriptorProto{{
		// edition = "2023";
		// message Inner { int32 x = 1; }
		// message Outer {
		//   message Item { int32 x = 1; }
		//   Inner foo_bar = 1 [features.message_encoding = DELIMITED];
		//   Item item = 2 [features.message_encoding = DELIMITED]; // group-like
		// }
		Name:    proto.String("wsrpc/codec/test/delimited.proto"),
		Package: proto.String("wsrpc.codec.test.ed"),
		Syntax:  proto.String("editions"),
		Edition: descriptorpb.Edition_EDITION_2023.Enum(),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Inner"), Field: []*descriptorpb.FieldDescriptorProto{x}},
			{
				Name:       proto.String("Outer"),
				NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("Item"), Field: []*descriptorpb.FieldDescriptorProto{x}}},
				Field: []*descriptorpb.FieldDescriptorProto{
					delimited(field("foo_bar", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".wsrpc.codec.test.ed.Inner")),
					delimited(field("item", 2, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".wsrpc.codec.test.ed.Outer.Item")),
				},
			},
		},
	}, {
		// syntax = "proto2";
		// message Outer { optional group OptionalGroup = 1 { optional int32 x = 1; } }
		Name:    proto.String("wsrpc/codec/test/group.proto"),
		Package: proto.String("wsrpc.codec.test.p2"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:       proto.String("Outer"),
			NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("OptionalGroup"), Field: []*descriptorpb.FieldDescriptorProto{x}}},
			Field: []*descriptorpb.FieldDescriptorProto{
				field("optionalgroup", 1, descriptorpb.FieldDescriptorProto_TYPE_GROUP, ".wsrpc.codec.test.p2.Outer.OptionalGroup"),
			},
		}},
	}}
	outer := make([]protoreflect.MessageDescriptor, len(files))
	for i, fdp := range files {
		fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
		if err != nil {
			t.Fatal(err)
		}
		outer[i] = fd.Messages().ByName("Outer")
	}
	cases := []struct {
		outer protoreflect.MessageDescriptor
		key   string
		known bool
	}{
		{outer[0], "fooBar", true},  // JSON name
		{outer[0], "foo_bar", true}, // proto name: once dropped
		{outer[0], "FooBar", false}, // names are case-sensitive
		{outer[0], "Inner", false},  // not group-like: no message name
		{outer[0], "item", true},    // group-like: field name
		{outer[0], "Item", true},    // and message name
		{outer[1], "optionalgroup", true},
		{outer[1], "OptionalGroup", true}, // a group's text name
		{outer[1], "optionalGroup", false},
	}
	for _, tc := range cases {
		name := tc.outer.ParentFile().Syntax().String() + "/" + tc.key
		t.Run(name, func(t *testing.T) {
			fromJSON := dynamicpb.NewMessage(tc.outer)
			if err := codec.JSON.Unmarshal([]byte(`{"`+tc.key+`":{"x":7}}`), fromJSON); err != nil {
				t.Fatalf("json: %v", err)
			}
			fromMsgpack := dynamicpb.NewMessage(tc.outer)
			if err := codec.Msgpack.Unmarshal(mp(t, map[string]any{tc.key: map[string]any{"x": 7}}), fromMsgpack); err != nil {
				t.Fatalf("msgpack: %v", err)
			}
			if !proto.Equal(fromJSON, fromMsgpack) {
				t.Fatalf("json decodes {%v}, msgpack {%v}", fromJSON, fromMsgpack)
			}
			if set := proto.Size(fromMsgpack) > 0; set != tc.known {
				t.Fatalf("key %q: field set %v, want %v", tc.key, set, tc.known)
			}
		})
	}
}

// TestMsgpackDeterministic: with Deterministic, equal messages give equal
// bytes whatever the map iteration order.
func TestMsgpackDeterministic(t *testing.T) {
	m := &testingv1.AllTypes{MStringString: map[string]string{}, MSint64Bool: map[int64]bool{}, MFixed64Int64: map[uint64]int64{}}
	for i := range 50 {
		m.MStringString[strings.Repeat("k", i)] = "v"
		m.MSint64Bool[int64(i-25)] = i%2 == 0
		m.MFixed64Int64[uint64(i)*1e15] = int64(i)
	}
	m.MStringNested = map[string]*testingv1.Nested{"a": {}, "b": {}}
	m.WStruct = &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(1), "y": structpb.NewNumberValue(2), "z": structpb.NewNullValue()}}
	first, err := deterministic.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := deterministic.Marshal(proto.Clone(m))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("deterministic encoding changed between runs")
		}
	}
}

// TestMsgpackBadInput: malformed, truncated, mistyped and out-of-range
// input is an error wrapping ErrUnmarshal and the specific sentinel.
func TestMsgpackBadInput(t *testing.T) {
	key := func(k string) string { return hex.EncodeToString(mp(t, k)) }
	cases := []struct {
		name string
		in   string // hex
		want error
	}{
		{"empty input", "", codec.ErrTruncated},
		{"not a map", "01", codec.ErrWrongType},
		{"top-level nil", "c0", codec.ErrWrongType},
		{"truncated map", "81", codec.ErrTruncated},
		{"truncated key", "81 a5 6649", codec.ErrTruncated},
		{"truncated value", "81" + key("fInt64") + "d3 0000", codec.ErrTruncated},
		{"trailing data", "80 00", codec.ErrTrailingData},
		{"int key", "81 01 01", codec.ErrWrongType},
		{"invalid utf-8 key", "81 a2 c328 01", codec.ErrInvalidUTF8},
		{"invalid utf-8 string", "81" + key("fString") + "a2 c328", codec.ErrInvalidUTF8},
		{"string for int", "81" + key("fInt32") + "a1 31", codec.ErrWrongType},
		{"fraction for int", "81" + key("fInt32") + "cb 3ff8000000000000", codec.ErrWrongType},
		{"int32 overflow", "81" + key("fInt32") + "ce 80000000", codec.ErrRange},
		{"int32 underflow", "81" + key("fInt32") + "d3 ffffffff7fffffff", codec.ErrRange},
		{"int64 overflow", "81" + key("fInt64") + "cf 8000000000000000", codec.ErrRange},
		{"negative uint32", "81" + key("fUint32") + "ff", codec.ErrRange},
		{"uint32 overflow", "81" + key("fUint32") + "cf 0000000100000000", codec.ErrRange},
		{"negative uint64", "81" + key("fUint64") + "d0 80", codec.ErrRange},
		{"float overflow", "81" + key("fFloat") + "cb 7fefffffffffffff", codec.ErrRange},
		{"str for bytes", "81" + key("fBytes") + "a1 61", codec.ErrWrongType},
		{"bin for string", "81" + key("fString") + "c4 01 61", codec.ErrWrongType},
		{"int for bool", "81" + key("fBool") + "01", codec.ErrWrongType},
		{"unknown enum name", "81" + key("fEnum") + key("PURPLE"), codec.ErrUnknownType},
		{"enum overflow", "81" + key("fEnum") + "ce 80000000", codec.ErrRange},
		{"scalar for message", "81" + key("fNested") + "01", codec.ErrWrongType},
		{"map for list", "81" + key("rInt32") + "80", codec.ErrWrongType},
		{"array for map", "81" + key("mStringString") + "90", codec.ErrWrongType},
		{"nil list element", "81" + key("rString") + "91 c0", codec.ErrWrongType},
		{"bad map key type", "81" + key("mInt32Int32") + "81 c4 01 31 01", codec.ErrWrongType},
		{"duplicate map key", "81" + key("mInt32Int32") + "82 01 01 01 02", codec.ErrMalformed},
		{"duplicate field", "82" + key("fInt32") + "01" + key("f_int32") + "02", codec.ErrMalformed},
		// The first value of each pair below leaves the field unpopulated,
		// so only a record of the keys seen, not Has, can catch them.
		{"duplicate field, zero first", "82" + key("fInt32") + "00" + key("fInt32") + "05", codec.ErrMalformed},
		{"duplicate field, empty string first", "82" + key("fString") + "a0" + key("f_string") + key("x"), codec.ErrMalformed},
		{"duplicate field, nil first", "82" + key("fInt64") + "c0" + key("fInt64") + "01", codec.ErrMalformed},
		{"duplicate list, empty first", "82" + key("rInt32") + "90" + key("r_int32") + "91 07", codec.ErrMalformed},
		{"duplicate map, empty first", "82" + key("mStringString") + "80" + key("mStringString") + "81" + key("a") + key("b"), codec.ErrMalformed},
		{"duplicate field past index 64", "82" + key("wNull") + "c0" + key("w_null") + "00", codec.ErrMalformed},
		{"duplicate oneof", "82" + key("cInt64") + "01" + key("cString") + "a0", codec.ErrDuplicateOneof},
		{"reserved code", "81" + key("zzz") + "c1", codec.ErrMalformed},
		{"reserved code as value", "81" + key("fInt32") + "c1", codec.ErrWrongType},
		{"huge array claim", "81" + key("rInt32") + "dd ffffffff 01", codec.ErrTruncated},
		{"huge map claim", "81" + key("mStringString") + "df ffffffff", codec.ErrTruncated},
		{"huge bin claim", "81" + key("fBytes") + "c6 ffffffff 00", codec.ErrTruncated},
		{"huge str claim", "81" + key("fString") + "db 7fffffff", codec.ErrTruncated},
		{"huge claim in unknown", "81" + key("zzz") + "dd 7fffffff 00", codec.ErrTruncated},
		{"huge ext in unknown", "81" + key("zzz") + "c9 7fffffff 01", codec.ErrTruncated},
		{"timestamp not ext", "81" + key("wTimestamp") + "01", codec.ErrWrongType},
		{"timestamp wrong ext type", "81" + key("wTimestamp") + "d6 05 00000001", codec.ErrWrongType},
		{"timestamp bad size", "81" + key("wTimestamp") + "d5 ff 0000", codec.ErrMalformed},
		{"timestamp nanos too big", "81" + key("wTimestamp") + "c7 0c ff 3b9aca00 0000000000000000", codec.ErrRange},
		{"timestamp after 9999", "81" + key("wTimestamp") + "c7 0c ff 00000000 0000003afff44180", codec.ErrRange},
		{"duration not string", "81" + key("wDuration") + "01", codec.ErrWrongType},
		{"duration no suffix", "81" + key("wDuration") + key("1"), codec.ErrMalformed},
		{"duration bad fraction", "81" + key("wDuration") + key("1..5s"), codec.ErrMalformed},
		{"duration ten digits", "81" + key("wDuration") + key("1.0000000001s"), codec.ErrMalformed},
		{"duration too long", "81" + key("wDuration") + key("315576000001s"), codec.ErrRange},
		{"value bin", "81" + key("wValue") + "c4 00", codec.ErrWrongType},
		{"struct int key", "81" + key("wStruct") + "81 01 c0", codec.ErrWrongType},
		{"any unknown type", "81" + key("wAny") + "81" + key("@type") + key("example.com/nope"), codec.ErrUnknownType},
		// Its empty message has no kind, which no encoder can write.
		{"any of value without value", "81" + key("wAny") + "81" + key("@type") + key("type.googleapis.com/google.protobuf.Value"), codec.ErrMalformed},
		{"any value without type", "81" + key("wAny") + "81" + key("value") + "80", codec.ErrMalformed},
		{"any bad value", "81" + key("wAny") + "82" + key("value") + "81" + key("id") + key("x") + key("@type") +
			key("type.googleapis.com/wsrpc.testing.v1.Nested"), codec.ErrWrongType},
		{"reserved code in value list", "81" + key("rValue") + "91 c1", codec.ErrWrongType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m testingv1.AllTypes
			err := codec.Msgpack.Unmarshal(unhex(tc.in), &m)
			if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// The codec's name, then the cause: no sentinel's text
			// (TestMsgpackErrorText).
			if !strings.HasPrefix(err.Error(), "msgpack: ") || strings.Contains(err.Error(), "codec: ") {
				t.Fatalf("error %q does not lead with the codec's name and the cause", err)
			}
		})
	}
}

// TestMsgpackDepth: nesting beyond RecursionLimit fails cleanly, in known
// fields, in Values and in skipped unknown values, without exhausting the
// stack (a 1 MB input of nested arrays).
func TestMsgpackDepth(t *testing.T) {
	small := codec.NewMsgpack(&codec.MsgpackOptions{RecursionLimit: 10})
	if err := small.Unmarshal(mustMarshal(t, codec.Msgpack, deepNested(5)), &testingv1.AllTypes{}); err != nil {
		t.Fatalf("depth 5 within limit 10: %v", err)
	}
	if err := small.Unmarshal(mustMarshal(t, codec.Msgpack, deepNested(20)), &testingv1.AllTypes{}); !errors.Is(err, codec.ErrDepth) {
		t.Fatalf("depth 20, limit 10: got %v", err)
	}
	if _, err := small.Marshal(deepNested(20)); !errors.Is(err, codec.ErrDepth) || !errors.Is(err, codec.ErrMarshal) {
		t.Fatalf("marshal depth 20, limit 10: got %v", err)
	}
	const n = 1 << 20
	nested := append(append(unhex("81"), mp(t, "wValue")...), bytes.Repeat([]byte{0x91}, n)...)
	nested = append(nested, 0xc0)
	unknown := append(append(unhex("81"), mp(t, "zzz")...), bytes.Repeat([]byte{0x91}, n)...)
	unknown = append(unknown, 0xc0)
	for name, in := range map[string][]byte{"value": nested, "unknown": unknown} {
		if err := codec.Msgpack.Unmarshal(in, &testingv1.AllTypes{}); !errors.Is(err, codec.ErrDepth) {
			t.Errorf("%s: got %v, want ErrDepth", name, err)
		}
	}
}

// TestMsgpackRecursionLimitAgrees guards the rule MsgpackOptions documents:
// RecursionLimit counts message levels, as protobuf does, on encode and on
// decode alike, so what the codec encodes it decodes. The decoder once
// charged a list or map field a level of its own (a Struct or ListValue at
// the limit encoded and did not decode), and skipped an Any's value
// counting every array and map against the limit itself (a chain of
// repeated messages in an Any cost twice its depth).
func TestMsgpackRecursionLimitAgrees(t *testing.T) {
	const limit = 6
	c := codec.NewMsgpack(&codec.MsgpackOptions{RecursionLimit: limit})
	// children returns a chain of depth Nested messages linked by the
	// repeated field.
	children := func(depth int) *testingv1.Nested {
		n := &testingv1.Nested{Id: int32(depth)}
		for i := depth - 1; i > 0; i-- {
			n = &testingv1.Nested{Id: int32(i), Children: []*testingv1.Nested{n}}
		}
		return n
	}
	// list and object return a Value whose own nesting is depth messages
	// (Value, ListValue or Struct, Value, …).
	var list, object func(depth int) *structpb.Value
	list = func(depth int) *structpb.Value {
		switch depth {
		case 1:
			return structpb.NewBoolValue(true)
		case 2:
			return structpb.NewListValue(&structpb.ListValue{})
		}
		return structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{list(depth - 2)}})
	}
	object = func(depth int) *structpb.Value {
		switch depth {
		case 1:
			return structpb.NewBoolValue(true)
		case 2:
			return structpb.NewStructValue(&structpb.Struct{})
		}
		return structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"k": object(depth - 2)}})
	}
	// Each shape puts its deepest message at depth, the top-level message
	// being at depth 0.
	shapes := []struct {
		name string
		make func(depth int) proto.Message
	}{
		{"singular field chain", func(d int) proto.Message { return deepNested(d) }},
		{"repeated field chain", func(d int) proto.Message {
			return &testingv1.AllTypes{RNested: []*testingv1.Nested{children(d)}}
		}},
		{"map field chain", func(d int) proto.Message {
			return &testingv1.AllTypes{MStringNested: map[string]*testingv1.Nested{"k": children(d)}}
		}},
		{"list values", func(d int) proto.Message { return &testingv1.AllTypes{WValue: list(d)} }},
		{"struct values", func(d int) proto.Message { return &testingv1.AllTypes{WValue: object(d)} }},
		{"repeated chain in an Any", func(d int) proto.Message {
			return &testingv1.AllTypes{WAny: mustAny(children(d - 1))}
		}},
		{"repeated chain in a top-level Any", func(d int) proto.Message { return mustAny(children(d)) }},
		{"map field chain in an Any", func(d int) proto.Message {
			return &testingv1.AllTypes{WAny: mustAny(&testingv1.AllTypes{MStringNested: map[string]*testingv1.Nested{"k": children(d - 2)}})}
		}},
		{"struct values in an Any", func(d int) proto.Message {
			return &testingv1.AllTypes{WAny: mustAny(&testingv1.AllTypes{WValue: object(d - 2)})}
		}},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			atLimit := sh.make(limit)
			b, err := c.Marshal(atLimit)
			if err != nil {
				t.Fatalf("depth %d, limit %d: marshal: %v", limit, limit, err)
			}
			got := atLimit.ProtoReflect().Type().New().Interface()
			if err := c.Unmarshal(b, got); err != nil || !proto.Equal(got, atLimit) {
				t.Fatalf("depth %d, limit %d: the codec does not decode its own output: %v", limit, limit, err)
			}
			over := sh.make(limit + 1)
			if _, err := c.Marshal(over); !errors.Is(err, codec.ErrDepth) {
				t.Fatalf("depth %d, limit %d: marshal: got %v, want ErrDepth", limit+1, limit, err)
			}
			got = over.ProtoReflect().Type().New().Interface()
			if err := c.Unmarshal(mustMarshal(t, codec.Msgpack, over), got); !errors.Is(err, codec.ErrDepth) {
				t.Fatalf("depth %d, limit %d: unmarshal: got %v, want ErrDepth", limit+1, limit, err)
			}
		})
	}
	// The tightest case for the skip of an Any's value: a top-level Any,
	// every message reached through a list (two skip levels each), and a
	// list of scalars in the deepest one, which the typed path does not
	// count and skip must not either. None of the generated test types has
	// that shape: a dynamic one, in a resolver of its own, does.
	node := dynamicNode(t)
	nodes := new(protoregistry.Types)
	if err := nodes.RegisterMessage(dynamicpb.NewMessageType(node)); err != nil {
		t.Fatal(err)
	}
	kids, xs := node.Fields().ByName("kids"), node.Fields().ByName("xs")
	chain := func(depth int) proto.Message { // a top-level Any around depth Nodes
		m := dynamicpb.NewMessage(node)
		m.Mutable(xs).List().Append(protoreflect.ValueOfInt32(1))
		for range depth - 1 {
			parent := dynamicpb.NewMessage(node)
			parent.Mutable(kids).List().Append(protoreflect.ValueOfMessage(m))
			m = parent
		}
		return mustAny(m)
	}
	dc := codec.NewMsgpack(&codec.MsgpackOptions{RecursionLimit: limit, Resolver: nodes})
	b, err := dc.Marshal(chain(limit))
	if err != nil {
		t.Fatalf("dynamic chain at the limit: marshal: %v", err)
	}
	if err := dc.Unmarshal(b, new(anypb.Any)); err != nil {
		t.Fatalf("dynamic chain at the limit: the codec does not decode its own output: %v", err)
	}
	over := mustMarshal(t, codec.NewMsgpack(&codec.MsgpackOptions{Resolver: nodes}), chain(limit+1))
	if err := dc.Unmarshal(over, new(anypb.Any)); !errors.Is(err, codec.ErrDepth) {
		t.Fatalf("dynamic chain over the limit: got %v, want ErrDepth", err)
	}

	// Unknown values are skipped, which counts every array and map
	// against twice the limit.
	for _, tc := range []struct {
		arrays int
		ok     bool
	}{{2 * limit, true}, {2*limit + 1, false}} {
		in := append(append(unhex("81"), mp(t, "zzz")...), bytes.Repeat([]byte{0x91}, tc.arrays-1)...)
		in = append(in, 0x90)
		err := c.Unmarshal(in, &testingv1.AllTypes{})
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, codec.ErrDepth) {
			t.Errorf("%d arrays in an unknown value, limit %d: got %v", tc.arrays, limit, err)
		}
	}
}

// nestedAny returns levels google.protobuf.Any values nested in one
// another around a google.protobuf.Empty.
func nestedAny(t testing.TB, levels int) *anypb.Any {
	t.Helper()
	var m proto.Message = &emptypb.Empty{}
	for range levels {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		m = a
	}
	return m.(*anypb.Any)
}

// TestNestedAnyLimit: each nested google.protobuf.Any is decoded and then
// re-encoded with everything inside it, so nesting costs the square of its
// depth. msgpack refuses more than 32 Any levels (ErrDepth) and JSON more
// than 100 levels of nesting, both without decoding the levels they
// refuse: 2,000 levels in about 110 KB took 0.4 s and 96 MB (msgpack),
// 1.5 s and 230 MB (JSON) before the limits, and fail in milliseconds now.
func TestNestedAnyLimit(t *testing.T) {
	// The encoders refuse what the decoders refuse (TestNestedAnyEncode),
	// so the inputs over the limits are made by hand: msgpack maps wrapped
	// around an encoding of 32 levels, JSON from a codec with a higher limit.
	wrapMsgpack := func(in []byte, levels int) []byte {
		for range levels {
			head := append([]byte{0x82}, mp(t, "@type")...)
			head = append(head, mp(t, "type.googleapis.com/google.protobuf.Any")...)
			in = append(append(head, mp(t, "value")...), in...)
		}
		return in
	}
	deepJSON := codec.NewJSON(&codec.JSONOptions{RecursionLimit: 1000})
	for _, tc := range []struct {
		c      codec.Codec
		levels int
		ok     bool
	}{
		{codec.Msgpack, 32, true},
		{codec.Msgpack, 33, false},
		{codec.Msgpack, 500, false},
		{codec.JSON, 32, true},
		{codec.JSON, 500, false},
	} {
		want := nestedAny(t, tc.levels)
		var in []byte
		switch {
		case tc.ok:
			in = mustMarshal(t, tc.c, want)
		case tc.c == codec.Msgpack:
			in = wrapMsgpack(mustMarshal(t, tc.c, nestedAny(t, 32)), tc.levels-32)
		default:
			in = mustMarshal(t, deepJSON, want)
		}
		got := new(anypb.Any)
		err := tc.c.Unmarshal(in, got)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s, %d levels: %v", tc.c.Name(), tc.levels, err)
		case tc.ok && !proto.Equal(got, want):
			t.Errorf("%s, %d levels: decoded a different message", tc.c.Name(), tc.levels)
		case !tc.ok && !errors.Is(err, codec.ErrUnmarshal):
			t.Errorf("%s, %d levels (%d bytes): got %v, want a nesting error", tc.c.Name(), tc.levels, len(in), err)
		case !tc.ok && tc.c == codec.Msgpack && (!errors.Is(err, codec.ErrDepth) || !strings.HasSuffix(err.Error(), "google.protobuf.Any nested more than 32 deep")):
			t.Errorf("%s, %d levels: got %v, want ErrDepth naming the Any limit", tc.c.Name(), tc.levels, err)
		}
	}
}

// TestNestedAnyEncode: a message decoded from protobuf binary holds its
// Any values as bytes, at any depth, for free; writing it as JSON or
// msgpack decodes each level's bytes and writes everything inside, which
// costs the square of the depth (450 KB nested 10,000 deep: 1.9 s and
// 1.7 s before the limits, 34 and 7 ms now). The encoders refuse the
// nesting their decoders refuse, with ErrDepth.
func TestNestedAnyEncode(t *testing.T) {
	deep := func(levels int) *anypb.Any { // as a relay decodes it
		raw, err := proto.Marshal(nestedAny(t, levels))
		if err != nil {
			t.Fatal(err)
		}
		m := new(anypb.Any)
		if err := codec.Proto.Unmarshal(raw, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Building it costs the square of its depth too.
	veryDeep := deep(2000)
	inList := func(a *anypb.Any) proto.Message { // reached through a repeated field
		return &testingv1.AllTypes{RAny: []*anypb.Any{{}, a}}
	}
	for _, tc := range []struct {
		name string
		c    codec.Codec
		m    proto.Message
		ok   bool
	}{
		{"msgpack 32", codec.Msgpack, deep(32), true},
		{"msgpack 33", codec.Msgpack, deep(33), false},
		{"msgpack 2000", codec.Msgpack, veryDeep, false},
		{"json 100", codec.JSON, deep(100), true},
		{"json 101", codec.JSON, deep(101), false},
		{"json 99 in a list", codec.JSON, inList(deep(99)), true}, // decoding counts AllTypes too
		{"json 101 in a list", codec.JSON, inList(deep(101)), false},
		{"msgpack 33 in a list", codec.Msgpack, inList(deep(33)), false},
		{"json 2000", codec.JSON, veryDeep, false},
		{"json limit 1000, 2000", codec.NewJSON(&codec.JSONOptions{RecursionLimit: 1000}), veryDeep, false},
	} {
		out, err := tc.c.Marshal(tc.m)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.ok:
			got := tc.m.ProtoReflect().Type().New().Interface()
			if err := tc.c.Unmarshal(out, got); err != nil || !proto.Equal(got, tc.m) {
				t.Errorf("%s: round trip: %v", tc.name, err)
			}
		case !errors.Is(err, codec.ErrMarshal) || !errors.Is(err, codec.ErrDepth) || !strings.Contains(err.Error(), "google.protobuf.Any nested more than"):
			t.Errorf("%s: got %v, want ErrDepth naming the Any limit", tc.name, err)
		}
	}
}

// anyBoxTypes registers, once, a proto2 message wsrpc.codec.test.AnyBox
// whose only way to hold a google.protobuf.Any is its extension
// wsrpc.codec.test.inner. The types go in the global registry because the
// JSON codec resolves Any type URLs and extensions there.
var anyBoxTypes = sync.OnceValues(func() (protoreflect.MessageType, protoreflect.ExtensionType) {
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("wsrpc/codec/test/anybox.proto"),
		Package:    proto.String("wsrpc.codec.test"),
		Syntax:     proto.String("proto2"),
		Dependency: []string{"google/protobuf/any.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:           proto.String("AnyBox"),
			ExtensionRange: []*descriptorpb.DescriptorProto_ExtensionRange{{Start: proto.Int32(100), End: proto.Int32(200)}},
		}},
		Extension: []*descriptorpb.FieldDescriptorProto{{
			Name:     proto.String("inner"),
			Number:   proto.Int32(100),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
			TypeName: proto.String(".google.protobuf.Any"),
			Extendee: proto.String(".wsrpc.codec.test.AnyBox"),
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	mt := dynamicpb.NewMessageType(fd.Messages().Get(0))
	xt := dynamicpb.NewExtensionType(fd.Extensions().Get(0))
	if err := protoregistry.GlobalTypes.RegisterMessage(mt); err != nil {
		panic(err)
	}
	if err := protoregistry.GlobalTypes.RegisterExtension(xt); err != nil {
		panic(err)
	}
	return mt, xt
})

// dynamicNode returns the descriptor of a message, registered nowhere,
//
//	message Node { repeated Node kids = 1; repeated int32 xs = 2; }
func dynamicNode(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("wsrpc/codec/test/node.proto"),
		Package: proto.String("wsrpc.codec.test"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Node"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("kids"), JsonName: proto.String("kids"), Number: proto.Int32(1),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
				TypeName: proto.String(".wsrpc.codec.test.Node"),
			}, {
				Name: proto.String("xs"), JsonName: proto.String("xs"), Number: proto.Int32(2),
				Label: descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
				Type:  descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(),
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().Get(0)
}

// TestNestedAnyEncodeThroughExtension guards the encoders' Any-nesting
// limit (anynest.go) against extensions: a message whose fields cannot
// reach an Any may still hold one in an extension field. The JSON
// encoder's pre-walk once skipped such messages, so 300 levels of Any,
// each in an extension of the next, were written as JSON its own decoder
// refuses, at the square of their depth.
func TestNestedAnyEncodeThroughExtension(t *testing.T) {
	mt, xt := anyBoxTypes()
	boxed := func(levels int) *anypb.Any { // as a relay decodes it
		var a *anypb.Any
		for i := range levels {
			box := mt.New()
			if i > 0 {
				box.Set(xt.TypeDescriptor(), protoreflect.ValueOfMessage(a.ProtoReflect()))
			}
			var err error
			if a, err = anypb.New(box.Interface()); err != nil {
				t.Fatal(err)
			}
		}
		relay := new(anypb.Any)
		if err := codec.Proto.Unmarshal(mustMarshal(t, codec.Proto, a), relay); err != nil {
			t.Fatal(err)
		}
		return relay
	}
	// The JSON decoder counts every message, AnyBox too, so 100 levels of
	// Any are 200 levels of message: the round trip needs a higher limit.
	deepJSON := codec.NewJSON(&codec.JSONOptions{RecursionLimit: 1000})
	for _, tc := range []struct {
		c      codec.Codec
		levels int
		ok     bool
		dec    codec.Codec // for the round trip
	}{
		{codec.JSON, 100, true, deepJSON},
		{codec.JSON, 101, false, nil},
		{codec.JSON, 300, false, nil},
		{codec.Msgpack, 32, true, codec.Msgpack},
		{codec.Msgpack, 33, false, nil},
	} {
		m := boxed(tc.levels)
		out, err := tc.c.Marshal(m)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s, %d levels: %v", tc.c.Name(), tc.levels, err)
		case tc.ok:
			got := new(anypb.Any)
			if err := tc.dec.Unmarshal(out, got); err != nil || !proto.Equal(got, m) {
				t.Errorf("%s, %d levels: round trip: %v", tc.c.Name(), tc.levels, err)
			}
		case !errors.Is(err, codec.ErrMarshal) || !errors.Is(err, codec.ErrDepth):
			t.Errorf("%s, %d levels: got %v (%d bytes), want ErrDepth", tc.c.Name(), tc.levels, err, len(out))
		}
	}
}

// TestMsgpackHostileLengths: claimed lengths far beyond the input are
// rejected before anything is allocated for them.
func TestMsgpackHostileLengths(t *testing.T) {
	inputs := [][]byte{
		append(append(unhex("81"), mp(t, "fBytes")...), unhex("c6 7fffffff")...),
		append(append(unhex("81"), mp(t, "rNested")...), unhex("dd 7fffffff 80 80")...),
		append(append(unhex("81"), mp(t, "mStringNested")...), unhex("df 7fffffff")...),
		append(append(unhex("81"), mp(t, "zzz")...), unhex("c9 7fffffff 01")...),
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, in := range inputs {
		for range 10 {
			if err := codec.Msgpack.Unmarshal(in, &testingv1.AllTypes{}); !errors.Is(err, codec.ErrTruncated) {
				t.Fatalf("% x: got %v, want ErrTruncated", in, err)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("hostile lengths allocated %d bytes", grew)
	}
}

// TestMsgpackMarshalErrors: messages the mapping cannot carry fail with
// ErrMarshal, never a panic or silent loss.
func TestMsgpackMarshalErrors(t *testing.T) {
	cases := []struct {
		name string
		m    proto.Message
		want error
	}{
		{"timestamp before year 1", &testingv1.AllTypes{WTimestamp: &timestamppb.Timestamp{Seconds: -62135596801}}, codec.ErrRange},
		{"timestamp negative nanos", &testingv1.AllTypes{WTimestamp: &timestamppb.Timestamp{Nanos: -1}}, codec.ErrRange},
		{"duration too long", &testingv1.AllTypes{WDuration: &durationpb.Duration{Seconds: 315576000001}}, codec.ErrRange},
		{"duration mixed signs", &testingv1.AllTypes{WDuration: &durationpb.Duration{Seconds: 1, Nanos: -1}}, codec.ErrRange},
		{"value without kind", &testingv1.AllTypes{WValue: &structpb.Value{}}, codec.ErrRange},
		{"invalid utf-8", &testingv1.AllTypes{RString: []string{"\xff"}}, codec.ErrInvalidUTF8},
		{"invalid utf-8 map key", &testingv1.AllTypes{MStringString: map[string]string{"\xc3": ""}}, codec.ErrInvalidUTF8},
		{"any unknown type", &testingv1.AllTypes{WAny: &anypb.Any{TypeUrl: "example.com/nope"}}, codec.ErrUnknownType},
		// The type URL is a str like any other: once written unchecked,
		// so the codec wrote what its own decoder refuses. The resolver
		// reads only the part after the last '/', which is a known type.
		{"any type url invalid utf-8", &testingv1.AllTypes{WAny: &anypb.Any{TypeUrl: "\xffexample.com/wsrpc.testing.v1.Nested"}}, codec.ErrInvalidUTF8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := codec.Msgpack.MarshalAppend(dst, tc.m)
			if !errors.Is(err, codec.ErrMarshal) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if string(out) != "keep" {
				t.Fatalf("on error MarshalAppend returned %q, want dst", out)
			}
		})
	}
	if _, err := codec.Msgpack.Marshal(&testingv1.AllTypes{WAny: &anypb.Any{TypeUrl: "type.googleapis.com/wsrpc.testing.v1.Nested", Value: []byte{0xff}}}); !errors.Is(err, codec.ErrMarshal) {
		t.Fatalf("any with a corrupt value: got %v", err)
	}
}

func mustMarshal(t testing.TB, c codec.Codec, m proto.Message) []byte {
	t.Helper()
	b, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMsgpackDeepErrorIsCheap: an error at the bottom of a deeply nested
// message names the fields it happened in, but not every one of
// thousands: the path is kept as a list while the error unwinds and
// written out once, shortened in the middle. Each level used to wrap the
// error again (fmt.Errorf), so the cost grew with the square of the
// depth: a 130 KB message nested 10,001 deep took seconds of CPU and gave
// a 310 KB error message — a cheap way to burn a server's CPU.
func TestMsgpackDeepErrorIsCheap(t *testing.T) {
	deep := codec.NewMsgpack(&codec.MsgpackOptions{RecursionLimit: 20000})
	for _, tc := range []struct {
		name  string
		outer string // the path's start
		msg   proto.Message
	}{
		{"singular field chain", "fNested.child", deepNested(10001)},
		{"repeated field chain", "rNested[0].children[0]", &testingv1.AllTypes{RNested: []*testingv1.Nested{func() *testingv1.Nested {
			n := &testingv1.Nested{Id: 1}
			for range 10000 {
				n = &testingv1.Nested{Children: []*testingv1.Nested{n}}
			}
			return n
		}()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := deep.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			err = codec.Msgpack.Unmarshal(b, &testingv1.AllTypes{})
			if !errors.Is(err, codec.ErrDepth) || !errors.Is(err, codec.ErrUnmarshal) {
				t.Fatalf("Unmarshal = %.200v, want ErrDepth", err)
			}
			msg := err.Error()
			if len(msg) > 1024 {
				t.Fatalf("error message of %d bytes: %.300s…", len(msg), msg)
			}
			for _, want := range []string{"field " + tc.outer + ".", "more)", "(wsrpc.testing.v1.Nested."} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
		})
	}
}

// TestMsgpackExtensionOutsideRanges: a "[full.name]" key whose extension
// the Resolver knows for the message's full name, but whose number is
// outside the message's extension ranges, is refused with ErrUnknownType
// (protojson: "message %v cannot be extended by %v"). Such an extension
// comes from another version of the message (a schema registry,
// descriptors loaded at run time), and setting it made protobuf panic.
func TestMsgpackExtensionOutsideRanges(t *testing.T) {
	// Another version of google.protobuf.MethodOptions, with extensions 1
	// to 100 instead of 1000 and up, in a registry of its own, and an
	// extension numbered 50 for it.
	files := new(protoregistry.Files)
	host, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("wsrpc/codec/test/old_descriptor.proto"),
		Package: proto.String("google.protobuf"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name:           proto.String("MethodOptions"),
			ExtensionRange: []*descriptorpb.DescriptorProto_ExtensionRange{{Start: proto.Int32(1), End: proto.Int32(101)}},
		}},
	}, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := files.RegisterFile(host); err != nil {
		t.Fatal(err)
	}
	ext, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:       proto.String("wsrpc/codec/test/old_ext.proto"),
		Package:    proto.String("wsrpc.codec.test"),
		Syntax:     proto.String("proto2"),
		Dependency: []string{"wsrpc/codec/test/old_descriptor.proto"},
		Extension: []*descriptorpb.FieldDescriptorProto{{
			Name:     proto.String("tag"),
			Number:   proto.Int32(50),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			Type:     descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(),
			Extendee: proto.String(".google.protobuf.MethodOptions"),
		}},
	}, files)
	if err != nil {
		t.Fatal(err)
	}
	types := new(protoregistry.Types)
	if err := types.RegisterExtension(dynamicpb.NewExtensionType(ext.Extensions().Get(0))); err != nil {
		t.Fatal(err)
	}
	in := append(append([]byte{0x81}, mp(t, "[wsrpc.codec.test.tag]")...), 0x07)
	for _, c := range []codec.Codec{
		codec.NewMsgpack(&codec.MsgpackOptions{Resolver: types}),
		codec.NewMsgpack(&codec.MsgpackOptions{Resolver: types, RejectUnknown: true}),
	} {
		// The version the extension was built for takes it.
		old := dynamicpb.NewMessage(host.Messages().Get(0))
		if err := c.Unmarshal(in, old); err != nil {
			t.Fatalf("the extension's own MethodOptions: %v", err)
		}
		// The generated version has no range holding 50.
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			err := c.Unmarshal(in, &descriptorpb.MethodOptions{})
			if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, codec.ErrUnknownType) {
				t.Fatalf("got %v, want ErrUnknownType", err)
			}
			if !strings.Contains(err.Error(), "cannot be extended by wsrpc.codec.test.tag") {
				t.Fatalf("error %q does not say why", err)
			}
		}()
	}
}

// TestMsgpackNullValue: a google.protobuf.NullValue field takes nil, int
// 0 or its value name "NULL_VALUE", and nothing else: the encoder writes
// every NullValue as nil, so a number kept on decode (5) read back as 0
// and the codec's own round trip (FuzzMsgpack's property) changed the
// message. Other numbers are ErrRange, as the mapping documents.
func TestMsgpackNullValue(t *testing.T) {
	key := hex.EncodeToString(mp(t, "wNull"))
	for _, tc := range []struct {
		in   string // hex of the value
		want error
	}{
		{"c0", nil},
		{"00", nil},
		{"d2 00000000", nil},
		{hex.EncodeToString(mp(t, "NULL_VALUE")), nil},
		{"05", codec.ErrRange},
		{"ff", codec.ErrRange},
		{"ce 7fffffff", codec.ErrRange},
		{"d3 ffffffff80000000", codec.ErrRange},
		{hex.EncodeToString(mp(t, "NULL")), codec.ErrUnknownType},
	} {
		var m testingv1.AllTypes
		err := codec.Msgpack.Unmarshal(unhex("81"+key+tc.in), &m)
		if tc.want != nil {
			if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v (%v), want %v", tc.in, err, &m, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		var again testingv1.AllTypes
		if err := codec.Msgpack.Unmarshal(mustMarshal(t, codec.Msgpack, &m), &again); err != nil || !proto.Equal(&m, &again) {
			t.Errorf("%s: decodes to {%v}, which round-trips to {%v} (%v)", tc.in, &m, &again, err)
		}
	}
}

// TestMsgpackEmptyContainersNotMade: an empty map or array for a map,
// list, Struct or ListValue field makes no Go map or slice. The decoder
// called Mutable on every one, so each 1-byte 0x80 in a repeated
// google.protobuf.Value became a Value, a Struct and a Go map: 300 bytes
// allocated per input byte, three times JSON's figure on the same
// elements (the bound is in TestDecodeAmplificationAllocs, which runs
// without -race). Presence is unchanged: a Struct field given {} is set.
func TestMsgpackEmptyContainersNotMade(t *testing.T) {
	in := mp(t, map[string]any{
		"wStruct":       map[string]any{},
		"wListValue":    []any{},
		"wValue":        map[string]any{},
		"mStringString": map[string]any{},
		"mStringValue":  map[string]any{"s": map[string]any{}, "l": []any{}},
		"rInt32":        []any{},
		"rValue":        []any{map[string]any{}, []any{}},
	})
	var m testingv1.AllTypes
	if err := codec.Msgpack.Unmarshal(in, &m); err != nil {
		t.Fatal(err)
	}
	want := &testingv1.AllTypes{
		WStruct:      &structpb.Struct{},
		WListValue:   &structpb.ListValue{},
		WValue:       structpb.NewStructValue(&structpb.Struct{}),
		MStringValue: map[string]*structpb.Value{"s": structpb.NewStructValue(&structpb.Struct{}), "l": structpb.NewListValue(&structpb.ListValue{})},
		RValue:       []*structpb.Value{structpb.NewStructValue(&structpb.Struct{}), structpb.NewListValue(&structpb.ListValue{})},
	}
	if !proto.Equal(&m, want) {
		t.Fatalf("decoded differently:\n%s", cmpDiff(want, &m))
	}
	for name, made := range map[string]bool{
		"wStruct":          m.WStruct.Fields != nil,
		"wListValue":       m.WListValue.Values != nil,
		"wValue struct":    m.WValue.GetStructValue().Fields != nil,
		"mStringString":    m.MStringString != nil,
		"mStringValue[s]":  m.MStringValue["s"].GetStructValue().Fields != nil,
		"mStringValue[l]":  m.MStringValue["l"].GetListValue().Values != nil,
		"rInt32":           m.RInt32 != nil,
		"rValue[0] struct": m.RValue[0].GetStructValue().Fields != nil,
		"rValue[1] list":   m.RValue[1].GetListValue().Values != nil,
	} {
		if made {
			t.Errorf("%s: empty in the input, but a Go map or slice was made for it", name)
		}
	}
}
