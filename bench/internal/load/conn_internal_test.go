package load

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// maskNaive is RFC 6455 §5.3 as written: byte i XOR key byte i mod 4.
func maskNaive(key [4]byte, b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[i] ^ key[i%4]
	}
	return out
}

func TestMaskCopy(t *testing.T) {
	src := make([]byte, 300)
	for i := range src {
		src[i] = byte(i*7 + 3)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	k := binary.LittleEndian.Uint32(key[:])
	for n := range len(src) {
		dst := make([]byte, n)
		maskCopy(k, dst, src[:n])
		if want := maskNaive(key, src[:n]); !bytes.Equal(dst, want) {
			t.Fatalf("len %d: maskCopy = % x, want % x", n, dst, want)
		}
		// In place, and back: masking twice is the identity.
		maskCopy(k, dst, dst)
		if !bytes.Equal(dst, src[:n]) {
			t.Fatalf("len %d: masking twice did not restore the input", n)
		}
	}
}

// TestAppendFrameHead checks the frame appendFrame builds: header, key, and
// the payload with head in front, masked with the key's phase carried
// across head's end — for head lengths that end on every phase.
func TestAppendFrameHead(t *testing.T) {
	p := bytes.Repeat([]byte("abcdefghij"), 7000) // 70,000 bytes: 64-bit length
	for _, n := range []int{0, 5, 100, 126, 65535, len(p)} {
		for _, h := range []int{0, 1, 2, 3, 8} {
			c := &conn{key: 1}
			head := []byte("01234567")[:h]
			c.appendFrame(opBinary, false, p[:n], head)
			total, hdr := frameLen(c.wbuf)
			if total != len(c.wbuf) {
				t.Fatalf("n=%d h=%d: frameLen %d, buffer %d", n, h, total, len(c.wbuf))
			}
			var key [4]byte
			copy(key[:], c.wbuf[hdr-4:hdr])
			got := maskNaive(key, c.wbuf[hdr:])
			want := append([]byte(nil), p[:n]...)
			copy(want, head)
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d h=%d: unmasked payload differs", n, h)
			}
		}
	}
}

func BenchmarkAppendFrame64K(b *testing.B) {
	p := make([]byte, 64<<10)
	c := &conn{key: 1}
	head := make([]byte, 8)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		c.wbuf = c.wbuf[:0]
		c.appendFrame(opBinary, false, p, head)
	}
}
