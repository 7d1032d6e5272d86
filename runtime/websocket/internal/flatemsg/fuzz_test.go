package flatemsg

import (
	"bytes"
	"testing"
)

// FuzzRoundTrip: any sequence of messages, in any window, with or without
// context takeover, written in any chunk size, decodes to itself with
// both the standard library's and klauspost's decoders, and no match
// reaches past the window. The first byte picks window bits, takeover
// and chunk size; 0xff bytes split the rest into messages.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0x07, 'h', 'e', 'l', 'l', 'o', 0xff, 'h', 'e', 'l', 'l', 'o'})
	f.Add(append([]byte{0x30}, bytes.Repeat([]byte("abcabcabd"), 100)...))
	f.Add([]byte{0x00, 0xff, 0xff, 0xff})
	f.Add(append([]byte{0x17}, jsonText(3000)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		ctl := in[0]
		bits := 8 + int(ctl&7)
		takeover := ctl&8 == 0
		chunk := []int{0, 1, 3, 100}[ctl>>4&3]
		// Each message costs two decoders set up with a dictionary:
		// bounded, so that minimizing an input stays quick.
		msgs := bytes.SplitN(in[1:], []byte{0xff}, 32)
		sizes := make([]int, len(msgs))
		for i, m := range msgs {
			sizes[i] = len(m)
		}
		comp := compressAll(NewEncoder(bits), msgs, chunk, takeover)
		got := inflateEach(t, comp, sizes, bits, takeover)
		for i := range got {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("message %d differs after the round trip", i)
			}
		}
	})
}
