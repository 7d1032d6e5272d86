package hub

import (
	"time"

	"google.golang.org/protobuf/proto"
)

// SetClock makes t read the time from now, where it notes when it last
// heard from each publishing node; tests use it to pass nodeTTL at once.
func SetClock[M proto.Message](t *Topic[M], now func() time.Time) {
	t.core.mu.Lock()
	t.core.now = now
	t.core.mu.Unlock()
}

// KnownNodes returns how many publishing nodes t remembers.
func KnownNodes[M proto.Message](t *Topic[M]) int {
	t.core.mu.Lock()
	defer t.core.mu.Unlock()
	return len(t.core.lastSeq)
}

// NodeTTL is nodeTTL, for tests to step over.
const NodeTTL = nodeTTL

// AppendEnvelope is appendEnvelope, for tests that speak as other nodes.
var AppendEnvelope = appendEnvelope

// FloorNodes returns how many node ids have sequence floors in the
// process-wide map (seqFloors), for tests.
func FloorNodes() int {
	seqFloors.mu.Lock()
	defer seqFloors.mu.Unlock()
	return len(seqFloors.m)
}
