package codec_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// hostile is a peer's text that would drive a terminal (colour, the
// window title), forge a log line and reverse what follows it.
const hostile = "\x1b[31mred\x1b]0;title\a\r\nforged\u2028line\u202eevil"

// rawHidden returns the first character in s that peertext.OneLine
// escapes (a control character, U+2028/U+2029, a bidirectional mark or
// override, a byte that is not UTF-8), and whether there is one.
func rawHidden(s string) (rune, bool) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return rune(s[i]), true
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029,
			r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return r, true
		}
		i += n
	}
	return 0, false
}

// TestUnmarshalErrorEscapesPeerText: an Unmarshal error's text is printed
// and logged by whoever decodes a peer's message (a handler's
// invalid_argument close reason, a hub consumer, sse.Decode's ErrDecode),
// so the input it quotes is escaped as every peer's text in an error is
// (internal/peertext). msgpack's duplicate map key and protojson's syntax
// error ("invalid value \x1b") printed it raw.
func TestUnmarshalErrorEscapesPeerText(t *testing.T) {
	// map<string, string> with the same key twice, by hand: the msgpack
	// library's encoder writes a Go map's keys once.
	dupKey := func(key string) []byte {
		b := []byte{0x81}
		b = append(b, mp(t, "mStringString")...)
		b = append(b, 0x82)
		for _, v := range []string{"a", "b"} {
			b = append(b, mp(t, key)...)
			b = append(b, mp(t, v)...)
		}
		return b
	}
	rejectUnknown := codec.NewMsgpack(&codec.MsgpackOptions{RejectUnknown: true})
	jsonRejectUnknown := codec.NewJSON(&codec.JSONOptions{RejectUnknown: true})
	// A proto string field with the hostile text and a byte that is not
	// UTF-8.
	fString := (&testingv1.AllTypes{}).ProtoReflect().Descriptor().Fields().ByJSONName("fString")
	badString := protowire.AppendTag(nil, fString.Number(), protowire.BytesType)
	badString = protowire.AppendString(badString, hostile+"\xff")
	cases := []struct {
		name  string
		c     codec.Codec
		input []byte
	}{
		{"msgpack duplicate map key", codec.Msgpack, dupKey(hostile)},
		{"msgpack unknown field", rejectUnknown, mp(t, map[string]any{hostile: 1})},
		{"msgpack enum name", codec.Msgpack, mp(t, map[string]any{"fEnum": hostile})},
		{"msgpack duration", codec.Msgpack, mp(t, map[string]any{"wDuration": hostile})},
		{"msgpack Any type URL", codec.Msgpack, mp(t, map[string]any{"rAny": []any{map[string]any{"@type": hostile, "value": map[string]any{}}}})},
		{"msgpack int map key", codec.Msgpack, mp(t, map[string]any{"mInt32Int32": map[string]any{hostile: 1}})},
		{"msgpack bool map key", codec.Msgpack, mp(t, map[string]any{"mBoolString": map[string]any{hostile: "x"}})},
		{"msgpack map value path", codec.Msgpack, mp(t, map[string]any{"mStringNested": map[string]any{hostile: "not a message"}})},
		{"json ESC token", codec.JSON, []byte("{\"fInt32\": \x1b[31m}")},
		{"json U+202E token", codec.JSON, []byte("{\"fInt32\": \u202eevil}")},
		{"json U+2028 token", codec.JSON, []byte("{\"fInt32\": \u2028}")},
		{"json CR token", codec.JSON, []byte("{\"fInt32\": 1\r\x1b}")},
		{"json byte not UTF-8", codec.JSON, []byte("{\"fInt32\": \xff}")},
		{"json top level", codec.JSON, []byte("\u202e\x1b[2J")},
		{"json raw control in string", codec.JSON, []byte("{\"fString\": \"\x1b[31m\"}")},
		{"json string not UTF-8", codec.JSON, []byte("{\"fString\": \"a\xffb\"}")},
		{"json enum", jsonRejectUnknown, []byte(`{"fEnum": "\u001b[31m\r\n\u202e"}`)},
		{"json unknown field", jsonRejectUnknown, []byte(`{"\u001b[31m\r\n\u202e": 1}`)},
		{"json duration", codec.JSON, []byte(`{"wDuration": "\u001b[31m\r\n\u202e"}`)},
		{"json Any type", codec.JSON, []byte(`{"rAny": [{"@type": "\u001b[31m\r\n\u202e"}]}`)},
		{"json int map key", codec.JSON, []byte(`{"mInt32Int32": {"\u001b[31m\r\n\u2028": 1}}`)},
		{"json field mask", codec.JSON, []byte(`{"wFieldMask": "\u001b[31m\r\n\u202e"}`)},
		{"proto string not UTF-8", codec.Proto, badString},
	}
	for _, tc := range cases {
		err := tc.c.Unmarshal(tc.input, &testingv1.AllTypes{})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if r, ok := rawHidden(err.Error()); ok {
			t.Errorf("%s: Error() carries %U raw: %q", tc.name, r, err.Error())
		}
	}
}

// TestUnmarshalErrorBounded: a peer's text quoted in an Unmarshal error is
// cut as every peer's text in an error is (at 2 KiB); a 1 MB unknown key
// made a 1 MB error.
func TestUnmarshalErrorBounded(t *testing.T) {
	long := strings.Repeat(hostile, 1<<20/len(hostile))
	rejectUnknown := codec.NewMsgpack(&codec.MsgpackOptions{RejectUnknown: true})
	jsonRejectUnknown := codec.NewJSON(&codec.JSONOptions{RejectUnknown: true})
	for name, in := range map[string]struct {
		c     codec.Codec
		input []byte
	}{
		"msgpack unknown field": {rejectUnknown, mp(t, map[string]any{long: 1})},
		"json unknown field":    {jsonRejectUnknown, []byte(`{"` + strings.Repeat("x", 1<<20) + `": 1}`)},
	} {
		err := in.c.Unmarshal(in.input, &testingv1.AllTypes{})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); len(msg) > 3<<10 || !strings.HasSuffix(msg, " more bytes)") {
			t.Errorf("%s: Error() of %d bytes, ending %q; want at most 3 KiB, cut", name, len(msg), msg[max(0, len(msg)-40):])
		}
	}
}
