//go:build linux

package websocket

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseStuckBehindWriteKeepsReadersData: messages whose Write
// returned nil, then Close(1000) while the peer still reads them, slowly:
// the close frame waits behind them for longer than CloseTimeout, and
// Close ends the connection. It must end it gracefully, a FIN after what
// is queued: a reset (tried for a peer that stopped reading, to spare a
// server an upload its client abandoned) dropped the tail of messages
// reported as sent — a hub's shutdown, a handler's return, to a slow
// client — in 2 of 3 runs.
func TestCloseStuckBehindWriteKeepsReadersData(t *testing.T) {
	local, peer := slowPair(t, 128<<10, 4<<10)
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, time.Minute, 300*time.Millisecond, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })

	var got atomic.Int64
	readDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<10)
		for {
			_ = peer.SetReadDeadline(time.Now().Add(time.Minute))
			n, err := peer.Read(buf)
			got.Add(int64(n))
			if err != nil {
				readDone <- err
				return
			}
			time.Sleep(10 * time.Millisecond) // ~100 KiB/s, steady
		}
	}()
	const size = 16 << 10
	var sent atomic.Int64
	go func() {
		for {
			if err := c.Write(context.Background(), MessageBinary, make([]byte, size)); err != nil {
				return
			}
			sent.Add(int64(headerLen(size, false) + size))
		}
	}()
	time.Sleep(time.Second)
	cerr := c.Close(StatusNormalClosure, "")
	done := sent.Load()
	rerr := waitFor(t, time.Minute, readDone, "peer read")
	t.Logf("Close: %v; completed Writes: %d bytes; peer read %d bytes, then %v", cerr, done, got.Load(), rerr)
	if got.Load() < done {
		t.Errorf("peer lost %d bytes of messages whose Write returned nil", done-got.Load())
	}
}

// TestCloseUnansweredStaysGraceful: when our close frame went out and the
// peer's answer is what never came, the TCP connection is closed with a
// FIN: the peer reads our close frame and then the end of the stream.
// Close's error does not say ErrCloseNotSent.
func TestCloseUnansweredStaysGraceful(t *testing.T) {
	c, peer, br := serverPair(t, 200*time.Millisecond)
	if err := c.Close(StatusGoingAway, "bye"); err == nil || errors.Is(err, ErrCloseNotSent) {
		t.Fatalf("Close without the peer's answer = %v; want an error, not ErrCloseNotSent: the frame went out", err)
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
