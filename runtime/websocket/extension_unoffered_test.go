package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// silentExt is installed but offers nothing as a client (a server-only
// extension in a set shared by Accept and Dial).
type silentExt struct{ tagExt }

func (silentExt) ClientOffers() [][]websocket.Param { return nil }

// TestDialRefusesExtensionNotOffered guards RFC 6455 §4.1: a client fails
// the handshake when the answer uses an extension that was not in its
// request. An installed extension that offered nothing was taken for one
// offered: a server answering it switched it on.
func TestDialRefusesExtensionNotOffered(t *testing.T) {
	url, _ := fakeServer(t, func(w io.Writer, req *http.Request) {
		if got := req.Header.Values("Sec-WebSocket-Extensions"); len(got) != 0 {
			t.Errorf("offered %q, want nothing", got)
		}
		fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: x-a\r\n\r\n",
			wsAccept(req.Header.Get("Sec-WebSocket-Key")))
	})
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	set := websocket.MustExtensionSet(silentExt{tagExt{"a"}})
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: set})
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial accepted an answer with an extension it did not offer")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("Dial: %v, want ErrBadHandshake", err)
	}
}
