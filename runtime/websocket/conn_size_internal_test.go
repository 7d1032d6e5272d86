package websocket

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps Conn within the allocator's 768-byte size class,
// the next being 896: an idle connection's live heap is mostly its Conn,
// and each byte of it costs about two of resident memory at 10,000 idle
// connections (the heap grows to twice what is live between collections;
// docs/benchmarks.md, "How idle memory was brought under 4 KiB"). State
// that only some connections need belongs behind a pointer allocated on
// first use (readSpare, writeSpare, msgWriters), and small fields in the
// padding beside others of their size.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 768 {
		t.Fatalf("Conn is %d bytes, over the 768-byte size class", n)
	}
}

// TestPollEntrySize does the same for a Poller's entry, one per served
// connection: within the 64-byte size class, the next being 80.
func TestPollEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(pollEntry{}); n > 64 {
		t.Fatalf("pollEntry is %d bytes, over the 64-byte size class", n)
	}
}
