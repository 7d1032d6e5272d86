package websocket_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

func TestSmokeEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			typ, p, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, p); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		msg := bytes.Repeat([]byte("x"), n)
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: %v %v len %d", n, typ, err, len(got))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
}

// A context per call, canceled as soon as the call returns, is the common
// pattern; a canceled context must never close the connection once its
// call is over, even while the next call (with another context) runs.
func TestContextPerCallCanceledAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			ctx, cancel := context.WithCancel(r.Context())
			typ, p, err := c.Read(ctx)
			cancel()
			if err != nil {
				return
			}
			ctx, cancel = context.WithCancel(r.Context())
			err = c.Write(ctx, typ, p)
			cancel()
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 500 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Write(ctx, websocket.MessageBinary, []byte{byte(i)})
		cancel()
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		_, p, err := c.Read(ctx)
		cancel()
		if err != nil || len(p) != 1 || p[0] != byte(i) {
			t.Fatalf("read %d: %v %v", i, p, err)
		}
	}
}
