package flatemsg

import (
	"bytes"
	"fmt"
	"testing"
)

// periodic is n bytes repeating every period bytes.
func periodic(n, period int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % period)
	}
	return p
}

// jsonRecords is n bytes of JSON records of about 170 bytes, the same
// but for one small field whose value is picked pseudo-randomly (xorshift,
// so the same every run): an event feed whose matches run long and stop
// anywhere.
func jsonRecords(n int) []byte {
	x := uint32(7)
	var b []byte
	for len(b) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = fmt.Appendf(b, `{"type":"order.update","status":"shipped","customer":{"name":"ada lovelace","city":"london","tier":%d},"items":[{"sku":"SKU-00042","qty":1,"price":12.50}]},`, x%4)
	}
	return b[:n]
}

// TestSmallWindowRatio: data whose repeats lie within a small window
// compresses at 9 and 10 window bits about as well as with the full
// 32 KiB (RFC 7692 §7.1.2.1 lets a client ask for as little as 2^8).
// Matches reached only as far back as the last position the encoder had
// hashed, not the last occurrence: with these 256 KiB inputs the 251-byte
// period came out 17.6x larger at 10 bits than at 15 and 30.4x at 9, the
// 46-byte JSON 3.1x at 9 bits, the JSON records 2.6x and 3.5x at 10 and 9.
// Every message decodes with the window enforced (inflateEach's
// dictionary holds only the window).
func TestSmallWindowRatio(t *testing.T) {
	const size = 256 << 10
	for _, tc := range []struct {
		name string
		p    []byte
		max  float64 // compressed size at 9 and 10 bits over that at 15
	}{
		{"period 251", periodic(size, 251), 2},
		{"period 46", bytes.Repeat([]byte(`{"user":"ada","score":12345,"tags":["a","b"]},`), size/46), 1.5},
		{"json records", jsonRecords(size), 1.5},
	} {
		sizes := map[int]int{}
		for _, bits := range []int{15, 10, 9} {
			c := compressAll(NewEncoder(bits), [][]byte{tc.p}, 0, true)
			got := inflateEach(t, c, []int{len(tc.p)}, bits, true)
			if !bytes.Equal(got[0], tc.p) {
				t.Fatalf("%s, %d bits: differs after the round trip", tc.name, bits)
			}
			sizes[bits] = len(c[0])
		}
		for _, bits := range []int{10, 9} {
			if r := float64(sizes[bits]) / float64(sizes[15]); r > tc.max {
				t.Errorf("%s: %d bytes at %d window bits, %.1fx the %d at 15 bits (at most %gx)",
					tc.name, sizes[bits], bits, r, sizes[15], tc.max)
			}
		}
		t.Logf("%s: %d bytes in, at 15/10/9 bits %d/%d/%d", tc.name, len(tc.p), sizes[15], sizes[10], sizes[9])
	}
}
