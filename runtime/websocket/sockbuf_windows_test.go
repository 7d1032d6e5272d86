package websocket_test

import "syscall"

// setSockBuf sets a socket's buffer size option before it connects.
func setSockBuf(fd uintptr, opt, size int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, opt, size)
}
