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

// hashTable maps the hash of 4 bytes to the low 16 bits of the stream
// position where they were last seen. Its size is a constant, whatever
// the window, so that a hash (the top tableBits bits of a product) indexes
// it without a bounds check or a variable shift: 5% fewer instructions on
// 1 KiB messages and 7% on 64 KiB than a table of min(2^11, window)
// entries, whose shift and length the matching loop must keep in
// registers. A window under 2^11 bytes pays 2 KiB more per Encoder (and
// compresses a little better).
type hashTable [1 << tableBits]uint16

// hash4 is the table index of the 4 bytes cv.
func hash4(cv uint32) uint32 { return cv * hashMul >> (32 - tableBits) }

// Encoder compresses one direction of a connection. The zero value is not
// usable; see NewEncoder.
//
// Concurrency: an Encoder is used by one goroutine at a time (the
// connection's writer, under its message lock).
type Encoder struct {
	window int    // how far back a match may reach: 1<<windowBits
	hist   []byte // hist[:pend] compressed (the window), hist[pend:] waiting
	pend   int
	base   int        // stream position of hist[0]
	table  *hashTable // allocated on first use

	bw bitWriter // the current message's bits not yet whole bytes
}

// NewEncoder returns an Encoder whose matches reach at most 1<<windowBits
// bytes back (8 to 15; RFC 7692 §7.1.2 lets a peer ask for less than
// DEFLATE's 32 KiB). Its buffers are allocated on first use.
func NewEncoder(windowBits int) *Encoder {
	windowBits = min(max(windowBits, 8), 15)
	return &Encoder{window: 1 << windowBits}
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
		e.table = new(hashTable)
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
	if e.window < 1<<15 {
		e.tokenizeSmall(s)
	} else {
		e.tokenize(s)
	}
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
	src, tab, win := e.hist, e.table, e.window
	i, lit := e.pend, e.pend
	// Positions are kept modulo 64 KiB, so a candidate's distance is too:
	// one beyond the window or before hist (d > i) is skipped.
	base := uint16(e.base)
	for i <= len(src)-minMatch {
		cv := load32(src, i)
		h := hash4(cv)
		pos := base + uint16(i)
		d := int(pos - tab[h])
		tab[h] = pos
		if uint(d-1) >= uint(win) || d > i || load32(src, i-d) != cv {
			i += 1 + (i-lit)>>5
			continue
		}
		c := i - d
		n := matchLen(src, c, i, min(maxMatch, len(src)-i))
		// Rarely longer backwards; i > lit fails at once after a match.
		for i > lit && c > 0 && n < maxMatch && src[c-1] == src[i-1] {
			c--
			i--
			n++
		}
		s.literals(i - lit)
		s.match(n, d)
		i += n
		lit = i
		if j := i - 2; j <= len(src)-minMatch {
			tab[hash4(load32(src, j))] = base + uint16(j)
		}
	}
	s.literals(len(src) - lit)
}

// tokenizeSmall is tokenize for windows under 32 KiB: after a match it
// hashes every position the match covers, not just the one two before its
// end. The table holds a position only when the loop looks at it, so in
// repetitive input, where most occurrences of 4 bytes lie inside matches,
// an entry is as old as the last time those bytes began a match or a
// miss, not the last time they occurred. Within 32 KiB that is usually
// near enough; with 512 bytes most candidates were out of reach and each
// miss sped up the skipping: in TestSmallWindowRatio, 256 KiB repeating
// every 251 bytes came out 17.6x larger at 10 window bits than at 15 and
// 30.4x at 9, JSON repeating every 46 bytes 3.1x at 9; hashing whole
// matches brings both below their size at 15 bits. At 15 bits it would
// cost 10% of the speed on 1 KiB messages and a third on 64 KiB ones for
// 3% fewer bytes. It is a copy of the loop rather than a branch in it
// because the branch alone, never taken, cost the 32 KiB window 2-5% more
// instructions on JSON and 13-16% on random bytes: the loop's registers
// were allocated differently. FuzzRoundTrip (window bits 8-15) covers it
// as well as tokenize.
func (e *Encoder) tokenizeSmall(s *scratch) {
	src, tab, win := e.hist, e.table, e.window
	i, lit := e.pend, e.pend
	base := uint16(e.base)
	for i <= len(src)-minMatch {
		cv := load32(src, i)
		h := hash4(cv)
		pos := base + uint16(i)
		d := int(pos - tab[h])
		tab[h] = pos
		if uint(d-1) >= uint(win) || d > i || load32(src, i-d) != cv {
			i += 1 + (i-lit)>>5
			continue
		}
		c := i - d
		n := matchLen(src, c, i, min(maxMatch, len(src)-i))
		for i > lit && c > 0 && n < maxMatch && src[c-1] == src[i-1] {
			c--
			i--
			n++
		}
		s.literals(i - lit)
		s.match(n, d)
		for j := i + 1; j < i+n && j <= len(src)-minMatch; j++ {
			tab[hash4(load32(src, j))] = base + uint16(j)
		}
		i += n
		lit = i
	}
	s.literals(len(src) - lit)
}

// load32 returns the 4 bytes at b[i:] as a little-endian word. Slicing
// exactly 4 bytes spares the checks and pointer arithmetic of b[i:] (2%
// fewer instructions on 1 KiB messages, 5% on 64 KiB; load64 likewise).
func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i : i+4]) }

// matchLen returns how many bytes from src[c:] and src[i:] agree, c < i,
// at least minMatch (known to agree) and at most limit, which does not
// reach past src. Eight bytes at a time, by index: slicing src[c:] and
// src[i:] for a comparison would cost more than most matches are long.
func matchLen(src []byte, c, i, limit int) int {
	n := minMatch
	for n+8 <= limit {
		if x := load64(src, c+n) ^ load64(src, i+n); x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < limit && src[c+n] == src[i+n] {
		n++
	}
	return n
}

// load64 returns the 8 bytes at b[i:] as a little-endian word.
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }

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
