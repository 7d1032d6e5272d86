package chatserver

import (
	"errors"
	"fmt"
	"sync"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// activityLog is a room's recent activity as recorded SSE events: the
// room topic's replay store (hub.TopicOptions.Replay), which Watch reads
// with a cursor. Beyond sse.Store it gives the recent history a fresh
// watcher starts with (Tail) and reads from a cursor that may be the
// start (After).
//
// Concurrency: safe for concurrent use; mu guards every field.
type activityLog struct {
	mu     sync.Mutex
	events []sse.Event // circular, capacity fixed; the oldest at head
	head   int
	n      int
	seq    uint64            // sequence number of the last event appended
	index  map[string]uint64 // id -> sequence number, for the events held
}

func newActivityLog(capacity int) *activityLog {
	return &activityLog{events: make([]sse.Event, capacity), index: make(map[string]uint64, capacity)}
}

// Append records e. The hub always gives an id ("<node>-<seq>"); one the
// log already holds is refused.
func (l *activityLog) Append(e sse.Event) (sse.Event, error) {
	if e.ID == "" {
		return e, errors.New("chat activity: event without id")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.index[e.ID] != 0 {
		return e, fmt.Errorf("%w %q", sse.ErrDuplicateID, e.ID)
	}
	if l.n == len(l.events) {
		delete(l.index, l.events[l.head].ID)
		l.events[l.head] = sse.Event{}
		l.head = (l.head + 1) % len(l.events)
		l.n--
	}
	l.events[(l.head+l.n)%len(l.events)] = e
	l.n++
	l.seq++
	l.index[e.ID] = l.seq
	return e, nil
}

// Since returns the events recorded after id (sse.Store).
func (l *activityLog) Since(id string) ([]sse.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq, ok := l.index[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", sse.ErrUnknownID, id)
	}
	return l.lastLocked(int(l.seq - seq)), nil
}

// After is Since, with "" meaning before the oldest event held.
func (l *activityLog) After(cursor string) ([]sse.Event, error) {
	if cursor == "" {
		return l.Tail(len(l.events)), nil
	}
	return l.Since(cursor)
}

// Tail returns the last n events held (fewer if it holds fewer), oldest
// first.
func (l *activityLog) Tail(n int) []sse.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastLocked(min(n, l.n))
}

func (l *activityLog) lastLocked(k int) []sse.Event {
	out := make([]sse.Event, k)
	for i := range k {
		out[i] = l.events[(l.head+l.n-k+i)%len(l.events)]
	}
	return out
}
