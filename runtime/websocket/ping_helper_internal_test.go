package websocket

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestPingBehindStalledWriteOneHelper: Pings that give up behind a write
// holding the frame lock (a peer that stopped reading; for good with
// WriteTimeout < 0) leave at most one goroutine waiting for that lock, not
// one each; once the lock is free, that helper writes nothing for them.
// Pings still waiting when it gets the lock share one ping, and its pong
// answers them all. Before the shared helper, 200 timed-out Pings left 200
// goroutines parked on the lock, every run.
func TestPingBehindStalledWriteOneHelper(t *testing.T) {
	c, peer, br := serverPair(t, 5*time.Second)
	go func() { _, _, _ = c.Read(context.Background()) }() // notices pongs
	// The write stalled on a peer that stopped reading.
	c.frameMu.Lock()
	locked := true
	defer func() {
		if locked {
			c.frameMu.Unlock()
		}
	}()

	before := runtime.NumGoroutine()
	const gaveUp = 200
	for range gaveUp {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := c.Ping(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Ping behind the held lock: %v, want DeadlineExceeded", err)
		}
	}
	if n := runtime.NumGoroutine() - before; n > 2 {
		t.Errorf("%d goroutines left behind by %d Pings that gave up, want at most 1", n, gaveUp)
	}

	// Pings that still wait when the lock comes free share one ping.
	const waiting = 3
	var wg sync.WaitGroup
	errs := make(chan error, waiting)
	for range waiting {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs <- c.Ping(ctx)
		})
	}
	waitCond(t, "the Pings to wait on the helper", func() bool {
		ps := c.pings()
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return ps.help != nil && ps.help.want == waiting
	})
	c.frameMu.Unlock()
	locked = false

	f, err := readWireFrame(peer, br, 2*time.Second)
	if err != nil || f.op != OpPing {
		t.Fatalf("want one ping frame: %v %v", f.op, err)
	}
	if _, err := peer.Write(clientFrame(OpPong, f.payload)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Ping sharing the helper's ping: %v, want nil", err)
		}
	}
	if f, err := readWireFrame(peer, br, 100*time.Millisecond); err == nil {
		t.Errorf("%v frame %x after the shared ping: the Pings that gave up wanted none", f.op, f.payload)
	}
	ps := c.pings()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.waiters) != 0 {
		t.Errorf("%d pong waiters left after every Ping returned", len(ps.waiters))
	}
}
