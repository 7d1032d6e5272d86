package hub_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

type msg = *wrapperspb.StringValue

func newHub(t testing.TB, b hub.Broker, node string) *hub.Hub {
	t.Helper()
	h, err := hub.New(b, &hub.Options{NodeID: node, OnError: func(topic string, err error) {
		t.Errorf("hub error on %s: %v", topic, err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// freshNode returns base made unique in this process, for a test that
// expects a node's sequence numbers to start at 1: the process keeps the
// sequence floors of every node id whose topics closed (Options.NodeID),
// so reusing an id would carry another test's numbers — or the same
// test's, run again with -count — into this one.
func freshNode(base string) string {
	return base + "." + strconv.FormatUint(nodeSerial.Add(1), 10)
}

var nodeSerial atomic.Uint64

func newTopic(t testing.TB, h *hub.Hub, name string, opts *hub.TopicOptions[msg]) *hub.Topic[msg] {
	t.Helper()
	tp, err := hub.NewTopic(h, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func publishN(t testing.TB, tp *hub.Topic[msg], prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := tp.Publish(context.Background(), wrapperspb.String(prefix+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond until it holds; the deadline only turns a hang into a
// failure, it asserts nothing about speed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// orderChecker is a SubscribeFunc subscriber that checks it sees
// prefix0, prefix1, … with nothing missing, repeated or out of order.
type orderChecker struct {
	mu   sync.Mutex
	next int
	err  error
}

func (c *orderChecker) fn(prefix string) func(msg) error {
	return func(m msg) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if want := prefix + strconv.Itoa(c.next); m.GetValue() != want && c.err == nil {
			c.err = fmt.Errorf("got %q, want %q", m.GetValue(), want)
		}
		c.next++
		return nil
	}
}

func (c *orderChecker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// TestFanOut10000 publishes to 10,000 in-process subscribers: every one
// receives every message, in order, and the topic counts each delivery.
func TestFanOut10000(t *testing.T) {
	const subs, msgs = 10000, 20
	tp := newTopic(t, newHub(t, nil, "a"), "fanout", nil)
	checkers := make([]*orderChecker, subs)
	for i := range checkers {
		checkers[i] = &orderChecker{}
		s, err := tp.SubscribeFunc(checkers[i].fn("m"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	publishN(t, tp, "m", 0, msgs)
	waitFor(t, "all deliveries", func() bool { return tp.Stats().Delivered == subs*msgs })
	for i, c := range checkers {
		if c.count() != msgs || c.err != nil {
			t.Fatalf("subscriber %d: got %d messages, err %v", i, c.count(), c.err)
		}
	}
	if st := tp.Stats(); st.Dropped != 0 || st.Subscribers != subs || st.Published != msgs {
		t.Fatalf("stats %+v", st)
	}
}

// TestStalledSubscriber: one subscriber blocks forever in its first
// delivery; the others still get every message in order, while the stalled
// one keeps a full queue and, under DropOldest, counts what it lost, or,
// under Disconnect, is removed with ErrSlowConsumer.
func TestStalledSubscriber(t *testing.T) {
	for _, policy := range []hub.Policy{hub.DropOldest, hub.Disconnect} {
		t.Run(policy.String(), func(t *testing.T) {
			const others, msgs, queue = 1000, 200, 16
			tp := newTopic(t, newHub(t, nil, "a"), "stall", &hub.TopicOptions[msg]{QueueSize: queue, Policy: policy})
			release := make(chan struct{})
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			defer unblock() // before the hub's cleanup waits for the writer
			entered := make(chan struct{})
			var got []string
			stalled, err := tp.SubscribeFunc(func(m msg) error {
				if got == nil {
					close(entered)
					<-release
				}
				got = append(got, m.GetValue())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkers := make([]*orderChecker, others)
			for i := range checkers {
				checkers[i] = &orderChecker{}
				s, err := tp.SubscribeFunc(checkers[i].fn("m"))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			publishN(t, tp, "m", 0, 1)
			<-entered // the stalled subscriber holds message 0
			waitFor(t, "the others' deliveries", func() bool { return tp.Stats().Delivered == others })
			// Paced: each message is published once the others have the
			// previous one, so they never lag and only the stalled
			// subscriber's queue fills.
			for i := 1; i < msgs; i++ {
				publishN(t, tp, "m", i, i+1)
				waitFor(t, "the others' deliveries", func() bool { return tp.Stats().Delivered == uint64(others*(i+1)) })
			}
			for i, c := range checkers {
				if c.count() != msgs || c.err != nil {
					t.Fatalf("subscriber %d: got %d, err %v", i, c.count(), c.err)
				}
			}
			switch policy {
			case hub.DropOldest:
				if d, q := stalled.Dropped(), stalled.Queued(); d != msgs-1-queue || q != queue {
					t.Fatalf("stalled: dropped %d queued %d, want %d and %d", d, q, msgs-1-queue, queue)
				}
				if st := tp.Stats(); st.Dropped != msgs-1-queue || st.Subscribers != others+1 {
					t.Fatalf("stats %+v", st)
				}
				unblock()
				waitFor(t, "the stalled subscriber to drain", func() bool { return stalled.Queued() == 0 && tp.Stats().Delivered == others*msgs+queue+1 })
				stalled.Close()
				want := []string{"m0"}
				for i := msgs - queue; i < msgs; i++ {
					want = append(want, "m"+strconv.Itoa(i))
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("stalled subscriber got %v, want %v", got, want)
				}
			case hub.Disconnect:
				<-stalled.Done()
				if !errors.Is(stalled.Err(), hub.ErrSlowConsumer) {
					t.Fatalf("Err = %v", stalled.Err())
				}
				if st := tp.Stats(); st.Disconnected != 1 || st.Subscribers != others || st.Dropped != 0 {
					t.Fatalf("stats %+v", st)
				}
				unblock()
				stalled.Close()
				if len(got) != 1 {
					t.Fatalf("a disconnected subscriber got %v after its removal", got)
				}
			}
		})
	}
}

// TestNoLeakAfterUnsubscribe: 10,000 subscribers, some with a backlog
// behind a blocked write, then all unsubscribed: goroutines and heap go
// back to where they were. The baseline is taken after one such cycle,
// since the runtime keeps the descriptors of exited goroutines for reuse;
// a leak would show as growth across cycles. The heap can also grow
// once more in a later cycle and stay (+266 KiB in one loaded CI run,
// ~340 KiB in one of five local runs; most likely more goroutine
// descriptors when more goroutines overlap, which are never freed), so
// a cycle that grew is followed by another, up to three: a leak grows in
// every one, a one-off stays put in the next.
func TestNoLeakAfterUnsubscribe(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "leak", nil)
	cycle(t, tp, 0)
	g0, h0 := settle()
	before := h0
	for round := 1; ; round++ {
		_, h1 := cycle(t, tp, round)
		if h1 < before+1<<20 {
			t.Fatalf("heap with 10,000 subscribers %d, before them %d: the measure cannot see them", h1, before)
		}
		var g2 int
		var h2 uint64
		deadline := time.Now().Add(10 * time.Second)
		for {
			if g2, h2 = settle(); g2 <= g0 && h2 <= before+256<<10 {
				t.Logf("goroutines %d -> %d; heap %d KiB -> %d KiB (10,000 subscribers) -> %d KiB, cycle %d", g0, g2, before>>10, h1>>10, h2>>10, round)
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if round == 3 {
			t.Fatalf("goroutines %d, baseline %d; heap %d KiB, %d KiB before this cycle and %d KiB before the first: it grew in every cycle", g2, g0, h2>>10, before>>10, h0>>10)
		}
		if g2 > g0 {
			t.Fatalf("goroutines %d, baseline %d after cycle %d", g2, g0, round)
		}
		before = h2
	}
}

// TestEmptyTopicReplayCost guards the memory of a topic nobody uses yet:
// its default replay store (sse.NewRing(sse.DefaultRingCapacity)) used to
// allocate room for all 1024 events and their index up front, 134 KiB a
// topic with no SSE subscriber and nothing published (5,000 per-client
// topics held 762 MB of heap, 77 MB with DisableReplay). The ring now
// grows as events arrive, so an empty topic costs about as much with the
// default store as without one.
func TestEmptyTopicReplayCost(t *testing.T) {
	const topics = 500
	h := newHub(t, nil, "a")
	allocated := func(prefix string, disable bool) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range topics {
			tp := newTopic(t, h, prefix+strconv.Itoa(i), &hub.TopicOptions[msg]{DisableReplay: disable})
			defer tp.Close()
		}
		runtime.ReadMemStats(&after)
		// TotalAlloc only grows, whatever the collector does.
		return after.TotalAlloc - before.TotalAlloc
	}
	without := allocated("norec", true)
	with := allocated("rec", false)
	// Generous (it was ~134 KiB a topic), for whatever else allocates.
	if with > without && (with-without)/topics > 4<<10 {
		t.Errorf("the default replay store added %d bytes to each empty topic (%d with it, %d without, for %d topics), want under 4 KiB",
			(with-without)/topics, with, without, topics)
	}
}

// cycle subscribes 10,000 functions (one in a hundred blocked in its
// first delivery, with a backlog), publishes, unsubscribes them all, and
// returns the goroutine count and heap while they were subscribed.
func cycle(t *testing.T, tp *hub.Topic[msg], round int) (int, uint64) {
	release := make(chan struct{})
	subs := make([]*hub.Subscription, 10000)
	var n atomic.Int64
	for i := range subs {
		fn := func(msg) error { n.Add(1); return nil }
		if i%100 == 0 {
			fn = func(msg) error { <-release; return nil }
		}
		var err error
		if subs[i], err = tp.SubscribeFunc(fn); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, tp, "r"+strconv.Itoa(round)+"-", 0, 10)
	waitFor(t, "deliveries", func() bool { return n.Load() == 9900*10 })
	g, h := settle()
	if want := 100 + 2; g < want {
		t.Fatalf("%d goroutines, want at least the 100 blocked writers", g)
	}
	close(release)
	for _, s := range subs {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := tp.Stats(); st.Subscribers != 0 {
		t.Fatalf("stats %+v", st)
	}
	return g, h
}

func settle() (int, uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

// TestOrderAcrossNodes: two hubs on one MemoryBroker act as two nodes.
// Four goroutines on node B publish concurrently; a subscriber on node A
// sees each goroutine's messages in order, every message once.
func TestOrderAcrossNodes(t *testing.T) {
	b := hub.NewMemoryBroker()
	// A queue as long as the test: the subscriber may lag, never drop.
	a := newTopic(t, newHub(t, b, "nodeA"), "order", &hub.TopicOptions[msg]{QueueSize: 4096})
	bt := newTopic(t, newHub(t, b, "nodeB"), "order", nil)
	const pubs, msgs = 4, 500
	next := make([]int, pubs)
	var bad atomic.Value
	var total atomic.Int64
	s, err := a.SubscribeFunc(func(m msg) error {
		var p, i int
		fmt.Sscanf(m.GetValue(), "%d/%d", &p, &i)
		if i != next[p] {
			bad.Store(fmt.Sprintf("publisher %d: got %d, want %d", p, i, next[p]))
		}
		next[p] = i + 1
		total.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Go(func() {
			for i := range msgs {
				if err := bt.Publish(context.Background(), wrapperspb.String(fmt.Sprintf("%d/%d", p, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "deliveries", func() bool { return total.Load() == pubs*msgs })
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if st := a.Stats(); st.Received != pubs*msgs || st.Missed != 0 || st.Duplicates != 0 {
		t.Fatalf("node A stats %+v", st)
	}
}

// rawBroker lets a test inject broker messages by hand.
type rawBroker struct {
	mu     sync.Mutex
	handle func([]byte)
	sent   [][]byte
}

func (b *rawBroker) Publish(_ context.Context, _ string, data []byte) error {
	b.mu.Lock()
	b.sent = append(b.sent, data)
	b.mu.Unlock()
	return nil
}

func (b *rawBroker) Subscribe(_ string, handle func([]byte)) (func() error, error) {
	b.handle = handle
	return func() error { return nil }, nil
}

// hubReporting returns a hub on b with node id node, closed when the test
// ends, and a function returning what it has reported to OnError so far.
func hubReporting(t *testing.T, b hub.Broker, node string) (*hub.Hub, func() []error) {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	h, err := hub.New(b, &hub.Options{NodeID: node, OnError: func(_ string, err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, func() []error {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}

// TestBadEnvelopeNodeEscaped: the node id in ErrBadEnvelope's text is
// another process's bytes, and is escaped like every peer's text in an
// error (an ESC would drive the terminal showing the log, a CR LF forge a
// log line).
func TestBadEnvelopeNodeEscaped(t *testing.T) {
	b := &rawBroker{}
	h, reported := hubReporting(t, b, "sub")
	tp := newTopic(t, h, "esc", nil)
	s, _ := tp.SubscribeFunc(func(msg) error { return nil }) // so the payload is decoded
	defer s.Close()
	b.handle(hub.AppendEnvelope(nil, "n\x1b[31m\r\nforged", 1, []byte{0xff, 0xff}))
	waitFor(t, "the decode error", func() bool { return tp.Stats().DecodeErrors == 1 })
	errs := reported()
	if len(errs) != 1 || !errors.Is(errs[0], hub.ErrBadEnvelope) {
		t.Fatalf("errors %v", errs)
	}
	if msg := errs[0].Error(); strings.ContainsAny(msg, "\x1b\r\n") || !strings.Contains(msg, `n\u001b[31m  forged`) {
		t.Fatalf("error text %q", msg)
	}
}

// TestSequenceDedupeAndGaps: a node ignores a repeated broker message and
// counts the ones a publisher's sequence shows it never got; a corrupt
// message is counted, not delivered.
func TestSequenceDedupeAndGaps(t *testing.T) {
	src := &rawBroker{}
	pub := newTopic(t, newHub(t, src, "pub"), "seq", nil)
	publishN(t, pub, "m", 0, 5)

	dst := &rawBroker{}
	var errs []error
	h, err := hub.New(dst, &hub.Options{NodeID: "sub", OnError: func(_ string, err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tp := newTopic(t, h, "seq", nil)
	var got []string
	s, _ := tp.SubscribeFunc(func(m msg) error { got = append(got, m.GetValue()); return nil })
	defer s.Close()
	for _, i := range []int{0, 1, 1, 0, 3, 4} { // a repeat, a stale one, m2 lost
		dst.handle(src.sent[i])
	}
	dst.handle([]byte{9, 9, 9})
	waitFor(t, "deliveries", func() bool { return tp.Stats().Delivered == 4 })
	if fmt.Sprint(got) != "[m0 m1 m3 m4]" {
		t.Fatalf("got %v", got)
	}
	st := tp.Stats()
	if st.Received != 4 || st.Duplicates != 2 || st.Missed != 1 || st.DecodeErrors != 1 || len(errs) != 1 || !errors.Is(errs[0], hub.ErrBadEnvelope) {
		t.Fatalf("stats %+v, errors %v", st, errs)
	}
}

// TestForeignNodeIDs: broker messages may come from any publisher on the
// subject, with node ids New would refuse. One whose SSE id
// "<node>-<seq>" holds a line break, which would start a new field of the
// event (WHATWG HTML §9.2.6), is still delivered to function subscribers
// but recorded for no SSE client: counted and reported as an encoding
// error. One with this node's own id is ignored, as its own messages are.
func TestForeignNodeIDs(t *testing.T) {
	src := &rawBroker{}
	h, reported := hubReporting(t, src, "me")
	tp := newTopic(t, h, "foreign", nil)
	got := make(chan string, 10)
	s, err := tp.SubscribeFunc(func(m msg) error { got <- m.GetValue(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, node := range []string{"other", "in\nject", "me"} {
		payload, err := proto.Marshal(wrapperspb.String(node))
		if err != nil {
			t.Fatal(err)
		}
		src.handle(hub.AppendEnvelope(nil, node, 1, payload))
	}
	for _, want := range []string{"other", "in\nject"} {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("delivered %q, want %q", v, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q never delivered", want)
		}
	}
	waitFor(t, "the deliveries counted", func() bool { return tp.Stats().Delivered == 2 })
	if evs, err := tp.Replay().Since("other-1"); err != nil || len(evs) != 0 {
		t.Fatalf("recorded after other-1: %v, %v", evs, err)
	}
	errs := reported()
	if st := tp.Stats(); st.Received != 2 || st.EncodeErrors != 1 || len(errs) != 1 || !errors.Is(errs[0], sse.ErrInvalidID) {
		t.Fatalf("stats %+v, errors %v", st, errs)
	}
}

func TestBadInput(t *testing.T) {
	h := newHub(t, nil, "a")
	for _, name := range []string{"", "a b", "a..b", ".a", "a.", "a.*", ">", "ü"} {
		if _, err := hub.NewTopic[msg](h, name, nil); !errors.Is(err, hub.ErrInvalidTopic) {
			t.Errorf("NewTopic(%q): %v, want ErrInvalidTopic", name, err)
		}
	}
	newTopic(t, h, "x.y-z_1", nil)
	if _, err := hub.NewTopic[msg](h, strings.Repeat("a", 201), nil); !errors.Is(err, hub.ErrInvalidTopic) {
		t.Errorf("NewTopic(201 bytes): %v, want ErrInvalidTopic", err)
	}
	newTopic(t, h, strings.Repeat("a", 200), nil)
	// The Disconnect policy's close is checked up front: one the
	// connection refuses would send no close frame (the socket was left
	// open).
	for i, o := range []hub.TopicOptions[msg]{
		{CloseCode: websocket.StatusNoStatusRcvd},
		{CloseCode: 999},
		{CloseReason: "bad \xff"},
		{CloseReason: strings.Repeat("r", 124)},
	} {
		if _, err := hub.NewTopic(h, fmt.Sprintf("close%d", i), &o); err == nil {
			t.Errorf("NewTopic with close %d %q: no error", o.CloseCode, o.CloseReason)
		}
	}
	newTopic(t, h, "close-ok", &hub.TopicOptions[msg]{CloseCode: 4000, CloseReason: strings.Repeat("r", 123)})
	// A prefix is checked as the start of every subject: a space would
	// split it on the wire, '*' or '>' make it a wildcard.
	for _, p := range []string{"a b.", "*.", "app.>", "a..b.", ".a.", strings.Repeat("a", 65)} {
		if _, err := hub.New(nil, &hub.Options{SubjectPrefix: p}); err == nil {
			t.Errorf("New with SubjectPrefix %q: no error", p)
		}
	}
	for _, p := range []string{"app.", "app", "a-b_c.d.", strings.Repeat("a", 64)} {
		if _, err := hub.New(nil, &hub.Options{SubjectPrefix: p}); err != nil {
			t.Errorf("New with SubjectPrefix %q: %v", p, err)
		}
	}
	if _, err := hub.NewTopic[msg](h, "x.y-z_1", nil); !errors.Is(err, hub.ErrTopicExists) {
		t.Errorf("duplicate topic: %v", err)
	}
	tp := newTopic(t, h, "closing", nil)
	if err := tp.Publish(context.Background(), nil); err == nil {
		t.Error("nil message published")
	}
	if _, err := tp.SubscribeWebSocket(nil, nil); err == nil {
		t.Error("nil connection subscribed")
	}
	s, _ := tp.SubscribeFunc(func(msg) error { return nil })
	tp.Close()
	<-s.Done()
	if !errors.Is(s.Err(), hub.ErrClosed) {
		t.Errorf("subscription of a closed topic: %v", s.Err())
	}
	if err := tp.Publish(context.Background(), wrapperspb.String("x")); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("publish on a closed topic: %v", err)
	}
	if _, err := tp.SubscribeFunc(func(msg) error { return nil }); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("subscribe to a closed topic: %v", err)
	}
	if _, err := hub.NewTopic[msg](h, "closing", nil); err != nil {
		t.Errorf("name of a closed topic not reusable: %v", err)
	}
}

// TestNewTopicRequiresNewWithoutMessageType: NewTopic takes M's message
// type from M's zero value, which an interface type (proto.Message) or a
// dynamic message (*dynamicpb.Message) does not give: without
// TopicOptions.New it fails saying so, rather than panicking; with New, a
// dynamic message topic works across nodes.
func TestNewTopicRequiresNewWithoutMessageType(t *testing.T) {
	h := newHub(t, nil, "a")
	noPanic := func(name string, f func() error) error {
		t.Helper()
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("NewTopic[%s] without New panicked: %v", name, p)
			}
		}()
		return f()
	}
	for name, f := range map[string]func() error{
		"proto.Message": func() error {
			_, err := hub.NewTopic[proto.Message](h, "iface", nil)
			return err
		},
		"*dynamicpb.Message": func() error {
			_, err := hub.NewTopic(h, "dyn", &hub.TopicOptions[*dynamicpb.Message]{})
			return err
		},
	} {
		if err := noPanic(name, f); err == nil || !strings.Contains(err.Error(), "TopicOptions.New is required") {
			t.Errorf("NewTopic[%s] without New: %v", name, err)
		}
	}

	desc := (&wrapperspb.StringValue{}).ProtoReflect().Descriptor()
	value := desc.Fields().ByName("value")
	b := hub.NewMemoryBroker()
	opts := &hub.TopicOptions[*dynamicpb.Message]{New: func() *dynamicpb.Message { return dynamicpb.NewMessage(desc) }}
	pub, err := hub.NewTopic(newHub(t, b, "pub"), "dyn", opts)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := hub.NewTopic(newHub(t, b, "recv"), "dyn", opts)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	s, err := recv.SubscribeFunc(func(m *dynamicpb.Message) error { got <- m.Get(value).String(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := dynamicpb.NewMessage(desc)
	m.Set(value, protoreflect.ValueOfString("dynamic"))
	if err := pub.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != "dynamic" {
			t.Fatalf("received %q", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dynamic message never arrived")
	}
}

// TestPublishRefusesOtherMessageType: on a topic whose M does not fix the
// message type (proto.Message), Publish refuses a message of another type
// than TopicOptions.New's. Accepted, it would reach local subscribers as
// it is while other nodes decode its bytes as New's type: the same event
// id would carry different data on different nodes. A message of New's
// type in another Go representation (generated or dynamic) is the same
// message on the wire, and is accepted.
func TestPublishRefusesOtherMessageType(t *testing.T) {
	b := hub.NewMemoryBroker()
	opts := &hub.TopicOptions[proto.Message]{New: func() proto.Message { return &wrapperspb.StringValue{} }}
	local, err := hub.NewTopic(newHub(t, b, freshNode("wa")), "typed", opts)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := hub.NewTopic(newHub(t, b, freshNode("wb")), "typed", opts)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan proto.Message, 4)
	for _, tp := range []*hub.Topic[proto.Message]{local, remote} {
		s, err := tp.SubscribeFunc(func(m proto.Message) error { got <- m; return nil })
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	err = local.Publish(context.Background(), wrapperspb.Int64(7))
	if err == nil || !strings.Contains(err.Error(), "google.protobuf.Int64Value") || !strings.Contains(err.Error(), "google.protobuf.StringValue") {
		t.Fatalf("Publish of an Int64Value on a StringValue topic = %v, want an error naming both types", err)
	}
	if st := local.Stats(); st.Published != 0 {
		t.Errorf("refused message counted: %+v", st)
	}
	if ev, _ := local.Replay().Since(""); len(ev) != 0 {
		t.Errorf("refused message recorded: %+v", ev)
	}

	desc := (&wrapperspb.StringValue{}).ProtoReflect().Descriptor()
	dyn := dynamicpb.NewMessage(desc)
	dyn.Set(desc.Fields().ByName("value"), protoreflect.ValueOfString("same"))
	if err := local.Publish(context.Background(), dyn); err != nil {
		t.Fatalf("Publish of a dynamic StringValue: %v", err)
	}
	for range 2 {
		select {
		case m := <-got:
			if v := m.ProtoReflect(); v.Descriptor().FullName() != desc.FullName() || v.Get(v.Descriptor().Fields().ByName("value")).String() != "same" {
				t.Errorf("subscriber got %v", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the StringValue never arrived")
		}
	}
	select {
	case m := <-got:
		t.Errorf("unexpected delivery %v", m)
	case <-time.After(50 * time.Millisecond): // the refused message must not arrive
	}
}

// TestPublishNilWithoutMessageType: Publish(ctx, nil) on a topic whose M is
// an interface (a nil interface, or one holding a nil *dynamicpb.Message)
// or *dynamicpb.Message returns the "nil message" error a generated
// topic gives, rather than panicking; NewTopic likewise refuses a New that
// returns nil.
func TestPublishNilWithoutMessageType(t *testing.T) {
	h := newHub(t, nil, freshNode("nil"))
	desc := (&wrapperspb.StringValue{}).ProtoReflect().Descriptor()
	iface, err := hub.NewTopic(h, "iface", &hub.TopicOptions[proto.Message]{New: func() proto.Message { return &wrapperspb.StringValue{} }})
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := hub.NewTopic(h, "dyn", &hub.TopicOptions[*dynamicpb.Message]{New: func() *dynamicpb.Message { return dynamicpb.NewMessage(desc) }})
	if err != nil {
		t.Fatal(err)
	}
	gen := newTopic(t, h, "gen", nil)
	for name, publish := range map[string]func() error{
		"generated nil":             func() error { return gen.Publish(context.Background(), nil) },
		"proto.Message nil":         func() error { return iface.Publish(context.Background(), nil) },
		"proto.Message holding nil": func() error { return iface.Publish(context.Background(), (*dynamicpb.Message)(nil)) },
		"*dynamicpb.Message nil":    func() error { return dyn.Publish(context.Background(), nil) },
		"New returns nil interface": func() error {
			_, err := hub.NewTopic(h, "n1", &hub.TopicOptions[proto.Message]{New: func() proto.Message { return nil }})
			return err
		},
		"New returns nil dynamicpb": func() error {
			_, err := hub.NewTopic(h, "n2", &hub.TopicOptions[*dynamicpb.Message]{New: func() *dynamicpb.Message { return nil }})
			return err
		},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: panicked: %v", name, p)
				}
			}()
			if err := publish(); err == nil || !strings.Contains(err.Error(), "nil message") {
				t.Errorf("%s: %v, want a nil message error", name, err)
			}
		}()
	}
}

// TestFuncErrorEndsSubscription: an error from a subscriber function ends
// that subscription only, at once: the function is not called again, Err
// returns the error, and a later Close changes nothing. This is how a
// function ends its own subscription (calling Close from it would wait
// for itself).
func TestFuncErrorEndsSubscription(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "ferr", nil)
	boom := errors.New("boom")
	var calls atomic.Int64
	s, _ := tp.SubscribeFunc(func(msg) error {
		if calls.Add(1) == 2 { // had what it wanted
			return boom
		}
		return nil
	})
	var c orderChecker
	ok, _ := tp.SubscribeFunc(c.fn("m"))
	defer ok.Close()
	publishN(t, tp, "m", 0, 5)
	<-s.Done()
	if !errors.Is(s.Err(), boom) {
		t.Fatalf("Err = %v", s.Err())
	}
	waitFor(t, "the other subscriber", func() bool { return c.count() == 5 })
	if err := s.Close(); err != nil || !errors.Is(s.Err(), boom) {
		t.Fatalf("Close after the error: %v, Err = %v", err, s.Err())
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("function called %d times, want 2: not again after its error", n)
	}
	if st := tp.Stats(); st.Subscribers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNodeID: node ids are letters, digits, '_', '-' and '.', 1 to 64
// bytes. '-' is allowed although the SSE id "<node>-<seq>" joins with it:
// nothing splits an id apart again, and the sequence after the last '-'
// stays unambiguous. Pod names, the usual base of a node id, contain it.
func TestNodeID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"a-b", true},
		{"chat-7d9f8b6c5-x2kqp_3f1c2a9e", true}, // docs/hub.md: POD_NAME + "_" + random
		{"node.1_A-z", true},
		{strings.Repeat("n", 64), true},
		{strings.Repeat("n", 65), false},
		{"a b", false},
		{"a/b", false},
		{"a*", false},
		{"ü", false},
	} {
		h, err := hub.New(nil, &hub.Options{NodeID: tc.id})
		if (err == nil) != tc.ok {
			t.Errorf("New(NodeID %q): %v, want ok %v", tc.id, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		// The id tags SSE events as "<node>-<seq>", which resume. (The
		// sequence starts at 1 only the first time this process uses the
		// id: see Options.NodeID.)
		tp := newTopic(t, h, "ids", nil)
		publishN(t, tp, "m", 0, 1)
		id := tp.Replay().(*sse.Ring).Last()
		if seq, ok := strings.CutPrefix(id, tc.id+"-"); !ok || seq == "" || strings.Trim(seq, "0123456789") != "" {
			t.Errorf("node %q: SSE id %q", tc.id, id)
		}
		publishN(t, tp, "m", 1, 2)
		if evs, err := tp.Replay().Since(id); err != nil || len(evs) != 1 {
			t.Errorf("node %q: resume from %q: %v, %v", tc.id, id, evs, err)
		}
		h.Close()
	}
}

// TestRecreatedTopicContinuesSequence: a topic closed and created again
// under the same name on the same hub numbers its messages on from where
// the old one stopped. Restarting at 1 with the same node id, its
// messages would be dropped as duplicates by every node that saw the old
// ones, and SSE ids "<node>-<seq>" would repeat.
func TestRecreatedTopicContinuesSequence(t *testing.T) {
	b := hub.NewMemoryBroker()
	node := freshNode("a")
	ha := newHub(t, b, node)
	wantNumberedOn(t, b, node, func(from, to int) {
		pub := newTopic(t, ha, "room", nil)
		publishN(t, pub, "m", from, to)
		if err := pub.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestGeneratedNodeIDFloorsStayWithHub: a hub whose node id New generated
// keeps its sequence floors itself. A topic recreated on it still numbers
// on from where the old one stopped, and hubs that come and go leave
// nothing in the process: they each left a 512-byte array in the
// process-wide map for good (20,000 short-lived hubs kept 11 MB), though
// no later Hub is ever given a random id by New.
func TestGeneratedNodeIDFloorsStayWithHub(t *testing.T) {
	b := hub.NewMemoryBroker()
	ha, err := hub.New(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	wantNumberedOn(t, b, ha.NodeID(), func(from, to int) {
		pub := newTopic(t, ha, "room", nil)
		publishN(t, pub, "m", from, to)
		if err := pub.Close(); err != nil {
			t.Fatal(err)
		}
	})
	before := hub.FloorNodes()
	for range 100 {
		h, err := hub.New(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		publishN(t, newTopic(t, h, "room", nil), "m", 1, 3)
		h.Close()
	}
	if n := hub.FloorNodes(); n != before {
		t.Fatalf("the process keeps floors for %d node ids after 100 hubs with generated ids came and went, %d before", n, before)
	}
}

// TestNewHubSameNodeIDContinuesSequence: a Hub closed and created again
// in the same process with the same NodeID (computed once at start-up, a
// hub rebuilt on reconfiguration) numbers its topics' messages on from
// where the old hub's stopped, as a recreated topic does. Restarting at
// 1, its messages would be dropped as repeats by every node that saw the
// old ones, and SSE ids "<node>-<seq>" would repeat.
func TestNewHubSameNodeIDContinuesSequence(t *testing.T) {
	b := hub.NewMemoryBroker()
	node := freshNode("a")
	wantNumberedOn(t, b, node, func(from, to int) {
		h := newHub(t, b, node)
		publishN(t, newTopic(t, h, "room", nil), "m", from, to)
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// gateBroker holds Subscribe until released, as a NATSBroker's round trip
// would, and counts subscriptions still in place.
type gateBroker struct {
	*hub.MemoryBroker
	entered, release chan struct{}
	live             atomic.Int64
}

func (g *gateBroker) Subscribe(subject string, handle func([]byte)) (func() error, error) {
	close(g.entered)
	<-g.release
	unsub, err := g.MemoryBroker.Subscribe(subject, handle)
	if err != nil {
		return nil, err
	}
	g.live.Add(1)
	return func() error { g.live.Add(-1); return unsub() }, nil
}

// TestHubCloseDuringNewTopic: a hub closed while NewTopic waits for the
// broker neither panics nor leaves a subscription behind; NewTopic fails
// with ErrClosed.
func TestHubCloseDuringNewTopic(t *testing.T) {
	g := &gateBroker{MemoryBroker: hub.NewMemoryBroker(), entered: make(chan struct{}), release: make(chan struct{})}
	h, err := hub.New(g, &hub.Options{NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() {
		tp, err := hub.NewTopic[msg](h, "late", nil)
		if tp != nil {
			tp.Close()
		}
		created <- err
	}()
	<-g.entered
	closed := make(chan any, 1)
	go func() {
		defer func() { closed <- recover() }()
		h.Close()
	}()
	var p any
	select {
	case p = <-closed: // Close does not wait for NewTopic
	case <-time.After(10 * time.Second):
		close(g.release)
		t.Fatal("Hub.Close waits for NewTopic's broker subscription")
	}
	close(g.release)
	err = <-created
	if p != nil {
		t.Fatalf("Hub.Close panicked: %v", p)
	}
	if !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("NewTopic on a hub closed meanwhile: %v, want ErrClosed", err)
	}
	if n := g.live.Load(); n != 0 {
		t.Fatalf("%d broker subscriptions left", n)
	}
}

// failCodec is a text codec that refuses every message.
type failCodec struct{}

func (failCodec) Name() string                          { return "fail" }
func (failCodec) Binary() bool                          { return false }
func (failCodec) Marshal(proto.Message) ([]byte, error) { return nil, errors.New("refused") }
func (failCodec) MarshalAppend([]byte, proto.Message) ([]byte, error) {
	return nil, errors.New("refused")
}
func (failCodec) Unmarshal([]byte, proto.Message) error { return errors.New("refused") }

// TestOnErrorMayUseTopic: Options.OnError runs with no hub lock held, so
// it may read the topic's Stats, whether the error came up in Publish or
// in a message received from the broker, and may even publish on it.
func TestOnErrorMayUseTopic(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(map[bool]string{false: "publish", true: "receive"}[remote], func(t *testing.T) {
			var tp atomic.Pointer[hub.Topic[msg]]
			var reported atomic.Int64
			onError := func(_ string, err error) {
				x := tp.Load()
				if st := x.Stats(); st.EncodeErrors == 0 {
					t.Errorf("stats in OnError %+v", st)
				}
				// Not on a message received from a MemoryBroker, which
				// delivers it inside the publisher's Publish and would
				// wait for itself (see Options.OnError).
				if reported.Add(1) == 1 && !remote {
					if err := x.Publish(context.Background(), wrapperspb.String("from OnError")); err != nil {
						t.Errorf("Publish in OnError: %v", err)
					}
				}
			}
			// The hubs are closed only once the test is through: a
			// deadlocked Publish holds the publish mutex Close takes.
			b := hub.NewMemoryBroker()
			h, err := hub.New(b, &hub.Options{NodeID: "a", OnError: onError})
			if err != nil {
				t.Fatal(err)
			}
			// The SSE encoding for the replay store fails for every message.
			x, err := hub.NewTopic(h, "errs", &hub.TopicOptions[msg]{SSECodec: failCodec{}})
			if err != nil {
				t.Fatal(err)
			}
			tp.Store(x)
			hubs, pub, want := []*hub.Hub{h}, x, int64(2) // the message, then OnError's
			if remote {
				hb, err := hub.New(b, &hub.Options{NodeID: "b"})
				if err != nil {
					t.Fatal(err)
				}
				hubs = append(hubs, hb)
				pub, want = newTopic(t, hb, "errs", nil), 1
			}
			done := make(chan error, 1)
			go func() { done <- pub.Publish(context.Background(), wrapperspb.String("m")) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Publish deadlocked in OnError")
			}
			if n := reported.Load(); n != want {
				t.Fatalf("OnError called %d times, want %d", n, want)
			}
			if st := x.Stats(); st.EncodeErrors != uint64(want) {
				t.Fatalf("stats %+v", st)
			}
			for _, h := range hubs {
				h.Close()
			}
		})
	}
}

// TestForgetsSilentNodes: a topic remembers each publishing node's last
// sequence number (to drop repeats) but forgets the nodes it has not
// heard from for NodeTTL, so node ids that come and go (one per process
// restart) do not pile up. A node that keeps publishing is remembered.
func TestForgetsSilentNodes(t *testing.T) {
	src := &rawBroker{}
	tp := newTopic(t, newHub(t, src, "sub"), "nodes", &hub.TopicOptions[msg]{DisableReplay: true})
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	hub.SetClock(tp, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	payload, err := proto.Marshal(wrapperspb.String("x"))
	if err != nil {
		t.Fatal(err)
	}
	const rounds, perRound = 20, 1000
	for r := range rounds {
		src.handle(hub.AppendEnvelope(nil, "steady", uint64(r+1), payload))
		for i := range perRound {
			src.handle(hub.AppendEnvelope(nil, "n"+strconv.Itoa(r)+"_"+strconv.Itoa(i), 1, payload))
		}
		mu.Lock()
		now = now.Add(hub.NodeTTL)
		mu.Unlock()
	}
	// Sweeps keep the map under twice the nodes heard from within NodeTTL.
	if n := hub.KnownNodes(tp); n > 2*(perRound+1) {
		t.Fatalf("%d nodes remembered after %d rounds of %d new ones", n, rounds, perRound)
	}
	src.handle(hub.AppendEnvelope(nil, "steady", rounds, payload)) // a repeat
	if st := tp.Stats(); st.Received != rounds*(perRound+1) || st.Duplicates != 1 || st.Missed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// wantNumberedOn has three generations of publisher, each made by
// generation, publish messages m<from>…m<to-1> on topic "room" as node,
// and checks that node b's topic received all of them in order, none
// taken for a repeat or counted missing, with SSE ids node-1 … node-12:
// each generation numbered on.
func wantNumberedOn(t *testing.T, b hub.Broker, node string, generation func(from, to int)) {
	t.Helper()
	log := &followLog{}
	sub := newTopic(t, newHub(t, b, "b"), "room", &hub.TopicOptions[msg]{Replay: log})
	var c orderChecker
	s, err := sub.SubscribeFunc(c.fn("m"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const generations, perGeneration = 3, 4
	for g := range generations {
		generation(g*perGeneration, (g+1)*perGeneration)
	}
	const total = generations * perGeneration
	waitFor(t, "every message on node b", func() bool { return c.count() >= total || sub.Stats().Duplicates > 0 })
	if st := sub.Stats(); c.count() != total || c.err != nil || st.Duplicates != 0 || st.Missed != 0 {
		t.Fatalf("node b got %d of %d messages (err %v), stats %+v", c.count(), total, c.err, st)
	}
	var want []string
	for i := 1; i <= total; i++ {
		want = append(want, node+"-"+strconv.Itoa(i))
	}
	if got := log.ids(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SSE ids %v, want %v", got, want)
	}
}

// TestConcurrentTopicCloseWaits guards that a Topic.Close made while
// another is in progress (the hub's Shutdown and the application's own
// Close racing, say) returns only once the subscriptions have ended; it
// returned nil at once, with a SubscribeFunc call still running.
func TestConcurrentTopicCloseWaits(t *testing.T) {
	h := newHub(t, hub.NewMemoryBroker(), "n1")
	tp := newTopic(t, h, "t", nil)
	inFn, release := make(chan struct{}), make(chan struct{})
	var running atomic.Bool
	if _, err := tp.SubscribeFunc(func(msg) error {
		running.Store(true)
		close(inFn)
		<-release
		running.Store(false)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := tp.Publish(context.Background(), wrapperspb.String("x")); err != nil {
		t.Fatal(err)
	}
	<-inFn
	first := make(chan error, 1)
	go func() { first <- tp.Close() }()
	// The first Close has begun once Publish is refused.
	for tp.Publish(context.Background(), wrapperspb.String("y")) == nil {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() { second <- tp.Close() }()
	select {
	case err := <-second:
		t.Fatalf("second Close returned (%v) while the first waits for a SubscribeFunc call", err)
	case <-time.After(50 * time.Millisecond): // it must not return meanwhile
	}
	close(release)
	for _, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return")
		}
	}
	if running.Load() {
		t.Fatal("a Close returned with the SubscribeFunc call still running")
	}
}
