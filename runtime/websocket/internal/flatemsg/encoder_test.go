package flatemsg

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/wsrpc/wsrpc/internal/testmsg"
)

// syncTail is what a permessage-deflate receiver appends (RFC 7692 §7.2.2).
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateEach decodes each compressed message as a receiver with context
// takeover would, given only the last 1<<windowBits bytes it has seen as
// the dictionary: a match reaching further back fails to decode. With
// takeover false every message is decoded on its own. Three decoders must
// agree: the standard library's, klauspost's and this package's.
func inflateEach(t testing.TB, comp [][]byte, sizes []int, windowBits int, takeover bool) [][]byte {
	t.Helper()
	var hist []byte
	out := make([][]byte, len(comp))
	dec := NewDecoder(windowBits)
	for i, c := range comp {
		if !takeover {
			dec.Reset()
		}
		got, err := decodeMessage(dec, c, 1000)
		if err != nil {
			t.Fatalf("message %d (%d bytes compressed): Decoder: %v", i, len(c), err)
		}
		if len(got) != sizes[i] {
			t.Fatalf("message %d: Decoder gave %d bytes, want %d", i, len(got), sizes[i])
		}
		var dict []byte
		if takeover {
			dict = hist[max(0, len(hist)-1<<windowBits):]
		}
		out[i] = got
		for _, r := range []io.Reader{
			stdflate.NewReaderDict(io.MultiReader(bytes.NewReader(c), bytes.NewReader(syncTail)), dict),
			flate.NewReaderDict(io.MultiReader(bytes.NewReader(c), bytes.NewReader(syncTail)), dict),
		} {
			got := make([]byte, sizes[i])
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatalf("message %d (%d bytes compressed): %v", i, len(c), err)
			}
			// Nothing may follow the message but the sync flush's end.
			if n, err := r.Read(make([]byte, 1)); n != 0 || (err != io.ErrUnexpectedEOF && err != io.EOF) {
				t.Fatalf("message %d: %d more bytes after the message (%v)", i, n, err)
			}
			if !bytes.Equal(got, out[i]) {
				t.Fatalf("message %d: the decoders disagree", i)
			}
		}
		hist = append(hist, out[i]...)
	}
	return out
}

// compressAll sends msgs through one Encoder, each written in chunks of
// at most chunk bytes (0: in one Write).
func compressAll(e *Encoder, msgs [][]byte, chunk int, takeover bool) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		var dst []byte
		for p := m; ; {
			n := len(p)
			if chunk > 0 {
				n = min(n, chunk)
			}
			dst = e.Write(dst, p[:n])
			p = p[n:]
			if len(p) == 0 {
				break
			}
		}
		out[i] = e.Flush(dst)
		if !takeover {
			e.Reset()
		}
	}
	return out
}

// jsonText is a JSON-like message of size bytes (at least 200), the
// benchmarks' order events.
func jsonText(size int) []byte { return testmsg.Orders(1, size)[0] }

func randomBytes(r *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		msgs [][]byte
	}{
		{"empty", [][]byte{{}, {}, []byte("a"), {}}},
		{"tiny", [][]byte{[]byte("a"), []byte("ab"), []byte("abc"), []byte("abcd"), []byte("abcde")}},
		{"json", func() [][]byte {
			var m [][]byte
			for range 200 {
				m = append(m, jsonText(200+r.IntN(3000)))
			}
			return m
		}()},
		{"random", [][]byte{randomBytes(r, 100), randomBytes(r, 70000), randomBytes(r, 5)}},
		{"runs", [][]byte{bytes.Repeat([]byte{'x'}, 100000), bytes.Repeat([]byte("ab"), 3000), bytes.Repeat([]byte{0}, 259)}},
		{"mixed", [][]byte{append(randomBytes(r, 40000), bytes.Repeat([]byte("hello "), 8000)...), jsonText(1024)}},
		{"one symbol", [][]byte{bytes.Repeat([]byte{7}, 4), []byte{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}}},
	}
	for _, tc := range cases {
		sizes := make([]int, len(tc.msgs))
		for i, m := range tc.msgs {
			sizes[i] = len(m)
		}
		for _, bits := range []int{8, 9, 12, 15} {
			for _, takeover := range []bool{true, false} {
				for _, chunk := range []int{0, 1, 777, blockMax + 3} {
					if chunk == 1 && sizes[0]+sizes[len(sizes)-1] > 10000 {
						continue // byte at a time only for the small cases: slow, same paths
					}
					name := fmt.Sprintf("%s/bits=%d/takeover=%v/chunk=%d", tc.name, bits, takeover, chunk)
					t.Run(name, func(t *testing.T) {
						comp := compressAll(NewEncoder(bits), tc.msgs, chunk, takeover)
						got := inflateEach(t, comp, sizes, bits, takeover)
						for i := range got {
							if !bytes.Equal(got[i], tc.msgs[i]) {
								t.Fatalf("message %d differs after the round trip", i)
							}
						}
					})
				}
			}
		}
	}
}

// TestEmptyMessage: §7.2.3.6's single 0x00 byte.
func TestEmptyMessage(t *testing.T) {
	e := NewEncoder(15)
	if got := e.Flush(nil); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("empty message = %x, want 00", got)
	}
	e.Write(nil, []byte("hello hello hello"))
	e.Flush(nil)
	if got := e.Flush(nil); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("empty message after context = %x, want 00", got)
	}
}

// TestContextTakeoverHelps: the second copy of a message costs a few
// bytes with context takeover and as much as the first without.
func TestContextTakeoverHelps(t *testing.T) {
	msg := jsonText(1024)
	with := compressAll(NewEncoder(15), [][]byte{msg, msg}, 0, true)
	without := compressAll(NewEncoder(15), [][]byte{msg, msg}, 0, false)
	if len(with[1]) > 24 {
		t.Errorf("repeat with context takeover: %d bytes, want a handful", len(with[1]))
	}
	if len(without[1]) != len(without[0]) {
		t.Errorf("repeat without context takeover: %d bytes, first was %d", len(without[1]), len(without[0]))
	}
}

// TestBlockChoice: random bytes go stored (never more than 5 bytes a
// block over their size), a short text with few repeats goes with fixed
// codes, a long text with dynamic codes.
func TestBlockChoice(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	raw := randomBytes(r, 3*blockMax)
	comp := NewEncoder(15).Write(nil, raw)
	if max := len(raw) + 3*5; len(comp) > max {
		t.Errorf("random input: %d bytes for %d, want at most %d", len(comp), len(raw), max)
	}
	if comp[0]&0b110 != 0 {
		t.Errorf("random input: block type %d, want stored (0)", comp[0]>>1&3)
	}
	e := NewEncoder(15)
	short := e.Flush(e.Write(nil, []byte("hi there")))
	if short[0]&0b110 != 0b010 {
		t.Errorf("short text: block type %d, want fixed (1)", short[0]>>1&3)
	}
	e = NewEncoder(15)
	long := e.Flush(e.Write(nil, jsonText(4096)))
	if long[0]&0b110 != 0b100 {
		t.Errorf("long text: block type %d, want dynamic (2)", long[0]>>1&3)
	}
}

// TestLongStream: table entries keep 16 bits of a stream position, so on
// a long-lived connection they alias positions 64 KiB apart; every
// candidate is checked, so the output stays right.
func TestLongStream(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	e := NewEncoder(15)
	e.base = math.MaxInt - 12345 // any starting point works, and the position wraps soon
	var msgs [][]byte
	for range 600 {
		msgs = append(msgs, jsonText(200+r.IntN(3900)))
	}
	sizes := make([]int, len(msgs))
	for i := range msgs {
		sizes[i] = len(msgs[i])
	}
	comp := compressAll(e, msgs, 0, true)
	got := inflateEach(t, comp, sizes, 15, true)
	for i := range got {
		if !bytes.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
}

// TestCodeLengths checks the length-limited code on skewed counts: every
// code complete (Kraft sum exactly one), none longer than the limit.
func TestCodeLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	work := make([]uint64, 400)
	for trial := range 2000 {
		limit, n := maxCodeBits, 2+r.IntN(numLitLen-2)
		if trial%2 == 0 {
			limit, n = maxCLBits, 2+r.IntN(numCodeLen-2)
		}
		freq := make([]uint32, n)
		for i := range freq {
			switch trial % 3 {
			case 0: // Fibonacci-like: forces deep trees
				if i < 2 {
					freq[i] = 1
				} else {
					freq[i] = min(freq[i-1]+freq[i-2], 1<<20)
				}
			case 1:
				if r.IntN(3) > 0 {
					freq[i] = uint32(r.IntN(1000))
				}
			default:
				freq[i] = uint32(1 + r.IntN(3))
			}
		}
		lens := make([]uint8, n)
		codeLengths(freq, limit, lens, work)
		nonzero := 0
		for _, f := range freq {
			if f != 0 {
				nonzero++
			}
		}
		kraft, used := 0.0, 0
		for i, l := range lens {
			if (l == 0) != (freq[i] == 0) && nonzero > 1 {
				t.Fatalf("trial %d: symbol %d freq %d got length %d", trial, i, freq[i], l)
			}
			if int(l) > limit {
				t.Fatalf("trial %d: length %d over the limit %d", trial, l, limit)
			}
			if l > 0 {
				used++
				kraft += 1 / float64(uint64(1)<<l)
			}
		}
		if nonzero > 0 && kraft != 1 {
			t.Fatalf("trial %d: Kraft sum %v over %d codes, want 1", trial, kraft, used)
		}
	}
}

// TestIncompressibleGoesStored: a large random block is sent stored
// without being coded (looksRandom), and text is never taken for random.
func TestIncompressibleGoesStored(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	if !looksRandom(randomBytes(r, 1024)) {
		t.Error("1 KiB of random bytes not recognised")
	}
	for i := range 50 {
		if !looksRandom(randomBytes(r, 16<<10)) {
			t.Errorf("random block %d not recognised", i)
		}
	}
	for _, size := range []int{1024, 4096, 16 << 10} {
		if looksRandom(jsonText(size)) {
			t.Errorf("%d bytes of JSON taken for random", size)
		}
	}
	// Skewed bytes without repeats a matcher would find: Huffman codes
	// still help, so this must not be sent stored.
	skew := make([]byte, 8192)
	for i := range skew {
		skew[i] = "aaaabbcdeef"[r.IntN(11)] - byte(r.IntN(2))*32 // and upper case
	}
	if looksRandom(skew) {
		t.Error("skewed bytes taken for random")
	}
}
