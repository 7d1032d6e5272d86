package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc/internal/browsertest"
)

// browserEcho is run in headless Chromium: it opens the echo endpoint,
// sends text (small, compressible, large, non-ASCII) and binary messages,
// and reports the negotiated extensions and whether every echo matched.
const browserEcho = `(async (url) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("connect failed")); });
  const texts = ["hi", "héllo wörld ✓", "compressible ".repeat(20000), "x".repeat(70000)];
  const bin = new Uint8Array(300000);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919) % 251;
  const got = [];
  const done = new Promise((ok) => {
    ws.onmessage = (e) => { got.push(e.data); if (got.length === texts.length + 1) ok(); };
  });
  for (const t of texts) ws.send(t);
  ws.send(bin);
  await done;
  let ok = texts.every((t, i) => got[i] === t);
  const b = new Uint8Array(got[texts.length]);
  ok = ok && b.length === bin.length && b.every((v, i) => v === bin[i]);
  const closed = new Promise((ok) => { ws.onclose = (e) => ok(e.code); });
  ws.close(1000, "bye");
  return JSON.stringify({extensions: ws.extensions, ok, code: await closed});
})`

// TestBrowserEcho: Chromium (which always offers permessage-deflate with
// client_max_window_bits) against the echo server, with and without
// deflate: every message comes back intact, and the extension is
// negotiated only when the server accepts it.
func TestBrowserEcho(t *testing.T) {
	for _, deflate := range []bool{true, false} {
		name := "deflate"
		if !deflate {
			name = "no-deflate"
		}
		t.Run(name, func(t *testing.T) {
			url, _, _ := startEchoWith(t, deflate)
			ctx := browsertest.New(t)
			// A page of its own origin, as a real page would be.
			page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<!doctype html><title>echo test</title>"))
			}))
			defer page.Close()
			if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
				t.Fatal(err)
			}
			res, err := chromedp.Run(ctx, chromedp.Evaluate[string](browserEcho+"("+jsString(url)+")", chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Extensions string
				OK         bool
				Code       int
			}
			if err := json.Unmarshal([]byte(res), &got); err != nil {
				t.Fatalf("%v: %s", err, res)
			}
			if !got.OK {
				t.Fatal("an echo differed")
			}
			if got.Code != 1000 {
				t.Fatalf("close code %d, want 1000", got.Code)
			}
			if has := strings.HasPrefix(got.Extensions, "permessage-deflate"); has != deflate {
				t.Fatalf("negotiated extensions %q with deflate=%v", got.Extensions, deflate)
			}
		})
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
