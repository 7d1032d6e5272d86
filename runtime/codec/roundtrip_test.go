package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	wsrpcv1 "github.com/wsrpc/wsrpc/gen/wsrpc/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// allCodecs are the codecs every round-trip property must hold for: the
// defaults and the non-default option sets.
var allCodecs = []struct {
	name string
	c    codec.Codec
}{
	{"proto", codec.Proto},
	{"proto-deterministic", codec.NewProto(&codec.ProtoOptions{Deterministic: true})},
	{"json", codec.JSON},
	{"json-options", codec.NewJSON(&codec.JSONOptions{UseProtoNames: true, UseEnumNumbers: true})},
	{"msgpack", codec.Msgpack},
	{"msgpack-deterministic", codec.NewMsgpack(&codec.MsgpackOptions{Deterministic: true, RejectUnknown: true})},
}

// roundTrip checks decode(encode(m)) == m and that MarshalAppend extends a
// non-empty prefix with exactly what Marshal returns.
func roundTrip(t *testing.T, c codec.Codec, m proto.Message) {
	t.Helper()
	b, err := c.Marshal(m)
	if err != nil {
		t.Fatalf("%s: Marshal: %v", c.Name(), err)
	}
	got := m.ProtoReflect().Type().New().Interface()
	if err := c.Unmarshal(b, got); err != nil {
		t.Fatalf("%s: Unmarshal: %v\ninput: %x", c.Name(), err, b)
	}
	if !proto.Equal(m, got) {
		t.Fatalf("%s: round trip differs (want, got):\n%s", c.Name(), cmpDiff(m, got))
	}
	prefix := []byte("prefix")
	out, err := c.MarshalAppend(prefix, m)
	if err != nil {
		t.Fatalf("%s: MarshalAppend: %v", c.Name(), err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("%s: MarshalAppend lost the prefix", c.Name())
	}
	again := m.ProtoReflect().Type().New().Interface()
	if err := c.Unmarshal(out[len(prefix):], again); err != nil || !proto.Equal(m, again) {
		t.Fatalf("%s: MarshalAppend output does not decode to the message: %v", c.Name(), err)
	}
}

func cmpDiff(want, got proto.Message) string {
	return fmt.Sprintf("want: %v\ngot:  %v", prototext.Format(want), prototext.Format(got))
}

// TestRoundTripRandom is the property test: for 80 seeded random AllTypes
// values (every scalar kind, enums with unknown numbers, repeated, maps of
// every key kind, oneofs, nested and well-known types), every codec decodes
// what it encodes to an equal message.
func TestRoundTripRandom(t *testing.T) {
	iterations := 80
	if testing.Short() {
		iterations = 20
	}
	for _, tc := range allCodecs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(iterations) {
				m := newFiller(seed).allTypes()
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { roundTrip(t, tc.c, m) })
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestRoundTripEdges pins the boundary values each mapping must carry.
func TestRoundTripEdges(t *testing.T) {
	nan := math.NaN()
	cases := map[string]proto.Message{
		"empty": &testingv1.AllTypes{},
		"int limits": &testingv1.AllTypes{
			FInt32: math.MinInt32, FInt64: math.MinInt64, FUint32: math.MaxUint32, FUint64: math.MaxUint64,
			FSint32: math.MaxInt32, FSint64: math.MaxInt64, FFixed32: math.MaxUint32, FFixed64: math.MaxUint64,
			FSfixed32: math.MinInt32, FSfixed64: math.MinInt64,
			RInt64:  []int64{math.MinInt64, -1, 0, 1, math.MaxInt64, -32, -33, 127, 128, 255, 256, 65535, 65536},
			RUint64: []uint64{0, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64},
		},
		"float specials": &testingv1.AllTypes{
			FFloat: float32(math.Inf(-1)), FDouble: nan,
			RFloat:  []float32{float32(nan), float32(math.Inf(1)), math.MaxFloat32, math.SmallestNonzeroFloat32, -0.0},
			RDouble: []float64{nan, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1)},
			ODouble: proto.Float64(0), OFloat: proto.Float32(0),
		},
		"explicit zero presence": &testingv1.AllTypes{
			OInt32: proto.Int32(0), OInt64: proto.Int64(0), OUint64: proto.Uint64(0), OBool: proto.Bool(false),
			OString: proto.String(""), OBytes: []byte{}, OEnum: testingv1.Color_COLOR_UNSPECIFIED.Enum(),
		},
		"empty elements": &testingv1.AllTypes{
			RString: []string{"", ""}, RBytes: [][]byte{{}, nil, {0}},
			RNested:         []*testingv1.Nested{{}, {Id: 1}},
			MStringString:   map[string]string{"": ""},
			MUint32Bytes:    map[uint32][]byte{0: {}, 1: {1}},
			MStringNested:   map[string]*testingv1.Nested{"": {}},
			MBoolString:     map[bool]string{true: "t", false: ""},
			MSint32Enum:     map[int32]testingv1.Color{-1: testingv1.Color_COLOR_BLUE, 0: 99},
			MStringValue:    map[string]*structpb.Value{"null": structpb.NewNullValue()},
			MFixed32Float:   map[uint32]float32{math.MaxUint32: float32(math.Inf(1))},
			MSfixed64Nested: map[int64]*testingv1.Nested{math.MinInt64: {Name: "min"}},
		},
		"unicode":         &testingv1.AllTypes{FString: "\x00\u00e9\u6f22\U0001f600\U0010ffff", RString: []string{strings.Repeat("€", 30000)}},
		"oneof empty":     &testingv1.AllTypes{Choice: &testingv1.AllTypes_CEmpty{CEmpty: &emptypb.Empty{}}},
		"oneof zero":      &testingv1.AllTypes{Choice: &testingv1.AllTypes_CInt64{CInt64: 0}},
		"oneof nested":    &testingv1.AllTypes{Choice: &testingv1.AllTypes_CNested{CNested: &testingv1.Nested{}}},
		"oneof timestamp": &testingv1.AllTypes{Choice: &testingv1.AllTypes_CTimestamp{CTimestamp: &timestamppb.Timestamp{}}},
		"timestamps": &testingv1.AllTypes{
			WTimestamp: &timestamppb.Timestamp{Seconds: -62135596800},
			RTimestamp: []*timestamppb.Timestamp{
				{}, {Seconds: math.MaxUint32}, {Seconds: math.MaxUint32 + 1}, {Seconds: 1<<34 - 1, Nanos: 999999999},
				{Seconds: 1 << 34}, {Seconds: -1, Nanos: 1}, {Seconds: 253402300799, Nanos: 999999999},
			},
		},
		"durations":         &testingv1.AllTypes{WDuration: &durationpb.Duration{Seconds: -315576000000, Nanos: -999999999}},
		"duration fraction": &testingv1.AllTypes{WDuration: &durationpb.Duration{Nanos: -1000}},
		"wrappers zero": &testingv1.AllTypes{
			WDouble: wrapperspb.Double(0), WFloat: wrapperspb.Float(0), WInt64: wrapperspb.Int64(0),
			WUint64: wrapperspb.UInt64(0), WInt32: wrapperspb.Int32(0), WUint32: wrapperspb.UInt32(0),
			WBool: wrapperspb.Bool(false), WString: wrapperspb.String(""), WBytes: wrapperspb.Bytes(nil),
		},
		"wrappers max": &testingv1.AllTypes{
			WDouble: wrapperspb.Double(math.MaxFloat64), WFloat: wrapperspb.Float(math.MaxFloat32),
			WInt64: wrapperspb.Int64(math.MinInt64), WUint64: wrapperspb.UInt64(math.MaxUint64),
			WInt32: wrapperspb.Int32(math.MinInt32), WUint32: wrapperspb.UInt32(math.MaxUint32),
			WBool: wrapperspb.Bool(true), WString: wrapperspb.String("s"), WBytes: wrapperspb.Bytes([]byte{0xff}),
		},
		"struct": &testingv1.AllTypes{
			WStruct:    &structpb.Struct{Fields: map[string]*structpb.Value{}},
			WValue:     structpb.NewListValue(&structpb.ListValue{}),
			WListValue: &structpb.ListValue{Values: []*structpb.Value{structpb.NewNullValue(), structpb.NewNumberValue(-0.5)}},
			RValue:     []*structpb.Value{structpb.NewNullValue(), structpb.NewStructValue(&structpb.Struct{})},
		},
		"value null": &testingv1.AllTypes{WValue: structpb.NewNullValue()},
		"any nested any": &testingv1.AllTypes{
			WAny: mustAny(mustAny(&testingv1.Nested{Id: 7, Child: &testingv1.Nested{Name: "c"}})),
			RAny: []*anypb.Any{{}, mustAny(&emptypb.Empty{}), mustAny(&durationpb.Duration{Seconds: 1})},
		},
		"empty and mask":          &testingv1.AllTypes{WEmpty: &emptypb.Empty{}, WFieldMask: &fieldmaskpb.FieldMask{}},
		"deep nesting":            deepNested(50),
		"proto2 with extension":   methodOptions(),
		"wkt top level timestamp": &timestamppb.Timestamp{Seconds: 1, Nanos: 2},
		"wkt top level value":     structpb.NewStringValue("x"),
		"wkt top level empty any": &anypb.Any{},
	}
	for name, m := range cases {
		for _, tc := range allCodecs {
			t.Run(name+"/"+tc.name, func(t *testing.T) { roundTrip(t, tc.c, m) })
		}
	}
}

func deepNested(depth int) *testingv1.AllTypes {
	n := &testingv1.Nested{Id: int32(depth)}
	for i := depth - 1; i > 0; i-- {
		n = &testingv1.Nested{Id: int32(i), Child: n}
	}
	return &testingv1.AllTypes{FNested: n}
}

// TestMsgpackOnlyValues covers values the msgpack mapping carries but
// ProtoJSON cannot: non-finite numbers in a google.protobuf.Value.
func TestMsgpackOnlyValues(t *testing.T) {
	m := &testingv1.AllTypes{
		WValue:     structpb.NewNumberValue(math.NaN()),
		WListValue: &structpb.ListValue{Values: []*structpb.Value{structpb.NewNumberValue(math.Inf(-1))}},
	}
	roundTrip(t, codec.Msgpack, m)
	if _, err := codec.JSON.Marshal(m); err == nil {
		t.Fatal("json: want an error for a NaN Value; if ProtoJSON now allows it, move this case to TestRoundTripEdges")
	}
}

// TestMarshalNilWellKnown: a typed nil message encodes as its type's
// empty message in every codec, well-known types included, and so
// decodes again to the empty message. msgpack wrote every nil as an
// empty map, which is no Timestamp, Duration, wrapper, ListValue or
// FieldMask to its own decoder, and a Value holding an empty Struct. An
// empty Value has no kind and encodes in no self-describing codec: its
// nil fails the same way.
func TestMarshalNilWellKnown(t *testing.T) {
	for _, nm := range []proto.Message{
		(*timestamppb.Timestamp)(nil), (*durationpb.Duration)(nil),
		(*wrapperspb.Int32Value)(nil), (*wrapperspb.StringValue)(nil), (*wrapperspb.BoolValue)(nil),
		(*structpb.ListValue)(nil), (*structpb.Struct)(nil), (*structpb.Value)(nil),
		(*fieldmaskpb.FieldMask)(nil), (*anypb.Any)(nil), (*emptypb.Empty)(nil),
		(*testingv1.AllTypes)(nil),
	} {
		empty := nm.ProtoReflect().Type().New().Interface()
		for _, c := range []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack} {
			got, err := c.Marshal(nm)
			want, wantErr := c.Marshal(empty)
			if (err == nil) != (wantErr == nil) {
				t.Errorf("%s, nil %T: got %q, %v; the empty message gives %q, %v", c.Name(), nm, got, err, want, wantErr)
				continue
			}
			if err != nil {
				if !errors.Is(err, codec.ErrMarshal) {
					t.Errorf("%s, nil %T: error does not wrap ErrMarshal: %v", c.Name(), nm, err)
				}
				continue
			}
			if c.Binary() && !bytes.Equal(got, want) { // JSON's spacing varies
				t.Errorf("%s, nil %T: got % x, the empty message gives % x", c.Name(), nm, got, want)
			}
			dec := nm.ProtoReflect().Type().New().Interface()
			if err := c.Unmarshal(got, dec); err != nil || !proto.Equal(dec, empty) {
				t.Errorf("%s, nil %T: %q decodes to %v, %v", c.Name(), nm, got, dec, err)
			}
		}
	}
}

// TestFloatFieldFromDouble: a float field decoded from a double takes
// what rounds to a finite float32 and refuses only what rounds to
// infinity, in msgpack (a float64) as in JSON. protojson writes
// MaxFloat32 as 3.4028235e+38, a double a hair above it: a client that
// parsed that JSON and sent the number back as a msgpack float64 was
// refused, because the decoder compared the unrounded value with
// MaxFloat32.
func TestFloatFieldFromDouble(t *testing.T) {
	// Halfway between MaxFloat32 and 2^128: rounds to even, which is
	// infinity (MaxFloat32's mantissa is odd).
	half := math.Ldexp(1, 128) - math.Ldexp(1, 103)
	for _, tc := range []struct {
		in   float64
		want float32
		ok   bool
	}{
		{3.4028235e+38, math.MaxFloat32, true},
		{-3.4028235e+38, -math.MaxFloat32, true},
		{math.Nextafter(half, 0), math.MaxFloat32, true},
		{half, 0, false},
		{-half, 0, false},
		{math.MaxFloat64, 0, false},
		{math.Inf(1), float32(math.Inf(1)), true}, // msgpack keeps ±Inf; JSON spells it "Infinity"
		{1e-50, 0, true},                          // underflow rounds to zero, as in JSON
	} {
		var viaMsgpack testingv1.AllTypes
		err := codec.Msgpack.Unmarshal(mp(t, map[string]any{"fFloat": tc.in}), &viaMsgpack)
		switch {
		case tc.ok && (err != nil || viaMsgpack.GetFFloat() != tc.want):
			t.Errorf("msgpack %v: got %v, %v; want %v", tc.in, viaMsgpack.GetFFloat(), err, tc.want)
		case !tc.ok && !errors.Is(err, codec.ErrRange):
			t.Errorf("msgpack %v: got %v, %v; want ErrRange", tc.in, viaMsgpack.GetFFloat(), err)
		}
		if math.IsInf(tc.in, 0) {
			continue
		}
		// The exact decimal of the double: JSON parses a float field's
		// text straight to float32, and the shortest form of half (%v)
		// is below half.
		var viaJSON testingv1.AllTypes
		err = codec.JSON.Unmarshal(fmt.Appendf(nil, `{"fFloat":%.60e}`, tc.in), &viaJSON)
		if (err == nil) != tc.ok || viaJSON.GetFFloat() != tc.want {
			t.Errorf("json %v: got %v, %v; the codecs disagree", tc.in, viaJSON.GetFFloat(), err)
		}
	}
}

// TestUnknownFields: the proto codec keeps fields the receiving type does
// not know and writes them back out; the JSON and msgpack codecs skip them
// by default (and fail with RejectUnknown) and still decode the rest.
func TestUnknownFields(t *testing.T) {
	full := &testingv1.Nested{Id: 5, Name: "n", Color: testingv1.Color_COLOR_GREEN, Child: &testingv1.Nested{Id: 1}}
	strict := []codec.Codec{
		codec.NewJSON(&codec.JSONOptions{RejectUnknown: true}),
		codec.NewMsgpack(&codec.MsgpackOptions{RejectUnknown: true}),
	}
	for _, c := range []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack} {
		t.Run(c.Name(), func(t *testing.T) {
			b, err := c.Marshal(full)
			if err != nil {
				t.Fatal(err)
			}
			// Small has different names, and numbers 1, 5 of other types.
			var small testingv1.Small
			if err := c.Unmarshal(b, &small); err != nil {
				t.Fatalf("unknown fields must not fail decoding: %v", err)
			}
			if c.Name() != codec.NameProto {
				if !proto.Equal(&small, &testingv1.Small{}) {
					t.Fatalf("unknown keys leaked into %v", &small)
				}
				return
			}
			b, err = c.Marshal(&small)
			if err != nil {
				t.Fatal(err)
			}
			var back testingv1.Nested
			if err := c.Unmarshal(b, &back); err != nil || !proto.Equal(&back, full) {
				t.Fatalf("proto must keep unknown fields: got %v, %v", &back, err)
			}
		})
	}
	for _, c := range strict {
		t.Run(c.Name()+"-reject", func(t *testing.T) {
			b, err := c.Marshal(full)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Unmarshal(b, &testingv1.Small{}); !errors.Is(err, codec.ErrUnmarshal) {
				t.Fatalf("RejectUnknown: got %v, want ErrUnmarshal", err)
			}
		})
	}
}

// TestJSONUnknownEnumNames pins what JSONOptions.RejectUnknown documents:
// like an unknown field name, an unknown enum value name is discarded by
// default (protojson's DiscardUnknown covers both: a singular field is
// left unset, a repeated element or map entry disappears) and fails
// decoding with RejectUnknown. msgpack refuses one either way
// (ErrUnknownType, TestMsgpackBadInput).
func TestJSONUnknownEnumNames(t *testing.T) {
	in := `{"fInt32":1,"fEnum":"COLOR_PURPLE","rEnum":["COLOR_RED","COLOR_PURPLE","COLOR_BLUE"],` +
		`"mSint32Enum":{"1":"COLOR_PURPLE","2":"COLOR_GREEN"}}`
	var got testingv1.AllTypes
	if err := codec.JSON.Unmarshal([]byte(in), &got); err != nil {
		t.Fatalf("default options: %v", err)
	}
	want := &testingv1.AllTypes{
		FInt32:      1,
		REnum:       []testingv1.Color{testingv1.Color_COLOR_RED, testingv1.Color_COLOR_BLUE},
		MSint32Enum: map[int32]testingv1.Color{2: testingv1.Color_COLOR_GREEN},
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("default options:\n%s", cmpDiff(want, &got))
	}
	strict := codec.NewJSON(&codec.JSONOptions{RejectUnknown: true})
	for _, in := range []string{
		`{"fEnum":"COLOR_PURPLE"}`,
		`{"rEnum":["COLOR_RED","COLOR_PURPLE"]}`,
		`{"mSint32Enum":{"1":"COLOR_PURPLE"}}`,
	} {
		if err := strict.Unmarshal([]byte(in), &testingv1.AllTypes{}); !errors.Is(err, codec.ErrUnmarshal) {
			t.Errorf("RejectUnknown, %s: got %v, want an error", in, err)
		}
	}
}

// TestJSONEmitUnpopulated: every field is written, and the result decodes
// to the same message except that an unset google.protobuf.Value field
// comes back holding null_value (ProtoJSON writes both as null).
func TestJSONEmitUnpopulated(t *testing.T) {
	c := codec.NewJSON(&codec.JSONOptions{EmitUnpopulated: true})
	m := newFiller(7).allTypes()
	m.WValue = nil
	b, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"fInt32":`, `"rNested":`, `"mStringString":`, `"wValue":null`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("output lacks %s", key)
		}
	}
	var got testingv1.AllTypes
	if err := c.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	m.WValue = structpb.NewNullValue()
	if !proto.Equal(m, &got) {
		t.Fatalf("round trip differs:\n%s", cmpDiff(m, &got))
	}
}

// methodOptions is a proto2 message carrying the wsrpc.v1 extension, as
// protoc-gen-wsrpc will read it: extensions travel as "[full.name]" keys.
func methodOptions() *descriptorpb.MethodOptions {
	m := &descriptorpb.MethodOptions{Deprecated: proto.Bool(false), IdempotencyLevel: descriptorpb.MethodOptions_NO_SIDE_EFFECTS.Enum()}
	proto.SetExtension(m, wsrpcv1.E_Method, &wsrpcv1.MethodOptions{
		Transport: &wsrpcv1.MethodOptions_Sse{Sse: &wsrpcv1.SSERule{Path: "/rooms/watch"}},
	})
	return m
}

func TestMsgpackExtensionKey(t *testing.T) {
	b := mustMarshal(t, codec.Msgpack, methodOptions())
	if !bytes.Contains(b, []byte("[wsrpc.v1.method]")) {
		t.Fatalf("no extension key in % x", b)
	}
	// Extensions are not in the message's field list: a key given twice
	// is caught by number.
	twice := append(append(append(append([]byte{0x82}, mp(t, "[wsrpc.v1.method]")...), 0x80), mp(t, "[wsrpc.v1.method]")...), 0x80)
	if err := codec.Msgpack.Unmarshal(twice, &descriptorpb.MethodOptions{}); !errors.Is(err, codec.ErrMalformed) {
		t.Fatalf("extension key given twice: got %v, want ErrMalformed", err)
	}
}
