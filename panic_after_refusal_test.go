package wsrpc_test

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestPanicAfterRefusalStillAnswers: a handshake interceptor that panics
// after next returned a refusal already written — Accept's 403 for a
// cross-origin page, the SSE route's 204 for a client reconnecting after
// wsrpc.end — used to leave that answer in net/http's buffer, which it
// drops when it cuts the connection after a panic: the client read no
// response at all (unexpected EOF), and a page reconnected into the
// panic, which the 204 exists to stop. The answer is flushed first.
func TestPanicAfterRefusalStillAnswers(t *testing.T) {
	afterNext := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, err := next(ctx, hs)
			if err != nil || hs.Request.Header.Get("Last-Event-ID") != "" {
				panic("interceptor bug after next")
			}
			return ctx, err
		}
	})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, wsrpc.WithInterceptors(afterNext)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the panics are expected
	srv.Start()
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, request string
		status        int
	}{
		{"WebSocket refused by Accept", "GET " + testingv1wsrpc.StreamServiceEchoPath + " HTTP/1.1\r\nHost: x\r\n" +
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: wsrpc.json\r\n" +
			"Origin: http://evil.example\r\n\r\n", http.StatusForbidden},
		{"SSE after its end", "GET " + testingv1wsrpc.StreamServiceWatchPath + "?room=r HTTP/1.1\r\nHost: x\r\n" +
			"Accept: text/event-stream\r\nLast-Event-ID: " + wsrpc.SSEEndEventID + "\r\n\r\n", http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, tc.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatalf("no response: %v, want %d", err, tc.status)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}
