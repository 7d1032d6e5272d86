//go:build !race

package sse_test

import (
	"testing"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestRingAppendAllocs: a full Ring's Append allocates only the id it
// assigns, whether the Ring came from NewRing or started as a zero value
// (whose first Append sets it up: the steady path only checks for that).
func TestRingAppendAllocs(t *testing.T) {
	var zero sse.Ring
	for name, r := range map[string]*sse.Ring{"NewRing": sse.NewRing(8), "zero": &zero} {
		t.Run(name, func(t *testing.T) {
			for range 2 * sse.DefaultRingCapacity { // full, evicting from now on
				if _, err := r.Append(sse.Event{Data: "x"}); err != nil {
					t.Fatal(err)
				}
			}
			n := testing.AllocsPerRun(1000, func() {
				if _, err := r.Append(sse.Event{Data: "x"}); err != nil {
					t.Fatal(err)
				}
			})
			if n > 1 {
				t.Fatalf("Append of a full ring: %v allocations, want 1 (the id)", n)
			}
		})
	}
}
