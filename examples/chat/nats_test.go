package main

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wsrpc/wsrpc"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/gen/examples/chat/v1/chatv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// startNATS runs an embedded nats-server on a free port of 127.0.0.1.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// TestTwoNodes: two chat processes (run twice) on one NATS server share
// their rooms: a member on node A and one on node B (Go clients, msgpack
// and protobuf) see each other's joins and messages, and a feed opened on
// node B carries node A's events with node A's ids, and resumes on node
// A from one of them.
func TestTwoNodes(t *testing.T) {
	nurl := startNATS(t)
	urlA, _ := startChat(t, config{NATSURL: nurl, NodeID: "node_a"})
	urlB, _ := startChat(t, config{NATSURL: nurl, NodeID: "node_b"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Rooms are created on first use on each node: Bob's join on B
	// creates the room there before Ada's messages are published on A.
	bob, wb := session(t, ctx, urlB, "gophers", "Bob", codec.Proto)
	feedB, err := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, urlB).Watch(ctx, &chatv1.WatchRequest{Room: "gophers"})
	if err != nil {
		t.Fatal(err)
	}
	defer feedB.Close()
	ada, wa := session(t, ctx, urlA, "gophers", "Ada", codec.Msgpack)
	if !strings.HasPrefix(wa.GetNode(), "node_a.") || !strings.HasPrefix(wb.GetNode(), "node_b.") {
		t.Fatalf("welcomes %v and %v", wa, wb)
	}
	if ev, err := bob.Receive(); err != nil || ev.GetJoined().GetName() != "Ada" {
		t.Fatalf("Bob on B: %v, %v; want Ada's join from A", ev, err)
	}
	say(t, ada, "sent on node A")
	if m := nextMessage(t, bob); m.GetFrom() != "Ada" || m.GetText() != "sent on node A" {
		t.Fatalf("Bob on B got %v", m)
	}
	say(t, bob, "and B answers")
	if m := nextMessage(t, ada); m.GetFrom() != "Ada" || m.GetText() != "sent on node A" {
		t.Fatalf("Ada got %v first, want her own message", m)
	}
	if m := nextMessage(t, ada); m.GetFrom() != "Bob" || m.GetText() != "and B answers" {
		t.Fatalf("Ada on A got %v", m)
	}

	// The feed on B starts with B's history (Bob's join), then what both
	// nodes publish, each event under its publisher's id.
	got := watch(t, feedB, 4)
	if want := "joined gophers Bob | joined gophers Ada | message gophers Ada: sent on node A | message gophers Bob: and B answers"; whats(got) != want {
		t.Fatalf("feed on B %q, want %q", whats(got), want)
	}
	for i, node := range []string{wb.GetNode(), wa.GetNode(), wa.GetNode(), wb.GetNode()} {
		if !strings.HasPrefix(got[i].id, node+"-") {
			t.Fatalf("ids %v: want each event's publisher's id", got)
		}
	}
	// Node A records the events it receives under the same ids, so a feed
	// that moves to A resumes there. (Exact here because, by the time Ada
	// speaks again, A has everything B published: it is the only
	// publisher after that point, see docs/hub.md.)
	say(t, ada, "third")
	say(t, ada, "fourth")
	more := watch(t, feedB, 2)
	if whats(more) != "message gophers Ada: third | message gophers Ada: fourth" {
		t.Fatalf("feed on B %q", whats(more))
	}
	moved := chatv1wsrpc.NewChatServiceClient(http.DefaultClient, urlA, wsrpc.WithSSEClientOptions(&sse.ClientOptions{LastEventID: more[0].id}))
	feedA, err := moved.Watch(ctx, &chatv1.WatchRequest{Room: "gophers"})
	if err != nil {
		t.Fatal(err)
	}
	defer feedA.Close()
	if again := watch(t, feedA, 1); again[0] != more[1] {
		t.Fatalf("resumed on A after %v: %v, want %v", more[0], again, more[1])
	}
}

// TestRestartSameNode: a process restarted with the same -node is a new
// node (docs/hub.md, "Brokers": a node id must change when the process
// restarts), so what its members say reaches the other nodes. Before,
// the restarted process numbered its messages from 1 again under the old
// id, and node B dropped them as repeats for up to an hour.
func TestRestartSameNode(t *testing.T) {
	nurl := startNATS(t)
	urlB, _ := startChat(t, config{NATSURL: nurl, NodeID: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob, _ := session(t, ctx, urlB, "gophers", "Bob", codec.Proto)
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			ev, err := bob.Receive()
			if err != nil {
				return
			}
			mu.Lock()
			if m := ev.GetMessage(); m != nil {
				got = append(got, m.GetFrom()+": "+m.GetText())
			}
			mu.Unlock()
		}
	}()
	waitFor := func(want string) bool {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := slices.Contains(got, want)
			mu.Unlock()
			if ok {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}

	urlA, stopA := startChat(t, config{NATSURL: nurl, NodeID: "a"})
	ada, w1 := session(t, ctx, urlA, "gophers", "Ada", codec.Msgpack)
	for _, s := range []string{"one", "two", "three"} {
		say(t, ada, s)
	}
	if !waitFor("Ada: three") {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("before the restart Bob got %v", got)
	}
	ada.Close()
	if err := stopA(); err != nil {
		t.Fatal(err)
	}

	urlA2, _ := startChat(t, config{NATSURL: nurl, NodeID: "a"}) // the same -node
	ada2, w2 := session(t, ctx, urlA2, "gophers", "Ada", codec.Msgpack)
	say(t, ada2, "back after the restart")
	if !waitFor("Ada: back after the restart") {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("Bob on node B never got Ada's message from restarted node A (same -node): got %v", got)
	}
	if !strings.HasPrefix(w2.GetNode(), "a.") || w2.GetNode() == w1.GetNode() {
		t.Fatalf("node ids %q then %q: want a new one, named after -node a", w1.GetNode(), w2.GetNode())
	}
}

// TestShutdownMemberReconnectsToOtherNode: a node that shuts down (SIGTERM
// in main) closes its members' sessions with 1001 (going away, RFC 6455
// §7.4.1) through wsrpc.Shutdown, and a Go client with wsrpc.WithReconnect
// (here behind an address that leads to the other node once the first
// is gone, as a load balancer's would) reconnects, rejoins with
// SetResume and goes on talking with the room over NATS. Before, the
// example closed its sessions with unavailable (4014) itself, which
// WithReconnect did not retry: its clients never came back.
func TestShutdownMemberReconnectsToOtherNode(t *testing.T) {
	nurl := startNATS(t)
	urlA, stopA := startChat(t, config{NATSURL: nurl, NodeID: "a"})
	urlB, _ := startChat(t, config{NATSURL: nurl, NodeID: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob, _ := session(t, ctx, urlB, "gophers", "Bob", codec.Proto)

	var target atomic.Value // the node the address leads to
	target.Store(strings.TrimPrefix(urlA, "http://"))
	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, target.Load().(string))
	}}}
	join := &chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Room: "gophers", Name: "Ada"}}}
	closes := make(chan wsrpc.CloseInfo, 4)
	client := chatv1wsrpc.NewChatServiceClient(hc, urlA, wsrpc.WithCodecs(codec.Proto),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }),
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}))
	ada, err := client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ada.Close()
	// Each new connection joins again before anything else is sent on it.
	ada.SetResume(func() []*chatv1.ChatRequest { return []*chatv1.ChatRequest{join} })
	// welcome returns the node of the next welcome Ada receives.
	welcome := func() string {
		t.Helper()
		for {
			ev, err := ada.Receive()
			if err != nil {
				t.Fatalf("Ada: %v, want a welcome", err)
			}
			if w := ev.GetWelcome(); w != nil {
				return w.GetNode()
			}
		}
	}
	if err := ada.Send(join); err != nil {
		t.Fatal(err)
	}
	if node := welcome(); !strings.HasPrefix(node, "a.") {
		t.Fatalf("Ada joined on %q, want node a", node)
	}

	target.Store(strings.TrimPrefix(urlB, "http://"))
	stopped := make(chan error, 1)
	go func() { stopped <- stopA() }()
	if node := welcome(); !strings.HasPrefix(node, "b.") {
		t.Fatalf("Ada rejoined on %q, want node b", node)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("node a's run: %v", err)
	}
	if ci := <-closes; ci.Code != websocket.StatusGoingAway {
		t.Errorf("Ada's session on node a closed with %v, want 1001 (going away)", ci)
	}
	say(t, ada, "back, on node b")
	for {
		m := nextMessage(t, bob)
		if m.GetFrom() == "Ada" && m.GetText() == "back, on node b" {
			break
		}
	}
}
