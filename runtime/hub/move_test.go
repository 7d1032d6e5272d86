package hub_test

import (
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// holdBroker is a node's view of a shared MemoryBroker whose deliveries
// to this node can be held back, as a NATS delivery still in flight is:
// while held, messages for this node's subscriptions wait, and release
// hands them over in order, then lets later ones through.
//
// Concurrency: mu serialises the handlers' calls (held ones and those the
// MemoryBroker passes through), as Broker.Subscribe requires.
type holdBroker struct {
	*hub.MemoryBroker

	mu      sync.Mutex
	held    bool
	pending []func()
}

func (b *holdBroker) Subscribe(subject string, handle func([]byte)) (func() error, error) {
	return b.MemoryBroker.Subscribe(subject, func(data []byte) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.held {
			b.pending = append(b.pending, func() { handle(data) })
			return
		}
		handle(data)
	})
}

func (b *holdBroker) hold() {
	b.mu.Lock()
	b.held = true
	b.mu.Unlock()
}

func (b *holdBroker) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.pending {
		f()
	}
	b.pending, b.held = nil, false
}

// moveNodes is two nodes of one topic: A, whose deliveries are immediate,
// and B, whose deliveries can be held back, each serving the topic over
// SSE. gaps counts the streams of B whose OnOpen saw Stream.Gap.
type moveNodes struct {
	nodeA, nodeB string
	a, b         *hub.Topic[msg]
	urlA, urlB   string
	toB          *holdBroker
	gaps         atomic.Int64
}

func newMoveNodes(t *testing.T, optsB *hub.TopicOptions[msg]) *moveNodes {
	t.Helper()
	mb := hub.NewMemoryBroker()
	n := &moveNodes{nodeA: freshNode("nodeA"), nodeB: freshNode("nodeB"), toB: &holdBroker{MemoryBroker: mb}}
	n.a = newTopic(t, newHub(t, mb, n.nodeA), "ticks", nil)
	n.b = newTopic(t, newHub(t, n.toB, n.nodeB), "ticks", optsB)
	srvA := httptest.NewServer(n.a.SSEHandler(nil))
	t.Cleanup(srvA.Close)
	srvB := httptest.NewServer(n.b.SSEHandler(&hub.SSEOptions{OnOpen: func(s *sse.Stream) error {
		if s.Gap() {
			n.gaps.Add(1)
		}
		return nil
	}}))
	t.Cleanup(srvB.Close)
	n.urlA, n.urlB = srvA.URL, srvB.URL
	return n
}

func (n *moveNodes) idA(seq int) string { return n.nodeA + "-" + strconv.Itoa(seq) }

// wantEvents reads the next events of c and checks their ids.
func wantEvents(t *testing.T, c *sseClient, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if e := c.next(t); e.ID != id {
			t.Fatalf("got event %q (%q), want %q", e.ID, e.Data, id)
		}
	}
}

// TestMoveBeforeDelivery: a client reads event N on node A and resumes at
// once on node B, which has not received N yet (the broker is still
// delivering it). That is no gap: B replays nothing, Gap is false, and
// once the delivery goes through the client gets N+1… exactly once,
// never N or an earlier one again; messages of other publishers (B's
// own) are not held back by the floor. B used to report a gap and send N
// and everything in flight again.
func TestMoveBeforeDelivery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		known int // messages of A that B has received before the hold
	}{
		{"seq not yet seen", 2},
		{"origin not yet seen", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newMoveNodes(t, nil)
			publishN(t, n.a, "a", 1, 1+tc.known)
			n.toB.hold()
			publishN(t, n.a, "a", 1+tc.known, 4+tc.known) // in flight to B

			// The client reads A's second message in flight on A…
			onA := openSSE(t, n.urlA, n.idA(1+tc.known))
			wantEvents(t, onA, n.idA(2+tc.known))
			onA.close()
			last := n.idA(2 + tc.known)

			// …and resumes on B with it.
			onB := openSSE(t, n.urlB, last)
			defer onB.close()
			waitSubscribers(t, n.b, 1)
			publishN(t, n.b, "b", 1, 2) // another publisher: not held back
			wantEvents(t, onB, n.nodeB+"-1")
			if g := n.gaps.Load(); g != 0 {
				t.Fatalf("Gap reported for an id still on its way")
			}

			n.toB.release()
			publishN(t, n.a, "a", 4+tc.known, 5+tc.known)
			wantEvents(t, onB, n.idA(3+tc.known), n.idA(4+tc.known))
			if st := n.b.Stats(); st.Received != uint64(4+tc.known) || st.Missed != 0 || st.Duplicates != 0 {
				t.Fatalf("node B stats %+v", st)
			}
		})
	}
}

// TestMoveBeforeDeliveryOtherPublisher: as TestMoveBeforeDelivery, on a
// topic with two publishers: B had received a message of another
// publisher (its own) before the client came. Where that message stands
// against the client's position is unknown (ids order one publisher's
// messages), so the resume reports a gap; A's messages up to the
// client's id are still skipped, never sent twice.
func TestMoveBeforeDeliveryOtherPublisher(t *testing.T) {
	n := newMoveNodes(t, nil)
	publishN(t, n.b, "b", 1, 2) // another publisher, heard by B
	publishN(t, n.a, "a", 1, 2)
	waitFor(t, "B to receive A's first message", func() bool { return n.b.Stats().Received == 1 })
	n.toB.hold()
	publishN(t, n.a, "a", 2, 4) // in flight to B

	onA := openSSE(t, n.urlA, n.idA(2))
	wantEvents(t, onA, n.idA(3))
	onA.close()

	onB := openSSE(t, n.urlB, n.idA(3))
	defer onB.close()
	waitSubscribers(t, n.b, 1)
	n.toB.release()
	publishN(t, n.a, "a", 4, 5)
	wantEvents(t, onB, n.idA(4))
	if g := n.gaps.Load(); g != 1 {
		t.Fatalf("Gap reported %d times, want 1: another publisher's messages cannot be placed", g)
	}
}

// TestMoveAfterEviction: a client resuming on B from an id B has received
// but no longer holds (its ring evicted it) has a real gap, reported as
// before; nothing is replayed and live messages follow, the next of A's
// included (no floor holds them back).
func TestMoveAfterEviction(t *testing.T) {
	n := newMoveNodes(t, &hub.TopicOptions[msg]{Replay: sse.NewRing(2)})
	publishN(t, n.a, "a", 1, 6) // B's ring keeps A's 4 and 5
	waitFor(t, "B to receive A's messages", func() bool { return n.b.Stats().Received == 5 })

	onB := openSSE(t, n.urlB, n.idA(1))
	defer onB.close()
	waitSubscribers(t, n.b, 1)
	publishN(t, n.a, "a", 6, 7)
	wantEvents(t, onB, n.idA(6))
	if g := n.gaps.Load(); g != 1 {
		t.Fatalf("Gap reported %d times for an evicted id, want 1", g)
	}

	// B's own id it does not hold is a gap too: it is not on its way.
	own := openSSE(t, n.urlB, n.nodeB+"-9")
	defer own.close()
	waitSubscribers(t, n.b, 2)
	publishN(t, n.a, "a", 7, 8)
	wantEvents(t, own, n.idA(7))
	if g := n.gaps.Load(); g != 2 {
		t.Fatalf("Gap reported %d times, want 2 (one for B's own unknown id)", g)
	}
}
