package flatemsg

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
)

// BenchmarkEncoder compresses 1 KiB JSON-like messages (the bench/
// compressed scenario's) with context takeover, round robin over 1 or 64
// streams, as a server with that many connections does; klauspost is the
// general-purpose level-1 encoder for comparison.
//
//	go test ./runtime/websocket/internal/flatemsg -run '^$' -bench Encoder
func BenchmarkEncoder(b *testing.B) {
	msgs := benchMessages(256, 1024)
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

// benchMessages is bench/internal/load's jsonMessages: n distinct texts of
// exactly size bytes shaped like an API's event stream.
func benchMessages(n, size int) [][]byte {
	r := rand.New(rand.NewPCG(7, 11))
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu order shipped pending paid refund cart item price stock warehouse berlin paris tokyo lisbon oslo")
	statuses := []string{"created", "paid", "packed", "shipped", "delivered", "returned"}
	out := make([][]byte, n)
	for i := range out {
		var b strings.Builder
		fmt.Fprintf(&b, `{"seq":%d,"type":"order.%s","ts":"2025-%02d-%02dT%02d:%02d:%02d.%03dZ",`,
			i, statuses[r.IntN(len(statuses))], 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))
		fmt.Fprintf(&b, `"customer":{"id":"c_%08x","name":"%s %s","city":"%s","tier":%d},"items":[`,
			r.Uint32(), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(4))
		for j := 0; b.Len() < size-160; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"sku":"SKU-%05d","name":"%s %s","qty":%d,"price":%d.%02d,"warehouse":"%s"}`,
				r.IntN(100000), words[r.IntN(len(words))], words[r.IntN(len(words))], 1+r.IntN(9), r.IntN(500), r.IntN(100), words[r.IntN(len(words))])
		}
		b.WriteString(`],"note":"`)
		for b.Len() < size-2 {
			w := words[r.IntN(len(words))]
			if b.Len()+len(w)+1 > size-2 {
				w = strings.Repeat(".", size-2-b.Len())
			}
			b.WriteString(w)
			if b.Len() < size-2 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(`"}`)
		out[i] = []byte(b.String())
	}
	return out
}
