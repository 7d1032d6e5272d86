//go:build unix

package sockbuf

import "syscall"

func setInt(fd uintptr, opt, v int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, v)
}
