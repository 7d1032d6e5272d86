package websocket

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// The drain of a failed connection (drainFrames) parses what a hostile
// peer sends after the failure: FuzzDrainFrames feeds it arbitrary
// buffered and socket bytes, in chunks of 1 to 7 bytes or all at once,
// and checks it against a sequential model — no panic, no hang, the same
// verdict on whether the peer's close frame arrived.

// scriptConn serves data in chunks of at most chunk bytes, then EOF.
type scriptConn struct {
	data  []byte
	chunk int
	reads int64
}

func (s *scriptConn) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), s.chunk, len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	s.reads += int64(n)
	return n, nil
}
func (s *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) LocalAddr() net.Addr              { return nil }
func (s *scriptConn) RemoteAddr() net.Addr             { return nil }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// modelDrain is the reference: whether s, after left bytes of the frame
// in progress (a close frame if closing), holds a whole close frame.
func modelDrain(s []byte, left int64, closing bool) bool {
	pos := 0
	skip := func(n int64) bool {
		if int64(len(s)-pos) < n {
			pos = len(s)
			return false
		}
		pos += int(n)
		return true
	}
	if !skip(left) {
		return false
	}
	if closing {
		return true
	}
	for {
		var h header
		n, err := parseHeader(s[pos:], &h)
		if err != nil || n == 0 {
			return false
		}
		pos += n
		if !skip(h.length) {
			return false
		}
		if h.opcode == OpClose {
			return true
		}
	}
}

func FuzzDrainFrames(f *testing.F) {
	hdr := func(op byte, l int64) []byte {
		b := []byte{0x80 | op}
		switch {
		case l < 126:
			b = append(b, byte(l))
		case l < 1<<16:
			b = append(b, 126, byte(l>>8), byte(l))
		default:
			b = append(b, 127)
			b = binary.BigEndian.AppendUint64(b, uint64(l))
		}
		return b
	}
	f.Add([]byte{}, append(hdr(1, 3), "abc"...), uint16(5), int64(0), false, uint8(1))
	f.Add(hdr(2, 10), append([]byte("0123456789"), hdr(8, 2)...), uint16(3), int64(4), false, uint8(1))
	f.Add([]byte{0x88}, []byte{0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint16(0), int64(0), false, uint8(1))
	f.Add([]byte{}, []byte{0x88, 0x82, 1, 2, 3, 4, 0, 0}, uint16(0), int64(70000), false, uint8(255))
	f.Fuzz(func(t *testing.T, buffered, sock []byte, pos uint16, left int64, closing bool, chunk uint8) {
		if left < 0 || left > 1<<20 {
			return
		}
		if len(buffered) > largeBufSize {
			buffered = buffered[:largeBufSize]
		}
		p := int(pos)
		if p > len(buffered) {
			p = len(buffered)
		}
		sc := &scriptConn{data: append([]byte(nil), sock...), chunk: int(chunk)%7 + 1}
		if chunk > 200 {
			sc.chunk = 1 << 20
		}
		c := &Conn{nc: sc, cfg: resolveConfig(0, 1<<30, 0, 0, 0, time.Second, false)}
		d := &drainFrom{left: left, closing: closing, buf: getBuf(largeBufSize)}
		copy((*d.buf)[p:], buffered[p:])
		d.pos, d.end = p, len(buffered)
		done := make(chan bool, 1)
		go func() { done <- c.drainFrames(d) }()
		var got bool
		select {
		case got = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("drainFrames hangs")
		}
		all := append(append([]byte(nil), buffered[p:]...), sock...)
		if want := modelDrain(all, left, closing); got != want {
			t.Fatalf("drainFrames=%v, model=%v (buffered %x sock %x left %d closing %v)", got, want, buffered[p:], sock, left, closing)
		}
	})
}
