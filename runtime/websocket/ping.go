package websocket

import (
	"context"
	"encoding/binary"
	"sync/atomic"
)

// Ping sends a ping and waits for its pong (RFC 6455 §5.5.2-3). The pong is
// noticed by whichever goroutine reads the connection, so Ping needs a
// concurrent reader. If ctx is done first — while the ping waits to go out
// behind another write (a large one, or one stalled on a peer that stopped
// reading), or while Ping waits for the pong — Ping returns ctx's error and
// the connection stays open. A ping that has begun to go out is finished
// first: a frame cut off half way would end the connection.
func (c *Conn) Ping(ctx context.Context) error {
	seq := c.pingSeq.Add(1)
	ch := make(chan struct{})
	c.pingMu.Lock()
	select {
	case <-c.closed:
		c.pingMu.Unlock()
		return c.closedErr()
	default:
	}
	if c.pingWaiters == nil {
		c.pingWaiters = make(map[uint64]chan struct{})
	}
	c.pingWaiters[seq] = ch
	c.pingMu.Unlock()
	defer func() {
		c.pingMu.Lock()
		delete(c.pingWaiters, seq)
		c.pingMu.Unlock()
	}()
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], seq)
	if err := c.writePing(ctx, p[:]); err != nil {
		return err
	}
	select {
	case <-ch:
		select {
		case <-c.closed:
			return c.closedErr()
		default:
			return nil
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return c.closedErr()
	}
}

// writePing writes Ping's ping, waiting for the frame lock only as long as
// ctx lets it: a data write stalled behind a peer that stopped reading
// holds that lock until it makes progress again or WriteTimeout ends it.
// A ping already being written is finished, whatever ctx does meanwhile:
// a frame cut off half way would end the connection, and Ping promises
// to leave it open. The lock is a sync.Mutex, which cannot be waited for
// under a ctx; when it is busy a goroutine waits for it instead, and
// whichever of ctx and the lock comes first decides whether the ping is
// written. A Ping that gave up leaves that goroutine to take the lock
// and let it go, writing nothing. A lock free at once, or a ctx that is
// never done, costs no goroutine.
func (c *Conn) writePing(ctx context.Context, p []byte) error {
	if ctx.Done() == nil {
		return c.writeControl(OpPing, p)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.frameMu.TryLock() {
		defer c.frameMu.Unlock()
		return c.writeFrameLocked(true, OpPing, 0, p, true)
	}
	const waiting, writing, abandoned = 0, 1, 2
	var state atomic.Int32
	done := make(chan error, 1)
	go func() {
		c.frameMu.Lock()
		defer c.frameMu.Unlock()
		if ctx.Err() != nil || !state.CompareAndSwap(waiting, writing) {
			done <- ctx.Err()
			return
		}
		done <- c.writeFrameLocked(true, OpPing, 0, p, true)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if !state.CompareAndSwap(waiting, abandoned) {
			<-done // being written: see above
		}
		return ctx.Err()
	}
}

// ControlSeen reports whether the connection has read a ping or a pong.
// On a connection that has delivered no message it is the proof that the
// peer is alive and the path carries its frames: a reconnecting client
// (wsrpc's WithReconnect) counts such a connection as a success, so that
// a quiet stream cut now and then does not run out of attempts.
func (c *Conn) ControlSeen() bool { return c.controlSeen.Load() }

// gotPong matches a pong to the Ping or keepalive ping that asked for it.
// Unsolicited pongs (§5.5.3 allows them) are ignored.
//
// A Ping is answered only by its own pong. The keepalive ping is answered
// by the pong of any ping of ours numbered at or after it: §5.5.3 lets a
// peer with several pings waiting answer only the most recent one, so an
// application Ping sent right after the keepalive ping may take its pong,
// and that pong proves the peer alive just as well. Numbers are taken in
// the order pings are made, and one above pingSeq was never sent.
func (c *Conn) gotPong(p []byte) {
	if len(p) != 8 {
		return
	}
	seq := binary.BigEndian.Uint64(p)
	c.pingMu.Lock()
	if ch, ok := c.pingWaiters[seq]; ok {
		close(ch)
		delete(c.pingWaiters, seq)
	}
	if c.kaSeq != 0 && seq >= c.kaSeq && seq <= c.pingSeq.Load() {
		c.kaSeq = 0
		if c.kaTimer != nil {
			c.kaTimer.Reset(c.cfg.pingInterval)
		}
	}
	c.pingMu.Unlock()
}

// keepalive runs on a timer, never on a goroutine of its own: every
// PingInterval it sends a ping; if the pong has not come PongTimeout later,
// the peer is gone and the TCP connection is closed at once, without a
// close frame, every call failing with ErrPongTimeout. A close frame (RFC
// 6455 §7.1.7 has a failing endpoint send one only as a SHOULD) is left
// out on purpose: the path that lost the pong would not carry it either,
// and writing it would wait behind a data write stalled on that path —
// up to the write timeout, during which a Send and the Receive beside it
// stay blocked on a connection known dead. Where one direction still
// works, the peer sees the connection lost (1006), which clients retry,
// rather than a 1011 (internal error), which says its own side failed.
// npm ws's heartbeat recipe ends a silent peer the same way (terminate).
func (c *Conn) keepalive() {
	select {
	case <-c.closed:
		return
	default:
	}
	c.pingMu.Lock()
	if c.kaSeq != 0 {
		// The timer was armed for the pong timeout and the pong is late.
		c.pingMu.Unlock()
		c.closeWith(ErrPongTimeout)
		return
	}
	seq := c.pingSeq.Add(1)
	c.kaSeq = seq
	c.kaTimer.Reset(c.cfg.pongTimeout)
	c.pingMu.Unlock()
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], seq)
	_ = c.writeControl(OpPing, p[:])
}
