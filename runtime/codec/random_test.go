package codec_test

import (
	"math"
	"math/rand/v2"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// filler sets random values on messages by reflection, so every field of
// the test schema, present and future, gets exercised. The values stay
// within what all three codecs can carry (finite Value numbers, valid
// Timestamp and Duration ranges, FieldMask paths that survive ProtoJSON's
// camelCase conversion), so decode(encode(m)) must equal m for each codec.
type filler struct {
	r *rand.Rand
	// small keeps strings and bytes short (fuzz seeds).
	small bool
}

func newFiller(seed uint64) *filler {
	return &filler{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (f *filler) allTypes() *testingv1.AllTypes {
	m := &testingv1.AllTypes{}
	f.message(m.ProtoReflect(), 0)
	return m
}

const maxFillDepth = 3

func (f *filler) message(m protoreflect.Message, depth int) {
	md := m.Descriptor()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		ts := f.timestamp()
		proto.Merge(m.Interface(), ts)
		return
	case "google.protobuf.Duration":
		proto.Merge(m.Interface(), f.duration())
		return
	case "google.protobuf.Value":
		proto.Merge(m.Interface(), f.value(depth))
		return
	case "google.protobuf.Struct":
		proto.Merge(m.Interface(), f.structValue(depth))
		return
	case "google.protobuf.ListValue":
		proto.Merge(m.Interface(), f.listValue(depth))
		return
	case "google.protobuf.Any":
		proto.Merge(m.Interface(), f.anyValue(depth))
		return
	case "google.protobuf.FieldMask":
		paths := []string{"f_int32", "f_nested.name", "r_nested", "m_string_string"}
		l := m.Mutable(md.Fields().ByName("paths")).List()
		for range f.r.IntN(4) {
			l.Append(protoreflect.ValueOfString(paths[f.r.IntN(len(paths))]))
		}
		return
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			continue // handled below, one case per oneof
		}
		if f.r.IntN(2) == 0 {
			continue
		}
		f.field(m, fd, depth)
	}
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		od := oneofs.Get(i)
		if od.IsSynthetic() || f.r.IntN(3) == 0 {
			continue
		}
		f.field(m, od.Fields().Get(f.r.IntN(od.Fields().Len())), depth)
	}
}

func (f *filler) field(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) {
	isMsg := fd.Message() != nil && !fd.IsMap()
	if isMsg && depth >= maxFillDepth && fd.Message().FullName() == "wsrpc.testing.v1.Nested" {
		return
	}
	switch {
	case fd.IsList():
		l := m.Mutable(fd).List()
		for range f.r.IntN(5) {
			if isMsg {
				v := l.NewElement()
				f.message(v.Message(), depth+1)
				l.Append(v)
			} else {
				l.Append(f.scalar(fd))
			}
		}
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		for range f.r.IntN(5) {
			k := f.scalar(fd.MapKey()).MapKey()
			if fd.MapValue().Message() != nil {
				v := mp.NewValue()
				f.message(v.Message(), depth+1)
				mp.Set(k, v)
			} else {
				mp.Set(k, f.scalar(fd.MapValue()))
			}
		}
	case isMsg:
		v := m.NewField(fd)
		f.message(v.Message(), depth+1)
		m.Set(fd, v)
	default:
		m.Set(fd, f.scalar(fd))
	}
}

func (f *filler) pick(n int) bool { return f.r.IntN(n) == 0 }

func (f *filler) int64(lo, hi int64) int64 {
	switch f.r.IntN(6) {
	case 0:
		return lo
	case 1:
		return hi
	case 2:
		return 0
	case 3:
		return int64(f.r.IntN(256)) - 128
	}
	return lo + int64(f.r.Uint64N(uint64(hi-lo)))
}

func (f *filler) uint64(hi uint64) uint64 {
	switch f.r.IntN(5) {
	case 0:
		return hi
	case 1:
		return 0
	case 2:
		return uint64(f.r.IntN(300))
	}
	return f.r.Uint64N(hi)
}

var specialFloats = []float64{0, math.Copysign(0, -1), 1, -1, math.NaN(), math.Inf(1), math.Inf(-1),
	math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64, 0.1, 1e300}

func (f *filler) float64() float64 {
	if f.pick(3) {
		return specialFloats[f.r.IntN(len(specialFloats))]
	}
	return (f.r.Float64() - 0.5) * math.Pow(10, float64(f.r.IntN(40)-20))
}

func (f *filler) float32() float32 {
	if f.pick(3) {
		return float32([]float64{0, 1, -1, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat32, math.SmallestNonzeroFloat32}[f.r.IntN(8)])
	}
	return float32(f.float64())
}

var runes = []rune("aZ09 _-.,:;\"'\\/\n\t\x00\x7féßø€漢字😀\U0010ffff")

func (f *filler) string() string {
	n := f.r.IntN(12)
	if !f.small && f.pick(50) {
		n = 300 + f.r.IntN(70000) // str16 and str32 lengths
	}
	var b strings.Builder
	for range n {
		b.WriteRune(runes[f.r.IntN(len(runes))])
	}
	return b.String()
}

func (f *filler) bytes() []byte {
	n := f.r.IntN(10)
	if !f.small && f.pick(50) {
		n = 250 + f.r.IntN(70000) // bin8, bin16 and bin32 lengths
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.r.Uint32())
	}
	return b
}

func (f *filler) scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(f.pick(2))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(f.int64(math.MinInt32, math.MaxInt32)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(f.int64(math.MinInt64, math.MaxInt64))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(f.uint64(math.MaxUint32)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(f.uint64(math.MaxUint64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(f.float32())
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(f.float64())
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(f.string())
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(f.bytes())
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == "google.protobuf.NullValue" {
			return protoreflect.ValueOfEnum(0)
		}
		// Defined values, and unknown ones an open enum must keep.
		return protoreflect.ValueOfEnum([]protoreflect.EnumNumber{0, 1, 2, 3, 42, -7}[f.r.IntN(6)])
	}
	panic("filler: unexpected kind " + fd.Kind().String())
}

func (f *filler) timestamp() *timestamppb.Timestamp {
	const lo, hi = -62135596800, 253402300799
	switch f.r.IntN(6) {
	case 0:
		return &timestamppb.Timestamp{Seconds: lo}
	case 1:
		return &timestamppb.Timestamp{Seconds: hi, Nanos: 999999999}
	case 2: // msgpack timestamp 32
		return &timestamppb.Timestamp{Seconds: int64(f.r.Uint32())}
	case 3: // msgpack timestamp 64
		return &timestamppb.Timestamp{Seconds: f.r.Int64N(1 << 34), Nanos: f.r.Int32N(1e9)}
	}
	return &timestamppb.Timestamp{Seconds: lo + f.r.Int64N(hi-lo), Nanos: f.r.Int32N(1e9)}
}

func (f *filler) duration() *durationpb.Duration {
	const limit = 315576000000
	secs := f.r.Int64N(2*limit+1) - limit
	var nanos int32
	switch f.r.IntN(4) {
	case 0:
		secs = 0
		nanos = f.r.Int32N(2e9-1) - (1e9 - 1)
		return &durationpb.Duration{Nanos: nanos}
	case 1:
		nanos = f.r.Int32N(1000) * 1e6 // 3-digit fraction
	case 2:
		nanos = f.r.Int32N(1e9)
	}
	if secs < 0 {
		nanos = -nanos
	}
	return &durationpb.Duration{Seconds: secs, Nanos: nanos}
}

func (f *filler) value(depth int) *structpb.Value {
	n := 4
	if depth < maxFillDepth {
		n = 6
	}
	switch f.r.IntN(n) {
	case 0:
		return structpb.NewNullValue()
	case 1:
		v := f.float64()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 2.5 // ProtoJSON cannot carry these in a Value
		}
		return structpb.NewNumberValue(v)
	case 2:
		return structpb.NewStringValue(f.string())
	case 3:
		return structpb.NewBoolValue(f.pick(2))
	case 4:
		return structpb.NewStructValue(f.structValue(depth + 1))
	}
	return structpb.NewListValue(f.listValue(depth + 1))
}

func (f *filler) structValue(depth int) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for range f.r.IntN(4) {
		s.Fields[f.string()] = f.value(depth + 1)
	}
	return s
}

func (f *filler) listValue(depth int) *structpb.ListValue {
	l := &structpb.ListValue{}
	for range f.r.IntN(4) {
		l.Values = append(l.Values, f.value(depth+1))
	}
	return l
}

func (f *filler) anyValue(depth int) *anypb.Any {
	var inner proto.Message
	switch f.r.IntN(5) {
	case 0:
		return &anypb.Any{}
	case 1:
		inner = f.timestamp()
	case 2:
		inner = f.structValue(depth + 1)
	case 3:
		inner = &testingv1.Small{Room: f.string(), Seq: f.int64(math.MinInt64, math.MaxInt64)}
	default:
		n := &testingv1.Nested{}
		f.message(n.ProtoReflect(), depth+1)
		inner = n
	}
	return mustAny(inner)
}

// mustAny packs m the way the codecs re-pack an Any they decode
// (deterministic marshal), so proto.Equal can compare the value bytes.
func mustAny(m proto.Message) *anypb.Any {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}
