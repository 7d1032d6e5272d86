package sse_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// ringIDPattern is the form of the ids a Ring assigns: its epoch (8
// lowercase hex digits and "-") and a decimal sequence number.
var ringIDPattern = regexp.MustCompile(`^([0-9a-f]{8}-)([1-9][0-9]*)$`)

// ringEpoch returns the epoch of the ids r assigns ("3f9a1c2e-"), read
// from r.Last(), which must be an id r assigned.
func ringEpoch(t testing.TB, r *sse.Ring) string {
	t.Helper()
	m := ringIDPattern.FindStringSubmatch(r.Last())
	if m == nil {
		t.Fatalf("Last = %q, not an id a Ring assigns", r.Last())
	}
	return m[1]
}

// ringSeq returns the sequence number of an id a Ring assigned, -1 for
// any other id.
func ringSeq(id string) int {
	m := ringIDPattern.FindStringSubmatch(id)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return -1
	}
	return n
}

// appendN appends n events with assigned ids to r and returns the ids.
func appendN(t testing.TB, r *sse.Ring, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		e, err := r.Append(sse.Event{Data: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// TestRingIDsUniquePerRing: two Rings, as two processes (a process and
// its restart, or two replicas) have, never assign the same id, so an id
// of one is unknown to the other (ErrUnknownID), including when both
// appended as many events. Each Ring numbered its events "1", "2", …,
// and a client that saw "2" of a process that went on to "5" resumed
// from the restarted process's own "2": Since gave the new "3" without
// an error, and the client silently lost the old 3–5 and the new 1–2.
func TestRingIDsUniquePerRing(t *testing.T) {
	a, b := sse.NewRing(16), sse.NewRing(16)
	idsA := appendN(t, a, 5) // the process before the restart
	idsB := appendN(t, b, 3) // the process after it
	// The walkthrough: the client saw A's "2"; B has 3 events.
	if evs, err := b.Since(idsA[1]); !errors.Is(err, sse.ErrUnknownID) {
		t.Errorf("B.Since(%q), an id of A = %d events, %v; want ErrUnknownID", idsA[1], len(evs), err)
	}
	// Both rings at the same count: still no id in common.
	idsB = append(idsB, appendN(t, b, 2)...)
	for _, c := range []struct {
		name string
		ids  []string
		r    *sse.Ring
	}{{"A's id to B", idsA, b}, {"B's id to A", idsB, a}} {
		for _, id := range c.ids {
			if evs, err := c.r.Since(id); !errors.Is(err, sse.ErrUnknownID) {
				t.Errorf("%s: Since(%q) = %d events, %v; want ErrUnknownID", c.name, id, len(evs), err)
			}
		}
	}
	// Each ring still knows its own.
	if evs, err := b.Since(idsB[1]); err != nil || len(evs) != 3 || evs[0].ID != idsB[2] {
		t.Errorf("B.Since(%q), its own id = %v, %v; want its 3 later events", idsB[1], evs, err)
	}
	for _, id := range append(append([]string(nil), idsA...), idsB...) {
		if ringSeq(id) < 0 {
			t.Fatalf("assigned id %q: want 8 hex digits, \"-\" and a sequence number", id)
		}
	}
	if ringEpoch(t, a) == ringEpoch(t, b) {
		t.Errorf("two Rings share the epoch %q", ringEpoch(t, a))
	}
}

// TestStreamResumeFromAnotherRing: a client resuming with the id of a
// process that has since restarted (its Ring is gone; the new one has
// numbered as many events or more) gets a gap, and the handler's
// snapshot, instead of a replay from the new ring's event of the same
// number. The reset carries the new ring's newest id, as docs/sse.md's
// example does, so the client's next reconnection resumes without a gap.
func TestStreamResumeFromAnotherRing(t *testing.T) {
	before, after := sse.NewRing(16), sse.NewRing(16)
	old := appendN(t, before, 5)
	appendN(t, after, 5)

	// NewStream directly: a gap, nothing replayed.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Last-Event-ID", old[1])
	rec := httptest.NewRecorder()
	s, err := sse.NewStream(rec, req, &sse.StreamOptions{Replay: after})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Gap() || s.LastEventID() != old[1] || rec.Body.String() != ": open\n\n" {
		t.Errorf("resuming from %q of another ring: Gap %v, LastEventID %q, wrote %q; want a gap and no replay",
			old[1], s.Gap(), s.LastEventID(), rec.Body.String())
	}
	s.Close()

	// Through a client: the handler's reset, then a clean resumption
	// from the id it carries.
	gaps := make(chan bool, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Replay: after})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		gaps <- s.Gap()
		if s.Gap() {
			s.Send(sse.Event{ID: after.Last(), Type: "reset", Data: "snapshot"})
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(lastID string) []sse.Event {
		t.Helper()
		sess, err := sse.Connect(ctx, srv.URL, &sse.ClientOptions{LastEventID: lastID, MaxReconnectionAttempts: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		var evs []sse.Event
		for {
			ev, err := sess.Next()
			if errors.Is(err, io.EOF) {
				return evs
			}
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	evs := read(old[1])
	if gap := <-gaps; !gap || len(evs) != 1 || evs[0].Type != "reset" || evs[0].ID != after.Last() {
		t.Fatalf("resuming from %q of another ring: Gap %v, events %+v; want a gap and only the reset, id %q",
			old[1], gap, evs, after.Last())
	}
	next := appendN(t, after, 1)
	evs = read(evs[0].ID)
	if gap := <-gaps; gap || len(evs) != 1 || evs[0].ID != next[0] {
		t.Fatalf("resuming from the reset's id: Gap %v, events %+v; want %q replayed", gap, evs, next[0])
	}
}
