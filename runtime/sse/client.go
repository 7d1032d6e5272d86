package sse

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/httpfield"
)

// DefaultReconnectionTime is the reconnection time a client starts with,
// as in browsers and Ktor.
const DefaultReconnectionTime = 3 * time.Second

// DefaultMaxReconnectionDelay bounds the growing wait between
// reconnections that keep failing (see ClientOptions.MaxReconnectionDelay).
const DefaultMaxReconnectionDelay = 30 * time.Second

// DefaultHandshakeTimeout bounds each request's wait for its response
// header (see ClientOptions.HandshakeTimeout), as
// websocket.DefaultHandshakeTimeout bounds a WebSocket handshake.
const DefaultHandshakeTimeout = 30 * time.Second

// minBackoff is the shortest wait before any reconnection, and where the
// growing wait starts when the reconnection time is shorter, as it is
// after a server's "retry: 0": doubling nothing would leave a failing
// server hammered in a tight loop, and waiting nothing lets a server (or
// whatever answers in its place) drive the client to reconnect as fast
// as it can end streams. It bounds any server to 10 reconnections a
// second per session.
const minBackoff = 100 * time.Millisecond

// heldOpen is how long a connection that delivered no event, only
// comments or other blocks after its first, must have stayed open to
// count as a delivery (see MaxReconnectionAttempts): a quiet stream's
// heartbeats that a proxy cuts now and then is served, one ended as it
// opened is not.
var heldOpen = time.Second // a variable for tests

// ClientOptions configures a client Session. A nil *ClientOptions means
// all defaults.
type ClientOptions struct {
	// HTTPClient sends the requests. Default http.DefaultClient. Its
	// Timeout, if any, bounds a whole connection including the stream, so
	// leave it zero for long-lived streams.
	HTTPClient *http.Client

	// Header is added to every request (authorization, cookies…; a Host
	// entry sets the request's host; a Last-Event-ID entry is taken for
	// LastEventID). The client also sets Accept: text/event-stream,
	// Cache-Control: no-cache, when known Last-Event-ID, and
	// Accept-Encoding: gzip where net/http would (an *http.Transport
	// without DisableCompression, or a RoundTripper that wraps one and
	// returns it from an Unwrap() http.RoundTripper method), to decode
	// gzip itself. A field no
	// request can carry fails the session with ErrInvalidHeader before
	// any request is made. An Accept-Encoding here stops net/http from
	// decoding gzip too: the client then decodes a gzip response, and
	// fails one in another coding with ErrContentType.
	Header http.Header

	// LastEventID is the Last-Event-ID sent with the first request.
	// Default "": a Last-Event-ID entry of Header if any, else none.
	// Either is the session's last event ID until the server sets
	// another, or resets it with an empty "id:" (then none is sent).
	LastEventID string

	// ReconnectionTime is how long to wait before reconnecting after the
	// stream drops; a "retry:" field from the server overrides it (WHATWG
	// HTML §9.2.3). Default DefaultReconnectionTime (3 s). The first
	// reconnection in a row waits this long plus a random extra of up to
	// a quarter of it, which §9.2.3 allows ("wait some more"), so that
	// the clients of a restarted server do not all come back at once;
	// see MaxReconnectionDelay for the ones after it. A reconnection
	// time under 100 ms, this option's or a server's ("retry: 0"
	// included), counts as 100 ms: no wait is shorter, so that no server
	// drives more than 10 reconnections a second (browsers reconnect at
	// once after "retry: 0"). Session.ReconnectionTime still reports
	// the value as set.
	ReconnectionTime time.Duration

	// MaxReconnectionDelay bounds the backoff between reconnections in a
	// row (counted as MaxReconnectionAttempts counts them): the second
	// waits about twice the reconnection time (at least 100 ms), each
	// further one twice as long again up to this bound, each wait drawn
	// from [d/2, d] so that the clients of a restarted server do not come
	// back together — WHATWG HTML §9.2.3 allows user agents to "wait some
	// more" with exponential backoff after a failed attempt. A wait is
	// never shorter than the reconnection time, so a server's longer
	// "retry:" still holds, nor than 100 ms, even when this bound is
	// lower. Default DefaultMaxReconnectionDelay (30 s).
	MaxReconnectionDelay time.Duration

	// MaxReconnectionAttempts bounds reconnections in a row, counted
	// since a connection last delivered: dispatched an event (WHATWG
	// HTML §9.2.6, a block with data), or stayed open a second or more
	// with a block after its first (a quiet stream's heartbeats, cut now
	// and then, are served). Comments and blocks of retry or id fields
	// alone on a connection that ends sooner, shown or not, are no
	// delivery: a server can send them without serving anything, and one
	// that answered every request with "retry: 0" and a comment, and
	// ended the stream, drove a client round this loop for ever. 0 means no bound,
	// like a browser; a negative value disables reconnection, like Ktor's
	// default, so the stream ends when the connection does. Beware:
	// wsrpc.ReconnectPolicy.MaxAttempts, which bounds a WebSocket call's
	// reconnections, has the opposite convention: 0 there means a default
	// bound (wsrpc.DefaultReconnectAttempts), and a negative value none.
	MaxReconnectionAttempts int

	// IdleTimeout, when positive, is how long the client waits for bytes
	// from the server before it takes the connection for lost: for the
	// response to a request, and then between reads of the stream, where
	// heartbeat comments count, shown or not. A path that went dark (a
	// proxy or NAT that dropped the connection without a FIN or RST)
	// looks to TCP like a quiet server for many minutes; with this set,
	// the client closes such a connection and reconnects as after a
	// dropped stream (reconnection time, backoff, Last-Event-ID,
	// MaxReconnectionAttempts), with an error wrapping ErrIdleTimeout for
	// the attempt (OnReconnect) or the session. It needs a server that
	// writes something when it has no events — a heartbeat comment, as
	// WHATWG HTML §9.2.7 advises for proxies; this package's Stream does
	// only when StreamOptions.Heartbeat is set — and must exceed that
	// interval, say 2–3× it, or a quiet stream is cut off. Over HTTP/2
	// the timeout resets only the stream, and the transport keeps the
	// dead connection for the next request: set the transport's health
	// check as well (http.HTTP2Config SendPingTimeout and PingTimeout,
	// RFC 9113 §6.7 PING), which closes it. Time a consumer spends
	// between calls of Next does not count. Cost: one timer per
	// connection; a read, and a call of Next, note the time (no
	// allocation, no system call). Default 0 (or negative): no limit, as
	// in browsers.
	IdleTimeout time.Duration

	// HandshakeTimeout bounds each request's wait for the response
	// header: the TCP, TLS and HTTP exchange up to it, not the stream
	// after it. A server (or a path) that accepts connections and never
	// answers would otherwise hold a request whose context has no
	// deadline for ever. When it runs out, the attempt fails with an
	// error wrapping os.ErrDeadlineExceeded ("sse: no response header
	// within 30s"): Connect returns it for the first request, and a
	// reconnection takes it for a network failure, retried within
	// MaxReconnectionAttempts. Cost: a timer per request, stopped at the
	// header. Default DefaultHandshakeTimeout (30 s); a negative value
	// means no bound, as in browsers.
	HandshakeTimeout time.Duration

	// ShowCommentEvents yields comment blocks as events with Type "", and
	// keeps the comment lines of every block in Event.Comment. Default
	// false: comments are hidden, as in browsers; nothing is kept of them
	// (see ParserOptions.ShowCommentEvents).
	ShowCommentEvents bool

	// ShowRetryEvents yields blocks that only set the reconnection time as
	// events with Type "". Default false.
	ShowRetryEvents bool

	// MaxEventSize bounds one line and one event in bytes (see
	// ParserOptions; hidden comments do not count). One larger ends the
	// session with an error wrapping ErrEventTooLarge, without
	// reconnecting: the server would send it again. Default
	// DefaultMaxEventSize (1 MiB).
	MaxEventSize int

	// RetryRefusal, if set, reports whether a reconnection refused with e
	// (a status other than 200 and 204) is retried like a network failure,
	// within MaxReconnectionAttempts; a first request's refusal never is.
	// It lets an application whose server says more than the status (a
	// code of its own in a header, as wsrpc's Wsrpc-Code) decide: a 503
	// that says the client may not come back ends the session, a 500 that
	// says try again does not. Called once per refusal, on the goroutine
	// calling Next. Default nil: RetriedStatus(e.StatusCode), 502, 503
	// and 504.
	RetryRefusal func(e *StatusError) bool

	// OnReconnect, if set, is called after each reconnection attempt (not
	// the first connection), on the goroutine calling Next: attempt counts
	// from 1 as MaxReconnectionAttempts does, err is nil when the attempt
	// opened a stream, io.EOF when the server answered 204 (the stream is
	// over), and the attempt's error otherwise, which never matches io.EOF
	// with errors.Is (see Next).
	OnReconnect func(attempt int, err error)
}

// Session is the client side of an event stream (the EventSource of
// WHATWG HTML §9.2): it connects, parses, and reconnects with
// Last-Event-ID when the stream drops.
//
// The stream ends when the server answers 204 No Content (Next returns
// io.EOF), when it answers another status than 200, or a content type
// other than text/event-stream or a content coding other than gzip (a
// *StatusError or ErrContentType, without reconnecting; but see
// StatusError for a reconnection answered 502, 503 or 504, and
// ClientOptions.RetryRefusal), when
// reconnection is disabled and the connection ends (io.EOF, the network
// error, or ErrIdleTimeout when nothing arrived for IdleTimeout), when
// MaxReconnectionAttempts is exhausted (ErrReconnectLimit), or when the
// context is done or Close is called.
//
// Concurrency: Next, Events and Reconnect are for one goroutine at a time
// (Reconnect from the one calling Next, or ranging over Events); Close,
// LastEventID and ReconnectionTime may be called from any goroutine.
// With IdleTimeout, a timer per connection cancels the connection from its
// own goroutine when nothing arrived for that long; it touches no other
// state. So does the HandshakeTimeout timer of each request, until its
// response header.
type Session struct {
	url    string
	opts   ClientOptions
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	body      io.ReadCloser
	parser    *Parser
	err       error     // sticky terminal error
	headerErr error     // the problem with opts.Header, found once by NewSession
	tries     int       // reconnections since a connection delivered (see MaxReconnectionAttempts)
	gotEvent  bool      // the open connection has dispatched an event: a delivery (see MaxReconnectionAttempts)
	connAt    time.Time // when the open connection's stream began
	opened    bool      // a stream has been open: later requests are reconnections
	askGzip   bool      // send Accept-Encoding: gzip, as net/http would, and decode it here

	// servedBefore says whether the open connection had delivered
	// before the event Next returned last, for Reconnect.
	servedBefore bool

	idle    *idleWatch // the open connection's, with IdleTimeout; else nil
	idleErr error      // the error of a connection idle for IdleTimeout
	// endConn ends the context of the open connection's request, which
	// a HandshakeTimeout adds; nil without one.
	endConn  context.CancelCauseFunc
	noHeader error // the error of a request unanswered for HandshakeTimeout

	mu          sync.Mutex
	lastEventID string
	reconnect   time.Duration
}

// Connect opens an event stream at url and returns once the server has
// answered, or HandshakeTimeout has passed without an answer. A failure
// to connect is returned at once; use Events for a
// client that retries the first connection too. A server that answers 204
// No Content (nothing to stream, do not reconnect) gives io.EOF.
//
// Close the returned Session when done with it: until Close, the
// session's end (Next returned an error) or the end of ctx, it holds its
// connection open, and the server goes on sending into it.
func Connect(ctx context.Context, url string, opts *ClientOptions) (*Session, error) {
	s := NewSession(ctx, url, opts)
	if err := s.connect(); err != nil {
		s.cancel()
		if errors.Is(err, errNoContent) {
			return nil, io.EOF
		}
		return nil, notEOF(err)
	}
	return s, nil
}

// Events connects to url and yields its events, reconnecting as
// configured. A terminal error is yielded once, with a zero Event, as the
// last pair; a stream that ends cleanly yields no error. Breaking out of
// the loop closes the connection.
func Events(ctx context.Context, url string, opts *ClientOptions) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s := NewSession(ctx, url, opts)
		defer s.Close()
		s.Events()(yield)
	}
}

// NewSession returns a session for the event stream at url that has not
// connected yet: its first Next connects, and a first connection that
// fails as a network failure does is retried as a reconnection, as Events
// does (Connect returns that failure instead). It is Events for a
// consumer that needs the Session too, to call Reconnect, LastEventID or
// Close. Close it when done with it.
func NewSession(ctx context.Context, url string, opts *ClientOptions) *Session {
	s := &Session{url: url}
	if opts != nil {
		s.opts = *opts
	}
	s.client = s.opts.HTTPClient
	if s.client == nil {
		s.client = http.DefaultClient
	}
	s.reconnect = s.opts.ReconnectionTime
	if s.reconnect <= 0 {
		s.reconnect = DefaultReconnectionTime
	}
	if s.opts.MaxReconnectionDelay <= 0 {
		s.opts.MaxReconnectionDelay = DefaultMaxReconnectionDelay
	}
	if s.opts.HandshakeTimeout == 0 {
		s.opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if s.opts.HandshakeTimeout > 0 {
		s.noHeader = fmt.Errorf("sse: no response header within %v: %w", s.opts.HandshakeTimeout, os.ErrDeadlineExceeded)
	}
	s.lastEventID = s.opts.LastEventID
	if s.lastEventID == "" {
		// A Last-Event-ID entry of Header is the first request's, as
		// the option is: were it sent as a plain header, it would go
		// on being sent after the server reset the id with an empty
		// "id:" field, and the server would replay events the
		// consumer has had.
		for name, values := range s.opts.Header {
			if strings.EqualFold(name, "Last-Event-ID") && len(values) > 0 {
				s.lastEventID = values[0]
				break
			}
		}
	}
	s.headerErr = httpfield.Check(s.opts.Header, ErrInvalidHeader)
	if s.opts.IdleTimeout > 0 {
		s.idleErr = fmt.Errorf("%w: no data for %v", ErrIdleTimeout, s.opts.IdleTimeout)
	}
	s.askGzip = netHTTPAsksGzip(s.client.Transport)
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s
}

// LastEventID returns the last event ID string: what the session sends as
// Last-Event-ID when it reconnects.
func (s *Session) LastEventID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastEventID
}

// ReconnectionTime returns the current reconnection time: the option, or
// the last "retry:" the server sent.
func (s *Session) ReconnectionTime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnect
}

// Close ends the session and its connection. Next then returns the
// context's error. It is idempotent and returns nil.
func (s *Session) Close() error {
	s.cancel()
	return nil
}

// Events yields the session's events as Next returns them; see Events
// (the function) for how errors are yielded.
func (s *Session) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := s.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// Next returns the next event, connecting or reconnecting as needed. It
// returns io.EOF when the stream has ended cleanly and a terminal error
// otherwise, which never matches io.EOF with errors.Is, whatever its
// cause (ErrReconnectLimit after a server that kept closing the stream,
// say); after either it keeps returning the same.
func (s *Session) Next() (Event, error) {
	if s.err == nil && s.ctx.Err() != nil {
		// Closed (or its context done) with events still buffered: those
		// are not returned.
		s.finish(s.ctx.Err())
	}
	for s.err == nil {
		if s.parser == nil {
			if err := s.reconnectWait(); err != nil {
				s.finish(err)
				break
			}
			err := s.connect()
			if s.tries > 0 && s.opts.OnReconnect != nil {
				// io.EOF says 204 and nothing else: a connection closed
				// unanswered (a *url.Error wrapping io.EOF) must not
				// match it, as for Next (see notEOF).
				report := notEOF(err)
				if errors.Is(err, errNoContent) {
					report = io.EOF
				}
				s.opts.OnReconnect(s.tries, report)
			}
			if err != nil {
				retry := s.retryable(err) // once: RetryRefusal is the user's
				if retry && s.canRetry() {
					continue
				}
				s.finish(s.giveUp(err, retry))
				break
			}
		}
		if s.idle != nil {
			s.idle.waiting()
		}
		ev, err := s.parser.Next()
		if s.idle != nil && err == nil {
			s.idle.holding()
		}
		s.mu.Lock()
		s.lastEventID = s.parser.LastEventID()
		s.reconnect = s.parser.ReconnectionTime() // "retry: 0" too
		s.mu.Unlock()
		if err == nil {
			s.servedBefore = s.served(1)
			if ev.Type != "" {
				s.gotEvent = true
			}
			return ev, nil
		}
		served := s.served(0)
		if s.idle != nil && s.idle.timedOut() && !errors.Is(err, ErrEventTooLarge) {
			// The read failed because the timer cancelled the request:
			// say why, rather than "context canceled".
			err = s.idleErr
		}
		if err != io.EOF && err != s.idleErr && !errors.Is(err, ErrEventTooLarge) {
			err = fmt.Errorf("sse: read stream: %w", err)
		}
		s.drop(served, err)
	}
	return Event{}, s.err
}

// drop ends the open connection, which ended with err: the next Next
// reconnects, unless err is final (an event too large), the context has
// ended or no attempt is left, when the session ends with err. served
// says whether the connection delivered.
func (s *Session) drop(served bool, err error) {
	if served {
		// The connection delivered before it dropped — an event, or
		// heartbeats for a while — so the stream is served and this
		// is a first reconnection again, not one more in a failing
		// row (see MaxReconnectionAttempts). Not the opening ": open"
		// or "retry:" block alone, which says only that the server
		// answered, nor comments on a connection ended at once,
		// which cost a server nothing: a server that opens streams
		// and ends them, whatever it writes but events, is
		// reconnected to with backoff and within the bound, not for
		// ever.
		s.tries = 0
	}
	s.closeBody()
	if errors.Is(err, ErrEventTooLarge) || s.ctx.Err() != nil || !s.canRetry() {
		s.finish(s.giveUp(err, s.retryable(err)))
	}
}

// served reports whether the open connection has delivered (see
// MaxReconnectionAttempts), leaving out its last n blocks.
func (s *Session) served(n int) bool {
	return s.gotEvent || s.parser.blocks-n > 1 && time.Since(s.connAt) >= heldOpen
}

// Reconnect ends the open connection; the next Next reconnects as after
// a lost connection: the reconnection wait first, then a request with
// Last-Event-ID, counted toward MaxReconnectionAttempts unless the
// connection delivered before the event Next returned last. That event
// does not count: it is what a consumer reconnects over (a server's
// report of a transient failure, say), and a server that sends nothing
// else is not serving the stream. Events the connection had sent after
// it, unread, are dropped. With reconnection disabled (a negative
// MaxReconnectionAttempts), or its attempts exhausted, the session ends
// as when the server ends the stream: Next returns io.EOF, or
// ErrReconnectLimit. Without an open connection (before the first, while
// reconnecting, after the end) it does nothing. Call it from the
// goroutine that calls Next, between calls (see Concurrency on Session).
func (s *Session) Reconnect() {
	if s.parser == nil || s.err != nil {
		return
	}
	s.drop(s.servedBefore, io.EOF)
}

// canRetry reports whether another reconnection is allowed, counting it.
func (s *Session) canRetry() bool {
	if s.opts.MaxReconnectionAttempts < 0 {
		return false
	}
	if s.opts.MaxReconnectionAttempts > 0 && s.tries >= s.opts.MaxReconnectionAttempts {
		return false
	}
	s.tries++
	return true
}

// giveUp turns the error that ended the last connection into the
// session's terminal error; retry is what s.retryable said of err.
func (s *Session) giveUp(err error, retry bool) error {
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	if !retry {
		return err
	}
	if s.opts.MaxReconnectionAttempts < 0 {
		return err // io.EOF for a stream that ended cleanly
	}
	return fmt.Errorf("%w after %d attempts: %w", ErrReconnectLimit, s.tries, err)
}

// retryable reports whether err is a dropped stream or network error
// (reconnect) rather than a refusal by the server (fail).
func retryable(err error) bool {
	var se *StatusError
	return !errors.As(err, &se) && !errors.Is(err, ErrContentType) &&
		!errors.Is(err, ErrEventTooLarge) && !errors.Is(err, errNoContent) &&
		!errors.Is(err, ErrInvalidID) && !errors.Is(err, ErrBadURL) &&
		!errors.Is(err, ErrInvalidHeader)
}

// retryable reports whether the session reconnects after err: what the
// function retryable says, and also a reconnection's refusal with 502,
// 503 or 504 (RFC 9110 §15.6.3-5), or those RetryRefusal picks. A server
// that is restarting or shutting down, or a proxy in front of one,
// answers so to a client that comes back too early, and the stream it
// followed is not over; failing the connection as WHATWG HTML §9.2.3
// does would end it for good. The first request's refusal stays final:
// nothing says that URL ever served a stream.
func (s *Session) retryable(err error) bool {
	if retryable(err) {
		return true
	}
	var se *StatusError
	if !s.opened || !errors.As(err, &se) {
		return false
	}
	if s.opts.RetryRefusal != nil {
		return s.opts.RetryRefusal(se)
	}
	return RetriedStatus(se.StatusCode)
}

// RetriedStatus reports whether a Session retries a reconnection refused with
// status: 502, 503 or 504 (see StatusError; a first connection so refused is
// not retried), unless ClientOptions.RetryRefusal decides instead; for a
// transport of one's own that must tell those refusals from the rest, as
// IsEventStream and NewStatusError serve one.
func RetriedStatus(status int) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

var errNoContent = errors.New("sse: 204 no content")

func (s *Session) finish(err error) {
	if errors.Is(err, errNoContent) {
		err = io.EOF
	}
	s.err = notEOF(err)
	s.closeBody()
	s.cancel()
}

// notEOF returns err, except that a failure whose chain holds io.EOF (a
// server that accepted the connection and closed it unanswered, wrapped
// in a *url.Error, or ErrReconnectLimit wrapping a stream's end) is
// wrapped so that it no longer matches io.EOF: the session's bare io.EOF
// is its clean end, and callers test for it with errors.Is as often as
// with ==. Every other match of the chain (errors.Is and errors.As) is
// kept, and so is the message.
func notEOF(err error) error {
	if err == io.EOF || !errors.Is(err, io.EOF) {
		return err
	}
	return failure{err}
}

// failure is an error that does not match io.EOF though its cause does;
// see notEOF. It has no Unwrap, which would hand errors.Is the io.EOF in
// the chain, but forwards every other Is and As to the cause.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }

func (f failure) Is(target error) bool { return target != io.EOF && errors.Is(f.err, target) }

func (f failure) As(target any) bool { return errors.As(f.err, target) }

func (s *Session) closeBody() {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	if s.idle != nil {
		s.idle.stop()
		s.idle = nil
	}
	if s.endConn != nil {
		s.endConn(nil)
		s.endConn = nil
	}
	s.parser = nil
}

// reconnectWait waits before a reconnection (not before the first
// connection): the reconnection time, or the backoff after it, reckoned
// from a reconnection time of at least minBackoff, so that no wait is
// shorter whatever "retry:" says. WHATWG HTML §9.2.3 lets a client wait
// longer than the reconnection time ("optionally, wait some more").
func (s *Session) reconnectWait() error {
	if s.tries == 0 {
		return nil
	}
	t := time.NewTimer(s.backoff(max(s.ReconnectionTime(), minBackoff)))
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return s.ctx.Err()
	case <-t.C:
		if reconnectTimerFired != nil {
			reconnectTimerFired(s)
		}
		// A Close as the timer fires may find select taking the timer:
		// no attempt starts after Close, nor is one reported to
		// OnReconnect as "context canceled".
		return s.ctx.Err()
	}
}

// reconnectTimerFired, if set, is called when reconnectWait's timer has
// fired, before it checks the context: a test's Close there is one that
// came as the timer fired.
var reconnectTimerFired func(*Session)

// backoff returns the wait before reconnection number s.tries in a row,
// given the reconnection time: for the first, that time plus a random
// extra of up to a quarter of it; then a delay d that starts at twice
// max(reconnect, minBackoff) and doubles up to MaxReconnectionDelay,
// drawn from [d/2, d], never below reconnect (see
// ClientOptions.MaxReconnectionDelay).
func (s *Session) backoff(reconnect time.Duration) time.Duration {
	if s.tries <= 1 {
		// WHATWG HTML §9.2.3: wait the reconnection time, then
		// "optionally, wait some more". Without the extra, the clients
		// of a restarted server all came back at the same instant (2,000
		// within 0.6 s) and failed together again. It never shortens a
		// server's "retry:", and cannot overflow.
		return reconnect + min(rand.N(reconnect/4+1), math.MaxInt64-reconnect)
	}
	limit := s.opts.MaxReconnectionDelay
	d := max(reconnect, minBackoff)
	for i := 1; i < s.tries && d < limit; i++ {
		if d > limit/2 {
			d = limit // and no overflow with a limit near MaxInt64
		} else {
			d *= 2
		}
	}
	d = min(d, limit)
	return max(reconnect, d/2+rand.N(d/2+1))
}

// connect sends one request (WHATWG HTML §9.2.3 "reestablish the
// connection") and, on success, sets up the parser.
func (s *Session) connect() (err error) {
	ctx := s.ctx
	var w *idleWatch
	if s.opts.IdleTimeout > 0 {
		w = startIdleWatch(s.ctx, s.opts.IdleTimeout, s.idleErr)
		defer func() {
			if err == nil {
				s.idle = w
				return
			}
			if w.timedOut() {
				err = s.idleErr // no answer: the request failed with "context canceled"
			}
			w.stop()
		}()
		ctx = w.ctx
	}
	// A timer that cancels the request unless its header comes first;
	// stopped then, so that it leaves the stream alone, which lives on
	// the same context until closeBody ends it.
	var header *time.Timer
	if s.opts.HandshakeTimeout > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		header = time.AfterFunc(s.opts.HandshakeTimeout, func() { cancel(s.noHeader) })
		defer func() {
			header.Stop()
			if err == nil {
				s.endConn = cancel
				return
			}
			cancel(nil)
		}()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	// Hostname, not Host: a port alone ("http://:8080/") is no host, and
	// net/http would dial this machine with it; EventSource throws.
	if sc := req.URL.Scheme; (sc != "http" && sc != "https") || req.URL.Hostname() == "" {
		return fmt.Errorf("%w %q: want http:// or https:// and a host", ErrBadURL, s.url)
	}
	if s.headerErr != nil {
		return s.headerErr
	}
	for name, values := range s.opts.Header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	// net/http sends req.Host, not a Host header, as the request's host.
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
		req.Header.Del("Host")
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.askGzip && req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == "" {
		// Asked for by the client, a gzip body comes coded and gunzip
		// decodes it; asked for by net/http, net/http decodes it with a
		// multistream gzip.Reader, which held an event that ended a
		// member until the server wrote again (see gunzip).
		req.Header.Set("Accept-Encoding", "gzip")
	}
	lastID := s.LastEventID()
	req.Header.Del("Last-Event-ID") // Header's entry is the initial lastID
	if lastID != "" {
		// net/http would refuse the request on every attempt.
		if why := headerValueProblem(lastID); why != "" {
			return fmt.Errorf("sse: reconnect: %w %q as Last-Event-ID: %s", ErrInvalidID, lastID, why)
		}
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := s.client.Do(req)
	if header != nil && !header.Stop() {
		// It fired: the request failed on it, or its header came just
		// as it did, too late, with the stream's context cancelled.
		if err == nil {
			resp.Body.Close()
		}
		return s.noHeader
	}
	if err != nil {
		return fmt.Errorf("sse: connect: %w", err)
	}
	if resp.StatusCode == http.StatusNoContent {
		resp.Body.Close()
		return errNoContent
	}
	if resp.StatusCode != http.StatusOK {
		return NewStatusError(resp) // which decodes a gzip body
	}
	// Only the essence is compared (see IsEventStream).
	ct := resp.Header.Get("Content-Type")
	if !IsEventStream(ct) {
		resp.Body.Close()
		return fmt.Errorf("%w %q", ErrContentType, ct)
	}
	gz, err := gzipCoded(resp.Header)
	if err != nil {
		resp.Body.Close()
		return err
	}
	s.body = resp.Body
	s.opened = true
	var body io.Reader = resp.Body
	if w != nil {
		w.body = resp.Body
		w.holding() // until Next reads: a consumer's pause is not the server's silence
		body = w
	}
	if gz {
		// The decoder reads through w, not w through the decoder: the
		// idle watch counts bytes as they come from the server, coded,
		// so a quiet stream's heartbeat counts as soon as its bytes
		// arrive, whether or not they decode to output yet (a gzip
		// header, a flush's empty block). The parser, after the
		// decoder, bounds the decoded bytes by MaxEventSize, so a
		// small body that inflates to much is refused as too large.
		body = &gunzip{src: body}
	}
	s.gotEvent, s.servedBefore = false, false
	s.connAt = time.Now()
	s.parser = NewParser(body, &ParserOptions{
		MaxEventSize:      s.opts.MaxEventSize,
		LastEventID:       lastID,
		ShowCommentEvents: s.opts.ShowCommentEvents,
		ShowRetryEvents:   s.opts.ShowRetryEvents,
		ReconnectionTime:  s.ReconnectionTime(),
	})
	return nil
}

// netHTTPAsksGzip reports whether a request sent with rt (nil:
// http.DefaultTransport) would get net/http's transparent gzip: rt is an
// *http.Transport without DisableCompression, or a RoundTripper that
// wraps one and says so with an Unwrap() http.RoundTripper method, as
// the typed wsrpc client's transport does. Such a transport asks for
// gzip when the request does not, and decodes the answer with a
// multistream gzip.Reader, which holds an event that ends a gzip member
// until the server writes again (see gunzip): the session asks itself
// instead. A wrapper that does not say what it wraps is taken as it is,
// for its own (its request goes out as built).
func netHTTPAsksGzip(rt http.RoundTripper) bool {
	if rt == nil {
		rt = http.DefaultTransport
	}
	for range 32 { // wrappers are few; a cycle must not spin
		switch t := rt.(type) {
		case *http.Transport:
			return !t.DisableCompression
		case interface{ Unwrap() http.RoundTripper }:
			if rt = t.Unwrap(); rt == nil {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// gzipCoded reports whether a response's body is gzip, and fails one in
// a coding the client cannot decode. net/http decodes gzip itself, and
// removes Content-Encoding, unless the request named its own
// Accept-Encoding (a Header entry, an interceptor copying a browser's):
// then the body comes as the server coded it, which a gzip middleware
// does for text/event-stream, and its bytes read as event lines would be
// garbage, or worse, events. Codings are case-insensitive (RFC 9110
// §8.4.1); "x-gzip" is gzip (§8.4.1.3).
func gzipCoded(h http.Header) (bool, error) {
	switch ce := strings.TrimSpace(strings.Join(h.Values("Content-Encoding"), ", ")); {
	case ce == "" || strings.EqualFold(ce, "identity"):
		return false, nil
	case strings.EqualFold(ce, "gzip") || strings.EqualFold(ce, "x-gzip"):
		return true, nil
	default:
		return false, fmt.Errorf("%w: response Content-Encoding %q: the client decodes only gzip", ErrContentType, ce)
	}
}

// gunzip decodes a gzip body (RFC 9110 §8.4.1.3). It creates its
// gzip.Reader on the first Read, since gzip.NewReader reads the header at
// once: a server that sends the response header and then nothing must not
// hold Connect, nor decide its outcome; the first Read is in Next, with
// the idle watch running. A decoding error (a stream cut mid-member, a
// bad checksum) is a read error as a network one is: the connection is
// lost and the session reconnects. It reads the members of a body of
// several (RFC 1952 §2.2; a proxy may code each flush as one) one at a
// time: a multistream gzip.Reader that meets a member's end with its last
// bytes reads the next member's header before it returns them, and so
// held an event until the server wrote again.
//
// Concurrency: none; only the parser, on the session's goroutine, reads it.
type gunzip struct {
	src  io.Reader
	br   *bufio.Reader
	zr   *gzip.Reader
	next bool  // the member ended: the next Read starts the next one
	err  error // sticky header error
}

func (g *gunzip) Read(p []byte) (int, error) {
	for {
		if g.err != nil {
			return 0, g.err
		}
		switch {
		case g.zr == nil:
			g.br = bufio.NewReader(g.src)
			zr, err := gzip.NewReader(g.br)
			if err != nil {
				g.err = err
				return 0, err
			}
			zr.Multistream(false)
			g.zr = zr
		case g.next:
			if err := g.zr.Reset(g.br); err != nil {
				g.err = err // io.EOF: no member after the last, a clean end
				return 0, err
			}
			g.zr.Multistream(false)
			g.next = false
		}
		n, err := g.zr.Read(p)
		if err == io.EOF {
			g.next, err = true, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// statusBodyWait bounds the wait for a refusal's body (StatusError.Body):
// a reason comes with the header or just after it, and a server that
// stalls its body must not hold up a failure the status already decides.
const statusBodyWait = time.Second

// IsEventStream reports whether contentType, a Content-Type header, names
// an event stream as this package's client takes one: only the essence is
// compared, so a charset parameter is ignored, since the stream is always
// UTF-8 (WHATWG HTML §9.2.5), and so is a malformed parameter, which
// browsers skip (WHATWG MIME Sniffing §4.4 "parse a MIME type"). The
// essence is what precedes the first ";", trimmed of HTTP white space,
// case-insensitively: mime.ParseMediaType returns no media type at all
// for a parameter given twice, which browsers take (the first wins).
func IsEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.Trim(mt, " \t"), "text/event-stream")
}

// NewStatusError builds the error for resp, a refusal (any answer but a 200
// event stream), as the client does: it reads up to 1 KiB of the body for
// Body, decoded when its Content-Encoding is gzip (net/http decodes only
// what it asked for itself, and the client asks itself: see
// ClientOptions.Header), for at most 1 s, unless the refusal is itself an
// event stream (whose body may not end), and closes it. For a transport
// of one's own that must read a refusal the client will not see.
// Refusals only: nothing here runs per event.
func NewStatusError(resp *http.Response) *StatusError {
	se := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header}
	if !IsEventStream(resp.Header.Get("Content-Type")) {
		stop := time.AfterFunc(statusBodyWait, func() { resp.Body.Close() })
		var body io.Reader = resp.Body
		if gz, _ := gzipCoded(resp.Header); gz {
			// The reason, not its gzip bytes.
			body = &gunzip{src: resp.Body}
		}
		// What came before an error (the wait, a reset) is still the
		// server's reason.
		if body, _ := io.ReadAll(io.LimitReader(body, maxStatusBody)); len(body) > 0 {
			se.Body = body
		}
		stop.Stop()
	}
	resp.Body.Close()
	return se
}

// idleWatch ends a connection on which no bytes arrive for a while
// (ClientOptions.IdleTimeout) by cancelling its request's context, with
// the session's idle error as the cause. Only time the client spends
// waiting counts: from the request to its response, then while Next
// reads; time a consumer spends between two calls of Next does not, since
// bytes that came meanwhile are still unread.
//
// It adds no allocation and no system call per event: a read stores the
// time (the monotonic clock, read without one) in an atomic; the timer
// is not reset per read but, when it fires, checks that time and sets
// itself for the rest of the wait.
//
// Concurrency: Read, waiting, holding and stop are called by the
// session's goroutine; check runs on the timer's goroutine. They share
// last (atomic) and, under mu, the timer.
type idleWatch struct {
	body    io.Reader // the response body, once the server has answered
	timeout time.Duration
	start   time.Time    // the monotonic origin of last
	last    atomic.Int64 // when the client last got bytes or began to wait for them (since start), or notWaiting
	ctx     context.Context
	cancel  context.CancelCauseFunc
	cause   error

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// notWaiting is idleWatch.last while the consumer holds an event.
const notWaiting = -1

// startIdleWatch returns a watch whose context, a child of parent, is
// cancelled with cause once the client has waited timeout for bytes.
func startIdleWatch(parent context.Context, timeout time.Duration, cause error) *idleWatch {
	w := &idleWatch{timeout: timeout, start: time.Now(), cause: cause}
	w.ctx, w.cancel = context.WithCancelCause(parent)
	w.mu.Lock()
	w.timer = time.AfterFunc(timeout, w.check)
	w.mu.Unlock()
	return w
}

// Read reads the response body, noting when bytes arrive.
func (w *idleWatch) Read(p []byte) (int, error) {
	n, err := w.body.Read(p)
	if n > 0 {
		w.last.Store(int64(time.Since(w.start)))
	}
	return n, err
}

// waiting notes that the client starts waiting for bytes now.
func (w *idleWatch) waiting() { w.last.Store(int64(time.Since(w.start))) }

// holding notes that the client is not waiting for bytes.
func (w *idleWatch) holding() { w.last.Store(notWaiting) }

// check, run when the timer fires, cancels the connection if the client
// has waited timeout for bytes, and otherwise sets the timer to fire
// when it will have.
func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.ctx.Err() != nil {
		// Done, or the session closed (by Close, from any goroutine,
		// which leaves stop to a Next that may never come): no re-arming.
		return
	}
	wait := w.timeout
	if last := w.last.Load(); last != notWaiting {
		waited := time.Since(w.start) - time.Duration(last)
		if waited >= w.timeout {
			w.cancel(w.cause)
			return
		}
		wait -= waited
	}
	w.timer.Reset(wait)
}

// timedOut reports whether check cancelled the connection.
func (w *idleWatch) timedOut() bool { return context.Cause(w.ctx) == w.cause }

// stop ends the watch and the connection's context; the timer does not
// fire again.
func (w *idleWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// TypedEvent is an Event whose data has been decoded into a T.
type TypedEvent[T any] struct {
	ID       string
	Type     string
	Data     T
	Retry    time.Duration
	HasRetry bool // as in Event: a "retry: 0" is told apart from none
	Comment  string
}

// Decode turns a sequence of events into typed events with decode, the
// analogue of Ktor's deserialize: it is called for every dispatched event
// (it sees the type, to pick what to decode into) and not for comment or
// retry events (Type ""), which pass through with a zero Data.
//
// A decode failure is yielded as an error wrapping ErrDecode, with the
// event's ID and Type; iteration continues if the consumer keeps going.
// Errors from events are passed through.
func Decode[T any](events iter.Seq2[Event, error], decode func(Event) (T, error)) iter.Seq2[TypedEvent[T], error] {
	return func(yield func(TypedEvent[T], error) bool) {
		for ev, err := range events {
			if err != nil {
				if !yield(TypedEvent[T]{}, err) {
					return
				}
				continue
			}
			te := TypedEvent[T]{ID: ev.ID, Type: ev.Type, Retry: ev.Retry, HasRetry: ev.HasRetry, Comment: ev.Comment}
			if ev.Type != "" {
				te.Data, err = decode(ev)
				if err != nil {
					err = fmt.Errorf("%w %q (id %q): %w", ErrDecode, ev.Type, ev.ID, err)
				}
			}
			if !yield(te, err) {
				return
			}
		}
	}
}
