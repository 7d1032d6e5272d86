package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/internal/browsertest"
	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/runtime/codec"
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
// join the lobby through the real form, as Ada and Bob; Bob's tab first
// tries "ADA" and is told the name is taken (the page marks its own
// messages by name: before, two tabs named Ada each showed the other's
// messages as their own). A message Ada types and sends appears in both
// tabs (on Ada's side as her own), the activity sidebar of both tabs,
// fed by EventSource, shows the joins and the message, and the WebSocket
// is the page's own with the "wsrpc.json" subprotocol. A screenshot of
// Ada's tab is saved as an artifact. Bob then leaves with the Leave
// button: his tab sees his own departure and shows no error.
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
		ctx   context.Context
		name  string
		taken string // a name to try first, which another tab has
	}{{ada, "Ada", ""}, {bob, "Bob", "ADA"}} {
		poll(t, tab.ctx, tab.name+": feed live", pageText("#feed-state", "live"))
		if tab.taken != "" {
			if err := chromedp.Do(tab.ctx,
				chromedp.SendKeys(chromedp.CSS("#name"), tab.taken),
				chromedp.Click(chromedp.CSS("#join")),
			); err != nil {
				t.Fatal(err)
			}
			poll(t, tab.ctx, tab.name+": "+tab.taken+" refused", `!document.querySelector("#join-error").hidden && `+pageText("#join-error", "name taken in this room"))
			if _, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`document.querySelector("#name").value = ""`)); err != nil {
				t.Fatal(err)
			}
		}
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

	// Leave: the page ends its side; the server sends what is queued for
	// it, its own departure included, then closes normally.
	if err := chromedp.Do(bob, chromedp.Click(chromedp.CSS("#leave"))); err != nil {
		t.Fatal(err)
	}
	poll(t, bob, "Bob sees himself leave", pageText("#messages .system", "Bob left"))
	poll(t, bob, "Bob not joined", `document.querySelector("#where").textContent === "not joined"`)
	poll(t, ada, "Ada sees Bob leave", pageText("#messages .system", "Bob left"))
	if shown, err := chromedp.Run(bob, chromedp.Evaluate[string](`document.querySelector("#join-error").hidden ? "" : document.querySelector("#join-error").textContent`)); err != nil || shown != "" {
		t.Errorf("after Leave Bob's page shows the error %q (%v)", shown, err)
	}
}

// TestBrowserPageBounded: a page left open keeps the latest 500 entries
// of its message list and of its activity feed (before, both grew with
// every event for as long as the tab stayed open, as did the feed's set
// of seen ids), and a feed that ends with "fell behind"
// (resource_exhausted) starts over by itself a moment later, where it
// used to stay stopped until the page was reloaded.
func TestBrowserPageBounded(t *testing.T) {
	url, _ := startChat(t, config{NodeID: "demo"})
	tab := browsertest.New(t)
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "feed live", pageText("#feed-state", "live"))
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#name"), "Cleo"),
		chromedp.Click(chromedp.CSS("#join")),
	); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "joined", pageText("#where", "#lobby as Cleo"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 704 messages in bursts of 64, each burst shown before the next is
	// sent: the page is to keep the latest 500, not to keep up with a
	// flood (a member who falls a queue behind is disconnected).
	dan, _ := session(t, ctx, url, "lobby", "Dan", codec.JSON)
	for burst := range 11 {
		for i := range 64 {
			text := fmt.Sprintf("burst %d message %d", burst, i)
			if err := dan.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: text}}); err != nil {
				t.Fatal(err)
			}
		}
		last := fmt.Sprintf("burst %d message 63", burst)
		poll(t, tab, "the burst's last message in the list", pageText("#messages .bubble", last))
		poll(t, tab, "the burst's last message in the feed", pageText("#activity li", "Dan: "+last))
	}
	for _, list := range []string{"#messages", "#activity"} {
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("`+list+` li").length`))
		if err != nil || n != 500 {
			t.Errorf("%s holds %d entries (%v), want the latest 500 of over 700", list, n, err)
		}
	}

	// The server's "fell behind" ending, as the page receives it.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.stoppedFeed = es;
		es.dispatchEvent(new MessageEvent("wsrpc.error", {data: JSON.stringify({code: "resource_exhausted", message: "fell behind the room's activity"})}));
		true`)); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "the feed stopped", `window.stoppedFeed.readyState === EventSource.CLOSED`)
	poll(t, tab, "a new feed, live", `es !== window.stoppedFeed && es.readyState === EventSource.OPEN && document.querySelector("#feed-state").textContent === "live"`)
	poll(t, tab, "the new feed's backlog", pageText("#activity li", "Dan: burst 10 message 63"))
}

// TestBrowserFeedRestartsAfterRefusal: while the server restarts, its
// address answers 503 for a while, as a reverse proxy does when its
// backend is down. EventSource gives up for good on an answer other than
// a 200 event stream (WHATWG HTML §9.2.3: readyState CLOSED); the page
// then starts a new feed itself, after 1 s, then 2 s (doubling up to
// 30 s), saying so, and once the server is back the feed is live again
// and shows the room. Before, the page said "reconnecting" and the feed
// stayed dead until the page was reloaded. The new feed resumes after the
// last event shown: a new EventSource sends no Last-Event-ID, so the page
// passes it as ?lastEventId= (which the server reads in the header's
// absence), and keeps what it showed. Before, the new feed started over,
// clearing the list, and lost what was said beyond the recent history.
func TestBrowserFeedRestartsAfterRefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := func() *runtest.Server {
		return runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
			return run(ctx, config{Addr: addr, NodeID: "demo"}, out)
		})
	}
	s := start()
	tab := browsertest.New(t)
	if err := chromedp.Do(tab, chromedp.Navigate(s.URL)); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "feed live", pageText("#feed-state", "live"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	session(t, ctx, s.URL, "lobby", "Dan", codec.JSON)
	poll(t, tab, "the feed shows Dan", pageText("#activity li", "Dan joined"))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	down := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "backend restarting", http.StatusServiceUnavailable)
	})}
	go down.Serve(ln)
	defer down.Close()
	state := `document.querySelector("#feed-state").textContent`
	poll(t, tab, "refused feed: a new one in 1 s", `es.readyState === EventSource.CLOSED && `+state+` === "reconnecting in 1s"`)
	// The last event shown (Dan left, as the server stopped).
	lastID, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#activity li:last-child").dataset.id`))
	if err != nil || lastID == "" {
		t.Fatalf("the last event's id: %q, %v", lastID, err)
	}
	poll(t, tab, "refused again: a new one in 2 s", `es.readyState === EventSource.CLOSED && `+state+` === "reconnecting in 2s"`)
	down.Close()
	s = start()
	poll(t, tab, "feed live again", `es.readyState === EventSource.OPEN && `+state+` === "live"`)
	q, _ := json.Marshal("lastEventId=" + url.QueryEscape(lastID))
	poll(t, tab, "the new feed resumes after the last event shown", `new URL(es.url).search.includes(`+string(q)+`)`)
	session(t, ctx, s.URL, "lobby", "Eve", codec.JSON)
	poll(t, tab, "the new feed shows the room", pageText("#activity li", "Eve joined"))
	poll(t, tab, "what the page showed is kept", pageText("#activity li", "Dan joined"))
}

// TestBrowserChatRejoinsAfterRestart: the server restarts (on the same
// port) under a joined page. Its session is closed with 1001 (going
// away), which docs/codegen.md §5 tells pages to retry: the page says
// "reconnecting…", joins the room again under the same name once the
// server is back (its attempts meanwhile end with 1006, and are retried
// too), and a message typed afterwards goes out on the new socket and
// reaches a member who joined after the restart. Before, the page showed
// "server shutting down", "offline" and "not joined" until the user
// joined again by hand, while its activity feed came back by itself. A
// Leave while the page is reconnecting stops it: the page is offline,
// not joined, and shows no error.
func TestBrowserChatRejoinsAfterRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := func() *runtest.Server {
		return runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
			return run(ctx, config{Addr: addr, NodeID: "demo"}, out)
		})
	}
	s := start()
	tab := browsertest.New(t)
	if err := chromedp.Do(tab, chromedp.Navigate(s.URL)); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "feed live", pageText("#feed-state", "live"))
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.Click(chromedp.CSS("#join")),
	); err != nil {
		t.Fatal(err)
	}
	status := `document.querySelector("#status").textContent`
	poll(t, tab, "joined", pageText("#where", "#lobby as Ada")+` && `+status+`.startsWith("connected")`)
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.firstSocket = ws; true`)); err != nil {
		t.Fatal(err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// The server is down: the page's attempts fail (1006) and it goes on.
	poll(t, tab, "reconnecting while the server is down", status+` === "reconnecting…" && `+pageText("#where", "#lobby as Ada"))
	s = start()
	poll(t, tab, "joined again on a new socket", status+`.startsWith("connected") && `+pageText("#where", "#lobby as Ada")+
		` && ws !== window.firstSocket && ws.readyState === WebSocket.OPEN && document.querySelector("#join-error").hidden`)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob, _ := session(t, ctx, s.URL, "lobby", "Bob", codec.JSON)
	poll(t, tab, "Ada sees Bob join", pageText("#messages .system", "Bob joined"))
	const text = "still here after the restart"
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send")),
	); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := bob.Receive()
		if err != nil {
			t.Fatalf("Bob waiting for Ada's message: %v", err)
		}
		if m := ev.GetMessage(); m != nil && m.GetFrom() == "Ada" && m.GetText() == text {
			break
		}
	}
	poll(t, tab, "Ada sees her message as her own", pageText("#messages .msg.mine .bubble", text))

	// Leave while reconnecting: no more attempts, no error shown.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "reconnecting again", status+` === "reconnecting…"`)
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#leave"))); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "left", status+` === "offline" && document.querySelector("#where").textContent === "not joined"`+
		` && !document.querySelector("#join-form").hidden && document.querySelector("#join-error").hidden`)
}
