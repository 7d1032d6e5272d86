package wsrpc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// ShutdownReason is the close reason sent with 1001 (going away) to the
// WebSocket sessions a Tracker shuts down; a Poller's and a hub's Shutdown
// send the same.
const ShutdownReason = websocket.ShutdownReason

// A Tracker keeps the live sessions of the handlers built with
// WithTracker, so that one Shutdown call can end them all: http.Server's
// Shutdown neither knows hijacked (WebSocket) connections nor ends
// long-lived responses (SSE streams) by itself.
//
// The zero Tracker is ready to use, as NewTracker's is; a Tracker must
// not be copied once used.
//
// Cost: one map entry per live session, and another per SSE call, and a
// counter per running handler; no goroutine until Shutdown.
//
// Concurrency: safe for concurrent use: handlers add and remove their
// sessions while Len and Shutdown run, from any goroutine.
type Tracker struct {
	mu sync.Mutex // guards the fields below
	// sessions maps each live session to nil, or, once Shutdown has asked
	// it to go away, to a channel closed when that has finished (see
	// remove). Made by the first add, so that the zero Tracker works.
	sessions map[tracked]chan struct{}
	// sse holds the writers of the typed SSE calls under way, from before
	// their handshake to their end, sessions or not yet (sseWriter). Made
	// by the first addSSE.
	sse     map[*sseWriter]struct{}
	running int           // calls in progress: in ServeHTTP, or a detached WebSocket session that left it (WithDetachedSessions)
	closing bool          // Shutdown has begun: refuse new calls
	idle    chan struct{} // closed when running drops to 0 while closing
}

// tracked is one live session. goAway asks it to end: at once it records
// that the session ends with 1001 (a WebSocket's close, an SSE handler's
// cancelled context), after which what the handler returns no longer
// changes what its client is told, and it returns the rest of the going
// away — the closing handshake, which may wait for a stalled write — for
// the caller to run on a goroutine of its own (nil when there is none).
// kill ends the session at once. procedure names the call, for the
// error of a Shutdown whose deadline passes (stuckError).
type tracked interface {
	goAway() (finish func())
	kill()
	procedure() string
}

// NewTracker returns an empty Tracker, the same as a new(Tracker).
func NewTracker() *Tracker {
	return &Tracker{sessions: make(map[tracked]chan struct{})}
}

// WithTracker records every call a handler serves in t, for
// Tracker.Shutdown and Shutdown. After Shutdown has begun, the handlers
// refuse new calls with CodeUnavailable (503). Handler only. Default: no
// tracking.
func WithTracker(t *Tracker) Option {
	return optionFunc(func(c *config) { c.tracker = t })
}

// Len returns the number of live sessions.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}

// enter counts a handler in; false after Shutdown has begun.
func (t *Tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.running++
	return true
}

func (t *Tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running--
	if t.closing && t.running == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
}

// add registers a session; one that starts while Shutdown runs (its
// handshake was under way) is asked to go away at once.
func (t *Tracker) add(s tracked) {
	t.mu.Lock()
	if t.sessions == nil {
		t.sessions = make(map[tracked]chan struct{})
	}
	t.sessions[s] = nil
	closing := t.closing
	t.mu.Unlock()
	if closing {
		// Marked before its handler runs: Shutdown may be closing the
		// hubs, whose ErrClosed must not become this session's end.
		t.goAway(s)
	}
}

// addSSE registers the writer of a typed SSE call about to open; one that
// opens while Shutdown runs has its writes bounded at once, as add asks a
// session to go away.
func (t *Tracker) addSSE(w *sseWriter) {
	t.mu.Lock()
	if t.sse == nil {
		t.sse = make(map[*sseWriter]struct{})
	}
	t.sse[w] = struct{}{}
	closing := t.closing
	t.mu.Unlock()
	if closing {
		w.goAway()
	}
}

// removeSSE drops w, whose call is returning, and keeps a Shutdown that
// took it before from touching the writer, no longer the call's; a bound
// goAway left on the writer is cleared (sseWriter).
func (t *Tracker) removeSSE(w *sseWriter) {
	t.mu.Lock()
	delete(t.sse, w)
	t.mu.Unlock()
	w.mu.Lock()
	w.over = true
	if w.pinned {
		_ = w.rc.SetWriteDeadline(time.Time{}) // goAway's, left by no write of the stream's
	}
	w.mu.Unlock()
}

// goAway asks s to go away (tracked.goAway) and runs the rest of it on a
// goroutine, recording in the session set when it has finished.
func (t *Tracker) goAway(s tracked) {
	// Recorded before s is marked, so that a handler that returns as soon
	// as it is marked finds it.
	done := make(chan struct{})
	t.mu.Lock()
	if _, ok := t.sessions[s]; ok {
		t.sessions[s] = done
	}
	t.mu.Unlock()
	finish := s.goAway()
	if finish == nil {
		close(done)
		return
	}
	go func() {
		defer close(done)
		finish()
	}()
}

// remove drops s, whose handler is returning. If s is going away, remove
// waits for its closing handshake first, bounded by the close timeout:
// the handler's return cancels the session's reads, and the runtime
// drops the connection under a read in progress (a bidirectional
// handler's Receive on a goroutine of its own), maybe before the 1001
// went out — a handler that returned at once, as one following a hub
// topic does when Shutdown closes the hub, would cost its client the
// 1001 (it would see 1006). The handler defers remove after that cancel,
// so remove runs first.
func (t *Tracker) remove(s tracked) {
	t.mu.Lock()
	done := t.sessions[s]
	delete(t.sessions, s)
	t.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Shutdown ends every tracked session gracefully: new calls are refused
// (503), each WebSocket session gets a close frame 1001 (going away) with
// ShutdownReason and its context is cancelled once the closing handshake
// is done, and each SSE handler's context is cancelled, so that its
// response ends without a "wsrpc.end" event: clients reconnect (with
// Last-Event-ID) to whichever server comes next, as they would after 1001;
// its writes, which a cancelled context does not end, are bounded by the
// route's CloseTimeout as a closing handshake is, so that a client that
// stopped reading does not hold Shutdown for the stream's WriteTimeout.
// Every session is marked as ending so before anything is waited for:
// whatever its handler returns from then on (the ErrClosed of a hub
// closed meanwhile) no longer changes what its client is told. Shutdown
// then waits for every handler to return. If ctx is done first,
// it closes the remaining WebSocket connections at once (CloseNow) and
// returns an error that wraps ctx's (errors.Is(err,
// context.DeadlineExceeded) holds after a deadline) and names the
// sessions still running then, by procedure, most first — such as
// "wsrpc: shutdown: context deadline exceeded: 15 sessions still running:
// /pkg.Svc/Feed ×12, /pkg.Svc/Chat ×3" — as their handlers are what held
// it. Those handlers are not stopped: a handler that ignores its context
// keeps running (and its session counts in Len) after its socket is
// closed. SSE responses that are still open end when their HTTP
// connection closes (http.Server.Close; see Shutdown).
//
// It costs one goroutine per session while it runs. Calling it again
// waits again.
func (t *Tracker) Shutdown(ctx context.Context) error {
	return t.shutdown(ctx, nil)
}

// shutdown is Shutdown; marked, when not nil, is called once every
// session has been marked as ending with 1001 (goAway's first half),
// before anything is waited for. A session that starts later is marked
// by add before its handler runs.
func (t *Tracker) shutdown(ctx context.Context, marked func()) error {
	t.mu.Lock()
	t.closing = true
	var idle chan struct{}
	if t.running > 0 {
		if t.idle == nil {
			t.idle = make(chan struct{})
		}
		idle = t.idle
	}
	live := make([]tracked, 0, len(t.sessions))
	for s := range t.sessions {
		live = append(live, s)
	}
	writers := make([]*sseWriter, 0, len(t.sse))
	for w := range t.sse {
		writers = append(writers, w)
	}
	t.mu.Unlock()

	for _, s := range live {
		t.goAway(s)
	}
	for _, w := range writers {
		w.goAway()
	}
	if marked != nil {
		marked()
	}
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	live = live[:0]
	for s := range t.sessions {
		live = append(live, s)
	}
	running := t.running
	t.mu.Unlock()
	for _, s := range live {
		s.kill()
	}
	return stuckError(ctx.Err(), live, running)
}

// maxStuckProcedures bounds the procedures stuckError names: a server
// with many methods stuck at once still gets a one-line error.
const maxStuckProcedures = 5

// stuckError is Tracker.Shutdown's error when ctx ended first: err
// (ctx's) wrapped with the sessions still running, counted by
// procedure, most first, and the handlers still running outside a
// session (in a handshake interceptor, or past their session's end).
// An operator otherwise sees only "context deadline exceeded" and has to
// find the stuck handlers in a goroutine dump.
func stuckError(err error, live []tracked, running int) error {
	count := make(map[string]int)
	for _, s := range live {
		count[s.procedure()]++
	}
	procs := make([]string, 0, len(count))
	for p := range count {
		procs = append(procs, p)
	}
	slices.SortFunc(procs, func(a, b string) int {
		return cmp.Or(cmp.Compare(count[b], count[a]), strings.Compare(a, b))
	})
	var b strings.Builder
	if len(live) > 0 {
		fmt.Fprintf(&b, "%d %s still running: ", len(live), plural(len(live), "session", "sessions"))
		rest := 0
		for i, p := range procs {
			if i >= maxStuckProcedures {
				rest += count[p]
				continue
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s ×%d", p, count[p])
		}
		if n := len(procs) - maxStuckProcedures; n > 0 {
			fmt.Fprintf(&b, " and %d more in %d other %s", rest, n, plural(n, "procedure", "procedures"))
		}
	}
	if other := running - len(live); other > 0 {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d %s in a handshake or ending", other, plural(other, "call", "calls"))
	}
	if b.Len() == 0 {
		return fmt.Errorf("wsrpc: shutdown: %w", err)
	}
	return fmt.Errorf("wsrpc: shutdown: %w: %s", err, b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Shutdowner is something Shutdown stops alongside the tracked sessions:
// a *hub.Hub, whose own endpoints (Topic.WebSocketHandler, SSEHandler) no
// Tracker sees.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// Shutdown stops srv, the sessions t tracks and each of also together,
// within ctx's deadline: srv stops accepting and closes idle connections
// (http.Server.Shutdown) while t ends the WebSocket sessions with 1001 and
// the SSE streams (Tracker.Shutdown), and each of also is shut down — a
// hub sends its own endpoints' clients 1001 and ends its SSE streams
// (hub.Hub.Shutdown), without which srv would wait for those responses
// until ctx is done. The hubs start once t has marked every session as
// ending with 1001, not once its handlers have returned: a typed handler
// that follows a hub topic may then return the hub's ErrClosed, but its
// client is told 1001 (or, on SSE, sees its stream end without an end
// event), which it takes for a reason to reconnect; and a client that
// stopped reading, which holds its handler in a write until the write
// timeout, does not hold back the hubs' clients' 1001. When ctx is done
// before everything has ended, the rest is closed at once (CloseNow for
// WebSockets, http.Server.Close for the other connections) and ctx's
// error is returned; otherwise the first error met. A nil t stops srv
// (and also) alone, for a server whose handlers track nothing (no
// WithTracker): its WebSocket sessions are then left to their handlers,
// and its SSE responses are cut when ctx is done. When ctx is done first
// and t's handlers had not all returned, the error is t's
// (Tracker.Shutdown): ctx's error, naming the sessions still running.
//
// A typical main waits for Shutdown after ListenAndServe, which returns
// as soon as Shutdown begins (srv and tracker are the server and the
// Tracker its handlers were given; ExampleShutdown has it whole):
//
//	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
//	defer stop()
//	stopped := make(chan struct{})
//	go func() {
//		defer close(stopped)
//		<-sig.Done()
//		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//		defer cancel()
//		if err := wsrpc.Shutdown(ctx, srv, tracker); err != nil {
//			log.Print(err)
//		}
//	}()
//	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
//		log.Fatal(err)
//	}
//	<-stopped
func Shutdown(ctx context.Context, srv *http.Server, t *Tracker, also ...Shutdowner) error {
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Shutdown(ctx) }()
	errs := make(chan error, len(also))
	startAlso := func() {
		for _, s := range also {
			go func() { errs <- s.Shutdown(ctx) }()
		}
	}
	var trackerErr error
	if t != nil {
		trackerErr = t.shutdown(ctx, startAlso)
	} else {
		startAlso()
	}
	first := trackerErr
	for range also {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if err := <-srvDone; err != nil && first == nil {
		first = err
	}
	if first != nil {
		_ = srv.Close()
		if ctx.Err() != nil {
			if trackerErr != nil {
				return trackerErr // ctx's error, naming the stuck sessions
			}
			return ctx.Err()
		}
		return first
	}
	return nil
}

// NewHTTPServer returns an http.Server for handler with the limits
// docs/security.md recommends for WebSocket and SSE endpoints: the
// request header must arrive within 10 s (ReadHeaderTimeout) and fit in
// about 16 KiB (MaxHeaderBytes; net/http allows 4 KiB more, and answers
// a larger one 431), and an idle keep-alive
// connection is closed after 2 minutes. ReadTimeout and WriteTimeout stay
// 0. They would not cut long-lived calls: an SSE stream sets and clears
// its own write deadline around each write (sse.StreamOptions), net/http
// clears the read deadline once the request has no body left to read,
// and the WebSocket runtime clears both when it hijacks the connection
// and applies its own limits. But WriteTimeout does cut an SSE stream
// that cannot reach the connection's deadline (behind a middleware
// wrapper with Flush but no Unwrap) or sets none (a negative
// StreamOptions.WriteTimeout), about every WriteTimeout. Set Addr (or
// call Serve) as usual.
func NewHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		IdleTimeout:       2 * time.Minute,
	}
}

// errShutdown is the error of a session Tracker.Shutdown ended, in
// OnClose's CloseInfo with 1001 on WebSocket and SSE alike; on SSE it is
// also the cause of the handler's cancelled context.
var errShutdown = NewError(CodeUnavailable, errors.New("wsrpc: "+ShutdownReason))

// goAway records at once that the stream ends with 1001, so that a
// handler's later return (a hub's ErrClosed) does not change what the
// client is told, and returns the rest: sending 1001 and, once the
// closing handshake is over, cancelling the stream's context so a
// handler busy elsewhere than Receive returns too. When the stream is
// closing already (a second Shutdown's goAway, the handler's end), the
// rest waits for that closing handshake instead, as a second
// websocket.Conn.Close does: cancelling ends the reads in progress
// (ioCtx), and the runtime would drop the connection under the
// handshake, maybe before the close frame went out (the client would see
// 1006).
func (c *wsConn) goAway() func() {
	if ci := (CloseInfo{Code: websocket.StatusGoingAway, Reason: ShutdownReason, Err: errShutdown}); c.markClosed(ci) {
		return func() {
			_ = c.closeRecorded(ci)
			c.cancel()
		}
	}
	return func() {
		_ = c.ws.Close(websocket.StatusGoingAway, ShutdownReason)
		c.cancel()
	}
}

func (c *wsConn) kill() {
	c.ws.CloseNow()
	c.cancel()
}

func (c *wsConn) procedure() string { return c.spec.Procedure }

// sseSession is an SSE call as a Tracker sees it: cancel ends the
// handler's context, with errShutdown as its cause, which OnClose reports;
// spec names the call in a Shutdown's error. stream is the call's event
// stream, whose writes goAway bounds by closeTimeout (the route's
// websocket.AcceptOptions.CloseTimeout; 0 for the websocket default).
type sseSession struct {
	cancel       context.CancelCauseFunc
	spec         Spec
	stream       *sse.Stream
	closeTimeout time.Duration
}

// sseWriter is the ResponseWriter a tracked typed SSE call's stream
// writes through, from before its handshake chain to its end, so that
// Shutdown bounds the writes sse.NewStream makes before the call is a
// session: the replay of a resuming client's backlog (megabytes, for a
// client that resumed from an old id and reads nothing) runs inside the
// chain, before the session is tracked, where sseSession.goAway cannot
// reach it; Shutdown waited for it to time out, 32 KiB at a time, each
// chunk with its own WriteTimeout. The stream sets and clears each
// write's deadline through http.ResponseController, which finds
// SetWriteDeadline here before the writer's own: after goAway no deadline
// is later than the route's CloseTimeout from then, and the write in
// progress gets it at once. A stream whose deadlines are off (a negative
// WriteTimeout) sets none, so goAway sets the bound itself whenever the
// stream has none set: a replay stalled in a write would otherwise hold
// Shutdown to its ctx. removeSSE clears a bound the stream never
// replaced, which must not outlive the call on a kept-alive connection.
type sseWriter struct {
	statusWriter
	rc           *http.ResponseController // the wrapped writer's, past this one
	closeTimeout time.Duration            // as sseSession's

	mu     sync.Mutex // guards the fields below and rc's deadlines
	asked  time.Time  // the stream's deadline: not zero while it writes (or after a failed write)
	bound  time.Time  // goAway's; zero: none
	pinned bool       // goAway set bound on the writer, and the stream has set nothing since
	over   bool       // the call is returning: the writer may serve another response
}

// SetWriteDeadline is the stream's: d, or goAway's bound if earlier. The
// zero time, which the stream sets between writes, stays zero: a quiet
// stream must not be cut (see sse.Stream.SetWriteDeadline).
func (w *sseWriter) SetWriteDeadline(d time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked, w.pinned = d, false
	if !d.IsZero() && !w.bound.IsZero() && w.bound.Before(d) {
		d = w.bound
	}
	return w.rc.SetWriteDeadline(d)
}

// goAway bounds the stream's writes by the close timeout from now, the
// one in progress included.
func (w *sseWriter) goAway() {
	d := w.closeTimeout
	if d <= 0 {
		d = websocket.DefaultCloseTimeout // as websocket.Accept resolves it
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bound = time.Now().Add(d)
	if w.over {
		return
	}
	// With no deadline asked, the stream is between writes, whose next
	// SetWriteDeadline would apply the bound, or its deadlines are off
	// and it never calls it: set now, it bounds a write in progress too.
	if w.asked.IsZero() || w.bound.Before(w.asked) {
		_ = w.rc.SetWriteDeadline(w.bound) // an error shows in the write
		w.pinned = w.asked.IsZero()
	}
}

// goAway cancels the handler's context at once: the stream then ends
// without an end event whatever the handler returns (serveSSE's end).
// A cancelled context does not end a write in progress, though: a client
// that stopped reading held its handler in a write, and Shutdown, for
// the stream's WriteTimeout (30 s by default). So the stream's writes
// get the bound a WebSocket session's closing handshake has, the
// route's CloseTimeout, the same on both transports.
func (s *sseSession) goAway() func() {
	s.cancel(errShutdown)
	d := s.closeTimeout
	if d <= 0 {
		d = websocket.DefaultCloseTimeout // as websocket.Accept resolves it
	}
	s.stream.SetWriteDeadline(time.Now().Add(d))
	return nil
}

// kill cancels, as goAway did; a write in progress stays bounded by
// goAway's deadline. Cutting it now (SetWriteDeadline(time.Now())) would
// also fail the writes to clients that do read which race an expired
// ctx's Shutdown (the handler's next event, a moment after its context
// ended), and their responses would end cut, not cleanly
// (TestShutdownExpiredContext). Past the deadline, wsrpc.Shutdown closes
// the connections anyway (http.Server.Close).
func (s *sseSession) kill() { s.cancel(errShutdown) }

func (s *sseSession) procedure() string { return s.spec.Procedure }
