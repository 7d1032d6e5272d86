package wsrpc_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// floodServer's Watch sends 64 KiB events until a send fails, counting
// the sends that went through.
type floodServer struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	sent atomic.Int64
}

func (f *floodServer) Watch(ctx context.Context, _ *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	big := &testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Room: strings.Repeat("z", 64<<10)}}}
	for i := 0; i < 10000; i++ { // bounded: 640 MiB would outlast any socket buffer
		if err := st.Send(big); err != nil {
			return err
		}
		f.sent.Add(1)
	}
	return nil
}

// TestShutdownStalledSSEClientBoundedByCloseTimeout: a typed SSE client
// that stops reading holds its handler in a write, which the cancelled
// context does not end. It held wsrpc.Shutdown for the stream's
// WriteTimeout (a minute here, 30 s by default), past a deadline of
// 20 s; the write is now bounded by the route's CloseTimeout, as a
// WebSocket session's closing handshake is, and Shutdown ends in time
// with no session left.
func TestShutdownStalledSSEClientBoundedByCloseTimeout(t *testing.T) {
	tracker := wsrpc.NewTracker()
	svc := &floodServer{}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc, wsrpc.WithTracker(tracker),
		wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: 200 * time.Millisecond}),
		// Far beyond Shutdown's deadline: only the close timeout can end
		// the stall in time.
		wsrpc.WithSSEOptions(&sse.StreamOptions{WriteTimeout: time.Minute})))
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	client := testingv1wsrpc.NewStreamServiceClient(nil, base)
	watch, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "stall"})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	if _, err := watch.Receive(); err != nil {
		t.Fatal(err)
	}
	// Read nothing more, until the handler is blocked in a write: its
	// sends stop counting.
	last, still := int64(-1), 0
	for i := 0; i < 400 && still < 10; i++ {
		time.Sleep(20 * time.Millisecond)
		if n := svc.sent.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	if still < 10 {
		t.Fatal("the handler never blocked")
	}
	if tracker.Len() != 1 {
		t.Fatalf("%d sessions before Shutdown, want 1", tracker.Len())
	}

	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	start := time.Now()
	err = wsrpc.Shutdown(sctx, srv, tracker)
	t.Logf("Shutdown took %v", time.Since(start)) // about the close timeout
	if err != nil {
		t.Errorf("Shutdown = %v, want nil: the stalled SSE client must not hold it past the close timeout", err)
	}
	if n := tracker.Len(); n != 0 {
		t.Errorf("%d sessions left after Shutdown, want 0", n)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
}
