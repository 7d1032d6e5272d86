//go:build linux

package websocket

// Close gives up on a closing handshake whose close frame cannot get out:
// the TCP connection is reset, not closed after what is queued.

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestCloseStuckBehindWriteResets guards what Close does when its close
// frame cannot be written at all: a Write holds the connection, blocked
// on a peer that stopped reading (a server handler busy elsewhere while a
// client uploads), and Close gives up after CloseTimeout. It used to close
// TCP gracefully: the kernel still delivered everything queued, and the
// server's handler went on reading the abandoned upload to its end (4,089
// chunks, 22 s in the walkthrough) before it learnt of the close; here
// the peer could read the 4 MiB our send queue held, then EOF. Now the
// connection is reset: our queue is dropped, and the peer's read fails
// with the reset once it has read what had already reached its receive
// buffer (Linux delivers that first), no more.
func TestCloseStuckBehindWriteResets(t *testing.T) {
	local, peer := tcpPair(t)
	c := newConn(local, true, resolveConfig(0, 0, 0, 0, time.Minute, 200*time.Millisecond, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })

	// A Write far larger than what the sockets hold (autotuned, several
	// MiB on loopback), the peer reading nothing: it blocks, holding
	// the frame lock.
	const size = 16 << 20
	wrote := make(chan error, 1)
	go func() { wrote <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()
	// The peer's receive queue stops growing once both sockets are full.
	deadline := time.Now().Add(ioBound)
	for queued := 0; ; {
		time.Sleep(50 * time.Millisecond)
		n := peerUnread(t, peer)
		if n > 0 && n == queued {
			break
		}
		queued = n
		if time.Now().After(deadline) {
			t.Fatal("the sockets never filled")
		}
	}

	if err := c.Close(StatusGoingAway, "cancelled"); err == nil {
		t.Fatal("Close behind a blocked write returned nil")
	}
	if err := waitFor(t, ioBound, wrote, "the blocked Write"); err == nil {
		t.Fatal("the blocked Write succeeded")
	}

	// Everything the peer can still read.
	rcvbuf := peerRcvbuf(t, peer)
	var got int64
	buf := make([]byte, 256<<10)
	var rerr error
	for rerr == nil {
		_ = peer.SetReadDeadline(time.Now().Add(ioBound))
		var n int
		n, rerr = peer.Read(buf)
		got += int64(n)
	}
	if !errors.Is(rerr, syscall.ECONNRESET) {
		t.Errorf("the peer's read ended with %v after %d bytes, want a reset", rerr, got)
	}
	if got > int64(rcvbuf) {
		t.Errorf("the peer read %d bytes of the abandoned message after Close, more than its receive buffer (%d): what was queued to send went out", got, rcvbuf)
	}
}

// TestCloseUnansweredStaysGraceful: the reset is only for a close frame
// that could not be written. When ours went out and the peer's answer is
// what never came, the TCP connection is closed as before, with a FIN:
// the peer reads our close frame and then the end of the stream.
func TestCloseUnansweredStaysGraceful(t *testing.T) {
	c, peer, br := serverPair(t, 200*time.Millisecond)
	if err := c.Close(StatusGoingAway, "bye"); err == nil {
		t.Fatal("Close without the peer's answer returned nil")
	}
	f, err := readWireFrame(peer, br, ioBound)
	if err != nil || f.op != OpClose {
		t.Fatalf("peer read op %v, %v; want our close frame", f.op, err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(ioBound))
	if n, err := br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame the peer read %d bytes, %v; want EOF", n, err)
	}
}

// peerRcvbuf returns nc's receive buffer size (SO_RCVBUF, as the kernel
// reports it: room for the bytes and their bookkeeping).
func peerRcvbuf(t *testing.T, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatalf("SO_RCVBUF: %v %v", err, serr)
	}
	return n
}

// peerUnread returns how many bytes wait unread in nc's receive queue
// (SIOCINQ).
func peerUnread(t *testing.T, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		t.Fatalf("SIOCINQ: %v %v", err, errno)
	}
	return int(n)
}
