package websocket_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestDialRefusalEmptyBody: a refusal with no text in its body (none, or
// only white space) is reported without a body segment, as
// sse.StatusError reports it. It read "websocket: server answered 400
// Bad Request: : websocket: bad handshake".
func TestDialRefusalEmptyBody(t *testing.T) {
	for name, body := range map[string]string{"empty": "", "white space": " \r\n\t"} {
		t.Run(name, func(t *testing.T) {
			addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) {
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
			})
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/chat", nil)
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial succeeded")
			}
			const want = "websocket: server answered 400 Bad Request: websocket: bad handshake"
			if err.Error() != want || !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("Dial: %q\nwant %q, wrapping ErrBadHandshake", err, want)
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("resp %v, want the 400", resp)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != body {
				t.Fatalf("body %q, want %q as sent", b, body)
			}
		})
	}
}
