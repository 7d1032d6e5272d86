package wsrpc_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// runtimeClosingServer closes each session's WebSocket from a goroutine of
// its own, as a hub topic's Disconnect policy does for a slow consumer
// (1013 "slow consumer"), while the handler reads (Echo) or only waits on
// its context (Count).
type runtimeClosingServer struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
}

const slowReason = "slow consumer"

func (runtimeClosingServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	go s.WebSocket().Close(websocket.StatusTryAgainLater, slowReason)
	for _, err := range s.All() {
		if err != nil {
			return err
		}
	}
	return nil
}

func (runtimeClosingServer) Count(ctx context.Context, _ *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
	go s.WebSocket().Close(websocket.StatusTryAgainLater, slowReason)
	<-ctx.Done()
	return ctx.Err()
}

// TestOnCloseReportsRuntimeCloseReason: a session whose WebSocket the
// server closed beneath the typed layer (a hub's slow-consumer drop:
// 1013 "slow consumer") reports in OnClose the close frame that went out,
// reason included, whether the handler was reading (the peer's echo ends
// its Receive) or only waiting (the connection's close ends its ctx). The
// echo carries the code alone (RFC 6455 §5.5.1), and OnClose reported
// 1013 with an empty reason.
func TestOnCloseReportsRuntimeCloseReason(t *testing.T) {
	got := make(chan wsrpc.CloseInfo, 1)
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(runtimeClosingServer{},
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { got <- ci })))
	client := testingv1wsrpc.NewStreamServiceClient(nil, newServer(t, mux))
	ctx := testContext(t)
	for _, tc := range []struct {
		name string
		recv func() error
	}{
		{"reading", func() error {
			s, err := client.Echo(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Receive()
			return err
		}},
		{"waiting", func() error {
			s, err := client.Count(ctx, &testingv1.CountRequest{})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Receive()
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.recv()
			if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
				t.Fatalf("client's Receive: %v, want unavailable (1013)", err)
			}
			var ci wsrpc.CloseInfo
			select {
			case ci = <-got:
			case <-ctx.Done():
				t.Fatal("OnClose never ran")
			}
			if ci.Code != websocket.StatusTryAgainLater || ci.Reason != slowReason || ci.Unsent {
				t.Errorf("OnClose: code %d reason %q unsent %v, want 1013 %q as sent", ci.Code, ci.Reason, ci.Unsent, slowReason)
			}
			if e, ok := ci.Err.(*wsrpc.Error); !ok || e.Code() != wsrpc.CodeUnavailable || e.Message() != slowReason {
				t.Errorf("OnClose's Err = %v, want unavailable: %s", ci.Err, slowReason)
			}
		})
	}
}

// TestOnCloseReportsRuntimeCloseOverHandlerEnd: a handler that returns
// while a close of the runtime's is under way (the documented hub
// pattern: it wakes on the subscription's Done, which the slow-consumer
// drop closes before its Close(1013) starts, and returns unavailable)
// ends with a close frame that never goes out, since the runtime's went
// first. OnClose reported that frame (4014 "hub: slow consumer") instead
// of the one on the wire (1013 "slow consumer"), and when the runtime's
// frame was itself stuck behind a write to a client that stopped reading,
// reported it sent (Unsent false) where the client saw 1006. Err stays
// the handler's when the handler's end came first.
func TestOnCloseReportsRuntimeCloseOverHandlerEnd(t *testing.T) {
	handlerErr := wsrpc.Errorf(wsrpc.CodeUnavailable, "hub: slow consumer")
	for _, tc := range []struct {
		name  string
		stuck bool // a write to a client that does not read holds the runtime's close frame back
	}{
		{"sent", false},
		{"stuck", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan wsrpc.CloseInfo, 1)
			clientSaw := make(chan struct{})
			big := make(chan struct{})
			h := wsrpc.NewServerStreamHandler("/t/Push", func(ctx context.Context, _ *testingv1.EchoRequest, s *wsrpc.ServerStream[testingv1.EchoResponse]) error {
				ws := s.WebSocket()
				if !tc.stuck {
					go ws.Close(websocket.StatusTryAgainLater, slowReason)
					<-clientSaw // the close frame went out
					return handlerErr
				}
				// A hub's writer, stuck: the client reads nothing.
				go func() { _ = ws.Write(context.Background(), websocket.MessageText, []byte(strings.Repeat("x", 4<<20))) }()
				<-big
				go ws.Close(websocket.StatusTryAgainLater, slowReason)
				for ce, _ := ws.CloseSent(); ce == nil; ce, _ = ws.CloseSent() {
					time.Sleep(time.Millisecond) // until the Close above has begun
				}
				return handlerErr
			}, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: 300 * time.Millisecond}),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
			srv := httptest.NewUnstartedServer(h)
			srv.Listener = smallBufListener{srv.Listener, big}
			srv.Start()
			t.Cleanup(srv.Close)
			ctx := testContext(t)
			c, _, err := websocket.Dial(ctx, srv.URL, &websocket.DialOptions{
				Subprotocols: []string{codec.Subprotocol(codec.JSON)},
				Raw:          true, // it never answers a close frame
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
			if err := c.WriteFrame(ctx, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpText}, Payload: []byte(`{"text":"go"}`)}); err != nil {
				t.Fatal(err)
			}
			if !tc.stuck {
				f, err := c.ReadFrame(ctx, nil)
				if err != nil || f.Opcode != websocket.OpClose || string(f.Payload[2:]) != slowReason {
					t.Fatalf("client read %+v %v, want the close frame", f.FrameHeader, err)
				}
				close(clientSaw)
			}
			ci := waitSeen(t, closed, "OnClose has not run")
			// Stuck, the connection's close also ends the stream's own
			// reader, which may record the end first, with the close's
			// error: unavailable either way.
			wantErr := ci.Err == handlerErr || tc.stuck && wsrpc.CodeOf(ci.Err) == wsrpc.CodeUnavailable
			if ci.Code != websocket.StatusTryAgainLater || ci.Reason != slowReason || ci.Unsent != tc.stuck || !wantErr {
				t.Fatalf("OnClose = %d %q %v, Unsent %v; want 1013 %q %v, Unsent %v",
					ci.Code, ci.Reason, ci.Err, ci.Unsent, slowReason, handlerErr, tc.stuck)
			}
		})
	}
}
