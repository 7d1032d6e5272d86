//go:build linux

package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// TestSecondCloseAwaitsFirstHandshake: a Close that finds another's close
// frame on its way returns once that closing handshake is over, as the
// first Close does: its frame written, then the peer's answer read and
// the connection closed. Here the first Close's frame waits behind a
// write to a peer that reads only after a while (most of the close
// timeout), and the peer answers late. The second Close waited one close
// timeout from its own start and returned ErrClosed with the connection
// still open and the peer's close frame still to come: whoever relied on
// its return (wsrpc runs OnClose after it, with the connection's
// counters) ran while the first Close went on, its counters changing
// after.
func TestSecondCloseAwaitsFirstHandshake(t *testing.T) {
	const closeTimeout = time.Second
	local, remote := slowPair(t, 4<<10, 4<<10)
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, time.Minute, closeTimeout, false), "", nil, nil)
	peer := newConn(remote, true, resolveConfig(0, 0, 0, 0, time.Minute, closeTimeout, true), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.CloseNow() })
	ctx := context.Background()

	start := time.Now()
	go func() { _ = c.Write(ctx, MessageBinary, make([]byte, 512<<10)) }()
	time.Sleep(100 * time.Millisecond) // let the write take the frame lock and fill the socket
	first := make(chan error, 1)
	go func() { first <- c.Close(StatusTryAgainLater, "slow consumer") }()
	for claimed := false; !claimed; time.Sleep(time.Millisecond) {
		c.closeMu.Lock()
		claimed = c.closeSent
		c.closeMu.Unlock()
	}
	type result struct {
		err  error
		read uint64
		at   time.Duration
	}
	second := make(chan result, 1)
	go func() {
		err := c.Close(StatusNormalClosure, "")
		second <- result{err, c.Stats().WireBytesRead, time.Since(start)}
	}()

	// The peer reads from 600 ms on, well within the first Close's close
	// timeout: its frame goes out behind the message.
	time.Sleep(time.Until(start.Add(600 * time.Millisecond)))
	for {
		f, err := peer.ReadFrame(ctx, nil)
		if err != nil {
			t.Fatalf("peer: %v", err)
		}
		if f.Opcode == OpClose {
			break
		}
	}
	// It answers at 1.4 s: after the second Close's own close timeout
	// (about 1.1 s), within the first's wait for the answer (until about
	// 1.6 s).
	time.Sleep(time.Until(start.Add(1400 * time.Millisecond)))
	if err := peer.WriteFrame(ctx, Frame{FrameHeader{Fin: true, Opcode: OpClose}, binary.BigEndian.AppendUint16(nil, uint16(StatusTryAgainLater))}); err != nil {
		t.Fatalf("peer: %v", err)
	}
	var r result
	select {
	case r = <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the second Close never returned")
	}
	if !errors.Is(r.err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", r.err)
	}
	if r.read == 0 {
		t.Errorf("the second Close returned at %v, before the peer's close frame (at 1.4s) ended the first's handshake", r.at.Round(time.Millisecond))
	}
	if err := <-first; err != nil {
		t.Errorf("first Close = %v, want nil: the peer answered", err)
	}
}
