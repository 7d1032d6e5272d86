// Package codec encodes and decodes protobuf messages for the wsrpc wire:
// protobuf binary, ProtoJSON and MessagePack behind one Codec interface, and
// the registry that maps codec names and WebSocket subprotocols to codecs.
//
// # Overview
//
// A Codec has a Name, says whether its output is Binary (WebSocket binary
// frames) or text (WebSocket text frames and SSE data lines), and marshals
// with Marshal or MarshalAppend (which reuses the caller's buffer) and
// unmarshals with Unmarshal. The built-ins, with their default options:
//
//	Name       Subprotocol      Frames  Value    Constructor
//	"proto"    "wsrpc.proto"    binary  Proto    NewProto(*ProtoOptions)
//	"json"     "wsrpc.json"     text    JSON     NewJSON(*JSONOptions)
//	"msgpack"  "wsrpc.msgpack"  binary  Msgpack  NewMsgpack(*MsgpackOptions)
//
// The wsrpc layer negotiates the codec with Sec-WebSocket-Protocol
// (RFC 6455 section 4.1): the client offers subprotocols in order of
// preference, the server selects the first it knows (BySubprotocol), and
// both sides then use that codec for every message of the connection. SSE
// streams use JSON by default.
//
// Every Marshal error wraps ErrMarshal and every Unmarshal error wraps
// ErrUnmarshal. The msgpack codec also wraps a more specific sentinel
// (ErrTruncated, ErrDepth, ErrRange, …; see errors.go); the proto and JSON
// codecs wrap protobuf's own error, whose message says what went wrong.
// An Unmarshal error's text is the codec's name, then where and what:
// "msgpack: field rNested[1].id (wsrpc.testing.v1.Nested.id): float
// where int32 expected: 1.5", "json: (line 1:8): invalid value for int64
// field seq: 1.5"; no sentinel's text comes first, because a peer may see
// only its first 123 bytes, as a WebSocket close reason (RFC 6455 section
// 5.5). Bad input is an error, never a panic.
//
// # MessagePack mapping
//
// The msgpack codec walks messages with protobuf reflection, so any
// generated or dynamic message works. It follows ProtoJSON where MessagePack
// has no better type (https://protobuf.dev/programming-guides/json/):
//
//	protobuf                   msgpack (encode)              also decoded from
//	message                    map, keys are JSON names      proto field names as keys
//	                           ("fInt32"), fields in         (any key ProtoJSON
//	                           declaration order (as         accepts)
//	                           ProtoJSON writes them, not
//	                           number order), unpopulated
//	                           omitted
//	extension field            key "[full.name]"
//	int32 sint32 sfixed32      int (smallest encoding)       float32, float64 holding an
//	int64 sint64 sfixed64      int                           integer in the field's range
//	uint32 fixed32             uint (smallest encoding)      (a fraction is ErrWrongType,
//	uint64 fixed64             uint                          beyond the range ErrRange)
//	float                      float32                       float64, int (rounded to
//	                                                         float32; an error only
//	                                                         if finite and it rounds
//	                                                         to ±Inf)
//	double                     float64 (NaN, ±Inf kept)      float32, int
//	bool                       bool
//	string                     str (must be valid UTF-8)
//	bytes                      bin
//	enum                       int (the number)              str (the value name), a
//	                                                         float as for int32
//	repeated T                 array of T
//	map<K, V>                  map; keys as str, bool and    bool, int and float keys;
//	                           integer keys in ProtoJSON's   str keys parsed with
//	                           form ("true", "-1"; they      strconv, as protojson does
//	                           were bool and int before)     ("01" too)
//	oneof                      the set case's key only       two cases is an error
//	google.protobuf.Timestamp  ext type -1, the msgpack
//	                           timestamp extension (32-, 64-
//	                           or 96-bit form, the smallest
//	                           that fits)
//	google.protobuf.Duration   str in ProtoJSON form, "1.5s"
//	google.protobuf.Struct     map of str to Value
//	google.protobuf.Value      nil, float64, str, bool, map  any int for number_value
//	                           or array by kind
//	google.protobuf.ListValue  array of Value
//	google.protobuf.NullValue  nil                           int 0, str "NULL_VALUE"
//	                                                         (another int is an error)
//	wrappers (Int32Value …)    the wrapped scalar, as above
//	google.protobuf.Empty      empty map
//	google.protobuf.FieldMask  array of str, paths verbatim
//	google.protobuf.Any        map {"@type": type URL,       keys in any order; no
//	                           "value": the embedded message "value" is the empty
//	                           in this mapping}; an empty    message (an error for
//	                           Any is an empty map           a Value, which has no
//	                                                         empty form)
//
// On decode, a nil value for a field means "not set", except for
// google.protobuf.Value (null_value) and NullValue fields. msgpackr's
// undefined, fixext 1 of ext type 0 with the data byte 0 (d4 00 00), is
// read as nil wherever a nil is accepted; any other ext type 0 is not. Unknown keys are
// skipped unless MsgpackOptions.RejectUnknown is set. Integers out of a
// field's range, a key given twice (whatever its first value, nil and
// zero included, as in ProtoJSON), two cases of one oneof, a Timestamp or
// Duration outside its documented range, a NullValue other than nil, 0 or
// "NULL_VALUE", an extension key whose number is outside the message's
// extension ranges (ErrUnknownType, as ProtoJSON refuses it), and trailing
// bytes are errors.
// Encoding fails for a Value with no kind set, an out-of-range Timestamp or
// Duration, an invalid UTF-8 string, and an Any whose type the Resolver does
// not know. A typed nil message encodes as its type's empty message, as in
// the other codecs (so a nil *Value fails, as JSON fails on it); only an
// untyped nil is written as an empty map.
//
// Hostile input is bounded: a claimed array, map, str, bin or ext length is
// checked against the bytes actually left before anything is allocated or
// looped over, and nesting is limited by MsgpackOptions.RecursionLimit,
// which counts message levels as protobuf does (lists and map fields add
// none), the same way on encode and decode; skipped unknown values, whose
// arrays and maps all count, are bounded at twice the limit.
//
// Nested google.protobuf.Any values are limited separately, in both
// self-describing codecs: on decode each Any is decoded and then
// re-encoded to protobuf bytes with everything inside it, and on encode
// each Any's bytes are decoded and then written out with everything inside
// them, so the cost of nesting grows with the square of its depth either
// way. msgpack refuses more than 32 levels of Any with ErrDepth, both ways;
// JSON refuses messages nested more than JSONOptions.RecursionLimit deep
// (100 by default) on decode, which bounds Any nesting too, and more than
// RecursionLimit levels of Any on encode (ErrDepth). A message decoded
// from protobuf binary carries its Any values as bytes, at any depth: this
// is what stops relaying one to a JSON or msgpack peer from costing the
// square of its size.
//
// # Concurrency
//
// Codecs are immutable and safe for concurrent use. The registry (Register,
// Lookup, BySubprotocol, Names) is guarded by a mutex; Register is meant for
// init functions.
package codec
