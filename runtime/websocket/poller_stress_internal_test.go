package websocket

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPollerConcurrentLifecycle: concurrent Write, Ping, Close and
// CloseNow on polled connections with pipelined input (replies deferred,
// the 1 ms flush timer armed), then Poller.Close: no race, no hang, one
// OnClose each, and no goroutine left behind.
func TestPollerConcurrentLifecycle(t *testing.T) {
	base := runtime.NumGoroutine()
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	var onClose atomic.Int32
	h := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, msg []byte) { _ = c.Write(context.Background(), typ, msg) },
		Close:   func(*Conn, error) { onClose.Add(1) },
	}
	const n = 16
	var peers []net.Conn
	var wg sync.WaitGroup
	for i := range n {
		local, peer := tcpPair(t)
		peers = append(peers, peer)
		c := newConn(local, false, resolveConfig(0, 0, 5*time.Millisecond, 20*time.Millisecond, 0, 200*time.Millisecond, false), "", nil, nil)
		if err := p.Serve(c, h); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		var in []byte
		for range 20 {
			in = append(in, frameBytes(true, 0, OpBinary, true, []byte("pipelined"))...)
		}
		go func() { _, _ = peer.Write(in) }()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		wg.Go(func() {
			for range 50 {
				if c.Write(ctx, MessageText, []byte("push")) != nil {
					return
				}
			}
		})
		wg.Go(func() { _ = c.Ping(ctx) })
		wg.Go(func() {
			time.Sleep(time.Duration(i%4) * time.Millisecond)
			switch i % 3 {
			case 0:
				_ = c.Close(StatusNormalClosure, "")
			case 1:
				_ = c.CloseNow()
			}
		})
		t.Cleanup(cancel)
	}
	wg.Wait()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Poller.Close hangs")
	}
	if got := onClose.Load(); got != n {
		t.Errorf("OnClose called %d times, want %d", got, n)
	}
	for _, pc := range peers {
		pc.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base+1 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after everything closed, %d before:\n%s", g, base, buf[:runtime.Stack(buf, true)])
	}
}
