package flatemsg

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/wsrpc/wsrpc/internal/testmsg"
)

// BenchmarkEncoder compresses 1 KiB JSON-like messages (the bench/
// compressed scenario's) with context takeover, round robin over 1 or 64
// streams, as a server with that many connections does; klauspost is the
// general-purpose level-1 encoder for comparison.
//
//	go test ./runtime/websocket/internal/flatemsg -run '^$' -bench Encoder
func BenchmarkEncoder(b *testing.B) {
	msgs := testmsg.Orders(256, 1024)
	for _, conns := range []int{1, 64} {
		b.Run(fmt.Sprintf("flatemsg/conns=%d", conns), func(b *testing.B) {
			es := make([]*Encoder, conns)
			for i := range es {
				es[i] = NewEncoder(15)
			}
			var dst []byte
			wire := 0
			b.SetBytes(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := es[i%conns]
				dst = e.Flush(e.Write(dst[:0], msgs[(i/conns)%len(msgs)]))
				wire += len(dst)
			}
			b.ReportMetric(float64(wire)/float64(b.N*1024), "wire/payload")
		})
		b.Run(fmt.Sprintf("klauspost/conns=%d", conns), func(b *testing.B) {
			var out bytes.Buffer
			ws := make([]*flate.Writer, conns)
			for i := range ws {
				ws[i], _ = flate.NewWriter(&out, 1)
			}
			wire := 0
			b.SetBytes(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				out.Reset()
				w := ws[i%conns]
				w.Write(msgs[(i/conns)%len(msgs)])
				w.Flush()
				wire += out.Len() - 4
			}
			b.ReportMetric(float64(wire)/float64(b.N*1024), "wire/payload")
		})
	}
}

// BenchmarkEncoderLarge compresses one large message at a time (64 KiB
// and 1 MiB of the same JSON-like text, 1 MiB of random bytes) on one
// stream, against klauspost/compress's level 1.
//
//	go test ./runtime/websocket/internal/flatemsg -run '^$' -bench EncoderLarge
func BenchmarkEncoderLarge(b *testing.B) {
	text := bytes.Join(testmsg.Orders(1024, 1024), nil)
	random := randomBytes(rand.New(rand.NewPCG(1, 2)), 1<<20)
	inputs := []struct {
		name string
		p    []byte
	}{{"json-64KiB", text[:64<<10]}, {"json-1MiB", text}, {"random-1MiB", random}}
	for _, in := range inputs {
		b.Run("flatemsg/"+in.name, func(b *testing.B) {
			e := NewEncoder(15)
			var dst []byte
			b.SetBytes(int64(len(in.p)))
			b.ReportAllocs()
			for b.Loop() {
				dst = e.Flush(e.Write(dst[:0], in.p))
			}
			b.ReportMetric(float64(len(dst))/float64(len(in.p)), "wire/payload")
		})
		b.Run("klauspost/"+in.name, func(b *testing.B) {
			var out bytes.Buffer
			w, _ := flate.NewWriter(&out, 1)
			b.SetBytes(int64(len(in.p)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				w.Write(in.p)
				w.Flush()
			}
			b.ReportMetric(float64(out.Len()-4)/float64(len(in.p)), "wire/payload")
		})
	}
}

// klauspostCompress compresses msgs as one stream with klauspost/compress
// at level 1, each message ended by a sync flush whose 00 00 ff ff is
// removed: what the bench/ load client sends.
func klauspostCompress(msgs [][]byte) [][]byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, 1)
	comp := make([][]byte, len(msgs))
	for i, m := range msgs {
		out.Reset()
		w.Write(m)
		w.Flush()
		comp[i] = bytes.Clone(out.Bytes()[:out.Len()-4])
	}
	return comp
}

// BenchmarkDecoder inflates 1 KiB JSON-like messages compressed with
// context takeover by klauspost/compress's level 1 (what the bench/ load
// client and most zlib-based peers send), round robin over 1 or 64
// streams. klauspost is the decoder the connection used before: Reset with
// the last 32 KiB as its dictionary for each message, and that window kept
// up to date in a buffer of the connection's.
//
//	go test ./runtime/websocket/internal/flatemsg -run '^$' -bench 'Decoder$'
func BenchmarkDecoder(b *testing.B) {
	msgs := testmsg.Orders(256, 1024)
	for _, conns := range []int{1, 64} {
		comp := klauspostCompress(msgs) // every stream sends the same
		buf := make([]byte, 4096)
		b.Run(fmt.Sprintf("flatemsg/conns=%d", conns), func(b *testing.B) {
			ds := make([]*Decoder, conns)
			for i := range ds {
				ds[i] = NewDecoder(15)
			}
			var src chunkSource
			b.SetBytes(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d := ds[i%conns]
				src = chunkSource{p: comp[(i/conns)%len(comp)], n: 4096}
				d.Start(&src)
				for {
					_, err := d.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("klauspost/conns=%d", conns), func(b *testing.B) {
			withTail := make([][]byte, len(comp))
			for i, c := range comp {
				withTail[i] = slices.Concat(c, syncTail)
			}
			dicts := make([][]byte, conns)
			r := flate.NewReader(nil)
			var in bytes.Reader
			b.SetBytes(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c := withTail[(i/conns)%len(comp)]
				dict := &dicts[i%conns]
				in.Reset(c)
				r.(flate.Resetter).Reset(&in, *dict)
				for {
					n, err := r.Read(buf)
					*dict = keepWindow(*dict, buf[:n])
					if err == io.EOF || err == io.ErrUnexpectedEOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// keepWindow appends p to the 32 KiB window w, dropping the oldest bytes.
func keepWindow(w, p []byte) []byte {
	const size = 32 << 10
	if w == nil {
		w = make([]byte, 0, size)
	}
	if over := len(w) + len(p) - size; over > 0 {
		w = w[:copy(w, w[over:])]
	}
	return append(w, p...)
}

// BenchmarkDecoderLarge inflates one large message at a time (1 MiB of
// JSON-like text, 1 MiB of random bytes: stored blocks), compressed by
// klauspost/compress's level 1, read in 32 KiB pieces, against
// klauspost's decoder on the same bytes.
//
//	go test ./runtime/websocket/internal/flatemsg -run '^$' -bench DecoderLarge
func BenchmarkDecoderLarge(b *testing.B) {
	text := bytes.Join(testmsg.Orders(1024, 1024), nil)
	random := randomBytes(rand.New(rand.NewPCG(1, 2)), 1<<20)
	buf := make([]byte, 32<<10)
	for _, in := range []struct {
		name string
		p    []byte
	}{{"json-1MiB", text}, {"random-1MiB", random}} {
		comp := klauspostCompress([][]byte{in.p})[0]
		b.Run("flatemsg/"+in.name, func(b *testing.B) {
			d := NewDecoder(15)
			b.SetBytes(int64(len(in.p)))
			b.ReportAllocs()
			for b.Loop() {
				d.Start(&chunkSource{p: comp, n: 16 << 10})
				n := 0
				for {
					k, err := d.Read(buf)
					n += k
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if n != len(in.p) {
					b.Fatalf("%d bytes", n)
				}
			}
		})
		b.Run("klauspost/"+in.name, func(b *testing.B) {
			fr := flate.NewReader(nil)
			var src bytes.Reader
			full := append(bytes.Clone(comp), syncTail...)
			b.SetBytes(int64(len(in.p)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(full)
				fr.(flate.Resetter).Reset(&src, nil)
				n := 0
				for {
					k, err := fr.Read(buf)
					n += k
					if err != nil {
						break
					}
				}
				if n != len(in.p) {
					b.Fatalf("%d bytes", n)
				}
			}
		})
	}
}
