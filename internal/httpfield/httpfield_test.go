package httpfield

import "testing"

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"X-Trace": true, "Sec-WebSocket-Protocol": true, "!#$%&'*+-.^_`|~09azAZ": true,
		"": false, "Bad Name": false, "X-A:": false, "a\r\nb": false, "é": false, "a\x7f": false, `"q"`: false, "a/b": false,
	} {
		if got := IsToken(s); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidValue(t *testing.T) {
	for v, want := range map[string]bool{
		"": true, "a\tb c": true, "caf\xe9": true, "Basic dXNlcjpwYXNz": true,
		"a\r\nX-Injected: 1": false, "a\x00": false, "a\x01b": false, "a\x7f": false,
	} {
		if got := ValidValue(v); got != want {
			t.Errorf("ValidValue(%q) = %v, want %v", v, got, want)
		}
	}
}
