package wsrpc_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestClientOnCloseAfterOnConnect: a client call whose context has ended
// by the time it connects (here a context a handshake interceptor
// cancels as next returns; the caller's cancel landing as the call
// connects is the same) runs its OnConnect hooks, then its OnClose
// hooks, once each and in that order, on WebSocket as on SSE. The
// WebSocket call started watching its context before the OnConnect
// hooks, and the watch ran OnClose at once on a goroutine of its own,
// while OnConnect was still running (every round): a hook pair that
// keeps a map of live calls then kept an entry for good.
func TestClientOnCloseAfterOnConnect(t *testing.T) {
	endAtConnect := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			cctx, cancel := context.WithCancel(ctx)
			rctx, err := next(cctx, hs)
			cancel()
			return rctx, err
		}
	})
	calls := []struct {
		name string
		run  func(ctx context.Context, c testingv1wsrpc.StreamServiceClient)
	}{
		{"bidi", func(ctx context.Context, c testingv1wsrpc.StreamServiceClient) {
			if st, err := c.Echo(ctx); err == nil {
				_, _ = st.Receive()
				_ = st.Close()
			}
		}},
		{"server stream", func(ctx context.Context, c testingv1wsrpc.StreamServiceClient) {
			if st, err := c.Count(ctx, &testingv1.CountRequest{Count: 1}); err == nil {
				_, _ = st.Receive()
				_ = st.Close()
			}
		}},
		{"client stream", func(ctx context.Context, c testingv1wsrpc.StreamServiceClient) {
			if st, err := c.Sum(ctx); err == nil {
				_ = st.Close()
			}
		}},
		{"sse", func(ctx context.Context, c testingv1wsrpc.StreamServiceClient) {
			if st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r", Count: 1}); err == nil {
				_, _ = st.Receive()
				_ = st.Close()
			}
		}},
	}
	url := serve(t)
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			const rounds = 5
			for range rounds {
				var connects, closes, early atomic.Int64
				var connected atomic.Bool
				closed := make(chan struct{}, 1)
				c := testingv1wsrpc.NewStreamServiceClient(nil, url, wsrpc.WithInterceptors(endAtConnect),
					wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) {
						connects.Add(1)
						// Room for a watch that runs OnClose on its own
						// goroutine to do so now: bounded, no clock.
						for i := 0; i < 1000 && closes.Load() == 0; i++ {
							runtime.Gosched()
						}
						connected.Store(true)
					}),
					wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) {
						if !connected.Load() {
							early.Add(1)
						}
						closes.Add(1)
						select {
						case closed <- struct{}{}:
						default:
						}
					}))
				ctx := testContext(t)
				call.run(ctx, c)
				select {
				case <-closed:
				case <-ctx.Done():
					t.Fatal("OnClose never ran")
				}
				if n := early.Load(); n != 0 {
					t.Fatalf("OnClose ran before OnConnect had returned")
				}
				if n, m := connects.Load(), closes.Load(); n != 1 || m != 1 {
					t.Fatalf("OnConnect ran %d times, OnClose %d, for one connection", n, m)
				}
			}
		})
	}
}
