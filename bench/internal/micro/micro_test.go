// Package micro compares the libraries' frame read and write paths in
// memory (no sockets): go test -bench . -benchmem ./internal/micro
//
// Every server Conn is made by its library's own upgrade over a fake
// hijackable ResponseWriter, then reads masked client frames from an
// endless in-memory stream, or writes frames to a net.Conn that copies
// every byte it is given into a scratch buffer (see memConn.Write). The
// 64 KiB binary read is dominated by unmasking (the masking comparison); the
// 64 KiB text read adds UTF-8 validation where a library does it.
package micro

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	wsrpc "github.com/wsrpc/wsrpc/runtime/websocket"
)

var sizes = []struct {
	name string
	n    int
}{{"16", 16}, {"1KiB", 1024}, {"64KiB", 64 << 10}}

// memConn serves frame over and over (at most limit bytes in all, if set)
// and copies what is written into sink, overwriting the last write.
type memConn struct {
	frame []byte
	pos   int
	left  int64  // bytes still to serve; <0: endless
	sink  []byte // reused: no allocation per write once it has grown
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && c.left != 0 {
		k := copy(p[n:], c.frame[c.pos:])
		if c.left > 0 && int64(k) > c.left {
			k = int(c.left)
		}
		n += k
		c.pos = (c.pos + k) % len(c.frame)
		if c.left > 0 {
			c.left -= int64(k)
		}
	}
	return n, nil
}

// Write copies p, as write(2) copies it into the socket's buffer. A sink
// that took the bytes without touching them would let a library that
// hands the caller's slice straight to Write send 64 KiB for nothing
// (gobwas measured 1,173,841 MB/s that way) while one that first copies
// into a buffer of its own pays for that copy: every library pays the
// same per byte that reaches the socket.
func (c *memConn) Write(p []byte) (int, error) {
	if cap(c.sink) < len(p) {
		c.sink = make([]byte, len(p))
	}
	return copy(c.sink[:len(p)], p), nil
}

func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// hijacker is the ResponseWriter every library upgrades through.
type hijacker struct {
	h    http.Header
	conn *memConn
}

func (w *hijacker) Header() http.Header         { return w.h }
func (w *hijacker) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijacker) WriteHeader(int)             {}
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

func upgradeRequest() (*http.Request, *hijacker, *memConn) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set("Sec-WebSocket-Version", "13")
	// The sink holds the largest frame written (64 KiB and its header)
	// from the start, so no benchmark times its growing.
	mc := &memConn{frame: []byte{0}, left: -1, sink: make([]byte, 65<<10)}
	return r, &hijacker{h: http.Header{}, conn: mc}, mc
}

// clientFrame is a masked client frame of op carrying payload.
func clientFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op}
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

func payload(n int, text bool) []byte {
	p := make([]byte, n)
	s := "héllo wörld, ünïcode ✓ " // mixed ASCII and multi-byte
	for i := 0; i < n; {
		if text {
			r, w := utf8.DecodeRuneInString(s[i%len(s):])
			if i+w > n || r == utf8.RuneError {
				p[i] = 'a'
				i++
				continue
			}
			copy(p[i:], s[i%len(s):i%len(s)+w])
			i += w
		} else {
			p[i] = byte(i * 7)
			i++
		}
	}
	if text && !utf8.Valid(p) {
		panic("payload is not UTF-8")
	}
	return p
}

// reader reads one whole message into buf and returns its length.
type reader func(buf []byte) (int, error)

func newReader(b testing.TB, lib string) (reader, *memConn) {
	r, w, mc := upgradeRequest()
	ctx := context.Background()
	switch lib {
	case "wsrpc":
		c, err := wsrpc.Accept(w, r, &wsrpc.AcceptOptions{MaxMessageSize: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		return func(buf []byte) (int, error) {
			_, m, err := c.ReadAppend(ctx, buf[:0])
			return len(m), err
		}, mc
	case "gorilla":
		up := gorilla.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		return func(buf []byte) (int, error) {
			_, rd, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			return readAll(rd, buf)
		}, mc
	case "coder":
		c, err := coder.Accept(w, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		return func(buf []byte) (int, error) {
			_, rd, err := c.Reader(ctx)
			if err != nil {
				return 0, err
			}
			return readAll(rd, buf)
		}, mc
	case "gobwas":
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			b.Fatal(err)
		}
		rd := &wsutil.Reader{Source: bufio.NewReader(conn), State: ws.StateServerSide, CheckUTF8: true}
		return func(buf []byte) (int, error) {
			if _, err := rd.NextFrame(); err != nil {
				return 0, err
			}
			return readAll(rd, buf)
		}, mc
	}
	b.Fatalf("no pull reader for %s", lib)
	return nil, nil
}

func readAll(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type gwsCount struct {
	gws.BuiltinEventHandler
	n int
}

func (h *gwsCount) OnMessage(_ *gws.Conn, m *gws.Message) { h.n += m.Data.Len(); m.Close() }

func benchRead(b *testing.B, lib string, op byte, p []byte) {
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	runRead(b, lib, op, p, b.N, b.ResetTimer)
}

// runRead reads n messages of op carrying p; start is called once the
// connection is set up.
func runRead(b testing.TB, lib string, op byte, p []byte, n int, start func()) {
	frame := clientFrame(op, p)
	if lib == "gws" {
		// Event-driven: ReadLoop delivers n messages, then sees EOF.
		r, w, mc := upgradeRequest()
		h := &gwsCount{}
		up := gws.NewUpgrader(h, &gws.ServerOption{ReadMaxPayloadSize: 1 << 20, CheckUtf8Enabled: true})
		c, err := up.Upgrade(w, r)
		if err != nil {
			b.Fatal(err)
		}
		mc.frame, mc.pos, mc.left = frame, 0, int64(len(frame))*int64(n)
		start()
		c.ReadLoop()
		if h.n != len(p)*n {
			b.Fatalf("read %d bytes, want %d", h.n, len(p)*n)
		}
		return
	}
	read, mc := newReader(b, lib)
	mc.frame, mc.pos = frame, 0
	buf := make([]byte, len(p)+1)
	_, verify := b.(*testing.T) // benchmarks time the read alone
	start()
	for range n {
		k, err := read(buf)
		if err != nil || k != len(p) {
			b.Fatalf("read %d, %v", k, err)
		}
		if verify && string(buf[:k]) != string(p) {
			b.Fatal("read a different message")
		}
	}
}

var libs = []string{"wsrpc", "gorilla", "coder", "gws", "gobwas"}

func BenchmarkRead(b *testing.B) {
	for _, s := range sizes {
		p := payload(s.n, false)
		for _, lib := range libs {
			b.Run(s.name+"/"+lib, func(b *testing.B) { benchRead(b, lib, 0x2, p) })
		}
	}
}

// BenchmarkReadText is the 64 KiB read of a text message: unmasking plus
// UTF-8 validation (gorilla and coder do not validate; gws and gobwas only
// when asked, which these benchmarks do).
func BenchmarkReadText(b *testing.B) {
	p := payload(64<<10, true)
	for _, lib := range libs {
		b.Run(lib, func(b *testing.B) { benchRead(b, lib, 0x1, p) })
	}
}

type writer func(p []byte) error

func newWriter(b testing.TB, lib string) writer {
	r, w, _ := upgradeRequest()
	ctx := context.Background()
	switch lib {
	case "wsrpc":
		c, err := wsrpc.Accept(w, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		return func(p []byte) error { return c.Write(ctx, wsrpc.MessageBinary, p) }
	case "gorilla":
		up := gorilla.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		return func(p []byte) error { return c.WriteMessage(gorilla.BinaryMessage, p) }
	case "coder":
		c, err := coder.Accept(w, r, nil)
		if err != nil {
			b.Fatal(err)
		}
		return func(p []byte) error { return c.Write(ctx, coder.MessageBinary, p) }
	case "gws":
		up := gws.NewUpgrader(&gws.BuiltinEventHandler{}, nil)
		c, err := up.Upgrade(w, r)
		if err != nil {
			b.Fatal(err)
		}
		return func(p []byte) error { return c.WriteMessage(gws.OpcodeBinary, p) }
	case "gobwas":
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			b.Fatal(err)
		}
		return func(p []byte) error { return wsutil.WriteServerMessage(conn, ws.OpBinary, p) }
	}
	b.Fatalf("unknown %s", lib)
	return nil
}

// BenchmarkWrite writes one binary message per operation to a memConn,
// which copies every byte written as the kernel would (see memConn.Write):
// MB/s is what a library's write costs up to the socket, the copy into it
// included.
func BenchmarkWrite(b *testing.B) {
	for _, s := range sizes {
		p := payload(s.n, false)
		for _, lib := range libs {
			b.Run(s.name+"/"+lib, func(b *testing.B) {
				write := newWriter(b, lib)
				b.SetBytes(int64(len(p)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := write(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMask is the one masking function a peer exports (gobwas
// ws.Cipher); wsrpc's own is BenchmarkMask (aligned) and
// BenchmarkMaskUnaligned (6 bytes in, where a small client frame's payload
// sits after its header and key) in runtime/websocket. The 64KiB cases of
// BenchmarkRead compare all of them through their readers.
func BenchmarkMask(b *testing.B) {
	p := payload(64<<10, false)
	b.Run("gobwas-Cipher", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for range b.N {
			ws.Cipher(p, [4]byte{1, 2, 3, 4}, 0)
		}
	})
	q := append(make([]byte, 6, 6+len(p)), p...)[6:]
	b.Run("gobwas-Cipher-unaligned", func(b *testing.B) {
		b.SetBytes(int64(len(q)))
		for range b.N {
			ws.Cipher(q, [4]byte{1, 2, 3, 4}, 0)
		}
	})
}

// TestWriteSinkCopies guards what BenchmarkWrite measures: memConn.Write
// copies every byte it is given (a sink that dropped them let gobwas
// "write" 64 KiB at 1,173,841 MB/s), into a buffer it reuses, so the
// sink itself allocates nothing per write.
func TestWriteSinkCopies(t *testing.T) {
	_, _, mc := upgradeRequest()
	p := payload(64<<10+14, false) // the largest frame BenchmarkWrite writes
	if n := testing.AllocsPerRun(10, func() { _, _ = mc.Write(p) }); n != 0 {
		t.Fatalf("%v allocations per write", n)
	}
	if !bytes.Equal(mc.sink[:len(p)], p) {
		t.Fatal("the sink does not hold what was written")
	}
}

// TestMicroPathsWork runs each benchmarked path a few times, so CI notices
// when one stops working (go test without -bench runs no benchmark).
func TestMicroPathsWork(t *testing.T) {
	for _, lib := range libs {
		for _, s := range sizes {
			runRead(t, lib, 0x2, payload(s.n, false), 3, func() {})
			write := newWriter(t, lib)
			for range 3 {
				if err := write(payload(s.n, false)); err != nil {
					t.Fatalf("%s: %v", lib, err)
				}
			}
		}
		runRead(t, lib, 0x1, payload(64<<10, true), 3, func() {})
	}
}
