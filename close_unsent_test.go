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

// TestCloseStuckBehindWriteUnsent: a stream's end that comes while a Send
// is stuck in its write (the client stopped reading) — the handler's Close
// from another goroutine, or the session's context ending — cannot get its
// close frame out: the runtime closes the TCP connection once the write
// has held it for the close timeout, and the client sees 1006. OnClose
// reported the close's code as if it had been sent; it still reports it
// (why the server closed: the chat's 4014 "too slow"), now with Unsent
// set. A close that went out leaves Unsent false.
func TestCloseStuckBehindWriteUnsent(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stuck: the end comes while a large Send is stuck.
		stuck bool
		// end ends the stream.
		end        func(s *wsrpc.ServerStream[testingv1.EchoResponse], cancel context.CancelCauseFunc)
		code       wsrpc.Code
		reason     string
		wantUnsent bool
	}{
		{"handler's Close", true, func(s *wsrpc.ServerStream[testingv1.EchoResponse], _ context.CancelCauseFunc) {
			_ = s.Close(wsrpc.CodeAborted, "stop")
		}, wsrpc.CodeAborted, "stop", true},
		{"session's context", true, func(_ *wsrpc.ServerStream[testingv1.EchoResponse], cancel context.CancelCauseFunc) {
			cancel(wsrpc.Errorf(wsrpc.CodeDeadlineExceeded, "too late"))
		}, wsrpc.CodeDeadlineExceeded, "too late", true},
		{"handler's Close, nothing stuck", false, func(s *wsrpc.ServerStream[testingv1.EchoResponse], _ context.CancelCauseFunc) {
			_ = s.Close(wsrpc.CodeAborted, "stop")
		}, wsrpc.CodeAborted, "stop", false},
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
				if !tc.stuck {
					tc.end(s, cancel)
					return nil
				}
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
			if !tc.stuck {
				// The client reads, and answers the close frame.
				_, _, err := c.Read(ctx)
				if websocket.CloseStatus(err) != tc.code.CloseCode() {
					t.Fatalf("client read %v; want close %d", err, tc.code.CloseCode())
				}
			} // else the client reads nothing.
			ci := waitSeen(t, closed, "OnClose has not run")
			if ci.Code != tc.code.CloseCode() || ci.Reason != tc.reason || wsrpc.CodeOf(ci.Err) != tc.code || ci.Unsent != tc.wantUnsent {
				t.Fatalf("OnClose = %d %q %v, Unsent %v; want %d %q %v, Unsent %v",
					ci.Code, ci.Reason, ci.Err, ci.Unsent, tc.code.CloseCode(), tc.reason, tc.code, tc.wantUnsent)
			}
		})
	}
}

// TestClientCloseStuckBehindWriteUnsent is TestCloseStuckBehindWriteUnsent
// for a client: its CloseWith while a Send is stuck behind a server that
// stopped reading cannot get its close frame out either, and OnClose
// keeps the close's code and reason with Unsent set.
func TestClientCloseStuckBehindWriteUnsent(t *testing.T) {
	release := make(chan struct{})
	h := wsrpc.NewBidiHandler("/t/Bidi", func(ctx context.Context, _ *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		select { // reads nothing
		case <-ctx.Done():
		case <-release:
		}
		return nil
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBufListener{srv.Listener, make(chan struct{})}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	big := make(chan struct{})
	closed := make(chan wsrpc.CloseInfo, 1)
	ctx := testContext(t)
	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, srv.URL, "/t/Bidi",
		wsrpc.WithDialOptions(&websocket.DialOptions{
			CloseTimeout: 200 * time.Millisecond,
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				_ = c.(*net.TCPConn).SetWriteBuffer(4 << 10)
				return &bigWriteConn{Conn: c, big: big}, nil
			},
		}),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }),
	).Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- st.Send(&testingv1.EchoRequest{Text: strings.Repeat("x", 16<<20)}) }()
	<-big // the message's write has begun, and the server never reads it
	_ = st.CloseWith(wsrpc.CodeAborted, "stop")
	ci := waitSeen(t, closed, "OnClose has not run")
	if ci.Code != wsrpc.CodeAborted.CloseCode() || ci.Reason != "stop" || !ci.Unsent {
		t.Fatalf("OnClose = %d %q %v, Unsent %v; want %d \"stop\", Unsent true", ci.Code, ci.Reason, ci.Err, ci.Unsent, wsrpc.CodeAborted.CloseCode())
	}
	if err := waitSeen(t, sent, "Send is still stuck"); err == nil {
		t.Fatal("the stuck Send returned nil")
	}
}
