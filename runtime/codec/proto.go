package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// ProtoOptions configures the protobuf binary codec. The zero value (and a
// nil *ProtoOptions) gives the defaults.
type ProtoOptions struct {
	// Deterministic sorts map entries so equal messages encode to equal
	// bytes within one binary. Costs a sort per map field. Default false.
	Deterministic bool
	// AllowPartial skips the check that proto2 required fields are set.
	// Default false.
	AllowPartial bool
	// DiscardUnknown drops fields the receiver's schema does not know
	// instead of keeping them for re-encoding. Default false (kept), the
	// protobuf convention.
	DiscardUnknown bool
	// RecursionLimit bounds message nesting on decode. Zero (or less, as
	// for the other codecs) means the protobuf default of 10000.
	RecursionLimit int
}

// NewProto returns the protobuf binary codec ("proto"): the standard wire
// format (https://protobuf.dev/programming-guides/encoding/), the most
// compact and cheapest to encode and decode. It rides binary frames.
func NewProto(opts *ProtoOptions) Codec {
	var o ProtoOptions
	if opts != nil {
		o = *opts
	}
	return protoCodec{
		mo: proto.MarshalOptions{Deterministic: o.Deterministic, AllowPartial: o.AllowPartial},
		// protobuf takes zero for its default but a negative limit
		// literally, refusing every message.
		uo: proto.UnmarshalOptions{AllowPartial: o.AllowPartial, DiscardUnknown: o.DiscardUnknown, RecursionLimit: max(o.RecursionLimit, 0)},
	}
}

type protoCodec struct {
	mo proto.MarshalOptions
	uo proto.UnmarshalOptions
}

func (protoCodec) Name() string { return NameProto }
func (protoCodec) Binary() bool { return true }

func (c protoCodec) Marshal(m proto.Message) ([]byte, error) {
	return c.MarshalAppend(nil, m)
}

func (c protoCodec) MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	out, err := c.mo.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("%w: proto: %w", ErrMarshal, err)
	}
	return out, nil
}

func (c protoCodec) Unmarshal(data []byte, m proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		return fmt.Errorf("%w: %w", ErrUnmarshal, ErrNilMessage)
	}
	if err := c.uo.Unmarshal(data, m); err != nil {
		return &unmarshalError{codec: NameProto, err: err}
	}
	return nil
}
