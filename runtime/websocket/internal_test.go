package websocket

// White-box checks of the pieces the conformance suite reaches only through
// the wire: header encoding, masking, UTF-8 validation, close payloads,
// the poller's run queue.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// maskRef is the byte-by-byte definition of RFC 6455 §5.3.
func maskRef(key uint32, pos int, b []byte) int {
	var k [4]byte
	binary.LittleEndian.PutUint32(k[:], key)
	for i := range b {
		b[i] ^= k[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

func TestHeaderRoundTrip(t *testing.T) {
	lengths := []int64{0, 1, 125, 126, 127, 1000, 65535, 65536, 1 << 32, 1<<63 - 1}
	wantLen := func(n int64) int {
		switch {
		case n > 65535:
			return 10
		case n > 125:
			return 4
		}
		return 2
	}
	for _, n := range lengths {
		for _, masked := range []bool{false, true} {
			for _, op := range []Opcode{OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong, 0x3, 0xF} {
				h := header{fin: n%2 == 0, rsv: RSV1 | RSV3, opcode: op, masked: masked, key: 0xA1B2C3D4, length: n}
				if !masked {
					h.key = 0
				}
				var b [maxHeaderSize]byte
				w := putHeader(b[:], &h)
				want := wantLen(n)
				if masked {
					want += 4
				}
				if w != want || headerLen(n, masked) != want {
					t.Fatalf("len %d masked %v: wrote %d bytes, headerLen %d, want %d", n, masked, w, headerLen(n, masked), want)
				}
				var got header
				r, err := parseHeader(b[:w], &got)
				if err != nil || r != w || got != h {
					t.Fatalf("round trip %+v: got %+v, %d, %v", h, got, r, err)
				}
				// Every strict prefix is "need more bytes", not an error.
				for i := 0; i < w; i++ {
					if r, err := parseHeader(b[:i], &got); r != 0 || err != nil {
						t.Fatalf("prefix %d of %d: %d %v", i, w, r, err)
					}
				}
			}
		}
	}
	var h header
	if _, err := parseHeader([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, &h); !errors.Is(err, ErrProtocol) {
		t.Fatalf("64-bit length with MSB set: %v", err)
	}
}

func TestMaskMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		for pos := 0; pos < 4; pos++ {
			key := r.Uint32()
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			want := bytes.Clone(b)
			wp := maskRef(key, pos, want)
			if gp := mask(key, pos, b); gp != wp || !bytes.Equal(b, want) {
				t.Fatalf("n=%d pos=%d: pos %d want %d, equal %v", n, pos, gp, wp, bytes.Equal(b, want))
			}
		}
	}
}

// Masking in pieces continues the key phase.
func TestMaskInPieces(t *testing.T) {
	orig := make([]byte, 200)
	for i := range orig {
		orig[i] = byte(i)
	}
	want := bytes.Clone(orig)
	maskRef(0xDEADBEEF, 0, want)
	got := bytes.Clone(orig)
	pos, p := 0, got
	for _, k := range []int{3, 1, 9, 33, 0, 54, 100} {
		pos = mask(0xDEADBEEF, pos, p[:k])
		p = p[k:]
	}
	if !bytes.Equal(got, want) {
		t.Fatal("masking in pieces differs from masking at once")
	}
}

func TestUTF8ValidatorMatchesStdlib(t *testing.T) {
	var cases [][]byte
	// Every 1-, 2- and 3-byte sequence over interesting bytes, and 4-byte
	// sequences starting F0-F5.
	interesting := []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF}
	for _, a := range interesting {
		cases = append(cases, []byte{a})
		for _, b := range interesting {
			cases = append(cases, []byte{a, b})
			for _, c := range interesting {
				cases = append(cases, []byte{a, b, c})
				if a >= 0xF0 && a <= 0xF5 {
					for _, d := range []byte{0x80, 0xBF, 0x41, 0xC0} {
						cases = append(cases, []byte{a, b, c, d})
					}
				}
			}
		}
	}
	for r := rune(0); r <= utf8.MaxRune; r += 97 {
		cases = append(cases, utf8.AppendRune([]byte("abcdefgh"), r))
	}
	for _, c := range cases {
		want := utf8.Valid(c)
		if got := validUTF8(c); got != want {
			t.Fatalf("validUTF8(%x) = %v, want %v", c, got, want)
		}
		// Fed one byte at a time: same verdict, and a prefix is rejected
		// as soon as it cannot start valid UTF-8.
		var v utf8Validator
		ok := true
		for i := range c {
			if !v.write(c[i : i+1]) {
				ok = false
				break
			}
		}
		if (ok && v.complete()) != want {
			t.Fatalf("incremental %x = %v, want %v", c, ok && v.complete(), want)
		}
	}
}

func TestStatusCodeValidity(t *testing.T) {
	for code := StatusCode(0); code < 70000; code++ {
		want := code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
		if code.validReceived() != want || code.Sendable() != want {
			t.Fatalf("%d: validReceived %v, Sendable %v", code, code.validReceived(), code.Sendable())
		}
	}
}

// TestCloseReason: any text becomes a reason Close accepts — valid UTF-8
// (one U+FFFD per invalid run) of at most 123 bytes, cut between
// characters.
func TestCloseReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"going", "going"},
		{strings.Repeat("z", 123), strings.Repeat("z", 123)},
		{strings.Repeat("z", 124), strings.Repeat("z", 123)},
		{strings.Repeat("é", 100), strings.Repeat("é", 61)},
		{"bad blob \xff\xfe", "bad blob \uFFFD"},
		{strings.Repeat("a", 121) + "\xff" + "bbb", strings.Repeat("a", 121)},
		{strings.Repeat("a", 120) + "\xff" + "bbb", strings.Repeat("a", 120) + "\uFFFD"},
	} {
		got := CloseReason(tc.in)
		if got != tc.want || len(got) > maxCloseReason || !utf8.ValidString(got) {
			t.Errorf("CloseReason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseClose(t *testing.T) {
	cases := []struct {
		p    []byte
		code StatusCode
		fail StatusCode
	}{
		{nil, StatusNoStatusRcvd, 0},
		{[]byte{3}, 0, StatusProtocolError},
		{[]byte{3, 0xE8}, 1000, 0},
		{[]byte{3, 0xE8, 'o', 'k'}, 1000, 0},
		{[]byte{3, 0xED}, 0, StatusProtocolError}, // 1005
		{[]byte{3, 0xE8, 0xFF}, 0, StatusInvalidFramePayload},
		{[]byte{0x0F, 0xA0}, 4000, 0},
		{[]byte{0x13, 0x88}, 0, StatusProtocolError}, // 5000
	}
	for _, c := range cases {
		ce, err := parseClose(c.p)
		if c.fail != 0 {
			var f *failure
			if !errors.As(err, &f) || f.code != c.fail {
				t.Fatalf("%x: %v, want failure %d", c.p, err, c.fail)
			}
			continue
		}
		if err != nil || ce.Code != c.code {
			t.Fatalf("%x: %+v %v", c.p, ce, err)
		}
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 §1.3.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatal(got)
	}
	for key, ok := range map[string]bool{
		"dGhlIHNhbXBsZSBub25jZQ==": true,
		"dGhlIHNhbXBsZSBub25jZQ=":  false,
		"dGhlIHNhbXBsZSBub25jZQ":   false,
		"AAAAAAAAAAAAAAAAAAAAAA==": true,
		"AAAAAAAAAAAAAAAAAAAAAAA=": false, // 17 bytes
		"!!!!!!!!!!!!!!!!!!!!!!==": false,
		"":                         false,
	} {
		if validKey(key) != ok {
			t.Fatalf("validKey(%q) = %v", key, !ok)
		}
	}
}

func TestParseExtensions(t *testing.T) {
	cases := []struct {
		in   []string
		want []ExtensionElement
		bad  bool
	}{
		{in: []string{""}},
		{in: []string{"permessage-deflate"}, want: []ExtensionElement{{Name: "permessage-deflate"}}},
		{in: []string{"permessage-deflate; client_max_window_bits, x-foo;a=1 ;b=\"2\""}, want: []ExtensionElement{
			{Name: "permessage-deflate", Params: []Param{{Name: "client_max_window_bits"}}},
			{Name: "x-foo", Params: []Param{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}},
		}},
		{in: []string{"a", "b;c=d"}, want: []ExtensionElement{{Name: "a"}, {Name: "b", Params: []Param{{Name: "c", Value: "d"}}}}},
		{in: []string{" , a ,, "}, want: []ExtensionElement{{Name: "a"}}},
		{in: []string{"a;b=\"x y\""}, bad: true},
		{in: []string{"a;b=\"x"}, bad: true},
		{in: []string{"a;"}, bad: true},
		{in: []string{"a b"}, bad: true},
		{in: []string{"a;b="}, bad: true},
		{in: []string{";a"}, bad: true},
		{in: []string{"a;b=\"\""}, bad: true},
	}
	for _, c := range cases {
		got, err := ParseExtensions(c.in)
		if c.bad {
			if err == nil {
				t.Fatalf("%q: parsed as %+v", c.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Fatalf("%q: %+v %v", c.in, got, err)
		}
		for i := range got {
			if got[i].Name != c.want[i].Name || len(got[i].Params) != len(c.want[i].Params) {
				t.Fatalf("%q: %+v", c.in, got)
			}
			for j := range got[i].Params {
				if got[i].Params[j] != c.want[i].Params[j] {
					t.Fatalf("%q: %+v", c.in, got)
				}
			}
		}
	}
}

// ReadAppend into a buffer of exactly the message's size fills it in place:
// no allocation and no copy (it used to grow a full buffer before noticing
// the message had ended).
func TestReadAppendExactCapacity(t *testing.T) {
	local, peer := tcpPair(t)
	defer peer.Close()
	c := newConn(local, true, resolveConfig(0, 0, 0, 0, 0, 0, false), "", nil, nil)
	defer c.CloseNow()
	for _, parts := range [][]int{{0}, {16}, {5000}, {65536}, {100, 0, 900}, {70000, 1}} {
		var stream []byte
		total := 0
		for i, n := range parts {
			op := OpContinuation
			if i == 0 {
				op = OpText
			}
			stream = append(stream, frameBytes(i == len(parts)-1, 0, op, false, bytes.Repeat([]byte("a"), n))...)
			total += n
		}
		go peer.Write(stream)
		buf := make([]byte, 0, total)
		_, out, err := c.ReadAppend(context.Background(), buf)
		if err != nil || len(out) != total {
			t.Fatalf("%v: %d bytes, %v", parts, len(out), err)
		}
		if cap(out) != total || total > 0 && &out[0] != &buf[:1][0] {
			t.Fatalf("%v: ReadAppend reallocated an exactly-sized buffer (cap %d)", parts, cap(out))
		}
	}
}

// Long inputs at every key phase and at addresses around 32-byte
// boundaries (mask aligns its AVX2 loop on amd64, masking the head
// word-wise), match the reference.
func TestMaskLongMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 70000)
	for _, n := range []int{63, 64, 65, 127, 128, 129, 160, 1000, 4096, 65536, 65536 + 31} {
		for _, off := range []int{0, 1, 2, 3, 6, 8, 14, 17, 31, 32} {
			for pos := 0; pos < 4; pos++ {
				key := r.Uint32()
				b := buf[off : off+n]
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				want := bytes.Clone(b)
				wp := maskRef(key, pos, want)
				if gp := mask(key, pos, b); gp != wp || !bytes.Equal(b, want) {
					t.Fatalf("n=%d off=%d pos=%d: differs from the reference", n, off, pos)
				}
			}
		}
	}
}

// The run queue is first in, first out across its growth, with the ring
// wrapped around at the moment it doubles.
func TestEntryQueueOrder(t *testing.T) {
	entries := make([]*pollEntry, 1000)
	for i := range entries {
		entries[i] = &pollEntry{slot: int32(i)}
	}
	var q entryQueue
	in, out := 0, 0
	// Push three, pop two, so head moves round the ring as it grows.
	for in < len(entries) {
		for range 3 {
			if in < len(entries) {
				q.push(entries[in])
				in++
			}
		}
		for range 2 {
			e := q.pop()
			if e != entries[out] {
				t.Fatalf("pop %d: got slot %d", out, e.slot)
			}
			out++
		}
	}
	for e := q.pop(); e != nil; e = q.pop() {
		if e != entries[out] {
			t.Fatalf("pop %d: got slot %d", out, e.slot)
		}
		out++
	}
	if out != len(entries) || q.n != 0 {
		t.Fatalf("popped %d of %d, %d left", out, len(entries), q.n)
	}
	for i, e := range q.ring {
		if e != nil {
			t.Fatalf("ring[%d] still holds slot %d", i, e.slot)
		}
	}
}
