package wsrpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestDeadlineFromInterceptorReachesSSEServer: an SSE call's event
// stream is read with the context its innermost HandshakeFunc is given,
// so a deadline a handshake interceptor derives there (and returns, as
// next does) bounds the call, and TimeoutHeader carries it to the
// handler, as it carries the caller's own (TestDeadlinePropagates). The
// header was set before the interceptors ran, from the caller's context
// alone: the handler ran with no deadline while the client's call ended
// at the interceptor's.
func TestDeadlineFromInterceptorReachesSSEServer(t *testing.T) {
	const timeout = 2 * time.Second
	bound := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			context.AfterFunc(ctx, cancel)
			return next(ctx, hs)
		}
	})
	base, seen := newDeadlineServer(t, false)
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithInterceptors(bound))
	// The caller's context has no deadline: only the interceptor's bounds
	// the call.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := deadlineCall(ctx, client, "sse"); wsrpc.CodeOf(err) != wsrpc.CodeDeadlineExceeded {
		t.Errorf("client: %v (code %v), want deadline_exceeded", err, wsrpc.CodeOf(err))
	}
	select {
	case h := <-seen:
		if !h.has {
			t.Fatal("the handler's context had no deadline: the interceptor's never reached the server")
		}
		if h.left <= 0 || h.left > timeout {
			t.Errorf("the handler's deadline left it %v, want within (0, %v]", h.left, timeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never ended")
	}
}
