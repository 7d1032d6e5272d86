package hub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// uncomparableStore is a replay store whose type == cannot compare.
type uncomparableStore struct {
	*sse.Ring
	_ []int
}

// boxedStore is a comparable type whose == panics when it holds an
// uncomparableStore: comparing the interface fields compares those.
type boxedStore struct{ sse.Store }

// TestReplayStoreOneTopic: one TopicOptions value reused for several
// topics used to share its Replay store, which mixed their events (a
// client resuming on one was replayed the other's; a Ring refused the
// second topic's ids as duplicates, so its SSE subscribers lost them).
// NewTopic refuses a store a live topic of the hub uses with
// ErrReplayInUse, naming that topic; the first topic's Close releases it.
// A store that cannot be compared is not checked, and comparing it does
// not panic.
func TestReplayStoreOneTopic(t *testing.T) {
	h := newHub(t, nil, "n")
	opts := &hub.TopicOptions[msg]{Replay: sse.NewRing(64)}
	eur := newTopic(t, h, "ticks.EURUSD", opts)
	if _, err := hub.NewTopic(h, "ticks.GBPUSD", opts); !errors.Is(err, hub.ErrReplayInUse) || !strings.Contains(err.Error(), `"ticks.EURUSD"`) {
		t.Fatalf("second topic on one store: %v, want ErrReplayInUse naming ticks.EURUSD", err)
	}
	// The refused name is free: nothing was registered under it.
	newTopic(t, h, "ticks.GBPUSD", nil)

	if err := eur.Close(); err != nil {
		t.Fatal(err)
	}
	newTopic(t, h, "ticks.USDJPY", opts) // released by Close

	// Topics without recording share no store.
	off := &hub.TopicOptions[msg]{DisableReplay: true, Replay: sse.NewRing(4)}
	newTopic(t, h, "off.1", off)
	newTopic(t, h, "off.2", off)

	for _, tc := range []struct {
		name  string
		store sse.Store
	}{
		{"uncomparable", uncomparableStore{Ring: sse.NewRing(4)}},
		{"boxed", boxedStore{uncomparableStore{Ring: sse.NewRing(4)}}},
	} {
		o := &hub.TopicOptions[msg]{Replay: tc.store}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("NewTopic with the %s store panicked: %v", tc.name, p)
				}
			}()
			newTopic(t, h, tc.name+".1", o)
			newTopic(t, h, tc.name+".2", o)
		}()
	}
}
