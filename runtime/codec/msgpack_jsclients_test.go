package codec_test

import (
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// The JavaScript msgpack libraries a Node or browser client uses,
// msgpackr (2.1) and @msgpack/msgpack (3.1), write some values in forms a
// Go or Python encoder never does. The hex inputs below are their output,
// taken from node: msgpackr's pack writes every integer beyond 32 bits as
// a float64, @msgpack/msgpack's encode every integer beyond 2^53; a plain
// JS object has str keys only, "1" and "true" included; msgpackr writes
// undefined as fixext 1 of ext type 0. See docs/codecs.md, "JavaScript
// clients".

// keyHex is the msgpack str of k, in hex.
func keyHex(t *testing.T, k string) string { return hex.EncodeToString(mp(t, k)) }

// TestMsgpackIntegralFloatForInt guards that an integer field (every
// integer kind, enums given as numbers, map keys, repeated elements,
// wrappers) takes a msgpack float whose value is an integer in the
// field's range, as msgpackr and @msgpack/msgpack write large integers,
// and refuses any other float: a fraction or NaN with ErrWrongType (as
// ProtoJSON refuses 1.5 for an int field, protobuf.dev/programming-guides/json),
// what is out of range or infinite with ErrRange.
func TestMsgpackIntegralFloatForInt(t *testing.T) {
	cases := []struct {
		name  string
		field string
		value string // hex
		want  *testingv1.AllTypes
		err   error
	}{
		// msgpackr pack(Date.now()), pack(2**32), pack(-(2**31)-1)
		{"msgpackr Date.now() for int64", "fInt64", "cb 4278f4b333c7b000", &testingv1.AllTypes{FInt64: 1714953600123}, nil},
		{"msgpackr 2^32 for uint64", "fUint64", "cb 41f0000000000000", &testingv1.AllTypes{FUint64: 1 << 32}, nil},
		{"msgpackr -2^31-1 for sint64", "fSint64", "cb c1e0000000200000", &testingv1.AllTypes{FSint64: -(1 << 31) - 1}, nil},
		// @msgpack/msgpack encode(2**53+2), encode(-(2**53)-2)
		{"@msgpack/msgpack 2^53+2 for fixed64", "fFixed64", "cb 4340000000000001", &testingv1.AllTypes{FFixed64: 1<<53 + 2}, nil},
		{"@msgpack/msgpack -2^53-2 for sfixed64", "fSfixed64", "cb c340000000000001", &testingv1.AllTypes{FSfixed64: -(1 << 53) - 2}, nil},
		{"float32 for int32", "fInt32", "ca 42280000", &testingv1.AllTypes{FInt32: 42}, nil},
		{"uint32 max for fixed32", "fFixed32", "cb 41efffffffe00000", &testingv1.AllTypes{FFixed32: math.MaxUint32}, nil},
		{"int32 min for sfixed32", "fSfixed32", "cb c1e0000000000000", &testingv1.AllTypes{FSfixed32: math.MinInt32}, nil},
		{"int64 min", "fInt64", "cb c3e0000000000000", &testingv1.AllTypes{FInt64: math.MinInt64}, nil},
		{"largest double below 2^64 for uint64", "fUint64", "cb 43efffffffffffff", &testingv1.AllTypes{FUint64: 1<<64 - 1<<11}, nil},
		{"-0 for int32", "oInt32", "cb 8000000000000000", &testingv1.AllTypes{OInt32: proto.Int32(0)}, nil},
		{"enum number", "fEnum", "cb 4000000000000000", &testingv1.AllTypes{FEnum: testingv1.Color_COLOR_GREEN}, nil},
		{"repeated element", "rInt64", "92 01 cb 4278f4b333c7b000", &testingv1.AllTypes{RInt64: []int64{1, 1714953600123}}, nil},
		{"map key", "mInt64String", "81 cb 4278f4b333c7b000 a1 78", &testingv1.AllTypes{MInt64String: map[int64]string{1714953600123: "x"}}, nil},
		{"map value", "mFixed64Int64", "81 01 cb c1e0000000200000", &testingv1.AllTypes{MFixed64Int64: map[uint64]int64{1: -(1 << 31) - 1}}, nil},
		{"Int64Value", "wInt64", "cb 4278f4b333c7b000", &testingv1.AllTypes{WInt64: wrapperspb.Int64(1714953600123)}, nil},
		{"UInt32Value", "wUint32", "ca 42280000", &testingv1.AllTypes{WUint32: wrapperspb.UInt32(42)}, nil},

		{"fraction for int64", "fInt64", "cb 3ff8000000000000", nil, codec.ErrWrongType},
		{"fraction for enum", "fEnum", "cb 3ff8000000000000", nil, codec.ErrWrongType},
		{"fraction for map key", "mInt32Int32", "81 cb 3ff8000000000000 01", nil, codec.ErrWrongType},
		{"fraction for Int64Value", "wInt64", "ca 3fc00000", nil, codec.ErrWrongType},
		{"NaN for int32", "fInt32", "cb 7ff8000000000000", nil, codec.ErrWrongType},
		{"+Inf for int64", "fInt64", "cb 7ff0000000000000", nil, codec.ErrRange},
		{"-Inf for int64", "fInt64", "ca ff800000", nil, codec.ErrRange},
		{"2^31 for int32", "fInt32", "cb 41e0000000000000", nil, codec.ErrRange},
		{"2^32 for uint32", "fUint32", "cb 41f0000000000000", nil, codec.ErrRange},
		{"-1 for uint64", "fUint64", "cb bff0000000000000", nil, codec.ErrRange},
		{"2^63 for int64", "fInt64", "cb 43e0000000000000", nil, codec.ErrRange},
		{"below -2^63 for int64", "fInt64", "cb c3e0000000000001", nil, codec.ErrRange},
		{"2^64 for uint64", "fUint64", "cb 43f0000000000000", nil, codec.ErrRange},
		{"2^31 for enum", "fEnum", "cb 41e0000000000000", nil, codec.ErrRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got testingv1.AllTypes
			err := codec.Msgpack.Unmarshal(unhex("81"+keyHex(t, tc.field)+tc.value), &got)
			if tc.err != nil {
				if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, tc.err) {
					t.Fatalf("got %v (%v), want %v", err, &got, tc.err)
				}
				return
			}
			if err != nil || !proto.Equal(&got, tc.want) {
				t.Fatalf("got %v, %v; want %v", &got, err, tc.want)
			}
		})
	}
}

// TestMsgpackStrMapKeys guards that a map field with integer or bool
// keys takes them as str in ProtoJSON's form ("1", "-5", "true"), as a
// JavaScript encoder writes every plain object's keys and as protojson
// reads JSON object keys (protobuf.dev/programming-guides/json, map<K, V>),
// and still takes native ints and bools (older wsrpc peers, other
// languages). A str that does not parse as the key type is ErrWrongType,
// one out of its range ErrRange, and either names the field.
func TestMsgpackStrMapKeys(t *testing.T) {
	cases := []struct {
		name  string
		field string
		value string // hex
		want  *testingv1.AllTypes
		err   error
	}{
		// @msgpack/msgpack encode({mInt32Int32: {1: 2, "-5": 3}})
		{"int32 keys", "mInt32Int32", "82 a1 31 02 a2 2d35 03", &testingv1.AllTypes{MInt32Int32: map[int32]int32{1: 2, -5: 3}}, nil},
		// @msgpack/msgpack encode({mBoolString: {true: "t", false: "f"}})
		{"bool keys", "mBoolString", "82 a4 74727565 a1 74 a5 66616c7365 a1 66", &testingv1.AllTypes{MBoolString: map[bool]string{true: "t", false: "f"}}, nil},
		// msgpackr pack({mInt64String: {"9007199254740993": "x"}}): a map16
		{"int64 key beyond 2^53", "mInt64String", "de 0001 b0 39303037313939323534373430393933 a1 78", &testingv1.AllTypes{MInt64String: map[int64]string{1<<53 + 1: "x"}}, nil},
		{"uint64 max key", "mUint64Double", "81" + keyHex(t, "18446744073709551615") + "01", &testingv1.AllTypes{MUint64Double: map[uint64]float64{math.MaxUint64: 1}}, nil},
		{"int64 min key", "mSfixed64Nested", "81" + keyHex(t, "-9223372036854775808") + "80", &testingv1.AllTypes{MSfixed64Nested: map[int64]*testingv1.Nested{math.MinInt64: {}}}, nil},
		{"sint32 key", "mSint32Enum", "81 a2 2d31 02", &testingv1.AllTypes{MSint32Enum: map[int32]testingv1.Color{-1: 2}}, nil},
		{"fixed32 key", "mFixed32Float", "81 aa 34323934393637323935 00", &testingv1.AllTypes{MFixed32Float: map[uint32]float32{math.MaxUint32: 0}}, nil},
		{"native keys still read", "mInt32Int32", "82 01 02 ff 03", &testingv1.AllTypes{MInt32Int32: map[int32]int32{1: 2, -1: 3}}, nil},
		{"native bool keys still read", "mBoolString", "81 c3 a1 74", &testingv1.AllTypes{MBoolString: map[bool]string{true: "t"}}, nil},

		{"not a number", "mInt32Int32", "81 a1 78 01", nil, codec.ErrWrongType},
		{"empty", "mInt32Int32", "81 a0 01", nil, codec.ErrWrongType},
		{"fraction", "mInt64String", "81 a3 312e35 a0", nil, codec.ErrWrongType},
		{"exponent", "mInt64String", "81 a3 316533 a0", nil, codec.ErrWrongType},
		{"space", "mInt32Int32", "81 a2 2031 01", nil, codec.ErrWrongType},
		{"bool key not lowercase", "mBoolString", "81 a4 54727565 a0", nil, codec.ErrWrongType},
		{"bool key as number", "mBoolString", "81 a1 31 a0", nil, codec.ErrWrongType},
		{"int32 overflow", "mInt32Int32", "81" + keyHex(t, "2147483648") + "01", nil, codec.ErrRange},
		{"int64 overflow", "mInt64String", "81" + keyHex(t, "9223372036854775808") + "a0", nil, codec.ErrRange},
		{"negative uint32", "mUint32Bytes", "81 a2 2d31 c4 00", nil, codec.ErrRange},
		// protojson refuses "-0" for an unsigned key (strconv.ParseUint);
		// it was taken as 0 here.
		{"minus zero uint32", "mUint32Bytes", "81 a2 2d30 c4 00", nil, codec.ErrWrongType},
		{"minus zeros fixed64", "mFixed64Int64", "81 a3 2d3030 01", nil, codec.ErrWrongType},
		{"uint64 overflow", "mUint64Double", "81" + keyHex(t, "18446744073709551616") + "01", nil, codec.ErrRange},
		{"same key as str and int", "mInt32Int32", "82 a1 31 02 01 03", nil, codec.ErrMalformed},
		{"invalid UTF-8", "mInt32Int32", "81 a2 c328 01", nil, codec.ErrInvalidUTF8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got testingv1.AllTypes
			err := codec.Msgpack.Unmarshal(unhex("81"+keyHex(t, tc.field)+tc.value), &got)
			if tc.err != nil {
				if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, tc.err) {
					t.Fatalf("got %v (%v), want %v", err, &got, tc.err)
				}
				if !strings.Contains(err.Error(), "field "+tc.field+" ") {
					t.Fatalf("error %q does not name the field %s", err, tc.field)
				}
				return
			}
			if err != nil || !proto.Equal(&got, tc.want) {
				t.Fatalf("got %v, %v; want %v", &got, err, tc.want)
			}
		})
	}
}

// TestMsgpackMapKeysWrittenAsStr guards that every map key is written as
// a msgpack str, integer and bool keys in ProtoJSON's form ("-1",
// "true"), so that a generic decoder reads every map as a string-keyed
// object: @msgpack/msgpack throws on a bool key, and with useBigInt64 on
// an integer key beyond 32 bits, losing the whole message. The keys were
// native ints and bools before.
func TestMsgpackMapKeysWrittenAsStr(t *testing.T) {
	m := &testingv1.AllTypes{
		MInt32Int32:     map[int32]int32{-1: 1, 2: 2},
		MInt64String:    map[int64]string{1 << 40: "x"},
		MUint32Bytes:    map[uint32][]byte{7: {7}},
		MUint64Double:   map[uint64]float64{math.MaxUint64: 1},
		MSint32Enum:     map[int32]testingv1.Color{3: 2},
		MSint64Bool:     map[int64]bool{math.MinInt64: true},
		MFixed32Float:   map[uint32]float32{0: 1},
		MFixed64Int64:   map[uint64]int64{5: 5},
		MSfixed32Uint32: map[int32]uint32{-9: 9},
		MSfixed64Nested: map[int64]*testingv1.Nested{-1 << 40: {Id: 1}},
		MBoolString:     map[bool]string{true: "t", false: "f"},
	}
	for _, c := range []codec.Codec{codec.Msgpack, deterministic} {
		b := mustMarshal(t, c, m)
		// The msgpack library's generic decoder, like @msgpack/msgpack,
		// refuses a map whose keys are not all str.
		var got map[string]any
		if err := msgpack.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{
			"mInt32Int32": {"-1", "2"}, "mInt64String": {"1099511627776"}, "mUint32Bytes": {"7"},
			"mUint64Double": {"18446744073709551615"}, "mSint32Enum": {"3"}, "mSint64Bool": {"-9223372036854775808"},
			"mFixed32Float": {"0"}, "mFixed64Int64": {"5"}, "mSfixed32Uint32": {"-9"},
			"mSfixed64Nested": {"-1099511627776"}, "mBoolString": {"false", "true"},
		}
		for field, keys := range want {
			mp, ok := got[field].(map[string]any)
			if !ok {
				t.Errorf("%s: %T, want a map with str keys", field, got[field])
				continue
			}
			for _, k := range keys {
				if _, ok := mp[k]; !ok {
					t.Errorf("%s: no key %q in %v", field, k, mp)
				}
			}
		}
		var back testingv1.AllTypes
		if err := c.Unmarshal(b, &back); err != nil || !proto.Equal(&back, m) {
			t.Fatalf("round trip: %v\n%s", err, cmpDiff(m, &back))
		}
	}
}

// TestMsgpackUndefinedIsNil guards that msgpackr's undefined, fixext 1 of
// ext type 0 with the one data byte 0 (d4 00 00; ext type 0 is
// application-defined in the msgpack spec, "Extension types"), is read as
// nil wherever a nil is: a field given it is left unset, a Value or a
// NullValue takes null. Any other ext type 0 payload stays an error.
func TestMsgpackUndefinedIsNil(t *testing.T) {
	nullList := &structpb.ListValue{Values: []*structpb.Value{structpb.NewNullValue(), structpb.NewNumberValue(1)}}
	cases := []struct {
		name string
		in   string // hex
		want *testingv1.AllTypes
		err  error
	}{
		// msgpackr pack({fString: undefined, fInt32: 3})
		{"scalar field", "de 0002" + keyHex(t, "fString") + "d40000" + keyHex(t, "fInt32") + "03", &testingv1.AllTypes{FInt32: 3}, nil},
		{"optional field", "81" + keyHex(t, "oInt32") + "d40000", &testingv1.AllTypes{}, nil},
		{"message field", "81" + keyHex(t, "fNested") + "d40000", &testingv1.AllTypes{}, nil},
		{"repeated field", "81" + keyHex(t, "rInt32") + "d40000", &testingv1.AllTypes{}, nil},
		{"map field", "81" + keyHex(t, "mStringString") + "d40000", &testingv1.AllTypes{}, nil},
		{"wrapper field", "81" + keyHex(t, "wInt64") + "d40000", &testingv1.AllTypes{}, nil},
		{"timestamp field", "81" + keyHex(t, "wTimestamp") + "d40000", &testingv1.AllTypes{}, nil},
		// msgpackr pack({cString: undefined, cInt64: 5})
		{"other oneof case", "82" + keyHex(t, "cString") + "d40000" + keyHex(t, "cInt64") + "05", &testingv1.AllTypes{Choice: &testingv1.AllTypes_CInt64{CInt64: 5}}, nil},
		{"Value field", "81" + keyHex(t, "wValue") + "d40000", &testingv1.AllTypes{WValue: structpb.NewNullValue()}, nil},
		{"NullValue field", "81" + keyHex(t, "wNull") + "d40000", &testingv1.AllTypes{}, nil},
		{"in a ListValue", "81" + keyHex(t, "wListValue") + "92 d40000 01", &testingv1.AllTypes{WListValue: nullList}, nil},
		{"unknown key", "81" + keyHex(t, "zzz") + "d40000", &testingv1.AllTypes{}, nil},

		{"other data byte", "81" + keyHex(t, "fString") + "d40001", nil, codec.ErrWrongType},
		{"other ext type", "81" + keyHex(t, "fString") + "d40100", nil, codec.ErrWrongType},
		{"longer ext 0", "81" + keyHex(t, "fString") + "d5000000", nil, codec.ErrWrongType},
		{"other data byte for a Value", "81" + keyHex(t, "wValue") + "d40001", nil, codec.ErrWrongType},
		{"list element", "81" + keyHex(t, "rInt32") + "91 d40000", nil, codec.ErrWrongType},
		{"top level", "d40000", nil, codec.ErrWrongType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got testingv1.AllTypes
			err := codec.Msgpack.Unmarshal(unhex(tc.in), &got)
			if tc.err != nil {
				if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, tc.err) {
					t.Fatalf("got %v (%v), want %v", err, &got, tc.err)
				}
				return
			}
			if err != nil || !proto.Equal(&got, tc.want) {
				t.Fatalf("got %v, %v; want %v", &got, err, tc.want)
			}
		})
	}
}

// TestMsgpackErrorText guards the text of decode errors, which a
// JavaScript client often sees only as a WebSocket close reason, cut to
// 123 bytes (RFC 6455 section 5.5): it leads with the codec and where
// the problem is, as a path of JSON names with the innermost field's
// full name, then what is wrong; no sentinel's text comes first, and
// each sentinel stays reachable with errors.Is. Each error used to read
// "codec: unmarshal failed: msgpack: wsrpc.testing.v1.EchoRequest.seq:
// codec: wrong type for field: msgpack float where int expected", whose
// last part the close reason cut off.
func TestMsgpackErrorText(t *testing.T) {
	cases := []struct {
		name string
		m    proto.Message
		in   string // hex
		want string
		is   error
	}{
		// @msgpack/msgpack encode({seq: 1.5})
		{"float for int64", &testingv1.EchoRequest{}, "81 a3 736571 cb 3ff8000000000000",
			"msgpack: field seq (wsrpc.testing.v1.EchoRequest.seq): float where int64 expected: 1.5", codec.ErrWrongType},
		{"nested", &testingv1.AllTypes{}, "81" + keyHex(t, "fNested") + "81 a5 6368696c64 81 a2 6964 a1 78",
			"msgpack: field fNested.child.id (wsrpc.testing.v1.Nested.id): str where int32 expected", codec.ErrWrongType},
		{"list element", &testingv1.AllTypes{}, "81" + keyHex(t, "rNested") + "92 80 81 a2 6964 ce 80000000",
			"msgpack: field rNested[1].id (wsrpc.testing.v1.Nested.id): 2147483648 overflows int32", codec.ErrRange},
		{"scalar list element", &testingv1.AllTypes{}, "81" + keyHex(t, "rString") + "92 a0 c0",
			"msgpack: field rString[1] (wsrpc.testing.v1.AllTypes.r_string): nil where string expected", codec.ErrWrongType},
		{"map key", &testingv1.AllTypes{}, "81" + keyHex(t, "mInt32Int32") + "81 a1 78 01",
			`msgpack: field mInt32Int32 (wsrpc.testing.v1.AllTypes.m_int32_int32): map key: str "x" where int32 expected`, codec.ErrWrongType},
		{"map value", &testingv1.AllTypes{}, "81" + keyHex(t, "mStringNested") + "81 a1 6b 81 a4 6e616d65 01",
			`msgpack: field mStringNested["k"].name (wsrpc.testing.v1.Nested.name): int where string expected`, codec.ErrWrongType},
		{"truncated", &testingv1.AllTypes{}, "81" + keyHex(t, "fInt64") + "d3 0000",
			"msgpack: field fInt64 (wsrpc.testing.v1.AllTypes.f_int64): unexpected end of input", codec.ErrTruncated},
		{"top level", &testingv1.AllTypes{}, "80 00", "msgpack: trailing data at byte 1 of 2", codec.ErrTrailingData},
		{"undefined in a list", &testingv1.AllTypes{}, "81" + keyHex(t, "rInt32") + "91 d40001",
			"msgpack: field rInt32[0] (wsrpc.testing.v1.AllTypes.r_int32): ext where int32 expected", codec.ErrWrongType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := codec.Msgpack.Unmarshal(unhex(tc.in), tc.m)
			if !errors.Is(err, codec.ErrUnmarshal) || !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			if err.Error() != tc.want {
				t.Fatalf("error text\n%q, want\n%q", err, tc.want)
			}
		})
	}

	// The JSON and proto codecs lead with their names too, and protobuf's
	// own text follows without prefixes of ours.
	for _, tc := range []struct {
		c      codec.Codec
		in     string
		prefix string
	}{
		{codec.JSON, `{"fInt32":1.5}`, "json: "},
		{codec.Proto, "\xff", "proto: "},
	} {
		err := tc.c.Unmarshal([]byte(tc.in), &testingv1.AllTypes{})
		if !errors.Is(err, codec.ErrUnmarshal) || !strings.HasPrefix(err.Error(), tc.prefix) || strings.Contains(err.Error(), "codec:") || strings.Count(err.Error(), "proto:") > 1 {
			t.Errorf("%s: error text %q, want it to start with %q and no sentinel's text", tc.c.Name(), err, tc.prefix)
		}
	}
}
