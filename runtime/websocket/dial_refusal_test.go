package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestDialRefusalEscaped: a hostile server's refusal reaches Dial's error
// string escaped, status line and body alike, while the response keeps
// both raw. The error carried them as sent, so printing it turned a
// terminal red, cleared it, set its title, forged a second log line and
// reversed the rest of the line.
func TestDialRefusalEscaped(t *testing.T) {
	addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) { rawserver.Refuse(c, "") })
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/chat", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded")
	}
	want := "websocket: server answered " + rawserver.EscapedStatus + ": " + rawserver.EscapedBody + ": websocket: bad handshake"
	if err.Error() != want || !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("Dial: %q\nwant %q, wrapping ErrBadHandshake", err, want)
	}
	if resp == nil || resp.Status != rawserver.Status {
		t.Fatalf("resp %v, want the status as sent", resp)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != rawserver.Body {
		t.Fatalf("body %q, want %q as sent", b, rawserver.Body)
	}
}

// TestDialProxyRefusalEscaped: a proxy's refusal of CONNECT is a peer's
// text too; its status line reaches Dial's error escaped.
func TestDialProxyRefusalEscaped(t *testing.T) {
	addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) {
		io.WriteString(c, "HTTP/1.1 "+rawserver.Status+"\r\nContent-Length: 0\r\n\r\n")
	})
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	proxy := http.ProxyURL(&url.URL{Scheme: "http", Host: addr})
	c, _, err := websocket.Dial(ctx, "ws://127.0.0.1:1/", &websocket.DialOptions{Proxy: proxy})
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded through a refusing proxy")
	}
	if !strings.HasSuffix(err.Error(), ": "+rawserver.EscapedStatus) {
		t.Fatalf("Dial: %q, want the proxy's status escaped, %q", err, rawserver.EscapedStatus)
	}
}

// TestCloseErrorEscaped: a close reason is the peer's text too; Error
// shows it escaped, Reason keeps it as sent.
func TestCloseErrorEscaped(t *testing.T) {
	ce := &websocket.CloseError{Code: websocket.StatusPolicyViolation, Reason: rawserver.Body}
	if want := "websocket: closed by peer: 1008 (policy violation): " + rawserver.EscapedBody; ce.Error() != want {
		t.Fatalf("Error() = %q\nwant %q", ce.Error(), want)
	}
	if ce := (&websocket.CloseError{Code: websocket.StatusNormalClosure, Reason: " \r\n"}); ce.Error() != "websocket: closed by peer: 1000 (normal closure)" {
		t.Fatalf("Error() = %q, want no reason", ce.Error())
	}
}

// TestDialRefusalBodyBounded: a refusal whose body stalls, or trickles,
// ends Dial about a second after the header, with what came, as the
// refusal it is (status 400, ErrBadHandshake). Dial waited for the whole
// body within the handshake's deadline (30 s by default) and then
// reported the deadline, the refusal lost.
func TestDialRefusalBodyBounded(t *testing.T) {
	const head = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"
	tests := []struct {
		name   string
		answer func(c net.Conn, _ *http.Request)
	}{
		{"stalled", func(c net.Conn, _ *http.Request) {
			io.WriteString(c, head+"ab")
			rawserver.Hold(c)
		}},
		// A byte every 100 ms: 100 s for the whole body.
		{"trickle", func(c net.Conn, _ *http.Request) {
			io.WriteString(c, head+"ab")
			for range 998 {
				time.Sleep(100 * time.Millisecond)
				if _, err := io.WriteString(c, "."); err != nil {
					return
				}
			}
		}},
	}
	for _, tt := range tests {
		for _, timeout := range []time.Duration{15 * time.Second, 600 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/ctx %v", tt.name, timeout), func(t *testing.T) {
				testDialRefusalBody(t, tt.answer, timeout)
			})
		}
	}
}

// testDialRefusalBody dials a server answering with answer under a
// context of the given timeout: far longer than the body's bound, or
// shorter (the bound is then half the time left, and the refusal must
// still win over the deadline).
func testDialRefusalBody(t *testing.T, answer func(net.Conn, *http.Request), timeout time.Duration) {
	addr := rawserver.Start(t, answer)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/chat", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "400 Bad Request: ab") {
		t.Fatalf("Dial: %v; want the refusal (400, ErrBadHandshake) with the body that came, not the deadline", err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(b), "ab") || len(b) >= 1000 {
		t.Fatalf("status %d, body %q; want 400 and what came", resp.StatusCode, b)
	}
}
