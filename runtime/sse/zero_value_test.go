package sse_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestZeroRing checks that a zero Ring works as NewRing(DefaultRingCapacity):
// its first Append drew no epoch and indexed a slice of capacity 0, and
// panicked.
func TestZeroRing(t *testing.T) {
	var r sse.Ring
	if got, err := r.Since(""); err != nil || len(got) != 0 {
		t.Fatalf("empty zero Ring: Since(\"\") = %v, %v; want none, nil", got, err)
	}
	if r.Last() != "" || r.Len() != 0 {
		t.Fatalf("empty zero Ring: Last %q, Len %d; want \"\", 0", r.Last(), r.Len())
	}
	first, err := r.Append(sse.Event{Data: "a"})
	if err != nil {
		t.Fatal(err)
	}
	m := ringIDPattern.FindStringSubmatch(first.ID)
	if m == nil || m[2] != "1" {
		t.Fatalf("first id %q: want <8 hex digits>-1", first.ID)
	}
	epoch := m[1]
	for i := 2; i <= sse.DefaultRingCapacity+1; i++ {
		e, err := r.Append(sse.Event{Data: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if want := epoch + strconv.Itoa(i); e.ID != want {
			t.Fatalf("id %q, want %q", e.ID, want)
		}
	}
	if r.Len() != sse.DefaultRingCapacity {
		t.Fatalf("Len %d after %d appends, want DefaultRingCapacity %d", r.Len(), sse.DefaultRingCapacity+1, sse.DefaultRingCapacity)
	}
	// The first event was evicted last: a client resuming from it gets
	// everything held.
	got, err := r.Since(first.ID)
	if err != nil || len(got) != sse.DefaultRingCapacity {
		t.Fatalf("Since(first) = %d events, %v; want %d, nil", len(got), err, sse.DefaultRingCapacity)
	}
	if _, err := r.Append(sse.Event{ID: got[0].ID}); err == nil {
		t.Fatal("a held id appended again: no error")
	}

	// Two zero Rings number their events under different epochs.
	var r2 sse.Ring
	e2, err := r2.Append(sse.Event{Data: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if e2.ID == first.ID {
		t.Fatalf("two zero Rings assigned the same first id %q", e2.ID)
	}
}

// TestZeroRingConcurrent starts a zero Ring from several goroutines at
// once: the lazy start is under the ring's lock, so one epoch is drawn and
// every id is unique (run with -race).
func TestZeroRingConcurrent(t *testing.T) {
	var r sse.Ring
	const goroutines, each = 8, 50
	ids := make(chan string, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				e, err := r.Append(sse.Event{Data: "x"})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- e.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := make(map[string]bool)
	epochs := make(map[string]bool)
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %q assigned twice", id)
		}
		seen[id] = true
		m := ringIDPattern.FindStringSubmatch(id)
		if m == nil {
			t.Fatalf("id %q: not <epoch>-<seq>", id)
		}
		epochs[m[1]] = true
	}
	if len(seen) != goroutines*each || len(epochs) != 1 {
		t.Fatalf("%d ids under %d epochs, want %d under 1", len(seen), len(epochs), goroutines*each)
	}
}

// TestZeroStream calls each exported method of a Stream not created with
// NewStream: Send, SendPrepared, Comment and CloseWith dereferenced the
// nil context, Close closed a nil channel, Err said the stream was live
// and Context was nil. The writes, Close, CloseWith and Err now return an error wrapping
// ErrStreamClosed that names NewStream, Context is done, and the rest
// return their zero results.
func TestZeroStream(t *testing.T) {
	p, err := sse.Prepare(sse.Event{Data: "x"})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name   string
		call   func(s *sse.Stream) error
		result bool // the call returns no error: call checks its zero result
	}{
		{"Send", func(s *sse.Stream) error { return s.Send(sse.Event{Data: "x"}) }, false},
		{"SendPrepared", func(s *sse.Stream) error { return s.SendPrepared(p) }, false},
		{"Comment", func(s *sse.Stream) error { return s.Comment("x") }, false},
		{"Err", (*sse.Stream).Err, false},
		{"CloseWith", func(s *sse.Stream) error { return s.CloseWith(sse.Event{Data: "end"}) }, false},
		{"Close", (*sse.Stream).Close, false},
		{"Close again", (*sse.Stream).Close, false},
		{"SetWriteDeadline", func(s *sse.Stream) error { s.SetWriteDeadline(time.Now()); return nil }, true},
		{"LastEventID", func(s *sse.Stream) error {
			if id := s.LastEventID(); id != "" {
				t.Errorf("LastEventID: %q", id)
			}
			return nil
		}, true},
		{"Gap", func(s *sse.Stream) error {
			if s.Gap() {
				t.Error("Gap: true")
			}
			return nil
		}, true},
		{"Context", func(s *sse.Stream) error {
			ctx := s.Context()
			if ctx == nil || ctx.Err() == nil || !errors.Is(context.Cause(ctx), sse.ErrStreamClosed) {
				t.Errorf("Context: %v; want one done, its cause wrapping ErrStreamClosed", ctx)
			}
			return nil
		}, true},
	}
	for _, zero := range []struct {
		name   string
		stream func() *sse.Stream
	}{
		{"new", func() *sse.Stream { return new(sse.Stream) }},
		// One zero Stream through every call, so each finds what the
		// calls before it left.
		{"shared", func() func() *sse.Stream {
			var s sse.Stream
			return func() *sse.Stream { return &s }
		}()},
	} {
		for _, c := range calls {
			t.Run(zero.name+"/"+c.name, func(t *testing.T) {
				done := make(chan error, 1)
				go func() { done <- c.call(zero.stream()) }()
				select {
				case err := <-done:
					if c.result {
						return // checked by call
					}
					if !errors.Is(err, sse.ErrStreamClosed) || !strings.Contains(err.Error(), "NewStream") {
						t.Fatalf("%s = %v; want an error wrapping ErrStreamClosed that names NewStream", c.name, err)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%s did not return", c.name)
				}
			})
		}
	}
}
