//go:build !race

// Allocation counts are only meaningful without the race detector, as in
// runtime/websocket: scripts/test.sh runs the Allocs tests in a pass of
// their own.

package sse_test

import (
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// cycleReader repeats b forever.
type cycleReader struct {
	b   []byte
	off int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// TestParseSteadyStateAllocs: once a parser is warm, an event allocates
// only the strings it returns (its Data here) and a hidden heartbeat
// comment nothing: the read and data buffers are reused, up to the 64 KiB
// a Parser keeps between events. Releasing larger buffers after an event
// must not cost an allocation per mid-sized event: 40 KiB lines must not
// grow the read buffer past 64 KiB, to be released and grown again.
func TestParseSteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		allocs float64
	}{
		{"small events", "data: hello\n\n", 1},
		{"multi-line events", "data: a\ndata: b\n\n", 1},
		{"heartbeats", ": heartbeat\n\n: heartbeat\n\ndata: xy\n\n", 1},
		{"40 KiB events", "data: " + strings.Repeat("x", 40<<10) + "\n\n", 1},
		// A type named again reuses its string; an id that changes costs
		// its own string (each was two allocations, the field's bytes
		// made valid UTF-8 and their string).
		{"typed events", "event: tick\ndata: x\n\n", 1},
		{"typed events, ids changing", "event: tick\nid: 1\ndata: a\n\nevent: tick\nid: 2\ndata: b\n\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sse.NewParser(&cycleReader{b: []byte(tc.stream)}, nil)
			// Ten events a run: AllocsPerRun truncates to whole
			// allocations, which would hide one every few events.
			const events = 10
			next := func() {
				for range events {
					if _, err := p.Next(); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 10 { // warm up: buffers grown to their steady size
				next()
			}
			if n := testing.AllocsPerRun(300, next) / events; n > tc.allocs {
				t.Errorf("%v allocations per event, want at most %v", n, tc.allocs)
			}
		})
	}
}
