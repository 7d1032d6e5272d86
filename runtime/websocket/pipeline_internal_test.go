package websocket

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countWrites counts the writes a Conn makes to its socket: those through
// net.Conn and those through the RawConn that SyscallConn returns (the
// production path for sockets, one RawConn.Write per write or writev).
type countWrites struct {
	*net.TCPConn
	n atomic.Int32
}

func (c *countWrites) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.TCPConn.Write(p)
}

func (c *countWrites) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return countRawWrites{rc, &c.n}, nil
}

type countRawWrites struct {
	syscall.RawConn
	n *atomic.Int32
}

func (c countRawWrites) Write(f func(fd uintptr) bool) error {
	c.n.Add(1)
	return c.RawConn.Write(f)
}

// pipelined sends msgs to a server Conn as one write and returns the
// server Conn, its write counter and the peer.
func pipelined(t *testing.T, msgs [][]byte) (*Conn, *countWrites, net.Conn) {
	t.Helper()
	local, peer := tcpPair(t)
	t.Cleanup(func() { peer.Close() })
	cw := &countWrites{TCPConn: local.(*net.TCPConn)}
	c := newConn(cw, false, resolveConfig(0, 0, 0, 0, 0, 0, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow() })
	var in []byte
	for _, m := range msgs {
		in = append(in, frameBytes(true, 0, OpBinary, true, m)...)
	}
	if _, err := peer.Write(in); err != nil {
		t.Fatal(err)
	}
	return c, cw, peer
}

func expectFrames(t *testing.T, peer net.Conn, msgs [][]byte) {
	t.Helper()
	var want []byte
	for _, m := range msgs {
		want = append(want, frameBytes(true, 0, OpBinary, false, m)...)
	}
	got := make([]byte, len(want))
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("reading the replies: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("replies differ from the messages")
	}
}

// A peer that pipelines gets the replies to everything it sent in one
// write, not one write per reply (issue 7: pipelined echo).
func TestPipelinedRepliesShareWrites(t *testing.T) {
	noFlushTimer(t)
	var msgs [][]byte
	for i := range 16 {
		msgs = append(msgs, bytes.Repeat([]byte{byte('a' + i)}, 100))
	}
	c, cw, peer := pipelined(t, msgs)
	ctx := context.Background()
	var buf []byte
	for range msgs {
		typ, msg, err := c.ReadAppend(ctx, buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			t.Fatal(err)
		}
		buf = msg
	}
	expectFrames(t, peer, msgs)
	if n := cw.n.Load(); n != 1 {
		t.Fatalf("%d writes for %d pipelined replies, want them batched", n, len(msgs))
	}
}

// A reply deferred because more input is buffered still goes out when the
// application then neither reads nor writes.
func TestDeferredReplyIsFlushed(t *testing.T) {
	msgs := [][]byte{[]byte("first"), []byte("second")}
	c, _, peer := pipelined(t, msgs)
	ctx := context.Background()
	typ, msg, err := c.ReadAppend(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatal(err)
	}
	// No further read or write: "second" stays buffered, unread.
	expectFrames(t, peer, msgs[:1])
}

// Writes with no read between them are not replies to pipelined input:
// the second one flushes both, and the third goes out at once.
func TestWritesWithoutReadsAreNotHeld(t *testing.T) {
	noFlushTimer(t)
	msgs := [][]byte{[]byte("first"), []byte("second")}
	c, cw, peer := pipelined(t, msgs)
	ctx := context.Background()
	typ, msg, err := c.ReadAppend(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Write(ctx, typ, msg); err != nil {
			t.Fatal(err)
		}
	}
	expectFrames(t, peer, [][]byte{msg, msg, msg})
	if n := cw.n.Load(); n != 2 {
		t.Fatalf("%d writes, want 2 (the first deferred, then one each)", n)
	}
}

// noFlushTimer makes the deferred-flush timer too slow to matter, so a
// test sees only the flushes the rules make.
func noFlushTimer(t *testing.T) {
	old := flushDelay
	flushDelay = time.Hour
	t.Cleanup(func() { flushDelay = old })
}
