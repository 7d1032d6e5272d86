package peertext

import "testing"

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
