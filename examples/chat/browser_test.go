package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc/internal/browsertest"
)

// artifactsDir is where browser tests leave screenshots: $WSRPC_ARTIFACTS,
// else wsrpc-artifacts in the system's temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WSRPC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wsrpc-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// poll waits for a JavaScript predicate on the page. Interval polling,
// not animation frames: a tab in the background gets no frames.
func poll(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, page)
	}
}

// pageText is a predicate: some element matching sel has text containing s.
func pageText(sel, s string) string {
	q, _ := json.Marshal(sel)
	v, _ := json.Marshal(s)
	return `[...document.querySelectorAll(` + string(q) + `)].some((e) => e.textContent.includes(` + string(v) + `))`
}

// TestBrowserChat: two Chromium tabs load the page the server embeds and
// join the lobby through the real form, as Ada and Bob. A message Ada
// types and sends appears in both tabs (on Ada's side as her own), the
// activity sidebar of both tabs, fed by EventSource, shows the joins and
// the message, and the WebSocket is the page's own with the "wsrpc.json"
// subprotocol. A screenshot of Ada's tab is saved as an artifact.
func TestBrowserChat(t *testing.T) {
	url, _ := startChat(t, config{NodeID: "demo"})
	ada := browsertest.New(t)
	bob, cancelBob := chromedp.NewContext(ada) // a second tab of the same browser
	defer cancelBob()

	if err := chromedp.Do(ada, chromedp.EmulateViewport(1180, 720), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bob, chromedp.EmulateViewport(1180, 720), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	for _, tab := range []struct {
		ctx  context.Context
		name string
	}{{ada, "Ada"}, {bob, "Bob"}} {
		poll(t, tab.ctx, tab.name+": feed live", pageText("#feed-state", "live"))
		if err := chromedp.Do(tab.ctx,
			chromedp.SendKeys(chromedp.CSS("#name"), tab.name),
			chromedp.Click(chromedp.CSS("#join")),
		); err != nil {
			t.Fatal(err)
		}
		poll(t, tab.ctx, tab.name+": joined", pageText("#where", "#lobby as "+tab.name))
	}
	poll(t, ada, "Ada sees Bob join", pageText("#messages .system", "Bob joined"))

	const text = "Hello from Ada — it's a real-time wsrpc demo ✓"
	if err := chromedp.Do(ada,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")),
	); err != nil {
		t.Fatal(err)
	}
	poll(t, ada, "Ada sees her message as her own", pageText("#messages .msg.mine .bubble", text))
	poll(t, bob, "Bob sees Ada's message", pageText("#messages .msg:not(.mine) .bubble", text))
	for _, tab := range []struct {
		ctx  context.Context
		name string
	}{{ada, "Ada"}, {bob, "Bob"}} {
		for _, want := range []string{"Ada joined", "Bob joined", "Ada: " + text} {
			poll(t, tab.ctx, tab.name+"'s activity feed shows "+want, pageText("#activity li", want))
		}
	}
	if err := chromedp.Do(bob,
		chromedp.SendKeys(chromedp.CSS("#text"), "Hi Ada! Both tabs see this."),
		chromedp.Click(chromedp.CSS("#send")),
	); err != nil {
		t.Fatal(err)
	}
	poll(t, ada, "Ada sees Bob's reply", pageText("#messages .msg:not(.mine) .bubble", "Hi Ada! Both tabs see this."))
	poll(t, ada, "Ada's feed shows Bob's reply", pageText("#activity li", "Bob: Hi Ada!"))

	// The session is the page's own WebSocket, negotiated as protojson.
	proto, err := chromedp.Run(ada, chromedp.Evaluate[string](`ws.protocol`))
	if err != nil || proto != "wsrpc.json" {
		t.Fatalf("ws.protocol %q, %v; want wsrpc.json", proto, err)
	}

	png, err := chromedp.Run(ada, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactsDir(t), "chat.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
