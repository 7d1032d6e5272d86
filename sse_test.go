package wsrpc_test

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestSSERequestForms pins both query forms of options.proto's SSERule.
func TestSSERequestForms(t *testing.T) {
	flat := &testingv1.WatchRequest{Room: "r 1", Count: 3, Tags: []string{"a", "b"}, Fail: true, MinLevel: testingv1.Level_LEVEL_WARN, Since: -5, Token: []byte{0xff, 0xfe}}
	q, err := wsrpc.EncodeSSERequest(flat)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"room": {"r 1"}, "count": {"3"}, "tags": {"a", "b"}, "fail": {"true"}, "minLevel": {"LEVEL_WARN"}, "since": {"-5"}, "token": {"//4="}}
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
		{url.Values{"min_level": {"LEVEL_INFO"}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{}},
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
