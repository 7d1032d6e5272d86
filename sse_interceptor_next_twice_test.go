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
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// heldWatch is a Watch handler that sends its request's X-Attempt header
// (which next of the interceptor's sent it: the handlers of two requests
// may start in either order) as a note and then holds the stream open
// until its context ends, reporting the attempt on ended then.
type heldWatch struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	calls atomic.Int32
	ended chan int32
}

func (h *heldWatch) Watch(ctx context.Context, _ *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	h.calls.Add(1)
	a, _ := strconv.Atoi(st.RequestHeader().Get("X-Attempt"))
	n := int32(a)
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
			hs.Request.Header.Set("X-Attempt", "1")
			if _, err := next(ctx, hs); err != nil {
				return ctx, err
			}
			hs.Request.Header.Set("X-Attempt", "2")
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
		t.Fatalf("the stream of attempt %d ended first, want the first's (1)", n)
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
		t.Errorf("the stream of attempt %d ended, want the second's (2)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if connected != 1 || closed != 1 {
		t.Errorf("OnConnect ran %d times, OnClose %d; want once each, for the call's one connection", connected, closed)
	}
}

// An interceptor that calls next again after a success, sees that second
// attempt fail and keeps the first stream (returns nil) gets a call on
// the first stream that reconnects through the interceptors and hooks as
// any other: the call read the failed attempt's capture, so the
// reconnection after the handler's unavailable skipped them (a review of
// b44779e).
func TestSSEInterceptorNextAgainFailsKeepsFirst(t *testing.T) {
	h := &flakyWatch{failCalls: 1, failAt: 3}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h))
	var reqs atomic.Int32
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqs.Add(1) == 2 {
			http.Error(w, "nope", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
	base := newServer(t, srv)
	var mu sync.Mutex
	icpt := 0
	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: time.Millisecond}),
		wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			first := true
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				mu.Lock()
				icpt++
				mu.Unlock()
				ctx2, err := next(ctx, hs)
				if first && err == nil {
					first = false
					if _, err2 := next(ctx, hs); err2 != nil {
						return ctx2, nil // keep the first
					}
				}
				return ctx2, err
			}
		})))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for err == nil {
		var m *testingv1.WatchResponse
		if m, err = st.Receive(); err == nil {
			notes = append(notes, m.GetNote())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("notes %v, end %v, interceptor runs %d, handler calls %d, requests %d", notes, err, icpt, h.calls.Load(), reqs.Load())
	if icpt != 2 {
		t.Errorf("the interceptor ran %d times, want 2: the call and its reconnection", icpt)
	}
}
