package sse_test

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
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
	if r.Last() != ringEpoch(t, r)+"1000" {
		t.Fatalf("Last after 1000 appends = %q", r.Last())
	}
}

// TestRingResumeFromLastEvicted: a client exactly capacity events behind
// resumes from the id the ring evicted last, and every event it missed
// is still held, so Since returns them all rather than ErrUnknownID (the
// Stream.Gap NewStream would report). It used to fail, and a Ring of
// capacity 1 could never replay anything. An id evicted before that one
// is still a gap.
func TestRingResumeFromLastEvicted(t *testing.T) {
	for _, capacity := range []int{1, 3} {
		r := sse.NewRing(capacity)
		var ids []string
		for i := range capacity + 2 {
			e, err := r.Append(sse.Event{Data: fmt.Sprint(i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		// Held: the last capacity ids; ids[1] was evicted last, ids[0]
		// before it.
		held := ids[2:]
		evs, err := r.Since(ids[1])
		var got []string
		for _, e := range evs {
			got = append(got, e.ID)
		}
		if err != nil || !reflect.DeepEqual(got, held) {
			t.Errorf("capacity %d: Since(%q), the id evicted last = %q, %v; want every event held %q", capacity, ids[1], got, err, held)
		}
		if _, err := r.Since(ids[0]); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("capacity %d: Since(%q), evicted earlier = %v, want ErrUnknownID", capacity, ids[0], err)
		}
		if _, err := r.Since(""); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("capacity %d: Since(\"\") after evictions = %v, want ErrUnknownID", capacity, err)
		}
	}
}

// TestRingConcurrent: Append, Since, Last and Len from several goroutines
// at once (go test -race), at capacities where every append evicts: a
// reader following the ring from Last gets contiguous ids, each once, or
// ErrUnknownID, and Len never exceeds the capacity.
func TestRingConcurrent(t *testing.T) {
	for _, capacity := range []int{1, 2, 7} {
		r := sse.NewRing(capacity)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for i := range 2000 {
					if _, err := r.Append(sse.Event{Data: fmt.Sprint(i)}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				for range 2000 {
					cur := r.Last()
					evs, err := r.Since(cur)
					if err != nil && !errors.Is(err, sse.ErrUnknownID) {
						t.Error(err)
						return
					}
					prev := cur
					for _, e := range evs {
						if prev != "" && ringSeq(e.ID) != ringSeq(prev)+1 {
							t.Errorf("capacity %d: Since(%q) gave %q after %q", capacity, cur, e.ID, prev)
							return
						}
						prev = e.ID
					}
					if n := r.Len(); n > capacity {
						t.Errorf("capacity %d: Len %d", capacity, n)
						return
					}
				}
			})
		}
		wg.Wait()
		if last := r.Last(); last != ringEpoch(t, r)+"4000" || r.Len() != capacity {
			t.Errorf("capacity %d: after 4000 appends Last = %q, Len = %d", capacity, last, r.Len())
		}
	}
}

// TestRingGrowsOnDemand guards the memory of an empty Ring: it used to
// allocate all its capacity (DefaultRingCapacity events and an index map
// sized for them, about 134 KiB) in NewRing, so every hub topic paid for
// it with no SSE subscriber and nothing published. A new Ring now costs
// a few hundred bytes, and grows as events arrive up to its capacity,
// where it holds, replays and evicts exactly as before.
func TestRingGrowsOnDemand(t *testing.T) {
	const rings = 1000
	keep := make([]*sse.Ring, rings)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = sse.NewRing(0)
	}
	runtime.ReadMemStats(&after)
	// TotalAlloc only grows, whatever the collector does; the bound is
	// generous (it was ~134 KiB a ring) for whatever else allocates.
	if per := (after.TotalAlloc - before.TotalAlloc) / rings; per > 4<<10 {
		t.Errorf("NewRing(0) allocated %d bytes a ring, want under 4 KiB", per)
	}
	runtime.KeepAlive(keep)

	// Growing past every step into the circular phase: held events, Len,
	// Last and Since stay those of a ring of that capacity.
	const capacity = 100
	r := sse.NewRing(capacity)
	var epoch string
	id := func(seq int) string { return epoch + strconv.Itoa(seq) }
	for i := 1; i <= 3*capacity+7; i++ {
		e, err := r.Append(sse.Event{Data: "e"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			epoch = ringEpoch(t, r)
		}
		if want := id(i); e.ID != want || r.Last() != want {
			t.Fatalf("append %d: id %q, Last %q", i, e.ID, r.Last())
		}
		held := min(i, capacity)
		if r.Len() != held {
			t.Fatalf("append %d: Len %d, want %d", i, r.Len(), held)
		}
		// From the oldest held id, every later event; from the id before
		// it (evicted last, or "" before any eviction), all held.
		oldest := i - held + 1
		from := ""
		if oldest > 1 {
			from = id(oldest - 1)
		}
		for _, c := range []struct {
			id   string
			want int
		}{{from, held}, {id(oldest), held - 1}} {
			evs, err := r.Since(c.id)
			if err != nil || len(evs) != c.want {
				t.Fatalf("append %d: Since(%q) = %d events, %v; want %d", i, c.id, len(evs), err, c.want)
			}
			for j, e := range evs {
				if want := id(i - c.want + 1 + j); e.ID != want {
					t.Fatalf("append %d: Since(%q)[%d] = %q, want %q", i, c.id, j, e.ID, want)
				}
			}
		}
		if oldest > 2 {
			if _, err := r.Since(id(oldest - 2)); !errors.Is(err, sse.ErrUnknownID) {
				t.Fatalf("append %d: Since an id evicted earlier: %v, want ErrUnknownID", i, err)
			}
		}
	}
}
