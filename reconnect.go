package wsrpc

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Reconnection defaults (see ReconnectPolicy).
const (
	DefaultReconnectAttempts     = 10
	DefaultReconnectInitialDelay = 100 * time.Millisecond
	DefaultReconnectMaxDelay     = 10 * time.Second
	DefaultReconnectDialTimeout  = 10 * time.Second
)

// ReconnectPolicy says how a WebSocket call reconnects after its
// connection is lost (see WithReconnect). The zero value means the
// defaults.
type ReconnectPolicy struct {
	// MaxAttempts bounds the attempts in a row, counted since a
	// connection of the call last delivered a message or read a ping or
	// a pong (websocket.Conn.ControlSeen: keepalive on either side): an
	// attempt that opens a connection which is lost before either counts
	// too, so that a server that accepts and then closes at once is not
	// retried for ever. Then Receive returns the error that ended the
	// last attempt or connection. Without keepalive, a quiet stream
	// (nothing to Receive) whose connection is cut again and again uses
	// up MaxAttempts though every reconnection succeeded. 0 means
	// DefaultReconnectAttempts; a negative value, no bound. Beware:
	// sse.ClientOptions.MaxReconnectionAttempts, which bounds an SSE
	// call's reconnections (WithSSEClientOptions), has the opposite
	// convention: 0 there means no bound, and a negative value no
	// reconnection.
	MaxAttempts int
	// InitialDelay is the wait before the first attempt; each further
	// attempt doubles it up to MaxDelay, until a connection delivers a
	// message. Each wait is drawn uniformly from [d/2, d] (jitter), so
	// that clients of a restarted server do not all come back at the
	// same instant. Defaults: DefaultReconnectInitialDelay,
	// DefaultReconnectMaxDelay.
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// DialTimeout bounds each reconnection attempt's WebSocket handshake
	// (TCP, TLS and the upgrade; not the handshake interceptors' own
	// work), and never goes beyond the call's own deadline. An attempt
	// that runs out of it, like one that times out any other way while
	// the call's context is live, is a lost connection: retried with the
	// backoff, counted by MaxAttempts. It is shorter than the runtime's
	// websocket.DefaultHandshakeTimeout (30 s) so that a server that
	// accepts connections and never answers costs one backoff step, not
	// the call. 0 or negative means DefaultReconnectDialTimeout (10 s).
	DialTimeout time.Duration
	// OnReconnect, if set, is called after each attempt on the goroutine
	// that called Receive: attempt counts from 1 as MaxAttempts does, err
	// is nil when the attempt opened a new connection (Send then goes to
	// it already: what must reach the new session before any other
	// goroutine's Send belongs in BidiStreamForClient.SetResume) and the
	// attempt's error otherwise.
	OnReconnect func(attempt int, err error)
}

// WithReconnect makes bidirectional- and server-streaming WebSocket calls
// reconnect, with exponential backoff and jitter, when their connection
// is lost — a transport failure, a missed pong, or a close with 1001
// (going away, as Tracker.Shutdown sends), 1012 or 1013 — or when the
// handler ends the call with CodeUnavailable (close code 4014): by its
// definition (gRPC's and Connect's, whose codes these are) unavailable is
// the transient error, to retry with backoff, which a handler returns
// for what passes (a node shutting down, a hub closed under it; see
// docs/hub.md). A reconnection's refusal is retried when its code
// (Wsrpc-Code's, else the status's) is unavailable or deadline_exceeded
// (an attempt that timed out). A normal end, a handler's other errors,
// any other refusal, Close, CloseSend and the call's context end the
// call as without this option; a CloseSend made while the call is reconnecting
// carries over to the new connection (see BidiStreamForClient.CloseSend).
// If the call's context ends, or Close is called, while the call is
// reconnecting, Receive fails with CodeCanceled (CodeDeadlineExceeded
// when the context's deadline passed), as on a live connection, not with
// the lost connection's CodeUnavailable; after Close, it and every later
// Receive and Send say "stream closed by this side", as on a live
// connection (see BidiStreamForClient.Close). MaxAttempts bounds the attempts
// in a row; a reconnection counts as a success, starting the count and
// the backoff again, only once its connection has delivered a message to
// Receive or read a ping or a pong. (The SSE client counts an event it
// dispatches, and heartbeat comments only on a connection that stayed
// open a second or more: see sse.ClientOptions.MaxReconnectionAttempts.)
//
// A reconnection is a new call on a new connection, driven by Receive: a
// server-streaming call sends its request again, and the handler starts
// over. To continue where it stopped, put a resume point in the request
// and set it after each Receive (req.AfterSeq = res.GetSeq()): each
// reconnection sends the *Req the call was made with, encoded anew on the
// goroutine calling Receive before OnReconnect runs, so it carries the
// field as the last Receive left it, with no lock (docs/reliability.md);
// or use SSE with Last-Event-ID. A bidirectional call
// continues with the messages the application sends next. Messages in
// flight when the connection was lost are lost with it, and a Send
// while the call is reconnecting fails with CodeUnavailable: the
// application decides what to send again: BidiStreamForClient.SetResume
// gives the messages each new connection sends first, before any other
// Send.
// onClose and onConnect hooks run for each connection. Client-streaming
// calls never reconnect (their response depends on every message sent).
// SSE clients reconnect on their own (WithSSEClientOptions). Client only.
// Default: no reconnection.
//
// Like every option, it applies to every method of the generated client
// it is given to, bidirectional ones included: a method that needs
// another policy (a chat that must not go on silently into a new
// session) gets a client of its own, made without it.
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
		if p.DialTimeout <= 0 {
			p.DialTimeout = DefaultReconnectDialTimeout
		}
		c.reconnect = &p
	})
}

// redialer reconnects one call.
//
// Concurrency: reconnect and delivered run on the receiving goroutine,
// which alone uses attempts and delay; stop and cancel are safe from any
// (the clientStream stops under its mu; see swap).
type redialer struct {
	c       *caller
	policy  *ReconnectPolicy
	ctx     context.Context // the call's, cancelled by cancel
	cancel  func()          // ends ctx with errCallOver
	req     any             // a server-streaming call's request, sent again
	stopped atomic.Bool
	// resume sends a bidirectional call's first messages on each new
	// connection (BidiStreamForClient.SetResume); set from any goroutine,
	// run on the receiving one.
	resume atomic.Pointer[func(send func(msg any) error) error]

	// Since a connection last delivered a message: the attempts made, and
	// the next wait (0: InitialDelay). A dial that succeeds resets
	// neither, or a server that accepts and closes at once would be
	// retried for ever at InitialDelay's pace.
	attempts int
	delay    time.Duration
}

// redialer returns the call's redialer, or nil without WithReconnect.
func (c *caller) redialer(ctx context.Context, req any) *redialer {
	if c.cfg.reconnect == nil {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	return &redialer{c: c, policy: c.cfg.reconnect, ctx: ctx, cancel: func() { cancel(errCallOver) }, req: req}
}

// errCallOver is the cause with which the call's end (Close, or Receive
// reporting it: endCall) cancels a redialer's context, on which every
// connection it opened lives (their call, see watchCall). It is this
// side's doing, not the caller's context ending: callErr leaves the end
// to what the connection recorded, so that a Close on a reconnection
// says "stream closed by this side", as on the first connection, and
// not "context canceled".
var errCallOver = errors.New("wsrpc: the call is over")

// stop ends reconnection: the application closed the call.
func (r *redialer) stop() { r.stopped.Store(true) }

// delivered records that the connection in place delivered a message
// (or exchanged keepalive frames): a reconnection after its loss starts
// the count and the backoff again.
func (r *redialer) delivered() { r.attempts, r.delay = 0, 0 }

// ended is what Receive returns when the call ended as its connection was
// lost or while it reconnected: its context ended, or Close stopped it.
// The code is canceled, or deadline_exceeded for a deadline, as for a call
// whose context ends while it is connected (see BidiClient.Call), not the
// lost connection's unavailable, which a caller would take for a reason
// to retry. A Close's end says so, as on a live connection (localEnd:
// "stream closed by this side: …"; s.closedErr), not "context canceled"
// of the context it cancelled, unless the call's context ended first.
func (r *redialer) ended(s *clientStream) error {
	if e := s.closedErr.Load(); e != nil {
		return e
	}
	cause := context.Cause(r.ctx)
	if cause == nil || cause == errCallOver {
		// Close stopped the call; its cancel is on the way.
		cause = context.Canceled
	}
	if errors.Is(r.ctx.Err(), context.DeadlineExceeded) {
		return NewError(CodeDeadlineExceeded, cause)
	}
	return NewError(CodeCanceled, cause)
}

// retryable reports whether err, which ended a connection or an attempt,
// is retried: a lost connection or a handler's unavailable, while the
// call goes on.
func (r *redialer) retryable(err error) bool { return !r.ending() && lostConn(err) }

// ending reports whether the application has ended the call: Close, or
// the call's context.
func (r *redialer) ending() bool { return r.stopped.Load() || r.ctx.Err() != nil }

// lostConn reports whether err is an end WithReconnect retries: a lost
// connection, or a handler's CodeUnavailable.
func lostConn(err error) bool {
	// A close code of 4000 and above is a handler's error: of those, only
	// unavailable (4014) is transient, the others are the application's
	// answer. The code of anything else (a refusal, a standard close
	// code, a transport failure) says whether the connection was lost.
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code >= CloseCodeBase {
		return ce.Code == CodeUnavailable.CloseCode()
	}
	return CodeOf(err) == CodeUnavailable
}

// timedOut reports whether an attempt failed on a deadline or timeout.
func timedOut(err error) bool {
	var ne net.Error
	return CodeOf(err) == CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// reconnect replaces s's connection, or returns the error that ends the
// call.
func (r *redialer) reconnect(s *clientStream, lost error) error {
	last := lost
	for r.policy.MaxAttempts < 0 || r.attempts < r.policy.MaxAttempts {
		r.attempts++
		if r.delay == 0 {
			r.delay = r.policy.InitialDelay
		}
		wait := r.delay/2 + rand.N(r.delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return r.ended(s)
		case <-t.C:
		}
		if r.delay *= 2; r.delay > r.policy.MaxDelay {
			r.delay = r.policy.MaxDelay
		}
		conn, err := r.dial()
		if err == nil && !s.swap(conn) {
			return r.ended(s)
		}
		if err != nil && !r.ending() && timedOut(err) {
			// DialTimeout, a handshake interceptor's own bound, or the
			// network's: not the call's deadline, so a server that did
			// not answer in time, which the next attempt may reach.
			err = NewError(CodeUnavailable, err)
		}
		if fn := r.policy.OnReconnect; fn != nil {
			fn(r.attempts, err)
		}
		if err == nil {
			return nil
		}
		last = err
		if r.ending() {
			// The dial failed because the call ended meanwhile.
			return r.ended(s)
		}
		if !r.retryable(err) {
			return err
		}
	}
	return last
}

// dial opens the new connection and, for a server-streaming call, sends
// the request again, and the end-of-stream marker (see sendRequest); for
// a bidirectional one, what SetResume asked for. Both go out before swap
// publishes the connection to Send, so nothing overtakes them.
func (r *redialer) dial() (*wsConn, error) {
	conn, err := r.c.connectWithin(r.ctx, r.policy.DialTimeout)
	if err != nil {
		return nil, err
	}
	if r.req != nil {
		err = sendRequest(conn, r.req)
	} else if resume := r.resume.Load(); resume != nil {
		err = runResume(conn, *resume)
	}
	if err != nil {
		conn.discard(err)
		return nil, err
	}
	return conn, nil
}

// runResume calls SetResume's function fn with conn's Send. fn is the
// application's: if it panics, conn is closed (OnClose runs) before the
// panic goes on up through Receive.
func runResume(conn *wsConn, fn func(send func(msg any) error) error) error {
	defer func() {
		if p := recover(); p != nil {
			conn.discard(Errorf(CodeInternal, "%s: SetResume's function panicked: %v", conn.spec.Procedure, p))
			panic(p)
		}
	}()
	return fn(conn.Send)
}
