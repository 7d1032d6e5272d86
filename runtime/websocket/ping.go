package websocket

import (
	"context"
	"encoding/binary"
)

// Ping sends a ping and waits for its pong (RFC 6455 §5.5.2-3). The pong is
// noticed by whichever goroutine reads the connection, so Ping needs a
// concurrent reader. If ctx is done first, Ping returns ctx's error and the
// connection stays open.
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
	if err := c.writeControl(OpPing, p[:]); err != nil {
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
