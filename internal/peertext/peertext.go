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
	"fmt"
	"strings"
	"unicode/utf8"
)

// OneLine returns s, text a peer sent, printable on one line: white space
// at its ends trimmed, line breaks and tabs as spaces, and control
// characters (C0, DEL, C1), the Unicode line and paragraph separators,
// bidirectional marks, embeddings, overrides and isolates, and bytes that
// are not UTF-8 escaped (\u001b, \u202e, \xff). A backslash is left as it
// is, so OneLine(OneLine(s)) == OneLine(s), but the escaping cannot be
// undone: it is for reading, and the raw value is kept where it is needed.
// s itself is returned, with no allocation, when nothing needs escaping.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	var sb strings.Builder
	done := 0 // s[:done] is in sb
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == utf8.RuneError && size == 1:
			esc = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n' || r == '\r' || r == '\t':
			esc = " "
		case Hidden(r):
			esc = fmt.Sprintf(`\u%04x`, r)
		default:
			i += size
			continue
		}
		sb.WriteString(s[done:i])
		sb.WriteString(esc)
		i += size
		done = i
	}
	if done == 0 {
		return s
	}
	sb.WriteString(s[done:])
	return sb.String()
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
