// Package flatemsg compresses and decompresses WebSocket messages for
// permessage-deflate (RFC 7692; decoding: decoder.go): raw DEFLATE
// (RFC 1951) where every message ends on a byte
// boundary right after an empty stored block's header, its 00 00 ff ff
// length fields left off (§7.2.1), and where, with context takeover, a
// message may refer back into the messages before it.
//
// It is built for what servers send: many connections, each with a
// stream of messages of a few hundred bytes to a few KiB. An Encoder keeps
// only its window and a 4 KiB hash table (52 KiB in all with a 32 KiB
// window, against the ~850 KiB of a general-purpose level-1 compressor),
// so the state of many connections stays in cache; matching is greedy with
// one candidate per hash, as fast DEFLATE encoders do; each block is sent
// with whichever of dynamic Huffman codes, the fixed codes or no
// compression (a stored block) is shortest for it: for messages of a few
// hundred bytes that is usually the fixed codes, whose block carries no
// header.
package flatemsg

import (
	"encoding/binary"
	"math/bits"
)

const (
	// blockMax is the most input one block holds. It bounds an Encoder's
	// buffer (window + blockMax) and the pooled token buffer; a 16 KiB
	// block amortizes a dynamic header (~60 bytes) to well under 1%.
	blockMax = 16 << 10
	// tableBits sizes the hash table: 2^11 two-byte entries, 4 KiB. A
	// message's positions land all over the table, so with many
	// connections each message's lookups miss the cache unless the
	// tables are small. On the bench/ compressed echo (64 connections,
	// 1 KiB JSON-like messages, servers in turns, 60 rounds paired) the
	// server's CPU per message was 0.80-0.91x that of a 16 KiB table
	// (13 bits) and 0.95x that of 8 KiB, for 2.7% more bytes on the wire
	// (0.2855 -> 0.2931 per payload byte); 2^10 saved nothing more and
	// cost another 4%. Single large messages lose about 2% of their
	// compression (64 KiB JSON 0.254 -> 0.259).
	tableBits = 11
	hashMul   = 0x9E3779B1 // 2^32 / golden ratio: spreads 4-byte sequences
)

// Encoder compresses one direction of a connection. The zero value is not
// usable; see NewEncoder.
//
// Concurrency: an Encoder is used by one goroutine at a time (the
// connection's writer, under its message lock).
type Encoder struct {
	window int    // how far back a match may reach: 1<<windowBits
	hist   []byte // hist[:pend] compressed (the window), hist[pend:] waiting
	pend   int
	base   int      // stream position of hist[0]
	table  []uint16 // low 16 bits of the stream position of the last 4 bytes with each hash
	shift  uint32   // 32 - table bits

	bw bitWriter // the current message's bits not yet whole bytes
}

// NewEncoder returns an Encoder whose matches reach at most 1<<windowBits
// bytes back (8 to 15; RFC 7692 §7.1.2 lets a peer ask for less than
// DEFLATE's 32 KiB). Its buffers are allocated on first use.
func NewEncoder(windowBits int) *Encoder {
	windowBits = min(max(windowBits, 8), 15)
	tb := min(tableBits, windowBits)
	return &Encoder{window: 1 << windowBits, shift: uint32(32 - tb)}
}

// Reset forgets every message written so far: the next one is compressed
// without context (no context takeover). It keeps the buffers.
func (e *Encoder) Reset() {
	// The table may keep its entries: a candidate is only ever used
	// once its bytes are checked, and hist now starts with the next
	// message, so no match reaches before it.
	e.base += len(e.hist)
	e.hist = e.hist[:0]
	e.pend = 0
	e.bw = bitWriter{}
}

// Write adds p to the current message and appends to dst whatever
// compressed bytes are complete.
func (e *Encoder) Write(dst, p []byte) []byte {
	if e.table == nil {
		e.table = make([]uint16, 1<<(32-e.shift))
		e.hist = make([]byte, 0, e.window+blockMax)
	}
	for len(p) > 0 {
		n := min(len(p), blockMax-(len(e.hist)-e.pend))
		if len(e.hist)+n > cap(e.hist) {
			e.slide()
		}
		e.hist = append(e.hist, p[:n]...)
		p = p[n:]
		if len(e.hist)-e.pend == blockMax {
			dst = e.block(dst)
		}
	}
	return dst
}

// Flush ends the message: it compresses what is waiting and appends the
// rest of the message, ending with an empty stored block's three header
// bits and the padding to a byte boundary (RFC 7692 §7.2.1; the block's
// length fields, 00 00 ff ff, are what the receiver appends). An empty
// message is the single byte 0x00 (§7.2.3.6).
func (e *Encoder) Flush(dst []byte) []byte {
	if len(e.hist) > e.pend {
		dst = e.block(dst)
	}
	e.bw.dst = dst
	e.bw.put(0, 3) // BFINAL 0, BTYPE 00: stored
	e.bw.align()
	dst = e.bw.dst
	e.bw = bitWriter{}
	return dst
}

// slide drops history beyond the window from the front of hist.
func (e *Encoder) slide() {
	keep := min(e.pend, e.window)
	drop := e.pend - keep
	e.hist = e.hist[:copy(e.hist, e.hist[drop:])]
	e.pend -= drop
	e.base += drop
}

// block compresses hist[pend:] as one block (BFINAL 0) into dst.
func (e *Encoder) block(dst []byte) []byte {
	s := scratchPool.Get().(*scratch)
	s.reset()
	e.tokenize(s)
	e.bw.dst = dst
	s.write(&e.bw, e.hist[e.pend:])
	dst = e.bw.dst
	e.bw.dst = nil
	scratchPool.Put(s)
	e.pend = len(e.hist)
	return dst
}

// tokenize finds the literals and matches of hist[pend:], greedily: at
// each position the one earlier position with the same 4-byte hash is
// checked; a match is extended forward, then backward over literals not
// yet sent. Positions are skipped faster the longer nothing matches
// (incompressible input costs little), and the position two before a
// match's end is hashed so the next match can start inside this one.
func (e *Encoder) tokenize(s *scratch) {
	src := e.hist
	end := len(src)
	i, lit := e.pend, e.pend
	base, win, shift, tab := e.base, e.window, e.shift, e.table
	for i+minMatch <= end {
		cv := binary.LittleEndian.Uint32(src[i:])
		h := (cv * hashMul) >> shift
		pos := uint16(base + i)
		c := i - int(pos-tab[h]) // distance modulo 64 KiB: checked below
		tab[h] = pos
		if c < 0 || c >= i || i-c > win || binary.LittleEndian.Uint32(src[c:]) != cv {
			i += 1 + (i-lit)>>5
			continue
		}
		n := minMatch + matchLen(src[c+minMatch:], src[i+minMatch:], maxMatch-minMatch)
		for c > 0 && i > lit && n < maxMatch && src[c-1] == src[i-1] {
			c--
			i--
			n++
		}
		s.literals(i - lit)
		s.match(n, i-c)
		i += n
		lit = i
		if j := i - 2; j+minMatch <= end {
			tab[(binary.LittleEndian.Uint32(src[j:])*hashMul)>>shift] = uint16(base + j)
		}
	}
	s.literals(end - lit)
}

// matchLen returns how many leading bytes of a and b agree, at most
// min(len(b), limit); a is at least as long as b.
func matchLen(a, b []byte, limit int) int {
	if len(b) > limit {
		b = b[:limit]
	}
	n := 0
	for len(b)-n >= 8 {
		if x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:]); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// bitWriter packs DEFLATE's LSB-first bit stream onto dst.
type bitWriter struct {
	dst  []byte
	bits uint64
	n    uint
}

// put writes the low nb bits of v; nb+pending stays under 64 because
// pending is kept under 32 and no single put exceeds 31 bits.
func (w *bitWriter) put(v uint64, nb uint) {
	w.bits |= v << w.n
	w.n += nb
	if w.n >= 32 {
		w.dst = binary.LittleEndian.AppendUint32(w.dst, uint32(w.bits))
		w.bits >>= 32
		w.n -= 32
	}
}

// align pads with zero bits to a byte boundary and writes out every
// whole byte.
func (w *bitWriter) align() {
	for w.n > 0 {
		w.dst = append(w.dst, byte(w.bits))
		w.bits >>= 8
		w.n -= min(w.n, 8)
	}
	w.bits = 0
}
