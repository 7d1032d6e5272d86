package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/examples/chat/chatserver"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/internal/browsertest"
	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
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

// poll waits up to 20 s for a JavaScript predicate on the page.
func poll(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	pollWithin(t, ctx, 20*time.Second, what, js)
}

// pollWithin waits up to d for a JavaScript predicate on the page.
// Interval polling, not animation frames: a tab in the background gets
// no frames.
func pollWithin(t *testing.T, ctx context.Context, d time.Duration, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
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
	start := restartable(t)
	s := start()
	tab := openPage(t, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	session(t, ctx, s.URL, "lobby", "Dan", codec.JSON)
	poll(t, tab, "the feed shows Dan", pageText("#activity li", "Dan joined"))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", strings.TrimPrefix(s.URL, "http://")) // where the page looks
	if err != nil {
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
	start := restartable(t)
	s := start()
	tab := openPage(t, s.URL)
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

// TestBrowserChatRejoinsAfterNetworkDrop: the page's network drops, as
// a phone's Wi-Fi does for a second. The page's connections go through a
// TCP proxy, which cuts them the way a lost network does: the page's
// side closes without a close frame (1006 to the page), the server's
// side stays open and silent, so the server holds Ada's session, and her
// name, until its keepalive (a minute here, to leave no doubt; within a
// minute in the demo) gives up on it. The page says "reconnecting…" and
// joins again under the same name with its tab's client token, which
// the server admits at once, replacing the session it holds: Bob sees
// Ada leave and join again, then a message typed afterwards. Then the
// tab is reloaded while the server holds its session again (the network
// dropped once more, the page not rejoining by itself this time): the
// reloaded page, whose token the tab's sessionStorage kept, joins by
// hand under the same name at once. Before, every attempt was refused
// with 4006 ("name taken in this room") until the keepalive dropped the
// old session, and a reloaded page was told the name was taken, offline.
func TestBrowserChatRejoinsAfterNetworkDrop(t *testing.T) {
	const keepalive = time.Minute
	url := startChatKeepalive(t, keepalive)
	proxy := startCutProxy(t, url)
	tab := browsertest.New(t)
	if err := chromedp.Do(tab, chromedp.Navigate(proxy.URL())); err != nil {
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

	// Bob, straight to the server, reads all along: a client answers the
	// keepalive's pings as it reads.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bob, _ := session(t, ctx, url, "lobby", "Bob", codec.JSON)
	bobSees := make(chan *chatv1.ChatResponse, 64)
	go func() {
		defer close(bobSees)
		for {
			ev, err := bob.Receive()
			if err != nil {
				return
			}
			select {
			case bobSees <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	poll(t, tab, "Ada sees Bob join", pageText("#messages .system", "Bob joined"))
	// bobWaits returns the joins and departures Bob sees until Ada's
	// message text.
	bobWaits := func(text string) []string {
		t.Helper()
		var saw []string
		timeout := time.After(20 * time.Second)
		for {
			var ev *chatv1.ChatResponse
			select {
			case ev = <-bobSees:
			case <-timeout:
				t.Fatalf("Bob waiting for Ada's message %q; saw %q", text, saw)
			}
			if ev == nil {
				t.Fatalf("Bob's session ended waiting for Ada's message %q; saw %q", text, saw)
			}
			if l := ev.GetLeft(); l != nil {
				saw = append(saw, l.GetName()+" left")
			} else if j := ev.GetJoined(); j != nil {
				saw = append(saw, j.GetName()+" joined")
			} else if m := ev.GetMessage(); m != nil && m.GetFrom() == "Ada" && m.GetText() == text {
				return saw
			}
		}
	}
	send := func(text string) {
		t.Helper()
		if err := chromedp.Do(tab,
			chromedp.SendKeys(chromedp.CSS("#text"), text),
			chromedp.Click(chromedp.CSS("#send")),
		); err != nil {
			t.Fatal(err)
		}
	}

	// The close codes of the page's sockets, the lost one's and its
	// attempts' (WebSocket is looked up at each join).
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.firstSocket = ws;
		window.closeCodes = [];
		ws.addEventListener("close", (e) => closeCodes.push(e.code));
		window.WebSocket = class extends WebSocket {
			constructor(...args) { super(...args); this.addEventListener("close", (e) => closeCodes.push(e.code)); }
		};
		true`)); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	// The page's first attempt comes after 0.5 to 1 s; ended early by a
	// final error.
	joinedAgain := status + `.startsWith("connected") && ws !== window.firstSocket && ws.readyState === WebSocket.OPEN`
	pollWithin(t, tab, 30*time.Second, "joined again, or given up", joinedAgain+` || !document.querySelector("#join-error").hidden`)
	codes, err := chromedp.Run(tab, chromedp.Evaluate[[]int](`closeCodes`))
	if shown, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#join-error").hidden ? "" : document.querySelector("#join-error").textContent`)); shown != "" {
		t.Fatalf("the page gave up rejoining with the error %q; its sockets closed with %v", shown, codes)
	}
	poll(t, tab, "joined again under the same name", joinedAgain+` && `+pageText("#where", "#lobby as Ada"))
	if err != nil || !slices.Equal(codes, []int{1006}) {
		t.Errorf("the page's sockets closed with %v (%v), want only the lost one's 1006: the first attempt is admitted", codes, err)
	}
	const text = "back after the network dropped"
	send(text)
	rejoined := []string{"Ada left", "Ada joined"}
	if saw := bobWaits(text); !slices.Equal(saw, rejoined) {
		t.Errorf("Bob saw %q before Ada's message, want %q", saw, rejoined)
	}
	poll(t, tab, "Ada sees her message as her own", pageText("#messages .msg.mine .bubble", text))

	// The network drops again, and this time the page does not rejoin
	// (as if the user reloaded first): the server holds its session.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`rejoinCodes.clear(); true`)); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	poll(t, tab, "offline after the second drop", status+` === "offline"`)
	if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "feed live after the reload", pageText("#feed-state", "live"))
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#name"), "Ada"),
		chromedp.Click(chromedp.CSS("#join")),
	); err != nil {
		t.Fatal(err)
	}
	pollWithin(t, tab, 30*time.Second, "joined after the reload, or refused", pageText("#where", "#lobby as Ada")+` || !document.querySelector("#join-error").hidden`)
	if shown, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#join-error").hidden ? "" : document.querySelector("#join-error").textContent`)); shown != "" {
		t.Fatalf("the reloaded page joining as Ada was refused: %q", shown)
	}
	const again = "back after a reload"
	send(again)
	if saw := bobWaits(again); !slices.Equal(saw, rejoined) {
		t.Errorf("Bob saw %q before Ada's message after the reload, want %q", saw, rejoined)
	}
}

// startChatKeepalive serves the page and the chat service on 127.0.0.1
// as run does, with chat sessions pinged every keepalive (which run
// leaves at the service's default), and returns its URL. It stops when
// the test ends.
func startChatKeepalive(t *testing.T, keepalive time.Duration) string {
	t.Helper()
	h, err := hub.New(nil, &hub.Options{NodeID: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	svc := chatserver.New(h, &chatserver.Options{Keepalive: keepalive})
	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(page))
	mux.Handle(svc.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := wsrpc.NewHTTPServer(mux)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close() // the listener and the feeds' connections
		<-done
		svc.Close() // the chat sessions, on hijacked connections
		h.Close()
	})
	return "http://" + ln.Addr().String()
}

// cutProxy forwards TCP connections from a port of its own to a server.
// Cut loses the connections open at that moment the way a dropped
// network does: the client's side is closed, without a close frame, and
// the server's side is left open but silent, nothing forwarded either
// way, so the server learns of the loss only from its keepalive.
// Connections made after Cut are forwarded as before.
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	pairs  map[*proxyPair]bool // forwarding
	held   []net.Conn          // the server sides of pairs cut
}

type proxyPair struct {
	client, server net.Conn
	cut            bool
}

// startCutProxy starts a cutProxy to the server at url on 127.0.0.1; it
// closes every connection when the test ends.
func startCutProxy(t *testing.T, url string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: url[len("http://"):], pairs: make(map[*proxyPair]bool)}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.t.Logf("proxy: %v", err)
			client.Close()
			continue
		}
		pair := &proxyPair{client: client, server: server}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.pairs[pair] = true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.forward(pair, server, client)
		go p.forward(pair, client, server)
	}
}

// forward copies src to dst; when either side ends, it closes both,
// unless the pair was cut: then its server side is held until close.
func (p *cutProxy) forward(pair *proxyPair, dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	p.mu.Lock()
	defer p.mu.Unlock()
	if pair.cut {
		return
	}
	delete(p.pairs, pair)
	pair.client.Close()
	pair.server.Close()
}

// Cut loses every connection open now.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pair := range p.pairs {
		pair.cut = true
		pair.client.Close()
		p.held = append(p.held, pair.server)
	}
	clear(p.pairs)
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for pair := range p.pairs {
		pair.client.Close()
		pair.server.Close()
	}
	for _, c := range p.held {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// restartable returns a function that starts the demo on one address,
// the same each time, so that a test can stop it and start it again
// where the page and its clients expect it.
func restartable(t *testing.T) func() *runtest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return func() *runtest.Server {
		return runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
			return run(ctx, config{Addr: addr, NodeID: "demo"}, out)
		})
	}
}

// openPage opens the page at url in a new browser tab and waits until
// its room feed is live.
func openPage(t *testing.T, url string) context.Context {
	t.Helper()
	tab := browsertest.New(t)
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "feed live", pageText("#feed-state", "live"))
	return tab
}
