package websocket

// Microbenchmarks: go test -run '^$' -bench . -benchmem ./runtime/websocket
//
// The read and write paths run over a loopback TCP connection against a
// peer that only writes pre-encoded frames or drains bytes, so the figures
// (and allocs/op) are the engine's own. Steady-state reads with a reused
// buffer and writes are expected to allocate nothing.

import (
	"context"
	"fmt"

	"net"
	"strings"
	"testing"
	"unicode/utf8"
)

var benchSizes = []int{16, 128, 1 << 10, 16 << 10, 64 << 10}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		b.Fatal(r.err)
	}
	return a, r.c
}

func roleName(client bool) string {
	if client {
		return "client"
	}
	return "server"
}

func BenchmarkRead(b *testing.B) {
	for _, client := range []bool{false, true} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", roleName(client), n), func(b *testing.B) {
				local, peer := tcpPair(b)
				defer peer.Close()
				c := newConn(local, client, resolveConfig(0, 0, 0, 0, 0, 0, false), "", nil, nil)
				defer c.CloseNow()
				// A batch of pre-encoded frames, masked if the peer is a client.
				frame := frameBytes(true, 0, OpBinary, !client, make([]byte, n))
				per := max(1, (256<<10)/len(frame))
				batch := make([]byte, 0, per*len(frame))
				for i := 0; i < per; i++ {
					batch = append(batch, frame...)
				}
				done := make(chan error, 1)
				go func() {
					for left := b.N; left > 0; left -= per {
						k := min(left, per)
						if _, err := peer.Write(batch[:k*len(frame)]); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				ctx := context.Background()
				buf := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// The same exactly-sized buffer every time.
					if _, out, err := c.ReadAppend(ctx, buf[:0]); err != nil || len(out) != n {
						b.Fatalf("read %d: %v", len(out), err)
					}
				}
				b.StopTimer()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	for _, client := range []bool{false, true} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", roleName(client), n), func(b *testing.B) {
				local, peer := tcpPair(b)
				c := newConn(local, client, resolveConfig(0, 0, 0, 0, 0, 0, false), "", nil, nil)
				done := make(chan struct{})
				go func() {
					defer close(done)
					buf := make([]byte, 256<<10)
					for {
						if _, err := peer.Read(buf); err != nil {
							return
						}
					}
				}()
				ctx := context.Background()
				msg := make([]byte, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := c.Write(ctx, MessageBinary, msg); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				c.CloseNow()
				peer.Close()
				<-done
			})
		}
	}
}

func BenchmarkMask(b *testing.B) {
	for _, n := range []int{8, 64, 512, 4 << 10, 64 << 10} {
		p := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				mask(0xA1B2C3D4, i&3, p)
			}
		})
	}
}

// BenchmarkMaskUnaligned masks at the address a small client frame's
// payload has in a read buffer: 6 bytes in, after the 2-byte header and
// the 4-byte key. A 32-byte store that crosses a cache line costs about
// twice an aligned one; mask starts its vector loop at a boundary.
func BenchmarkMaskUnaligned(b *testing.B) {
	for _, n := range []int{512, 4 << 10, 64 << 10} {
		p := make([]byte, n+6)[6:]
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				mask(0xA1B2C3D4, i&3, p)
			}
		})
	}
}

func BenchmarkMaskReference(b *testing.B) {
	p := make([]byte, 4<<10)
	b.SetBytes(int64(len(p)))
	for i := 0; i < b.N; i++ {
		maskRef(0xA1B2C3D4, 0, p)
	}
}

func BenchmarkUTF8(b *testing.B) {
	inputs := map[string][]byte{
		"ascii":  []byte(strings.Repeat("hello, world 123", 64)),
		"greek":  []byte(strings.Repeat("κόσμε", 103)),
		"emoji":  []byte(strings.Repeat("😀", 256)),
		"mixed":  []byte(strings.Repeat("price: 12€, ok ✓ ", 50)),
		"ascii4": []byte(strings.Repeat("x", 64<<10)),
	}
	for _, name := range []string{"ascii", "greek", "emoji", "mixed", "ascii4"} {
		p := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if !validUTF8(p) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(name+"/stdlib", func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for i := 0; i < b.N; i++ {
				if !utf8.Valid(p) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkUTF8Chunked feeds 64 KiB of Greek to the incremental validator
// in reads of 4095 bytes, each but the first starting inside a code
// point, as reads from a socket do.
func BenchmarkUTF8Chunked(b *testing.B) {
	p := []byte(strings.Repeat("κόσμε", 6554))[:64<<10]
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var v utf8Validator
		for q := p; len(q) > 0; {
			n := min(len(q), 4095)
			if !v.write(q[:n]) {
				b.Fatal("invalid")
			}
			q = q[n:]
		}
	}
}

func BenchmarkHeader(b *testing.B) {
	var buf [maxHeaderSize]byte
	h := header{fin: true, opcode: OpBinary, masked: true, key: 0x01020304, length: 70000}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n := putHeader(buf[:], &h)
		if _, err := parseHeader(buf[:n], &h); err != nil {
			b.Fatal(err)
		}
	}
}
