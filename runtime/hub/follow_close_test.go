package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestFollowSendsRecordedBeforeClose: events published before the topic
// closes are in its store, and a follower sends every one of them before
// Follow returns ErrClosed — the last message before a Close (a room's
// "closed" event) included. Follow returned ErrClosed as soon as its
// wake-up subscription ended, which Close makes at once, dropping the
// pending wake-up: whatever the follower had not read yet was never
// sent, and a client that comes back finds the topic closed. The
// follower here is held sending its backlog while the rest is published
// and the topic closes, so the wake-up and the close are both pending
// when it looks; each round has a fresh topic.
func TestFollowSendsRecordedBeforeClose(t *testing.T) {
	h := newHub(t, nil, "a")
	for round := range 20 {
		log := &followLog{}
		tp := newTopic(t, h, fmt.Sprintf("closing%d", round), &hub.TopicOptions[msg]{Replay: log})
		publishN(t, tp, "m", 0, 1) // the backlog
		gate, sending := make(chan struct{}), make(chan struct{})
		var mu sync.Mutex
		var got []string
		done := make(chan error, 1)
		go func() {
			all := func() (string, []sse.Event, error) { b, err := log.After(""); return "", b, err }
			done <- tp.Follow(context.Background(), all, log.After, func(ev sse.Event) error {
				mu.Lock()
				first := len(got) == 0
				got = append(got, ev.ID)
				mu.Unlock()
				if first {
					close(sending)
					<-gate
				}
				return nil
			})
		}()
		waitClosed(t, "the follower to be sending its backlog", sending)
		publishN(t, tp, "m", 1, 4)
		if err := tp.Close(); err != nil {
			t.Fatal(err)
		}
		close(gate)
		if err := <-done; !errors.Is(err, hub.ErrClosed) {
			t.Fatalf("round %d: Follow after the topic closed: %v", round, err)
		}
		mu.Lock()
		followed := fmt.Sprint(got)
		mu.Unlock()
		if want := fmt.Sprint(log.ids()); followed != want {
			t.Fatalf("round %d: followed %s before ErrClosed, want every recorded event %s", round, followed, want)
		}
	}
}

// TestFollowClosedStoreEndsWithClose: when the store cannot be read once
// the topic closed (a database shut down with the server), Follow ends
// with ErrClosed, which a client comes back after, as before it read the
// store at the close — not with ErrFellBehind, which has it start over.
func TestFollowClosedStoreEndsWithClose(t *testing.T) {
	log := &followLog{}
	tp := newTopic(t, newHub(t, nil, "a"), "storegone", &hub.TopicOptions[msg]{Replay: log})
	started := make(chan struct{})
	done := make(chan error, 1)
	after := func(cursor string) ([]sse.Event, error) {
		return nil, errors.New("store closed")
	}
	go func() {
		done <- tp.Follow(context.Background(), startSignal(started, "", nil), after, func(sse.Event) error { return nil })
	}()
	waitClosed(t, "the follower's subscription", started)
	tp.Close()
	if err := <-done; !errors.Is(err, hub.ErrClosed) || errors.Is(err, hub.ErrFellBehind) {
		t.Fatalf("Follow after the topic closed: %v, want ErrClosed", err)
	}
}
