package flatemsg

import (
	"encoding/binary"
	"io"
	"math/bits"
	"sync"
)

// Decoding. A receiver appends 00 00 ff ff to a message's payload and
// inflates the result (RFC 7692 §7.2.2). A Decoder does that without
// copying its window per message: the window is a ring the decoded bytes
// are written into, and with context takeover it simply stays there for
// the next message (a general-purpose decompressor is handed the last
// 32 KiB as a dictionary and copies it in for every message).
//
// A message ends at the block boundary where its input, tail included,
// is used up: normally just after the empty stored block the tail
// completes. A sender may instead end its message with a final block
// (BFINAL, §7.2.3.3); then no payload byte may follow that block.

// Source supplies a message's compressed payload.
type Source interface {
	// Next returns more of the payload: at least one byte, or an error
	// (io.EOF after the last byte). The bytes need stay valid only until
	// the following call.
	Next() ([]byte, error)
}

// Corrupt input is reported as a CorruptError.
type CorruptError string

func (e CorruptError) Error() string { return "deflate: " + string(e) }

// Reasons input is rejected (RFC 1951 names the rules).
const (
	errBlockType    = CorruptError("invalid block type (§3.2.3)")
	errStoredLen    = CorruptError("stored block length does not match its complement (§3.2.4)")
	errCounts       = CorruptError("too many literal/length or distance codes (§3.2.7)")
	errOversub      = CorruptError("over-subscribed Huffman code")
	errIncomplete   = CorruptError("incomplete Huffman code")
	errRepeat       = CorruptError("code length repeat with no previous length (§3.2.7)")
	errRepeatPast   = CorruptError("code length repeat past the last code (§3.2.7)")
	errNoEnd        = CorruptError("literal/length code has no end-of-block symbol")
	errSymbol       = CorruptError("invalid Huffman code")
	errLenSym       = CorruptError("invalid length symbol (§3.2.6)")
	errDistSym      = CorruptError("invalid distance symbol (§3.2.6)")
	errDistance     = CorruptError("distance reaches before the window")
	errTruncated    = CorruptError("message ends inside a block")
	errAfterFinal   = CorruptError("data after the final block")
	errAfterMessage = CorruptError("read after the end of the message")
)

// tail is what the sender left off every message (§7.2.1).
var tail = [4]byte{0x00, 0x00, 0xff, 0xff}

// Decoder states between calls to Read.
const (
	atHeader  = iota // next: a block header, or the end of the message
	inStored         // copying a stored block's bytes
	inHuffman        // decoding a Huffman block's symbols
	ended            // the message is over (d.err says how)
)

// Decoder inflates the messages of one direction of a connection. The
// zero value is not usable; see NewDecoder.
//
// Concurrency: a Decoder is used by one goroutine at a time (the
// connection's reader, under its read lock).
type Decoder struct {
	hist []byte // the window, a ring; allocated on first use
	size int    // len(hist): 1<<window bits
	wr   int    // next write position in hist
	rd   int    // hist[rd:wr] is decoded and not yet read
	full bool   // hist has wrapped since the last Reset: all of it is history

	// The message being decoded.
	src      Source
	in       []byte // input not yet in the bit buffer
	srcEOF   bool   // src has no more: in is the tail
	gotInput bool   // src gave at least one byte
	tailUsed int    // tail bytes moved to in (0 or 4)
	bb       uint64 // bit buffer: the next nb input bits, first in the low bit
	nb       uint
	state    int
	final    bool // the current block is the last one (BFINAL)
	stored   int  // bytes left in the stored block
	copyLen  int  // a match not yet fully copied
	copyDist int
	lit      *table
	dist     *table
	sc       *decScratch // dynamic codes; held only during a message
	err      error
}

// NewDecoder returns a Decoder for a peer whose matches reach at most
// 1<<windowBits bytes back (8 to 15, RFC 7692 §7.1.2.2). Windows below 9
// bits are decoded with 9: zlib, the most common peer, raises a window of 8
// bits to 9 when it compresses (it documents this), so a strict 256-byte
// window would fail messages that it sent in good faith.
func NewDecoder(windowBits int) *Decoder {
	windowBits = min(max(windowBits, 9), 15)
	return &Decoder{size: 1 << windowBits, state: ended, err: errAfterMessage}
}

// Reset forgets the messages decoded so far: the next one is decoded
// without context (no context takeover).
func (d *Decoder) Reset() {
	d.wr, d.rd, d.full = 0, 0, false
}

// Start begins a message whose payload src supplies.
func (d *Decoder) Start(src Source) {
	if d.hist == nil {
		d.hist = make([]byte, d.size)
	}
	d.rd = d.wr // a full window wraps in Read, before anything is written
	d.src, d.in, d.srcEOF, d.gotInput, d.tailUsed = src, nil, false, false, 0
	d.bb, d.nb = 0, 0
	d.state, d.final, d.copyLen, d.err = atHeader, false, 0, nil
}

// Read returns the message's decoded bytes, then io.EOF. Corrupt input is
// a CorruptError; an error from the Source is returned as it is.
func (d *Decoder) Read(p []byte) (int, error) {
	for {
		if d.rd < d.wr {
			n := copy(p, d.hist[d.rd:d.wr])
			d.rd += n
			return n, nil
		}
		if d.state == ended {
			return 0, d.err
		}
		if d.wr == d.size {
			d.wr, d.rd, d.full = 0, 0, true
		}
		if err := d.decode(); err != nil {
			d.end(err)
		}
	}
}

// end finishes the message with err (io.EOF when it ended well).
func (d *Decoder) end(err error) {
	d.state, d.err = ended, err
	d.src, d.in = nil, nil
	d.release()
}

// release gives back the memory a message holds while it is decoded,
// when the message ends.
func (d *Decoder) release() {
	if d.sc != nil {
		decScratchPool.Put(d.sc)
		d.sc = nil
	}
	d.lit, d.dist = nil, nil
}

// decode decodes until the window is full (nil) or the message ends
// (io.EOF or another error).
func (d *Decoder) decode() error {
	for d.wr < d.size {
		switch d.state {
		case atHeader:
			if err := d.header(); err != nil {
				return err
			}
		case inStored:
			if err := d.copyStored(); err != nil {
				return err
			}
		case inHuffman:
			if err := d.huffman(); err != nil {
				return err
			}
		}
	}
	return nil
}

// header reads a block header (RFC 1951 §3.2.3), or ends the message.
func (d *Decoder) header() error {
	if d.final {
		return d.afterFinal()
	}
	if d.nb == 0 && len(d.in) == 0 && d.srcEOF && d.tailUsed == len(tail) {
		return io.EOF // the input ended on a block boundary
	}
	h, err := d.bits(3)
	if err != nil {
		return err
	}
	d.final = h&1 != 0
	switch h >> 1 {
	case 0:
		d.bb >>= d.nb & 7 // to a byte boundary (§3.2.4)
		d.nb &^= 7
		v, err := d.bits(32)
		if err != nil {
			return err
		}
		if uint16(v) != ^uint16(v>>16) {
			return errStoredLen
		}
		d.stored = int(v & 0xffff)
		d.state = inStored
	case 1:
		d.lit, d.dist = &fixedLit, &fixedDist
		d.state = inHuffman
	case 2:
		if err := d.dynamic(); err != nil {
			return err
		}
		d.state = inHuffman
	default:
		return errBlockType
	}
	return nil
}

// afterFinal ends a message whose last block had BFINAL set: no payload
// byte may follow it (the padding of its last byte and the tail may).
func (d *Decoder) afterFinal() error {
	left := int(d.nb/8) + len(d.in) // whole bytes not consumed
	if d.tailUsed == len(tail) {
		left -= len(tail) // the last bytes loaded are the tail's
	}
	if left > 0 {
		return errAfterFinal
	}
	for !d.srcEOF {
		p, err := d.src.Next()
		if len(p) > 0 {
			return errAfterFinal
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return io.EOF
}

// dynamic reads a dynamic Huffman block's codes (RFC 1951 §3.2.7).
func (d *Decoder) dynamic() error {
	v, err := d.bits(14)
	if err != nil {
		return err
	}
	nlit, ndist, nclen := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlit > numLitLen || ndist > numDist {
		return errCounts
	}
	if d.sc == nil {
		d.sc = decScratchPool.Get().(*decScratch)
	}
	sc := d.sc
	var clLens [numCodeLen]uint8
	for _, s := range clOrder[:nclen] {
		v, err := d.bits(3)
		if err != nil {
			return err
		}
		clLens[s] = uint8(v)
	}
	if err := sc.clTable.build(clLens[:], maxCLBits); err != nil {
		return err
	}
	lens := sc.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		sym, err := d.symbol(&sc.clTable)
		if err != nil {
			return err
		}
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		// 16 repeats the previous length, 17 and 18 repeat zero
		// (§3.2.7); each count is a base plus its extra bits.
		var val uint8
		if sym == 16 {
			if i == 0 {
				return errRepeat
			}
			val = lens[i-1]
		}
		r, err := d.bits(uint(clExtraBits[sym]))
		if err != nil {
			return err
		}
		n := int(clRepeatBase[sym-16]) + int(r)
		if i+n > len(lens) {
			return errRepeatPast
		}
		for range n {
			lens[i] = val
			i++
		}
	}
	if lens[endOfBlock] == 0 {
		return errNoEnd
	}
	if err := sc.litTable.build(lens[:nlit], litRootBits); err != nil {
		return err
	}
	if err := sc.distTable.build(lens[nlit:], distRootBits); err != nil {
		return err
	}
	d.lit, d.dist = &sc.litTable, &sc.distTable
	return nil
}

// huffman decodes a Huffman block's symbols into the window until the
// block ends or the window is full. The bit buffer is kept in locals and
// topped up from d.in without a call; only when d.in runs dry does the
// slow path (pull) ask the source for more.
func (d *Decoder) huffman() error {
	hist, size := d.hist, d.size
	wr := d.wr
	if d.copyLen > 0 {
		wr, d.copyLen = copyMatch(hist, wr, d.copyDist, d.copyLen)
		if d.copyLen > 0 {
			d.wr = wr
			return nil
		}
	}
	lit, dist := d.lit, d.dist
	bb, nb, in := d.bb, d.nb, d.in
	for {
		if wr == size {
			break
		}
		// Top up: a length/distance pair takes at most 15+5+15+13 bits.
		if nb < 48 {
			if len(in) >= 8 {
				k := (63 - nb) >> 3
				bb |= (binary.LittleEndian.Uint64(in) & (1<<(8*k) - 1)) << nb
				in = in[k:]
				nb += 8 * k
			} else {
				for nb <= 56 && len(in) > 0 {
					bb |= uint64(in[0]) << nb
					in = in[1:]
					nb += 8
				}
			}
		}
		e := lit.lookup(bb)
		n := uint(e & 15)
		if n > nb || n == 0 {
			if n == 0 && nb >= maxCodeBits {
				return errSymbol
			}
			var err error
			if bb, nb, in, err = d.pullFor(bb, nb, in, wr); err != nil {
				return err
			}
			continue
		}
		sym := e >> 16
		if sym < endOfBlock {
			bb >>= n
			nb -= n
			hist[wr] = byte(sym)
			wr++
			continue
		}
		if sym == endOfBlock {
			bb >>= n
			nb -= n
			d.state = atHeader
			break
		}
		// A length, its extra bits and a distance: decoded together, and
		// only committed (bits consumed) once all of them were there.
		ls := sym - 257
		if ls >= 29 {
			return errLenSym
		}
		le := uint(lenExtra[ls])
		length := int(lenBase[ls]) + int(bb>>n&(1<<le-1))
		used := n + le
		e = dist.lookup(bb >> used)
		dn := uint(e & 15)
		if dn == 0 || used+dn > nb {
			if dn == 0 && nb >= used+maxCodeBits {
				return errSymbol
			}
			var err error
			if bb, nb, in, err = d.pullFor(bb, nb, in, wr); err != nil {
				return err
			}
			continue
		}
		ds := e >> 16
		if ds >= numDist {
			return errDistSym
		}
		de := uint(distExtra[ds])
		if used+dn+de > nb {
			var err error
			if bb, nb, in, err = d.pullFor(bb, nb, in, wr); err != nil {
				return err
			}
			continue
		}
		distance := int(distBase[ds]) + int(bb>>(used+dn)&(1<<de-1))
		used += dn + de
		bb >>= used
		nb -= used
		if distance > wr && !d.full {
			return errDistance
		}
		if distance > size {
			return errDistance
		}
		if src := wr - distance; src >= 0 && length <= distance && wr+length <= size {
			copy(hist[wr:wr+length], hist[src:src+length]) // the common case
			wr += length
			continue
		}
		wr, length = copyMatch(hist, wr, distance, length)
		if length > 0 {
			d.copyLen, d.copyDist = length, distance
			break
		}
	}
	d.bb, d.nb, d.in, d.wr = bb, nb, in, wr
	return nil
}

// copyMatch copies n bytes from distance back in the ring hist to wr, as
// far as the end of hist, and returns the new write position and how many
// bytes did not fit. Where the match overlaps what it writes, each copy
// doubles the run already written: the source stays put while the
// destination moves away from it.
func copyMatch(hist []byte, wr, distance, n int) (int, int) {
	size := len(hist)
	for n > 0 && wr < size {
		src := wr - distance
		if src < 0 {
			// From the end of the ring, written before it wrapped: a
			// plain copy, as far as either end (the destination lies
			// before the source, so even an overlap copies forward).
			src += size
			k := min(n, size-src, size-wr)
			copy(hist[wr:wr+k], hist[src:src+k])
			wr += k
			n -= k
			continue
		}
		end := wr + min(n, size-wr)
		n -= end - wr
		for wr < end {
			wr += copy(hist[wr:end], hist[src:wr])
		}
	}
	return wr, n
}

// copyStored copies a stored block's bytes into the window.
func (d *Decoder) copyStored() error {
	for d.stored > 0 && d.wr < d.size {
		// Whole bytes already in the bit buffer come first.
		for d.nb >= 8 && d.stored > 0 && d.wr < d.size {
			d.hist[d.wr] = byte(d.bb)
			d.wr++
			d.bb >>= 8
			d.nb -= 8
			d.stored--
		}
		if d.stored == 0 || d.wr == d.size {
			break
		}
		if len(d.in) == 0 {
			if err := d.more(); err != nil {
				return err
			}
			continue
		}
		k := copy(d.hist[d.wr:min(d.size, d.wr+d.stored)], d.in)
		d.in = d.in[k:]
		d.wr += k
		d.stored -= k
	}
	if d.stored == 0 {
		d.state = atHeader
	}
	return nil
}

// bits returns the next n (≤ 32) bits of input.
func (d *Decoder) bits(n uint) (uint32, error) {
	for d.nb < n {
		if err := d.pull(); err != nil {
			return 0, err
		}
	}
	v := uint32(d.bb & (1<<n - 1))
	d.bb >>= n
	d.nb -= n
	return v, nil
}

// symbol decodes one symbol of t, outside the hot loop.
func (d *Decoder) symbol(t *table) (uint32, error) {
	for {
		e := t.lookup(d.bb)
		n := uint(e & 15)
		if n != 0 && n <= d.nb {
			d.bb >>= n
			d.nb -= n
			return e >> 16, nil
		}
		if n == 0 && d.nb >= maxCodeBits {
			return 0, errSymbol
		}
		if err := d.pull(); err != nil {
			return 0, err
		}
	}
}

// pullFor is pull for huffman, whose bit buffer and write position are in
// its locals: it stores them, pulls, and returns the buffer grown.
func (d *Decoder) pullFor(bb uint64, nb uint, in []byte, wr int) (uint64, uint, []byte, error) {
	d.bb, d.nb, d.in, d.wr = bb, nb, in, wr
	err := d.pull()
	return d.bb, d.nb, d.in, err
}

// pull moves at least one byte of input into the bit buffer, asking the
// source for more when in is used up.
func (d *Decoder) pull() error {
	for len(d.in) == 0 {
		if err := d.more(); err != nil {
			return err
		}
	}
	for d.nb <= 56 && len(d.in) > 0 {
		d.bb |= uint64(d.in[0]) << d.nb
		d.in = d.in[1:]
		d.nb += 8
	}
	return nil
}

// more refills in from the source, then from the tail; a message that
// needs input past the tail is truncated.
func (d *Decoder) more() error {
	if !d.srcEOF {
		p, err := d.src.Next()
		if err == io.EOF {
			d.srcEOF = true
		} else if err != nil {
			return err
		}
		d.in = p
		if len(p) > 0 {
			d.gotInput = true
			return nil
		}
		if !d.srcEOF {
			return io.ErrNoProgress // a Source breaking its contract
		}
	}
	if !d.gotInput {
		// An empty payload. With the tail it is a stored block header cut
		// short, not a DEFLATE stream (an empty message compresses to
		// 0x00, §7.2.3.6), but some senders write it for an empty message
		// and zlib-based readers take it as one: it inflates to nothing.
		// So do we; the window is unchanged.
		return io.EOF
	}
	if d.tailUsed == len(tail) {
		return errTruncated
	}
	d.in = tail[:]
	d.tailUsed = len(tail)
	return nil
}

// Huffman decoding tables. An entry is a leaf, sym<<16 | length (the
// code's whole length, 1-15), or in the root table possibly a link to a
// subtable for the codes longer than the root: offset<<16 | linkBit |
// subtable bits<<5. A zero entry is a bit pattern no code has (an
// incomplete code, RFC 1951 allows only one such: a single one-bit code).
const (
	linkBit      = 1 << 4
	litRootBits  = 10
	distRootBits = 7
)

type table struct {
	root uint
	t    []uint32
}

// lookup returns the entry for the next input bits (the low bits of bb).
func (t *table) lookup(bb uint64) uint32 {
	e := t.t[bb&(1<<t.root-1)]
	if e&linkBit != 0 {
		e = t.t[e>>16+uint32(bb>>t.root)&(1<<(e>>5&15)-1)]
	}
	return e
}

// build makes t decode the canonical code with the given lengths
// (RFC 1951 §3.2.2), with a root table of at most rootBits.
func (t *table) build(lens []uint8, rootBits uint) error {
	// Four interleaved counts: one would make each increment wait for
	// the previous one (most lengths are equal, often zero).
	var c4 [4][maxCodeBits + 1]uint16
	i := 0
	for ; i+4 <= len(lens); i += 4 {
		c4[0][lens[i]&15]++
		c4[1][lens[i+1]&15]++
		c4[2][lens[i+2]&15]++
		c4[3][lens[i+3]&15]++
	}
	for ; i < len(lens); i++ {
		c4[0][lens[i]&15]++
	}
	var count [maxCodeBits + 1]uint16
	left, maxLen, codes := 1, uint(0), 0
	for l := 1; l <= maxCodeBits; l++ {
		count[l] = c4[0][l] + c4[1][l] + c4[2][l] + c4[3][l]
		left = left<<1 - int(count[l])
		if left < 0 {
			return errOversub
		}
		if count[l] != 0 {
			maxLen = uint(l)
			codes += int(count[l])
		}
	}
	root := min(rootBits, max(maxLen, 1))
	t.root = root
	t.t = extend(t.t[:0], 1<<root)
	if left != 0 {
		// A complete code writes every entry; these leave some zero.
		clear(t.t)
		if codes == 0 {
			return nil // no symbol: any use of the code is an error
		}
		if !(codes == 1 && maxLen == 1) {
			return errIncomplete // RFC 1951 §3.2.7 allows only one bit for one code
		}
	}
	// Symbols in canonical order: by length, then by value.
	var offs [maxCodeBits + 2]uint16
	for l := 1; l <= maxCodeBits; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sorted [288]uint16
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// A code of l <= root bits owns every root entry whose low l bits are
	// its reversed code. Short codes come shortest first, so rather than
	// writing each of those entries, the table is grown by doubling: once
	// t.t[:1<<filled] holds the codes of up to filled bits, a copy of it
	// above itself holds them for filled+1 bits (the copies differ only in
	// a bit those codes do not look at); each code then writes one entry.
	// What a doubling copies from entries no code owns yet is overwritten
	// later, as every entry of a complete code is owned.
	code, l := uint32(0), uint(0)
	filled := uint(0)
	var off, sub uint32 // the subtable of the current long codes' prefix
	prefix := uint32(1 << 31)
	for i, s := range sorted[:codes] {
		sl := uint(lens[s])
		code <<= sl - l // the first code of a longer length (§3.2.2)
		l = sl
		rev := bits.Reverse32(code) >> (32 - l)
		leaf := uint32(s)<<16 | uint32(l)
		for ; filled < min(l, root); filled++ {
			copy(t.t[1<<filled:2<<filled], t.t[:1<<filled])
		}
		if l <= root {
			t.t[rev] = leaf
		} else {
			// A long code: its first root bits pick a subtable, sized
			// for the longest code sharing them.
			// Codes sharing a prefix are consecutive in canonical order.
			if p := code >> (l - root); p != prefix {
				prefix = p
				last := lastWithPrefix(sorted[:codes], lens, i, code, l, root)
				off, sub = uint32(len(t.t)), uint32(lens[sorted[last]])-uint32(root)
				t.t[rev&(1<<root-1)] = off<<16 | linkBit | sub<<5
				t.t = extend(t.t, 1<<sub)
			}
			for j := rev >> root; j < 1<<sub; j += 1 << (l - root) {
				t.t[off+j] = leaf
			}
		}
		code++
	}
	return nil
}

// lastWithPrefix returns the index in sorted of the last code whose first
// root bits equal those of code (the i-th, of length l).
func lastWithPrefix(sorted []uint16, lens []uint8, i int, code uint32, l, root uint) int {
	prefix := code >> (l - root)
	for i+1 < len(sorted) {
		nl := uint(lens[sorted[i+1]])
		// The next code in canonical order: code+1, shifted to its length.
		next := (code + 1) << (nl - l)
		if next>>(nl-root) != prefix {
			break
		}
		i++
		code, l = next, nl
	}
	return i
}

// extend lengthens t by n entries, which build then writes.
func extend(t []uint32, n int) []uint32 {
	if m := len(t) + n; m <= cap(t) {
		return t[:m]
	}
	return append(t, make([]uint32, n)...)
}

// The fixed codes of §3.2.6, decoded with tables built once, by
// tables.go's init from the lengths the encoder uses.
var fixedLit, fixedDist table

// buildFixedTables builds them from the 288 literal/length code lengths;
// the 32 distance codes are all 5 bits. Symbols 286 and 287, 30 and 31
// complete the codes but never occur.
func buildFixedTables(litLens []uint8) {
	var dl [32]uint8
	for i := range dl {
		dl[i] = 5
	}
	if fixedLit.build(litLens, litRootBits) != nil || fixedDist.build(dl[:], distRootBits) != nil {
		panic("flatemsg: fixed codes")
	}
}

// decScratch holds a dynamic block's code lengths and tables: a Decoder
// takes one for a message that has dynamic blocks and gives it back when
// the message ends, so an idle connection holds none.
type decScratch struct {
	lens      [numLitLen + numDist]uint8
	clTable   table
	litTable  table
	distTable table
}

var decScratchPool = sync.Pool{New: func() any { return new(decScratch) }}
