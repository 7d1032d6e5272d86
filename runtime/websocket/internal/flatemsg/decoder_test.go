package flatemsg

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// chunkSource hands out a payload in chunks of at most n bytes, then err
// (io.EOF unless set).
type chunkSource struct {
	p   []byte
	n   int
	err error
}

func (s *chunkSource) Next() ([]byte, error) {
	if len(s.p) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	k := min(len(s.p), s.n)
	c := s.p[:k]
	s.p = s.p[k:]
	return c, nil
}

// decodeMessage decodes one message's payload, fed in chunks of chunk
// bytes and read in odd-sized pieces.
func decodeMessage(d *Decoder, payload []byte, chunk int) ([]byte, error) {
	d.Start(&chunkSource{p: payload, n: chunk})
	var out []byte
	buf := make([]byte, 3000)
	for {
		n, err := d.Read(buf[:1+len(out)%len(buf)])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// stdCompress compresses msgs as one stream with the standard library at
// level, each message ended by a sync flush whose 00 00 ff ff is removed
// (RFC 7692 §7.2.1): the context takeover a zlib-based peer sends.
func stdCompress(t testing.TB, msgs [][]byte, level int) [][]byte {
	t.Helper()
	return stdCompressDict(t, msgs, level, nil)
}

// stdCompressDict is stdCompress with a preset dictionary (none if nil).
func stdCompressDict(t testing.TB, msgs [][]byte, level int, dict []byte) [][]byte {
	t.Helper()
	var b bytes.Buffer
	w, err := stdflate.NewWriterDict(&b, level, dict)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		b.Reset()
		w.Write(m)
		w.Flush()
		if !bytes.HasSuffix(b.Bytes(), syncTail) {
			t.Fatal("no sync flush tail")
		}
		out[i] = bytes.Clone(b.Bytes()[:b.Len()-4])
	}
	return out
}

// TestDecoderStdStreams: what another implementation sends — every
// level of the standard library's compressor (stored, Huffman-only, fast,
// default, best), messages larger than the window, context takeover —
// decodes with every source chunking.
func TestDecoderStdStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var msgs [][]byte
	for range 50 {
		msgs = append(msgs, jsonText(200+r.IntN(4000)))
	}
	msgs = append(msgs, randomBytes(r, 70000), bytes.Repeat([]byte("abc"), 40000), nil, []byte("x"), jsonText(100000))
	for _, level := range []int{stdflate.NoCompression, stdflate.HuffmanOnly, stdflate.BestSpeed, stdflate.DefaultCompression, stdflate.BestCompression} {
		comp := stdCompress(t, msgs, level)
		for _, chunk := range []int{1, 13, 4096, 1 << 20} {
			t.Run(fmt.Sprintf("level=%d/chunk=%d", level, chunk), func(t *testing.T) {
				d := NewDecoder(15)
				for i, c := range comp {
					ch := chunk
					if chunk == 1 && len(c) > 5000 {
						ch = 4096 // byte at a time on the small ones only (slow)
					}
					got, err := decodeMessage(d, c, ch)
					if err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if !bytes.Equal(got, msgs[i]) {
						t.Fatalf("message %d differs", i)
					}
				}
			})
		}
	}
}

// TestDecoderFinalBlock: a message ended by a final block (BFINAL, as a
// peer that closes its compressor per message sends) decodes; a payload
// byte after it is an error.
func TestDecoderFinalBlock(t *testing.T) {
	for _, level := range []int{stdflate.NoCompression, stdflate.BestSpeed, stdflate.BestCompression} {
		var b bytes.Buffer
		w, _ := stdflate.NewWriter(&b, level)
		w.Write([]byte("ends with BFINAL, ends with BFINAL"))
		w.Close()
		d := NewDecoder(15)
		got, err := decodeMessage(d, b.Bytes(), 1000)
		if err != nil || string(got) != "ends with BFINAL, ends with BFINAL" {
			t.Fatalf("level %d: %q, %v", level, got, err)
		}
		// The next message refers back into this one (context takeover
		// across streams, §7.2.3.3 keeps the window).
		next := stdCompressDict(t, [][]byte{[]byte("ends with BFINAL again")}, stdflate.BestCompression, got)[0]
		if got, err := decodeMessage(d, next, 1000); err != nil || string(got) != "ends with BFINAL again" {
			t.Fatalf("level %d, next message: %q, %v", level, got, err)
		}
		for _, chunk := range []int{1, 1000} {
			_, err = decodeMessage(NewDecoder(15), append(bytes.Clone(b.Bytes()), 0x42), chunk)
			if !errors.Is(err, errAfterFinal) {
				t.Fatalf("level %d, a byte after the final block, chunk %d: %v", level, chunk, err)
			}
		}
	}
}

// TestDecoderCorrupt: every malformed input is a CorruptError naming
// what is wrong, never a panic or a hang.
func TestDecoderCorrupt(t *testing.T) {
	// bitString packs fields LSB first: pairs of (value, bit count).
	bitString := func(fields ...uint32) []byte {
		var bw bitWriter
		for i := 0; i < len(fields); i += 2 {
			bw.put(uint64(fields[i]), uint(fields[i+1]))
		}
		bw.align()
		return bw.dst
	}
	fixedSym := func(sym int) (uint32, uint32) {
		return uint32(fixedLitCodes[sym]), uint32(fixedLitLens[sym])
	}
	c280 := uint32(0xC0) // the 8-bit fixed codes of 280-287 are 11000000+i, MSB first
	rev := func(v, n uint32) uint32 { return uint32(bits.Reverse16(uint16(v)) >> (16 - n)) }
	litA, litALen := fixedSym('a')
	len3, len3Len := fixedSym(257)
	eob, eobLen := fixedSym(256)
	cases := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"block type 3", bitString(0, 1, 3, 2), errBlockType},
		{"stored length complement", []byte{0x00, 0x05, 0x00, 0xfa, 0xfe}, errStoredLen},
		{"32 distance codes", bitString(0, 1, 2, 2, 0, 5, 31, 5, 15, 4), errCounts},
		{"over-subscribed code-length code", bitString(0, 1, 2, 2, 0, 5, 0, 5, 0, 4, 1, 3, 1, 3, 1, 3, 1, 3), errOversub},
		{"incomplete code-length code", bitString(0, 1, 2, 2, 0, 5, 0, 5, 0, 4, 2, 3, 2, 3, 2, 3, 0, 3), errIncomplete},
		{"repeat with no previous length", append(bitString(0, 1, 2, 2, 0, 5, 0, 5, 0, 4, 1, 3, 1, 3), 0, 0), errRepeat},
		{"length symbol 286", bitString(0, 1, 1, 2, rev(c280+6, 8), 8), errLenSym},
		{"distance symbol 30", bitString(0, 1, 1, 2, litA, litALen, len3, len3Len, rev(30, 5), 5, eob, eobLen), errDistSym},
		{"distance before the start", bitString(0, 1, 1, 2, litA, litALen, len3, len3Len, rev(1, 5), 5, eob, eobLen), errDistance},
		{"ends inside a block", bitString(0, 1, 1, 2, litA, litALen), errTruncated},
		{"ends inside a stored block", []byte{0x00, 0x0a, 0x00, 0xf5, 0xff, 'a'}, errTruncated},
		{"the empty message (RFC 7692 §7.2.3.6)", []byte{0x00}, nil},
		{"an empty payload, as some senders write the empty message", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 1000} {
				_, err := decodeMessage(NewDecoder(15), tc.payload, chunk)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("chunk %d: %v", chunk, err)
					}
					continue
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("chunk %d: got %v, want %v", chunk, err, tc.want)
				}
			}
		})
	}
}

// TestDecoderWindow: a match may reach 1<<windowBits back and no further
// (RFC 7692 §7.1.2.2), counting earlier messages with context takeover and
// not without it.
func TestDecoderWindow(t *testing.T) {
	first := randomBytes(rand.New(rand.NewPCG(5, 6)), 1000)
	second := append([]byte("x"), first[:100]...) // refers ~1 KiB back
	comp := stdCompress(t, [][]byte{first, second}, stdflate.BestCompression)
	for _, tc := range []struct {
		bits     int
		takeover bool
		want     error
	}{{10, true, nil}, {15, true, nil}, {9, true, errDistance}, {15, false, errDistance}} {
		d := NewDecoder(tc.bits)
		if _, err := decodeMessage(d, comp[0], 100); err != nil {
			t.Fatal(err)
		}
		if !tc.takeover {
			d.Reset()
		}
		got, err := decodeMessage(d, comp[1], 100)
		if !errors.Is(err, tc.want) || (err == nil && !bytes.Equal(got, second)) {
			t.Fatalf("bits %d, takeover %v: %v, want %v", tc.bits, tc.takeover, err, tc.want)
		}
	}
}

// TestDecoderSourceError: a failing source (the connection, mid-message)
// is reported as itself, not as corrupt data.
func TestDecoderSourceError(t *testing.T) {
	cut := errors.New("connection cut")
	comp := stdCompress(t, [][]byte{jsonText(5000)}, stdflate.BestSpeed)[0]
	d := NewDecoder(15)
	d.Start(&chunkSource{p: comp[:len(comp)/2], n: 100, err: cut})
	_, err := io.ReadAll(d)
	if err != cut {
		t.Fatalf("got %v, want the source's error", err)
	}
	// The decoder is usable for the next message.
	d.Reset()
	if got, err := decodeMessage(d, comp, 100); err != nil || !bytes.Equal(got, jsonText(5000)) {
		t.Fatalf("after a failed message: %v", err)
	}
}

// TestBuildTables: tables built from random complete codes (including
// codes with subtables) decode every symbol's code back to the symbol, and
// every root entry is the short code its low bits start with, or a link.
// One table is reused throughout, as a Decoder reuses its tables, so each
// build starts from the last one's entries.
func TestBuildTables(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	work := make([]uint64, numLitLen)
	var tab table
	for iter := range 500 {
		n := 2 + r.IntN(numLitLen-1)
		freq := make([]uint32, n)
		for i := range freq {
			if r.IntN(4) > 0 {
				freq[i] = uint32(1 + r.IntN(1<<uint(r.IntN(20))))
			}
		}
		lens := make([]uint8, n)
		codeLengths(freq, maxCodeBits, lens, work)
		used := 0
		for _, l := range lens {
			if l > 0 {
				used++
			}
		}
		if used == 0 {
			continue
		}
		codes := make([]uint16, n)
		canonicalCodes(lens, codes)
		root := uint(1 + r.IntN(10))
		if err := tab.build(lens, root); err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		want := make([]uint32, 1<<tab.root)
		for s, l := range lens {
			if l != 0 && uint(l) <= tab.root {
				for j := uint32(codes[s]); j < 1<<tab.root; j += 1 << l {
					want[j] = uint32(s)<<16 | uint32(l)
				}
			}
		}
		for j, e := range tab.t[:1<<tab.root] {
			if want[j] != e && (want[j] != 0 || e&linkBit == 0) {
				t.Fatalf("iteration %d (root %d): entry %d is %#x, want %#x", iter, tab.root, j, e, want[j])
			}
		}
		d := &Decoder{}
		for s, l := range lens {
			if l == 0 {
				continue
			}
			d.bb, d.nb = uint64(codes[s])|uint64(r.Uint32())<<l, 40
			got, err := d.symbol(&tab)
			if err != nil || int(got) != s || d.nb != 40-uint(l) {
				t.Fatalf("iteration %d (root %d): symbol %d (length %d) decoded as %d, %v", iter, root, s, l, got, err)
			}
		}
	}
}

// FuzzDecoder: any payload, decoded after a first message that fills the
// window with history, either fails as corrupt in both this Decoder and the
// standard library's decompressor, or gives both the same bytes.
func FuzzDecoder(f *testing.F) {
	hist := jsonText(3000)
	seeds := stdCompress(f, [][]byte{hist, jsonText(1200), randomBytes(rand.New(rand.NewPCG(1, 1)), 300)}, stdflate.BestSpeed)
	for _, s := range seeds[1:] {
		f.Add(s)
	}
	f.Add([]byte{0x00})
	f.Add(compressAll(NewEncoder(15), [][]byte{hist, jsonText(2000)}, 0, true)[1])
	f.Fuzz(func(t *testing.T, payload []byte) {
		d := NewDecoder(15)
		if _, err := decodeMessage(d, seeds[0], 1<<20); err != nil {
			t.Fatal(err)
		}
		got, err := decodeMessage(d, payload, 7)
		var ce CorruptError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("not a CorruptError: %v", err)
		}
		if len(payload) == 0 { // the empty message, where a stream is cut short (see more)
			if err != nil || len(got) != 0 {
				t.Fatalf("empty payload: %q, %v; want the empty message", got, err)
			}
			return
		}
		want, werr := stdInflate(payload, hist)
		if (err == nil) != (werr == nil) {
			t.Fatalf("Decoder: %v; standard library: %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("outputs differ: %d vs %d bytes", len(got), len(want))
		}
	})
}

// stdInflate is the reference decoder: the standard library's, given the
// payload and the tail followed by an empty final block so that it sees
// the end of a stream. A message ends where its input, tail included,
// ends; to tell that apart from a stream that reads into the extra bytes,
// it decodes twice with two different final blocks (stored, fixed) and
// accepts only when both end there and agree. Payload bytes left over
// after the stream's final block are an error.
func stdInflate(payload, dict []byte) ([]byte, error) {
	var out [2][]byte
	for i, final := range [][]byte{{0x01, 0x00, 0x00, 0xff, 0xff}, {0x03, 0x00}} {
		src := bytes.NewReader(slices.Concat(payload, syncTail, final))
		p, err := io.ReadAll(io.LimitReader(stdflate.NewReaderDict(src, dict), 1<<24))
		if err != nil {
			return nil, err
		}
		if src.Len() > len(syncTail)+len(final) {
			return nil, errors.New("data after the final block")
		}
		out[i] = p
	}
	if !bytes.Equal(out[0], out[1]) {
		return nil, errors.New("the stream reads past the tail")
	}
	return out[0], nil
}
