// Package testmsg makes the messages benchmarks send, so that every
// benchmark of compression (the engine's, the encoder's, bench/'s
// cross-library run) measures the same text.
package testmsg

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Orders returns n distinct JSON-like texts of exactly size bytes (size
// 200 or more), the shape of an API's event stream: the same keys in
// every message, varying values, a free-text note at the end. The same n
// and size always give the same texts.
func Orders(n, size int) [][]byte {
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
