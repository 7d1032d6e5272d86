package websocket

import "sync"

// Buffers come from size-classed pools and go back as soon as a connection
// has nothing buffered, so an idle connection holds no read or write buffer.
const (
	smallBufSize = 4 << 10
	// A 64 KiB payload and its header fit, so such a frame goes out from
	// one contiguous buffer with write(2): writev(2) of the header and the
	// caller's payload cost the kernel about 15% more per 64 KiB echo on a
	// single connection (bench/, perf: _copy_from_iter).
	largeBufSize = 64<<10 + maxHeaderSize
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

// getBuf returns a pooled buffer of at least min(n, largeBufSize) bytes.
func getBuf(n int) *[]byte {
	if n > smallBufSize {
		return largeBufs.Get().(*[]byte)
	}
	return smallBufs.Get().(*[]byte)
}

func putBuf(b *[]byte) {
	switch cap(*b) {
	case smallBufSize:
		smallBufs.Put(b)
	case largeBufSize:
		largeBufs.Put(b)
	}
}
