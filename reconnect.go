package wsrpc

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Reconnection defaults (see ReconnectPolicy).
const (
	DefaultReconnectAttempts     = 10
	DefaultReconnectInitialDelay = 100 * time.Millisecond
	DefaultReconnectMaxDelay     = 10 * time.Second
)

// ReconnectPolicy says how a WebSocket call reconnects after its
// connection is lost (see WithReconnect). The zero value means the
// defaults.
type ReconnectPolicy struct {
	// MaxAttempts bounds the consecutive failed attempts after one loss;
	// then Receive returns the last attempt's error. 0 means
	// DefaultReconnectAttempts; a negative value, no bound.
	MaxAttempts int
	// InitialDelay is the wait before the first attempt; each further
	// attempt doubles it up to MaxDelay. Each wait is drawn uniformly
	// from [d/2, d] (jitter), so that clients of a restarted server do
	// not all come back at the same instant. Defaults:
	// DefaultReconnectInitialDelay, DefaultReconnectMaxDelay.
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// OnReconnect, if set, is called after each attempt on the goroutine
	// that called Receive: attempt counts from 1 since the loss, err is
	// nil when the attempt opened a new connection (Send then goes to
	// it, so the callback may send what the application needs to resume)
	// and the attempt's error otherwise.
	OnReconnect func(attempt int, err error)
}

// WithReconnect makes bidirectional- and server-streaming WebSocket calls
// reconnect, with exponential backoff and jitter, when their connection
// is lost: a transport failure, a missed pong, or a close with 1001
// (going away, as Tracker.Shutdown sends), 1012 or 1013. A normal end, a
// handler's error (even CodeUnavailable: that is the application's
// answer), a refusal that is not unavailable (503, or a 502 or other
// 5xx without a code of its own, unless a Wsrpc-Code header says
// otherwise), Close, CloseSend and the call's context end the call as
// without this option; a CloseSend made while the call is reconnecting
// carries over to the new connection (see BidiStreamForClient.CloseSend).
// MaxAttempts bounds the consecutive failed attempts; a successful one
// starts the count and the backoff again.
//
// A reconnection is a new call on a new connection, driven by Receive: a
// server-streaming call sends its request again, and the handler starts
// over (put a resume point in the request, or use SSE with
// Last-Event-ID, to continue where it stopped); a bidirectional call
// continues with the messages the application sends next. Messages in
// flight when the connection was lost are lost with it, and a Send
// while the call is reconnecting fails with CodeUnavailable: the
// application decides what to send again, typically from OnReconnect.
// onClose and onConnect hooks run for each connection. Client-streaming
// calls never reconnect (their response depends on every message sent).
// SSE clients reconnect on their own (WithSSEClientOptions). Client only.
// Default: no reconnection.
func WithReconnect(policy ReconnectPolicy) Option {
	return optionFunc(func(c *config) {
		p := policy
		if p.MaxAttempts == 0 {
			p.MaxAttempts = DefaultReconnectAttempts
		}
		if p.InitialDelay <= 0 {
			p.InitialDelay = DefaultReconnectInitialDelay
		}
		if p.MaxDelay <= 0 {
			p.MaxDelay = DefaultReconnectMaxDelay
		}
		if p.MaxDelay < p.InitialDelay {
			p.MaxDelay = p.InitialDelay
		}
		c.reconnect = &p
	})
}

// redialer reconnects one call.
//
// Concurrency: reconnect runs on the receiving goroutine; stop and cancel
// are safe from any (the clientStream stops under its mu; see swap).
type redialer struct {
	c       *caller
	policy  *ReconnectPolicy
	ctx     context.Context // the call's, cancelled by stop
	cancel  context.CancelFunc
	req     any // a server-streaming call's request, sent again
	stopped atomic.Bool
}

// redialer returns the call's redialer, or nil without WithReconnect.
func (c *caller) redialer(ctx context.Context, req any) *redialer {
	if c.cfg.reconnect == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	return &redialer{c: c, policy: c.cfg.reconnect, ctx: ctx, cancel: cancel, req: req}
}

// stop ends reconnection: the application closed the call.
func (r *redialer) stop() { r.stopped.Store(true) }

func (r *redialer) retryable(err error) bool {
	if r.stopped.Load() || r.ctx.Err() != nil {
		return false
	}
	// A handler that failed with CodeUnavailable closed with 4014: that is
	// the application's answer, not a lost connection.
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code >= 4000 {
		return false
	}
	return CodeOf(err) == CodeUnavailable
}

// reconnect replaces s's connection, or returns the error that ends the
// call.
func (r *redialer) reconnect(s *clientStream, lost error) error {
	delay := r.policy.InitialDelay
	last := lost
	for attempt := 1; r.policy.MaxAttempts < 0 || attempt <= r.policy.MaxAttempts; attempt++ {
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return last
		case <-t.C:
		}
		if delay *= 2; delay > r.policy.MaxDelay {
			delay = r.policy.MaxDelay
		}
		conn, err := r.dial()
		if err == nil && !s.swap(conn) {
			return last
		}
		if fn := r.policy.OnReconnect; fn != nil {
			fn(attempt, err)
		}
		if err == nil {
			return nil
		}
		last = err
		if !r.retryable(err) {
			return err
		}
	}
	return last
}

// dial opens the new connection and, for a server-streaming call, sends
// the request again.
func (r *redialer) dial() (*wsConn, error) {
	conn, err := r.c.connect(r.ctx)
	if err != nil {
		return nil, err
	}
	if r.req != nil {
		if err := conn.Send(r.req); err != nil {
			conn.discard()
			return nil, err
		}
	}
	return conn, nil
}
