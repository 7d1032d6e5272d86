package hub_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// followLog is a replay store read with a cursor, as the examples' logs
// are: After("") is everything held. keep > 0 evicts beyond that many.
type followLog struct {
	mu     sync.Mutex
	events []sse.Event
	keep   int
}

func (l *followLog) Append(e sse.Event) (sse.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if l.keep > 0 && len(l.events) > l.keep {
		l.events = l.events[len(l.events)-l.keep:]
	}
	return e, nil
}

func (l *followLog) Since(id string) ([]sse.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.events {
		if e.ID == id {
			return append([]sse.Event(nil), l.events[i+1:]...), nil
		}
	}
	return nil, fmt.Errorf("%w %q", sse.ErrUnknownID, id)
}

func (l *followLog) After(cursor string) ([]sse.Event, error) {
	if cursor != "" {
		return l.Since(cursor)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sse.Event(nil), l.events...), nil
}

func (l *followLog) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.ID)
	}
	return out
}

// waitClosed waits for ch to be closed.
func waitClosed(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// startSignal is a start function for Follow that returns cursor and
// backlog and closes started: Follow calls start once it has subscribed,
// so the test may publish from then on. (A follower is not counted in
// Stats.Subscribers, so that cannot tell.)
func startSignal(started chan struct{}, cursor string, backlog []sse.Event) func() (string, []sse.Event, error) {
	return func() (string, []sse.Event, error) {
		close(started)
		return cursor, backlog, nil
	}
}

// Events published while a follower reads the log reach it once each, in
// the log's order; the follower ends with its context, or with the topic.
func TestFollow(t *testing.T) {
	log := &followLog{}
	tp := newTopic(t, newHub(t, nil, "a"), "follow", &hub.TopicOptions[msg]{Replay: log})
	publishN(t, tp, "before", 0, 10) // the backlog
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		all := func() (string, []sse.Event, error) { b, err := log.After(""); return "", b, err }
		done <- tp.Follow(ctx, all, log.After, func(ev sse.Event) error {
			mu.Lock()
			got = append(got, ev.ID)
			mu.Unlock()
			return nil
		})
	}()
	publishN(t, tp, "m", 0, 300)
	waitFor(t, "every event followed", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 310 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := log.ids(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("followed %d events, not the log's %d in order", len(got), len(want))
	}

	// The topic closing ends a follower.
	done2 := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done2 <- tp.Follow(context.Background(), startSignal(started, "", nil), log.After, func(sse.Event) error { return nil })
	}()
	waitClosed(t, "the follower's subscription", started)
	tp.Close()
	if err := <-done2; !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Follow after the topic closed: %v", err)
	}
}

// A follower whose cursor the store evicted gets ErrFellBehind; errors of
// start and send come back as they are.
func TestFollowErrors(t *testing.T) {
	log := &followLog{keep: 3}
	tp := newTopic(t, newHub(t, nil, "a"), "behind", &hub.TopicOptions[msg]{Replay: log})
	publishN(t, tp, "m", 0, 1)
	first := log.ids()[0]
	release := make(chan struct{})
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- tp.Follow(context.Background(), startSignal(started, first, nil), log.After, func(sse.Event) error {
			<-release // slow: the log moves on meanwhile
			return nil
		})
	}()
	waitClosed(t, "the follower's subscription", started)
	publishN(t, tp, "m", 1, 2) // wakes the follower, which reads m1 and blocks sending it
	publishN(t, tp, "m", 2, 10)
	close(release)
	if err := <-done; !errors.Is(err, hub.ErrFellBehind) || !errors.Is(err, sse.ErrUnknownID) {
		t.Fatalf("Follow behind the store: %v", err)
	}

	boom := errors.New("boom")
	if err := tp.Follow(context.Background(), func() (string, []sse.Event, error) { return "", nil, boom },
		log.After, nil); err != boom {
		t.Fatalf("start's error: %v", err)
	}
	all := func() (string, []sse.Event, error) { b, err := log.After(""); return "", b, err }
	if err := tp.Follow(context.Background(), all,
		log.After, func(sse.Event) error { return boom }); err != boom {
		t.Fatalf("send's error: %v", err)
	}
}

// A follower of a Disconnect topic is not disconnected by a burst of
// publishes: its wake-ups coalesce whatever the topic's policy (only the
// store can leave it behind, with ErrFellBehind), so it follows every
// event and ends with its context, not with ErrClosed on an open topic.
func TestFollowDisconnectTopic(t *testing.T) {
	log := &followLog{}
	// A queue of one: the second publish before the wake-up is taken
	// would fill it.
	node := freshNode("a") // the ids are checked from <node>-1 on
	tp := newTopic(t, newHub(t, nil, node), "burst", &hub.TopicOptions[msg]{
		Replay: log, Policy: hub.Disconnect, QueueSize: 1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- tp.Follow(ctx, startSignal(started, "", nil), log.After, func(ev sse.Event) error {
			mu.Lock()
			got = append(got, ev.ID)
			mu.Unlock()
			return nil
		})
	}()
	waitClosed(t, "the follower's subscription", started)
	const n = 1000
	for i := range n {
		publishN(t, tp, "m", i, i+1)
		select {
		case err := <-done:
			t.Fatalf("Follow ended after %d publishes on an open topic: %v (stats %+v)", i+1, err, tp.Stats())
		default:
		}
	}
	waitFor(t, "every event followed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel: %v", err)
	}
	if st := tp.Stats(); st.Disconnected != 0 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := log.ids(); fmt.Sprint(got) != fmt.Sprint(want) || got[n-1] != node+"-"+strconv.Itoa(n) {
		t.Fatalf("followed %d events, not the log's %d in order", len(got), len(want))
	}
}

// TestFollowNotCountedInStats: Follow's wake-up subscription is the
// topic's own machinery, not a subscriber: it is left out of every topic
// counter. Its wake-ups merge while the follower is busy, which lost
// nothing but showed up as Stats.Dropped (even on a Disconnect topic,
// which never drops), and each wake-up counted in Delivered and the
// follower in Subscribers.
func TestFollowNotCountedInStats(t *testing.T) {
	log := &followLog{}
	tp := newTopic(t, newHub(t, nil, "a"), "uncounted", &hub.TopicOptions[msg]{Replay: log, Policy: hub.Disconnect})
	var c orderChecker // a real subscriber, which is counted
	sub, err := tp.SubscribeFunc(c.fn("m"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gate, sending := make(chan struct{}), make(chan struct{})
	var followed atomic.Int64
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- tp.Follow(ctx, startSignal(started, "", nil), log.After, func(sse.Event) error {
			if followed.Load() == 0 {
				close(sending)
			}
			<-gate
			followed.Add(1)
			return nil
		})
	}()
	waitClosed(t, "the follower's subscription", started)
	if st := tp.Stats(); st.Subscribers != 1 {
		t.Fatalf("with one subscriber and one follower: stats %+v", st)
	}
	const n = 51
	publishN(t, tp, "m", 0, 1)
	waitClosed(t, "the follower to be sending", sending)
	publishN(t, tp, "m", 1, n) // wake-ups merge while the follower is stalled
	close(gate)
	waitFor(t, "everything delivered and followed", func() bool {
		return followed.Load() == n && c.count() == n && tp.Stats().Delivered >= n
	})
	time.Sleep(50 * time.Millisecond) // give a wrongful count its chance
	if st := tp.Stats(); st.Subscribers != 1 || st.Delivered != n || st.Dropped != 0 || st.Disconnected != 0 || st.Published != n {
		t.Fatalf("stats %+v: the follower is counted", st)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel: %v", err)
	}
}

// TestFollowDefaultRing: Follow on the default replay store, an
// sse.Ring, from a fresh start: start returns ring.Last(), "" while the
// ring is empty, and the first wake-up reads Since(""), the start of the
// ring. Since("") failed with ErrUnknownID, which ended a fresh follower
// of an empty topic with ErrFellBehind at the first publish. A follower
// that starts once the ring holds events gets those published after.
func TestFollowDefaultRing(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "ring", nil)
	ring, ok := tp.Replay().(*sse.Ring)
	if !ok {
		t.Fatalf("default replay store %T, want *sse.Ring", tp.Replay())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type follower struct {
		mu   sync.Mutex
		ids  []string
		done chan error
	}
	follow := func() *follower {
		f := &follower{done: make(chan error, 1)}
		started := make(chan struct{})
		go func() {
			start := func() (string, []sse.Event, error) {
				defer close(started)
				return ring.Last(), nil, nil
			}
			f.done <- tp.Follow(ctx, start, ring.Since, func(ev sse.Event) error {
				f.mu.Lock()
				f.ids = append(f.ids, ev.ID)
				f.mu.Unlock()
				return nil
			})
		}()
		waitClosed(t, "the follower's start", started)
		return f
	}
	got := func(f *follower) string {
		select {
		case err := <-f.done:
			t.Fatalf("Follow ended on an open topic: %v", err)
		default:
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return fmt.Sprint(f.ids)
	}
	var ids []string // as recorded
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			publishN(t, tp, "m", i, i+1)
			ids = append(ids, ring.Last())
		}
	}

	fresh := follow() // the ring is empty
	publish(0, 5)
	waitFor(t, "the fresh follower", func() bool { return got(fresh) == fmt.Sprint(ids) })
	later := follow() // the ring holds 5 events
	publish(5, 10)
	waitFor(t, "both followers", func() bool { return got(fresh) == fmt.Sprint(ids) && got(later) == fmt.Sprint(ids[5:]) })
	cancel()
	for _, f := range []*follower{fresh, later} {
		if err := <-f.done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow after cancel: %v", err)
		}
	}
}
