package wsrpc_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// lostPeer dials path on base as a raw client, sends one JSON message and
// returns the connection, which the caller then leaves alone: it reads
// nothing, so it never answers a ping.
func lostPeer(t *testing.T, base, path string) *websocket.Conn {
	t.Helper()
	ctx := testContext(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path, &websocket.DialOptions{Subprotocols: []string{"wsrpc.json"}, Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	msg := websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpText}, Payload: []byte(`{"text":"x"}`)}
	if err := c.WriteFrame(ctx, msg); err != nil {
		t.Fatal(err)
	}
	return c
}

func awaitClose(t *testing.T, closed <-chan wsrpc.CloseInfo) wsrpc.CloseInfo {
	t.Helper()
	select {
	case ci := <-closed:
		return ci
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose did not run within 10s")
		return wsrpc.CloseInfo{}
	}
}

// TestPongTimeoutEndsSession: a handler that has stopped reading and
// waits on ctx (it only pushes) learns that the keepalive found its peer
// dead and closed the connection: ctx ends, OnClose reports the lost
// connection (1006, unavailable) whatever the handler returns, and the
// Tracker lets the session go. Before, only a read noticed the close:
// ctx stayed live for ever, OnClose never ran and Tracker.Len never came
// back down (an SRE walkthrough's leak of one goroutine and session per
// vanished client). Bidirectional and client-streaming handlers alike.
func TestPongTimeoutEndsSession(t *testing.T) {
	accept := wsrpc.WithAcceptOptions(&websocket.AcceptOptions{PingInterval: 100 * time.Millisecond, PongTimeout: 150 * time.Millisecond})
	for _, kind := range []string{"bidi", "client"} {
		t.Run(kind, func(t *testing.T) {
			ctxEnded := make(chan struct{})
			closed := make(chan wsrpc.CloseInfo, 1)
			tracker := wsrpc.NewTracker()
			opts := []wsrpc.Option{accept, wsrpc.WithTracker(tracker),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci })}
			// Receives once, then only waits on ctx, as a handler that
			// pushes until the client is gone does.
			wait := func(ctx context.Context, receive func() error) error {
				if err := receive(); err != nil {
					return err
				}
				<-ctx.Done()
				close(ctxEnded)
				return ctx.Err()
			}
			var h http.Handler
			if kind == "bidi" {
				h = wsrpc.NewBidiHandler("/t/Push", func(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
					return wait(ctx, func() error { _, err := st.Receive(); return err })
				}, opts...)
			} else {
				h = wsrpc.NewClientStreamHandler("/t/Push", func(ctx context.Context, st *wsrpc.ClientStream[testingv1.EchoRequest]) (*testingv1.EchoResponse, error) {
					return nil, wait(ctx, func() error { _, err := st.Receive(); return err })
				}, opts...)
			}
			lostPeer(t, newServer(t, h), "/t/Push")
			select {
			case <-ctxEnded:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's ctx still live 10s after its peer went silent (ping 100ms, pong timeout 150ms)")
			}
			ci := awaitClose(t, closed)
			if ci.Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
				t.Errorf("OnClose: code %d, err %v (code %v); want 1006, unavailable", ci.Code, ci.Err, wsrpc.CodeOf(ci.Err))
			}
			deadline := time.Now().Add(10 * time.Second)
			for tracker.Len() != 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if n := tracker.Len(); n != 0 {
				t.Errorf("Tracker.Len = %d after the session ended, want 0", n)
			}
		})
	}
}

// TestOnCloseLostBeforeCloseFrame: a handler that fails after its client
// vanished (a reset, while the handler was busy and not reading) cannot
// send its close frame; OnClose reports 1006 and unavailable, as
// CloseInfo's doc says of a TCP connection that ended without a close
// frame, whatever the handler returned. It reported the handler's own
// code (4013 here), which no client ever got.
func TestOnCloseLostBeforeCloseFrame(t *testing.T) {
	closed := make(chan wsrpc.CloseInfo, 1)
	received := make(chan struct{})
	reset := make(chan struct{})
	h := wsrpc.NewBidiHandler("/t/Fail", func(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if _, err := st.Receive(); err != nil {
			return err
		}
		close(received)
		<-reset // some work, not reading, while the client goes
		return wsrpc.Errorf(wsrpc.CodeInternal, "backend failed")
	}, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
	c := lostPeer(t, newServer(t, h), "/t/Fail")
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler got no message")
	}
	if err := c.NetConn().(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	// A reset: the client is gone. On loopback the RST that SO_LINGER 0
	// makes close send is delivered within the close call, so the server's
	// socket has it before the handler writes its close frame.
	c.CloseNow()
	close(reset)
	ci := awaitClose(t, closed)
	if ci.Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
		t.Errorf("OnClose: code %d, err %v (code %v); want 1006, unavailable: the close frame could not go out", ci.Code, ci.Err, wsrpc.CodeOf(ci.Err))
	}
}
