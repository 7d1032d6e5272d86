//go:build !amd64 || purego

package websocket

import "unicode/utf8"

// validRunes reports whether p is valid UTF-8.
func validRunes(p []byte) bool { return utf8.Valid(p) }
