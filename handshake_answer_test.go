package wsrpc_test

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestHandshakeAnswerBadSubprotocol: a 101 with no Sec-WebSocket-Protocol
// and one selecting a subprotocol the client did not offer are the same
// misconfigured server (RFC 6455 §4.1 fails the second). The first was
// internal; the second was unavailable, which WithReconnect retried
// MaxAttempts times. Both are internal now: one attempt. The server
// serves one good connection and closes it with 1001 (going away, which
// is retried), then answers every handshake with the bad 101. In the
// unoffered case the client fails a connection that was never
// established: it closes TCP without a close frame (§7.1.7).
func TestHandshakeAnswerBadSubprotocol(t *testing.T) {
	cases := []struct {
		name    string
		header  string // the bad 101's Sec-WebSocket-Protocol line
		noFrame bool   // the client closes TCP without sending a byte
	}{
		{name: "none", header: ""},
		{name: "unoffered", header: "Sec-WebSocket-Protocol: wsrpc.nope\r\n", noFrame: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var handshakes atomic.Int32
			afterBad := make(chan string, 16) // what the client sent after a bad 101, until EOF
			addr := rawserver.Start(t, func(c net.Conn, r *http.Request) {
				n := handshakes.Add(1)
				sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
					base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if n == 1 {
					offered, _, _ := strings.Cut(r.Header.Get("Sec-WebSocket-Protocol"), ",")
					// Close frame 1001 (going away): a lost connection to retry.
					_, _ = c.Write([]byte(head + "Sec-WebSocket-Protocol: " + strings.TrimSpace(offered) + "\r\n\r\n\x88\x02\x03\xe9"))
					var b [64]byte
					_, _ = c.Read(b[:]) // the client's close frame; then TCP closes
					return
				}
				if _, err := c.Write([]byte(head + tc.header + "\r\n")); err != nil {
					return
				}
				b, err := io.ReadAll(c)
				if err != nil {
					b = append(b, " (read: "+err.Error()+")"...)
				}
				select {
				case afterBad <- string(b):
				default:
				}
			})

			var attempts []error // OnReconnect runs on the goroutine calling Receive
			client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, "http://"+addr+"/t/Echo", "/t/Echo",
				wsrpc.WithReconnect(wsrpc.ReconnectPolicy{MaxAttempts: 4, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
					OnReconnect: func(_ int, err error) { attempts = append(attempts, err) }}))
			st, err := client.Call(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Receive()
			st.Close()
			if c := wsrpc.CodeOf(err); c != wsrpc.CodeInternal {
				t.Errorf("Receive: %v (code %v), want internal", err, c)
			}
			if len(attempts) != 1 || wsrpc.CodeOf(attempts[0]) != wsrpc.CodeInternal {
				t.Errorf("reconnection attempts %v, want one, internal", attempts)
			}
			if n := handshakes.Load(); n != 2 {
				t.Errorf("%d handshakes, want 2 (the good one, one attempt)", n)
			}
			if !tc.noFrame {
				return
			}
			if !errors.Is(err, websocket.ErrBadHandshake) {
				t.Errorf("Receive: %v, want it to wrap websocket.ErrBadHandshake", err)
			}
			select {
			case got := <-afterBad:
				if got != "" {
					t.Errorf("client sent %q after the bad 101, want TCP closed with nothing (no close frame)", got)
				}
			case <-time.After(10 * time.Second):
				t.Error("the client did not close TCP after the bad 101")
			}
		})
	}
}
