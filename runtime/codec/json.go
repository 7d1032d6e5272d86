package codec

import (
	"cmp"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// JSONOptions configures the protojson codec. The zero value (and a nil
// *JSONOptions) gives the defaults, which follow the canonical ProtoJSON
// mapping (https://protobuf.dev/programming-guides/json/).
type JSONOptions struct {
	// UseProtoNames writes field names as in the .proto file (snake_case)
	// instead of their JSON names (lowerCamelCase). Decoding accepts both
	// either way. Default false: JSON names.
	UseProtoNames bool
	// UseEnumNumbers writes enum values as numbers instead of their names.
	// Decoding accepts both either way. Default false: names.
	UseEnumNumbers bool
	// EmitUnpopulated writes fields that are unset or hold their zero
	// value (as 0, "", false, [], {} or null). Costs bytes on every
	// message. An unset google.protobuf.Value field is written as null and
	// so reads back holding null_value. Default false: omitted.
	EmitUnpopulated bool
	// RejectUnknown fails decoding on a field name or an enum value name
	// the schema does not know. Default false: unknown fields are
	// discarded, so an older receiver accepts messages from a newer
	// sender, and so are unknown enum names, silently: a singular enum
	// field is left unset, a repeated element or map entry is dropped.
	// (The msgpack codec refuses an unknown enum name either way.)
	RejectUnknown bool
	// RecursionLimit bounds message nesting on decode; each level of
	// google.protobuf.Any or of JSON object in a google.protobuf.Struct
	// counts as one. On encode it bounds the nesting of
	// google.protobuf.Any values (a message decoded from protobuf binary
	// can hold any depth of them). Zero (or less) means 100, far below
	// protobuf's 10,000 because nested Any values cost the square of their
	// depth (see the package documentation).
	RecursionLimit int
}

// defaultJSONRecursionLimit is the JSON codec's default RecursionLimit:
// a message nested deeper is refused. It is far below protobuf's 10,000
// because protojson decodes each google.protobuf.Any and then re-encodes
// everything inside it to bytes, so nested Any values cost the square of
// their depth: 2,000 of them in 120 KB of JSON took 1.5 s and 230 MB to
// decode. Real schemas nest a few levels.
const defaultJSONRecursionLimit = 100

// NewJSON returns the protojson codec ("json"): the canonical ProtoJSON
// mapping, readable by a browser with no generated code, at several times
// the cost of the protobuf codec (see the package benchmarks) and a larger
// size. Output is one line of UTF-8 with
// no trailing newline, so it rides WebSocket text frames and fits an SSE
// data: line. The exact spacing of the output is not stable across builds
// (protojson randomises it on purpose); do not compare encoded bytes.
//
// Types in google.protobuf.Any are resolved in protoregistry.GlobalTypes.
func NewJSON(opts *JSONOptions) Codec {
	var o JSONOptions
	if opts != nil {
		o = *opts
	}
	return jsonCodec{
		mo: protojson.MarshalOptions{
			UseProtoNames:   o.UseProtoNames,
			UseEnumNumbers:  o.UseEnumNumbers,
			EmitUnpopulated: o.EmitUnpopulated,
		},
		uo: protojson.UnmarshalOptions{
			DiscardUnknown: !o.RejectUnknown,
			RecursionLimit: cmp.Or(max(o.RecursionLimit, 0), defaultJSONRecursionLimit),
		},
	}
}

type jsonCodec struct {
	mo protojson.MarshalOptions
	uo protojson.UnmarshalOptions
}

func (jsonCodec) Name() string { return NameJSON }
func (jsonCodec) Binary() bool { return false }

func (c jsonCodec) Marshal(m proto.Message) ([]byte, error) {
	return c.MarshalAppend(nil, m)
}

func (c jsonCodec) MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	if m != nil {
		if err := checkAnyNesting(m.ProtoReflect(), protoregistry.GlobalTypes, c.uo.RecursionLimit); err != nil {
			return dst, fmt.Errorf("%w: json: %w", ErrMarshal, err)
		}
	}
	out, err := c.mo.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("%w: json: %w", ErrMarshal, err)
	}
	return out, nil
}

func (c jsonCodec) Unmarshal(data []byte, m proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		return fmt.Errorf("%w: %w", ErrUnmarshal, ErrNilMessage)
	}
	if err := c.uo.Unmarshal(data, m); err != nil {
		return &unmarshalError{codec: NameJSON, err: err}
	}
	return nil
}
