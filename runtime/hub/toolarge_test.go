package hub_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
)

// TestPublishTooLarge: a message over the NATS server's max_payload used
// to reach the publishing node's subscribers and replay store while the
// broker refused it, so the nodes' histories diverged. Publish now refuses
// it with ErrTooLarge and delivers it nowhere, and does not use up a
// sequence number: the next message is the next id on every node, with
// nothing counted missed. A message whose broker message is exactly the
// limit still goes through.
func TestPublishTooLarge(t *testing.T) {
	const limit = 512
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true, MaxPayload: limit})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	node := func(name string) (*hub.Topic[msg], *recorder) {
		nc := dialNATS(t, ns.ClientURL())
		b, err := hub.NewNATSBroker(nc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := hub.SizeLimiter(b).MaxMessageSize(); got != limit {
			t.Fatalf("MaxMessageSize %d, want the server's %d", got, limit)
		}
		t.Cleanup(func() { b.Close() })
		tp := newTopic(t, newHub(t, b, name), "big", nil)
		rec := &recorder{}
		if _, err := tp.SubscribeFunc(rec.add); err != nil {
			t.Fatal(err)
		}
		return tp, rec
	}
	nodeA := freshNode("a")
	a, recA := node(nodeA)
	b, recB := node(freshNode("b"))

	// The broker message: version, node id length and node id, sequence
	// number (1 byte while below 128), then the protobuf payload.
	overhead := 2 + len(nodeA) + 1
	sized := func(n int) msg { // a message whose broker message is n bytes
		m := wrapperspb.String("")
		for v := n - overhead - 3; ; v++ {
			m.Value = strings.Repeat("x", v)
			if s := overhead + proto.Size(m); s >= n {
				if s != n {
					t.Fatalf("cannot size a message to %d bytes", n)
				}
				return m
			}
		}
	}
	ctx := context.Background()
	err = a.Publish(ctx, sized(limit+1))
	if !errors.Is(err, hub.ErrTooLarge) || !strings.Contains(err.Error(), strconv.Itoa(limit)) {
		t.Fatalf("Publish over the limit: %v, want ErrTooLarge naming the limit", err)
	}
	if err := a.Publish(ctx, sized(limit)); err != nil {
		t.Fatalf("Publish at the limit: %v", err)
	}
	if err := a.Publish(ctx, wrapperspb.String("small")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both nodes to get two messages", func() bool { return recA.len() == 2 && recB.len() == 2 })
	for _, rec := range []*recorder{recA, recB} {
		if got := rec.values(); len(got[0]) != len(sized(limit).GetValue()) || got[1] != "small" {
			t.Fatalf("delivered %d-byte and %q messages, want the one at the limit and \"small\"", len(got[0]), got[1])
		}
	}
	evs, err := a.Replay().Since("")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID != nodeA+"-1" || evs[1].ID != nodeA+"-2" {
		t.Fatalf("node A recorded %d events (%v), want %s-1 and -2", len(evs), evs, nodeA)
	}
	if st := a.Stats(); st.Published != 2 {
		t.Fatalf("node A stats %+v, want Published 2", st)
	}
	if st := b.Stats(); st.Received != 2 || st.Missed != 0 {
		t.Fatalf("node B stats %+v, want Received 2, Missed 0", st)
	}
}

// recorder is a SubscribeFunc subscriber that keeps what it gets.
//
// Concurrency: mu guards values; the topic calls add from one goroutine
// at a time, the test reads from another.
type recorder struct {
	mu sync.Mutex
	vs []string
}

func (r *recorder) add(m msg) error {
	r.mu.Lock()
	r.vs = append(r.vs, m.GetValue())
	r.mu.Unlock()
	return nil
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.vs)
}

func (r *recorder) values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.vs...)
}
