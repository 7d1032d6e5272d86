package websocket

import (
	"testing"
	"unsafe"
)

// TestConnSize keeps Conn within the allocator's 640-byte size class,
// the next being 704: an idle connection's live heap is mostly its Conn,
// and each byte of it costs about two of resident memory at 10,000 idle
// connections (the heap grows to twice what is live between collections;
// docs/benchmarks.md, "How idle memory was brought under 4 KiB"). State
// that only some connections need belongs behind a pointer allocated on
// first use (readSpare, writeSpare, msgWriters, pingState, closeState,
// negotiation), and small fields in the padding beside others of their
// size.
//
// The class holds the Conn and the allocator's header: since Go 1.22 an
// object with pointers larger than 512 bytes carries an 8-byte header
// with its pointer map, inside its size class. A 768-byte Conn took the
// 896-byte class.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}) + mallocHeader; n > 640 {
		t.Fatalf("Conn is %d bytes with the allocator's header, over the 640-byte size class", n)
	}
}

// mallocHeader is the header the Go runtime puts before an object with
// pointers larger than 512 bytes (runtime.mallocHeaderSize).
const mallocHeader = 8

// TestPollEntrySize does the same for a Poller's entry, one per served
// connection: within the 64-byte size class, the next being 80.
func TestPollEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(pollEntry{}); n > 64 {
		t.Fatalf("pollEntry is %d bytes, over the 64-byte size class", n)
	}
}
