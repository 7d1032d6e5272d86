package flatemsg

import (
	"encoding/binary"
	"slices"
	"sync"
)

// scratch is one block's tokens and symbol counts. Pooled: it is needed
// only inside Write and Flush, so an idle connection keeps none.
type scratch struct {
	// tokens: a run of n literals (n, taken in order from the block's
	// input), or matchFlag | (length-3)<<16 | (distance-1).
	tokens  []uint32
	matches int
	lit     [numLitLen]uint32
	dist    [numDist]uint32
	extra   int // extra bits of all matches (the same under every code)
	work    [numLitLen + numDist]uint64
	code    dynCode
}

const matchFlag = 1 << 31

var scratchPool = sync.Pool{New: func() any {
	return &scratch{tokens: make([]uint32, 0, blockMax)}
}}

func (s *scratch) reset() {
	s.tokens = s.tokens[:0]
	s.matches = 0
	clear(s.lit[:])
	clear(s.dist[:])
	s.extra = 0
}

// literals records a run of n literals; they are counted later (count),
// and not at all in a block sent stored.
func (s *scratch) literals(n int) {
	if n > 0 {
		s.tokens = append(s.tokens, uint32(n))
	}
}

// count adds up the block's symbols: each literal of raw (the block's
// input), and each match's length and distance symbols and extra bits.
// It is a pass of its own, after the matching, so that recording a token
// stays small enough to inline in the matching loop, and so that a block
// sent stored is never counted.
func (s *scratch) count(raw []byte) {
	pos := 0
	for _, t := range s.tokens {
		if t&matchFlag != 0 {
			l := t >> 16 & 0xff
			ls, ds := lenSym[l], distSym(t&0xffff)
			s.lit[257+int(ls)]++
			s.dist[ds]++
			s.extra += int(lenExtra[ls]) + int(distExtra[ds])
			pos += int(l) + 3
			continue
		}
		for _, b := range raw[pos : pos+int(t)] {
			s.lit[b]++
		}
		pos += int(t)
	}
}

// looksRandom tells a block in which no match was found whether Huffman
// codes could do much for it either, from the collision probability q of
// a sample of its bytes: Shannon entropy is at least -log2 q, so q under
// 1.2/256 bounds what any code saves at 0.26 bits a byte (3%) — and then
// a stored block costs a copy where counting, coding and writing would
// cost far more (already-compressed or encrypted payloads).
func looksRandom(raw []byte) bool {
	if len(raw) < 1024 {
		return false
	}
	// Every 4th byte of a small block, about 1024 of a large one: with
	// 1024 samples of random bytes Σc² lies some 9 standard deviations
	// under the bound (with the 256 of a 1 KiB block, about 2), and a
	// 16 KiB block costs a quarter of what every 4th byte did (the count
	// was half the time of sending random bytes stored).
	stride := max(4, len(raw)/1024)
	var c [256]uint32
	n := 0
	for i := 0; i < len(raw); i += stride {
		c[raw[i]]++
		n++
	}
	sq := 0
	for _, v := range c {
		sq += int(v) * int(v)
	}
	// Σc² ≈ n²q + n(1-q) for a sample of n: compare with q = 1.2/256.
	return sq*256 < n*(n*12/10+256)
}

// match records a match of length bytes, dist bytes back; it is counted
// later (count).
func (s *scratch) match(length, dist int) {
	s.tokens = append(s.tokens, matchFlag|uint32(length-3)<<16|uint32(dist-1))
	s.matches++
}

// write sends the block whose input is raw in its shortest form: stored,
// with the fixed codes, or with a dynamic code built for it.
func (s *scratch) write(w *bitWriter, raw []byte) {
	if s.matches == 0 && looksRandom(raw) {
		s.writeStored(w, raw)
		return
	}
	s.count(raw)
	s.lit[endOfBlock]++
	pad := (8 - (int(w.n)+3)%8) % 8
	stored := 3 + pad + 32 + 8*len(raw)
	c := &s.code
	c.build(s.lit[:], s.dist[:], s.work[:])
	fixed, dynamic := s.sizes(c)

	switch {
	case stored <= fixed && stored <= dynamic:
		s.writeStored(w, raw)
	case fixed <= dynamic:
		w.put(1<<1, 3) // BTYPE 01
		s.writeTokens(w, raw, fixed, &fixedLitLens, &fixedLitCodes, &fixedDistLens, &fixedDistCodes)
	default:
		w.put(2<<1, 3) // BTYPE 10
		c.writeHeader(w)
		s.writeTokens(w, raw, dynamic, &c.litLens, &c.litCodes, &c.distLens, &c.distCodes)
	}
}

// writeStored sends raw as a stored block (RFC 1951 §3.2.4): the header,
// padding to a byte, LEN and its complement, the bytes.
func (s *scratch) writeStored(w *bitWriter, raw []byte) {
	w.put(0, 3)
	w.align()
	w.dst = binary.LittleEndian.AppendUint16(w.dst, uint16(len(raw)))
	w.dst = binary.LittleEndian.AppendUint16(w.dst, ^uint16(len(raw)))
	w.dst = append(w.dst, raw...)
}

// writeTokens sends the block's literals and matches with the given codes,
// then its end-of-block symbol. size is the block's size in bits as size
// counted it: dst is grown once to hold it, and the loop writes through a
// copy of w, a local the compiler keeps in registers.
func (s *scratch) writeTokens(w *bitWriter, raw []byte, size int, litLens *[numLitLen]uint8, litCodes *[numLitLen]uint16,
	distLens *[numDist]uint8, distCodes *[numDist]uint16) {
	bw := *w
	bw.dst = slices.Grow(bw.dst, (int(bw.n)+size)/8+8)
	pos := 0
	for _, t := range s.tokens {
		if t&matchFlag == 0 {
			lits := raw[pos : pos+int(t)]
			pos += int(t)
			// Two literals a put: two codes are at most 30 bits.
			for ; len(lits) >= 2; lits = lits[2:] {
				b0, b1 := lits[0], lits[1]
				n0 := uint(litLens[b0])
				bw.put(uint64(litCodes[b0])|uint64(litCodes[b1])<<n0, n0+uint(litLens[b1]))
			}
			if len(lits) == 1 {
				bw.put(uint64(litCodes[lits[0]]), uint(litLens[lits[0]]))
			}
			continue
		}
		l, d := (t>>16)&0xff, t&0xffff
		pos += int(l) + 3
		ls := lenSym[l]
		sym := 257 + int(ls)
		nl := uint(litLens[sym])
		bw.put(uint64(litCodes[sym])|uint64(l+3-uint32(lenBase[ls]))<<nl, nl+uint(lenExtra[ls]))
		ds := distSym(d)
		nd := uint(distLens[ds])
		bw.put(uint64(distCodes[ds])|uint64(d+1-uint32(distBase[ds]))<<nd, nd+uint(distExtra[ds]))
	}
	bw.put(uint64(litCodes[endOfBlock]), uint(litLens[endOfBlock]))
	*w = bw
}

// dynCode is a dynamic Huffman code and the header describing it
// (RFC 1951 §3.2.7): the code lengths, run-length coded with the
// code-length alphabet, which has a Huffman code of its own.
type dynCode struct {
	litLens    [numLitLen]uint8
	litCodes   [numLitLen]uint16
	distLens   [numDist]uint8
	distCodes  [numDist]uint16
	cl         [numLitLen + numDist]uint8 // code-length symbols ...
	clExtra    [numLitLen + numDist]uint8 // ... and their extra bits
	ncl        int
	clFreq     [numCodeLen]uint32
	clLens     [numCodeLen]uint8
	clCodes    [numCodeLen]uint16
	nlit       int // literal/length, distance and code-length codes sent
	ndist      int
	nclen      int
	headerBits int // after the 3-bit block header
}

// sizes returns the size in bits of the block s sent with the fixed
// codes and with the dynamic code c, each with its 3-bit block header and
// the dynamic one with its code's header: one pass over the counts for
// both.
func (s *scratch) sizes(c *dynCode) (fixed, dynamic int) {
	for i, f := range s.lit {
		fixed += int(f) * int(fixedLitLens[i])
		dynamic += int(f) * int(c.litLens[i])
	}
	for i, f := range s.dist {
		fixed += int(f) * int(fixedDistLens[i])
		dynamic += int(f) * int(c.distLens[i])
	}
	return 3 + s.extra + fixed, 3 + s.extra + c.headerBits + dynamic
}

// build makes the code lengths for the given counts and the header's run
// lengths: what sizes needs. The codes themselves are made by writeHeader,
// only for a block that is sent with them (small messages mostly go
// fixed).
func (c *dynCode) build(lit, dist []uint32, work []uint64) {
	codeLengths(lit, maxCodeBits, c.litLens[:], work)
	codeLengths(dist, maxCodeBits, c.distLens[:], work)
	nlit, ndist := numLitLen, numDist
	for nlit > 257 && c.litLens[nlit-1] == 0 {
		nlit--
	}
	for ndist > 1 && c.distLens[ndist-1] == 0 {
		ndist--
	}
	if ndist == 1 && c.distLens[0] == 0 {
		// No matches: the header still describes a (complete) distance code.
		c.distLens[0], c.distLens[1] = 1, 1
		ndist = 2
	}

	// Run-length code the two length lists as one sequence (§3.2.7 lets
	// runs cross from one into the other), laid end to end in seq.
	c.ncl = 0
	clear(c.clFreq[:])
	var buf [numLitLen + numDist]uint8
	seq := append(append(buf[:0], c.litLens[:nlit]...), c.distLens[:ndist]...)
	for i := 0; i < len(seq); {
		v := seq[i]
		run := 1
		for i+run < len(seq) && seq[i+run] == v {
			run++
		}
		i += run
		if v == 0 {
			for run >= 11 {
				r := min(run, 138)
				c.emitCL(18, uint8(r-11))
				run -= r
			}
			if run >= 3 {
				c.emitCL(17, uint8(run-3))
				run = 0
			}
		} else {
			c.emitCL(v, 0)
			run--
			for run >= 3 {
				r := min(run, 6)
				c.emitCL(16, uint8(r-3))
				run -= r
			}
		}
		for ; run > 0; run-- {
			c.emitCL(v, 0)
		}
	}
	codeLengths(c.clFreq[:], maxCLBits, c.clLens[:], work)
	nclen := numCodeLen
	for nclen > 4 && c.clLens[clOrder[nclen-1]] == 0 {
		nclen--
	}
	c.nlit, c.ndist, c.nclen = nlit, ndist, nclen
	bits := 5 + 5 + 4 + 3*nclen
	for _, sym := range c.cl[:c.ncl] {
		bits += int(c.clLens[sym]) + int(clExtraBits[sym])
	}
	c.headerBits = bits
}

var clExtraBits = [numCodeLen]uint8{16: 2, 17: 3, 18: 7}

// clRepeatBase is the smallest count of code-length symbols 16, 17, 18.
var clRepeatBase = [3]uint8{3, 3, 11}

func (c *dynCode) emitCL(sym, extra uint8) {
	c.cl[c.ncl], c.clExtra[c.ncl] = sym, extra
	c.ncl++
	c.clFreq[sym]++
}

func (c *dynCode) writeHeader(w *bitWriter) {
	canonicalCodes(c.litLens[:], c.litCodes[:])
	canonicalCodes(c.distLens[:], c.distCodes[:])
	canonicalCodes(c.clLens[:], c.clCodes[:])
	w.put(uint64(c.nlit-257)|uint64(c.ndist-1)<<5|uint64(c.nclen-4)<<10, 14)
	for _, sym := range clOrder[:c.nclen] {
		w.put(uint64(c.clLens[sym]), 3)
	}
	for i, sym := range c.cl[:c.ncl] {
		n := uint(c.clLens[sym])
		w.put(uint64(c.clCodes[sym])|uint64(c.clExtra[i])<<n, n+uint(clExtraBits[sym]))
	}
}
