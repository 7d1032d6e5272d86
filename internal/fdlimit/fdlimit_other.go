//go:build !unix

package fdlimit

// Raise does nothing where descriptors have no per-process soft limit to
// lift (Windows handles are limited by memory).
func Raise() {}
