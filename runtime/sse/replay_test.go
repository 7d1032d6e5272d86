package sse_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestRingLast: Last is a cursor for Since. On an empty ring it is "",
// which Since takes as the start of the ring until the ring first evicts;
// otherwise it is the newest id held, and Since from it returns exactly
// what was appended after the call. A follower starting from Last (as
// hub.Topic.Follow does for a fresh client) thus misses nothing and gets
// nothing twice, or is told it fell behind.
func TestRingLast(t *testing.T) {
	ids := func(evs []sse.Event) string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return fmt.Sprint(out)
	}
	r := sse.NewRing(3)
	if last := r.Last(); last != "" {
		t.Fatalf("empty ring: Last = %q", last)
	}
	if got, err := r.Since(""); err != nil || len(got) != 0 {
		t.Fatalf("empty ring: Since(\"\") = %v, %v", got, err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := r.Append(sse.Event{ID: id, Data: id}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := r.Since(""); err != nil || ids(got) != "[a b]" {
		t.Fatalf("Since(\"\") before any eviction = %v, %v", ids(got), err)
	}
	last := r.Last()
	if last != "b" {
		t.Fatalf("Last = %q, want b", last)
	}
	if _, err := r.Append(sse.Event{Data: "x"}); err != nil { // a generated id
		t.Fatal(err)
	}
	got, err := r.Since(last)
	if err != nil || len(got) != 1 || got[0].Data != "x" || r.Last() != got[0].ID {
		t.Fatalf("Since(%q) = %v, %v; Last = %q", last, got, err, r.Last())
	}
	// The first eviction loses the start of the ring, and with it "".
	if _, err := r.Append(sse.Event{ID: "d", Data: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Since(""); !errors.Is(err, sse.ErrUnknownID) {
		t.Fatalf("Since(\"\") after an eviction: %v, want ErrUnknownID", err)
	}
	if r.Last() != "d" {
		t.Fatalf("Last after wrapping = %q, want d", r.Last())
	}

	// Last is safe alongside Append (go test -race).
	r = sse.NewRing(4)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			if _, err := r.Append(sse.Event{Data: "e"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 1000 {
		if l := r.Last(); l != "" {
			if _, err := r.Since(l); err != nil && !errors.Is(err, sse.ErrUnknownID) {
				t.Error(err)
				break
			}
		}
	}
	wg.Wait()
	if r.Last() != "1000" {
		t.Fatalf("Last after 1000 appends = %q", r.Last())
	}
}
