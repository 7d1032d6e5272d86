package codec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wsrpc/wsrpc/internal/peertext"
)

// Errors returned by this package. Every Marshal error wraps ErrMarshal and
// every Unmarshal error wraps ErrUnmarshal, so a caller can tell a bad peer
// (ErrUnmarshal) from a bad local message (ErrMarshal) with errors.Is.
//
// The more specific sentinels below (ErrTruncated, ErrDepth, ErrRange, …)
// come from the msgpack codec, which wraps one as well where it applies.
// The proto and JSON codecs wrap only ErrMarshal or ErrUnmarshal (and
// ErrNilMessage, and ErrDepth for the JSON encoder's Any-nesting limit),
// around protobuf's own error, whose message says what went wrong but is
// no sentinel to test for.
//
// An Unmarshal error's text is the codec's name and then what is wrong,
// and where for msgpack: "msgpack: field seq
// (wsrpc.testing.v1.EchoRequest.seq): float where int64 expected: 1.5",
// with no sentinel's text in front. A peer may see only its first 123
// bytes, as a WebSocket close reason (RFC 6455 section 5.5).
var (
	// ErrMarshal wraps every failure to encode a message.
	ErrMarshal = errors.New("codec: marshal failed")
	// ErrUnmarshal wraps every failure to decode a message.
	ErrUnmarshal = errors.New("codec: unmarshal failed")

	// ErrInvalidName is returned by Register for an empty name or one that
	// is not an RFC 7230 token (it must fit in Sec-WebSocket-Protocol).
	ErrInvalidName = errors.New("codec: invalid codec name")
	// ErrDuplicate is returned by Register for a name already registered.
	ErrDuplicate = errors.New("codec: codec already registered")
	// ErrNilMessage is returned when the destination message is nil or a
	// typed nil pointer.
	ErrNilMessage = errors.New("codec: nil message")

	// ErrTruncated means the input ended inside a value.
	ErrTruncated = errors.New("codec: unexpected end of input")
	// ErrTrailingData means bytes follow the top-level value.
	ErrTrailingData = errors.New("codec: trailing data after message")
	// ErrDepth means the input nests deeper than the recursion limit.
	ErrDepth = errors.New("codec: nesting exceeds recursion limit")
	// ErrWrongType means a value's encoded type does not fit the field.
	ErrWrongType = errors.New("codec: wrong type for field")
	// ErrRange means a number does not fit the field, or a well-known type
	// holds a value outside its documented range.
	ErrRange = errors.New("codec: value out of range")
	// ErrInvalidUTF8 means a string is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("codec: invalid UTF-8 in string")
	// ErrDuplicateOneof means two fields of one oneof are both present.
	ErrDuplicateOneof = errors.New("codec: more than one field of a oneof")
	// ErrUnknownType means a google.protobuf.Any names a type the resolver
	// does not know, an enum value name is not defined, a key names no
	// field (with MsgpackOptions.RejectUnknown), or a "[full.name]" key
	// names an extension whose number is outside the message's extension
	// ranges.
	ErrUnknownType = errors.New("codec: unknown type")
	// ErrMalformed means the input is not well-formed for the codec's format.
	ErrMalformed = errors.New("codec: malformed input")
)

// unmarshalError is what the built-in codecs' Unmarshal returns for bad
// input: the codec's name, then the cause. The sentinels' texts are left
// out ("codec: unmarshal failed: msgpack: …: codec: wrong type for
// field: …" filled a close reason before its cause was reached);
// ErrUnmarshal and the cause's sentinels stay reachable through Unwrap.
type unmarshalError struct {
	codec string // the codec's name
	err   error
}

// Error leaves out the "proto: " that starts every error of protobuf's
// (protojson's, a proto.CheckInitialized): after the codec's name it
// says nothing. (protobuf writes a space or a no-break space after
// "proto:", at random, so that nobody matches its texts.)
//
// The rest goes through peertext.OneLine (control characters, line
// breaks, bidirectional overrides and bytes that are not UTF-8 escaped,
// cut at 2 KiB), as every peer's text in an error does: it quotes the
// input. protojson's syntax error prints the character it stopped at
// raw ("invalid value \x1b"); the msgpack decoder quotes what it prints
// (%q), but not at a bounded length, and it passes on a Resolver's error.
func (e *unmarshalError) Error() string {
	msg := e.err.Error()
	if rest, ok := strings.CutPrefix(msg, "proto:"); ok {
		msg = strings.TrimLeft(rest, " \u00a0")
	}
	return e.codec + ": " + peertext.OneLine(msg)
}

func (e *unmarshalError) Unwrap() []error { return []error{ErrUnmarshal, e.err} }

// failure is a msgpack decode error whose text says what is wrong in the
// input, without the text of the sentinel it stands for (kind): Unwrap
// returns that, and the error that caused it, if any.
type failure struct {
	kind  error
	text  string
	cause error
}

func failf(kind error, format string, args ...any) error {
	return &failure{kind: kind, text: fmt.Sprintf(format, args...)}
}

func (e *failure) Error() string { return e.text }

func (e *failure) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}
