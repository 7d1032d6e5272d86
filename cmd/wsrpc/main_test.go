package main

import (
	"strings"
	"testing"
)

// TestDiagnosticsEscapeControls guards what the commands' stderr lets
// through of a server's text (close reasons, wsrpc.error messages, error
// bodies): newline, tab and printable text as they are, anything that
// could drive a terminal escaped, and the byte count of the write as
// given.
func TestDiagnosticsEscapeControls(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain text, ünïcode ✓\n\tindented\n", "plain text, ünïcode ✓\n\tindented\n"},
		{"\x1b[2J\x1b]0;title\x07", `\u001b[2J\u001b]0;title\u0007`},
		{"cr\rover", `cr\u000dover`},
		{"del\x7f c1\u009b", `del\u007f c1\u009b`},
		{"bidi \u202eevil\u2066", `bidi \u202eevil\u2066`},
		{"marks \u200f\u061c separators \u2028\u2029", `marks \u200f\u061c separators \u2028\u2029`},
		{"not utf-8 \xff\xc3", `not utf-8 \xff\xc3`},
	} {
		var b strings.Builder
		n, err := diagnostics(&b).Write([]byte(tt.in))
		if err != nil || n != len(tt.in) || b.String() != tt.want {
			t.Errorf("Write(%q) = %d, %v, wrote %q; want %d, %q", tt.in, n, err, b.String(), len(tt.in), tt.want)
		}
	}
}
