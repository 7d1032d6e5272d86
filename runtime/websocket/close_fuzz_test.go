package websocket

import (
	"encoding/binary"
	"errors"
	"testing"
	"unicode/utf8"
)

// closeCodeAllowed is RFC 6455 §7.4's list of the codes a close frame
// may carry, written out on its own: 1000-1003 and 1007-1011 (§7.4.1),
// 1012-1014 (IANA's registry since), and 3000-4999 (§7.4.2); not
// 1004-1006, 1015 or anything else.
func closeCodeAllowed(c uint16) bool {
	return c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
}

// FuzzParseClose checks the close frame payload parser against §5.5.1
// and §7.4: it takes an empty payload as 1005 and a payload of a code
// allowed on the wire and a valid UTF-8 reason as they are, and refuses
// everything else, a bad reason with 1007 and the rest with 1002. What
// Close sends for any code and reason it takes parses back unchanged,
// and CloseReason makes any text a reason Close takes.
func FuzzParseClose(f *testing.F) {
	for _, p := range [][]byte{{}, {0x03}, {0x03, 0xe8}, {0x03, 0xed, 'x'}, {0x0b, 0xb8, 0xed, 0xa0, 0x80}, {0x13, 0x87}, {0x03, 0xef}, {0x03, 0xee}, {0x03, 0xf6}, {0x03, 0xf7}} {
		f.Add(p, "reason")
	}
	f.Add([]byte{0x0f, 0xa0}, "\xffbad")
	f.Fuzz(func(t *testing.T, p []byte, text string) {
		if len(p) > maxControlPayload {
			p = p[:maxControlPayload]
		}
		ce, err := parseClose(p)
		switch {
		case len(p) == 0:
			if err != nil || ce.Code != StatusNoStatusRcvd || ce.Reason != "" {
				t.Fatalf("empty payload: %+v, %v", ce, err)
			}
		case len(p) >= 2 && closeCodeAllowed(binary.BigEndian.Uint16(p)) && utf8.Valid(p[2:]):
			if err != nil || uint16(ce.Code) != binary.BigEndian.Uint16(p) || ce.Reason != string(p[2:]) {
				t.Fatalf("% x: %+v, %v", p, ce, err)
			}
		case err == nil:
			t.Fatalf("% x accepted as %+v", p, ce)
		case len(p) >= 2 && closeCodeAllowed(binary.BigEndian.Uint16(p)):
			if FailureStatus(err) != StatusInvalidFramePayload || !errors.Is(err, ErrInvalidUTF8) {
				t.Fatalf("% x: invalid reason refused with %v (status %d)", p, err, FailureStatus(err))
			}
		default:
			if FailureStatus(err) != StatusProtocolError || !errors.Is(err, ErrProtocol) {
				t.Fatalf("% x refused with %v (status %d)", p, err, FailureStatus(err))
			}
		}

		// What Close would send, for the code of p and text as reason.
		if len(p) < 2 {
			return
		}
		code := StatusCode(binary.BigEndian.Uint16(p))
		reason := CloseReason(text)
		if len(reason) > maxCloseReason || !utf8.ValidString(reason) {
			t.Fatalf("CloseReason(%q) = %q", text, reason)
		}
		if code.Sendable() != closeCodeAllowed(uint16(code)) {
			t.Fatalf("Sendable(%d) = %v", code, code.Sendable())
		}
		if !code.Sendable() {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(code))
		out = append(out, reason...)
		if back, err := parseClose(out); err != nil || back.Code != code || back.Reason != reason {
			t.Fatalf("Close(%d, %q) sends % x, which parses as %+v, %v", code, reason, out, back, err)
		}
	})
}
