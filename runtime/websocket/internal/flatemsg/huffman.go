package flatemsg

import (
	"math/bits"
	"slices"
)

// codeLengths sets lens[i] to the length of symbol i's code in a Huffman
// code for freq whose codes are at most maxBits long; unused symbols get
// 0. It needs work with room for len(freq) entries and allocates nothing.
//
// Lengths come from Moffat and Katajainen's in-place algorithm ("In-Place
// Calculation of Minimum-Redundancy Codes", 1995) over the symbols sorted
// by frequency; if the longest exceeds maxBits, the code is made to fit by
// moving the overflow up the tree one leaf at a time until the Kraft sum
// is exactly one again, and lengths are handed out anew, longest to the
// rarest.
//
// DEFLATE decoders differ on codes with a single symbol (RFC 1951 §3.2.7
// allows one distance code of one bit; not every decoder takes it for
// literal/lengths), so a lone symbol is given a one-bit partner and every
// code written is complete.
func codeLengths(freq []uint32, maxBits int, lens []uint8, work []uint64) {
	clear(lens)
	syms := work[:0]
	for i, f := range freq {
		if f != 0 {
			syms = append(syms, uint64(f)<<16|uint64(i))
		}
	}
	switch len(syms) {
	case 0:
		return
	case 1:
		s := int(syms[0] & 0xffff)
		lens[s] = 1
		if s == 0 {
			lens[1] = 1
		} else {
			lens[0] = 1
		}
		return
	}
	// Ascending frequency, ties by symbol: deterministic output.
	slices.Sort(syms)
	n := len(syms)

	// Phase 1: build the tree in place. Each entry holds a weight, or for
	// an internal node already consumed, its parent's index.
	w := func(i int) uint32 { return uint32(syms[i] >> 16) }
	set := func(i int, v uint32) { syms[i] = uint64(v)<<16 | syms[i]&0xffff }
	set(0, w(0)+w(1))
	root, leaf := 0, 2
	for next := 1; next < n-1; next++ {
		if leaf >= n || w(root) < w(leaf) {
			set(next, w(root))
			set(root, uint32(next))
			root++
		} else {
			set(next, w(leaf))
			leaf++
		}
		if leaf >= n || (root < next && w(root) < w(leaf)) {
			set(next, w(next)+w(root))
			set(root, uint32(next))
			root++
		} else {
			set(next, w(next)+w(leaf))
			leaf++
		}
	}
	// Phase 2: parents to depths of internal nodes.
	set(n-2, 0)
	for next := n - 3; next >= 0; next-- {
		set(next, w(int(w(next)))+1)
	}
	// Phase 3: depths of internal nodes to depths of leaves; the leaves,
	// rarest first at index 0, end up with non-increasing depths.
	avail, used, depth := 1, 0, uint32(0)
	root, next := n-2, n-1
	for avail > 0 {
		for root >= 0 && w(root) == depth {
			used++
			root--
		}
		for avail > used {
			set(next, depth)
			next--
			avail--
		}
		avail, used = 2*used, 0
		depth++
	}

	// Count codes per length, clamping at maxBits, then restore the Kraft
	// equality: each step drops one longest code and splits a shorter one.
	var count [maxCodeBits + 2]int
	for i := range n {
		count[min(int(w(i)), maxBits)]++
	}
	total := 0
	for l := 1; l <= maxBits; l++ {
		total += count[l] << (maxBits - l)
	}
	for total > 1<<maxBits {
		count[maxBits]--
		for l := maxBits - 1; l > 0; l-- {
			if count[l] != 0 {
				count[l]--
				count[l+1] += 2
				break
			}
		}
		total--
	}
	i := 0
	for l := maxBits; l > 0; l-- {
		for range count[l] {
			lens[syms[i]&0xffff] = uint8(l)
			i++
		}
	}
}

// canonicalCodes gives each symbol the canonical code for lens (RFC 1951
// §3.2.2), bit-reversed: DEFLATE packs Huffman codes from their most
// significant bit into an LSB-first bit stream.
//
// Most symbols of a message's literal code are unused (the control and
// high bytes of text), in runs: both passes step over eight zero lengths
// with one load.
func canonicalCodes(lens []uint8, codes []uint16) {
	var count [maxCodeBits + 1]uint16
	for i := 0; i < len(lens); i += 8 {
		end := min(i+8, len(lens))
		if end-i == 8 && load64(lens, i) == 0 {
			continue
		}
		for _, l := range lens[i:end] {
			count[l]++
		}
	}
	count[0] = 0
	var next [maxCodeBits + 1]uint16
	code := uint16(0)
	for l := 1; l <= maxCodeBits; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for i := 0; i < len(lens); i += 8 {
		end := min(i+8, len(lens))
		if end-i == 8 && load64(lens, i) == 0 {
			continue
		}
		for j := i; j < end; j++ {
			if l := lens[j]; l != 0 {
				codes[j] = bits.Reverse16(next[l]) >> (16 - l)
				next[l]++
			}
		}
	}
}
