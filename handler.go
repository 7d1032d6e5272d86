package wsrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// errResponseWritten marks a refusal whose HTTP response the runtime wrote
// already (a malformed handshake).
var errResponseWritten = errors.New("wsrpc: response already written")

// acceptRefusal is the error a handshake interceptor's next returns when
// websocket.Accept refused the handshake with status (and wrote that
// response): the code the client reads from the status, which carries no
// Wsrpc-Code (see Code), the runtime's text as message, and
// errResponseWritten among its causes. Every refusal Accept can make here
// has a code of its own: 400 (a bad Sec-WebSocket-Key, a body, HTTP/1.0,
// malformed Sec-WebSocket-Extensions), 405 (not GET; refused before the
// chain, see serveWebSocket) and 426 (another Sec-WebSocket-Version) are
// invalid_argument, 403 (a refused origin) permission_denied, 500 (a
// ResponseWriter that cannot be hijacked) internal; status 0, the
// connection failed while the 101 was being written, which nobody
// answers any more, is unavailable.
func acceptRefusal(status int, err error) *Error {
	c := CodeUnavailable
	if status != 0 {
		c = CodeFromHTTPStatus(status)
	}
	return &Error{code: c, msg: err.Error(), err: fmt.Errorf("%w: %w", errResponseWritten, err)}
}

// statusWriter records the status written through it; Unwrap lets
// http.ResponseController reach the writer's Hijack and Flush.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refusalWriter takes websocket.Accept's refusal of a request that is not
// a handshake: the headers, set on the ResponseWriter, and the status, but
// not the body, which the handler writes with a code (see
// serveWebSocket). It has no Unwrap: Accept never gets to hijack such a
// request.
type refusalWriter struct {
	http.ResponseWriter
	status int
}

func (w *refusalWriter) WriteHeader(status int)      { w.status = status }
func (w *refusalWriter) Write(p []byte) (int, error) { return len(p), nil }

// requestTimeout reads TimeoutHeader, the time the client's deadline
// leaves the call: has is false without the header. A value that is not
// 1 to 10 ASCII digits (empty, signed, with a unit, repeated: two lines
// read "a, b"), or is 0, is refused before the upgrade, not ignored: the
// client would otherwise run with no bound on the server while it
// believes it sent one.
func requestTimeout(r *http.Request) (d time.Duration, has bool, err *Error) {
	vs := r.Header.Values(TimeoutHeader)
	if len(vs) == 0 {
		return 0, false, nil
	}
	v := strings.Join(vs, ", ")
	var ms uint64 // 10 digits fit
	if len(v) <= 10 && strings.TrimLeft(v, "0123456789") == "" {
		ms, _ = strconv.ParseUint(v, 10, 64) // "" is 0
	}
	if ms == 0 {
		const quoted = 32 // bytes of the value the message shows
		shown := strconv.Quote(v)
		if len(v) > quoted {
			shown = strconv.Quote(v[:quoted]) + "…"
		}
		return 0, true, Errorf(CodeInvalidArgument, "%s: %s is not a timeout: want the milliseconds left, 1 to 10 digits, more than 0", TimeoutHeader, shown)
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

// withRequestTimeout returns parent (r's context, or a WebSocket
// session's root: see serveWebSocket) bounded by the client's
// TimeoutHeader, if it sent one, and the cancel that releases its timer
// (a no-op without one), or the refusal of a malformed value. The server
// counts from the request's arrival, so its deadline passes a few round
// trips after the client's: a client that gives up on its own deadline
// first ends the call as a cancellation does, as in gRPC.
//
// The deadline's cause is an *Error (deadline_exceeded), which makes it
// the call's end on both transports (sessionCause): a WebSocket closes
// with 4004, and an SSE stream ends with a wsrpc.error event, where a
// deadline without such a cause (one a handshake interceptor set) ends
// the response without an event and the client reconnects — a client
// with no deadline of its own, sending the header again each time,
// would run the handler again every time it passed.
func withRequestTimeout(parent context.Context, r *http.Request) (context.Context, context.CancelFunc, *Error) {
	d, has, err := requestTimeout(r)
	if err != nil {
		return nil, nil, err
	}
	if !has {
		return parent, func() {}, nil
	}
	ctx, cancel := context.WithTimeoutCause(parent, d, Errorf(CodeDeadlineExceeded, "the client's deadline passed (%s: %d)", TimeoutHeader, d.Milliseconds()))
	return ctx, cancel, nil
}

// errPanicked ends a session whose handler (or interceptor, or hook)
// panicked. The panic value stays on the server, in net/http's log (or,
// on a detached session's goroutine, the Handler's: see logPanic).
var errPanicked = &Error{code: CodeInternal, msg: "handler panicked"}

// errExited ends a session (WebSocket or SSE) whose handler (or
// interceptor, or hook) ended its goroutine with runtime.Goexit (a
// t.FailNow in a test's handler) instead of returning: as a panic would,
// but there is no panic value to log.
var errExited = &Error{code: CodeInternal, msg: "handler exited without returning"}

// Handler serves one method. It is an http.Handler; the generated
// NewFooServiceHandler routes a service's paths to its Handlers.
//
// A panic in the handler function, an interceptor or a hook once the
// WebSocket is upgraded or the SSE response has begun ends the session as
// an error with CodeInternal would (close code 4013, or a "wsrpc.error"
// event, with the message "handler panicked", never the panic value), and
// OnClose runs; then the panic goes on to net/http, which logs it with
// its stack (with WithDetachedSessions, a WebSocket session's panic is
// logged by the Handler instead, the same way). A runtime.Goexit (a
// t.FailNow) in place of the panic, after a WebSocket upgrade or once an
// SSE response has begun, ends the call the same way, with "handler
// exited without returning", and nothing is logged. A handshake
// interceptor that panics after next ends the call the same way, but
// the session had not begun: neither OnConnect nor OnClose runs for it;
// one that panics before next is answered 500 with CodeInternal.
// net/http alone would leave a hijacked connection open, cut an SSE
// response, and answer nothing to a request whose handler panicked, all
// of which clients would reconnect to, into the panic.
// The handler function runs on the request's goroutine, within
// ServeHTTP; with WithDetachedSessions a WebSocket one runs on a
// goroutine of the session's own, after ServeHTTP has returned.
//
// Concurrency: a Handler is immutable after construction and serves any
// number of requests at once.
type Handler struct {
	spec   Spec
	cfg    *config
	accept websocket.AcceptOptions
	setup  error // a configuration error, reported on every request
	// base builds the innermost StreamFunc for one call.
	base func(raw serverConn) StreamFunc
	// newReq allocates the request of an SSE call.
	newReq func() proto.Message
}

// NewBidiHandler returns the handler of a bidirectional-streaming method
// served over WebSocket. fn runs once per connection; its return closes the
// connection: nil with 1000, an error with its code's close code (see Code).
func NewBidiHandler[Req, Res any](procedure string, fn func(context.Context, *BidiStream[Req, Res]) error, opts ...Option) *Handler {
	h := newHandler(Spec{Procedure: procedure, StreamType: StreamTypeBidi, Transport: TransportWebSocket}, opts)
	h.base = func(raw serverConn) StreamFunc {
		return func(ctx context.Context, conn StreamConn) error {
			return handlerOutcome(raw, fn(ctx, &BidiStream[Req, Res]{conn: conn, raw: raw}))
		}
	}
	return h
}

// NewServerStreamHandler returns the handler of a server-streaming method
// served over WebSocket: the client's first message is the request; fn
// sends responses until it returns.
func NewServerStreamHandler[Req, Res any](procedure string, fn func(context.Context, *Req, *ServerStream[Res]) error, opts ...Option) *Handler {
	h := newHandler(Spec{Procedure: procedure, StreamType: StreamTypeServer, Transport: TransportWebSocket}, opts)
	h.base = serverStreamBase(fn)
	return h
}

// NewSSEHandler returns the handler of a server-streaming method served as
// Server-Sent Events: the request comes in the URL's query (see
// DecodeSSERequest), each response is an event (see NewSSEEvent), and the
// stream ends with a "wsrpc.end" or "wsrpc.error" event.
func NewSSEHandler[Req, Res any](procedure string, fn func(context.Context, *Req, *ServerStream[Res]) error, opts ...Option) *Handler {
	h := newHandler(Spec{Procedure: procedure, StreamType: StreamTypeServer, Transport: TransportSSE}, opts)
	h.base = serverStreamBase(fn)
	h.newReq = func() proto.Message {
		m, _ := any(new(Req)).(proto.Message)
		return m
	}
	return h
}

func serverStreamBase[Req, Res any](fn func(context.Context, *Req, *ServerStream[Res]) error) func(serverConn) StreamFunc {
	return func(raw serverConn) StreamFunc {
		return func(ctx context.Context, conn StreamConn) error {
			req, err := receiveInto[Req](conn)
			if errors.Is(err, io.EOF) {
				return Errorf(CodeInvalidArgument, "%s: the client sent no request", conn.Spec().Procedure)
			}
			if err != nil {
				return err
			}
			if ws, ok := raw.(*wsConn); ok {
				ws.watchPeer()
				ctx = mergeCancel(ctx, ws.ctx)
			}
			return handlerOutcome(raw, fn(ctx, req, &ServerStream[Res]{conn: conn, raw: raw}))
		}
	}
}

// handlerOutcome is what the innermost StreamFunc returns for a handler
// that returned err: err, unless the handler's own Close (closeStream)
// ended the stream, in which case what that close sent, the *Error with
// its code and reason (nil for a normal closure), whatever the handler
// returned after it. That is what the client got and what OnClose
// reports; without it a handler that closed with aborted and returned
// nil read as an OK call to every stream interceptor. The session's end
// then finds the stream closed, and sends nothing more.
//
// Nor is an io.EOF the handler returned once the client's normal closure
// (1000, or 1005) had ended the stream a failure: it is what Send
// returns then, and the idiom `if err := s.Send(m); err != nil { return
// err }` passes it on, so every client that left normally read as
// unknown (EOF) to the stream interceptors while OnClose reported a
// normal closure. It is nil, the clean end both then report. An io.EOF
// returned while the client is still connected stays an error (unknown):
// the handler's own, not the client's end; so does one the handler gave
// a code of its own (an *Error wrapping it).
//
// The same holds for context.Canceled once that closure has cancelled
// the session's ctx: a handler that only sends, waiting on ctx (a session
// following a hub topic, docs/hub.md), learns of the client's leaving
// from ctx and returns ctx.Err(), the idiom for it, and every client that
// closed normally read as canceled to the stream interceptors.
func handlerOutcome(raw serverConn, err error) error {
	if own, oerr := raw.ownEnd(); own {
		return oerr
	}
	var coded *Error
	if err == nil || errors.As(err, &coded) {
		return err
	}
	ws, ok := raw.(*wsConn)
	if !ok {
		return err
	}
	if (errors.Is(err, io.EOF) || (errors.Is(err, context.Canceled) && ws.ctx.Err() != nil)) && ws.endedByClient() {
		return nil
	}
	return err
}

// mergeCancel returns ctx (with its values) cancelled also when done is.
func mergeCancel(ctx, done context.Context) context.Context {
	if ctx == done {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(done, cancel)
	return ctx
}

// NewClientStreamHandler returns the handler of a client-streaming method
// served over WebSocket: fn receives until io.EOF and returns the one
// response, which is sent before the connection closes with 1000. Only the
// client's end-of-stream marker reads as io.EOF: a close before it, 1000
// or 1005 included, is canceled (see ClientStream).
func NewClientStreamHandler[Req, Res any](procedure string, fn func(context.Context, *ClientStream[Req]) (*Res, error), opts ...Option) *Handler {
	h := newHandler(Spec{Procedure: procedure, StreamType: StreamTypeClient, Transport: TransportWebSocket}, opts)
	h.base = func(raw serverConn) StreamFunc {
		return func(ctx context.Context, conn StreamConn) error {
			res, err := fn(ctx, &ClientStream[Req]{conn: conn, raw: raw})
			if own, oerr := raw.ownEnd(); own {
				return oerr // the handler closed the call (handlerOutcome)
			}
			if err != nil {
				return err
			}
			if res == nil {
				return Errorf(CodeInternal, "%s: the handler returned neither a response nor an error", conn.Spec().Procedure)
			}
			// A client that closed normally after its end-of-stream
			// marker finished its upload and chose not to wait for the
			// answer: the Send's io.EOF is then a clean end.
			return handlerOutcome(raw, conn.Send(res))
		}
	}
	return h
}

func newHandler(spec Spec, opts []Option) *Handler {
	h := &Handler{spec: spec, cfg: newConfig(opts)}
	h.cfg.checkHandler()
	h.accept = h.cfg.accept
	h.accept.Subprotocols = nil
	h.accept.Extensions, h.setup = h.cfg.extensions(h.accept.Extensions)
	return h
}

// Spec returns the method's description.
func (h *Handler) Spec() Spec { return h.spec }

// ServeHTTP serves one call. The session runs within it, unless the
// Handler was made WithDetachedSessions and the call is a WebSocket one:
// its session then runs on a goroutine of its own (wsSession.detached),
// and ServeHTTP returns once the handshake is done.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.setup != nil {
		writeHTTPError(w, NewError(CodeInternal, h.setup))
		return
	}
	// detached: the session's goroutine leaves the tracker instead, when
	// the session ends, so that Shutdown still waits for it.
	detached := false
	if t := h.cfg.tracker; t != nil {
		if !t.enter() {
			writeHTTPError(w, Errorf(CodeUnavailable, "%s", ShutdownReason))
			return
		}
		defer func() {
			if !detached {
				t.leave()
			}
		}()
	}
	if h.spec.Transport == TransportSSE {
		h.serveSSE(w, r)
		return
	}
	// A value, which stays on this goroutine's stack when the session
	// runs here: only a detached one's goes to the heap.
	s, ok := h.serveWebSocket(w, r)
	switch {
	case !ok: // no session: the handshake failed
	case h.cfg.detachSessions:
		detached = true
		d := s
		go d.detached()
	default:
		s.serve()
	}
}

// negotiate picks the codec: the first subprotocol the client offers that
// is an accepted codec's; with no offer at all, the preferred codec, else
// JSON if accepted, else the first accepted. sub is the subprotocol to
// answer with ("" for none).
func (h *Handler) negotiate(r *http.Request) (c codec.Codec, sub string, err *Error) {
	var offered []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
	}
	if len(offered) == 0 {
		if h.cfg.preferred != nil {
			return h.cfg.preferred, "", nil
		}
		for _, k := range h.cfg.codecs {
			if k.Name() == codec.NameJSON {
				return k, "", nil
			}
		}
		return h.cfg.codecs[0], "", nil
	}
	for _, p := range offered {
		for _, k := range h.cfg.codecs {
			if codec.Subprotocol(k) == p {
				return k, p, nil
			}
		}
	}
	names := make([]string, len(h.cfg.codecs))
	for i, k := range h.cfg.codecs {
		names[i] = codec.Subprotocol(k)
	}
	return nil, "", Errorf(CodeInvalidArgument, "no supported subprotocol offered (%s); this endpoint accepts %s", strings.Join(offered, ", "), strings.Join(names, ", "))
}

func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request) (sess wsSession, ok bool) {
	if !websocket.IsUpgradeRequest(r) {
		// Before negotiation, which would refuse it as a request with no
		// subprotocol: Accept, by the same rule, answers 426 Upgrade
		// Required, naming the protocol and version (RFC 9110 §15.5.22,
		// RFC 6455 §4.2.2), or 400 over HTTP/2, where a 426 cannot carry
		// Upgrade (RFC 9113 §8.2.2). Its status and headers stand; the
		// body is the method's own reason, with unimplemented in
		// Wsrpc-Code: such a request is most likely an SSE client built
		// from a schema that served the method as SSE, and the status
		// alone reads as unknown.
		rw := &refusalWriter{ResponseWriter: w, status: http.StatusUpgradeRequired}
		_, _ = websocket.Accept(rw, r, &h.accept)
		how := "a WebSocket handshake (Upgrade: websocket, Connection: Upgrade)"
		if r.ProtoMajor >= 2 {
			how = "a WebSocket handshake over HTTP/1.1 (WebSocket over HTTP/2, RFC 8441, is not supported)"
		}
		writeHTTPStatus(w, rw.status, Errorf(CodeUnimplemented, "%s is served over WebSocket, not as Server-Sent Events: it needs %s", h.spec.Procedure, how))
		return sess, false
	}
	if r.Method != http.MethodGet {
		// A handshake with another method than GET (RFC 6455 §4.1) is
		// answered 405 with Allow (RFC 9110 §15.5.6) by Accept, before
		// negotiation too, like the SSE routes' refusal, and not for its
		// subprotocol or by an interceptor first, as when Accept saw it
		// only after them.
		_, _ = websocket.Accept(w, r, &h.accept)
		return sess, false
	}
	cdc, sub, nerr := h.negotiate(r)
	if nerr != nil {
		writeHTTPError(w, nerr)
		return sess, false
	}
	rctx := r.Context()
	root, cancelRoot, untie := h.sessionRoot(rctx)
	// The client's deadline bounds the session as an interceptor's would
	// (see watchSession); the timer goes with the session.
	base, cancelBase, terr := withRequestTimeout(root, r)
	if terr != nil {
		untie()
		cancelRoot(nil)
		writeHTTPError(w, terr)
		return sess, false
	}
	defer func() {
		if !ok { // no session: the handshake failed
			untie()
			cancelBase()
			cancelRoot(nil)
		}
	}()
	var ws *websocket.Conn
	// written: Accept refused the handshake and wrote the response itself.
	// A flag, not errors.Is on the chain's error, which an interceptor may
	// have re-wrapped without %w: a second response would be appended to
	// the first.
	written := false
	// net/http recovers a panic but never closes a hijacked connection:
	// the client would wait forever for a close frame. A panic between
	// the upgrade and the session (a handshake interceptor's, after
	// next) closes with internal (4013) here, one in the session in
	// wsSession.session.
	// One before the upgrade (an interceptor's, before next) is answered
	// 500 internal (refusePanicked): net/http would cut the connection
	// unanswered, which the client takes for a lost connection and
	// reconnects into the panic. One after Accept refused the handshake
	// flushes that refusal, which would otherwise stay in net/http's
	// buffer when it cuts the connection. Either way the panic then goes
	// on, for net/http to log. An interceptor that ends the goroutine with
	// runtime.Goexit after next (inChain still set, nothing to recover)
	// would leave the hijacked connection open for good: it is closed the
	// same way.
	inChain := false
	defer func() {
		p := recover()
		if p == nil {
			if inChain && ws != nil {
				code, reason, _ := closeFor(errExited)
				_ = closeWS(ws, code, reason)
			}
			return
		}
		switch {
		case ws != nil:
			code, reason, _ := closeFor(errPanicked)
			_ = closeWS(ws, code, reason)
		case written:
			_ = http.NewResponseController(w).Flush()
		default:
			refusePanicked(w)
		}
		panic(p)
	}()
	var respHeader http.Header // as sent with the 101
	accept := func(ctx context.Context, hs *Handshake) (context.Context, error) {
		opts := h.accept
		if sub != "" {
			opts.Subprotocols = []string{sub}
		}
		sw := &statusWriter{ResponseWriter: w}
		c, err := websocket.Accept(sw, r, &opts)
		if err != nil {
			written = true
			return ctx, acceptRefusal(sw.status, err)
		}
		ws = c
		// What Accept just sent: headers set after next returns are not.
		respHeader = w.Header().Clone()
		return ctx, nil
	}
	hs := &Handshake{Spec: h.spec, Request: r, ResponseHeader: w.Header(), Codec: cdc}
	inChain = true
	ctx, err := chainHandshake(h.cfg.interceptors, accept)(base, hs)
	inChain = false
	if ctx == nil {
		ctx = base
	}
	if err != nil {
		switch {
		case ws != nil: // refused after the upgrade
			e := asError(err)
			_ = closeWS(ws, e.code.CloseCode(), websocket.CloseReason(e.msg))
		case !written && !errors.Is(err, errResponseWritten):
			writeHTTPError(w, asError(err))
		}
		return sess, false
	}
	if ws == nil {
		if !written { // else an interceptor dropped Accept's refusal
			writeHTTPError(w, Errorf(CodeInternal, "a handshake interceptor returned without calling next"))
		}
		return sess, false
	}
	// The upgrade is done: from here r.Context()'s cancellation, which
	// comes as ServeHTTP returns, no longer reaches a detached session.
	// Once Accept has hijacked the connection (net/http's background
	// read stops then) it could otherwise come only from the server's
	// base context, which a detached session therefore no longer
	// follows. One that came during the handshake has ended root
	// already, and the session ends at once (watchSession).
	untie()
	srv, _ := rctx.Value(http.ServerContextKey).(*http.Server)
	sess = wsSession{
		h: h, conn: newWSConn(ctx, h.spec, cdc, ws, r.Header, respHeader, h.cfg, r.RemoteAddr),
		ctx: ctx, cancelBase: cancelBase, cancelRoot: cancelRoot, srv: srv,
	}
	return sess, true
}

// sessionRoot returns the root of a WebSocket session's contexts, which
// has r.Context()'s values and ends with the session (wsSession.serve),
// the cancel that ends it, and untie, which stops root from following
// rctx (r.Context()) once the upgrade is done.
//
// Within ServeHTTP, by default, root is rctx itself, and ends with it: a
// client gone during the handshake, or the server's base context
// (http.Server.BaseContext) at any time; cancel and untie do nothing. A
// detached session (WithDetachedSessions) outlives ServeHTTP, at whose
// return net/http cancels r.Context(), hijacked or not: its root follows
// rctx, with its cause, only until untie.
func (h *Handler) sessionRoot(rctx context.Context) (root context.Context, cancel context.CancelCauseFunc, untie func() bool) {
	if !h.cfg.detachSessions {
		return rctx, func(error) {}, func() bool { return false }
	}
	root, cancel = context.WithCancelCause(context.WithoutCancel(rctx))
	untie = context.AfterFunc(rctx, func() { cancel(context.Cause(rctx)) })
	return root, cancel, untie
}

// wsSession is an upgraded WebSocket call. serve runs it within
// ServeHTTP; detached, with WithDetachedSessions, on a goroutine of its
// own after ServeHTTP has returned: net/http's goroutine then ends, and
// with it what it kept reachable (its conn, response and Request, about
// 8 KiB with the goroutine's stack, which cannot shrink below that under
// ServeHTTP's frames), and the session's goroutine starts with a small
// stack that the runtime can shrink while the session is idle
// (BenchmarkIdleSession). It holds only what the session needs: nothing
// of the request but its headers, in conn, and its context's values.
//
// Concurrency: serve runs once, on ServeHTTP's goroutine or, detached,
// on the session's own; the fields are set before it starts and only
// read after.
type wsSession struct {
	h    *Handler
	conn *wsConn
	// ctx is the session's context as the handshake chain returned it,
	// which watchSession watches; cancelBase releases the client's
	// deadline's timer, cancelRoot the root it descends from.
	ctx        context.Context
	cancelBase context.CancelFunc
	cancelRoot context.CancelCauseFunc
	srv        *http.Server // the request's server, whose ErrorLog logs a detached session's panic; nil outside one
}

// serve runs the session, then releases its contexts. A panic in the
// session, which has ended it with internal (4013) already (see
// session), goes on: within ServeHTTP, to net/http, which logs it.
func (s *wsSession) serve() {
	defer func() {
		s.cancelBase()
		s.cancelRoot(nil)
	}()
	s.session()
}

// detached runs serve on the session's own goroutine
// (WithDetachedSessions), then, last, leaves the tracker, which
// ServeHTTP left to it, so that Shutdown returns only after all of it. A
// panic is recovered and logged as net/http logs a handler's, which it
// would have been on ServeHTTP's goroutine: on this one it would end the
// process.
func (s *wsSession) detached() {
	if t := s.h.cfg.tracker; t != nil {
		defer t.leave()
	}
	defer func() {
		if p := recover(); p != nil {
			logPanic(s.srv, s.conn.info.RemoteAddr, p)
		}
	}()
	s.serve()
}

// logPanic logs p, recovered on a detached session's goroutine, as
// net/http logs a handler's panic: the message and the stack of the
// panicking goroutine (it runs in the deferred call that recovered p, so
// the panicking frames are still on the stack), to srv's ErrorLog if it
// has one, else through the log package; http.ErrAbortHandler, the panic
// that means "abort quietly", is not logged.
func logPanic(srv *http.Server, remote string, p any) {
	if p == http.ErrAbortHandler {
		return
	}
	const size = 64 << 10 // as net/http's
	buf := make([]byte, size)
	buf = buf[:runtime.Stack(buf, false)]
	if srv != nil && srv.ErrorLog != nil {
		srv.ErrorLog.Printf("http: panic serving %v: %v\n%s", remote, p, buf)
		return
	}
	log.Printf("http: panic serving %v: %v\n%s", remote, p, buf)
}

// session runs the session: OnConnect, the stream interceptors and the
// handler, and its end.
func (s *wsSession) session() {
	h, conn, ctx := s.h, s.conn, s.ctx
	defer conn.cancel()
	if t := h.cfg.tracker; t != nil {
		t.add(conn)
		defer t.remove(conn)
	}
	// ctx ending (a handshake interceptor's deadline) closes the session
	// with its code while the handler may be reading: see watchSession.
	stopWatch := conn.watchSession(ctx)
	// The runtime closing the connection on its own (a missed pong) while
	// nothing reads it ends the session too: see watchLost.
	stopLost := conn.watchLost()
	end := func(err error) {
		// Before the close: a late Send fails the same way whether it
		// comes before the close frame, during the closing handshake or
		// after it (sendAfterReturn).
		conn.over.Store(true)
		stopWatch()
		stopLost()
		if lw := conn.resetWrite.Load(); lw != nil {
			// A write met the peer's reset: the end is the close frame a
			// reader found before it, if one did (the peer watcher may
			// still be reading it), or else the lost connection, 1006.
			conn.waitWatcher()
			conn.ended(*lw)
		}
		conn.closeEnd(err)
		conn.waitWatcher()
		conn.runOnClose()
	}
	// A panic in a hook, an interceptor or the handler (all run on this
	// goroutine; the runtime's own goroutines run no user code) ends the
	// session as an error would: a close frame with internal (4013), the
	// watcher waited for, OnClose run. Deferred after cancel so that it
	// runs first: cancel would drop the connection under the watcher's
	// read before the close frame went out. Re-panicking from the
	// deferred function keeps the panicking frames in the stack that
	// net/http, or a detached session's logPanic, logs.
	//
	// returned: the hooks and the chain came back. runtime.Goexit unwinds
	// through the deferred call with nothing to recover, and the session
	// would otherwise end with no close frame of its own (the client told
	// canceled, 4001, by the context's end as the goroutine unwinds) and
	// OnClose never run.
	returned := false
	defer func() {
		if p := recover(); p != nil {
			end(errPanicked)
			panic(p)
		}
		if !returned {
			end(errExited)
		}
	}()
	for _, fn := range h.cfg.onConnect {
		fn(conn.ctx, conn.info)
	}
	err := chainStream(h.cfg.interceptors, h.base(conn))(conn.ctx, conn)
	if err == nil && h.spec.StreamType == StreamTypeClient && conn.ws.Stats().MessagesWritten == 0 {
		// A client-streaming call's only clean end is its response: a
		// chain that returns nil without one (an interceptor that
		// swallowed the handler's error, or never called next) would
		// close with 1000, which the client reads as internal while
		// OnClose reported success. It ends as internal on both sides,
		// as ClientStream.Close(0) does. A stream that ended already
		// (the client's close after its marker) keeps that end.
		err = Errorf(CodeInternal, "%s: the server closed without a response", h.spec.Procedure)
	}
	end(err)
	returned = true
}

// sseRequest checks an SSE call's request and decodes it from the query,
// or answers the refusal itself and returns false. It is kept out of
// serveSSE, whose frame stays on the stack for the whole session, so that
// what only the request needs (the decoding's temporaries) does not: the
// first flush grows the goroutine's stack to 16 KiB, and the runtime
// halves a stack only while less than a quarter of it is in use: an idle
// stream used just over a quarter while serveSSE's frame was 1,216 bytes
// (744 without these; Go 1.26, amd64), and kept 16 KiB (BenchmarkIdleSession:
// 18 KiB of stacks per SSE session then, 10 KiB now).
func (h *Handler) sseRequest(w http.ResponseWriter, r *http.Request) (proto.Message, codec.Codec, bool) {
	if websocket.IsUpgradeRequest(r) {
		// A WebSocket client: the method was moved to SSE, and the client
		// was built from an older schema. Refused before the interceptors,
		// decoding and the handler, which would run with an empty request
		// for a client that cannot read the stream (its dial would take
		// the event stream for a refusal's body). unimplemented, as Connect
		// and gRPC answer a call the server does not serve so, in
		// Wsrpc-Code: the client reads it from the refusal.
		writeHTTPError(w, Errorf(CodeUnimplemented, "%s is served as Server-Sent Events (GET text/event-stream), not WebSocket", h.spec.Procedure))
		return nil, nil, false
	}
	if r.Method != http.MethodGet {
		// RFC 9110 §15.5.6: 405 Method Not Allowed, with Allow. HEAD too:
		// it would run the interceptors and open a stream only for its
		// body to be dropped. No Code maps to 405; the code is
		// invalid_argument, in Wsrpc-Code.
		w.Header().Set("Allow", http.MethodGet)
		writeHTTPStatus(w, http.StatusMethodNotAllowed, &Error{code: CodeInvalidArgument, msg: "an SSE stream is opened with GET"})
		return nil, nil, false
	}
	req := h.newReq()
	if req == nil {
		writeHTTPError(w, Errorf(CodeInternal, "%s: request type is not a protobuf message", h.spec.Procedure))
		return nil, nil, false
	}
	// url.Values from r.URL.Query() would silently drop a pair that does
	// not parse (a stray "%", a ";"), and the handler would run with that
	// field unset.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeHTTPError(w, Errorf(CodeInvalidArgument, "query: %w", err))
		return nil, nil, false
	}
	// The JSON codec this handler's WebSocket calls use for wsrpc.json,
	// with its options (RejectUnknown…), for the request and the events.
	jk := sseJSON(h.cfg.codecs)
	if err := decodeSSERequest(jk, query, req); err != nil {
		writeHTTPError(w, asError(err))
		return nil, nil, false
	}
	return req, jk, true
}

func (h *Handler) serveSSE(w http.ResponseWriter, r *http.Request) {
	req, jk, ok := h.sseRequest(w, r)
	if !ok {
		return
	}
	// As on the WebSocket route: the client's deadline bounds the
	// session, so this connection, as an interceptor's deadline would.
	base, cancelBase, terr := withRequestTimeout(r.Context(), r)
	if terr != nil {
		writeHTTPError(w, terr)
		return
	}
	defer cancelBase()
	// tw: the writer Tracker.Shutdown bounds the stream's writes through
	// before the call is a session (sseWriter); nil without a Tracker.
	// Removed last, after every write of the call's.
	var tw *sseWriter
	if t := h.cfg.tracker; t != nil {
		tw = &sseWriter{statusWriter: statusWriter{ResponseWriter: w}, rc: http.NewResponseController(w), closeTimeout: h.accept.CloseTimeout}
		t.addSSE(tw)
		defer t.removeSSE(tw)
	}
	var stream *sse.Stream
	var end func(error) // ends the session, once it has started
	// Once the 200 is out, net/http can only cut the response after a
	// panic, and the typed client, like EventSource, takes a cut for a
	// lost connection and reconnects, into the panic again, forever. The
	// stream ends with wsrpc.error (internal) instead, which stops both,
	// and the panic goes on, for net/http to log. Here a handshake
	// interceptor's panic after next; the session's below.
	// written and over, below: a response is out, though no stream.
	// inChain: an interceptor that ends the goroutine with runtime.Goexit
	// after next (nothing to recover) would leave the stream cut without
	// an event, and the client reconnecting into it: it ends the same
	// way, with errExited.
	written, over, inChain := false, false, false
	defer func() {
		if end != nil {
			return
		}
		p := recover()
		if p == nil && !inChain {
			return
		}
		cause := errPanicked
		if p == nil {
			cause = errExited
		}
		switch {
		case stream != nil:
			_ = (&sseConn{stream: stream}).closeWith(cause)
		case written || over:
			// A response is out but may sit in net/http's buffer:
			// flushed, the 204 still stops EventSource for good.
			_ = http.NewResponseController(w).Flush()
		case p != nil: // before next: see the WebSocket route's
			refusePanicked(w)
		}
		if p != nil {
			panic(p)
		}
	}()
	var respHeader http.Header // as sent with the 200
	// A client that reconnects after this call's wsrpc.end (a page that
	// did not close its EventSource) says so with the end's reserved id,
	// taken as sse.Stream.LastEventID takes it: the header, else the
	// parameter. The call is over; running it again would repeat it every
	// reconnection time, for ever. It is answered 204, which stops
	// EventSource for good (WHATWG HTML §9.2.3) and ends the sse client
	// with io.EOF, by next, so that the handshake interceptors' headers
	// (CORS: without them the browser takes the answer for a network
	// error, and retries) go with it.
	lastID := sse.RequestLastEventID(r)
	// over: answered 204, the call ended before.
	// written: NewStream failed after it had sent the 200 (the client
	// left as the stream opened, or a replayed event could not be
	// written). The refusal's answer would be a second WriteHeader, which
	// net/http refuses and logs ("superfluous response.WriteHeader call"),
	// and a body appended to the event stream's.
	// newStream opens the call's event stream with opts, through the
	// Tracker's writer when there is one; sw records its status.
	newStream := func(opts *sse.StreamOptions) (s *sse.Stream, sw *statusWriter, err error) {
		var rw http.ResponseWriter
		if tw != nil {
			sw, rw = &tw.statusWriter, tw
		} else {
			sw = &statusWriter{ResponseWriter: w}
			rw = sw
		}
		s, err = sse.NewStream(rw, r, opts)
		return s, sw, err
	}
	open := func(ctx context.Context, hs *Handshake) (context.Context, error) {
		if lastID == SSEEndEventID {
			w.WriteHeader(http.StatusNoContent)
			over = true
			return ctx, nil
		}
		s, sw, err := newStream(&h.cfg.sseStream)
		if err != nil {
			if sw.status == 0 {
				if errors.Is(err, sse.ErrReplayStore) {
					// The store is out (a database blip), which the
					// client's next reconnection may not meet:
					// unavailable, the transient code, for the
					// interceptors to see; answered below.
					return ctx, NewError(CodeUnavailable, err)
				}
				return ctx, NewError(CodeInternal, err) // a configuration error
			}
			written = true
			if errors.Is(err, sse.ErrClientGone) {
				return ctx, NewError(CodeCanceled, err) // as a Send would say
			}
			return ctx, NewError(CodeUnavailable, err)
		}
		stream = s
		// What NewStream just sent: headers set after next returns are not.
		respHeader = w.Header().Clone()
		return ctx, nil
	}
	hs := &Handshake{Spec: h.spec, Request: r, ResponseHeader: w.Header(), Codec: jk}
	inChain = true
	ctx, err := chainHandshake(h.cfg.interceptors, open)(base, hs)
	inChain = false
	if ctx == nil {
		ctx = base
	}
	if over {
		return // nothing can follow the 204, not even an interceptor's error
	}
	conn := &sseConn{spec: h.spec, stream: stream, codec: jk, req: req, reqHeader: r.Header, respHeader: respHeader}
	if err != nil {
		switch {
		case stream != nil:
			_ = conn.closeWith(err)
		case !written && errors.Is(err, sse.ErrReplayStore):
			// The client resumed while the replay store failed. A
			// status would end a browser's EventSource for good, 503
			// included (WHATWG HTML §9.2.3: any answer but a 200 event
			// stream fails the connection), where a stream that ends
			// has it reconnect with its Last-Event-ID after the
			// reconnection time: so a stream without the replay (the
			// options' retry: first) that ends at once with the error,
			// unavailable, as a handler's transient failure ends one
			// and hub.SSEHandler answers the same failure. wsrpc.error
			// carries no id, so the client keeps its own, and typed
			// clients reconnect over unavailable; the answer holds no
			// event, so they count the attempt and back off.
			o := h.cfg.sseStream
			o.Replay = nil
			s, sw, serr := newStream(&o)
			switch {
			case serr == nil:
				conn.stream = s
				_ = conn.closeWith(err)
			case sw.status == 0:
				writeHTTPError(w, asError(err))
			}
		case !written:
			writeHTTPError(w, asError(err))
		}
		return
	}
	if stream == nil {
		if !written { // else an interceptor dropped the failed open's error
			writeHTTPError(w, Errorf(CodeInternal, "a handshake interceptor returned without calling next"))
		}
		return
	}
	if t := h.cfg.tracker; t != nil {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		s := &sseSession{cancel: cancel, spec: h.spec, stream: stream, closeTimeout: h.accept.CloseTimeout}
		t.add(s)
		defer t.remove(s)
	}
	info := &ConnInfo{Spec: h.spec, Codec: jk, RequestHeader: r.Header, RemoteAddr: r.RemoteAddr}
	hooked := false
	// ctx ending with an *Error as its cause (sessionCause: an
	// interceptor's context.WithCancelCause, the server's base context)
	// ends the stream at once with that error's wsrpc.error event, whether
	// or not the handler is watching ctx, as a WebSocket session closes
	// with its code (watchSession). Any other end leaves the stream to the
	// handler's return, as below. The watch needs no waiting for: the
	// stream's end is claimed once (sseConn), so after end nothing writes.
	unwatch := context.AfterFunc(ctx, func() {
		if cause := sessionCause(ctx); cause != nil {
			_ = conn.closeWith(cause)
		}
	})
	// end never returns while another goroutine's Close (the handler may
	// have left one running) is still writing its end event: ServeHTTP
	// returns after it, and net/http then hands the response's
	// bufio.Writer to another response (see sseConn).
	end = func(err error) {
		conn.over.Store(true) // as on a WebSocket: see sendAfterReturn
		unwatch()
		if ctx.Err() == nil {
			_ = conn.closeWith(err)
		} else if cause := sessionCause(ctx); cause != nil {
			// What the client is told does not depend on whether the
			// handler's return came before the watch.
			_ = conn.closeWith(cause)
		} else {
			conn.drop()
		}
		if hooked {
			return
		}
		hooked = true
		ci := conn.closeInfo(ctx)
		for _, fn := range h.cfg.onClose {
			fn(ctx, info, ci)
		}
	}
	// A panic in a hook, an interceptor or the handler (all on this
	// goroutine) ends the stream with wsrpc.error, even when ctx is done
	// (the error event is what stops clients from reconnecting into the
	// panic), and runs OnClose as an error would. A runtime.Goexit
	// (returned still false, nothing to recover) ends it the same way,
	// with errExited: else the stream was cut without an event, the
	// client reconnected into the handler, and OnClose never ran.
	returned := false
	defer func() {
		if p := recover(); p != nil {
			_ = conn.closeWith(errPanicked)
			end(errPanicked)
			panic(p)
		}
		if !returned {
			_ = conn.closeWith(errExited)
			end(errExited)
		}
	}()
	for _, fn := range h.cfg.onConnect {
		fn(ctx, info)
	}
	end(chainStream(h.cfg.interceptors, h.base(conn))(ctx, conn))
	returned = true
}
