package websocket

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The message lock excludes, and no waiter is left waiting while the lock
// is free: goroutines that take it, some of them giving up part way (their
// ctx ends), all finish, and never two hold it at once.
func TestMsgLockExcludesAndWakes(t *testing.T) {
	l := msgLock{wake: make(chan struct{}, 1)}
	closed := make(chan struct{})
	var inside atomic.Int32
	var wg sync.WaitGroup
	var taken, gaveUp atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if (g+i)%5 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*time.Microsecond)
				}
				err := l.lock(ctx, closed)
				cancel()
				if err != nil {
					gaveUp.Add(1)
					continue
				}
				if inside.Add(1) != 1 {
					t.Error("two holders")
				}
				if i%7 == 0 {
					time.Sleep(time.Microsecond)
				}
				inside.Add(-1)
				taken.Add(1)
				l.unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("a waiter was never woken")
	}
	if taken.Load()+gaveUp.Load() != 8*2000 || taken.Load() == 0 {
		t.Fatalf("taken %d, gave up %d", taken.Load(), gaveUp.Load())
	}
	if l.held.Load() || l.waiters.Load() != 0 {
		t.Fatalf("held %v, waiters %d after all left", l.held.Load(), l.waiters.Load())
	}
}

// A waiter gives up when the connection closes, with errLockClosed.
func TestMsgLockClosed(t *testing.T) {
	l := msgLock{wake: make(chan struct{}, 1)}
	closed := make(chan struct{})
	if err := l.lock(context.Background(), closed); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() { errc <- l.lock(context.Background(), closed) }()
	time.Sleep(10 * time.Millisecond)
	close(closed)
	if err := <-errc; err != errLockClosed {
		t.Fatalf("got %v", err)
	}
}
