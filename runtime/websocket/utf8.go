package websocket

import (
	"encoding/binary"
	"unicode/utf8"
)

// utf8Validator checks UTF-8 incrementally, so a text message split across
// frames (or across reads) is checked as its bytes arrive and an invalid
// sequence fails at once ("fail fast", RFC 6455 §8.1) rather than at the end
// of the message.
//
// It is a byte-driven state machine over the well-formed sequences of the
// Unicode Standard, table 3-7: the state is what the next byte must be.
type utf8Validator struct{ state uint8 }

const (
	u8Accept uint8 = iota // between code points
	u8Cont1               // one more continuation byte 80..BF
	u8Cont2               // two more continuation bytes
	u8Cont3               // three more continuation bytes
	u8E0                  // after E0: A0..BF, then one more
	u8ED                  // after ED: 80..9F (no surrogates), then one more
	u8F0                  // after F0: 90..BF, then two more
	u8F4                  // after F4: 80..8F (≤ U+10FFFF), then two more
	u8Reject
)

// utf8Next[state][byte] is the next state.
var utf8Next = func() (t [u8Reject + 1][256]uint8) {
	for s := range t {
		for b := range t[s] {
			t[s][b] = u8Reject
		}
	}
	for b := 0; b < 0x80; b++ {
		t[u8Accept][b] = u8Accept
	}
	for b := 0xC2; b <= 0xDF; b++ {
		t[u8Accept][b] = u8Cont1
	}
	t[u8Accept][0xE0] = u8E0
	for b := 0xE1; b <= 0xEF; b++ {
		t[u8Accept][b] = u8Cont2
	}
	t[u8Accept][0xED] = u8ED
	t[u8Accept][0xF0] = u8F0
	for b := 0xF1; b <= 0xF3; b++ {
		t[u8Accept][b] = u8Cont3
	}
	t[u8Accept][0xF4] = u8F4
	for b := 0x80; b <= 0xBF; b++ {
		t[u8Cont1][b] = u8Accept
		t[u8Cont2][b] = u8Cont1
		t[u8Cont3][b] = u8Cont2
	}
	for b := 0xA0; b <= 0xBF; b++ {
		t[u8E0][b] = u8Cont1
	}
	for b := 0x80; b <= 0x9F; b++ {
		t[u8ED][b] = u8Cont1
	}
	for b := 0x90; b <= 0xBF; b++ {
		t[u8F0][b] = u8Cont2
	}
	for b := 0x80; b <= 0x8F; b++ {
		t[u8F4][b] = u8Cont2
	}
	return t
}()

// write feeds p and reports whether the input so far can still be the start
// of valid UTF-8.
func (v *utf8Validator) write(p []byte) bool {
	s := v.state
	// First finish a code point the last chunk left open (at most three
	// bytes), so that the rest takes the bulk path: a read ends wherever
	// the kernel cut the stream, often inside a code point, and the whole
	// next chunk went through the byte loop, 20 times slower.
	for s != u8Accept && s != u8Reject && len(p) > 0 {
		s = utf8Next[s][p[0]]
		p = p[1:]
	}
	if s == u8Reject {
		v.state = s
		return false
	}
	if s == u8Accept && len(p) > 16 {
		// Bulk path: validRunes (the same rules, many times faster) up to
		// the last code point that may be cut off at the end of p; the
		// state machine takes the tail.
		cut := len(p)
		for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
			if utf8.RuneStart(p[i]) {
				if !utf8.FullRune(p[i:]) {
					cut = i
				}
				break
			}
		}
		if !validRunes(p[:cut]) {
			v.state = u8Reject
			return false
		}
		p = p[cut:]
	}
	for len(p) > 0 {
		if s == u8Accept {
			// ASCII fast path: 8 bytes at a time while the high bits are clear.
			for len(p) >= 8 && binary.LittleEndian.Uint64(p)&0x8080808080808080 == 0 {
				p = p[8:]
			}
			if len(p) == 0 {
				break
			}
		}
		s = utf8Next[s][p[0]]
		if s == u8Reject {
			v.state = s
			return false
		}
		p = p[1:]
	}
	v.state = s
	return true
}

// complete reports whether the input ended on a code point boundary.
func (v *utf8Validator) complete() bool { return v.state == u8Accept }

func (v *utf8Validator) reset() { v.state = u8Accept }

// validUTF8 checks a whole buffer.
func validUTF8(p []byte) bool {
	var v utf8Validator
	return v.write(p) && v.complete()
}
