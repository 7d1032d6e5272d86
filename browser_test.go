package wsrpc_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestBrowserStyleWebSocket talks to a generated handler the way a page
// without generated code does: new WebSocket(url, "wsrpc.json"), JSON in
// text frames, an empty text frame to finish sending.
func TestBrowserStyleWebSocket(t *testing.T) {
	base := serve(t)
	ctx := testContext(t)
	c, resp, err := websocket.Dial(ctx, base+testingv1wsrpc.StreamServiceEchoPath, &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolJSON}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "wsrpc.json" || resp.Header.Get("Sec-WebSocket-Protocol") != "wsrpc.json" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	for _, msg := range []string{`{"text":"hi","seq":"3"}`, `{"text":"there","seq":4,"blob":"AAE="}`, `{}`} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write(ctx, websocket.MessageText, nil); err != nil { // CloseSend
		t.Fatal(err)
	}
	want := []map[string]any{{"text": "hi", "seq": "3"}, {"text": "there", "seq": "4", "blob": "AAE="}, {}}
	for i, w := range want {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.MessageText {
			t.Fatalf("message %d is %v, want text", i, typ)
		}
		var got map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("message %d %q: %v", i, data, err)
		}
		if len(got) != len(w) {
			t.Fatalf("message %d = %s, want %v", i, data, w)
		}
		for k, v := range w {
			if got[k] != v {
				t.Fatalf("message %d = %s, want %v", i, data, w)
			}
		}
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("end of stream = %v, want a normal closure", err)
	}

	// A handler's error arrives as 4000+code with the message as reason.
	c2, _, err := websocket.Dial(ctx, base+testingv1wsrpc.StreamServiceEchoPath, &websocket.DialOptions{Subprotocols: []string{"wsrpc.json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if err := c2.Write(ctx, websocket.MessageText, []byte(`{"text":"fail","seq":9}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4009 || ce.Reason != "asked to fail at 9" {
		t.Fatalf("close = %v, want 4009 (failed_precondition) with the message", err)
	}

	// Malformed JSON fails the stream with invalid_argument (4003).
	c3, _, err := websocket.Dial(ctx, base+testingv1wsrpc.StreamServiceEchoPath, &websocket.DialOptions{Subprotocols: []string{"wsrpc.json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.CloseNow()
	if err := c3.Write(ctx, websocket.MessageText, []byte(`{"text":`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err = c3.Read(ctx); websocket.CloseStatus(err) != 4003 {
		t.Fatalf("close = %v, want 4003", err)
	}
}

// TestBrowserStyleSSE reads a generated SSE handler the way EventSource
// does: a GET with the request in the query, parsed by the WHATWG parser.
func TestBrowserStyleSSE(t *testing.T) {
	base := serve(t)
	ctx := testContext(t)
	q := url.Values{"room": {"lobby"}, "count": {"1"}, "tags": {"a", "b"}, "since": {"10"}, "token": {"YWI"}, "minLevel": {"LEVEL_INFO"}, "unknownParam": {"x"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+testingv1wsrpc.StreamServiceWatchPath+"?"+q.Encode(), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("response %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := sse.NewParser(resp.Body, nil)
	want := []sse.Event{
		{Type: "tick", Data: `{"seq":"11","room":"lobby","tags":["a","b"]}`},
		{Type: "note", Data: `"note 1: LEVEL_INFO\nsecond line"`},
		{Type: "level", Data: `"1099511627776"`},
		{Type: "user_joined", Data: `{"user":"ab"}`},
		{Type: wsrpc.SSEEventEnd, Data: "{}"},
	}
	for i, w := range want {
		ev, err := p.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Type != w.Type || compactJSON(t, ev.Data) != compactJSON(t, w.Data) {
			t.Fatalf("event %d = %q %q, want %q %q", i, ev.Type, ev.Data, w.Type, w.Data)
		}
	}
	if _, err := p.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the end: %v, want io.EOF", err)
	}

	// The request form works for any request; a type without a oneof
	// sends "message" events (no event: line).
	q = url.Values{"request": {`{"filter":{"query":"go"},"limit":1}`}}
	resp2, err := http.Get(base + testingv1wsrpc.StreamServiceSearchPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	p = sse.NewParser(resp2.Body, nil)
	ev, err := p.Next()
	if err != nil || ev.Type != "message" || compactJSON(t, ev.Data) != compactJSON(t, `{"title":"go ","rank":1}`) {
		t.Fatalf("search event = %+v, %v", ev, err)
	}

	// Bad requests are refused before the stream with 400.
	for _, bad := range []string{"count=x", "room=a&room=b", "fail=yes", "request=%7B%7D&room=a", "request=nope"} {
		resp, err := http.Get(base + testingv1wsrpc.StreamServiceWatchPath + "?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(wsrpc.CodeHeader) != "invalid_argument" {
			t.Errorf("%s: %s %q %s", bad, resp.Status, resp.Header.Get(wsrpc.CodeHeader), body)
		}
	}
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
