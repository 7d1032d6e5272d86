package wsrpc

import (
	"encoding/json"
	"net/url"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// sseFuzzRequests are the request types FuzzDecodeSSERequest fills: flat
// ones of every scalar kind, one with a field named "request", and ones
// that EncodeSSERequest sends whole in ?request= (a message field, though
// a server reads its flat fields' parameters too; a well-known type with
// a JSON form of its own).
var sseFuzzRequests = []func() proto.Message{
	func() proto.Message { return dynMsg("Flat") },
	func() proto.Message { return dynMsg("ReqNamed") },
	func() proto.Message { return dynMsg("WithNull") },
	func() proto.Message { return dynMsg("Resp") },
	func() proto.Message { return &structpb.Struct{} },
	func() proto.Message { return &testingv1.WatchRequest{} },
}

// FuzzDecodeSSERequest feeds DecodeSSERequest the queries an SSE handler
// can be sent. It must not panic; what it refuses is invalid_argument
// (the handler's 400), never another code; and what it accepts must
// survive EncodeSSERequest and a second decode unchanged, so a client
// can always send what a server can read.
func FuzzDecodeSSERequest(f *testing.F) {
	for _, s := range []string{
		"", "f_int32=-7&f_string=a+b&r_bool=true&r_bool=false", "fInt64=9007199254740993&fBytes=AAE-_w",
		"fDouble=NaN&fFloat=-Infinity&oUint64=18446744073709551615", "fEnum=BLUE&rEnum=1&rEnum=RED",
		"cInt=1&cStr=x", "request=%7B%22count%22%3A2%7D", "request=x&count=2", "nulls=NULL_VALUE&nulls=0",
		`request={"eInt32":1}`, `request={"a":[1,{"b":null}]}`, "room=r&request=", "fString=%FF", "fInt32=1e3",
		"eInt32=3&e_string=x", "eInt32=3&mInner=%7B%7D",
	} {
		for which := range sseFuzzRequests {
			f.Add(s, uint8(which))
		}
	}
	f.Fuzz(func(t *testing.T, raw string, which uint8) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // the handler answers 400 before decoding
		}
		newReq := sseFuzzRequests[int(which)%len(sseFuzzRequests)]
		req := newReq()
		if err := DecodeSSERequest(q, req); err != nil {
			if c := CodeOf(err); c != CodeInvalidArgument {
				t.Fatalf("DecodeSSERequest(%q) = %v, code %v; want invalid_argument", raw, err, c)
			}
			return
		}
		enc, err := EncodeSSERequest(req)
		if err != nil {
			t.Fatalf("%q decoded to %v, which does not encode: %v", raw, req, err)
		}
		again := newReq()
		if err := DecodeSSERequest(viaWire(t, enc), again); err != nil {
			t.Fatalf("%q decoded to %v, encoded as %q, which does not decode: %v", raw, req, enc.Encode(), err)
		}
		if !proto.Equal(req, again) {
			t.Fatalf("%q decoded to %v, encoded as %q, decoded again to %v", raw, req, enc.Encode(), again)
		}
	})
}

// FuzzDecodeSSEEvent feeds the typed SSE client's event decoder what a
// server may send. It must not panic, and an event it accepts must come
// out of NewSSEEvent as the same response: the client reads no more than
// a server can write (a server of its own schema, or, for a "message"
// event whose response has no case set, one whose response has a field
// beside the oneof).
func FuzzDecodeSSEEvent(f *testing.F) {
	for _, ev := range [][2]string{
		{"e_int32", "-7"}, {"e_string", `"a\nb"`}, {"e_bytes", `"AAE="`}, {"e_double", `"NaN"`}, {"e_enum", `"BLUE"`},
		{"m_inner", `{"x":"y"}`}, {"m_ts", `"1970-01-01T00:00:01Z"`}, {"m_value", `[1,"a",null,{"b":true}]`},
		{"m_struct", `{}`}, {"m_empty", `{}`}, {"m_sv", `""`}, {"e_null", "null"}, {"e_int32", "null"},
		{"e_int32", `1,"eString":"x"`}, {"e_int32", `1,"zzz":2`}, {"e_bool", "true}"}, {"message", `{"eInt32":1}`}, {"tick", `{"seq":"3"}`},
		{"note", `"hi"`}, {"", `{}`}, {"message", `{"note":"n","seq":"2"}`}, {"level", `"5"`}, {"seq", "1"},
	} {
		for which := range 3 {
			f.Add(ev[0], ev[1], uint8(which))
		}
	}
	responses := []func() proto.Message{
		func() proto.Message { return dynMsg("Resp") },
		func() proto.Message { return &testingv1.WatchResponse{} },
		// A oneof beside another field: "message" events, and the case
		// events of a server whose response is the oneof alone.
		func() proto.Message { return &testingv1.WatchResponseWithSeq{} },
	}
	f.Fuzz(func(t *testing.T, typ, data string, which uint8) {
		newResp := responses[int(which)%len(responses)]
		resp := newResp()
		ok, err := decodeSSEEvent(sse.Event{Type: typ, Data: data}, resp)
		if !ok || err != nil {
			return
		}
		if !json.Valid([]byte(data)) {
			t.Fatalf("event %q %q: data that is not a JSON value decoded to %v", typ, data, resp)
		}
		ev, err := NewSSEEvent(resp, "")
		if err != nil && (typ == SSEDefaultEventType || typ == "") {
			// A whole response with no case set: a server whose response
			// has a field beside the oneof sends it as a "message" event.
			b, merr := codec.JSON.Marshal(resp)
			if merr != nil {
				t.Fatal(merr)
			}
			ev, err = sse.Event{Data: string(b)}, nil
		}
		if err != nil {
			t.Fatalf("event %q %q decoded to %v, which NewSSEEvent refuses: %v", typ, data, resp, err)
		}
		again := newResp()
		if nullValueCase(resp) {
			// protojson writes any NullValue as null, an unknown number
			// (data 1) too, which reads back as NULL_VALUE (0).
			proto.Reset(resp)
			if _, err := decodeSSEEvent(ev, resp); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := decodeSSEEvent(ev, again); !ok || err != nil || !proto.Equal(resp, again) {
			t.Fatalf("event %q %q decoded to %v, sent as %q %q, decoded again to %v (ok %v, err %v)", typ, data, resp, ev.Type, ev.Data, again, ok, err)
		}
		_ = parseSSEError(data) // the error event's data: must not panic either
	})
}

// nullValueCase reports whether m's set oneof case is a
// google.protobuf.NullValue.
func nullValueCase(m proto.Message) bool {
	rm := m.ProtoReflect()
	od := eventOneof(rm.Descriptor())
	if od == nil {
		return false
	}
	fd := rm.WhichOneof(od)
	return fd != nil && fd.Enum() != nil && fd.Enum().FullName() == "google.protobuf.NullValue"
}
