package wsrpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestReceiveAfterLostConnection: a bidirectional handler that only waits
// on ctx while the runtime closes the connection on its own (here a
// missed pong) learns of it from ctx (watchLost), and then read the end
// with Receive as "canceled: context canceled" — a context it never
// cancelled, and a client's cancel to the stream interceptors that pass
// it on — while Send reported the lost connection (unavailable) and
// OnClose 1006 with unavailable. Receive reports the recorded end too, as
// Send does (writeErr).
func TestReceiveAfterLostConnection(t *testing.T) {
	closed := make(chan wsrpc.CloseInfo, 1)
	got := make(chan [2]error, 1)
	seen := make(chan error, 1)
	record := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
		return func(ctx context.Context, conn wsrpc.StreamConn) error {
			err := next(ctx, conn)
			seen <- err
			return err
		}
	})
	h := wsrpc.NewBidiHandler("/t/Wait", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		<-ctx.Done()
		_, rerr := s.Receive()
		serr := s.Send(&testingv1.EchoResponse{Text: "late"})
		got <- [2]error{rerr, serr}
		return rerr
	}, wsrpc.WithInterceptors(record),
		wsrpc.WithAcceptOptions(&websocket.AcceptOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
	base := newServer(t, h)
	ctx := testContext(t)
	// A client that never reads: the server's pings go unanswered.
	c, _, err := websocket.Dial(ctx, base, &websocket.DialOptions{Subprotocols: []string{codec.Subprotocol(codec.Proto)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	errs := waitSeen(t, got, "the handler has not seen the connection end")
	ci := waitSeen(t, closed, "OnClose has not run")
	if ci.Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
		t.Fatalf("OnClose = %d %v, want 1006 unavailable", ci.Code, ci.Err)
	}
	if wsrpc.CodeOf(errs[1]) != wsrpc.CodeUnavailable {
		t.Fatalf("Send after the end = %v, want unavailable", errs[1])
	}
	if wsrpc.CodeOf(errs[0]) != wsrpc.CodeUnavailable {
		t.Fatalf("Receive after the end = %v, want unavailable, as Send and OnClose report", errs[0])
	}
	if err := waitSeen(t, seen, "the interceptor has not returned"); wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Fatalf("the stream interceptor got %v, want unavailable", err)
	}
}
