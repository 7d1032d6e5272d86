package websocket

import "syscall"

// inqRequest is the ioctl that reads how many bytes wait unread in a
// socket's receive queue (SIOCINQ, which Linux numbers as TIOCINQ, its
// FIONREAD): see unreadBytes.
const inqRequest = syscall.TIOCINQ

// outqRequest is the ioctl that reads how many bytes a socket's send
// queue holds, not yet acknowledged by the peer (SIOCOUTQ, which Linux
// numbers as TIOCOUTQ): see peerReads.
const outqRequest = syscall.TIOCOUTQ
