package wsrpc_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// heldWatch is a Watch handler that sends its call's number as a note and
// then holds the stream open until its context ends, reporting the
// number on ended then.
type heldWatch struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	calls atomic.Int32
	ended chan int32
}

func (h *heldWatch) Watch(ctx context.Context, _ *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	n := h.calls.Add(1)
	defer func() { h.ended <- n }()
	if err := st.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: strconv.Itoa(int(n))}}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestSSEInterceptorCallingNextTwice is TestInterceptorCallingNextTwiceLeaksNothing
// for a typed SSE call: a client handshake interceptor that calls next a
// second time after a success (opening anew, say) gets a call that runs
// on the second stream, and the first stream is closed then, as the
// WebSocket dial closes its earlier connection. It used to stay open,
// its handler running, until the call's context ended. The hooks see one
// connection, as on WebSocket: one OnConnect, one OnClose.
func TestSSEInterceptorCallingNextTwice(t *testing.T) {
	h := &heldWatch{ended: make(chan int32, 2)}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h))
	twice := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if _, err := next(ctx, hs); err != nil {
				return ctx, err
			}
			return next(ctx, hs)
		}
	})
	var mu sync.Mutex
	var connected, closed int
	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, newServer(t, mux),
		wsrpc.WithInterceptors(twice),
		wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) {
			mu.Lock()
			connected++
			mu.Unlock()
		}),
		wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) {
			mu.Lock()
			closed++
			mu.Unlock()
		}))
	// The call's context outlives the waits below: only the fix ends the
	// first stream within them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	wait := func(what string) int32 {
		t.Helper()
		select {
		case n := <-h.ended:
			return n
		case <-time.After(15 * time.Second):
			t.Fatalf("15s later, still waiting for %s", what)
			return 0
		}
	}
	if n := wait("the first stream's handler to end, the call still open"); n != 1 {
		t.Fatalf("handler call %d ended first, want the first (1)", n)
	}
	res, err := st.Receive()
	if err != nil || res.GetNote() != "2" {
		t.Fatalf("Receive: %v, %v; want the second stream's note 2", res, err)
	}
	if got := h.calls.Load(); got != 2 {
		t.Errorf("%d handler calls, want 2", got)
	}
	st.Close()
	if n := wait("the second stream's handler to end after Close"); n != 2 {
		t.Errorf("handler call %d ended, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if connected != 1 || closed != 1 {
		t.Errorf("OnConnect ran %d times, OnClose %d; want once each, for the call's one connection", connected, closed)
	}
}
