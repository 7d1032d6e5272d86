//go:build amd64 && !purego

package websocket

import (
	"unicode/utf8"
	"unsafe"
)

// validRunes reports whether p is valid UTF-8, with utf8.Valid's verdict.
// On AVX2 it checks 32 bytes per step by table lookups (below): text that
// is not ASCII 10–15 times as fast as utf8.Valid's rune-at-a-time loop,
// ASCII 2–3 times (BenchmarkUTF8).
func validRunes(p []byte) bool {
	if !useAVX2 || len(p) < utf8AVX2Min {
		return utf8.Valid(p)
	}
	// The last, partial block is checked from a copy padded with zeros:
	// a sequence cut short by the end of p is then followed by ASCII,
	// which the lookups reject like any other truncation. When p ends on
	// a block boundary the copy is all zeros and does the same for a
	// sequence cut at the boundary.
	var last [32]byte
	n := len(p) &^ 31
	copy(last[:], p[n:])
	return utf8ValidAVX2(p[:n], &last, &utf8Tables)
}

// utf8AVX2Min is where the vector check starts to beat utf8.Valid on
// short text that is not ASCII (about 20 ns against 30 at 32 bytes, and
// it stays near 20 up to 64 where utf8.Valid takes 70–130); below it the
// call, loading the tables and the padded copy cost more than they save.
const utf8AVX2Min = 32

// utf8ValidAVX2 checks p (len(p) a multiple of 32) and then last as one
// stream, using the tables in t. last must end in a byte that leaves no
// sequence open (validRunes pads it with zeros): only the bytes after a
// lead show it cut short, and the last block has none after it.
//
//go:noescape
func utf8ValidAVX2(p []byte, last *[32]byte, t *utf8Lookup) bool

// The vector check is the lookup method of Keiser and Lemire ("Validating
// UTF-8 in less than one instruction per byte", Software: Practice and
// Experience 51(5), 2021). Every error in UTF-8 shows in a pair of
// adjacent bytes, given the one or two bytes before them: each pair is
// classified by three 16-entry tables indexed by the high nibble of the
// first byte, its low nibble and the high nibble of the second, and the
// pair is an error when all three lookups share a bit. Each bit is one
// kind of error (Unicode table 3-7 lists the well-formed sequences):
const (
	u8TooShort  = 1 << 0 // a lead byte not followed by a continuation byte
	u8TooLong   = 1 << 1 // ASCII followed by a continuation byte
	u8Overlong3 = 1 << 2 // E0 80..9F: a 3-byte form of a 2-byte code point
	u8TooLarge  = 1 << 3 // F4 90..BF, F5..FF 90..BF: above U+10FFFF
	u8Surrogate = 1 << 4 // ED A0..BF: U+D800..U+DFFF
	u8Overlong2 = 1 << 5 // C0, C1 then a continuation: an ASCII code point
	// F0 80..8F is a 4-byte form of a 3-byte code point and F5..FF 80..8F
	// is above U+10FFFF; both have first byte Fx and second 8x, and F1..F4
	// 8x is valid, so one bit serves both, told apart by the low nibble.
	u8Overlong4OrTooLarge = 1 << 6
	// Two continuation bytes in a row: an error unless the byte two or
	// three back leads a 3- or 4-byte sequence. The loop flips this bit
	// where such a lead says the byte must be a continuation.
	u8TwoConts = 1 << 7

	// The kinds decided by high nibbles alone hold for every low nibble.
	u8Carry = u8TooShort | u8TooLong | u8TwoConts
)

// utf8Lookup is the data utf8ValidAVX2 reads; its layout is fixed by the
// assembly's offsets.
type utf8Lookup struct {
	firstHigh [16]byte // by the first byte's high nibble
	firstLow  [16]byte // by the first byte's low nibble
	second    [16]byte // by the second byte's high nibble
	// ends is subtracted (saturating) from the last block: a non-zero
	// result is a lead byte too close to the end for its sequence
	// (F0.. in the last three bytes, E0.. in the last two, C0.. last).
	ends [32]byte
	// Broadcast constants: the nibble mask, and the biases that leave the
	// high bit set only for bytes E0..FF and F0..FF respectively.
	nibble, lead3, lead4, high byte
}

// The assembly reads ends at offset 48 and the constants from 80: a
// change of the struct's layout fails to compile here (a constant index
// out of range) rather than check the wrong bytes.
var (
	_ = [1]struct{}{}[unsafe.Offsetof(utf8Lookup{}.ends)-48]
	_ = [1]struct{}{}[unsafe.Offsetof(utf8Lookup{}.nibble)-80]
	_ = [1]struct{}{}[unsafe.Offsetof(utf8Lookup{}.high)-83]
)

var utf8Tables = utf8Lookup{
	firstHigh: [16]byte{
		// 0x0_..0x7_: ASCII
		u8TooLong, u8TooLong, u8TooLong, u8TooLong,
		u8TooLong, u8TooLong, u8TooLong, u8TooLong,
		// 0x8_..0xB_: continuation
		u8TwoConts, u8TwoConts, u8TwoConts, u8TwoConts,
		// 0xC_, 0xD_: 2-byte lead
		u8TooShort | u8Overlong2,
		u8TooShort,
		// 0xE_: 3-byte lead
		u8TooShort | u8Overlong3 | u8Surrogate,
		// 0xF_: 4-byte lead (or never valid)
		u8TooShort | u8TooLarge | u8Overlong4OrTooLarge,
	},
	firstLow: [16]byte{
		u8Carry | u8Overlong2 | u8Overlong3 | u8Overlong4OrTooLarge, // _0: C0, E0, F0
		u8Carry | u8Overlong2, // _1: C1
		u8Carry,
		u8Carry,
		u8Carry | u8TooLarge, // _4: F4
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge, // _5..: F5..FF
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge | u8Surrogate, // _D: ED
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
		u8Carry | u8TooLarge | u8Overlong4OrTooLarge,
	},
	second: [16]byte{
		// 0x0_..0x7_: ASCII
		u8TooShort, u8TooShort, u8TooShort, u8TooShort,
		u8TooShort, u8TooShort, u8TooShort, u8TooShort,
		// 0x8_
		u8TooLong | u8TwoConts | u8Overlong2 | u8Overlong3 | u8Overlong4OrTooLarge,
		// 0x9_
		u8TooLong | u8TwoConts | u8Overlong2 | u8Overlong3 | u8TooLarge,
		// 0xA_, 0xB_
		u8TooLong | u8TwoConts | u8Overlong2 | u8Surrogate | u8TooLarge,
		u8TooLong | u8TwoConts | u8Overlong2 | u8Surrogate | u8TooLarge,
		// 0xC_..0xF_: a lead byte
		u8TooShort, u8TooShort, u8TooShort, u8TooShort,
	},
	ends: [32]byte{
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0 - 1, 0xE0 - 1, 0xC0 - 1,
	},
	nibble: 0x0F,
	lead3:  0xE0 - 0x80,
	lead4:  0xF0 - 0x80,
	high:   0x80,
}
