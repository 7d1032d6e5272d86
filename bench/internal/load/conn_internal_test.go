package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/wsrpc/wsrpc/internal/testmsg"
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
			total, hdr, err := frameLen(c.wbuf, len(p))
			if err != nil || total != len(c.wbuf) {
				t.Fatalf("n=%d h=%d: frameLen %d (%v), buffer %d", n, h, total, err, len(c.wbuf))
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

// TestReadFrameRejectsBadLengths guards readFrame against a payload length
// it cannot take: one with the most significant bit set (RFC 6455 §5.2:
// it MUST be 0; as an int it is negative, and slicing with it panicked the
// client), and a valid one above the scenario's largest frame (which the
// client would have allocated). Both are verification failures, and the
// read buffer keeps its size.
func TestReadFrameRejectsBadLengths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []byte
	}{
		{"top bit", []byte{0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
		{"top bit only", []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"1 TiB", []byte{0x82, 0x7F, 0, 0, 0x01, 0, 0, 0, 0, 0}},
		{"limit+1, 64-bit", binary.BigEndian.AppendUint64([]byte{0x82, 0x7F}, 70001)},
		{"limit+1, 16-bit", []byte{0x82, 0x7E, 0x11, 0x71}}, // 4465
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := 70000
			if tc.name == "limit+1, 16-bit" {
				limit = 4464
			}
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go func() { _, _ = b.Write(tc.header) }()
			_ = a.SetDeadline(time.Now().Add(5 * time.Second))
			c := &conn{nc: a, rbuf: make([]byte, 512), maxFrame: limit}
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				_, err = c.readFrame()
			}()
			if !errors.Is(err, ErrVerify) {
				t.Fatalf("readFrame = %v, want a verification failure", err)
			}
			if len(c.rbuf) != 512 {
				t.Fatalf("read buffer grew to %d bytes", len(c.rbuf))
			}
		})
	}
	// The limit itself is taken.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = b.Write(append([]byte{0x82, 0x7E, 0x11, 0x70}, make([]byte, 4464)...)) }()
	_ = a.SetDeadline(time.Now().Add(5 * time.Second))
	c := &conn{nc: a, rbuf: make([]byte, 512), maxFrame: 4464}
	if f, err := c.readFrame(); err != nil || len(f.payload) != 4464 {
		t.Fatalf("frame at the limit: %d bytes, %v", len(f.payload), err)
	}
}

// deflater is a server's permessage-deflate compressor (RFC 7692 §7.2.1):
// each message is compressed and sync-flushed (flushes times), and the
// last 4 bytes (00 00 ff ff) are removed; with takeover the context
// carries over to the next message.
type deflater struct {
	takeover bool
	buf      bytes.Buffer
	fw       *flate.Writer
}

func (d *deflater) message(t *testing.T, flushes int, parts ...[]byte) []byte {
	t.Helper()
	if d.fw == nil {
		d.fw, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	} else if !d.takeover {
		d.fw.Reset(&d.buf)
	}
	d.buf.Reset()
	for i, p := range parts {
		if _, err := d.fw.Write(p); err != nil {
			t.Fatal(err)
		}
		// One sync flush after each part: the parts are separate flush
		// segments; then the extra ones.
		n := 1
		if i == len(parts)-1 {
			n = flushes
		}
		for range n {
			if err := d.fw.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := d.buf.Bytes()
	if !bytes.HasSuffix(b, deflateTail) {
		t.Fatal("no sync flush at the end")
	}
	return bytes.Clone(b[:len(b)-4])
}

// TestInflateChecksLength guards the length check of compressed echoes:
// an inflated echo shorter or longer than what was sent fails, whether
// the extra text shares the last sync flush or follows in a flush of its
// own, while legal encodings of the right text pass: one sync flush, two
// in a row, and (with context takeover) messages that end exactly where
// the inflater's 32 KiB window wraps, which makes it hand over the text
// before it has read the message's last blocks.
func TestInflateChecksLength(t *testing.T) {
	msgs := make([][]byte, 100)
	for i := range msgs {
		// 1 KiB each: message 31 ends at 32 KiB exactly.
		msgs[i] = bytes.Repeat([]byte(fmt.Sprintf("message %03d, ", i)), 100)[:1024]
	}
	orders := testmsg.Orders(64, 1024)
	type step struct {
		want    []byte
		parts   [][]byte
		flushes int
		fail    bool // inflate must fail on this message
	}
	good := func(p []byte) step { return step{want: p, parts: [][]byte{p}, flushes: 1} }
	var wraps []step
	for _, p := range msgs {
		wraps = append(wraps, good(p))
	}
	var doubles []step
	for _, p := range orders {
		s := good(p)
		s.flushes = 2
		doubles = append(doubles, s)
	}
	for _, tc := range []struct {
		name     string
		takeover bool
		steps    []step
	}{
		{"exact, window wraps", true, wraps},
		{"exact, no context", false, wraps},
		{"two flushes", true, doubles},
		{"two flushes, no context", false, doubles},
		{"shorter", false, []step{good(orders[0]), {want: orders[1], parts: [][]byte{orders[1][:300]}, flushes: 1, fail: true}}},
		{"shorter, takeover", true, []step{good(orders[0]), {want: orders[1], parts: [][]byte{orders[1][:300]}, flushes: 1, fail: true}}},
		{"empty", false, []step{{want: orders[0], parts: [][]byte{nil}, flushes: 1, fail: true}}},
		{"longer, same flush", false, []step{{want: orders[0], parts: [][]byte{append(bytes.Clone(orders[0]), 'x')}, flushes: 1, fail: true}}},
		{"longer, same flush, takeover", true, []step{good(orders[1]), {want: orders[0], parts: [][]byte{append(bytes.Clone(orders[0]), orders[2]...)}, flushes: 1, fail: true}}},
		{"longer, own flush", false, []step{{want: orders[0], parts: [][]byte{orders[0], []byte("x")}, flushes: 1, fail: true}}},
		// Under takeover the extra text is found at the next message,
		// whose text it precedes (see inflate).
		{"longer, own flush, takeover", true, []step{{want: orders[0], parts: [][]byte{orders[0], []byte("x")}, flushes: 1}, {want: orders[1], parts: [][]byte{orders[1]}, flushes: 1, fail: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{deflate: true, serverNoCtx: !tc.takeover}
			c.inflater = flate.NewReader(&c.feed)
			d := &deflater{takeover: tc.takeover}
			for i, s := range tc.steps {
				p := d.message(t, s.flushes, s.parts...)
				// As stream.receive does for each compressed message.
				if c.serverNoCtx {
					c.resetInflater()
				}
				c.feed.add(p)
				err := c.inflate(s.want)
				if s.fail {
					if !errors.Is(err, ErrVerify) {
						t.Fatalf("message %d: inflate = %v, want a verification failure", i, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
		})
	}
}
