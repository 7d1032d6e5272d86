package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestSSEFinalRefusalKeepsStatus: a typed SSE call's reconnection
// refused 503 with Wsrpc-Code permission_denied is final (491255c), and
// everything that reports it shows what the server sent: the session's
// OnReconnect a *sse.StatusError with 503, the reconnection's handshake
// interceptor and Receive permission_denied with the server's message —
// its body, or without one the status line, "503 Service Unavailable".
// The status was rewritten to 500 so that the session would not retry
// it, and an empty body's message read "500 Internal Server Error".
func TestSSEFinalRefusalKeepsStatus(t *testing.T) {
	for _, tc := range []struct {
		body, msg string
	}{
		{"", "503 Service Unavailable"},
		{"no access", "no access"},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			var n atomic.Int32
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "id: 1\ndata: {}\n\n")
					return // cut short: the client reconnects
				}
				w.Header().Set(wsrpc.CodeHeader, "permission_denied")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, tc.body)
			}))
			var mu sync.Mutex
			var attempts []error
			var seenByInterceptor []error
			c := wsrpc.NewSSEClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/x", "/r.v1/SSE",
				wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
					return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
						ctx, err := next(ctx, hs)
						mu.Lock()
						seenByInterceptor = append(seenByInterceptor, err)
						mu.Unlock()
						return ctx, err
					}
				})),
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 3,
					OnReconnect: func(_ int, err error) {
						mu.Lock()
						attempts = append(attempts, err)
						mu.Unlock()
					}}))
			st, err := c.Call(testContext(t), &testingv1.CountRequest{Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for err == nil {
				_, err = st.Receive()
			}
			var e *wsrpc.Error
			if !errors.As(err, &e) || e.Code() != wsrpc.CodePermissionDenied || e.Message() != tc.msg {
				t.Errorf("Receive = %v, want permission_denied with message %q", err, tc.msg)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(attempts) != 1 {
				t.Fatalf("OnReconnect heard %v, want one attempt: the refusal is final", attempts)
			}
			var se *sse.StatusError
			if !errors.As(attempts[0], &se) || se.StatusCode != http.StatusServiceUnavailable || se.Status != "503 Service Unavailable" {
				t.Errorf("OnReconnect heard %v, want the server's *sse.StatusError 503", attempts[0])
			}
			if len(seenByInterceptor) != 2 || seenByInterceptor[0] != nil {
				t.Fatalf("the interceptor saw %v, want nil and then the refusal", seenByInterceptor)
			}
			if !errors.As(seenByInterceptor[1], &e) || e.Code() != wsrpc.CodePermissionDenied || e.Message() != tc.msg {
				t.Errorf("the interceptor saw %v, want permission_denied with message %q", seenByInterceptor[1], tc.msg)
			}
		})
	}
}
