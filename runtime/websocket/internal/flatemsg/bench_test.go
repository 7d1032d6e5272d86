package flatemsg

import (
	"bytes"
	"fmt"
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
