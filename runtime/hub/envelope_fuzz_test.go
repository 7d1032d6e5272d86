package hub

import (
	"bytes"
	"testing"
)

// FuzzEnvelope: the broker-message parser never panics on any input, and
// whatever it accepts re-encodes to the same bytes (one encoding per
// message, so a node cannot be fed two readings of one envelope).
func FuzzEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, "node-a", 1, []byte("payload")))
	f.Add(appendEnvelope(nil, "", 0, nil))
	f.Add(appendEnvelope(nil, "n", 1<<63, []byte{0xff}))
	f.Add([]byte{envelopeVersion, 200, 'x'})
	f.Add([]byte{envelopeVersion, 0, 0x80, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		node, seq, payload, err := parseEnvelope(b)
		if err != nil {
			return
		}
		if again := appendEnvelope(nil, string(node), seq, payload); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gives %x", b, again)
		}
	})
}
