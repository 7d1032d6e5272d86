// Package httpfield checks the syntax of HTTP header fields (RFC 9110
// §5), for the packages that must refuse a field before a request is
// made: net/http would refuse it later, or, for a raw handshake, send it
// mangled.
package httpfield

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// Check returns an error wrapping sentinel for the first field of h, in
// name order, that no request can carry, or nil. It names the field, not
// its value, which may be a secret.
func Check(h http.Header, sentinel error) error {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !IsToken(name) {
			return fmt.Errorf("%w %q: name is not a token (RFC 9110 §5.1)", sentinel, name)
		}
		for _, v := range h[name] {
			if !ValidValue(v) {
				return fmt.Errorf("%w %q: value contains a control character (RFC 9110 §5.5)", sentinel, name)
			}
		}
	}
	return nil
}

// IsToken reports whether s is a token (RFC 9110 §5.6.2), the syntax of
// a field name (§5.1): one or more of the visible ASCII characters other
// than the delimiters "(),/:;<=>?@[\]{}.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// ValidValue reports whether v may be sent as a field value (RFC 9110
// §5.5): no control character but horizontal tab. obs-text, the bytes
// 0x80 and up, is allowed.
func ValidValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// tchar marks the bytes a token may hold.
var tchar = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = true
	}
	for _, c := range "\"(),/:;<=>?@[\\]{}" {
		t[c] = false
	}
	return t
}()
