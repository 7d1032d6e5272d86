package wsrpc_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestSSEClientIdleTimeoutReconnects guards sse.ClientOptions.IdleTimeout
// as the typed SSE client takes it through WithSSEClientOptions: a call
// whose stream goes silent, as through a path gone dark that TCP does not
// notice for minutes, reconnects and carries on with the next run of the
// handler. It used to wait for ever, where a WebSocket call with
// PingInterval notices the same fault.
func TestSSEClientIdleTimeoutReconnects(t *testing.T) {
	var runs atomic.Int32
	h := wsrpc.NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		note := "one"
		if runs.Add(1) > 1 {
			note = "two"
		}
		if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: note}}); err != nil {
			return err
		}
		<-ctx.Done() // silent from here on: no heartbeats are configured
		return ctx.Err()
	})
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, newServer(t, h)+"/t/W", "/t/W",
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{IdleTimeout: 200 * time.Millisecond, ReconnectionTime: 10 * time.Millisecond}))
	st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, want := range []string{"one", "two"} {
		if m, err := st.Receive(); err != nil || m.GetNote() != want {
			t.Fatalf("Receive = %v, %v; want note %q", m, err, want)
		}
	}
}
