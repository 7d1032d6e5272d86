package websocket

import (
	"context"
	"errors"
	"sync/atomic"
)

// msgLock is the connection's message lock, held for one whole data
// message (Write, WritePrepared, a Writer until its Close) so that
// messages never interleave. Unlike sync.Mutex, a caller waiting for it
// gives up when its context ends or the connection closes.
//
// Uncontended it costs a compare-and-swap to take and a store and a load
// to release. The buffered channel it replaced (send to lock, receive to
// unlock) took the runtime's channel lock twice per message, which was a
// quarter of a small Write's CPU in a profile.
//
// Concurrency: any goroutine may call lock; unlock is called by the
// holder. A waiter counts itself in waiters before its last look at held,
// and unlock stores held before it looks at waiters (both sequentially
// consistent), so a waiter either finds the lock free or is signalled. The
// signal is one token in wake: a waiter that takes it looks again, and one
// that leaves (its ctx ended) leaves the token for the others, so a token
// may be stale and a waiter may wake for nothing; it then waits again, and
// the holder it lost to signals when it unlocks. Like the channel, the
// lock is not fair: a newcomer may take it before a woken waiter.
type msgLock struct {
	held    atomic.Bool
	waiters atomic.Int32  // callers in lockSlow
	wake    chan struct{} // capacity 1
}

// errLockClosed is lockSlow's report that the connection closed while it
// waited; the caller returns the connection's own error.
var errLockClosed = errors.New("websocket: connection closed")

func (l *msgLock) tryLock() bool { return l.held.CompareAndSwap(false, true) }

// lock takes the lock, or returns ctx's error or errLockClosed.
func (l *msgLock) lock(ctx context.Context, closed <-chan struct{}) error {
	if l.tryLock() {
		return nil
	}
	return l.lockSlow(ctx, closed)
}

func (l *msgLock) lockSlow(ctx context.Context, closed <-chan struct{}) error {
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for !l.tryLock() {
		select {
		case <-l.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return errLockClosed
		}
	}
	return nil
}

func (l *msgLock) unlock() {
	l.held.Store(false)
	if l.waiters.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default: // a token is waiting already
		}
	}
}
