package hub_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestWebSocketHandlerReadLimit: a WebSocketHandler endpoint is
// subscribe-only, so what its clients send is discarded, and without a
// MaxMessageSize of the caller's it accepts no more than
// hub.DefaultSubscriberMaxMessageSize: a larger message fails the
// connection with 1009. It kept the connection's 4 MiB default, so any
// client could make the server read and buffer 4 MiB per connection, to
// throw it away. A small message is discarded as before, and a limit in
// the options holds.
func TestWebSocketHandlerReadLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  *websocket.AcceptOptions
		size  int
		fails bool
	}{
		{name: "default, small message", size: 100},
		{name: "default, large message", size: 64 << 10, fails: true},
		{name: "options without a limit", opts: &websocket.AcceptOptions{Subprotocols: []string{codec.SubprotocolJSON}},
			size: hub.DefaultSubscriberMaxMessageSize + 1, fails: true},
		{name: "limit set in the options", opts: &websocket.AcceptOptions{MaxMessageSize: 1 << 20}, size: 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopic(t, newHub(t, nil, "a"), "readlimit", nil)
			srv := httptest.NewServer(tp.WebSocketHandler(tc.opts, nil))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"),
				&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolJSON}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			waitSubscribers(t, tp, 1)
			if err := c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte{'x'}, tc.size)); err != nil {
				t.Fatal(err)
			}
			if tc.fails {
				// Loopback: the close comes at once, or not at all.
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				defer rcancel()
				_, b, err := c.Read(rctx)
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
					t.Fatalf("after a %d-byte message: read %q, %v; want close 1009", tc.size, b, err)
				}
				return
			}
			if err := tp.Publish(ctx, wrapperspb.String("still here")); err != nil {
				t.Fatal(err)
			}
			if _, b, err := c.Read(ctx); err != nil || string(b) != `"still here"` {
				t.Fatalf("after a %d-byte message: read %q, %v; want the publish", tc.size, b, err)
			}
		})
	}
}
