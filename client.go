package wsrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc/internal/httpfield"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// caller holds what every client of one method shares.
//
// Concurrency: immutable after construction; any number of calls at once.
type caller struct {
	spec       Spec
	httpClient *http.Client
	url        string
	cfg        *config
	dial       websocket.DialOptions
	setup      error
}

func newCaller(httpClient *http.Client, url string, spec Spec, opts []Option) *caller {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	spec.IsClient = true
	c := &caller{spec: spec, httpClient: httpClient, url: url, cfg: newConfig(opts)}
	c.dial = c.cfg.dial
	if c.dial.HTTPClient == nil {
		c.dial.HTTPClient = httpClient
	}
	c.dial.Extensions, c.setup = c.cfg.extensions(c.dial.Extensions)
	offered := c.cfg.offered()
	c.dial.Subprotocols = make([]string, len(offered))
	for i, k := range offered {
		c.dial.Subprotocols[i] = codec.Subprotocol(k)
	}
	return c
}

// connect dials the WebSocket through the handshake interceptors.
func (c *caller) connect(ctx context.Context) (*wsConn, error) {
	return c.connectWithin(ctx, 0)
}

// connectWithin is connect with the WebSocket handshake bounded by
// timeout too (if positive), as well as by ctx; the connection it opens
// lives on ctx alone.
func (c *caller) connectWithin(ctx context.Context, timeout time.Duration) (*wsConn, error) {
	if c.setup != nil {
		return nil, NewError(CodeInternal, c.setup)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "%w", err)
	}
	req.Header = c.dial.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	// A reconnection's ctx is the call's: it sends what is left.
	setTimeoutHeader(ctx, req.Header)
	// The connection the call runs on, and what its own handshake
	// negotiated: an interceptor that calls next again may pass another
	// Handshake than the first, so the one the chain started with need
	// not describe the latest connection.
	var ws *websocket.Conn
	var wsCodec codec.Codec
	var wsReqHeader, wsRespHeader http.Header
	dial := func(ctx context.Context, hs *Handshake) (context.Context, error) {
		opts := c.dial
		opts.Header = hs.Request.Header
		dctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			dctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		conn, resp, err := websocket.Dial(dctx, hs.Request.URL.String(), &opts)
		if err != nil {
			if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
				body, _ := io.ReadAll(resp.Body)
				return ctx, fromHTTPResponse(resp, body)
			}
			if resp != nil && selectsUnoffered(resp.Header, opts.Subprotocols) {
				// RFC 6455 §4.1: the client must fail the connection, and
				// Dial did (TCP closed, no close frame: the connection was
				// never established, §7.1.7). A misconfigured server, like
				// one that selects no offered codec (below): internal, not
				// the lost connection's unavailable, which WithReconnect
				// retries.
				return ctx, NewError(CodeInternal, err)
			}
			return ctx, wireError(err)
		}
		hs.ResponseHeader = resp.Header
		// This connection's codec, not one an earlier next left in hs.
		hs.Codec = nil
		for _, k := range c.cfg.offered() {
			if codec.Subprotocol(k) == conn.Subprotocol() {
				hs.Codec = k
			}
		}
		if hs.Codec == nil {
			conn.CloseNow()
			return ctx, Errorf(CodeInternal, "server selected subprotocol %q, which is no offered codec's", conn.Subprotocol())
		}
		if ws != nil {
			// An interceptor called next again after a success (dialling
			// anew, say): the call runs on the latest connection, and the
			// earlier one, which nothing else would ever close, goes.
			ws.CloseNow()
		}
		ws, wsCodec, wsReqHeader, wsRespHeader = conn, hs.Codec, opts.Header, resp.Header
		return ctx, nil
	}
	hs := &Handshake{Spec: c.spec, Request: req}
	sctx, err := chainHandshake(c.cfg.interceptors, dial)(ctx, hs)
	if err != nil {
		if ws != nil {
			ws.CloseNow()
		}
		return nil, asError(err)
	}
	if ws == nil {
		return nil, Errorf(CodeInternal, "a handshake interceptor returned without calling next")
	}
	if sctx == nil {
		sctx = ctx
	}
	remote := ""
	if a := ws.RemoteAddr(); a != nil {
		remote = a.String()
	}
	conn := newWSConn(sctx, c.spec, wsCodec, ws, wsReqHeader, wsRespHeader, c.cfg, remote)
	// The watch starts once the onConnect hooks have returned (deferred,
	// so that a hook's panic does not leave the connection unwatched): a
	// context that had ended already — the caller's cancel as the call
	// connected, a context an interceptor returned and cancelled — runs
	// the onClose hooks on the watch's goroutine at once, which ran them
	// before, or while, the onConnect hooks ran, and a hook pair keyed by
	// connection (a map of live calls) kept an entry for good. As the SSE
	// call's watch starts (callSSE). A context that ends meanwhile is
	// seen when the watch starts, as a context.AfterFunc on a done
	// context runs at once.
	func() {
		defer conn.watchCall(sctx)
		for _, fn := range c.cfg.onConnect {
			fn(conn.ctx, conn.info)
		}
	}()
	return conn, nil
}

// maxTimeoutMs is the largest value TimeoutHeader carries (10 digits,
// about 115 days); a longer time left is not sent at all: a shorter bound
// would end the call on the server before the client gives up on it.
const maxTimeoutMs = 9_999_999_999

// setTimeoutHeader sets TimeoutHeader on h, a handshake request of a call
// bounded by ctx: the time left before ctx's deadline, in milliseconds
// rounded up, so that the server, which counts from the request's
// arrival, never ends the call before the client gives up on it (as
// grpc-go rounds grpc-timeout up). Without a deadline h is left as it
// is. One that has passed takes the header away (a reconnection's copy
// of the first request's value, say; 0 would be refused as malformed):
// the dial fails on ctx with deadline_exceeded, as it did before there
// was a header.
func setTimeoutHeader(ctx context.Context, h http.Header) {
	d, ok := ctx.Deadline()
	if !ok {
		return
	}
	left := time.Until(d)
	// Compared before rounding up: a deadline near the end of
	// time.Duration's range (context.WithTimeout(ctx, math.MaxInt64) for
	// "no timeout") overflowed left+999,999ns, and the server refused
	// the negative value that came out as a malformed header.
	if left <= 0 || left > maxTimeoutMs*time.Millisecond {
		h.Del(TimeoutHeader)
		return
	}
	ms := int64((left + time.Millisecond - 1) / time.Millisecond)
	h.Set(TimeoutHeader, strconv.FormatInt(ms, 10))
}

// setInnerTimeoutHeader is setTimeoutHeader for the innermost
// HandshakeFunc of an SSE request, whose context ctx is the one the event
// stream is then read with (see HandshakeFunc): a deadline an
// interceptor derived for next (context.WithTimeout, returning next's
// context) bounds the stream, and must reach the server too, as the
// caller's own does. before is the header's TimeoutHeader values as set
// before the interceptors ran: a value an interceptor set or deleted
// stands (see TimeoutHeader), only an untouched one is replaced.
func setInnerTimeoutHeader(ctx context.Context, h http.Header, before []string) {
	if !slices.Equal(h.Values(TimeoutHeader), before) {
		return
	}
	h.Del(TimeoutHeader)
	setTimeoutHeader(ctx, h)
}

// selectsUnoffered reports whether a 101 answer's Sec-WebSocket-Protocol
// selects a subprotocol that is not among offered, or more than one: the
// answer websocket.Dial refuses by RFC 6455 §4.1.
func selectsUnoffered(h http.Header, offered []string) bool {
	ps := h.Values("Sec-WebSocket-Protocol")
	if len(ps) == 0 {
		return false
	}
	return len(ps) > 1 || !slices.Contains(offered, strings.TrimSpace(ps[0]))
}

// clientStream is the common part of the client-side streams.
//
// Concurrency: cur is swapped by the receiving goroutine when it
// reconnects (see WithReconnect) and read by any. mu orders that swap
// with Close (stopping the redialer) and with CloseSend (setting
// halfClosed), so that a reconnection never keeps a connection Close
// missed and the end-of-stream marker reaches the connection in place;
// eosPending is guarded by mu. halfClosed is atomic so that receive and
// Close read it without mu; it is set under sendMu's write lock, and each
// Send holds sendMu's read lock from its check of halfClosed until its
// message is written, so that a Send racing CloseSend either is written
// before the end-of-stream marker or fails, never follows the marker.
// Both return before sendMu once the call's context or Close has ended
// the call (see ended), so that neither waits for a stalled Send then.
// On a call that reconnects, closedErr and final are set under mu, by
// close and by receive's end of the call (endCall) respectively, so that
// whichever comes first decides how the call ended; both are atomic for
// ended and redialer.ended, which read them without mu.
type clientStream struct {
	cur        atomic.Pointer[wsConn]
	re         *redialer // nil unless the call reconnects
	mu         sync.Mutex
	sendMu     sync.RWMutex // Send: read lock; setting halfClosed: write lock
	halfClosed atomic.Bool  // CloseSend or CloseAndReceive was called
	eosPending bool         // halfClosed, and no connection took the marker yet
	// closedErr is what a call that reconnects reports once Close or
	// CloseWith ended it (localEnd's error for that close), where the
	// connection in place may not take the close: lost, and the call
	// reconnecting. nil until then, and on other calls.
	closedErr atomic.Pointer[Error]
	// final is how receive ended a call that reconnects (endCall): what
	// Send reports from then on, rather than how the connection in place,
	// maybe a lost one, ended. nil until then, and on other calls.
	final atomic.Pointer[error]
}

func newClientStream(conn *wsConn, re *redialer) *clientStream {
	s := &clientStream{re: re}
	s.cur.Store(conn)
	return s
}

// conn returns the current connection.
func (s *clientStream) conn() *wsConn { return s.cur.Load() }

// receive reads into m; the end of the stream runs the onClose hooks and
// releases the connection, so that a call read to its end needs no Close.
// With reconnection on, an end that WithReconnect retries opens a new
// connection and reading goes on there. Once the call has ended, every
// later receive returns how it ended (io.EOF only for a clean end).
func (s *clientStream) receive(m any) error {
	for {
		conn := s.conn()
		if err := conn.recvErr; err != nil {
			// Ended and released already: no hooks, release or retry
			// again.
			return err
		}
		err := conn.Receive(m)
		if err == nil {
			if s.re != nil && s.re.attempts != 0 {
				// Only a connection that delivers a message ends a row
				// of attempts (see ReconnectPolicy.MaxAttempts).
				s.re.delivered()
			}
			return nil
		}
		if isCodecErr(err) {
			// A message this side cannot decode ends the call: reading
			// on would skip what the server meant, and the server is
			// told why (invalid_argument's close code, the codec's
			// error as the reason) instead of waiting for more.
			conn.abort(err)
		} else {
			conn.ended(err)
		}
		conn.recvErr = err
		conn.runOnClose()
		// This connection is done whether the call ends or goes on with
		// a new one.
		conn.release()
		if s.re == nil {
			return err
		}
		// A call that has sent its end-of-stream marker is not retried:
		// the server may have answered all it had to. One whose marker
		// found the connection lost is (swap sends it again).
		s.mu.Lock()
		retry := !s.halfClosed.Load() || s.eosPending
		s.mu.Unlock()
		if s.re.attempts != 0 && conn.ws.ControlSeen() {
			// A quiet connection that exchanged pings or pongs was alive:
			// a success too, as an SSE heartbeat is (see MaxAttempts).
			s.re.delivered()
		}
		if !retry || !lostConn(err) {
			return s.endCall(err)
		}
		if s.re.ending() {
			// Close or the call's context ended the call as its
			// connection was lost: reported as during the wait that
			// would have followed. Unless that Close reached this
			// connection and found the server's end (a 4014 of its own
			// that came first: peerEnd), which is the call's end.
			if !conn.closedLocally() {
				err = s.re.ended(s)
			}
			conn.recvErr = s.endCall(err)
			return conn.recvErr
		}
		if rerr := s.re.reconnect(s, err); rerr != nil {
			// conn is still the call's: the later receives report
			// what ended the call, not the connection's loss.
			conn.recvErr = s.endCall(rerr)
			return rerr
		}
	}
}

// endCall ends a call that reconnects with err, receive's last answer,
// and returns it. Send reports err from then on (ended), as it does on a
// call that does not reconnect, where the connection's end is the
// call's: here the connection in place may be a lost one, whose
// unavailable would read as a reason to retry a call that ended with its
// context, a Close or a final refusal. A later Close leaves err alone.
func (s *clientStream) endCall(err error) error {
	s.mu.Lock()
	s.final.Store(&err)
	s.mu.Unlock()
	s.re.cancel()
	return err
}

// swap puts conn in place of the lost connection, or discards it if Close
// has stopped the call meanwhile; it reports whether conn is in place. A
// CloseSend made while the call was reconnecting carries over: conn gets
// the end-of-stream marker at once.
func (s *clientStream) swap(conn *wsConn) bool {
	s.mu.Lock()
	if s.re.stopped.Load() {
		s.mu.Unlock()
		conn.discard(Errorf(CodeCanceled, "%s: Close ended the call as it reconnected", conn.spec.Procedure))
		return false
	}
	s.cur.Store(conn)
	half := s.halfClosed.Load()
	s.mu.Unlock()
	if half {
		s.sentEOS(conn, conn.closeSend())
	}
	return true
}

// closeSend records the half-close and sends the end-of-stream marker. If
// the connection was lost, a call that reconnects carries the half-close
// over to the new connection (swap) and this returns nil: the marker is
// pending, not lost.
func (s *clientStream) closeSend() error {
	if err := s.ended(); err != nil {
		return err
	}
	// Waits for the Sends that found the call open to write their
	// messages: the marker goes after them (see send).
	s.sendMu.Lock()
	s.mu.Lock()
	if s.halfClosed.Swap(true) {
		s.mu.Unlock()
		s.sendMu.Unlock()
		return nil
	}
	s.eosPending = true
	conn := s.conn()
	s.mu.Unlock()
	s.sendMu.Unlock()
	err := conn.closeSend()
	s.sentEOS(conn, err)
	if err != nil && s.re != nil && s.re.retryable(err) {
		return nil
	}
	return err
}

// sentEOS records that conn took the end-of-stream marker, if err is nil
// and conn is still the call's.
func (s *clientStream) sentEOS(conn *wsConn, err error) {
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.conn() == conn {
		s.eosPending = false
	}
	s.mu.Unlock()
}

// send sends msg on the call's connection, or fails after the half-close
// (made by the method named halfClose): the server's Receive has returned
// io.EOF for good, so a message sent now would be dropped unread, or
// fail the call (a message after the end-of-stream marker). The read lock
// of sendMu, held until msg is written, keeps a concurrent closeSend from
// setting halfClosed, and so from writing its marker, in between. Cost:
// two uncontended atomic adds per Send (RLock, RUnlock); Sends do not
// wait for one another here (the runtime serialises their writes).
func (s *clientStream) send(msg any, halfClose string) error {
	if s.halfClosed.Load() {
		// Set for good: the answer under the lock would be the same.
		return Errorf(CodeFailedPrecondition, "%s: send after %s", s.conn().spec.Procedure, halfClose)
	}
	if err := s.ended(); err != nil {
		return err
	}
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.halfClosed.Load() {
		return Errorf(CodeFailedPrecondition, "%s: send after %s", s.conn().spec.Procedure, halfClose)
	}
	return s.conn().Send(msg)
}

// ended is how the call ended if its context is done or this side's
// Close ended it (what Send and CloseSend report then, with nothing
// written), else nil. send and closeSend check it before sendMu: a Send
// stalled on a peer that stopped reading holds the read lock until the
// abort's close times out (up to the close timeout), and a waiting
// closeSend would hold up every later Send too (an RWMutex queues new
// readers behind a waiting writer). A cancel that comes while they
// already wait for sendMu is not seen here: they return once the stalled
// Send does. On a call that reconnects, the end receive reported (final)
// is the answer once there is one, and before it a Close that no
// connection took (made while the call reconnected) is closedErr, as
// Receive reports it (redialer.ended). Cost: ctx.Err, as conn.Send
// checks anyway; on a call that reconnects, two atomic loads too.
func (s *clientStream) ended() error {
	conn := s.conn()
	if s.re != nil {
		if p := s.final.Load(); p != nil {
			return *p
		}
		if e := s.closedErr.Load(); e != nil && !conn.closedLocally() {
			return e
		}
	}
	err := conn.ctx.Err()
	if err == nil || (conn.callErr(nil) == nil && !conn.closedLocally()) {
		// Open, or ended some other way (a lost connection that may be
		// reconnecting): under sendMu as before.
		return nil
	}
	return conn.writeErr(err)
}

func isCodecErr(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.code == CodeInvalidArgument && e.err != nil && errors.Is(e.err, codec.ErrUnmarshal)
}

func (s *clientStream) close(code Code, reason string) error {
	if s.re != nil {
		// Under mu: a reconnection either put its connection in place
		// before this (and conn below is that one) or sees stopped and
		// discards it.
		s.mu.Lock()
		conn := s.conn()
		if s.final.Load() == nil && s.closedErr.Load() == nil && s.re.ctx.Err() == nil && conn.callErr(nil) == nil {
			// The call goes on, maybe reconnecting, when no connection
			// takes the close (closeLocal below finds the lost one
			// closed): this is its end then, as localEnd would put it,
			// for the Receive in progress and every later Receive and
			// Send (redialer.ended, ended), not the canceled context
			// nor the lost connection's unavailable. A connection that
			// takes the close answers for itself. The call's context
			// ending first is its end instead, as on a live connection.
			var sent error
			if code != 0 {
				sent = &Error{code: code.onWire(), msg: reason}
			}
			s.closedErr.Store(closedHere(conn.spec.Procedure, sent))
		}
		s.re.stop()
		s.mu.Unlock()
	}
	conn := s.conn()
	var err error
	switch cerr := conn.callErr(nil); {
	case cerr != nil:
		// The call's context ended first, and with it the call, though
		// watchCall's close may not have begun yet: the server learns
		// that code, not a normal closure (its Receive would say io.EOF).
		err = conn.closeLocal(cerr)
	case code != 0:
		err = conn.closeLocal(&Error{code: code.onWire(), msg: reason})
	default:
		err = conn.closeLocal(nil)
	}
	conn.detach()
	conn.runOnClose()
	if s.re != nil {
		// Ends a reconnection's wait or dial at once.
		s.re.cancel()
	}
	return err
}

// BidiClient calls a bidirectional-streaming method over WebSocket.
//
// Concurrency: safe for concurrent use; each Call is its own connection.
type BidiClient[Req, Res any] struct{ c *caller }

// NewBidiClient returns a client for the method procedure served at url,
// the method's full URL, not the server's base URL: JoinPath(base,
// procedure) for a method on its default path, as generated clients do
// (JoinPath keeps the base URL's query; http(s) and ws(s) schemes both
// work). The same holds for the other constructors' url.
//
// httpClient supplies an *http.Transport's dialer, TLS config and proxy,
// and the client's Jar; a RoundTripper that wraps the transport is not
// used (see websocket.DialOptions.HTTPClient). nil means
// http.DefaultClient; an HTTPClient given in WithDialOptions takes its
// place. The same holds for NewClientStreamClient and
// NewServerStreamClient.
func NewBidiClient[Req, Res any](httpClient *http.Client, url, procedure string, opts ...Option) *BidiClient[Req, Res] {
	return &BidiClient[Req, Res]{newCaller(httpClient, url, Spec{Procedure: procedure, StreamType: StreamTypeBidi, Transport: TransportWebSocket}, opts)}
}

// Call opens a connection. It returns once the server accepted, or with
// the refusal as an *Error; a server that accepts the TCP connection and
// never answers the handshake fails it with CodeUnavailable after the
// runtime's 30 s (websocket.DefaultHandshakeTimeout) when ctx has no
// deadline. ctx bounds the whole call (as returned by the handshake
// interceptors: see HandshakeFunc): cancelling it sends the close frame
// at once, with canceled's close code (4001; 4004 when its deadline
// passed), whether or not a Receive or Send is in progress, so that the
// server's Receive reports the cancellation. Receive and Send then fail
// with CodeCanceled (or CodeDeadlineExceeded): at once when they start
// after, and one in progress when the server has answered the close, or
// once the close timeout has passed without an answer
// (websocket.DialOptions.CloseTimeout through WithDialOptions, 5 s by
// default: a server that has stopped, or a path gone dark, costs all of
// it; see docs/reliability.md "Ending a call early"). A Send the server
// has stopped reading for that long is cut off with the connection,
// which the server then sees lost. The onClose hooks run at the cancel,
// and the call needs no Close (one made after returns at once).
func (c *BidiClient[Req, Res]) Call(ctx context.Context) (*BidiStreamForClient[Req, Res], error) {
	conn, err := c.c.connect(ctx)
	if err != nil {
		return nil, err
	}
	return &BidiStreamForClient[Req, Res]{newClientStream(conn, c.c.redialer(ctx, nil))}, nil
}

// BidiStreamForClient is the client side of a bidirectional-streaming
// call.
//
// The server's end of the call (the handler's error and its code, or a
// normal closure) reaches the client only through Receive: control
// frames, the close among them, are read by whoever reads the connection
// (RFC 6455 §5.5), as with any full-duplex WebSocket. A client that only
// sends must keep a Receive pending on another goroutine. Otherwise
// nothing answers the server's close; once the server gives up waiting
// for the answer (its close timeout) it resets the connection, and Send
// and Receive report CodeUnavailable, a lost connection, instead of the
// handler's error (and WithReconnect may redial). A client-streaming call
// needs no such reader: its client reads the answer by itself (see
// ClientStreamForClient.Send).
//
// Concurrency: one goroutine at a time may Receive; any number may Send;
// CloseSend and Close from any goroutine.
type BidiStreamForClient[Req, Res any] struct{ *clientStream }

// Send marshals msg and sends it as one WebSocket message. After
// CloseSend it fails with CodeFailedPrecondition and sends nothing: the
// server's Receive has returned io.EOF for good. A Send concurrent with
// CloseSend is either sent before the end-of-stream marker or fails so.
// After Close or CloseWith it fails with CodeCanceled. Send reports the
// handler's error only if a Receive reads the server's close (see
// BidiStreamForClient); once a Receive has reported the call's end, Send
// returns that end again (io.EOF when the handler returned nil).
func (s *BidiStreamForClient[Req, Res]) Send(msg *Req) error { return s.send(msg, "CloseSend") }

// CloseSend tells the server the client has finished sending (its Receive
// returns io.EOF); the client may go on receiving, and Send fails from now
// on. A call that has sent CloseSend no longer reconnects. With
// WithReconnect, a CloseSend that finds the connection lost (Receive
// waiting out the backoff, say) is carried over: it returns nil, and the
// new connection gets the end-of-stream marker as soon as it opens,
// before OnReconnect runs. Sends in progress on other goroutines are sent
// first (CloseSend waits for them to be written). Calls after the first
// do nothing.
func (s *BidiStreamForClient[Req, Res]) CloseSend() error { return s.closeSend() }

// SetResume sets what the call sends first on each connection
// WithReconnect opens for it: a join, a hello, a resume point, the
// messages the server has not acknowledged. fn runs on the goroutine
// calling Receive once the new connection is open, and its messages are
// written in order before the connection takes any other Send and before
// OnReconnect runs, so that no other goroutine's Send reaches the new
// session first. Like a server-streaming call's request, fn may read
// what Receive last left with no lock. If a message cannot be sent, the
// attempt fails as a dial would (a lost connection is retried; a message
// the codec cannot encode ends the call). The first connection is the
// caller's: send its first messages after Call returns, before handing
// the stream to other goroutines. Set it before the first Receive; nil
// removes it. Without WithReconnect fn is never called.
func (s *BidiStreamForClient[Req, Res]) SetResume(fn func() []*Req) {
	if s.re == nil {
		return
	}
	if fn == nil {
		s.re.resume.Store(nil)
		return
	}
	resume := func(send func(msg any) error) error {
		for _, m := range fn() {
			if err := send(m); err != nil {
				return err
			}
		}
		return nil
	}
	s.re.resume.Store(&resume)
}

// Receive returns the next message from the server; io.EOF when the
// handler returned nil, an *Error when it failed. Once the call has ended
// every later Receive returns the same again.
func (s *BidiStreamForClient[Req, Res]) Receive() (*Res, error) {
	m := new(Res)
	if err := s.receive(m); err != nil {
		return nil, err
	}
	return m, nil
}

// All yields the server's messages until the stream ends; a failure is
// yielded once, last.
func (s *BidiStreamForClient[Req, Res]) All() iter.Seq2[*Res, error] { return messages(s.Receive) }

// RequestHeader returns the header the handshake was sent with.
func (s *BidiStreamForClient[Req, Res]) RequestHeader() http.Header { return s.conn().reqHeader }

// ResponseHeader returns the header of the server's 101 response.
func (s *BidiStreamForClient[Req, Res]) ResponseHeader() http.Header { return s.conn().respHeader }

// Codec returns the negotiated codec.
func (s *BidiStreamForClient[Req, Res]) Codec() codec.Codec { return s.conn().codec }

// Close closes the connection normally (1000), running the closing
// handshake: it returns once the server has answered the close frame, or
// once the close timeout (websocket.DialOptions.CloseTimeout, 5 s by
// default) has passed without an answer, as from a server that has
// stopped; a Receive in progress returns then too. If Close ended the
// call, that Receive and every later Receive or Send fail with
// CodeCanceled, saying this side closed the stream ("stream closed by
// this side (normal closure)"), not with io.EOF, which would read as the
// handler's clean end. That holds during a WithReconnect reconnection
// too, when no connection is there to close. Only a close of the
// server's own that came first is reported as the server's end, by that
// Receive and every later Receive and Send alike; the onClose hooks may
// still report this side's close then, recorded first as the two
// crossed. A call whose Receive has reported its end (io.EOF, or the
// error that ended it), or whose context has ended, has released its
// connection already, and Close returns at once; Close is for ending one
// early. Safe to call more than once.
func (s *BidiStreamForClient[Req, Res]) Close() error { return s.close(0, "") }

// CloseWith closes the connection with code's close code (4000+code)
// and reason, running the closing handshake as Close does. Code 0
// closes normally (1000), as Close does, and sends no reason: it is not
// Code(0).CloseCode(), 4002. As after Close, a later Receive or Send,
// and one in progress, fails with CodeCanceled, its message saying this
// side closed the stream and with what ("stream closed by this side:
// aborted: user left"); the handler's Receive gets code and reason.
func (s *BidiStreamForClient[Req, Res]) CloseWith(code Code, reason string) error {
	return s.close(code, reason)
}

// ClientStreamClient calls a client-streaming method over WebSocket.
//
// Concurrency: safe for concurrent use; each Call is its own connection.
type ClientStreamClient[Req, Res any] struct{ c *caller }

// NewClientStreamClient returns a client for the method procedure served
// at url (see NewBidiClient for url and httpClient; nil means
// http.DefaultClient).
func NewClientStreamClient[Req, Res any](httpClient *http.Client, url, procedure string, opts ...Option) *ClientStreamClient[Req, Res] {
	return &ClientStreamClient[Req, Res]{newCaller(httpClient, url, Spec{Procedure: procedure, StreamType: StreamTypeClient, Transport: TransportWebSocket}, opts)}
}

// Call opens a connection (see BidiClient.Call).
func (c *ClientStreamClient[Req, Res]) Call(ctx context.Context) (*ClientStreamForClient[Req, Res], error) {
	conn, err := c.c.connect(ctx)
	if err != nil {
		return nil, err
	}
	conn.answered = make(chan struct{})
	go conn.readAnswer()
	return &ClientStreamForClient[Req, Res]{newClientStream(conn, nil)}, nil
}

// ClientStreamForClient is the client side of a client-streaming call.
//
// Concurrency: any number of goroutines may Send; CloseAndReceive once,
// after the last Send; Close from any goroutine.
type ClientStreamForClient[Req, Res any] struct{ *clientStream }

// Send marshals msg and sends it as one WebSocket message. After
// CloseAndReceive it fails with CodeFailedPrecondition and sends nothing
// (a Send concurrent with CloseAndReceive is sent before the
// end-of-stream marker, or fails so); after a Close that ended the call,
// with CodeCanceled.
// The server's answer is read as soon as it comes, so once the server has
// ended the call Send fails: with the handler's error as an *Error if it
// failed, or with io.EOF if it answered before reading everything (call
// CloseAndReceive for the response).
func (s *ClientStreamForClient[Req, Res]) Send(msg *Req) error {
	return s.send(msg, "CloseAndReceive")
}

// CloseAndReceive tells the server the client has finished sending and
// returns its response, or its error as an *Error. Either way the call is
// over and its connection released: no Close is needed.
func (s *ClientStreamForClient[Req, Res]) CloseAndReceive() (*Res, error) {
	conn := s.conn()
	defer conn.release()
	defer conn.runOnClose()
	// A failed end-of-stream marker needs no handling of its own: the
	// connection has ended, and how is what the reader saw. A server that
	// answered early has its response there.
	_ = s.closeSend()
	<-conn.answered
	if conn.closedLocally() {
		// A Close from another goroutine ended the call while this
		// waited, before the server had ended it: whatever the reader saw
		// of the end is this side's doing — the server's echo of the
		// close (RFC 6455 §5.5.1; after CloseAndReceive Close sends 1000,
		// which reads as a normal closure), or the connection lost as
		// both sides closed (1006, which is no outage to retry). Only a
		// response, or a close code of the server's own, that arrived
		// first is the server's.
		if !conn.gotAnswer && conn.serverEnd(conn.answerErr) {
			return nil, conn.callErr(conn.answerErr)
		}
		if !conn.gotAnswer {
			return nil, conn.callErr(Errorf(CodeCanceled, "%s: Close ended the call before the server answered", conn.spec.Procedure))
		}
	} else if err := conn.answerErr; err != nil {
		switch {
		case errors.Is(err, io.EOF):
			err = Errorf(CodeInternal, "%s: the server closed without a response", conn.spec.Procedure)
		case !conn.serverEnd(err):
			// The connection was cut after the call's context ended (a
			// Send blocked behind a server that stopped reading, cut by
			// the close timeout): the call ended by the caller's cancel.
			err = conn.callErr(err)
		}
		return nil, err
	}
	m := new(Res)
	pm, err := asMessage(m)
	if err != nil {
		return nil, err
	}
	if err := conn.decode(conn.answer, pm); err != nil {
		return nil, err
	}
	return m, nil
}

// RequestHeader returns the header the handshake was sent with.
func (s *ClientStreamForClient[Req, Res]) RequestHeader() http.Header { return s.conn().reqHeader }

// ResponseHeader returns the header of the server's 101 response.
func (s *ClientStreamForClient[Req, Res]) ResponseHeader() http.Header { return s.conn().respHeader }

// Codec returns the negotiated codec.
func (s *ClientStreamForClient[Req, Res]) Codec() codec.Codec { return s.conn().codec }

// Close abandons the call. Before CloseAndReceive the connection closes
// with canceled's close code (4001), so that the server's Receive returns
// a CodeCanceled *Error, not the io.EOF of a finished upload: a handler
// that reads to io.EOF and then commits never commits part of the input.
// A CloseAndReceive waiting on another goroutine then returns a
// CodeCanceled *Error, unless the response (or the server's end of the
// call) arrived first. Safe to call more than once.
func (s *ClientStreamForClient[Req, Res]) Close() error {
	var err error
	if !s.halfClosed.Load() {
		err = s.close(CodeCanceled, "the client abandoned the call")
	} else {
		err = s.close(0, "")
	}
	// The connection is closed and its context cancelled: the reader
	// returns at once.
	<-s.conn().answered
	return err
}

// ServerStreamClient calls a server-streaming method, over WebSocket
// (NewServerStreamClient) or SSE (NewSSEClient); the stream it returns is
// the same for both.
//
// Concurrency: safe for concurrent use; each Call is its own connection.
type ServerStreamClient[Req, Res any] struct{ c *caller }

// NewServerStreamClient returns a client for the server-streaming method
// procedure served over WebSocket at url (see NewBidiClient for url and
// httpClient; nil means http.DefaultClient).
func NewServerStreamClient[Req, Res any](httpClient *http.Client, url, procedure string, opts ...Option) *ServerStreamClient[Req, Res] {
	return &ServerStreamClient[Req, Res]{newCaller(httpClient, url, Spec{Procedure: procedure, StreamType: StreamTypeServer, Transport: TransportWebSocket}, opts)}
}

// NewSSEClient returns a client for the server-streaming method procedure
// served as Server-Sent Events at url (the method's full URL, as for
// NewBidiClient). httpClient sends its requests, through its Transport,
// Jar and CheckRedirect; nil means http.DefaultClient, and an HTTPClient
// given in WithSSEClientOptions takes its place. The request travels in
// the query (EncodeSSERequest); the client reconnects with Last-Event-ID as
// configured by WithSSEClientOptions and stops at the server's
// "wsrpc.end" or "wsrpc.error" event. Only "wsrpc.end" is the call's
// clean end (io.EOF): a stream that ends without it — answered 204 No
// Content, the first request or a reconnection, or closed with
// reconnection disabled — was cut short, and the call ends with
// unavailable, as a WebSocket call cut so does. A reconnection's refusal
// is retried within those options' limits by the rule WithReconnect
// follows: when its code, Wsrpc-Code's or else the status's, is
// unavailable or deadline_exceeded (a 503 from a server under
// Tracker.Shutdown, a 502 or 504 from a proxy during a restart, any
// status with Wsrpc-Code unavailable); any other refusal (a 503 whose
// Wsrpc-Code names another code among them), and every refusal of the
// first request, ends the call with the server's code and message. A
// handler's unavailable (a "wsrpc.error" event with
// that code, as a handler returns for a hub topic closed under it) is
// retried too: the client reconnects with Last-Event-ID, as WithReconnect
// does a WebSocket call on 4014, within those options' limits, and the
// call ends with that error when reconnection is disabled or no attempt
// is left; the handler's other codes end the call.
//
// Each connection, the first and each reconnection, runs the handshake
// interceptors (WithInterceptors) with its own Handshake, whose Request
// is that attempt's (Last-Event-ID included), so that an interceptor sets
// its headers per connection (a refreshed token); an error an
// interceptor returns for a reconnection ends the attempt as a server's
// refusal with that error's code would (unavailable is retried, others
// end the call with the interceptor's error). As for a WebSocket call
// that reconnects (WithReconnect), the OnConnect and OnClose hooks run
// for each connection: a lost connection's OnClose (1006, unavailable)
// before the next attempt's interceptors, the new one's OnConnect once
// its stream is open.
func NewSSEClient[Req, Res any](httpClient *http.Client, url, procedure string, opts ...Option) *ServerStreamClient[Req, Res] {
	return &ServerStreamClient[Req, Res]{newCaller(httpClient, url, Spec{Procedure: procedure, StreamType: StreamTypeServer, Transport: TransportSSE}, opts)}
}

// Call sends req and returns the stream of responses once the server
// accepted, or the refusal as an *Error.
func (c *ServerStreamClient[Req, Res]) Call(ctx context.Context, req *Req) (*ServerStreamForClient[Res], error) {
	if c.c.spec.Transport == TransportSSE {
		return c.callSSE(ctx, req)
	}
	conn, err := c.c.connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := sendRequest(conn, req); err != nil {
		cs := newClientStream(conn, nil)
		_ = cs.close(CodeOf(err), err.Error())
		return nil, err
	}
	return &ServerStreamForClient[Res]{cs: newClientStream(conn, c.c.redialer(ctx, req))}, nil
}

// sendRequest sends a server-streaming call's request and then the
// end-of-stream marker, on the call's first connection and on each
// reconnection. A server-streaming handler takes the marker and reads on
// (see watchPeer); a bidirectional one, as a server built from a newer
// schema may run for the method, reads io.EOF after the request instead
// of waiting for more, so the call ends when its handler is done. Two
// writes, once per connection: the runtime has no batch of messages.
func sendRequest(conn *wsConn, req any) error {
	if err := conn.Send(req); err != nil {
		return err
	}
	return conn.closeSend()
}

// capture is the transport of a typed SSE call's session: every request
// the session makes goes through it. It records the server's answers for
// ResponseHeader, decides which of a reconnection's refusals the session
// retries (retryRefusal, the session's RetryRefusal), and runs each
// reconnection through the call's handshake interceptors and hooks (see
// sseClientStream.redial), as the first request ran through them in
// callSSE. Refusals are the sse client's *sse.StatusError, with the
// status and body the server sent, whose Header and Body (bounded:
// sse.NewStatusError) refusal reads; but see roundTrip.
//
// Redirects and cookies are left to client, which capture builds with
// the call's client's CheckRedirect and Jar; the session's own client
// follows no redirect and has no Jar. A reconnection's redirects are
// thus followed inside the interceptors' next, each hop with the headers
// they set, the Jar's cookies are added and stored once, and the session
// reads the final answer, never a 3xx it would follow with the header
// runtime/sse built (see redial).
//
// Concurrency: RoundTrip runs on the goroutine that calls sse.Connect
// (callSSE's), then on the one calling the session's Next (receive's),
// where runtime/sse reconnects: one at a time, in that order. They alone
// use opened, st and refused, as does refusal; st is set before the
// stream is returned, so before any Next. mu guards resp.
type capture struct {
	base   http.RoundTripper
	client *http.Client // base through roundTrip, with the call's client's CheckRedirect and Jar
	opened bool         // a stream was open: later requests are reconnections
	// st runs reconnections through the call's interceptors and hooks;
	// nil until callSSE has built it.
	st *sseClientStream
	// refused is the error with which an interceptor refused the latest
	// reconnection (nil when it did not): what the call ends with if
	// the session gives up on that refusal.
	refused *Error
	mu      sync.Mutex
	resp    *http.Response
}

// newCapture returns the capture of a call whose client is hc, and the
// client the session is to use: hc, with capture as its transport, no
// Jar and no redirects followed (capture's client does both).
func newCapture(hc http.Client) (*capture, *http.Client) {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	t := &capture{base: base}
	t.client = &http.Client{Transport: hops{t}, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar}
	hc.Transport = t
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return t, &hc
}

// Unwrap returns the transport capture sends on, so that the session
// sees net/http's transparent gzip behind it and asks for gzip itself,
// decoding each gzip member as it ends: left to base, a multistream
// gzip.Reader held each event that ended a member until the server wrote
// again (TestSSEGzipMemberPerEvent; see runtime/sse's ClientOptions.Header).
func (t *capture) Unwrap() http.RoundTripper { return t.base }

// hops is the transport of capture's client: each request, a redirect's
// hops included, sent and recorded by roundTrip.
type hops struct{ t *capture }

func (h hops) RoundTrip(r *http.Request) (*http.Response, error) { return h.t.roundTrip(r) }

func (t *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.opened && t.st != nil {
		// A reconnection.
		return t.st.redial(r)
	}
	return t.do(r)
}

// do sends r with capture's client, following redirects, and returns the
// final answer. Its error is the cause alone: the session's client wraps
// it in a *url.Error of its own.
func (t *capture) do(r *http.Request) (*http.Response, error) {
	// The client adds the Jar's cookies to the request's header, which a
	// RoundTrip must not change.
	resp, err := t.client.Do(r.Clone(r.Context()))
	if err != nil {
		// A CheckRedirect error comes with the last response, whose body
		// is closed.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return nil, err
	}
	return resp, nil
}

// roundTrip sends r on the base transport, and records and translates
// the answer (see capture).
func (t *capture) roundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusOK {
		t.opened = true
	}
	t.mu.Lock()
	t.resp = resp
	t.mu.Unlock()
	if t.opened && resp.StatusCode >= http.StatusBadRequest && !sse.RetriedStatus(resp.StatusCode) && refusalRetried(resp.Header, resp.StatusCode) {
		// A reconnection's refusal that retryRefusal retries though its
		// status alone would not be (a 500 with Wsrpc-Code unavailable,
		// a 505 without a code): as a transport error carrying the
		// refusal's *Error, so that the sse client's OnReconnect, which
		// knows no Wsrpc-Code, sees the code it is retried for, as
		// before RetryRefusal existed, and the call ends with
		// unavailable, as a lost connection, when the attempts run out.
		// Refusals whose status says it, and those not retried, reach
		// the session as they came: its StatusError, which OnReconnect
		// and refusal read, has the real status and body.
		return nil, fromHTTPResponse(resp, sse.NewStatusError(resp).Body)
	}
	return resp, nil
}

// retryRefusal is the session's sse.ClientOptions.RetryRefusal: a
// reconnection's refusal is retried as WithReconnect retries a WebSocket
// one (lostConn, timedOut), when its code, Wsrpc-Code's or else the
// status's, is unavailable or deadline_exceeded (an attempt that timed
// out), where the session alone would retry 502, 503 and 504 whatever
// Wsrpc-Code says, and no other status. An interceptor's refusal
// (refused, answered by refusalResponse) is retried by the same rule on
// its code: its deadline_exceeded is an attempt that timed out, as a
// WebSocket interceptor's is (timedOut).
func (t *capture) retryRefusal(se *sse.StatusError) bool {
	if t.refused != nil {
		return codeRetried(t.refused.code.onWire())
	}
	return refusalRetried(se.Header, se.StatusCode)
}

// refusalRetried reports whether a typed SSE call retries a
// reconnection's refusal with header h and status: see retryRefusal.
func refusalRetried(h http.Header, status int) bool {
	code, ok := ParseCode(h.Get(CodeHeader))
	if !ok {
		code = CodeFromHTTPStatus(status)
	}
	return codeRetried(code)
}

// codeRetried reports whether a reconnection refused with code is
// retried: unavailable, or deadline_exceeded (the attempt timed out).
func codeRetried(code Code) bool { return code == CodeUnavailable || code == CodeDeadlineExceeded }

// refusal translates an error of the sse client: a refused request (the
// first or a reconnection) is built from its *sse.StatusError like a
// refused WebSocket handshake, so its code is the server's (Wsrpc-Code, or
// the status) and its message the body's; a reconnection an interceptor
// refused is that interceptor's own error. Exhausted reconnection
// attempts are a lost connection, whatever the last attempt's cause:
// CodeUnavailable, as the WebSocket client reports the same outage. err
// is never the session's io.EOF, its clean end, and matches io.EOF in no
// other case (see sse.Session.Next).
func (t *capture) refusal(err error) error {
	var se *sse.StatusError
	if errors.As(err, &se) {
		if t.refused != nil {
			// The status is the one redial made up for the error (the
			// last attempt's, when the session gave up after retrying it).
			return t.refused
		}
		return fromHTTPResponse(&http.Response{StatusCode: se.StatusCode, Status: se.Status, Header: se.Header}, se.Body)
	}
	if errors.Is(err, sse.ErrReconnectLimit) {
		return NewError(CodeUnavailable, err)
	}
	return wireError(err)
}

func (c *ServerStreamClient[Req, Res]) callSSE(ctx context.Context, req *Req) (*ServerStreamForClient[Res], error) {
	if c.c.setup != nil {
		return nil, NewError(CodeInternal, c.c.setup)
	}
	pm, err := asMessage(req)
	if err != nil {
		return nil, err
	}
	q, err := EncodeSSERequest(pm)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.c.url)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "%w", err)
	}
	// One base URL serves a service's WebSocket and SSE methods alike:
	// an event stream is plain HTTP(S).
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	if len(q) > 0 {
		// The request's parameters join the URL's own (an API key, say),
		// which the WebSocket clients keep too.
		all := u.Query()
		for k, vs := range q {
			all[k] = vs
		}
		u.RawQuery = all.Encode()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "%w", err)
	}
	hreq.Header = c.c.cfg.sseClient.Header.Clone()
	if hreq.Header == nil {
		hreq.Header = http.Header{}
	}
	setTimeoutHeader(ctx, hreq.Header)
	timeoutSet := slices.Clone(hreq.Header.Values(TimeoutHeader))
	var sess *sse.Session
	var capt *capture
	remote := u.Host // the server that answered, once open ran
	open := func(ctx context.Context, hs *Handshake) (context.Context, error) {
		opts := c.c.cfg.sseClient
		hc := c.c.httpClient
		if opts.HTTPClient != nil {
			hc = opts.HTTPClient
		}
		t, sc := newCapture(*hc)
		opts.HTTPClient = sc
		// The call's codes depend on which refusals are retried: the
		// typed rule replaces any RetryRefusal of the user's, on this
		// copy of the options.
		opts.RetryRefusal = t.retryRefusal
		setInnerTimeoutHeader(ctx, hs.Request.Header, timeoutSet)
		opts.Header = hs.Request.Header
		user := opts.OnReconnect
		opts.OnReconnect = func(attempt int, err error) {
			// Called on the session's goroutine, after st was set: the
			// attempt opened a stream (nil) or not.
			if t.st != nil {
				t.st.reconnected(err)
			}
			if user != nil {
				user(attempt, err)
			}
		}
		s, err := sse.Connect(ctx, hs.Request.URL.String(), &opts)
		if err == io.EOF {
			// A 204 (sse.Connect's only io.EOF) to a request without
			// Last-Event-ID: no wsrpc server's answer (see sseCutShort).
			return ctx, sseCutShort(c.c.spec.Procedure, true)
		}
		if err != nil {
			return ctx, t.refusal(err)
		}
		t.mu.Lock()
		hs.ResponseHeader = t.resp.Header
		remote = answeredBy(t.resp, remote)
		t.mu.Unlock()
		if sess != nil {
			// An interceptor called next again after a success (opening
			// anew, say): the call runs on the latest stream, and the
			// earlier one, which nothing else would close before the
			// call's context ends, goes now, as the WebSocket dial closes
			// its earlier connection (connectWithin). The hooks run for
			// the call's one connection, the latest, on both transports.
			sess.Close()
		}
		// The capture goes with its session: a later next that fails
		// (an interceptor that swallows its error keeps this stream)
		// must not leave the call reading another attempt's capture,
		// whose reconnections would skip the interceptors and hooks.
		sess, capt = s, t
		return ctx, nil
	}
	jk := sseJSON(c.c.cfg.offered()) // its WithCodecs options hold on SSE too
	hs := &Handshake{Spec: c.c.spec, Request: hreq, Codec: jk}
	sctx, err := chainHandshake(c.c.cfg.interceptors, open)(ctx, hs)
	if err != nil {
		if sess != nil {
			sess.Close()
		}
		return nil, asError(err)
	}
	if sess == nil {
		return nil, Errorf(CodeInternal, "a handshake interceptor returned without calling next")
	}
	if sctx == nil {
		sctx = ctx
	}
	st := &sseClientStream{spec: c.c.spec, json: jk, sess: sess, capt: capt, ctx: sctx, interceptors: c.c.cfg.interceptors, onConnect: c.c.cfg.onConnect, onClose: c.c.cfg.onClose}
	st.cur = &sseClientConn{ctx: sctx, reqHeader: hs.Request.Header, respHeader: hs.ResponseHeader,
		info: &ConnInfo{Spec: c.c.spec, Codec: jk, RequestHeader: hs.Request.Header, RemoteAddr: remote}}
	capt.st = st
	for _, fn := range c.c.cfg.onConnect {
		fn(sctx, st.cur.info)
	}
	// As a WebSocket call's (watchCall): a call ended by its context
	// needs no Receive or Close, so nothing else would run the onClose
	// hooks. finish and close stop the watch.
	st.unwatch = context.AfterFunc(sctx, func() {
		st.hooks(closeInfoFor(sctx.Err()))
	})
	return &ServerStreamForClient[Res]{sse: st}, nil
}

// sseClientStream reads a typed SSE stream. Each connection of its
// session, the first and each reconnection runtime/sse makes, is an
// sseClientConn with hooks of its own, as each connection of a WebSocket call
// that reconnects is.
//
// Concurrency: receive from one goroutine, which also runs redial and
// reconnected (the session's Next calls them) and alone uses pending and
// retrying;
// close from any, and the context's AfterFunc on its own. mu guards cur,
// each sseClientConn's closed, ended and endInfo, so that each connection's
// onClose hooks run once and none opens after the call ended; the hooks
// themselves run outside it. beforeEnd is atomic, for LastEventID from
// any goroutine; closedHere is atomic, set by close before it ends the
// session, for receive to read.
type sseClientStream struct {
	spec         Spec
	json         codec.Codec // events' data decodes with it (sseJSON)
	sess         *sse.Session
	capt         *capture // what the server answered, for a refused reconnection
	ctx          context.Context
	interceptors []Interceptor
	onConnect    []func(context.Context, *ConnInfo)
	onClose      []func(context.Context, *ConnInfo, CloseInfo)
	unwatch      func() bool // stops the watch on ctx; set before the stream is shared
	done         error
	pending      *sseClientConn // a reconnection redial opened, until the session takes it
	retrying     *Error         // the handler's unavailable the call reconnects over, until redial's attempt (see receive)
	mu           sync.Mutex
	cur          *sseClientConn // the connection in place, or the last one
	ended        bool           // the call's end ran the hooks: no connection opens any more
	endInfo      CloseInfo      // how the call ended, once ended
	// prevID is the last event ID before the event being read (receive's
	// own); beforeEnd, set once at wsrpc.end for LastEventID from any
	// goroutine, is what it was before the end's reserved id.
	prevID    string
	beforeEnd atomic.Pointer[string]
	// closedHere says this side's Close ended the call (see close).
	closedHere atomic.Bool
}

// sseClientConn is one connection of a typed SSE call.
type sseClientConn struct {
	ctx        context.Context // its hooks': what the interceptors returned, or the call's
	info       *ConnInfo
	reqHeader  http.Header
	respHeader http.Header
	closed     bool // its onClose hooks ran; guarded by the stream's mu
}

// hooks ends the call: it runs the onClose hooks of the connection in
// place with ci, whichever end comes first, unless they ran already (the
// connection was lost, and no reconnection replaced it).
func (s *sseClientStream) hooks(ci CloseInfo) {
	s.mu.Lock()
	if !s.ended {
		s.ended, s.endInfo = true, ci
	}
	s.mu.Unlock()
	s.closeConn(ci)
}

// closeConn runs the onClose hooks of the connection in place with ci,
// once.
func (s *sseClientStream) closeConn(ci CloseInfo) {
	s.mu.Lock()
	c := s.cur
	if c.closed {
		s.mu.Unlock()
		return
	}
	c.closed = true
	s.mu.Unlock()
	for _, fn := range s.onClose {
		fn(c.ctx, c.info, ci)
	}
}

// current returns the connection in place, or the last one.
func (s *sseClientStream) current() *sseClientConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// redial runs a reconnection of the session, r (sent by runtime/sse,
// with its Last-Event-ID), through the call's handshake interceptors, as
// callSSE ran the first request: each gets a Handshake of its own whose
// Request is a copy of r, to set headers on (a refreshed token, a trace
// per connection), and reads the server's ResponseHeader after next. The
// lost connection's onClose hooks run first, as a WebSocket call's run
// before it reconnects (clientStream.receive): 1006, as for a connection
// that ended without a close frame (RFC 6455 §7.1.5), and unavailable,
// the lost connection WithReconnect retries. They run here, after the
// session's reconnection wait, because the session reconnects inside
// Next and this request is the first the typed layer learns of the loss.
// A call that has ended by then (closed, its context done, or by those
// hooks) runs no interceptor: the attempt fails with the context's error
// and the session ends.
//
// next sends the request with capture's client, which follows redirects
// (RFC 9110 §15.4) as the call's client would: each hop carries the
// headers the interceptors set, less those net/http drops for a host
// that is neither the first's nor a subdomain of it (Authorization,
// Cookie and the like), and the interceptors, the session and the hooks
// see the final answer, whose 200 is the new connection.
//
// The attempt ends as the server or the network made it unless an
// interceptor returned an error of its own (not the one next returned),
// or returned without calling next (internal, as on the first request).
// Then the answer is the refusal a server would send with that error
// (refusalResponse), and the session reads it as it reads a server's:
// unavailable's 503 is retried with its backoff and limits, other codes
// end the call, and refusal reports the interceptor's error itself.
func (s *sseClientStream) redial(r *http.Request) (*http.Response, error) {
	t := s.capt
	t.refused = nil
	s.retrying = nil
	s.closeConn(CloseInfo{Code: websocket.StatusAbnormalClosure, Err: sseCutShort(s.spec.Procedure, false)})
	if err := r.Context().Err(); err != nil {
		// Closed, or the call's context ended (whose watch may not have
		// run yet): the session ends with this error.
		return nil, err
	}
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		// The session's context ends with the call's, unless the
		// interceptors returned a context of their own, which ended
		// alone: the session ends too, rather than retry this.
		s.sess.Close()
		return nil, context.Canceled
	}
	var resp *http.Response // the server's final answer to next's request
	var rerr error          // the transport's error instead
	var timeoutSet []string // TimeoutHeader as set before the interceptors
	var inner *Error        // what next returned
	called := false
	open := func(ctx context.Context, hs *Handshake) (context.Context, error) {
		if resp != nil {
			// An interceptor called next again: the attempt is the
			// latest request's.
			resp.Body.Close()
		}
		called = true
		inner = nil
		setInnerTimeoutHeader(ctx, hs.Request.Header, timeoutSet)
		if herr := httpfield.Check(hs.Request.Header, sse.ErrInvalidHeader); herr != nil {
			// A header an interceptor set for this attempt that no
			// request can carry: net/http's refusal of it would reach
			// the session as a network failure, retried for ever.
			// Final, as the session's own check makes it on the first
			// request, and as a WebSocket reconnection's ErrInvalidDial.
			resp, rerr = nil, herr
			inner = asError(wireError(herr)) // invalid_argument
			return ctx, inner
		}
		resp, rerr = t.do(hs.Request.WithContext(ctx))
		if rerr != nil {
			// As the first request's failure reaches its interceptors
			// (sse.Connect's error through refusal), where io.EOF in the
			// chain (a server that closed the connection unanswered) is
			// no clean end either: a lost connection.
			err := fmt.Errorf("sse: connect: %w", rerr)
			if inner = asError(t.refusal(err)); errors.Is(err, io.EOF) {
				inner = NewError(CodeUnavailable, err)
			}
			return ctx, inner
		}
		hs.ResponseHeader = resp.Header
		switch resp.StatusCode {
		case http.StatusOK:
			// As sse.Connect fails the first request on a wrong type, so
			// that an interceptor sees the same failure either way.
			if !sse.IsEventStream(resp.Header.Get("Content-Type")) {
				inner = asError(t.refusal(fmt.Errorf("%w %q", sse.ErrContentType, resp.Header.Get("Content-Type"))))
			}
		case http.StatusNoContent:
			// No connection, and no clean end either (see sseCutShort):
			// the interceptors see the error those of a first request
			// answered 204 see. One that lets it through leaves the 204
			// to the session, which ends, and receive ends the call with
			// the same error.
			inner = sseCutShort(s.spec.Procedure, true)
		default:
			// A refusal (a 3xx among them when CheckRedirect kept it):
			// the session reads the body again, for its StatusError.
			body := sse.NewStatusError(resp).Body
			resp.Body = io.NopCloser(bytes.NewReader(body))
			// Decoded now (NewStatusError decodes gzip), as net/http
			// leaves a body it decoded: the session must not decode it
			// again.
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Length")
			resp.ContentLength = int64(len(body))
			inner = fromHTTPResponse(resp, body)
		}
		if inner != nil {
			return ctx, inner
		}
		return ctx, nil
	}
	hs := &Handshake{Spec: s.spec, Request: r.Clone(r.Context()), Codec: s.json}
	// r carries the first request's value (runtime/sse repeats its
	// headers): the time left now replaces it, before the interceptors.
	setTimeoutHeader(r.Context(), hs.Request.Header)
	timeoutSet = slices.Clone(hs.Request.Header.Values(TimeoutHeader))
	ctx, err := chainHandshake(s.interceptors, open)(r.Context(), hs)
	if err == nil && !called {
		err = Errorf(CodeInternal, "a handshake interceptor returned without calling next")
	}
	if err != nil && (!called || err != inner) {
		if resp != nil && rerr == nil {
			resp.Body.Close()
		}
		t.refused = asError(err)
		return refusalResponse(r, t.refused), nil
	}
	if rerr != nil {
		return nil, rerr
	}
	if resp.StatusCode == http.StatusOK && err == nil && inner == nil {
		if ctx == nil {
			ctx = s.ctx
		}
		s.pending = &sseClientConn{ctx: ctx, reqHeader: hs.Request.Header, respHeader: resp.Header,
			info: &ConnInfo{Spec: s.spec, Codec: s.json, RequestHeader: hs.Request.Header, RemoteAddr: answeredBy(resp, hs.Request.URL.Host)}}
	}
	return resp, nil
}

// answeredBy returns the host that sent resp, the last hop of a
// redirect: its request's, or fallback for a transport that does not
// say.
func answeredBy(resp *http.Response, fallback string) string {
	if resp != nil && resp.Request != nil && resp.Request.URL != nil {
		return resp.Request.URL.Host
	}
	return fallback
}

// refusalResponse is the answer for the sse client with which redial
// refuses a reconnection with e, as a wsrpc server refuses a request
// (writeHTTPError), except for the status of a code that is not retried
// (retryRefusal) but maps to 502, 503 or 504: 500, so that the status
// the session's OnReconnect reads says it is not. refusal returns e
// itself, so the status is only what the session reads.
func refusalResponse(r *http.Request, e *Error) *http.Response {
	code := e.code.onWire()
	status := code.HTTPStatus()
	if !codeRetried(code) && sse.RetriedStatus(status) {
		status = http.StatusInternalServerError
	}
	h := http.Header{}
	setRefusalHeader(h, e)
	return &http.Response{
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(e.msg)), ContentLength: int64(len(e.msg)),
		Request: r,
	}
}

// reconnected runs the onConnect hooks for the connection redial opened,
// once the session says it took it (err nil): the call then reads from
// it, and its headers are the stream's. Nothing opens once the call has
// ended; a call that ends while the hooks run ends this connection too.
func (s *sseClientStream) reconnected(err error) {
	c := s.pending
	s.pending = nil
	if err != nil || c == nil {
		return
	}
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return
	}
	for _, fn := range s.onConnect {
		fn(c.ctx, c.info)
	}
	s.mu.Lock()
	s.cur = c
	ended, ci := s.ended, s.endInfo
	s.mu.Unlock()
	if ended {
		s.closeConn(ci)
	}
}

func (s *sseClientStream) receive(m proto.Message) error {
	if s.done != nil {
		return s.done
	}
	for {
		ev, err := s.sess.Next()
		if err != nil {
			if e := s.retrying; e != nil && (err == io.EOF || errors.Is(err, sse.ErrReconnectLimit)) {
				// The session made no attempt after the handler's
				// unavailable: reconnection disabled, or its attempts
				// exhausted. The call ends with the handler's error, as
				// a WebSocket call does (redialer.reconnect), and the
				// connection's OnClose ran with it.
				return s.finish(e, closeInfoFor(e))
			}
			if err == io.EOF {
				// The session's clean end (a 204, or a stream that ended
				// with reconnection disabled) before wsrpc.end, which
				// alone ends a call cleanly (below).
				s.capt.mu.Lock()
				noContent := s.capt.resp != nil && s.capt.resp.StatusCode == http.StatusNoContent
				s.capt.mu.Unlock()
				err = sseCutShort(s.spec.Procedure, noContent)
			} else {
				err = s.capt.refusal(err)
			}
			ci := CloseInfo{Code: websocket.StatusAbnormalClosure, Err: err}
			if cerr := s.ctx.Err(); cerr != nil {
				// The call's context ended it, as the watch reports.
				ci = closeInfoFor(cerr)
			} else if s.closedHere.Load() {
				// Close ended the session, under a Receive in progress
				// or before this one: the session reports the context
				// Close cancelled, which the caller never cancelled. As
				// on a WebSocket (wsConn.localEnd), the call says this
				// side closed it. Close ran the hooks.
				err = closedHere(s.spec.Procedure, nil)
			}
			return s.finish(err, ci)
		}
		switch ev.Type {
		case "":
			// A comment or retry-only block, which the client yields
			// when WithSSEClientOptions asks for ShowCommentEvents or
			// ShowRetryEvents: not a response (every dispatched event
			// has a type, "message" by default).
			continue
		case SSEEventEnd:
			if ev.ID == SSEEndEventID {
				id := s.prevID
				s.beforeEnd.Store(&id)
			}
			return s.finish(io.EOF, CloseInfo{Code: websocket.StatusNormalClosure})
		case SSEEventError:
			e := parseSSEError(ev.Data)
			ci := closeInfoFor(e)
			if e.code == CodeUnavailable {
				// The handler's transient failure (a server draining, a
				// hub topic closed; docs/hub.md): a lost connection, as
				// WithReconnect takes a WebSocket call's 4014. The
				// session reconnects with Last-Event-ID within its
				// options, and redial runs the next connection's
				// interceptors and hooks; this one's OnClose says why it
				// ended.
				s.closeConn(ci)
				s.retrying = e
				s.sess.Reconnect()
				continue
			}
			return s.finish(e, ci)
		}
		s.prevID = ev.ID
		ok, err := decodeSSEEventWith(s.json, ev, m)
		if err != nil {
			// As on a WebSocket, an event this side cannot decode ends
			// the call.
			e := Errorf(CodeInvalidArgument, "sse event %q (id %q): %w", ev.Type, ev.ID, err)
			return s.finish(e, closeInfoFor(e))
		}
		if ok {
			return nil
		}
	}
}

// sseCutShort is the error of a typed SSE call whose stream ended without
// its wsrpc.end event, noContent when a request was answered 204. A wsrpc
// stream always ends with that event, and a wsrpc server answers 204 only
// to Last-Event-ID wsrpc.end, which a typed client never sends, since it
// stops at the event. So the stream was cut short — by a proxy, a
// maintenance page, a hostile server — and reading the end as io.EOF
// would pass a truncated stream off as a complete one. Unavailable, as
// for a WebSocket call cut the same way or SSE reconnections exhausted.
func sseCutShort(procedure string, noContent bool) *Error {
	if noContent {
		return Errorf(CodeUnavailable, "%s: the event stream ended without %s: the server answered 204 No Content", procedure, SSEEventEnd)
	}
	return Errorf(CodeUnavailable, "%s: the event stream ended without %s", procedure, SSEEventEnd)
}

func (s *sseClientStream) finish(err error, ci CloseInfo) error {
	s.done = err
	s.unwatch()
	s.sess.Close()
	s.hooks(ci)
	return err
}

func (s *sseClientStream) close() error {
	s.closedHere.Store(true)
	s.unwatch()
	s.sess.Close()
	s.hooks(CloseInfo{Code: websocket.StatusNormalClosure})
	return nil
}

// ServerStreamForClient is the client side of a server-streaming call,
// over WebSocket or SSE.
//
// Concurrency: one goroutine at a time may Receive; Close from any.
type ServerStreamForClient[Res any] struct {
	cs  *clientStream
	sse *sseClientStream
}

// Receive returns the next response; io.EOF when the handler returned
// nil, an *Error when it failed; once the call has ended, every later
// Receive returns the same again. Over SSE the message's oneof case is set
// from the event type, and a "message" event is the whole message, whatever
// the message's own shape, so a server of another version of the schema,
// which may send the other form, is read too (SSERule in
// wsrpc/v1/options.proto); events of types the message does not know are
// skipped.
func (s *ServerStreamForClient[Res]) Receive() (*Res, error) {
	m := new(Res)
	if s.sse != nil {
		pm, err := asMessage(m)
		if err != nil {
			return nil, err
		}
		if err := s.sse.receive(pm); err != nil {
			return nil, err
		}
		return m, nil
	}
	if err := s.cs.receive(m); err != nil {
		return nil, err
	}
	return m, nil
}

// All yields the responses until the stream ends; a failure is yielded
// once, last.
func (s *ServerStreamForClient[Res]) All() iter.Seq2[*Res, error] { return messages(s.Receive) }

// RequestHeader returns the header the request was sent with: for a call
// that reconnected (WithReconnect, or SSE), its latest connection's.
func (s *ServerStreamForClient[Res]) RequestHeader() http.Header {
	if s.sse != nil {
		return s.sse.current().reqHeader
	}
	return s.cs.conn().reqHeader
}

// ResponseHeader returns the header of the server's response (101, or 200
// for SSE): for a call that reconnected (WithReconnect, or SSE), its
// latest connection's.
func (s *ServerStreamForClient[Res]) ResponseHeader() http.Header {
	if s.sse != nil {
		return s.sse.current().respHeader
	}
	return s.cs.conn().respHeader
}

// LastEventID returns the id of the last SSE event received ("" on a
// WebSocket). After the end of the stream it is the last id before the
// end event's, whose reserved id (SSEEndEventID) only tells a client that
// reconnects the call is over: a later call may resume from this one, on
// a client made with WithSSEClientOptions(&sse.ClientOptions{LastEventID:
// id}), whose first request sends it as Last-Event-ID (the id is an
// option of the client, not of the call; see docs/reliability.md
// "Resuming in a new call").
func (s *ServerStreamForClient[Res]) LastEventID() string {
	if s.sse != nil {
		if id := s.sse.beforeEnd.Load(); id != nil {
			return *id
		}
		return s.sse.sess.LastEventID()
	}
	return ""
}

// Close ends the call: on a WebSocket a normal closure (1000), returning
// once the server has answered the close frame, or once the close
// timeout (websocket.DialOptions.CloseTimeout, 5 s by default) has passed
// without an answer; on SSE it closes the response body and returns at
// once, waiting for nothing. A Receive in progress returns then too; if
// Close ended the call, it and every later Receive fail with
// CodeCanceled, saying this side closed the stream (see
// BidiStreamForClient.Close). A call whose Receive has reported its end
// (io.EOF, or the error that ended it), or whose context has ended, has
// released its connection already, and Close returns at once; Close is
// for ending one early. Safe to call more than once.
func (s *ServerStreamForClient[Res]) Close() error {
	if s.sse != nil {
		return s.sse.close()
	}
	return s.cs.close(0, "")
}
