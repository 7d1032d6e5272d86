package sockbuf

import "syscall"

func setInt(fd uintptr, opt, v int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, opt, v)
}
