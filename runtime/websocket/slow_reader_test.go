//go:build linux

package websocket

// WriteTimeout and a peer that keeps reading slowly, on Linux, where a
// raw socket write whose deadline fires asks the kernel whether its send
// queue shrank meanwhile (peerReads, SIOCOUTQ).

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// slowPair returns a loopback TCP pair shaped like a connection across a
// network: small socket buffers both ways (so filling them takes little),
// and an MSS of 1400 bytes. With loopback's own MSS (~64 KiB), larger
// than such a buffer, the receiver's window opened only once the peer had
// drained its buffer, and then late (on the sender's zero-window probe):
// the sender's queue stood still for 400 ms at a time while the peer
// waited for data. With a network's MSS it shrinks as the peer reads. All
// set before connecting, so the handshake agrees on them.
func slowPair(t *testing.T, sndbuf, rcvbuf int) (net.Conn, net.Conn) {
	t.Helper()
	control := func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, o := range [][3]int{
				{syscall.SOL_SOCKET, syscall.SO_SNDBUF, sndbuf},
				{syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf},
				{syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1400},
			} {
				if e := syscall.SetsockoptInt(int(fd), o[0], o[1], o[2]); e != nil && serr == nil {
					serr = e
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	ln, err := (&net.ListenConfig{Control: control}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := (&net.Dialer{Control: control, Timeout: ioBound}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := waitFor(t, ioBound, accepted, "accept")
	if b == nil {
		a.Close()
		t.Fatal("accept failed")
	}
	return a, b
}

// trickle reads from peer chunk bytes every 20 ms until it has read limit
// bytes (then it stops reading, the connection left open) or the
// connection ends.
func trickle(peer net.Conn, chunk, limit int) {
	buf := make([]byte, chunk)
	for limit > 0 {
		_ = peer.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := io.ReadFull(peer, buf[:min(chunk, limit)])
		limit -= n
		if err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWriteTimeoutSparesSteadySlowReader guards WriteTimeout's promise
// that a peer that keeps reading, however slowly, holds a large write as
// long as it keeps reading. The write's deadline used to move only when
// the poller woke the write and it made progress, and Linux wakes a
// writer only once about a third of its send buffer has drained: a peer
// reading 1 KiB every 50 ms was cut at WriteTimeout (30 s) in the
// walkthrough, one reading 1 KiB every 10 ms at 3 s. Here the peer reads
// 1 KiB every 20 ms, which drains enough of the 256 KiB send buffer to
// wake the writer about once a second, three times WriteTimeout (300
// ms): the Write must complete (about 3 s). A few hundred KiB keep the
// test short; megabytes wait the same way, only longer.
func TestWriteTimeoutSparesSteadySlowReader(t *testing.T) {
	local, peer := slowPair(t, 128<<10, 4<<10)
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, 300*time.Millisecond, 0, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })
	if c.rawConn == nil {
		t.Fatal("no raw socket I/O")
	}
	const size = 320 << 10
	go trickle(peer, 1<<10, headerLen(size, false)+size)
	wrote := make(chan error, 1)
	go func() { wrote <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()
	if err := waitFor(t, time.Minute, wrote, "the Write"); err != nil {
		t.Fatalf("Write to a peer reading steadily, slower than the poller reports progress: %v", err)
	}
}

// TestWriteTimeoutCutsReaderThatStops: the deadline moves only while the
// peer reads. A peer that reads slowly for a while (the deadline moved on
// its reading) and then stops reading altogether still gets the write
// cut, with a timeout, and the connection closed.
func TestWriteTimeoutCutsReaderThatStops(t *testing.T) {
	local, peer := slowPair(t, 128<<10, 4<<10)
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, 300*time.Millisecond, 0, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })
	const size = 4 << 20
	go trickle(peer, 1<<10, 64<<10)
	wrote := make(chan error, 1)
	go func() { wrote <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()
	if err := waitFor(t, time.Minute, wrote, "the Write"); !isTimeoutErr(err) {
		t.Fatalf("Write to a peer that stopped reading: %v, want a timeout", err)
	}
	select {
	case <-c.closed:
	default:
		t.Fatal("the connection is still open after its write timed out")
	}
}
