package peertext

import (
	"strconv"
	"strings"
	"testing"
)

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"room is required", "room is required"},
		{"  room is required\n", "room is required"},
		{"café ☕ \\u001b", "café ☕ \\u001b"},
		// Terminal commands: colour, window title (OSC … BEL), clear.
		{"room \x1b[31mis\x1b[0m required", `room \u001b[31mis\u001b[0m required`},
		{"\x1b]0;pwned\x07title", `\u001b]0;pwned\u0007title`},
		{"a\x1b[2Jb\x00c\x7fd", `a\u001b[2Jb\u0000c\u007fd`},
		// A forged second line: line breaks and tabs become spaces.
		{"ok\r\nwsrpc sse: fake line", "ok  wsrpc sse: fake line"},
		{"a\tb\rc\nd", "a b c d"},
		{"a\u2028b\u2029c", `a\u2028b\u2029c`},
		// C1 controls (CSI as one code point), as runes.
		{"a\u009b31mb\u0085c", `a\u009b31mb\u0085c`},
		// Bidirectional formatting characters.
		{"evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c", `\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c`},
		// Bytes that are not UTF-8, an encoded U+FFFD kept.
		{"second line\xff \xc3", `second line\xff \xc3`},
		{"\xef\xbf\xbd", "\ufffd"},
		{"\x1b]0;owned\a\r\nsecond line\xff \u202eevil", `\u001b]0;owned\u0007  second line\xff \u202eevil`},
	}
	for _, tt := range tests {
		got := OneLine(tt.in)
		if got != tt.want {
			t.Errorf("OneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := OneLine(got); again != got {
			t.Errorf("OneLine(OneLine(%q)) = %q, want %q", tt.in, again, got)
		}
	}
}

// TestOneLineNoAllocation: text with nothing to escape, the common case,
// costs nothing (Error() strings are built from it).
func TestOneLineNoAllocation(t *testing.T) {
	s := " room is required\n"
	if n := testing.AllocsPerRun(100, func() { _ = OneLine(s) }); n != 0 {
		t.Fatalf("OneLine allocated %v times, want 0", n)
	}
}

// TestOneLineBounded: a hostile status line of 9 MB (a Transport takes
// up to 10 MiB of header) made a 56 MB Error() string, escaped whole at
// two seconds of CPU per call. The result is cut at MaxLen, at a
// character, with how many bytes were left out.
func TestOneLineBounded(t *testing.T) {
	esc := strings.Repeat("\x1b", 9<<20)
	const keptESC = (MaxLen - maxSuffix) / len(`\u001b`)
	plain := strings.Repeat("a", MaxLen)
	tests := []struct {
		name, in, want string
	}{
		{"9 MB of ESC", esc, strings.Repeat(`\u001b`, keptESC) + "… (" + strconv.Itoa(9<<20-keptESC) + " more bytes)"},
		{"9 MB of ESC in white space", " \r\n" + esc + "\n ", strings.Repeat(`\u001b`, keptESC) + "… (" + strconv.Itoa(9<<20-keptESC) + " more bytes)"},
		{"plain, MaxLen bytes", plain, plain},
		{"plain, MaxLen+1 bytes", plain + "b", plain[:MaxLen-maxSuffix] + "… (" + strconv.Itoa(maxSuffix+1) + " more bytes)"},
		// Cut before a character that does not fit, not inside it.
		{"cut at a character", plain[:MaxLen-maxSuffix-1] + "☕" + plain, plain[:MaxLen-maxSuffix-1] + "… (" + strconv.Itoa(3+MaxLen) + " more bytes)"},
		{"escape that fits exactly", plain[:MaxLen-6] + "\u202e", plain[:MaxLen-6] + `\u202e`},
		{"escape one byte over", plain[:MaxLen-5] + "\u202e", plain[:MaxLen-maxSuffix] + "… (" + strconv.Itoa(maxSuffix-5+3) + " more bytes)"},
	}
	for _, tt := range tests {
		got := OneLine(tt.in)
		if got != tt.want {
			t.Errorf("%s: OneLine = %.80q… (%d bytes), want %.80q… (%d bytes)", tt.name, got, len(got), tt.want, len(tt.want))
		}
		if len(got) > MaxLen {
			t.Errorf("%s: OneLine returned %d bytes, more than MaxLen", tt.name, len(got))
		}
		if again := OneLine(got); again != got {
			t.Errorf("%s: OneLine(OneLine(s)) = %.80q…, want it unchanged", tt.name, again)
		}
	}
	// One allocation, of at most MaxLen bytes, however long the text.
	if n := testing.AllocsPerRun(10, func() { _ = OneLine(esc) }); n != 1 {
		t.Errorf("OneLine of 9 MB allocated %v times, want 1", n)
	}
}

// BenchmarkOneLine: a 4 KiB hostile text, escaped at every byte, as a
// server's status line or body may be.
func BenchmarkOneLine(b *testing.B) {
	s := strings.Repeat("\x1b[31m\u202e\xff\r\n", 4<<10/11+1)[:4<<10]
	b.ReportAllocs()
	for b.Loop() {
		_ = OneLine(s)
	}
}
