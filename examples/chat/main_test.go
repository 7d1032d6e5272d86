package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/gen/examples/chat/v1/chatv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/internal/sockbuf"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// startChat runs the server with cfg on a free port of 127.0.0.1 and
// returns its base URL and stop, which cancels run and returns its result
// (bounded); the test's cleanup stops it too.
func startChat(t *testing.T, cfg config) (url string, stop func() error) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, cfg, out)
	})
	return s.URL, s.Stop
}

// session joins room as name with the generated client and returns the
// stream once its own join has come back.
func session(t *testing.T, ctx context.Context, url, room, name string, cd codec.Codec) (*wsrpc.BidiStreamForClient[chatv1.ChatRequest, chatv1.ChatResponse], *chatv1.Welcome) {
	t.Helper()
	client := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithCodecs(cd))
	st, err := client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: room, Name: name}}}); err != nil {
		t.Fatal(err)
	}
	res, err := st.Receive()
	if err != nil {
		t.Fatalf("%s: welcome: %v", name, err)
	}
	if res.GetWelcome() == nil {
		t.Fatalf("%s: first response %v, want a welcome", name, res)
	}
	// The member's own join is published after the welcome: wait for it,
	// so members joined one after another are in that order everywhere.
	for {
		ev, err := st.Receive()
		if err != nil {
			t.Fatalf("%s: waiting for the own join: %v", name, err)
		}
		if ev.GetJoined().GetName() == name {
			break
		}
	}
	return st, res.GetWelcome()
}

// nextChat receives until a message event arrives and returns it,
// failing on anything but joins and departures first.
func nextMessage(t *testing.T, st *wsrpc.BidiStreamForClient[chatv1.ChatRequest, chatv1.ChatResponse]) *chatv1.Message {
	t.Helper()
	for {
		res, err := st.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if m := res.GetMessage(); m != nil {
			return m
		}
		if res.GetJoined() == nil && res.GetLeft() == nil {
			t.Fatalf("unexpected %v", res)
		}
	}
}

func say(t *testing.T, st *wsrpc.BidiStreamForClient[chatv1.ChatRequest, chatv1.ChatResponse], text string) {
	t.Helper()
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: text}}); err != nil {
		t.Fatal(err)
	}
}

// watched is one event of the activity feed: its SSE id and a summary.
type watched struct{ id, what string }

func summary(ev *chatv1.WatchResponse) string {
	switch e := ev.GetEvent().(type) {
	case *chatv1.WatchResponse_Joined:
		return "joined " + e.Joined.GetRoom() + " " + e.Joined.GetName()
	case *chatv1.WatchResponse_Left:
		return "left " + e.Left.GetRoom() + " " + e.Left.GetName()
	case *chatv1.WatchResponse_Message:
		return "message " + e.Message.GetRoom() + " " + e.Message.GetFrom() + ": " + e.Message.GetText()
	}
	return "?"
}

// watch receives n events of the feed.
func watch(t *testing.T, st *wsrpc.ServerStreamForClient[chatv1.WatchResponse], n int) []watched {
	t.Helper()
	var out []watched
	for len(out) < n {
		ev, err := st.Receive()
		if err != nil {
			t.Fatalf("watch after %v: %v", out, err)
		}
		out = append(out, watched{st.LastEventID(), summary(ev)})
	}
	return out
}

func whats(ws []watched) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.what
	}
	return strings.Join(s, " | ")
}

// TestChat: the page and its assets are served; two members on
// different codecs (JSON as the page speaks it, msgpack) see each other's
// messages; the activity feed, read with the generated SSE client, shows
// the joins and messages of its room only, with hub ids; a feed resumed
// with Last-Event-ID gets exactly the events after it; bad joins are
// refused with invalid_argument; and on shutdown the sessions are closed
// with 1001 (going away: unavailable, which reconnecting clients retry)
// while run returns nil.
func TestChat(t *testing.T) {
	url, stop := startChat(t, config{NodeID: "n1"})
	for path, want := range map[string]string{
		"/":          "text/html",
		"/app.js":    "text/javascript",
		"/style.css": "text/css",
	} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Fatalf("GET %s: %s %q, want 200 %s", path, resp.Status, resp.Header.Get("Content-Type"), want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url)
	feed, err := client.Watch(ctx, &chatv1.WatchRequest{Room: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()

	ada, welcome := session(t, ctx, url, "lobby", "Ada", codec.JSON)
	// -node n1: n1 and this start's suffix.
	if welcome.GetRoom() != "lobby" || welcome.GetName() != "Ada" || !regexp.MustCompile(`^n1\.[0-9a-f]{6}$`).MatchString(welcome.GetNode()) {
		t.Fatalf("welcome %v", welcome)
	}
	if got := ada.Codec().Name(); got != codec.NameJSON {
		t.Fatalf("codec %s", got)
	}
	bob, _ := session(t, ctx, url, "", "Bob", codec.Msgpack) // "" is the lobby
	other, _ := session(t, ctx, url, "elsewhere", "Eve", codec.Proto)
	say(t, other, "not in the lobby")
	say(t, ada, "hello, Bob")
	for _, st := range []*wsrpc.BidiStreamForClient[chatv1.ChatRequest, chatv1.ChatResponse]{ada, bob} {
		if m := nextMessage(t, st); m.GetFrom() != "Ada" || m.GetText() != "hello, Bob" || m.GetRoom() != "lobby" || m.GetTime() == nil {
			t.Fatalf("message %v", m)
		}
	}
	say(t, bob, "  hi Ada  ")
	if m := nextMessage(t, ada); m.GetFrom() != "Bob" || m.GetText() != "hi Ada" {
		t.Fatalf("message %v", m)
	}

	got := watch(t, feed, 4)
	if want := "joined lobby Ada | joined lobby Bob | message lobby Ada: hello, Bob | message lobby Bob: hi Ada"; whats(got) != want {
		t.Fatalf("feed %q, want %q", whats(got), want)
	}
	for i, w := range got {
		if !regexp.MustCompile(`^`+regexp.QuoteMeta(welcome.GetNode())+`-\d+$`).MatchString(w.id) || i > 0 && w.id == got[i-1].id {
			t.Fatalf("event ids %v", got)
		}
	}

	// Resume from the first join: the three later events, nothing else.
	resumed := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, url, wsrpc.WithSSEClientOptions(&sse.ClientOptions{LastEventID: got[0].id}))
	feed2, err := resumed.Watch(ctx, &chatv1.WatchRequest{Room: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	defer feed2.Close()
	say(t, ada, "after the resume")
	if again := watch(t, feed2, 4); whats(again) != whats(append(got[1:], watched{what: "message lobby Ada: after the resume"})) {
		t.Fatalf("resumed feed %q", whats(again))
	}

	// Refusals: the first request must be a join with a valid name.
	for name, first := range map[string]*chatv1.ChatRequest{
		"text first": {Kind: &chatv1.ChatRequest_Text{Text: "hi"}},
		"long name":  {Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Name: strings.Repeat("x", 33)}}},
		"bad room":   {Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Name: "x", Room: "../etc"}}},
	} {
		st, err := client.Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(first); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
			t.Fatalf("%s: %v, want invalid_argument", name, err)
		}
		st.Close()
	}

	// Shutdown: members still reading (and so answering the close) are
	// told why.
	ada.Close()
	other.Close()
	bobErr := make(chan error, 1)
	go func() {
		for {
			if _, err := bob.Receive(); err != nil {
				bobErr <- err
				return
			}
		}
	}()
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := <-bobErr; websocket.CloseStatus(err) != websocket.StatusGoingAway || wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || !strings.Contains(err.Error(), wsrpc.ShutdownReason) {
		t.Fatalf("after shutdown: %v, want 1001 (unavailable): %s", err, wsrpc.ShutdownReason)
	}
}

// flood makes Ada say n long lines in room, 16 at a time, reading her own
// copies back so that she herself never falls behind.
func flood(t *testing.T, ctx context.Context, url, room string, n int) {
	t.Helper()
	ada, _ := session(t, ctx, url, room, "Ada", codec.JSON)
	defer ada.Close()
	line := strings.Repeat("x", 1000)
	for i := 0; i < n; i += 16 {
		for j := 0; j < 16; j++ {
			if err := ada.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Text{Text: line}}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		for j := 0; j < 16; {
			ev, err := ada.Receive()
			if err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
			if ev.GetMessage() != nil {
				j++
			}
		}
	}
}

// watcherFloodN is enough activity (about 2.5 MB) to fill the socket
// buffers of a feed whose client never reads.
const watcherFloodN = 2500

// TestShutdownStalledWatcher: an SSE watcher that stopped reading keeps
// its Watch handler blocked in a write (up to the 10 s SSE write
// timeout); once the shutdown's grace period has passed, run closes that
// connection, says so in one log line and returns nil, so that main
// exits cleanly on SIGINT/SIGTERM as the package doc promises (before,
// run returned "context deadline exceeded" and main exited 1).
func TestShutdownStalledWatcher(t *testing.T) {
	logs := &runtest.Buffer{}
	s := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, config{Addr: "127.0.0.1:0", NodeID: "n1"}, io.MultiWriter(out, logs))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := sockbuf.Dialer(2048, 0).DialContext(ctx, "tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /examples.chat.v1.ChatService/Watch?room=lobby HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("watch: %q %v", line, err)
	}
	// Never read again.
	flood(t, ctx, s.URL, "lobby", watcherFloodN)
	time.Sleep(500 * time.Millisecond) // let the feed's writer block
	if err := s.Stop(); err != nil {
		t.Fatalf("run with one stalled SSE watcher: %v (main would exit 1)", err)
	}
	// The line shows that the watcher did stall the shutdown, and was cut.
	if !strings.Contains(logs.String(), "shutdown: cut the connections still open after 5s") {
		t.Fatalf("run's log has no line about the cut connection:\n%s", logs.String())
	}
}

// TestShutdownStalledMember: a chat member (a WebSocket session) that
// stopped reading, with the server's writes to it blocked, does not hold
// up the shutdown: run returns nil within runtest's bound on Stop, where
// the package doc promises about 5 s. TestShutdownStalledWatcher is the
// same for an SSE watcher; a member's session ends through the chat
// service's own teardown (its subscription, the departure it publishes).
func TestShutdownStalledMember(t *testing.T) {
	logs := &runtest.Buffer{}
	s := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, config{Addr: "127.0.0.1:0", NodeID: "n1"}, io.MultiWriter(out, logs))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stalled := &http.Client{Transport: &http.Transport{DialContext: sockbuf.Dialer(2048, 0).DialContext}}
	st, err := chatv1wsrpc.NewChatServiceClient(stalled, s.URL, wsrpc.WithCodecs(codec.JSON)).Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: "lobby", Name: "Mallory"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Receive(); err != nil {
		t.Fatal(err)
	}
	// Never read again. Ada says 50 long lines, fewer than the 1024 a
	// member may fall behind before it is disconnected: Mallory stays.
	ada, _ := session(t, ctx, s.URL, "lobby", "Ada", codec.JSON)
	line := strings.Repeat("✓", 1000)
	for range 50 {
		say(t, ada, line)
		nextMessage(t, ada)
	}
	ada.Close()
	time.Sleep(500 * time.Millisecond) // let the writes to Mallory block
	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("run with one stalled chat member: %v\nlog:\n%s", err, logs.String())
	}
	t.Logf("shutdown took %v", time.Since(start))
}

// TestStartNodeID: -node names the node, and each start adds a random
// suffix within the hub's 64-byte limit on node ids.
func TestStartNodeID(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // regexp; "" for an error
	}{
		{"", `^$`},
		{"a", `^a\.[0-9a-f]{6}$`},
		{"east-1", `^east-1\.[0-9a-f]{6}$`},
		{strings.Repeat("n", 57), `^n{57}\.[0-9a-f]{6}$`},
		{strings.Repeat("n", 58), ``},
	} {
		got, err := startNodeID(tc.name)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: %q, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || !regexp.MustCompile(tc.want).MatchString(got) {
			t.Errorf("%q: %q, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	a, _ := startNodeID("a")
	b, _ := startNodeID("a")
	if a == b {
		t.Errorf("two starts as a: both %q", a) // 1 chance in 16 million
	}
}
