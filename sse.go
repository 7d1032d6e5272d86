package wsrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// SSE event types reserved by wsrpc. They contain a dot, which no protobuf
// field name does, so they never collide with a oneof case.
const (
	// SSEEventEnd ends a stream whose handler returned nil; its data is
	// "{}" and its id SSEEndEventID. A typed client and the wsrpc sse
	// command stop at it instead of reconnecting; a browser should call
	// EventSource.close() on it, and one that does not stops after one
	// more request (see SSEEndEventID).
	SSEEventEnd = "wsrpc.end"
	// SSEEndEventID is the id of the SSEEventEnd event, reserved for it
	// (SendEvent refuses it). A client that reconnects after the end (an
	// EventSource the page did not close) sends it as its last event ID,
	// in Last-Event-ID or the lastEventId parameter (see
	// sse.Stream.LastEventID), and such a request is answered 204 No
	// Content once the handshake interceptors have run, without running
	// the handler, whose call is over: EventSource then stops for good
	// (WHATWG HTML §9.2.3: a status other than 200 fails the connection
	// without reconnecting) and the sse client ends with io.EOF, where
	// each reconnection, one every reconnection time, would run the call
	// again, for ever. SSEEventError gets no id: an error may be
	// transient, and a client reconnecting after it resumes from its last
	// event.
	SSEEndEventID = "wsrpc.end"
	// SSEEventError ends a stream whose handler failed; its data is
	// {"code":"<code name>","message":"…"}.
	SSEEventError = "wsrpc.error"
	// SSEDefaultEventType is the type of events from responses that are
	// not a single oneof: EventSource's default, seen by onmessage.
	SSEDefaultEventType = "message"
	// SSERequestParam is the query parameter that carries a whole request
	// as protojson (the "request form").
	SSERequestParam = "request"
)

// sseJSON returns the codec SSE requests and event data are read and
// written with on a side configured with codecs: the one its WebSocket
// calls use for the wsrpc.json subprotocol, the first codec named "json"
// (a handler's WithCodecs list; a client's offer, WithPreferredCodec
// first), so that its options (codec.JSONOptions: RejectUnknown,
// EmitUnpopulated, UseProtoNames, RecursionLimit…) hold on both
// transports. Without one, or if it is a binary codec, which an event's
// data cannot carry, it is codec.JSON.
func sseJSON(codecs []codec.Codec) codec.Codec {
	for _, k := range codecs {
		if k.Name() == codec.NameJSON {
			if k.Binary() {
				break
			}
			return k
		}
	}
	return codec.JSON
}

// eventOneofs caches, per message type, the oneof whose cases are SSE
// event types (nil when the message is not a single oneof).
var eventOneofs sync.Map // protoreflect.FullName -> eventOneofEntry

// eventOneofEntry is a cached eventOneof result and the descriptor it is
// for: another descriptor may carry the same name (a dynamicpb message
// from a reloaded schema), and its oneof is not this one's.
type eventOneofEntry struct {
	md protoreflect.MessageDescriptor
	od protoreflect.OneofDescriptor
}

// eventOneof returns the single top-level oneof that holds every field of
// md, or nil (see SSERule in wsrpc/v1/options.proto). It is nil for a
// well-known type with a JSON form of its own (google.protobuf.Value is a
// single oneof): protojson reads and writes such a message only whole, so
// it travels as one "message" event.
func eventOneof(md protoreflect.MessageDescriptor) protoreflect.OneofDescriptor {
	if v, ok := eventOneofs.Load(md.FullName()); ok {
		if e := v.(eventOneofEntry); e.md == md {
			return e.od
		}
		return findEventOneof(md) // a namesake's: not cached
	}
	od := findEventOneof(md)
	eventOneofs.Store(md.FullName(), eventOneofEntry{md, od})
	return od
}

// findEventOneof is eventOneof without the cache.
func findEventOneof(md protoreflect.MessageDescriptor) protoreflect.OneofDescriptor {
	fields := md.Fields()
	if fields.Len() > 0 && !specialJSON(md) {
		if o := fields.Get(0).ContainingOneof(); o != nil && !o.IsSynthetic() && o.Fields().Len() == fields.Len() {
			return o
		}
	}
	return nil
}

// NewSSEEvent encodes msg as the SSE event a wsrpc SSE handler sends for
// it: for a response that is a single oneof, the type is the set case's
// field name and the data that case's protojson value; otherwise, and for
// google.protobuf.Value (a oneof whose JSON form is the bare value), the
// type is "message" (left implicit) and the data the whole message as
// protojson. id becomes the event's id ("" for none).
//
// An id you give must be unique across process restarts and replicas,
// not only within one process's run: a client resumes from its
// Last-Event-ID, and an id that a restarted process (or another replica)
// gives to another event makes the replay start there, so the client
// skips the events in between without a gap being reported
// (ServerStream.Gap). Prefix a number of your own with an epoch drawn at
// start, as sse.Ring does with the ids it assigns ("3f9a1c2e-17"), or
// leave id empty and let an sse.Ring assign one, epoch included.
//
// Use it to append events to a replay store (sse.Store.Append) and send
// the recorded event with ServerStream.SendEvent (a hub topic records
// such events given SSEEventCodec and SSEEventType). It fails with
// CodeInternal for a oneof response with no case set, and with
// CodeInvalidArgument for a nil interface, which names no message type
// (a typed nil, (*M)(nil), is M's empty message).
//
// It encodes with codec.JSON's defaults. A handler's Send encodes with
// the JSON codec given to WithCodecs instead, if there is one (the first
// codec named "json" that is not binary), so that its options hold on
// SSE as on WebSocket.
func NewSSEEvent(msg proto.Message, id string) (sse.Event, error) {
	return newSSEEvent(codec.JSON, msg, id)
}

// newSSEEvent is NewSSEEvent with the JSON codec k (see sseJSON) for the
// data.
func newSSEEvent(k codec.Codec, msg proto.Message, id string) (sse.Event, error) {
	ev := sse.Event{ID: id}
	if msg == nil {
		return ev, errNilMessage("sse")
	}
	rm := msg.ProtoReflect()
	var b []byte
	var err error
	if od := eventOneof(rm.Descriptor()); od == nil {
		b, err = k.Marshal(msg)
	} else {
		fd := rm.WhichOneof(od)
		if fd == nil {
			return ev, Errorf(CodeInternal, "sse: %s has no %s case set, so it has no event type", rm.Descriptor().FullName(), od.Name())
		}
		ev.Type = string(fd.Name())
		if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			b, err = k.Marshal(rm.Get(fd).Message().Interface())
		} else {
			b, err = fieldJSON(k, msg, fd)
		}
	}
	if err != nil {
		return ev, Errorf(CodeInternal, "sse: %w", err)
	}
	if len(b) == 0 {
		return ev, emptySSEData(k, rm.Descriptor())
	}
	ev.Data = string(b)
	return ev, nil
}

// emptySSEData is newSSEEvent's error for a codec that encoded a message
// as nothing, which no JSON value is: written, a "message" event would
// have no data field, and a client does not dispatch an event whose data
// buffer is empty (WHATWG HTML §9.2.6 "dispatch the event"), so it would
// be lost without a word (with an id, it only moved the client's
// Last-Event-ID past it); a case event's empty data is no JSON for its
// client to read.
func emptySSEData(k codec.Codec, md protoreflect.MessageDescriptor) error {
	return Errorf(CodeInternal, "sse: codec %s encoded %s as empty data, no JSON value (an event with no data is not even dispatched): not sent", k.Name(), md.FullName())
}

// SSEEventCodec encodes a message as the data of the SSE event a wsrpc SSE
// handler sends for it: NewSSEEvent(m, "").Data — for a response that is
// a single oneof, the set case's protojson value; otherwise the whole
// message as protojson. It is a text codec (Binary false) for
// hub.TopicOptions.SSECodec; with SSEEventType as hub.TopicOptions.EventType
// it makes a topic record, and Topic.Follow pass to
// ServerStream.SendEvent, exactly the events the method's handler would
// send, which generated clients and browsers read like any other:
//
//	hub.TopicOptions[*chatv1.WatchResponse]{
//		SSECodec:  wsrpc.SSEEventCodec,
//		EventType: wsrpc.SSEEventType[*chatv1.WatchResponse],
//	}
//
// (Go infers SSEEventType's type argument in an assignment,
// opts.EventType = wsrpc.SSEEventType, but not in a composite literal,
// which must name it.)
//
// A oneof response needs both: with the defaults (codec.JSON, no event
// type) its events carry the whole message as "message" events, which a
// generated Go client reads but a browser listening for the case event
// types never sees, and with only an event type a client refuses their
// data. Marshal fails, as NewSSEEvent does, for a oneof response with no
// case set. It only encodes: the data alone does not say which case it
// is (the event type does), so Unmarshal always fails — read such events
// with the generated client. It encodes with codec.JSON's defaults, not
// the JSON codec given to WithCodecs, as NewSSEEvent does.
var SSEEventCodec codec.Codec = sseEventCodec{}

// sseEventCodec is SSEEventCodec's type.
type sseEventCodec struct{}

func (sseEventCodec) Name() string { return "wsrpc-sse-event" }
func (sseEventCodec) Binary() bool { return false }

func (sseEventCodec) Marshal(m proto.Message) ([]byte, error) {
	ev, err := NewSSEEvent(m, "")
	if err != nil {
		return nil, err
	}
	return []byte(ev.Data), nil
}

func (sseEventCodec) MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	ev, err := NewSSEEvent(m, "")
	if err != nil {
		return dst, err
	}
	return append(dst, ev.Data...), nil
}

func (sseEventCodec) Unmarshal([]byte, proto.Message) error {
	return Errorf(CodeUnimplemented, "SSEEventCodec only encodes: an event's data decodes only with its event type (use the generated client)")
}

// SSEEventType returns the type of the SSE event a wsrpc SSE handler sends
// for m (NewSSEEvent's): the set case's field name for a response that is
// a single oneof, "" (a "message" event, the type left implicit) for any
// other response and for a oneof with no case set. It fits
// hub.TopicOptions.EventType, with SSEEventCodec.
func SSEEventType[M proto.Message](m M) string {
	rm := m.ProtoReflect()
	od := eventOneof(rm.Descriptor())
	if od == nil {
		return ""
	}
	if fd := rm.WhichOneof(od); fd != nil {
		return string(fd.Name())
	}
	return ""
}

// fieldJSON returns the protojson value of one populated field of msg,
// as the JSON codec k writes it (UseEnumNumbers, say). The field is the
// one case set of msg's only oneof, so it is the object's one member,
// under its JSON name or, with UseProtoNames, its proto name.
func fieldJSON(k codec.Codec, msg proto.Message, fd protoreflect.FieldDescriptor) ([]byte, error) {
	b, err := k.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	v, ok := obj[fd.JSONName()]
	if !ok {
		v, ok = obj[string(fd.Name())]
	}
	if !ok {
		return nil, fmt.Errorf("field %s missing from its JSON form", fd.Name())
	}
	var out bytes.Buffer
	if err := json.Compact(&out, v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// decodeSSEEvent decodes an event of a wsrpc SSE stream into msg. It
// reads both event forms of SSERule (wsrpc/v1/options.proto), whatever
// msg's own shape, because a server of another version of the schema may
// use the other one: adding a field beside the oneof, or moving it in,
// switches the server between them. A "message" event is the whole
// response, unless msg is a single oneof with a case named "message",
// whose event it is; an event named after a case of one of msg's
// (non-synthetic) oneofs is that case's value, set on a fresh msg. It
// reports false, without error, for any other event type (a newer
// server's case, or a foreign event), which the caller skips. It decodes
// with codec.JSON's defaults (see decodeSSEEventWith).
func decodeSSEEvent(ev sse.Event, msg proto.Message) (bool, error) {
	return decodeSSEEventWith(codec.JSON, ev, msg)
}

// decodeSSEEventWith is decodeSSEEvent with the JSON codec k (see
// sseJSON), so that a typed client's WithCodecs options (RejectUnknown,
// RecursionLimit) hold for its event data as for its WebSocket messages.
func decodeSSEEventWith(k codec.Codec, ev sse.Event, msg proto.Message) (bool, error) {
	md := msg.ProtoReflect().Descriptor()
	od := eventOneof(md)
	if ev.Type == SSEDefaultEventType || ev.Type == "" {
		if od == nil || od.Fields().ByName(SSEDefaultEventType) == nil {
			return true, k.Unmarshal([]byte(ev.Data), msg)
		}
	}
	var fd protoreflect.FieldDescriptor
	if od != nil {
		fd = od.Fields().ByName(protoreflect.Name(ev.Type))
	} else if !specialJSON(md) {
		// A whole-message response reads the case events of a server
		// whose response is its oneof alone. Not a well-known type's
		// (google.protobuf.Value is a oneof), whose JSON form is not an
		// object of its fields: no server sends its cases as events.
		fd = md.Fields().ByName(protoreflect.Name(ev.Type))
		if fd != nil {
			if o := fd.ContainingOneof(); o == nil || o.IsSynthetic() {
				fd = nil
			}
		}
	}
	if fd == nil {
		return false, nil
	}
	return true, decodeSSECase(k, ev, msg, fd)
}

// decodeSSECase decodes the data of a case event, the value of the oneof
// case fd as NewSSEEvent writes it, into msg, which then has that case set
// and nothing else, with the JSON codec k.
func decodeSSECase(k codec.Codec, ev sse.Event, msg proto.Message, fd protoreflect.FieldDescriptor) error {
	if fd.Message() != nil {
		// A message case's data is that message's protojson (NewSSEEvent):
		// decoded into the case directly, no wrapping object to build, and
		// protojson refuses anything after the value.
		proto.Reset(msg)
		return k.Unmarshal([]byte(ev.Data), msg.ProtoReflect().Mutable(fd).Message().Interface())
	}
	// A scalar case's data goes inside an object built around it, so it
	// must be one JSON value on its own: `1,"other":2` would parse there,
	// its extra member dropped as an unknown field, where a browser's
	// JSON.parse refuses it.
	if !json.Valid([]byte(ev.Data)) {
		return fmt.Errorf("event %q: data is not a JSON value: %q", ev.Type, ev.Data)
	}
	obj := make([]byte, 0, len(ev.Data)+len(fd.JSONName())+4)
	obj = append(obj, '{')
	obj = strconv.AppendQuote(obj, fd.JSONName())
	obj = append(obj, ':')
	obj = append(obj, ev.Data...)
	obj = append(obj, '}')
	if err := k.Unmarshal(obj, msg); err != nil {
		return err
	}
	if !msg.ProtoReflect().Has(fd) {
		// protojson reads {"note":null} as no case at all: a response no
		// server sends (NewSSEEvent refuses one).
		return fmt.Errorf("event %q has no value (data %q)", ev.Type, ev.Data)
	}
	return nil
}

// sseErrorData is the data of a "wsrpc.error" event.
type sseErrorData struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// sseErrorEvent is the "wsrpc.error" event for err; a code outside the
// table is sent as unknown, as on a WebSocket (close code 4002).
func sseErrorEvent(err *Error) sse.Event {
	b, _ := json.Marshal(sseErrorData{Code: err.code.onWire().String(), Message: err.msg})
	return sse.Event{Type: SSEEventError, Data: string(b)}
}

func parseSSEError(data string) *Error {
	var d sseErrorData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return Errorf(CodeUnknown, "malformed %s event: %q", SSEEventError, data)
	}
	c, ok := ParseCode(d.Code)
	if !ok {
		c = CodeUnknown
	}
	return &Error{code: c, msg: d.Message}
}

// specialJSON reports whether md is a well-known type that protojson
// writes as something other than an object of its fields (the ProtoJSON
// format's table of well-known types): Any (an object with "@type"),
// Timestamp, Duration and FieldMask (strings), Struct, Value and
// ListValue (any JSON value), and the wrappers (their bare value).
func specialJSON(md protoreflect.MessageDescriptor) bool {
	if md.FullName().Parent() != "google.protobuf" {
		return false
	}
	switch md.Name() {
	case "Any", "Timestamp", "Duration", "FieldMask", "Struct", "Value", "ListValue",
		"DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value",
		"BoolValue", "StringValue", "BytesValue":
		return true
	}
	return false
}

// flatRequest reports whether md's requests travel in the flat form: every
// field a scalar, an enum, or a repeated scalar or enum, and md not a
// well-known type with a JSON form of its own (a Timestamp's fields are
// scalars, but its protojson is a string, not the object of fields the
// flat form is built from and read into), which takes the request form.
// Nor has md extension ranges (proto2, editions): the flat form has a
// parameter per field only, so an extension set would be lost without a
// word, while the request form's protojson carries it ("[pkg.ext]", the
// ProtoJSON format's extension keys). Decided from the schema, never from
// whether a request holds an extension, so both sides agree.
func flatRequest(md protoreflect.MessageDescriptor) bool {
	if specialJSON(md) || md.ExtensionRanges().Len() > 0 {
		return false
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if !flatField(fields.Get(i)) {
			return false
		}
	}
	return true
}

// flatField reports whether fd can travel as a query parameter of the
// flat form: a scalar, an enum, or a repeated scalar or enum.
func flatField(fd protoreflect.FieldDescriptor) bool {
	return !fd.IsMap() && fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind
}

// sseRequestJSON encodes requests for the query: protojson with enum
// values as numbers, which a server reads whether or not its schema has
// the value (proto3 enums are open), where a name it does not know is a
// 400 in the flat form and dropped without a word in the request form.
var sseRequestJSON = codec.NewJSON(&codec.JSONOptions{UseEnumNumbers: true})

// EncodeSSERequest returns the query that carries req to an SSE handler
// (see SSERule in wsrpc/v1/options.proto): each populated field as a
// parameter named by its JSON name when every field is a scalar, enum or
// repeated one of those; otherwise, for a well-known type with a JSON
// form of its own (Timestamp, Duration, FieldMask, Any, Struct, Value,
// ListValue, the wrappers), and for a message with extension ranges
// (proto2), the whole request as protojson in the "request" parameter,
// extensions included. Enum values are numbers in both forms (decimal in
// the flat form), so a value the server's schema lacks still reaches it.
// An empty request is an empty query. A nil interface, which names no
// request type, fails with CodeInvalidArgument; a typed nil is the empty
// request.
func EncodeSSERequest(req proto.Message) (url.Values, error) {
	if req == nil {
		return nil, errNilMessage("sse request")
	}
	q := url.Values{}
	rm := req.ProtoReflect()
	if !flatRequest(rm.Descriptor()) {
		if !hasFields(rm) {
			return q, nil
		}
		b, err := sseRequestJSON.Marshal(req)
		if err != nil {
			return nil, Errorf(CodeInternal, "sse request: %w", err)
		}
		q.Set(SSERequestParam, string(b))
		return q, nil
	}
	if !hasFields(rm) {
		return q, nil
	}
	b, err := sseRequestJSON.Marshal(req)
	if err != nil {
		return nil, Errorf(CodeInternal, "sse request: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, Errorf(CodeInternal, "sse request: %w", err)
	}
	fields := rm.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		raw, ok := obj[fd.JSONName()]
		if !ok {
			continue
		}
		if fd.IsList() {
			var elems []json.RawMessage
			if err := json.Unmarshal(raw, &elems); err != nil {
				return nil, Errorf(CodeInternal, "sse request: %w", err)
			}
			for _, e := range elems {
				q.Add(fd.JSONName(), jsonScalarText(fd, e))
			}
			continue
		}
		q.Set(fd.JSONName(), jsonScalarText(fd, raw))
	}
	return q, nil
}

func hasFields(rm protoreflect.Message) bool {
	has := false
	rm.Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool { has = true; return false })
	return has
}

// jsonScalarText is a JSON scalar's text without quotes. protojson
// writes a google.protobuf.NullValue as null, even with enum numbers,
// which is its one value's number, 0, in a query.
func jsonScalarText(fd protoreflect.FieldDescriptor, raw json.RawMessage) string {
	if fd.Kind() == protoreflect.EnumKind && string(bytes.TrimSpace(raw)) == "null" {
		return "0"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// DecodeSSERequest fills req from the query of an SSE request, accepting
// both forms (see EncodeSSERequest): the request form for any request,
// and the flat form for the scalar, enum and repeated scalar or enum
// fields of any request but a well-known type with a JSON form of its
// own, even of one that EncodeSSERequest sends whole, so that the flat
// URLs of clients built before a message field was added keep working.
// A field's parameter is named by its JSON name (lowerCamelCase) or, as
// protojson reads both, its proto name (snake_case); an enum value by its
// name or number. Unknown parameters are ignored (a page may add its own,
// such as a token). These are errors with CodeInvalidArgument: a
// "request" parameter mixed with field parameters; a parameter for a
// field that travels only in the request form (a message, map or
// well-known-type field, any field of a well-known type; extensions have
// no parameter); a value that does not parse, or a string that is not
// UTF-8; a repeated parameter for a singular field; a field given under
// both its names; a request without a proto2 required field, in either
// form or as the empty query. In a flat request with a field named
// "request", that parameter is the field; in one that is not flat, it
// is the whole request if its value starts with "{" (white space aside),
// else the field. The request form is read with codec.JSON's defaults;
// an SSE handler reads it with the JSON codec given to WithCodecs instead,
// if there is one (the first codec named "json" that is not binary), so
// that its options (RejectUnknown, RecursionLimit) hold.
func DecodeSSERequest(q url.Values, req proto.Message) error {
	return decodeSSERequest(codec.JSON, q, req)
}

// decodeSSERequest is DecodeSSERequest reading the request form with the
// JSON codec k, so that a handler's WithCodecs options (RejectUnknown,
// RecursionLimit) hold for it as for a WebSocket request. The flat form
// keeps codec.JSON: it is built here from known fields only, checked
// parameter by parameter (unknown parameters are ignored on purpose, an
// unknown enum name refused), so no decoding option changes what it
// reads.
func decodeSSERequest(k codec.Codec, q url.Values, req proto.Message) error {
	rm := req.ProtoReflect()
	fields := rm.Descriptor().Fields()
	flat := flatRequest(rm.Descriptor())
	// In a flat request with a field named "request" (JSON or proto
	// name), the parameter is that field: such a request has only the
	// flat form. In one that is not flat, the parameter is the whole
	// request only if it is an object: an old client, built while the
	// request was flat, sends the field's text (?request=books).
	named := fields.ByJSONName(SSERequestParam) != nil || fields.ByName(SSERequestParam) != nil
	vs, ok := q[SSERequestParam]
	if ok && named && (flat || !strings.HasPrefix(strings.TrimSpace(vs[0]), "{")) {
		ok = false // the field's flat parameter
	}
	if ok {
		if len(vs) != 1 {
			return Errorf(CodeInvalidArgument, "the %q parameter is repeated", SSERequestParam)
		}
		for i := 0; i < fields.Len(); i++ {
			if name, ok := fieldParamName(q, fields.Get(i)); ok && name != SSERequestParam {
				return Errorf(CodeInvalidArgument, "the %q parameter cannot be mixed with field parameters (%q)", SSERequestParam, name)
			}
		}
		if err := k.Unmarshal([]byte(vs[0]), req); err != nil {
			return Errorf(CodeInvalidArgument, "request parameter: %w", err)
		}
		return nil
	}
	if specialJSON(rm.Descriptor()) {
		// Such a request travels only whole: its protojson is a string
		// or a bare value, not an object of its fields, so a parameter
		// named like one of them (?seconds=1 for a Timestamp) is a
		// mistake, which would otherwise leave it unset without a word.
		for i := 0; i < fields.Len(); i++ {
			if name, ok := fieldParamName(q, fields.Get(i)); ok {
				return Errorf(CodeInvalidArgument, "parameter %q: %s is sent whole, as protojson in the %q parameter", name, rm.Descriptor().FullName(), SSERequestParam)
			}
		}
		proto.Reset(req)
		return nil
	}
	// The flat form, for the flat fields of any request, not only of one
	// that EncodeSSERequest sends flat: a client built before a message
	// field was added to the request sends the flat form, and its
	// requests (and bookmarked URLs) keep working. No parameter is the
	// empty request, which a message with required fields (proto2)
	// cannot be: protojson refuses it, as in the request form.
	var obj bytes.Buffer
	obj.WriteByte('{')
	n := 0
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		pname, ok := fieldParamName(q, fd)
		if !ok {
			continue
		}
		if !flatField(fd) {
			// A hand-written ?filter=… would otherwise leave the field
			// unset without a word.
			return Errorf(CodeInvalidArgument, "parameter %q: %s is a message or map field, which travels only in the %q parameter, with the whole request as protojson", pname, fd.Name(), SSERequestParam)
		}
		vs := q[pname]
		if pn := string(fd.Name()); pn != pname && q.Has(pn) && protoNameParam(fd) {
			return Errorf(CodeInvalidArgument, "parameters %q and %q both set %s", pname, pn, fd.Name())
		}
		if !fd.IsList() && len(vs) != 1 {
			return Errorf(CodeInvalidArgument, "parameter %q is repeated but %s is not", fd.JSONName(), fd.Name())
		}
		if n > 0 {
			obj.WriteByte(',')
		}
		n++
		name, _ := json.Marshal(fd.JSONName())
		obj.Write(name)
		obj.WriteByte(':')
		if fd.IsList() {
			obj.WriteByte('[')
			for j, v := range vs {
				if j > 0 {
					obj.WriteByte(',')
				}
				if err := writeScalarJSON(&obj, fd, v); err != nil {
					return err
				}
			}
			obj.WriteByte(']')
			continue
		}
		if err := writeScalarJSON(&obj, fd, vs[0]); err != nil {
			return err
		}
	}
	obj.WriteByte('}')
	if err := codec.JSON.Unmarshal(obj.Bytes(), req); err != nil {
		return Errorf(CodeInvalidArgument, "query parameters: %w", err)
	}
	return nil
}

// fieldParamName returns the name under which q holds fd's parameter:
// its JSON name (lowerCamelCase, what EncodeSSERequest and browsers'
// pages built from the ProtoJSON form use) or, as protojson also reads
// it, its proto name (snake_case), which was otherwise an unknown
// parameter, ignored, leaving the field unset without a word. The JSON
// name comes first when both are present (DecodeSSERequest refuses that).
// A proto name that is another field's JSON name is that field's, as
// protojson looks a name up by JSON name first (a field renamed with
// json_name, the old name given to a new field: a = 1 [json_name = "b"]
// beside b = 2 [json_name = "c"]).
func fieldParamName(q url.Values, fd protoreflect.FieldDescriptor) (string, bool) {
	if q.Has(fd.JSONName()) {
		return fd.JSONName(), true
	}
	if name := string(fd.Name()); q.Has(name) && protoNameParam(fd) {
		return name, true
	}
	return "", false
}

// protoNameParam reports whether a parameter under fd's proto name is
// fd's: the name differs from its JSON name and is no field's JSON name.
func protoNameParam(fd protoreflect.FieldDescriptor) bool {
	name := string(fd.Name())
	return name != fd.JSONName() && fd.ContainingMessage().Fields().ByJSONName(name) == nil
}

// writeScalarJSON writes a query value as the JSON protojson expects:
// bools bare, everything else quoted (protojson accepts quoted numbers).
func writeScalarJSON(w io.Writer, fd protoreflect.FieldDescriptor, v string) error {
	if fd.Kind() == protoreflect.BoolKind {
		if v != "true" && v != "false" {
			return Errorf(CodeInvalidArgument, "parameter %q: %q is not true or false", fd.JSONName(), v)
		}
		_, err := io.WriteString(w, v)
		return err
	}
	if fd.Kind() == protoreflect.EnumKind {
		// A value name, or a number (protojson's other spelling); an
		// unknown name is an error here, where protojson would drop it.
		if n, err := strconv.ParseInt(v, 10, 32); err == nil {
			if n != 0 && fd.Enum().FullName() == "google.protobuf.NullValue" {
				// Its one value is 0, and protojson writes any NullValue
				// as null: another number would not round-trip.
				return Errorf(CodeInvalidArgument, "parameter %q: %s has the one value NULL_VALUE (0), not %d", fd.JSONName(), fd.Enum().FullName(), n)
			}
			_, err := io.WriteString(w, v)
			return err
		}
		if fd.Enum().Values().ByName(protoreflect.Name(v)) == nil {
			return Errorf(CodeInvalidArgument, "parameter %q: %q is not a value of %s", fd.JSONName(), v, fd.Enum().FullName())
		}
	}
	if fd.Kind() == protoreflect.StringKind && !utf8.ValidString(v) {
		// json.Marshal would turn the bad bytes into U+FFFD; protobuf
		// strings are UTF-8, and the request form refuses them too.
		return Errorf(CodeInvalidArgument, "parameter %q: not valid UTF-8", fd.JSONName())
	}
	b, _ := json.Marshal(v)
	_, err := w.Write(b)
	return err
}

// errNilMessage is the error of an encoder given a nil proto.Message
// interface: with no type, there is no descriptor to encode it by (its
// ProtoReflect would panic).
func errNilMessage(what string) *Error {
	return Errorf(CodeInvalidArgument, "%s: nil message: it has no type (a typed nil, (*M)(nil), is M's empty message)", what)
}
