package wsrpc_test

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// smallBufListener gives each accepted connection a small send buffer, so
// that a large message stays stuck in its write for a client that does
// not read, and closes big when a write of a large message begins.
type smallBufListener struct {
	net.Listener
	big chan struct{}
}

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return &bigWriteConn{Conn: c, big: l.big}, nil
}

// bigWriteConn is a net.Conn (not a *net.TCPConn: the runtime writes
// through Write) that reports the start of a large write.
type bigWriteConn struct {
	net.Conn
	big  chan struct{}
	once sync.Once
}

func (c *bigWriteConn) Write(p []byte) (int, error) {
	if len(p) >= 16<<10 { // the runtime writes a large message in chunks
		c.once.Do(func() { close(c.big) })
	}
	return c.Conn.Write(p)
}

// TestCloseStuckBehindWriteReportsLost: a stream's end that comes while a
// Send is stuck in its write (the client stopped reading) — the handler's
// Close from another goroutine, or the session's context ending (the
// client's deadline, Wsrpc-Timeout-Ms, or an interceptor's cancel) — could
// not get its close frame out: the runtime closed the TCP connection once
// the write had held it for the close timeout, and the client saw 1006.
// OnClose, documented to report the code that went on the wire and 1006
// when the TCP connection ended without a close frame, reported the
// close's code (4010, 4004) as if it had been sent, where the same
// failure at the handler's return (closeEnd) reports 1006.
func TestCloseStuckBehindWriteReportsLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		// end ends the stream while Send is stuck.
		end func(s *wsrpc.ServerStream[testingv1.EchoResponse], cancel context.CancelCauseFunc)
	}{
		{"handler's Close", func(s *wsrpc.ServerStream[testingv1.EchoResponse], _ context.CancelCauseFunc) {
			_ = s.Close(wsrpc.CodeAborted, "stop")
		}},
		{"session's context", func(_ *wsrpc.ServerStream[testingv1.EchoResponse], cancel context.CancelCauseFunc) {
			cancel(wsrpc.Errorf(wsrpc.CodeDeadlineExceeded, "too late"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan wsrpc.CloseInfo, 1)
			cancels := make(chan context.CancelCauseFunc, 1)
			withCancel := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					ctx, cancel := context.WithCancelCause(ctx)
					cancels <- cancel
					return next(ctx, hs)
				}
			})
			big := make(chan struct{})
			h := wsrpc.NewServerStreamHandler("/t/Push", func(ctx context.Context, _ *testingv1.EchoRequest, s *wsrpc.ServerStream[testingv1.EchoResponse]) error {
				cancel := <-cancels
				defer cancel(nil)
				sent := make(chan error, 1)
				go func() { sent <- s.Send(&testingv1.EchoResponse{Text: strings.Repeat("x", 4<<20)}) }()
				// Once the message's write has begun, it holds the
				// connection until the client reads, which it never
				// does: the end comes during it.
				<-big
				tc.end(s, cancel)
				return <-sent
			}, wsrpc.WithInterceptors(withCancel),
				wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: 200 * time.Millisecond}),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
			srv := httptest.NewUnstartedServer(h)
			srv.Listener = smallBufListener{srv.Listener, big}
			srv.Start()
			t.Cleanup(srv.Close)
			ctx := testContext(t)
			c, _, err := websocket.Dial(ctx, srv.URL, &websocket.DialOptions{
				Subprotocols: []string{codec.Subprotocol(codec.JSON)},
				NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetReadBuffer(4 << 10)
					}
					return c, err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"text":"go"}`)); err != nil {
				t.Fatal(err)
			}
			// The client reads nothing.
			ci := waitSeen(t, closed, "OnClose has not run")
			if ci.Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
				t.Fatalf("OnClose = %d %q %v; want 1006 unavailable: no close frame went out", ci.Code, ci.Reason, ci.Err)
			}
		})
	}
}
