package codec

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Resolver finds the types named in google.protobuf.Any values and the
// extensions named by "[full.name]" keys. *protoregistry.Types satisfies it.
type Resolver interface {
	protoregistry.MessageTypeResolver
	protoregistry.ExtensionTypeResolver
}

// MsgpackOptions configures the MessagePack codec. The zero value (and a nil
// *MsgpackOptions) gives the defaults.
type MsgpackOptions struct {
	// Deterministic sorts the keys of protobuf map fields (integer keys
	// by value, though written as str) so equal messages encode to equal
	// bytes. Message fields are always written in declaration order (the
	// .proto file's, as ProtoJSON writes them; not field number order),
	// then extensions by number. Costs a key slice
	// and a sort per map field. Default false: map entries in Go map order.
	Deterministic bool
	// RejectUnknown fails decoding on a key the schema does not know.
	// Default false: unknown keys and their values are skipped, so an older
	// receiver accepts messages from a newer sender.
	RejectUnknown bool
	// RecursionLimit bounds message nesting on encode and decode, counted
	// the same way both ways, so what the codec encodes it decodes. Only
	// messages count, as in protobuf: the top-level message is level 0
	// and each message in a field, list element or map value one level
	// deeper (a google.protobuf.Value and the Struct or ListValue in it
	// count one each); lists and map fields add no level. In values the
	// decoder skips (unknown keys) it cannot tell messages from lists and
	// maps, so there every array and map level counts, against twice the
	// limit. Zero (or less) means 10000, the protobuf default.
	RecursionLimit int
	// Resolver resolves google.protobuf.Any type URLs and extension names.
	// Nil means protoregistry.GlobalTypes.
	Resolver Resolver
}

// NewMsgpack returns the MessagePack codec ("msgpack",
// https://github.com/msgpack/msgpack/blob/master/spec.md) driven by
// protobuf reflection, so every generated (or dynamic) message works without
// extra code. It is self-describing like JSON yet binary: larger than the
// protobuf wire format (keys are field names), smaller and two to three
// times cheaper than JSON (see the package benchmarks). It rides binary
// frames. The mapping is in the package documentation.
func NewMsgpack(opts *MsgpackOptions) Codec {
	var o MsgpackOptions
	if opts != nil {
		o = *opts
	}
	if o.RecursionLimit <= 0 {
		o.RecursionLimit = protowire.DefaultRecursionLimit
	}
	if o.Resolver == nil {
		o.Resolver = protoregistry.GlobalTypes
	}
	return &msgpackCodec{o: o}
}

type msgpackCodec struct{ o MsgpackOptions }

func (*msgpackCodec) Name() string { return NameMsgpack }
func (*msgpackCodec) Binary() bool { return true }

func (c *msgpackCodec) Marshal(m proto.Message) ([]byte, error) {
	return c.MarshalAppend(nil, m)
}

func (c *msgpackCodec) MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	if m == nil {
		return append(dst, 0x80), nil // empty map, as protojson writes {}
	}
	// A typed nil (IsValid false) goes through the normal path, which
	// reads it as its type's empty message, as proto and protojson do:
	// an empty map is no empty message for the well-known types with a
	// mapping of their own (a nil *Timestamp is the ext for 0, a nil
	// *Int32Value the int 0).
	if err := proto.CheckInitialized(m); err != nil {
		return dst, fmt.Errorf("%w: msgpack: %w", ErrMarshal, err)
	}
	st := encPool.Get().(*encState)
	st.o = &c.o
	st.w.b = dst
	err := st.message(m.ProtoReflect(), 0)
	out := st.w.b
	st.w.b = nil
	st.o = nil
	encPool.Put(st)
	if err != nil {
		return dst, fmt.Errorf("%w: msgpack: %w", ErrMarshal, err)
	}
	return out, nil
}

// appendWriter is the io.Writer and io.ByteWriter the msgpack.Encoder
// writes to: it appends to b, so MarshalAppend extends the caller's slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// encState is one encoding in progress. Pooled; used by one goroutine at a
// time. The encoder is bound to w once, when the state is made.
type encState struct {
	w    appendWriter
	e    *msgpack.Encoder
	o    *MsgpackOptions
	keys []protoreflect.MapKey
	// anys is how many google.protobuf.Any values enclose the one being
	// written (see anynest.go).
	anys int
}

var encPool = sync.Pool{New: func() any {
	st := new(encState)
	st.e = msgpack.NewEncoder(&st.w)
	return st
}}

// Well-known type names with a special mapping.
const (
	wktAny       protoreflect.FullName = "google.protobuf.Any"
	wktTimestamp protoreflect.FullName = "google.protobuf.Timestamp"
	wktDuration  protoreflect.FullName = "google.protobuf.Duration"
	wktStruct    protoreflect.FullName = "google.protobuf.Struct"
	wktValue     protoreflect.FullName = "google.protobuf.Value"
	wktListValue protoreflect.FullName = "google.protobuf.ListValue"
	wktFieldMask protoreflect.FullName = "google.protobuf.FieldMask"
	wktNullValue protoreflect.FullName = "google.protobuf.NullValue"
)

// isWrapper reports whether name is one of the wrappers.proto messages,
// which map to their single "value" field.
func isWrapper(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue",
		"google.protobuf.BytesValue":
		return true
	}
	return false
}

// Range limits of Timestamp and Duration, as in their .proto files:
// 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, and +-10000 years.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
	maxDurationSeconds  = 315576000000
	nanosPerSecond      = 1_000_000_000
	timestampExtID      = -1 // msgpack spec, "Timestamp extension type"
)

func (s *encState) message(m protoreflect.Message, depth int) error {
	if depth > s.o.RecursionLimit {
		return ErrDepth
	}
	md := m.Descriptor()
	switch name := md.FullName(); {
	case name == wktTimestamp:
		return s.timestamp(m)
	case name == wktDuration:
		return s.duration(m)
	case name == wktStruct:
		return s.mapField(md.Fields().ByNumber(1), m.Get(md.Fields().ByNumber(1)).Map(), depth)
	case name == wktValue:
		return s.value(m, depth)
	case name == wktListValue:
		return s.list(md.Fields().ByNumber(1), m.Get(md.Fields().ByNumber(1)).List(), depth)
	case name == wktFieldMask:
		return s.list(md.Fields().ByNumber(1), m.Get(md.Fields().ByNumber(1)).List(), depth)
	case name == wktAny:
		return s.anyMessage(m, depth)
	case isWrapper(name):
		fd := md.Fields().ByNumber(1)
		return s.singular(fd, m.Get(fd), depth)
	}

	fields := md.Fields()
	n := 0
	for i := 0; i < fields.Len(); i++ {
		if m.Has(fields.Get(i)) {
			n++
		}
	}
	var exts []protoreflect.FieldDescriptor
	if md.ExtensionRanges().Len() > 0 {
		exts = setExtensions(m)
	}
	if err := s.e.EncodeMapLen(n + len(exts)); err != nil {
		return err
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if err := s.e.EncodeString(fd.JSONName()); err != nil {
			return err
		}
		if err := s.field(fd, m.Get(fd), depth); err != nil {
			return err
		}
	}
	for _, fd := range exts {
		if err := s.e.EncodeString("[" + string(fd.FullName()) + "]"); err != nil {
			return err
		}
		if err := s.field(fd, m.Get(fd), depth); err != nil {
			return err
		}
	}
	return nil
}

// setExtensions returns the extensions set on m, by number. A function of
// its own: the slice a Range callback appends to lives on the heap, and
// declared in message it cost every message an allocation, extension
// ranges or not.
func setExtensions(m protoreflect.Message) []protoreflect.FieldDescriptor {
	var exts []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if fd.IsExtension() {
			exts = append(exts, fd)
		}
		return true
	})
	slices.SortFunc(exts, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number()) - int(b.Number()) })
	return exts
}

func (s *encState) field(fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) error {
	switch {
	case fd.IsList():
		return s.list(fd, v.List(), depth)
	case fd.IsMap():
		return s.mapField(fd, v.Map(), depth)
	}
	return s.singular(fd, v, depth)
}

func (s *encState) list(fd protoreflect.FieldDescriptor, l protoreflect.List, depth int) error {
	if err := s.e.EncodeArrayLen(l.Len()); err != nil {
		return err
	}
	for i := 0; i < l.Len(); i++ {
		if err := s.singular(fd, l.Get(i), depth); err != nil {
			return err
		}
	}
	return nil
}

func (s *encState) mapField(fd protoreflect.FieldDescriptor, mp protoreflect.Map, depth int) error {
	if err := s.e.EncodeMapLen(mp.Len()); err != nil {
		return err
	}
	kd, vd := fd.MapKey(), fd.MapValue()
	if !s.o.Deterministic {
		var err error
		mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			if err = s.mapKey(kd, k); err != nil {
				return false
			}
			err = s.singular(vd, v, depth)
			return err == nil
		})
		return err
	}
	// keys is shared by nested maps: take the tail beyond what outer maps use.
	start := len(s.keys)
	mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		s.keys = append(s.keys, k)
		return true
	})
	keys := s.keys[start:]
	defer func() { clear(s.keys[start:]); s.keys = s.keys[:start] }()
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int {
		switch kd.Kind() {
		case protoreflect.BoolKind:
			ab, bb := a.Bool(), b.Bool()
			if ab == bb {
				return 0
			} else if !ab {
				return -1
			}
			return 1
		case protoreflect.StringKind:
			return compare(a.String(), b.String())
		case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
			return compare(a.Uint(), b.Uint())
		default:
			return compare(a.Int(), b.Int())
		}
	})
	for _, k := range keys {
		if err := s.mapKey(kd, k); err != nil {
			return err
		}
		if err := s.singular(vd, mp.Get(k), depth); err != nil {
			return err
		}
	}
	return nil
}

// mapKey writes the key k of a map field whose key field is kd. Integer
// and bool keys are written as str in ProtoJSON's form ("-1", "true";
// https://protobuf.dev/programming-guides/json/, map<K, V>), so that a
// generic decoder reads every map as a string-keyed object, as a
// JavaScript one must: @msgpack/msgpack throws on a bool key, and with
// useBigInt64 on an integer key beyond 32 bits, and loses the whole
// message. (They were native ints and bools before; the decoder takes
// both forms.) The digits are appended to the output behind a fixstr
// header, allocating nothing: the longest, "-9223372036854775808", is
// 20 bytes, within fixstr's 31.
func (s *encState) mapKey(kd protoreflect.FieldDescriptor, k protoreflect.MapKey) error {
	at := len(s.w.b)
	switch kd.Kind() {
	case protoreflect.StringKind:
		return s.singular(kd, k.Value(), 0)
	case protoreflect.BoolKind:
		if k.Bool() {
			s.w.b = append(s.w.b, 0xa0|4, 't', 'r', 'u', 'e')
		} else {
			s.w.b = append(s.w.b, 0xa0|5, 'f', 'a', 'l', 's', 'e')
		}
		return nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		s.w.b = strconv.AppendUint(append(s.w.b, 0), k.Uint(), 10)
	default: // the signed integer kinds
		s.w.b = strconv.AppendInt(append(s.w.b, 0), k.Int(), 10)
	}
	s.w.b[at] = 0xa0 | byte(len(s.w.b)-at-1) // fixstr (msgpack spec, "str format family")
	return nil
}

func compare[T int64 | uint64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *encState) singular(fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) error {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return s.e.EncodeBool(v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return s.e.EncodeInt(v.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return s.e.EncodeUint(v.Uint())
	case protoreflect.FloatKind:
		return s.e.EncodeFloat32(float32(v.Float()))
	case protoreflect.DoubleKind:
		return s.e.EncodeFloat64(v.Float())
	case protoreflect.StringKind:
		str := v.String()
		if !utf8.ValidString(str) {
			return fmt.Errorf("%w: field %s", ErrInvalidUTF8, fd.FullName())
		}
		if uint64(len(str)) > math.MaxUint32 {
			return fmt.Errorf("%w: string longer than 4 GiB in %s", ErrRange, fd.FullName())
		}
		return s.e.EncodeString(str)
	case protoreflect.BytesKind:
		b := v.Bytes()
		if uint64(len(b)) > math.MaxUint32 {
			return fmt.Errorf("%w: bytes longer than 4 GiB in %s", ErrRange, fd.FullName())
		}
		if err := s.e.EncodeBytesLen(len(b)); err != nil {
			return err
		}
		s.w.b = append(s.w.b, b...)
		return nil
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == wktNullValue {
			return s.e.EncodeNil()
		}
		return s.e.EncodeInt(int64(v.Enum()))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return s.message(v.Message(), depth+1)
	}
	return fmt.Errorf("%w: unsupported kind %v of %s", ErrWrongType, fd.Kind(), fd.FullName())
}

func (s *encState) timestamp(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	secs := m.Get(fields.ByNumber(1)).Int()
	nanos := m.Get(fields.ByNumber(2)).Int()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos >= nanosPerSecond {
		return fmt.Errorf("%w: google.protobuf.Timestamp{seconds: %d, nanos: %d}", ErrRange, secs, nanos)
	}
	// The smallest of the three timestamp formats that holds the value.
	switch {
	case secs>>34 == 0 && nanos == 0 && secs <= math.MaxUint32:
		if err := s.e.EncodeExtHeader(timestampExtID, 4); err != nil {
			return err
		}
		s.w.b = appendUint32(s.w.b, uint32(secs))
	case secs>>34 == 0:
		if err := s.e.EncodeExtHeader(timestampExtID, 8); err != nil {
			return err
		}
		s.w.b = appendUint64(s.w.b, uint64(nanos)<<34|uint64(secs))
	default:
		if err := s.e.EncodeExtHeader(timestampExtID, 12); err != nil {
			return err
		}
		s.w.b = appendUint32(s.w.b, uint32(nanos))
		s.w.b = appendUint64(s.w.b, uint64(secs))
	}
	return nil
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendUint64(b []byte, v uint64) []byte {
	return appendUint32(appendUint32(b, uint32(v>>32)), uint32(v))
}

func (s *encState) duration(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	secs := m.Get(fields.ByNumber(1)).Int()
	nanos := m.Get(fields.ByNumber(2)).Int()
	if secs < -maxDurationSeconds || secs > maxDurationSeconds ||
		nanos <= -nanosPerSecond || nanos >= nanosPerSecond ||
		(secs > 0 && nanos < 0) || (secs < 0 && nanos > 0) {
		return fmt.Errorf("%w: google.protobuf.Duration{seconds: %d, nanos: %d}", ErrRange, secs, nanos)
	}
	var buf [32]byte
	return s.e.EncodeString(string(appendDuration(buf[:0], secs, nanos)))
}

// appendDuration writes the ProtoJSON form of a valid duration: seconds with
// 0, 3, 6 or 9 fractional digits and the suffix "s", as "-1.500s".
func appendDuration(b []byte, secs, nanos int64) []byte {
	if secs < 0 || nanos < 0 {
		b = append(b, '-')
		secs, nanos = -secs, -nanos
	}
	b = strconv.AppendInt(b, secs, 10)
	if nanos != 0 {
		frac := strconv.AppendInt(make([]byte, 0, 9), nanos+nanosPerSecond, 10)[1:]
		for len(frac) > 3 && string(frac[len(frac)-3:]) == "000" {
			frac = frac[:len(frac)-3]
		}
		b = append(append(b, '.'), frac...)
	}
	return append(b, 's')
}

func (s *encState) value(m protoreflect.Message, depth int) error {
	od := m.Descriptor().Oneofs().ByName("kind")
	fd := m.WhichOneof(od)
	if fd == nil {
		return fmt.Errorf("%w: google.protobuf.Value has no kind set", ErrRange)
	}
	v := m.Get(fd)
	switch fd.Number() {
	case 1: // null_value
		return s.e.EncodeNil()
	case 2: // number_value
		return s.e.EncodeFloat64(v.Float())
	case 3: // string_value
		return s.singular(fd, v, depth)
	case 4: // bool_value
		return s.e.EncodeBool(v.Bool())
	case 5, 6: // struct_value, list_value
		return s.message(v.Message(), depth+1)
	}
	return fmt.Errorf("%w: google.protobuf.Value field %d", ErrWrongType, fd.Number())
}

func (s *encState) anyMessage(m protoreflect.Message, depth int) error {
	if s.anys >= maxAnyNesting { // counted as the decoder counts: empty ones too
		return errAnyNesting
	}
	fields := m.Descriptor().Fields()
	url := m.Get(fields.ByNumber(1)).String()
	raw := m.Get(fields.ByNumber(2)).Bytes()
	if url == "" && len(raw) == 0 {
		return s.e.EncodeMapLen(0)
	}
	// The URL is written as a str, which the decoder (and any msgpack
	// peer) requires to be UTF-8; checked before resolving, since a
	// resolver may look only at the part after the last '/'.
	if !utf8.ValidString(url) {
		return fmt.Errorf("%w: field %s", ErrInvalidUTF8, fields.ByNumber(1).FullName())
	}
	mt, err := s.o.Resolver.FindMessageByURL(url)
	if err != nil {
		return fmt.Errorf("%w: google.protobuf.Any %q: %w", ErrUnknownType, url, err)
	}
	inner := mt.New()
	// Bound the decode of the bytes by the levels left. Protobuf counts
	// each map entry as a message too, so a message level here can be two
	// of its levels: twice what is left refuses nothing RecursionLimit
	// allows, and s.message below applies the limit itself.
	left := max(s.o.RecursionLimit-depth, 1)
	uo := proto.UnmarshalOptions{AllowPartial: true, Resolver: s.o.Resolver, RecursionLimit: int(min(2*uint(left), math.MaxInt))}
	if err := uo.Unmarshal(raw, inner.Interface()); err != nil {
		return fmt.Errorf("google.protobuf.Any %q: %w", url, err)
	}
	if err := s.e.EncodeMapLen(2); err != nil {
		return err
	}
	if err := s.e.EncodeString(anyTypeKey); err != nil {
		return err
	}
	if err := s.e.EncodeString(url); err != nil {
		return err
	}
	if err := s.e.EncodeString(anyValueKey); err != nil {
		return err
	}
	s.anys++
	err = s.message(inner, depth+1)
	s.anys--
	return err
}

// Keys of the msgpack map that carries a google.protobuf.Any.
const (
	anyTypeKey  = "@type"
	anyValueKey = "value"
)
