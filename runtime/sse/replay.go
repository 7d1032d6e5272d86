package sse

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
)

// Store records sent events so that a client reconnecting with
// Last-Event-ID (WHATWG HTML §9.2.4) can be given every event it missed.
// Ring is the in-memory implementation; implement Store to keep events
// elsewhere (a database, a log shared by several nodes).
//
// The publisher appends each event once and then sends the returned event
// (with its id) to the live streams; NewStream replays from the store.
//
// Concurrency: implementations must be safe for concurrent use.
type Store interface {
	// Append records e and returns it as recorded: an empty e.ID is
	// replaced with a fresh id unique within the store.
	Append(e Event) (Event, error)

	// Since returns, oldest first, every event recorded after the event
	// with the given id. It returns an error wrapping ErrUnknownID when
	// it cannot (the id was evicted with events after it, or never
	// recorded).
	Since(id string) ([]Event, error)
}

// DefaultRingCapacity is the capacity of a Ring created with a capacity
// of zero or less.
const DefaultRingCapacity = 1024

// Ring is a bounded in-memory Store holding the most recent events. When
// it is full, appending evicts the oldest event; a client resuming from
// an evicted id gets ErrUnknownID, which NewStream reports as
// Stream.Gap, except from the id evicted last: the client missed exactly
// the events held, and gets them all.
//
// Ids it assigns are the ring's epoch, 8 lowercase hex digits drawn at
// random by NewRing, a "-" and a decimal sequence number starting at 1
// ("3f9a1c2e-1", "3f9a1c2e-2", …; with a "'" suffix in the unlikely case
// a caller-given id already took one); ids given by the caller are kept
// but must be unique among the events it holds. The epoch makes assigned
// ids unique per Ring instance: a restarted process, or another replica
// behind a load balancer without stickiness, numbers its events afresh,
// and without the epoch took a client's Last-Event-ID for one of its own
// events and replayed from there, silently losing the events in between
// (a client that saw "2" of a process that reached "5", resuming from a
// restarted one at "3", lost the old 3–5 and the new 1–2 with no Gap).
// An id from another Ring is unknown (ErrUnknownID), so NewStream
// reports a gap and the handler sends its snapshot.
//
// Cost: Append is O(1), amortised while the ring grows; Since is
// O(events returned) plus one map lookup; memory is the events held plus
// one map entry per event. A new Ring holds nothing (about 130 bytes): it
// grows as events arrive, up to its capacity, so that a hub topic nobody
// publishes on does not hold a full ring's memory (allocated up front, a
// Ring of DefaultRingCapacity took 134 KiB).
//
// The zero Ring is ready to use, as NewRing(DefaultRingCapacity): its
// first Append draws its epoch.
//
// Concurrency: a Ring is safe for concurrent use; a mutex guards it.
type Ring struct {
	mu sync.Mutex
	// events holds the events: it grows by doubling until it holds
	// capacity events, the oldest at index 0; from then on it is
	// circular, the oldest at head, and stays full.
	events   []Event
	capacity int
	head     int
	epoch    string            // prefix of assigned ids: 8 hex digits and "-"
	seq      uint64            // sequence number of the last appended event
	index    map[string]uint64 // id -> sequence number
	// evicted is the id of the event evicted last: a client resuming
	// from it missed exactly the events held, so Since can still serve
	// it (without it, a client capacity events behind was told of a gap
	// and a Ring of capacity 1 never replayed anything).
	evicted string
}

// NewRing returns a Ring holding up to capacity events (default
// DefaultRingCapacity when capacity <= 0). It allocates no room for
// events: the ring grows as they arrive. It draws the ring's epoch, the
// prefix of the ids it assigns, from crypto/rand, so that no two Rings
// (in this process or another, before a restart or after) assign the
// same ids, short of a 1 in 2³² coincidence.
func NewRing(capacity int) *Ring {
	r := &Ring{}
	r.init(capacity)
	return r
}

// newEpoch returns 8 random lowercase hex digits and "-". crypto/rand's
// Read returns no error since Go 1.24 (it crashes the program instead).
func newEpoch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

// Append records e, assigning an id when e.ID is empty. It rejects events
// that could not be encoded (see AppendEvent) and ids it already holds.
func (r *Ring) Append(e Event) (Event, error) {
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index == nil {
		r.init(DefaultRingCapacity)
	}
	seq := r.seq + 1
	if e.ID == "" {
		// Built on the stack and copied once: one allocation, as
		// strconv.FormatUint alone made.
		var buf [32]byte
		e.ID = string(strconv.AppendUint(append(buf[:0], r.epoch...), seq, 10))
		for r.index[e.ID] != 0 { // a caller-given id may collide
			e.ID += "'"
		}
	} else if r.index[e.ID] != 0 {
		return Event{}, fmt.Errorf("%w %q", ErrDuplicateID, e.ID)
	}
	if len(r.events) < r.capacity {
		// Still growing: nothing was evicted, so head is 0 and the
		// events fill the slice in order.
		if len(r.events) == cap(r.events) {
			r.grow()
		}
		r.events = append(r.events, e)
	} else {
		// Full, as it stays from now on: e takes the oldest's slot.
		r.evicted = r.events[r.head].ID
		delete(r.index, r.evicted)
		r.events[r.head] = e
		r.head = (r.head + 1) % len(r.events)
	}
	r.seq = seq
	r.index[e.ID] = seq
	return e, nil
}

// init sets up an empty ring of capacity (DefaultRingCapacity when
// capacity <= 0): for NewRing, and for a zero Ring on its first Append
// (the other methods read an empty ring as they find it), the caller
// then holding r.mu.
func (r *Ring) init(capacity int) {
	if capacity <= 0 {
		capacity = DefaultRingCapacity
	}
	r.capacity = capacity
	r.epoch = newEpoch()
	r.index = make(map[string]uint64)
}

// grow doubles the room for events, up to the capacity and no further: a
// full ring holds exactly capacity events (append's own growth would
// overshoot it by up to a quarter). Amortised, Append stays O(1).
func (r *Ring) grow() {
	events := make([]Event, len(r.events), min(max(4, 2*cap(r.events)), r.capacity))
	copy(events, r.events)
	r.events = events
}

// Since returns the events recorded after id, oldest first. The id of
// the event evicted last is still known: Since returns every event held
// for it, since those are all that came after it. The id "" stands for
// the start of the ring, before its first event: Since("") returns every
// event appended so far, as long as the ring has evicted none (it fails
// with ErrUnknownID once it has, as for an id evicted earlier). That is
// the cursor Last gives for an empty ring.
func (r *Ring) Since(id string) ([]Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.events)
	seq, ok := r.index[id]
	switch {
	case ok:
	case id == "" && r.seq == uint64(n): // nothing evicted yet
	case id != "" && id == r.evicted:
		seq = r.seq - uint64(n) // held events follow it without a gap
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownID, id)
	}
	later := int(r.seq - seq)
	out := make([]Event, later)
	for i := range later {
		out[i] = r.events[(r.head+n-later+i)%n]
	}
	return out, nil
}

// Last returns the id of the newest event held, "" when the ring is
// empty. It is a cursor for Since: a follower that starts from it (a
// fresh client, say, of hub.Topic.Follow) gets from Since every event
// appended after the call, as long as the ring still holds it.
func (r *Ring) Last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.events)
	if n == 0 {
		return ""
	}
	return r.events[(r.head+n-1)%n].ID
}

// Len returns the number of events held.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}
