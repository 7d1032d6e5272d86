// Package peertext makes text a peer sent printable on one line, for the
// error strings that carry it.
//
// The rule, for every package of this module: an error's Error() string
// never carries a peer's control characters raw. A hostile server's (or
// client's) refusal body, status line, close reason or error message
// printed as is could drive the terminal it is printed on (colours, the
// window title, clearing the screen), forge log lines with a CR or LF,
// or reorder what is shown with a bidirectional override. Error() passes
// such text through OneLine; structured fields keep the raw value
// (sse.StatusError's Status and Body, websocket.CloseError's Reason,
// wsrpc.Error's Message) for programs that want it, and that escape it
// themselves if they print it.
package peertext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLen bounds OneLine's result, in bytes. A status line is bounded only
// by the client's limit on the response header (net/http's Transport's is
// 10 MiB): a 9 MB reason phrase of ESC bytes, escaped whole, made a 56 MB
// Error() string (from sse.Connect) that cost two seconds of CPU per
// Error() call. 2 KiB keeps a refusal's body (at most 1 KiB) whole when
// it is plain text, and is more than anyone reads of one error.
const MaxLen = 2 << 10

// maxSuffix is the most the "… (N more bytes)" of a cut text takes: N has
// at most 19 digits.
const maxSuffix = len("… ( more bytes)") + 19

// OneLine returns s, text a peer sent, printable on one line: white space
// at its ends trimmed, line breaks and tabs as spaces, and control
// characters (C0, DEL, C1), the Unicode line and paragraph separators,
// bidirectional marks, embeddings, overrides and isolates, and bytes that
// are not UTF-8 escaped (\u001b, \u202e, \xff). A backslash is left as it
// is, so OneLine(OneLine(s)) == OneLine(s), but the escaping cannot be
// undone: it is for reading, and the raw value is kept where it is needed.
//
// The result is at most MaxLen bytes: a text that would not fit is cut
// at a character, before its escaped form reaches MaxLen less the room
// for the mark, which says how many bytes of (trimmed) s were left out:
// "… (9437184 more bytes)". Its cost is bounded too, whatever len(s): it
// reads no further than MaxLen bytes of s, past the white space at its
// ends. s itself is returned, with no allocation, when nothing needs
// escaping and it fits; otherwise the result is allocated once.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= MaxLen && !needsEscape(s) {
		return s
	}
	return escape(s)
}

// needsEscape reports whether OneLine changes anything in s.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || Hidden(r) {
			return true
		}
		i += size
	}
	return false
}

const hex = "0123456789abcdef"

// escape is OneLine for s, trimmed, that needs escaping or cutting. It
// builds the result in a buffer on the stack, appending each escape from
// the hex table (fmt, per character, cost a few allocations each), and
// copies it once into the result.
func escape(s string) string {
	var buf [MaxLen]byte
	b := buf[:0]
	keep, kept := 0, 0 // s[:keep] is b[:kept], leaving room for the mark
	for i := 0; i < len(s); {
		if len(b) <= MaxLen-maxSuffix {
			keep, kept = i, len(b)
		}
		c := s[i]
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		// What s[i:i+size] becomes (esc) and its length: itself, a
		// space, or \xff or \u202e (every Hidden rune is below U+10000:
		// four hex digits).
		esc, n := byte(0), size
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			esc, n = ' ', 1
		case r == utf8.RuneError && size == 1:
			esc, n = 'x', len(`\xff`)
		case Hidden(r):
			esc, n = 'u', len(`\u202e`)
		}
		if len(b)+n > MaxLen {
			b = append(b[:kept], "… ("...)
			b = strconv.AppendInt(b, int64(len(s)-keep), 10)
			b = append(b, " more bytes)"...)
			break
		}
		switch esc {
		case 0:
			b = append(b, s[i:i+size]...)
		case ' ':
			b = append(b, ' ')
		case 'x':
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		case 'u':
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		}
		i += size
	}
	return string(b)
}

// Hidden reports whether r acts on how text is shown rather than being
// shown: the C0 and C1 controls and DEL (ECMA-48: ESC and CSI start
// terminal commands, BEL rings), U+2028 and U+2029, which some log
// viewers break lines on, and the bidirectional formatting characters
// (Unicode UAX #9 §2: ALM, LRM, RLM, the embeddings and overrides
// U+202A–U+202E, the isolates U+2066–U+2069), which reorder what follows
// them (CVE-2021-42574, "Trojan Source"). OneLine escapes them; the
// CLI's diagnostics writer, which keeps line breaks, escapes the same
// set but newline and tab.
func Hidden(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
