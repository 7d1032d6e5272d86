package codec_test

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// wellFormed reports whether b is exactly one MessagePack value, as
// vmihailenco/msgpack, the other implementation in the tree, reads it.
func wellFormed(b []byte) bool {
	r := bytes.NewReader(b)
	if err := msgpack.NewDecoder(r).Skip(); err != nil {
		return false
	}
	return r.Len() == 0
}

// FuzzMsgpackWellFormed holds the msgpack codec's reader to another
// implementation's: what it decodes into a message of every field kind
// is one well-formed MessagePack value, nothing after it; and the value
// of a key the schema does not know, which it skips with a reader of its
// own, is skipped exactly when it is one well-formed value (a client's
// newer schema may send any).
func FuzzMsgpackWellFormed(f *testing.F) {
	for _, m := range fuzzSeeds()[:4] {
		b := mustMarshal(f, codec.Msgpack, m)
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, v := range [][]byte{
		{0xc0}, {0xc1}, {0x93, 0x01, 0xa1, 'x', 0x80}, {0xd4, 0x01, 0x02}, {0xc7, 0x03, 0x05, 1, 2, 3},
		{0xd9, 0x02, 0xff, 0xfe}, {0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, {0xdc, 0x00, 0x01, 0xc3}, {0x81, 0xa0, 0x90},
	} {
		f.Add(v, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, unknown bool) {
		if unknown {
			// {"zz_unknown": <data>}: a key no field of AllTypes has.
			data = append([]byte{0x81, 0xaa, 'z', 'z', '_', 'u', 'n', 'k', 'n', 'o', 'w', 'n'}, data...)
		}
		var m testingv1.AllTypes
		err := codec.Msgpack.Unmarshal(data, &m)
		wf := wellFormed(data)
		if err == nil && !wf {
			t.Fatalf("decoded % x, which is not one well-formed value", data)
		}
		if unknown && wf && err != nil {
			t.Fatalf("refused an unknown key's well-formed value % x: %v", data[12:], err)
		}
	})
}
