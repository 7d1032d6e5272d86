package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestSSERequestForms pins both query forms of options.proto's SSERule.
func TestSSERequestForms(t *testing.T) {
	flat := &testingv1.WatchRequest{Room: "r 1", Count: 3, Tags: []string{"a", "b"}, Fail: true, MinLevel: testingv1.Level_LEVEL_WARN, Since: -5, Token: []byte{0xff, 0xfe}}
	q, err := wsrpc.EncodeSSERequest(flat)
	if err != nil {
		t.Fatal(err)
	}
	// Enum values go as numbers (minLevel=2), which a server reads even
	// when its schema lacks the value (TestSSEEncodeEnumNumbers).
	want := url.Values{"room": {"r 1"}, "count": {"3"}, "tags": {"a", "b"}, "fail": {"true"}, "minLevel": {"2"}, "since": {"-5"}, "token": {"//4="}}
	if q.Encode() != want.Encode() {
		t.Fatalf("flat form %s, want %s", q.Encode(), want.Encode())
	}
	nested := &testingv1.SearchRequest{Filter: &testingv1.Filter{Query: "q"}, Limit: 2}
	q2, err := wsrpc.EncodeSSERequest(nested)
	if err != nil {
		t.Fatal(err)
	}
	if len(q2) != 1 || q2.Get("request") == "" {
		t.Fatalf("request form %v", q2)
	}
	empty, _ := wsrpc.EncodeSSERequest(&testingv1.SearchRequest{})
	if len(empty) != 0 {
		t.Fatalf("empty request gives %v", empty)
	}

	for _, tc := range []struct {
		q    url.Values
		into proto.Message
		want proto.Message
	}{
		{q, &testingv1.WatchRequest{}, flat},
		{q2, &testingv1.SearchRequest{}, nested},
		{url.Values{"request": {`{"room":"x","count":2}`}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{Room: "x", Count: 2}},
		{url.Values{"token": {"_-8"}, "minLevel": {"2"}, "other": {"ignored"}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{Token: []byte{0xff, 0xef}, MinLevel: testingv1.Level_LEVEL_WARN}},
		// The proto name too, as protojson reads it (see TestSSEProtoNameParams).
		{url.Values{"min_level": {"LEVEL_INFO"}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{MinLevel: testingv1.Level_LEVEL_INFO}},
		{url.Values{}, &testingv1.SearchRequest{}, &testingv1.SearchRequest{}},
	} {
		if err := wsrpc.DecodeSSERequest(tc.q, tc.into); err != nil {
			t.Fatalf("%v: %v", tc.q, err)
		}
		if !proto.Equal(tc.into, tc.want) {
			t.Fatalf("%v decoded to %v, want %v", tc.q, tc.into, tc.want)
		}
	}
	for _, bad := range []url.Values{
		{"count": {"1.5"}}, {"room": {"a", "b"}}, {"fail": {"1"}}, {"request": {"{}"}, "count": {"1"}},
		{"request": {"{}", "{}"}}, {"minLevel": {"LEVEL_NOPE"}}, {"request": {`{"filter":3}`}},
	} {
		var into proto.Message = &testingv1.WatchRequest{}
		if bad.Has("request") && bad.Get("request") != "{}" {
			into = &testingv1.SearchRequest{}
		}
		if err := wsrpc.DecodeSSERequest(bad, into); wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
			t.Errorf("%v: error %v, want invalid_argument", bad, err)
		}
	}
}

// TestSSEEventShapes pins event types and data for oneof and plain
// responses, and refuses a oneof response with no case.
func TestSSEEventShapes(t *testing.T) {
	ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Level{Level: 7}}, "id-1")
	if err != nil || ev.Type != "level" || ev.Data != `"7"` || ev.ID != "id-1" {
		t.Fatalf("scalar case: %+v %v", ev, err)
	}
	ev, err = wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_UserJoined{UserJoined: &testingv1.Joined{}}}, "")
	if err != nil || ev.Type != "user_joined" || ev.Data != `{}` {
		t.Fatalf("empty message case: %+v %v", ev, err)
	}
	ev, err = wsrpc.NewSSEEvent(&testingv1.SearchResponse{Rank: 1}, "")
	if err != nil || ev.Type != "" || compactJSON(t, ev.Data) != `{"rank":1}` {
		t.Fatalf("plain message: %+v %v", ev, err)
	}
	if _, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{}, ""); wsrpc.CodeOf(err) != wsrpc.CodeInternal {
		t.Fatalf("no case: %v", err)
	}
}

// TestSSEEventCodecAndType: SSEEventCodec's encoding and SSEEventType are
// NewSSEEvent's data and type, for oneof responses (each case) and
// others, so a hub topic configured with them records the events a wsrpc
// SSE handler sends. The codec is a text codec that refuses to decode
// (the data alone does not name its case) and, like NewSSEEvent, refuses
// a oneof response with no case set.
func TestSSEEventCodecAndType(t *testing.T) {
	cd := wsrpc.SSEEventCodec
	if cd.Binary() {
		t.Fatal("SSEEventCodec is binary; SSE needs a text codec")
	}
	check := func(m proto.Message, typ string) {
		t.Helper()
		want, err := wsrpc.NewSSEEvent(m, "")
		if err != nil {
			t.Fatal(err)
		}
		if want.Type != typ {
			t.Fatalf("NewSSEEvent(%v).Type = %q, want %q", m, want.Type, typ)
		}
		b, err := cd.Marshal(m)
		if err != nil || string(b) != want.Data {
			t.Errorf("Marshal(%v) = %s, %v; want %s", m, b, err, want.Data)
		}
		b, err = cd.MarshalAppend([]byte("x"), m)
		if err != nil || string(b) != "x"+want.Data {
			t.Errorf("MarshalAppend(x, %v) = %s, %v; want x%s", m, b, err, want.Data)
		}
		var got string
		switch m := m.(type) {
		case *testingv1.WatchResponse:
			got = wsrpc.SSEEventType(m)
		case *testingv1.SearchResponse:
			got = wsrpc.SSEEventType(m)
		}
		if got != want.Type {
			t.Errorf("SSEEventType(%v) = %q, want %q", m, got, want.Type)
		}
		if err := cd.Unmarshal(b[1:], m.ProtoReflect().New().Interface()); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", b[1:])
		}
	}
	check(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "hi"}}, "note")
	check(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Level{Level: 7}}, "level")
	check(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{}}}, "tick")
	check(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_UserJoined{UserJoined: &testingv1.Joined{}}}, "user_joined")
	check(&testingv1.SearchResponse{Rank: 1}, "")

	none := &testingv1.WatchResponse{}
	if b, err := cd.Marshal(none); err == nil {
		t.Errorf("Marshal of a oneof with no case = %s", b)
	}
	if b, err := cd.MarshalAppend([]byte("x"), none); err == nil || string(b) != "x" {
		t.Errorf("MarshalAppend of a oneof with no case = %s, %v; want dst and an error", b, err)
	}
	if typ := wsrpc.SSEEventType(none); typ != "" {
		t.Errorf("SSEEventType of a oneof with no case = %q", typ)
	}
}

// TestSSEWellKnownTypes: well-known types whose protojson is not an
// object of their fields (the ProtoJSON format's table: Any, Timestamp,
// Duration, FieldMask, Struct, Value, ListValue, the wrappers) travel
// whole. As a request they take the "request" form: the flat form, which
// their scalar fields used to select, is built from and read into that
// object, so the client failed before sending a StringValue or a
// Timestamp and the server read ?value=hi as an empty request. As a
// response, google.protobuf.Value (a single oneof) is one "message" event
// with the whole value as data: the per-case mapping made the server fail
// on every Value and the client decode a number_value event as a struct.
func TestSSEWellKnownTypes(t *testing.T) {
	packed, err := anypb.New(wrapperspb.String("in an Any"))
	if err != nil {
		t.Fatal(err)
	}
	list, _ := structpb.NewList([]any{1, "a"})
	obj, _ := structpb.NewStruct(map[string]any{"k": true})
	for _, req := range []proto.Message{
		wrapperspb.String("hi"), wrapperspb.Int64(7), wrapperspb.UInt32(8), wrapperspb.Bool(true),
		wrapperspb.Bytes([]byte{0xff}), wrapperspb.Double(1.5), wrapperspb.Float(2.5),
		timestamppb.New(time.Unix(1, 5)), durationpb.New(1500 * time.Millisecond),
		&fieldmaskpb.FieldMask{Paths: []string{"a.b", "c"}}, packed, structpb.NewNumberValue(3), list, obj,
	} {
		name := req.ProtoReflect().Descriptor().Name()
		q, err := wsrpc.EncodeSSERequest(req)
		if err != nil {
			t.Errorf("%s: EncodeSSERequest: %v", name, err)
			continue
		}
		want, _ := protojson.Marshal(req)
		if len(q) != 1 || !q.Has("request") || compactJSON(t, q.Get("request")) != compactJSON(t, string(want)) {
			t.Errorf("%s: query %v, want the request form with %s", name, q, want)
			continue
		}
		into := req.ProtoReflect().New().Interface()
		if err := wsrpc.DecodeSSERequest(q, into); err != nil || !proto.Equal(into, req) {
			t.Errorf("%s: DecodeSSERequest = %v, %v; want %v", name, into, err, req)
		}
	}

	for _, tc := range []struct {
		v    *structpb.Value
		data string
	}{
		{structpb.NewNumberValue(3), "3"},
		{structpb.NewNullValue(), "null"},
		{structpb.NewStringValue("s"), `"s"`},
		{structpb.NewListValue(list), `[1,"a"]`},
	} {
		ev, err := wsrpc.NewSSEEvent(tc.v, "")
		if err != nil || ev.Type != "" || compactJSON(t, ev.Data) != tc.data {
			t.Errorf("NewSSEEvent(%v) = %+v, %v; want a message event with data %s", tc.v, ev, err, tc.data)
		}
	}

	// End to end: a StringValue request, Value responses.
	sent := []*structpb.Value{structpb.NewNumberValue(3), structpb.NewStringValue("got hi"), structpb.NewNullValue(), structpb.NewStructValue(obj)}
	h := wsrpc.NewSSEHandler("/t/V", func(ctx context.Context, req *wrapperspb.StringValue, s *wsrpc.ServerStream[structpb.Value]) error {
		if req.GetValue() != "hi" {
			return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "request %q, want hi", req.GetValue())
		}
		for _, v := range sent {
			if err := s.Send(v); err != nil {
				return err
			}
		}
		return nil
	})
	c := wsrpc.NewSSEClient[wrapperspb.StringValue, structpb.Value](nil, newServer(t, h)+"/t/V", "/t/V")
	st, err := c.Call(testContext(t), wrapperspb.String("hi"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, want := range sent {
		if got, err := st.Receive(); err != nil || !proto.Equal(got, want) {
			t.Fatalf("Receive = %v, %v; want %v", got, err, want)
		}
	}
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive at the end = %v, want io.EOF", err)
	}

	// A per-case event is not Value's: skipped, not decoded as a struct.
	raw := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: number_value\ndata: 4\n\ndata: 3\n\nevent: wsrpc.end\ndata: {}\n\n")
	}))
	c2 := wsrpc.NewSSEClient[emptypb.Empty, structpb.Value](nil, raw, "/t/V")
	st2, err := c2.Call(testContext(t), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if got, err := st2.Receive(); err != nil || !proto.Equal(got, structpb.NewNumberValue(3)) {
		t.Fatalf("Receive = %v, %v; want the message event's 3", got, err)
	}
}

// TestSSERefusalStalledBody: a refusal whose body stalls (a proxy's 503
// that sends part of its page, or an event stream) fails Call within
// sse.StatusError's bound on that read (a second), with the part that
// came as the reason. The client's capture read the body first, with no
// bound, and Call waited for the whole body (10 s here).
func TestSSERefusalStalledBody(t *testing.T) {
	for _, ctype := range []string{"text/plain", "text/event-stream"} {
		t.Run(ctype, func(t *testing.T) {
			release := make(chan struct{})
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ctype)
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("overloaded"))
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}))
			defer close(release) // before newServer's cleanup waits for the handler
			c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/w", "/w")
			start := time.Now()
			st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
			if err == nil {
				_, err = st.Receive()
				st.Close()
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("a refusal with a stalled body took %v", took)
			}
			if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
				t.Errorf("Call = %v, want unavailable (503)", err)
			}
			if want := ctype == "text/plain"; strings.Contains(errString(err), "overloaded") != want {
				t.Errorf("Call = %v; the body's start as the reason: %v", err, want)
			}
		})
	}
}

// TestSSERefusedReconnectionCode: a typed SSE stream reconnects on its
// own (Last-Event-ID); when the server refuses the reconnection (here 401
// with Wsrpc-Code unauthenticated: an expired token), Receive reports the
// server's code, as Call does for a refused first request. It used to
// report CodeUnavailable: the *sse.StatusError went through the mapping
// for transport errors instead of the captured response.
func TestSSERefusedReconnectionCode(t *testing.T) {
	var calls atomic.Int64
	refuseSecond := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if calls.Add(1) > 1 {
				return ctx, wsrpc.Errorf(wsrpc.CodeUnauthenticated, "token expired")
			}
			// A maximum stream duration: the stream ends without
			// wsrpc.end, so the client reconnects.
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			context.AfterFunc(ctx, cancel)
			return next(ctx, hs)
		}
	})
	h := wsrpc.NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "hi"}}); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}, wsrpc.WithInterceptors(refuseSecond))
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, newServer(t, h)+"/t/W", "/t/W",
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond}))
	st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if m, err := st.Receive(); err != nil || m.GetNote() != "hi" {
		t.Fatalf("first Receive = %v %v", m, err)
	}
	_, err = st.Receive()
	if calls.Load() < 2 {
		t.Fatalf("no reconnection happened (Receive = %v)", err)
	}
	wantCode(t, err, wsrpc.CodeUnauthenticated, "token expired")
}

// TestSSEUndecodableEventEndsCall: as on a WebSocket, an event the client
// cannot decode ends the call: Receive reports invalid_argument, the
// response body is closed (the handler's context ends), and a later
// Receive reports the same error. The stream used to stay open.
func TestSSEUndecodableEventEndsCall(t *testing.T) {
	ended := make(chan error, 1)
	h := wsrpc.NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		// "level" is an int64: a string of letters is not one.
		if err := s.SSE().Send(sse.Event{Type: "level", Data: `"high"`}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * handlerBound):
		}
		ended <- ctx.Err()
		return ctx.Err()
	})
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, newServer(t, h)+"/t/W", "/t/W")
	st, err := c.Call(testContext(t), &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Receive()
	if wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
		t.Fatalf("Receive = %v, want invalid_argument", err)
	}
	if _, again := st.Receive(); again != err {
		t.Fatalf("Receive after the error = %v, want %v again", again, err)
	}
	if got := waitSeen(t, ended, "the handler's context is live: the stream was left open"); !errors.Is(got, context.Canceled) {
		t.Fatalf("handler ctx = %v", got)
	}
}

// TestSSENoEventAfterEnd guards the end of an SSE stream whose handler
// returned while goroutines of its own still send: wsrpc.end must be the
// last event, since clients stop at it (a browser calls
// EventSource.close()) and drop whatever follows. The end event and the
// stream's close were two steps (now one, sse.Stream.CloseWith), and with
// three late senders about one response in five carried a late event
// after wsrpc.end.
func TestSSENoEventAfterEnd(t *testing.T) {
	const rounds, late = 30, 3
	var stop atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	h := wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		started := make(chan struct{}, late)
		for range late {
			wg.Go(func() {
				started <- struct{}{}
				for i := 0; i < 100000 && !stop.Load(); i++ {
					if s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "late"}}) != nil {
						return
					}
				}
			})
		}
		for range late {
			<-started
		}
		return s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "own"}})
	})
	url := newServer(t, h)
	ctx := testContext(t)
	bad := 0
	for range rounds {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, after, ok := strings.Cut(string(body), "event: "+wsrpc.SSEEventEnd+"\n")
		if !ok {
			t.Fatalf("no %s in %q", wsrpc.SSEEventEnd, body[max(0, len(body)-200):])
		}
		if strings.Contains(after, "event: ") {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d responses carried an event after %s", bad, rounds, wsrpc.SSEEventEnd)
	}
}

// TestSSEEndStopsReconnection guards the end of an SSE call against a
// client that does not stop at wsrpc.end (a page that never calls
// EventSource.close(), as README's new EventSource(url + "?ticks=3")):
// the stream drops after the end event, the client reconnects, and each
// reconnection used to run the whole call again, every reconnection time,
// for ever. wsrpc.end now carries the reserved id wsrpc.end, so the
// reconnection says it saw the end (Last-Event-ID, or the lastEventId
// parameter of a page that re-creates its EventSource), and the server
// answers it 204 No Content without running the handler or the hooks:
// EventSource stops for good on it (WHATWG HTML §9.2.3) and the sse
// client ends with io.EOF. The handshake interceptors still run, so that
// a CORS header goes with the 204. The typed client still stops at
// wsrpc.end with io.EOF without reconnecting, and SendEvent refuses the
// reserved id.
func TestSSEEndStopsReconnection(t *testing.T) {
	var runs, connects, closes atomic.Int32
	sendEvent := make(chan error, 1)
	cors := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hs.ResponseHeader.Set("Access-Control-Allow-Origin", "https://app.example")
			return next(ctx, hs)
		}
	})
	h := wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		runs.Add(1)
		if req.GetRoom() == "reserved" {
			sendEvent <- s.SendEvent(sse.Event{ID: wsrpc.SSEEndEventID, Data: "{}"})
		}
		return s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "once"}})
	}, wsrpc.WithInterceptors(cors),
		wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) { connects.Add(1) }),
		wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { closes.Add(1) }))
	base := newServer(t, h)
	ctx := testContext(t)

	// A client that reconnects after wsrpc.end, as EventSource does.
	var types []string
	var ids []string
	for ev, err := range sse.Events(ctx, base, &sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 5}) {
		if err != nil {
			t.Fatalf("after %q: %v, want the end (io.EOF on the 204)", types, err)
		}
		types = append(types, ev.Type)
		ids = append(ids, ev.ID)
		if len(types) > 4 {
			t.Fatalf("events %q: the call ran again", types)
		}
	}
	if want := []string{"note", wsrpc.SSEEventEnd}; strings.Join(types, ",") != strings.Join(want, ",") || ids[1] != wsrpc.SSEEndEventID {
		t.Fatalf("events %q with ids %q, want %q, the end with id %q", types, ids, want, wsrpc.SSEEndEventID)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the handler ran %d times for one call, want 1", n)
	}

	// The reconnection itself, by hand: the header, else the parameter;
	// the header wins.
	for _, tc := range []struct {
		name, query, header string
		want                int
	}{
		{"Last-Event-ID", "", wsrpc.SSEEndEventID, http.StatusNoContent},
		{"lastEventId", "?lastEventId=" + wsrpc.SSEEndEventID, "", http.StatusNoContent},
		{"header wins", "?lastEventId=" + wsrpc.SSEEndEventID, "41", http.StatusOK},
		{"another id", "", "41", http.StatusOK},
	} {
		runs.Store(0)
		connects.Store(0)
		closes.Store(0)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+tc.query, nil)
		if tc.header != "" {
			req.Header.Set("Last-Event-ID", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Fatalf("%s: %s (CORS %q) %q, want %d with the interceptor's header", tc.name, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"), body, tc.want)
		}
		wantRuns := int32(0)
		if tc.want == http.StatusOK {
			wantRuns = 1
		} else if len(body) != 0 {
			t.Fatalf("%s: 204 with a body %q", tc.name, body)
		}
		if runs.Load() != wantRuns || connects.Load() != wantRuns || closes.Load() != wantRuns {
			t.Fatalf("%s: handler, OnConnect, OnClose ran %d, %d, %d times, want %d", tc.name, runs.Load(), connects.Load(), closes.Load(), wantRuns)
		}
	}

	// The typed client stops at wsrpc.end and does not reconnect.
	runs.Store(0)
	st, err := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base, "/t/Watch",
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond})).Call(ctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := st.Receive(); err != nil || res.GetNote() != "once" {
		t.Fatalf("typed client: %v, %v", res, err)
	}
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("typed client at the end: %v, want io.EOF", err)
	}
	if id := st.LastEventID(); id != "" {
		t.Fatalf("typed client's LastEventID after the end: %q, want the last before the end's reserved id (none)", id)
	}
	time.Sleep(50 * time.Millisecond) // a reconnection would have come by now
	if n := runs.Load(); n != 1 {
		t.Fatalf("typed client: the handler ran %d times, want 1", n)
	}

	// No event of the handler's may carry the reserved id.
	resp, err := http.Get(base + "?room=reserved")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-sendEvent; wsrpc.CodeOf(err) != wsrpc.CodeInternal {
		t.Fatalf("SendEvent with the reserved id: %v, want internal", err)
	}
}

// TestSSEOnCloseMirrorsWebSocket guards the CloseInfo OnClose gets for an
// SSE stream that its session's context ended (no end event goes out):
// it must say what a WebSocket session says for the same cause — 4004
// deadline_exceeded for a deadline a handshake interceptor set, 4001
// canceled for a context it cancelled, 1001 (going away) with
// ShutdownReason and unavailable for Tracker.Shutdown. SSE reported 1001
// canceled for all three.
func TestSSEOnCloseMirrorsWebSocket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		session func(context.Context) context.Context // nil: Tracker.Shutdown ends it
		code    websocket.StatusCode
		errCode wsrpc.Code
	}{
		{"deadline", func(ctx context.Context) context.Context {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			context.AfterFunc(ctx, cancel)
			return ctx
		}, wsrpc.CodeDeadlineExceeded.CloseCode(), wsrpc.CodeDeadlineExceeded},
		{"cancelled", func(ctx context.Context) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx
		}, wsrpc.CodeCanceled.CloseCode(), wsrpc.CodeCanceled},
		{"shutdown", nil, websocket.StatusGoingAway, wsrpc.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			session := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					if tc.session != nil {
						ctx = tc.session(ctx)
					}
					return next(ctx, hs)
				}
			})
			closes := make(chan wsrpc.CloseInfo, 2)
			var sseInfo, wsInfo wsrpc.CloseInfo
			tracker := wsrpc.NewTracker()
			opts := []wsrpc.Option{wsrpc.WithInterceptors(session), wsrpc.WithTracker(tracker),
				wsrpc.WithOnClose(func(_ context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					if info.Spec.Transport == wsrpc.TransportSSE {
						sseInfo = ci
					} else {
						wsInfo = ci
					}
					closes <- ci
				})}
			wait := func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
				<-ctx.Done()
				return ctx.Err()
			}
			mux := http.NewServeMux()
			mux.Handle("/sse", wsrpc.NewSSEHandler("/t/Watch", wait, opts...))
			mux.Handle("/ws", wsrpc.NewServerStreamHandler("/t/Watch", wait, opts...))
			base := newServer(t, mux)
			ctx := testContext(t)

			// A raw request: the typed client would reconnect.
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sse", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			go func() { _, _ = io.Copy(io.Discard, resp.Body) }()
			wst, err := wsrpc.NewServerStreamClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/ws", "/t/Watch").Call(ctx, &testingv1.WatchRequest{})
			if err != nil {
				t.Fatal(err)
			}
			defer wst.Close()
			go func() { _, _ = wst.Receive() }()
			if tc.session == nil {
				for deadline := time.Now().Add(5 * time.Second); tracker.Len() != 2; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("tracker has %d sessions, want 2", tracker.Len())
					}
				}
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if err := tracker.Shutdown(sctx); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			}
			for range 2 {
				waitSeen(t, closes, "OnClose never ran")
			}
			if wsInfo.Code != tc.code || wsrpc.CodeOf(wsInfo.Err) != tc.errCode {
				t.Fatalf("WebSocket OnClose %+v, want %d %v (the reference)", wsInfo, tc.code, tc.errCode)
			}
			if sseInfo.Code != wsInfo.Code || sseInfo.Reason != wsInfo.Reason || wsrpc.CodeOf(sseInfo.Err) != tc.errCode || sseInfo.Err.Error() != wsInfo.Err.Error() {
				t.Errorf("SSE OnClose %d %q %v; the WebSocket session's %d %q %v", sseInfo.Code, sseInfo.Reason, sseInfo.Err, wsInfo.Code, wsInfo.Reason, wsInfo.Err)
			}
		})
	}
}

// TestSSEReconnectLimitIsNotCleanEnd guards the typed SSE client's end of
// an outage: when every reconnection is accepted and closed unanswered
// until MaxReconnectionAttempts runs out, the runtime's ErrReconnectLimit
// wraps the last attempt's io.EOF. That is a failed call, not a clean
// end: Receive reports unavailable (as the WebSocket client does for the
// same outage) keeping the cause, and All yields it. Both used to take
// the wrapped io.EOF for the stream's normal end.
func TestSSEReconnectLimitIsNotCleanEnd(t *testing.T) {
	for _, useAll := range []bool{false, true} {
		name := "Receive"
		if useAll {
			name = "All"
		}
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int64
			h := wsrpc.NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
				if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "hi"}}); err != nil {
					return err
				}
				<-ctx.Done()
				return ctx.Err()
			})
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					// Accepted, then closed without an answer.
					c, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						c.Close()
					}
					return
				}
				// The first stream ends without wsrpc.end, so the
				// client reconnects.
				ctx, cancel := context.WithTimeout(r.Context(), 50*time.Millisecond)
				defer cancel()
				h.ServeHTTP(w, r.WithContext(ctx))
			}))
			c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W",
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 2}))
			st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if useAll {
				n := 0
				for m, err := range st.All() {
					if err != nil {
						wantCode(t, err, wsrpc.CodeUnavailable, "")
						if !errors.Is(err, sse.ErrReconnectLimit) {
							t.Errorf("error %v does not keep its cause, sse.ErrReconnectLimit", err)
						}
						n = -1
						break
					}
					if m.GetNote() != "hi" {
						t.Fatalf("message %v", m)
					}
					n++
				}
				if n != -1 {
					t.Fatalf("All ended after %d messages without an error; the reconnection limit was reached", n)
				}
			} else {
				if m, err := st.Receive(); err != nil || m.GetNote() != "hi" {
					t.Fatalf("first Receive = %v %v", m, err)
				}
				_, err = st.Receive()
				wantCode(t, err, wsrpc.CodeUnavailable, "")
				if !errors.Is(err, sse.ErrReconnectLimit) {
					t.Errorf("error %v does not keep its cause, sse.ErrReconnectLimit", err)
				}
				if errors.Is(err, io.EOF) {
					t.Errorf("error %v matches io.EOF, which callers read as a clean end", err)
				}
			}
			if calls.Load() < 3 {
				t.Errorf("%d requests; want the first and 2 reconnections", calls.Load())
			}
		})
	}
}
