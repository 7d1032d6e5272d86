package websocket

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// fillText returns n bytes of valid UTF-8 made of the filler runes, padded
// with ASCII to the exact length.
func fillText(filler string, n int) []byte {
	p := make([]byte, 0, n)
	for len(p)+len(filler) <= n {
		p = append(p, filler...)
	}
	for len(p) < n {
		p = append(p, 'a')
	}
	return p
}

// utf8Sequences is every 1-, 2- and 3-byte sequence over bytes on each
// side of every boundary table 3-7 of the Unicode Standard draws, the
// 4-byte sequences over the F0..F5 and F8 leads, and each of those bytes
// before and after a well-formed sequence of every length.
func utf8Sequences() [][]byte {
	interesting := []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF}
	var seqs [][]byte
	for _, a := range interesting {
		seqs = append(seqs, []byte{a})
		for _, b := range interesting {
			seqs = append(seqs, []byte{a, b})
			for _, c := range interesting {
				seqs = append(seqs, []byte{a, b, c})
				if a >= 0xF0 && a <= 0xF5 || a == 0xF8 {
					for _, d := range []byte{0x41, 0x80, 0x8F, 0x90, 0xBF, 0xC0} {
						seqs = append(seqs, []byte{a, b, c, d})
					}
				}
			}
		}
		for _, r := range []rune{0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF} {
			seqs = append(seqs, utf8.AppendRune([]byte{a}, r), append(utf8.AppendRune(nil, r), a))
		}
	}
	return seqs
}

// The vector check (validRunes on amd64) agrees with utf8.Valid for every
// short sequence placed across each place the loop changes step: the
// 32-byte block boundaries, the 128-byte ASCII sprint, the end of the
// last full block and the padded tail, after ASCII and after multi-byte
// text (which take the sprint and the lookup paths).
func TestValidRunesMatchesStdlib(t *testing.T) {
	seqs := utf8Sequences()
	checked := 0
	var p []byte
	for _, filler := range []string{"a", "€"} {
		var fill [289][]byte
		for n := range fill {
			fill[n] = fillText(filler, n)
		}
		// 288: a sequence ending a 128-byte group, then 128 bytes the
		// ASCII sprint takes, which must see what the group left open.
		for _, c := range []struct {
			total int
			at    []int
		}{
			{64, []int{0, 29, 30, 31, 32, 60, 61, 62, 63}},
			{197, []int{125, 126, 127, 128, 193, 194, 195, 196}},
			{288, []int{124, 125, 126, 127}},
		} {
			total := c.total
			for _, i := range c.at {
				for _, s := range seqs {
					if i+len(s) > total {
						continue
					}
					p = append(append(append(p[:0], fill[i]...), s...), fill[total-i-len(s)]...)
					want := utf8.Valid(p)
					if got := validRunes(p); got != want {
						t.Fatalf("filler %q, %x at %d of %d: validRunes = %v, utf8.Valid = %v", filler, s, i, total, got, want)
					}
					checked++
				}
			}
		}
	}
	if checked < 500_000 {
		t.Fatalf("only %d inputs checked", checked)
	}
}

// Every pair of bytes after each state a valid prefix can leave (between
// code points, and inside each kind of sequence), across a block boundary
// and at the very end: the table entries a pair of continuation bytes
// reaches are only reachable after a lead.
func TestValidRunesAllPairs(t *testing.T) {
	prefixes := [][]byte{{}, {0xC2}, {0xE1}, {0xE1, 0x80}, {0xE0}, {0xED}, {0xF1}, {0xF1, 0x80}, {0xF1, 0x80, 0x80}, {0xF0}, {0xF4}}
	q := fillText("a", 64)
	for _, pre := range prefixes {
		for _, at := range []int{31 - len(pre), 62 - len(pre)} {
			copy(q, fillText("a", 64))
			copy(q[at:], pre)
			i := at + len(pre)
			for x := 0; x < 1<<16; x++ {
				q[i], q[i+1] = byte(x>>8), byte(x)
				if got, want := validRunes(q), utf8.Valid(q); got != want {
					t.Fatalf("%x then %02x %02x at %d: validRunes = %v, utf8.Valid = %v", pre, q[i], q[i+1], i, got, want)
				}
			}
		}
	}
}

// Long valid text of every width with one byte changed at random, and
// every code point, 1,000 to a buffer.
func TestValidRunesMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	base := []byte(strings.Repeat("héllo wörld ✓ 😀 κόσμε, ", 40))
	for range 5000 {
		p := base[:64+r.IntN(len(base)-64)]
		q := append([]byte(nil), p...)
		q[r.IntN(len(q))] = byte(r.Uint32())
		if got, want := validRunes(q), utf8.Valid(q); got != want {
			t.Fatalf("%q: validRunes = %v, utf8.Valid = %v", q, got, want)
		}
	}
	var buf []byte
	for cp := rune(0); cp <= utf8.MaxRune; cp++ {
		buf = utf8.AppendRune(buf, cp)
		if cp%1000 == 999 || cp == utf8.MaxRune {
			if !validRunes(buf) {
				t.Fatalf("code points up to U+%04X rejected", cp)
			}
			buf = buf[:0]
		}
	}
}
