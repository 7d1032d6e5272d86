package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// TestShutdownStalledSSEReplayBoundedByCloseTimeout: a client that
// resumes from an old id and reads nothing holds NewStream in its
// replay, a write like any other, inside the handshake chain, before
// the stream is tracked. Tracker.Shutdown says an SSE stream's writes
// are bounded by the route's CloseTimeout; this one was bounded only by
// WriteTimeout (a minute here), per 32 KiB chunk of the backlog, and
// Shutdown failed with "1 call in a handshake or ending". The call's
// writer is now tracked from before its handshake (sseWriter). Shutdown
// comes as the handshake begins (the replay's writes get the bound), or
// once the replay is stalled in a write (the write in progress gets it).
// With write deadlines off (a negative WriteTimeout) the stream sets no
// deadline for Shutdown to shorten, and Shutdown ran to its ctx
// ("no deadlines" cases); it now sets one itself.
func TestShutdownStalledSSEReplayBoundedByCloseTimeout(t *testing.T) {
	ring := sse.NewRing(256)
	var first string
	for i := 0; i < 256; i++ { // 16 MiB: more than any loopback socket buffers
		e, err := ring.Append(sse.Event{Data: strings.Repeat("z", 64<<10)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = e.ID
		}
	}
	for _, tc := range []struct {
		stalled      bool
		writeTimeout time.Duration
	}{{false, time.Minute}, {true, time.Minute}, {false, -1}, {true, -1}} {
		stalled := tc.stalled
		name := "opening"
		if stalled {
			name = "stalled"
		}
		if tc.writeTimeout < 0 {
			name += " no deadlines"
		}
		t.Run(name, func(t *testing.T) {
			opened := make(chan struct{}, 1)
			mark := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					opened <- struct{}{}
					return next(ctx, hs)
				}
			})
			tracker := wsrpc.NewTracker()
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, wsrpc.WithTracker(tracker),
				wsrpc.WithInterceptors(mark), wsrpc.WithSSEReplay(ring),
				wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: 200 * time.Millisecond}),
				wsrpc.WithSSEOptions(&sse.StreamOptions{WriteTimeout: tc.writeTimeout})))
			var writes atomic.Int64
			srv := wsrpc.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mux.ServeHTTP(writeCounter{w, &writes}, r)
			}))
			base, _ := serveHTTP(t, srv)
			t.Cleanup(func() { _ = srv.Close() })

			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Sent, then nothing read.
			if _, err := fmt.Fprintf(c, "GET %s?room=r HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %s\r\n\r\n", testingv1wsrpc.StreamServiceWatchPath, first); err != nil {
				t.Fatal(err)
			}
			select {
			case <-opened:
			case <-time.After(10 * time.Second):
				t.Fatal("the call never reached the handshake")
			}
			if stalled {
				// Until the replay is blocked in a write: its writes stop
				// counting.
				last, still := int64(-1), 0
				for i := 0; i < 400 && still < 10; i++ {
					time.Sleep(20 * time.Millisecond)
					if n := writes.Load(); n == last {
						still++
					} else {
						last, still = n, 0
					}
				}
				if still < 10 || last == 0 {
					t.Fatalf("the replay never blocked (%d writes)", last)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tracker.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown = %v, want nil: the stalled replay must not hold it past the close timeout", err)
			}
		})
	}
}

// writeCounter is a middleware's ResponseWriter that counts the writes
// through it; Unwrap lets http.ResponseController reach Flush and the
// write deadlines.
type writeCounter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w writeCounter) Write(b []byte) (int, error) {
	w.n.Add(1)
	return w.ResponseWriter.Write(b)
}

func (w writeCounter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
