package wsrpc_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestSSEHeartbeatWriteTimeoutUnavailable: a typed SSE handler that only
// waits on its context (one following a hub topic, or holding the stream
// open for heartbeats) and whose client stops reading ends with OnClose
// 1006 and unavailable wrapping sse.ErrWriteTimeout, as a Send that times
// out does (TestSSEWriteTimeoutUnavailable). The stream's heartbeat write
// is the one that times out there; net/http then cancels the request's
// context, the handler returns ctx.Err(), and the stream's end was taken
// for a client that left: OnClose 4001 canceled. A client that closes its
// connection still reads as one that left: 4001 canceled. A handler that
// writes on the sse.Stream itself (ServerStream.SSE, as runtime-level
// code such as a hub delivery would) and returns the timed-out Send's
// error ("sse-send") ends with 1006 too: that write is no typed Send
// either, and it read as 4001 the same way.
//
// Small socket buffers (the client's receive buffer set before connect,
// the server's send buffer on each accepted connection) let the
// heartbeats' few bytes fill them within a second or so.
func TestSSEHeartbeatWriteTimeoutUnavailable(t *testing.T) {
	for _, tc := range []struct {
		how      string
		wantCode wsrpc.Code
		wantWire websocket.StatusCode
	}{
		{"stop-reading", wsrpc.CodeUnavailable, websocket.StatusAbnormalClosure},
		{"close", wsrpc.CodeCanceled, wsrpc.CodeCanceled.CloseCode()}, // 4001
		{"sse-send", wsrpc.CodeUnavailable, websocket.StatusAbnormalClosure},
	} {
		t.Run(tc.how, func(t *testing.T) {
			closes := make(chan wsrpc.CloseInfo, 1)
			heartbeat := 2 * time.Millisecond
			if tc.how == "sse-send" {
				heartbeat = 0 // the Send is what times out
			}
			mux := http.NewServeMux()
			mux.Handle("/t/Down", wsrpc.NewSSEHandler("/t/Down",
				func(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.EchoResponse]) error {
					if tc.how == "sse-send" {
						data := strings.Repeat("x", 64<<10)
						for range 10000 { // bounded: 640 MiB would outlast any socket buffer
							if err := st.SSE().Send(sse.Event{Data: data}); err != nil {
								return err
							}
						}
						return errors.New("every send succeeded")
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(10 * time.Second):
						return errors.New("the context never ended")
					}
				},
				wsrpc.WithSSEOptions(&sse.StreamOptions{Heartbeat: heartbeat, WriteTimeout: 300 * time.Millisecond}),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })))
			srv := httptest.NewUnstartedServer(mux)
			srv.Listener = smallSendBufListener{srv.Listener}
			srv.Start()
			t.Cleanup(srv.Close)

			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
				}); err != nil {
					return err
				}
				return serr
			}}
			nc, err := d.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write([]byte("GET /t/Down HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("response: %v %v", resp, err)
			}
			if tc.how == "close" {
				nc.Close()
			} // else read nothing more: a heartbeat's (or the Send's) write times out

			var ci wsrpc.CloseInfo
			select {
			case ci = <-closes:
			case <-time.After(10 * time.Second):
				t.Fatal("10s later, OnClose never ran")
			}
			if ci.Code != tc.wantWire || wsrpc.CodeOf(ci.Err) != tc.wantCode {
				t.Fatalf("OnClose Code %d Err %v, want %d and %v", ci.Code, ci.Err, tc.wantWire, tc.wantCode)
			}
			if timedOut := errors.Is(ci.Err, sse.ErrWriteTimeout); timedOut != (tc.how != "close") {
				t.Errorf("OnClose Err %v: errors.Is sse.ErrWriteTimeout %v", ci.Err, timedOut)
			}
		})
	}
}

// smallSendBufListener gives each accepted connection a small send buffer
// (SO_SNDBUF), so that a client that stops reading blocks the server's
// writes after a few kilobytes.
type smallSendBufListener struct{ net.Listener }

func (l smallSendBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetWriteBuffer(4 << 10); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}
