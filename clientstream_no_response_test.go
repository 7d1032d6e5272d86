package wsrpc_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestClientStreamEndsWithoutResponse: a client-streaming call whose
// stream chain returns nil without a response having gone out — a stream
// interceptor that swallows the handler's error, or returns nil without
// calling next — closed with 1000, which the client reads as internal
// ("the server closed without a response"), while OnClose, documented as
// the status the client got, reported 1000 and a nil Err: a clean call.
// The call ends with internal (4013) then, as ClientStream.Close(0) does,
// so that the client and OnClose agree.
func TestClientStreamEndsWithoutResponse(t *testing.T) {
	handler := func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		for _, err := range s.All() {
			if err != nil {
				return nil, err
			}
		}
		return nil, wsrpc.Errorf(wsrpc.CodeAborted, "refused")
	}
	for _, tc := range []struct {
		name string
		ic   wsrpc.StreamInterceptorFunc
	}{
		{"swallows the handler's error", func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
			return func(ctx context.Context, conn wsrpc.StreamConn) error {
				_ = next(ctx, conn)
				return nil
			}
		}},
		{"does not call next", func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
			return func(ctx context.Context, conn wsrpc.StreamConn) error { return nil }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan wsrpc.CloseInfo, 1)
			h := wsrpc.NewClientStreamHandler("/t/Up", handler, wsrpc.WithInterceptors(tc.ic),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
			mux := http.NewServeMux()
			mux.Handle("/t/Up", h)
			base := newServer(t, mux)
			st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/Up", "/t/Up").Call(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Send(&testingv1.SumRequest{N: 1}) // may meet the server's end already
			res, err := st.CloseAndReceive()
			if res != nil || wsrpc.CodeOf(err) != wsrpc.CodeInternal {
				t.Fatalf("CloseAndReceive = %v, %v; want internal", res, err)
			}
			ci := waitSeen(t, closed, "OnClose has not run")
			if ci.Code != wsrpc.CodeInternal.CloseCode() || wsrpc.CodeOf(ci.Err) != wsrpc.CodeInternal {
				t.Fatalf("OnClose = %d %q %v, want %d with internal, what the client read (%v)", ci.Code, ci.Reason, ci.Err, wsrpc.CodeInternal.CloseCode(), err)
			}
		})
	}
}
