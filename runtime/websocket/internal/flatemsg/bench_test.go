package flatemsg

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
	random := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
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
