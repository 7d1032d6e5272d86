package hub_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

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
	go func() {
		done2 <- tp.Follow(context.Background(), func() (string, []sse.Event, error) { return "", nil, nil },
			log.After, func(sse.Event) error { return nil })
	}()
	waitFor(t, "the follower's subscription", func() bool { return tp.Stats().Subscribers == 1 })
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
	go func() {
		start := func() (string, []sse.Event, error) { return first, nil, nil }
		done <- tp.Follow(context.Background(), start, log.After, func(sse.Event) error {
			<-release // slow: the log moves on meanwhile
			return nil
		})
	}()
	waitFor(t, "the follower's subscription", func() bool { return tp.Stats().Subscribers == 1 })
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
	tp := newTopic(t, newHub(t, nil, "a"), "burst", &hub.TopicOptions[msg]{
		Replay: log, Policy: hub.Disconnect, QueueSize: 1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		none := func() (string, []sse.Event, error) { return "", nil, nil }
		done <- tp.Follow(ctx, none, log.After, func(ev sse.Event) error {
			mu.Lock()
			got = append(got, ev.ID)
			mu.Unlock()
			return nil
		})
	}()
	waitFor(t, "the follower's subscription", func() bool { return tp.Stats().Subscribers == 1 })
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
	if want := log.ids(); fmt.Sprint(got) != fmt.Sprint(want) || got[n-1] != "a-"+strconv.Itoa(n) {
		t.Fatalf("followed %d events, not the log's %d in order", len(got), len(want))
	}
}
