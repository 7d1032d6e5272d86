package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MessagePack type codes (msgpack spec, "Formats").
const (
	mpNil      = 0xc0
	mpNever    = 0xc1
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

func isMapCode(c byte) bool   { return c&0xf0 == 0x80 || c == mpMap16 || c == mpMap32 }
func isArrayCode(c byte) bool { return c&0xf0 == 0x90 || c == mpArray16 || c == mpArray32 }
func isStrCode(c byte) bool   { return c&0xe0 == 0xa0 || (c >= mpStr8 && c <= mpStr32) }
func isBinCode(c byte) bool   { return c >= mpBin8 && c <= mpBin32 }
func isExtCode(c byte) bool {
	return (c >= mpExt8 && c <= mpExt32) || (c >= mpFixExt1 && c <= mpFixExt16)
}
func isIntCode(c byte) bool {
	return c <= 0x7f || c >= 0xe0 || (c >= mpUint8 && c <= mpInt64)
}
func isFloatCode(c byte) bool { return c == mpFloat32 || c == mpFloat64 }

// maxAnyNesting bounds how many google.protobuf.Any values may nest in one
// another on decode. Each level is decoded and then re-encoded to protobuf
// bytes (Any.value), which re-encodes everything inside it again: the cost
// grows with the square of the depth (a 108 KB input nested 2,000 deep
// took 96 MB to decode). Real schemas nest Any once or twice; 32 leaves
// room and bounds the work at 32 re-encodings of the input.
const maxAnyNesting = 32

// errAnyNesting is returned as is by every enclosing Any, so that the
// reason is not buried under 32 type URLs.
var errAnyNesting = &failure{kind: ErrDepth, text: fmt.Sprintf("google.protobuf.Any nested more than %d deep", maxAnyNesting)}

// Decode errors without details, made once. A pathError wraps them
// without changing them.
var (
	errEndOfInput = &failure{kind: ErrTruncated, text: "unexpected end of input"}
	errNesting    = &failure{kind: ErrDepth, text: "nesting exceeds the recursion limit"}
	errUTF8       = &failure{kind: ErrInvalidUTF8, text: "invalid UTF-8 in str"}
)

// decState is one decoding in progress. Pooled; used by one goroutine at a
// time. The msgpack.Decoder reads r directly (bytes.Reader is an
// io.ByteScanner, so the decoder adds no buffering), which lets the codec
// look at and skip bytes of data by position.
type decState struct {
	data     []byte
	r        bytes.Reader
	d        *msgpack.Decoder
	o        *MsgpackOptions
	anyDepth int // Any values open around the current position
}

var decPool = sync.Pool{New: func() any {
	st := new(decState)
	st.d = msgpack.NewDecoder(&st.r)
	return st
}}

func (c *msgpackCodec) Unmarshal(data []byte, m proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		return fmt.Errorf("%w: %w", ErrUnmarshal, ErrNilMessage)
	}
	proto.Reset(m)
	st := decPool.Get().(*decState)
	st.data = data
	st.r.Reset(data)
	st.o = &c.o
	err := st.message(m.ProtoReflect(), 0)
	if err == nil && st.r.Len() > 0 {
		err = failf(ErrTrailingData, "trailing data at byte %d of %d", len(data)-st.r.Len(), len(data))
	}
	st.data = nil
	st.r.Reset(nil)
	st.o = nil
	st.anyDepth = 0
	decPool.Put(st)
	if err == nil {
		err = proto.CheckInitialized(m)
	}
	if err != nil {
		return &unmarshalError{codec: NameMsgpack, err: err}
	}
	return nil
}

// rest returns the undecoded input.
func (s *decState) rest() []byte { return s.data[len(s.data)-s.r.Len():] }

// advance consumes n bytes that rest showed.
func (s *decState) advance(n int) { _, _ = s.r.Seek(int64(n), io.SeekCurrent) }

func (s *decState) peek() (byte, error) {
	if s.r.Len() == 0 {
		return 0, errEndOfInput
	}
	return s.rest()[0], nil
}

// pathError is a decode error and where it happened: the fields, list
// elements, map values and Any values it is in, innermost first. The path
// grows by one entry per level as the error unwinds and is written out
// once, by Error, shortened in the middle. Wrapping the error again at
// every level (fmt.Errorf) cost time and memory quadratic in the depth:
// a 50 KB message nested 10,000 deep took 25 s of CPU to refuse.
//
// Error writes the path as a JavaScript client would spell it, JSON names
// joined by dots with [i] and ["key"] for elements and map values, then
// the innermost field's full name: "field rNested[1].id
// (wsrpc.testing.v1.Nested.id): …".
type pathError struct {
	path  []string                     // JSON names, "[3]", `["k"]`, "value" (an Any's)
	field protoreflect.FieldDescriptor // the innermost field on the path, if any
	err   error
}

// maxPathShown is how many entries of a path Error writes out: half from
// the outermost end, half from the innermost.
const maxPathShown = 8

func (e *pathError) Error() string {
	var b strings.Builder
	if e.field != nil {
		b.WriteString("field ")
	} else {
		b.WriteString("at ")
	}
	n := len(e.path)
	for k := 0; k < n; k++ { // outermost first
		step := e.path[n-1-k]
		if n > maxPathShown && k == maxPathShown/2 {
			step = fmt.Sprintf("(%d more)", n-maxPathShown)
			k = n - maxPathShown/2 - 1
		}
		if k > 0 && step[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(step)
	}
	if e.field != nil {
		b.WriteString(" (")
		b.WriteString(string(e.field.FullName()))
		b.WriteByte(')')
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *pathError) Unwrap() error { return e.err }

// within records that err happened in step (a list element's "[3]", a
// map value's `["k"]`, an Any's "value"), one level out from where it was
// recorded so far.
func within(err error, step string) *pathError {
	if pe, ok := err.(*pathError); ok {
		pe.path = append(pe.path, step)
		return pe
	}
	return &pathError{path: []string{step}, err: err}
}

// withinField records that err happened in the value of field fd, named
// as its key is: its JSON name, or "[full.name]" for an extension.
func withinField(err error, fd protoreflect.FieldDescriptor) error {
	step := fd.JSONName()
	if fd.IsExtension() {
		step = "[" + string(fd.FullName()) + "]"
	}
	pe := within(err, step)
	if pe.field == nil {
		pe.field = fd
	}
	return pe
}

// elementStep is the path step of list element i.
func elementStep(i int) string { return "[" + strconv.Itoa(i) + "]" }

// mapValueStep is the path step of a map's value for key k.
func mapValueStep(k protoreflect.Value) string { return "[" + keyText(k) + "]" }

// keyText is a map key as errors show it: a string quoted (a peer's
// text), any other key as it prints.
func keyText(k protoreflect.Value) string {
	if s, ok := k.Interface().(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(k.Interface())
}

// libErr turns an error of the msgpack library into one of ours.
func libErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errEndOfInput
	}
	return &failure{kind: ErrMalformed, text: strings.TrimPrefix(err.Error(), "msgpack: "), cause: err}
}

// length reads an array, map, str or bin header and checks the claimed
// count against the input left, so a hostile length cannot make the decoder
// allocate or loop beyond what the input can hold: every element takes at
// least minSize bytes.
func (s *decState) length(read func() (int, error), minSize int) (int, error) {
	n, err := read()
	if err != nil {
		return 0, libErr(err)
	}
	if n < 0 || n > s.r.Len()/minSize {
		return 0, failf(ErrTruncated, "length %d with %d bytes left", n, s.r.Len())
	}
	return n, nil
}

func (s *decState) mapLen() (int, error)   { return s.length(s.d.DecodeMapLen, 2) }
func (s *decState) arrayLen() (int, error) { return s.length(s.d.DecodeArrayLen, 1) }

// raw reads a str or bin value and returns a view of its bytes in the input.
func (s *decState) raw() ([]byte, error) {
	n, err := s.length(s.d.DecodeBytesLen, 1)
	if err != nil {
		return nil, err
	}
	b := s.rest()[:n:n]
	s.advance(n)
	return b, nil
}

// str reads a str value; the result aliases the input.
func (s *decState) str() ([]byte, error) {
	c, err := s.peek()
	if err != nil {
		return nil, err
	}
	if !isStrCode(c) {
		return nil, wrongType(c, "string")
	}
	b, err := s.raw()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, errUTF8
	}
	return b, nil
}

// wrongType is the error for a value of msgpack type code c where want
// was expected: "str where int64 expected".
func wrongType(c byte, want string) error {
	return failf(ErrWrongType, "%s where %s expected", codeName(c), want)
}

func codeName(c byte) string {
	switch {
	case c == mpNil:
		return "nil"
	case c == mpTrue || c == mpFalse:
		return "bool"
	case isIntCode(c):
		return "int"
	case isFloatCode(c):
		return "float"
	case isStrCode(c):
		return "str"
	case isBinCode(c):
		return "bin"
	case isArrayCode(c):
		return "array"
	case isMapCode(c):
		return "map"
	case isExtCode(c):
		return "ext"
	}
	return fmt.Sprintf("code 0x%02x", c)
}

// integer reads an integer for a field of kind want: any msgpack int, or
// a float that holds an integer, as JavaScript encoders write large ones
// (a JS number is a double: msgpackr writes every integer beyond 32 bits
// as a float64, @msgpack/msgpack every one beyond 2^53). A float with a
// fraction, or NaN, is ErrWrongType, as ProtoJSON refuses 1.5 for an
// integer field; one beyond int64 and uint64 (±Inf too) is ErrRange. The
// caller checks the field's own range. For a negative value neg is set
// and u holds its two's complement; otherwise u is the value.
func (s *decState) integer(want protoreflect.Kind) (u uint64, neg bool, err error) {
	c, err := s.peek()
	if err != nil {
		return 0, false, err
	}
	switch {
	case c <= 0x7f:
		s.advance(1)
		return uint64(c), false, nil
	case c >= 0xe0:
		s.advance(1)
		return uint64(int64(int8(c))), true, nil
	case c >= mpUint8 && c <= mpUint64:
		u, err := s.d.DecodeUint64()
		if err != nil {
			return 0, false, libErr(err)
		}
		return u, false, nil
	case c >= mpInt8 && c <= mpInt64:
		i, err := s.d.DecodeInt64()
		if err != nil {
			return 0, false, libErr(err)
		}
		return uint64(i), i < 0, nil
	case isFloatCode(c):
		f, err := s.float(want.String())
		switch {
		case err != nil:
		case f != math.Trunc(f): // a fraction, or NaN
			err = failf(ErrWrongType, "float where %v expected: %g", want, f)
		case f < 0 && f >= math.MinInt64:
			return uint64(int64(f)), true, nil
		case f >= 0 && f < 1<<64: // -0 included
			return uint64(f), false, nil
		default:
			err = failf(ErrRange, "%g overflows %v", f, want)
		}
		return 0, false, err
	}
	return 0, false, wrongType(c, want.String())
}

// float reads a msgpack float or int as a float64, for a field of type
// want ("double").
func (s *decState) float(want string) (float64, error) {
	c, err := s.peek()
	if err != nil {
		return 0, err
	}
	switch c {
	case mpFloat32:
		f, err := s.d.DecodeFloat32()
		if err != nil {
			return 0, libErr(err)
		}
		return float64(f), nil
	case mpFloat64:
		f, err := s.d.DecodeFloat64()
		if err != nil {
			return 0, libErr(err)
		}
		return f, nil
	}
	if !isIntCode(c) {
		return 0, wrongType(c, want)
	}
	// Many encoders (JavaScript's among them) write integral floats as ints.
	u, neg, err := s.integer(protoreflect.Int64Kind)
	if neg {
		return float64(int64(u)), err
	}
	return float64(u), err
}

func (s *decState) message(m protoreflect.Message, depth int) error {
	if depth > s.o.RecursionLimit {
		return errNesting
	}
	md := m.Descriptor()
	switch name := md.FullName(); {
	case name == wktTimestamp:
		return s.timestamp(m)
	case name == wktDuration:
		return s.duration(m)
	case name == wktStruct, name == wktListValue, name == wktFieldMask:
		fd := md.Fields().ByNumber(1)
		return s.field(m, fd, depth)
	case name == wktValue:
		return s.value(m, depth)
	case name == wktAny:
		return s.anyMessage(m, depth)
	case isWrapper(name):
		fd := md.Fields().ByNumber(1)
		v, err := s.scalar(fd)
		if err != nil {
			return err
		}
		m.Set(fd, v)
		return nil
	}

	c, err := s.peek()
	if err != nil {
		return err
	}
	if !isMapCode(c) {
		return wrongType(c, "map for "+string(md.FullName()))
	}
	n, err := s.mapLen()
	if err != nil {
		return err
	}
	fields := md.Fields()
	var seen fieldSet
	for range n {
		key, err := s.str()
		if err != nil {
			return fmt.Errorf("key in %s: %w", md.FullName(), err)
		}
		fd, err := s.lookup(md, fields, key)
		if err != nil {
			return err
		}
		if fd == nil {
			if s.o.RejectUnknown {
				return failf(ErrUnknownType, "unknown field %q in %s", key, md.FullName())
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			continue
		}
		if seen.testAndSet(fd) {
			return withinField(failf(ErrMalformed, "key %q given twice", key), fd)
		}
		if err := s.setField(m, fd, depth); err != nil {
			return withinField(err, fd)
		}
	}
	return nil
}

// fieldSet records the fields one message's map has given a key for, so
// that a key given twice is an error (as in ProtoJSON) even when its first
// value left the field unpopulated: a proto3 zero scalar, an empty list or
// map, nil. m.Has cannot tell those from a field never given. Fields are
// kept by index in their message; up to 64 fit in bits without allocating.
// Extensions, which have no index there, are kept by number.
type fieldSet struct {
	bits uint64
	more []uint64                   // indexes from 64 up
	exts []protoreflect.FieldNumber // extension fields given
}

// testAndSet adds fd and reports whether it was there already.
func (f *fieldSet) testAndSet(fd protoreflect.FieldDescriptor) bool {
	if fd.IsExtension() {
		if slices.Contains(f.exts, fd.Number()) {
			return true
		}
		f.exts = append(f.exts, fd.Number())
		return false
	}
	i := fd.Index()
	w, bit := &f.bits, uint64(1)<<(i%64)
	if i >= 64 {
		k := i/64 - 1
		if k >= len(f.more) {
			f.more = append(f.more, make([]uint64, k+1-len(f.more))...)
		}
		w = &f.more[k]
	}
	was := *w&bit != 0
	*w |= bit
	return was
}

// lookup finds the field for a map key as ProtoJSON does (protojson's
// decoder): its JSON name, else its text name, or "[full.name]" for an
// extension. The text name is the proto field name, except for a proto2
// group (and an Editions DELIMITED field shaped like one), whose text name
// is its message's name and the lowercase of that. A nil field with a nil
// error is an unknown key.
func (s *decState) lookup(md protoreflect.MessageDescriptor, fields protoreflect.FieldDescriptors, key []byte) (protoreflect.FieldDescriptor, error) {
	if len(key) > 2 && key[0] == '[' && key[len(key)-1] == ']' {
		xt, err := s.o.Resolver.FindExtensionByName(protoreflect.FullName(key[1 : len(key)-1]))
		if err != nil || xt.TypeDescriptor().ContainingMessage().FullName() != md.FullName() {
			return nil, nil
		}
		xd := xt.TypeDescriptor()
		// A resolver's extension may have been built against another
		// version of the message (a schema registry, descriptors loaded
		// at run time) whose ranges differ; protobuf panics when such an
		// extension is set, so refuse it first, as protojson does.
		if !md.ExtensionRanges().Has(xd.Number()) {
			return nil, failf(ErrUnknownType, "message %s cannot be extended by %s (field %d is outside its extension ranges)",
				md.FullName(), xd.FullName(), xd.Number())
		}
		return xd, nil
	}
	// The lookups only compare the key, so a string view of the input
	// avoids a copy per key.
	k := unsafe.String(unsafe.SliceData(key), len(key))
	if fd := fields.ByJSONName(k); fd != nil {
		return fd, nil
	}
	return fields.ByTextName(k), nil
}

// nilSize returns the size of the nil at the start of the input, whose
// first byte is c, or 0 if none is there. msgpackr's undefined, fixext 1
// of ext type 0 with the data byte 0 (d4 00 00), counts as nil: the
// msgpack spec leaves ext type 0 to applications ("Extension types"),
// and a JavaScript object's undefined field means "not set", as a nil
// does here. Another ext type 0 payload is no nil.
func (s *decState) nilSize(c byte) int {
	switch {
	case c == mpNil:
		return 1
	case c == mpFixExt1:
		if r := s.rest(); len(r) >= 3 && r[1] == 0 && r[2] == 0 {
			return 3
		}
	}
	return 0
}

// setField decodes the value for fd (after its key) into m.
func (s *decState) setField(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	nullable := fd.Message() != nil && fd.Message().FullName() == wktValue ||
		fd.Enum() != nil && fd.Enum().FullName() == wktNullValue
	if n := s.nilSize(c); n > 0 && (!nullable || fd.IsList() || fd.IsMap()) {
		// nil stands for "not set", as null does in ProtoJSON.
		s.advance(n)
		return nil
	}
	if od := fd.ContainingOneof(); od != nil {
		if set := m.WhichOneof(od); set != nil {
			return failf(ErrDuplicateOneof, "oneof %s already has %s", od.Name(), set.JSONName())
		}
	}
	return s.field(m, fd, depth)
}

// field decodes the value for fd into m, which does not hold fd yet.
func (s *decState) field(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) error {
	switch {
	case fd.IsList():
		return s.list(m, fd, depth)
	case fd.IsMap():
		return s.mapField(m, fd, depth)
	case fd.Message() != nil:
		v := m.NewField(fd)
		if err := s.message(v.Message(), depth+1); err != nil {
			return err
		}
		m.Set(fd, v)
		return nil
	}
	v, err := s.scalar(fd)
	if err != nil {
		return err
	}
	m.Set(fd, v)
	return nil
}

// list decodes a repeated field of the message at depth. A list is no
// level of its own (RecursionLimit counts messages, as protobuf does and
// as the encoder does): message elements count themselves, scalars do not
// recurse. The list is made only for a non-empty array, as for a map
// field: an empty one is one byte of input, and Mutable allocates (a
// google.protobuf.Struct's Go map), so each empty container would cost a
// hundred times its size.
func (s *decState) list(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if !isArrayCode(c) {
		return wrongType(c, "array")
	}
	n, err := s.arrayLen()
	if err != nil || n == 0 {
		return err
	}
	l := m.Mutable(fd).List()
	for i := range n {
		if fd.Message() != nil {
			v := l.NewElement()
			if err := s.message(v.Message(), depth+1); err != nil {
				return within(err, elementStep(i))
			}
			l.Append(v)
			continue
		}
		v, err := s.scalar(fd)
		if err != nil {
			return within(err, elementStep(i))
		}
		l.Append(v)
	}
	return nil
}

// mapField decodes a map field of the message at depth; like a list, it is
// no level of its own, and it is made only for a non-empty map.
func (s *decState) mapField(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if !isMapCode(c) {
		return wrongType(c, "map")
	}
	n, err := s.mapLen()
	if err != nil || n == 0 {
		return err
	}
	mp := m.Mutable(fd).Map()
	kd, vd := fd.MapKey(), fd.MapValue()
	for range n {
		kv, err := s.mapKey(kd)
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		k := kv.MapKey()
		if mp.Has(k) {
			return failf(ErrMalformed, "map key %s given twice", keyText(kv))
		}
		if vd.Message() != nil {
			v := mp.NewValue()
			if err := s.message(v.Message(), depth+1); err != nil {
				return within(err, mapValueStep(kv))
			}
			mp.Set(k, v)
			continue
		}
		v, err := s.scalar(vd)
		if err != nil {
			return within(err, mapValueStep(kv))
		}
		mp.Set(k, v)
	}
	return nil
}

// mapKey reads the key of a map entry. An integer or bool key may also
// come as a str in ProtoJSON's form ("1", "-5", "true"), parsed as
// protojson parses JSON object keys (strconv, base 10): a JavaScript
// encoder writes every plain object's keys as str, and the encoder
// writes such keys so itself (see encState.mapKey).
func (s *decState) mapKey(kd protoreflect.FieldDescriptor) (protoreflect.Value, error) {
	c, err := s.peek()
	if err != nil {
		return protoreflect.Value{}, err
	}
	kind := kd.Kind()
	if !isStrCode(c) || kind == protoreflect.StringKind {
		return s.scalar(kd)
	}
	b, err := s.str()
	if err != nil {
		return protoreflect.Value{}, err
	}
	// The parsers only read the key (strconv copies what it puts in an
	// error), so a string view of the input avoids a copy.
	key := unsafe.String(unsafe.SliceData(b), len(b))
	var u uint64
	var neg bool
	switch kind {
	case protoreflect.BoolKind:
		switch key {
		case "true":
			return protoreflect.ValueOfBool(true), nil
		case "false":
			return protoreflect.ValueOfBool(false), nil
		}
		return protoreflect.Value{}, failf(ErrWrongType, "str %q where bool expected", key)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u, err = strconv.ParseUint(key, 10, 64)
		// A negative number is refused as out of range below; "-0" is
		// no unsigned number at all, as for protojson (ParseUint).
		if err != nil && key != "" && key[0] == '-' {
			if i, err2 := strconv.ParseInt(key, 10, 64); err2 == nil && i < 0 {
				u, neg, err = uint64(i), true, nil
			}
		}
	default:
		var i int64
		i, err = strconv.ParseInt(key, 10, 64)
		u, neg = uint64(i), i < 0
	}
	switch {
	case errors.Is(err, strconv.ErrRange):
		return protoreflect.Value{}, failf(ErrRange, "%s overflows %v", key, kind)
	case err != nil:
		return protoreflect.Value{}, failf(ErrWrongType, "str %q where %v expected", key, kind)
	}
	return intValue(kind, u, neg)
}

// scalar decodes a value of a non-message field kind.
func (s *decState) scalar(fd protoreflect.FieldDescriptor) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		c, err := s.peek()
		if err != nil {
			return protoreflect.Value{}, err
		}
		if c != mpTrue && c != mpFalse {
			return protoreflect.Value{}, wrongType(c, "bool")
		}
		s.advance(1)
		return protoreflect.ValueOfBool(c == mpTrue), nil

	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u, neg, err := s.integer(fd.Kind())
		if err != nil {
			return protoreflect.Value{}, err
		}
		return intValue(fd.Kind(), u, neg)

	case protoreflect.FloatKind:
		f, err := s.float("float")
		if err != nil {
			return protoreflect.Value{}, err
		}
		// Overflow is what rounds to infinity, not what exceeds
		// MaxFloat32: protojson writes MaxFloat32 as 3.4028235e+38, a
		// double a hair above it that a peer may send back as float64.
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) && !math.IsInf(f, 0) {
			return protoreflect.Value{}, failf(ErrRange, "%g overflows float", f)
		}
		return protoreflect.ValueOfFloat32(f32), nil

	case protoreflect.DoubleKind:
		f, err := s.float("double")
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfFloat64(f), nil

	case protoreflect.StringKind:
		b, err := s.str()
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfString(string(b)), nil

	case protoreflect.BytesKind:
		c, err := s.peek()
		if err != nil {
			return protoreflect.Value{}, err
		}
		if !isBinCode(c) {
			return protoreflect.Value{}, wrongType(c, "bin for bytes")
		}
		b, err := s.raw()
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfBytes(bytes.Clone(b)), nil

	case protoreflect.EnumKind:
		return s.enum(fd.Enum())
	}
	return protoreflect.Value{}, failf(ErrWrongType, "kind %v of %s", fd.Kind(), fd.FullName())
}

// intValue is the value of integer kind k for u and neg as integer
// returns them, or ErrRange if k cannot hold it.
func intValue(k protoreflect.Kind, u uint64, neg bool) (protoreflect.Value, error) {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if (neg && int64(u) < math.MinInt32) || (!neg && u > math.MaxInt32) {
			return protoreflect.Value{}, rangeErr(u, neg, k)
		}
		return protoreflect.ValueOfInt32(int32(int64(u))), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if !neg && u > math.MaxInt64 {
			return protoreflect.Value{}, rangeErr(u, neg, k)
		}
		return protoreflect.ValueOfInt64(int64(u)), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if neg || u > math.MaxUint32 {
			return protoreflect.Value{}, rangeErr(u, neg, k)
		}
		return protoreflect.ValueOfUint32(uint32(u)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if neg {
			return protoreflect.Value{}, rangeErr(u, neg, k)
		}
		return protoreflect.ValueOfUint64(u), nil
	}
	return protoreflect.Value{}, failf(ErrWrongType, "kind %v is no integer", k) // unreachable: callers pass integer kinds
}

func rangeErr(u uint64, neg bool, kind protoreflect.Kind) error {
	if neg {
		return failf(ErrRange, "%d overflows %v", int64(u), kind)
	}
	return failf(ErrRange, "%d overflows %v", u, kind)
}

// enum reads an enum as its number (any int32, so open enums keep unknown
// values; a float holding one too, see integer) or its value name. A
// google.protobuf.NullValue is nil, 0 or "NULL_VALUE", its one value; any
// other number is ErrRange.
func (s *decState) enum(ed protoreflect.EnumDescriptor) (protoreflect.Value, error) {
	c, err := s.peek()
	if err != nil {
		return protoreflect.Value{}, err
	}
	if ed.FullName() == wktNullValue {
		if n := s.nilSize(c); n > 0 {
			s.advance(n)
			return protoreflect.ValueOfEnum(0), nil
		}
	}
	if isStrCode(c) {
		name, err := s.str()
		if err != nil {
			return protoreflect.Value{}, err
		}
		ev := ed.Values().ByName(protoreflect.Name(name))
		if ev == nil {
			return protoreflect.Value{}, failf(ErrUnknownType, "%q is not a value of %s", name, ed.FullName())
		}
		return protoreflect.ValueOfEnum(ev.Number()), nil
	}
	u, neg, err := s.integer(protoreflect.EnumKind)
	if err != nil {
		return protoreflect.Value{}, err
	}
	if (neg && int64(u) < math.MinInt32) || (!neg && u > math.MaxInt32) {
		return protoreflect.Value{}, rangeErr(u, neg, protoreflect.EnumKind)
	}
	// NullValue has the one value 0, and the encoder writes every
	// NullValue as nil: a number kept here would read back as 0, so the
	// codec's round trip would change the message.
	if u != 0 && ed.FullName() == wktNullValue {
		return protoreflect.Value{}, failf(ErrRange, "%d is not a value of %s (only nil or 0)", int64(u), ed.FullName())
	}
	return protoreflect.ValueOfEnum(protoreflect.EnumNumber(int64(u))), nil
}

func (s *decState) timestamp(m protoreflect.Message) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if !isExtCode(c) {
		return wrongType(c, "timestamp ext")
	}
	id, n, err := s.d.DecodeExtHeader()
	if err != nil {
		return libErr(err)
	}
	if id != timestampExtID {
		return failf(ErrWrongType, "ext type %d where timestamp (-1) expected", id)
	}
	if n > s.r.Len() {
		return errEndOfInput
	}
	b := s.rest()
	var secs, nanos int64
	switch n {
	case 4:
		secs = int64(be32(b))
	case 8:
		v := uint64(be32(b))<<32 | uint64(be32(b[4:]))
		nanos, secs = int64(v>>34), int64(v&(1<<34-1))
	case 12:
		nanos, secs = int64(be32(b)), int64(uint64(be32(b[4:]))<<32|uint64(be32(b[8:])))
	default:
		return failf(ErrMalformed, "timestamp ext of %d bytes", n)
	}
	s.advance(n)
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos >= nanosPerSecond {
		return failf(ErrRange, "timestamp out of range: %d s, %d ns", secs, nanos)
	}
	fields := m.Descriptor().Fields()
	m.Set(fields.ByNumber(1), protoreflect.ValueOfInt64(secs))
	m.Set(fields.ByNumber(2), protoreflect.ValueOfInt32(int32(nanos)))
	return nil
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (s *decState) duration(m protoreflect.Message) error {
	b, err := s.str()
	if err != nil {
		return err
	}
	secs, nanos, ok := parseDuration(b)
	if !ok {
		return failf(ErrMalformed, "duration %q not in the form \"1.5s\"", b)
	}
	if secs < -maxDurationSeconds || secs > maxDurationSeconds {
		return failf(ErrRange, "duration %q out of range", b)
	}
	fields := m.Descriptor().Fields()
	m.Set(fields.ByNumber(1), protoreflect.ValueOfInt64(secs))
	m.Set(fields.ByNumber(2), protoreflect.ValueOfInt32(int32(nanos)))
	return nil
}

// parseDuration parses the ProtoJSON duration form exactly as protojson
// reads it, so that a string one codec takes the other takes too: an
// optional "-" or "+", whole seconds without leading zeros ("0", "15"),
// or none before a fraction (".5s"), an optional "." with up to 9 digits
// (none too: "1.s"), and "s". The range is checked by the caller; more
// digits than any int64 holds are no duration at all.
func parseDuration(b []byte) (secs, nanos int64, ok bool) {
	if len(b) < 2 || b[len(b)-1] != 's' {
		return 0, 0, false
	}
	b = b[:len(b)-1]
	neg := false
	switch b[0] {
	case '-':
		neg, b = true, b[1:]
	case '+':
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, 0, false
	}
	switch {
	case b[0] == '0':
		b = b[1:]
	case b[0] >= '1' && b[0] <= '9':
		for digits := 0; len(b) > 0 && b[0] >= '0' && b[0] <= '9'; digits++ {
			if digits == 18 { // beyond maxDurationSeconds, and near int64's end
				return 0, 0, false
			}
			secs = secs*10 + int64(b[0]-'0')
			b = b[1:]
		}
	case b[0] != '.':
		return 0, 0, false
	}
	if len(b) > 0 {
		if b[0] != '.' || len(b) > 10 {
			return 0, 0, false
		}
		scale := int64(nanosPerSecond)
		for _, c := range b[1:] {
			if c < '0' || c > '9' {
				return 0, 0, false
			}
			scale /= 10
			nanos += int64(c-'0') * scale
		}
	}
	if neg {
		secs, nanos = -secs, -nanos
	}
	return secs, nanos, true
}

func (s *decState) value(m protoreflect.Message, depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	fields := m.Descriptor().Fields()
	if n := s.nilSize(c); n > 0 {
		s.advance(n)
		m.Set(fields.ByNumber(1), protoreflect.ValueOfEnum(0))
		return nil
	}
	switch {
	case c == mpTrue || c == mpFalse:
		s.advance(1)
		m.Set(fields.ByNumber(4), protoreflect.ValueOfBool(c == mpTrue))
	case isIntCode(c) || isFloatCode(c):
		f, err := s.float("number")
		if err != nil {
			return err
		}
		m.Set(fields.ByNumber(2), protoreflect.ValueOfFloat64(f))
	case isStrCode(c):
		b, err := s.str()
		if err != nil {
			return err
		}
		m.Set(fields.ByNumber(3), protoreflect.ValueOfString(string(b)))
	case isMapCode(c):
		return s.field(m, fields.ByNumber(5), depth)
	case isArrayCode(c):
		return s.field(m, fields.ByNumber(6), depth)
	default:
		return wrongType(c, "google.protobuf.Value")
	}
	return nil
}

func (s *decState) anyMessage(m protoreflect.Message, depth int) error {
	if s.anyDepth >= maxAnyNesting {
		return errAnyNesting
	}
	s.anyDepth++
	defer func() { s.anyDepth-- }()
	c, err := s.peek()
	if err != nil {
		return err
	}
	if !isMapCode(c) {
		return wrongType(c, "map for google.protobuf.Any")
	}
	n, err := s.mapLen()
	if err != nil {
		return err
	}
	var url []byte
	valueAt, valueEnd, haveURL := -1, -1, false
	for range n {
		key, err := s.str()
		if err != nil {
			return fmt.Errorf("key in google.protobuf.Any: %w", err)
		}
		switch string(key) {
		case anyTypeKey:
			if haveURL {
				return failf(ErrMalformed, "google.protobuf.Any has two %q keys", anyTypeKey)
			}
			if url, err = s.str(); err != nil {
				return fmt.Errorf("google.protobuf.Any %s: %w", anyTypeKey, err)
			}
			haveURL = true
		case anyValueKey:
			if valueAt >= 0 {
				return failf(ErrMalformed, "google.protobuf.Any has two %q keys", anyValueKey)
			}
			// The value can come before the type that says how to read
			// it: note where it is and skip it for now.
			valueAt = len(s.data) - s.r.Len()
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			valueEnd = len(s.data) - s.r.Len()
		default:
			if s.o.RejectUnknown {
				return failf(ErrUnknownType, "unknown key %q in google.protobuf.Any", key)
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	}
	if !haveURL {
		if valueAt >= 0 {
			return failf(ErrMalformed, "google.protobuf.Any with %q but no %q", anyValueKey, anyTypeKey)
		}
		return nil
	}
	mt, err := s.o.Resolver.FindMessageByURL(string(url))
	if err != nil {
		return &failure{kind: ErrUnknownType, text: fmt.Sprintf("google.protobuf.Any %q: %v", url, err), cause: err}
	}
	inner := mt.New()
	// A missing value is the type's empty message, which for a Value is
	// one with no kind: neither this codec's encoder nor protojson can
	// write that, so a relay of what was accepted here would fail to send
	// it. protojson refuses it too ("missing \"value\" field").
	if valueAt < 0 && inner.Descriptor().FullName() == wktValue {
		return failf(ErrMalformed, "google.protobuf.Any of %s with no %q", wktValue, anyValueKey)
	}
	if valueAt >= 0 {
		// The decode must end where the skip did, at the end of the
		// value, not at the end of the Any's map: keys may come in any
		// order, and "@type" (or an unknown key) can follow "value". It
		// was compared with the map's end, which refused every Any whose
		// value came before another key.
		end := len(s.data) - s.r.Len()
		_, _ = s.r.Seek(int64(valueAt), io.SeekStart)
		err := s.message(inner, depth+1)
		if err == nil && len(s.data)-s.r.Len() != valueEnd {
			err = failf(ErrMalformed, "google.protobuf.Any value") // unreachable: skip and decode agree on extent
		}
		_, _ = s.r.Seek(int64(end), io.SeekStart)
		if errors.Is(err, errAnyNesting) {
			return err
		}
		if err != nil {
			return within(err, anyValueKey)
		}
	}
	raw, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(inner.Interface())
	if err != nil {
		return fmt.Errorf("google.protobuf.Any %q: %w", url, err)
	}
	fields := m.Descriptor().Fields()
	m.Set(fields.ByNumber(1), protoreflect.ValueOfString(string(url)))
	m.Set(fields.ByNumber(2), protoreflect.ValueOfBytes(raw))
	return nil
}

// skip consumes one value of any type, checking lengths like the typed
// paths, so an unknown key cannot smuggle in a hostile value. depth is the
// value's level: one more than that of the array, map or message holding
// it.
//
// skip also reads what the typed path will then decode (an Any's value is
// skipped before its type is known), but it cannot tell a message from a
// map field or a list: so it counts every array and map level, against
// twice RecursionLimit. Each message level of the typed path is at most
// two levels here (the message's map, then the list or map field that
// holds the next message), so skip accepts whatever the typed path
// accepts, and nested arrays in an unknown value still cannot exhaust the
// stack. Scalars do not recurse and are not counted.
func (s *decState) skip(depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	// uint: twice a limit near MaxInt does not overflow.
	if (isArrayCode(c) || isMapCode(c)) && uint(depth) > 2*uint(s.o.RecursionLimit) {
		return errNesting
	}
	size := 0 // payload bytes after the code byte, for fixed-size values
	switch {
	case c <= 0x7f || c >= 0xe0 || c == mpNil || c == mpTrue || c == mpFalse:
	case c == mpNever:
		return failf(ErrMalformed, "reserved code 0xc1")
	case c == mpFloat32:
		size = 4
	case c == mpFloat64:
		size = 8
	case c >= mpUint8 && c <= mpUint64:
		size = 1 << (c - mpUint8)
	case c >= mpInt8 && c <= mpInt64:
		size = 1 << (c - mpInt8)
	case isStrCode(c) || isBinCode(c):
		_, err := s.raw()
		return err
	case isArrayCode(c):
		n, err := s.arrayLen()
		if err != nil {
			return err
		}
		for range n {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case isMapCode(c):
		n, err := s.mapLen()
		if err != nil {
			return err
		}
		for range 2 * n {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case isExtCode(c):
		_, n, err := s.d.DecodeExtHeader()
		if err != nil {
			return libErr(err)
		}
		if n < 0 || n > s.r.Len() {
			return errEndOfInput
		}
		s.advance(n)
		return nil
	}
	if 1+size > s.r.Len() {
		return errEndOfInput
	}
	s.advance(1 + size)
	return nil
}
