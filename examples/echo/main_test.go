package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// startEcho runs the server on a free port and returns its URL, the cancel
// that stops it, and wait, which returns run's result (bounded).
func startEcho(t *testing.T) (url string, stop context.CancelFunc, wait func() error) {
	t.Helper()
	return startEchoWith(t, true)
}

// startEchoWith is startEcho with permessage-deflate on or off.
func startEchoWith(t *testing.T, deflate bool) (url string, stop context.CancelFunc, wait func() error) {
	t.Helper()
	s := runtest.Start(t, regexp.MustCompile(`^listening on (ws://127\.0\.0\.1:\d+/echo)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, "127.0.0.1:0", deflate, out)
	})
	return s.URL, s.Cancel, s.Wait
}

// TestEcho: every message comes back unchanged and with its type, from any
// origin, including one past the engine's 4 MiB default limit (the example
// allows 64 MiB) sent as fragments.
func TestEcho(t *testing.T) {
	url, _, _ := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Header:         http.Header{"Origin": {"https://elsewhere.example"}},
		MaxMessageSize: 64 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	big := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16)
	cases := []struct {
		typ      websocket.MessageType
		data     []byte
		streamed bool
	}{
		{websocket.MessageText, []byte("hello ✓"), false},
		{websocket.MessageBinary, []byte{0, 1, 2, 255}, false},
		{websocket.MessageText, nil, false},
		{websocket.MessageBinary, big, false},
		{websocket.MessageText, big, true},
	}
	for i, tc := range cases {
		if tc.streamed {
			w, err := c.Writer(ctx, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			for p := tc.data; len(p) > 0; p = p[min(len(p), 1<<20):] {
				if _, err := w.Write(p[:min(len(p), 1<<20)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		} else if err := c.Write(ctx, tc.typ, tc.data); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if typ != tc.typ || !bytes.Equal(got, tc.data) {
			t.Errorf("message %d: got %v of %d bytes, want %v of %d bytes", i, typ, len(got), tc.typ, len(tc.data))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestEchoNotWebSocket: a plain GET is refused with 426 and a reason.
func TestEchoNotWebSocket(t *testing.T) {
	url, _, _ := startEcho(t)
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("status %s, want 426", resp.Status)
	}
}

// TestEchoShutdown: cancelling run's context closes open sessions with
// 1001 and a reason, and run returns nil.
func TestEchoShutdown(t *testing.T) {
	url, stop, wait := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// One round trip, so the session is surely being served.
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	_, _, err = c.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "server shutting down" {
		t.Errorf("read after shutdown: %v, want close 1001 server shutting down", err)
	}
	if err := wait(); err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestEchoBadAddr: run reports a listen error instead of printing the line.
func TestEchoBadAddr(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), "127.0.0.1:notaport", true, &out); err == nil {
		t.Error("run with a bad address: want an error")
	}
	if out.Len() != 0 {
		t.Errorf("printed %q before listening", out.String())
	}
}
