package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestSendNilIsEmptyMessage pins what a nil message is on both
// transports: the empty message, as proto.Marshal and every codec
// encode it (codec's TestMarshalNil). A server stream's Send(nil) and a
// server-streaming call's nil request reach the peer as an empty
// message, on a WebSocket with each codec and over SSE; over SSE a
// response whose oneof names the event type fails the same way for nil
// as for the empty message (internal: no case, no event type), and
// sends nothing.
func TestSendNilIsEmptyMessage(t *testing.T) {
	type sent struct {
		req *testingv1.SearchRequest
		err error
	}
	got := make(chan sent, 8)
	handler := func(ctx context.Context, req *testingv1.SearchRequest, s *wsrpc.ServerStream[testingv1.SearchResponse]) error {
		got <- sent{req, s.Send(nil)}
		return nil
	}
	oneofErrs := make(chan [2]error, 1)
	mux := http.NewServeMux()
	mux.Handle("/ws/Search", wsrpc.NewServerStreamHandler("/ws/Search", handler))
	mux.Handle("/sse/Search", wsrpc.NewSSEHandler("/sse/Search", handler))
	mux.Handle("/sse/Watch", wsrpc.NewSSEHandler("/sse/Watch", func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		oneofErrs <- [2]error{s.Send(nil), s.Send(&testingv1.WatchResponse{})}
		return nil
	}))
	url := newServer(t, mux)
	ctx := testContext(t)

	check := func(name string, st *wsrpc.ServerStreamForClient[testingv1.SearchResponse], err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: Call(ctx, nil) = %v", name, err)
		}
		defer st.Close()
		m, err := st.Receive()
		if err != nil || !proto.Equal(m, &testingv1.SearchResponse{}) {
			t.Errorf("%s: Receive after Send(nil) = %v, %v; want the empty message", name, m, err)
		}
		s := waitSeen(t, got, "the handler never ran")
		if s.err != nil {
			t.Errorf("%s: Send(nil) = %v, want nil (the empty message sent)", name, s.err)
		}
		if !proto.Equal(s.req, &testingv1.SearchRequest{}) {
			t.Errorf("%s: a nil request reached the handler as %v, want the empty message", name, s.req)
		}
	}
	for _, k := range allCodecs {
		st, err := wsrpc.NewServerStreamClient[testingv1.SearchRequest, testingv1.SearchResponse](nil, url+"/ws/Search", "/ws/Search", wsrpc.WithCodecs(k)).Call(ctx, nil)
		check("websocket "+k.Name(), st, err)
	}
	st, err := wsrpc.NewSSEClient[testingv1.SearchRequest, testingv1.SearchResponse](nil, url+"/sse/Search", "/sse/Search").Call(ctx, nil)
	check("sse", st, err)

	wst, err := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, url+"/sse/Watch", "/sse/Watch").Call(ctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer wst.Close()
	errs := waitSeen(t, oneofErrs, "the Watch handler never ran")
	for i, what := range []string{"Send(nil)", "Send(&WatchResponse{})"} {
		if wsrpc.CodeOf(errs[i]) != wsrpc.CodeInternal {
			t.Errorf("sse %s of an event-oneof response = %v, want internal (no case, no event type)", what, errs[i])
		}
	}
	if errs[0].Error() != errs[1].Error() {
		t.Errorf("sse: Send(nil) = %q, Send(&WatchResponse{}) = %q; want the same", errs[0], errs[1])
	}
	if m, err := wst.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("sse Receive = %v, %v; want the clean end (io.EOF): nothing was sent", m, err)
	}
}
