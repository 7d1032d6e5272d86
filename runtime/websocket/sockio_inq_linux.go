package websocket

import "syscall"

// inqRequest is the ioctl that reads how many bytes wait unread in a
// socket's receive queue (SIOCINQ, which Linux numbers as TIOCINQ, its
// FIONREAD): see unreadBytes.
const inqRequest = syscall.TIOCINQ
