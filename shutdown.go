package wsrpc

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

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
// Cost: one map entry per live session and a counter per running handler;
// no goroutine until Shutdown.
//
// Concurrency: safe for concurrent use; mu guards the session set and the
// shutdown state.
type Tracker struct {
	mu       sync.Mutex
	sessions map[tracked]struct{}
	running  int           // handlers inside ServeHTTP
	closing  bool          // Shutdown has begun: refuse new calls
	idle     chan struct{} // closed when running drops to 0 while closing
}

// tracked is one live session: goAway asks it to end (1001 on a
// WebSocket, the handler's context cancelled on SSE), kill ends it at once.
type tracked interface {
	goAway()
	kill()
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{sessions: make(map[tracked]struct{})}
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
	t.sessions[s] = struct{}{}
	closing := t.closing
	t.mu.Unlock()
	if closing {
		go s.goAway()
	}
}

func (t *Tracker) remove(s tracked) {
	t.mu.Lock()
	delete(t.sessions, s)
	t.mu.Unlock()
}

// Shutdown ends every tracked session gracefully: new calls are refused
// (503), each WebSocket session gets a close frame 1001 (going away) with
// ShutdownReason and its context is cancelled once the closing handshake
// is done, and each SSE handler's context is cancelled, so that its
// response ends without a "wsrpc.end" event: clients reconnect (with
// Last-Event-ID) to whichever server comes next, as they would after 1001.
// Shutdown then waits for every handler to return. If ctx is done first,
// it closes the remaining WebSocket connections at once (CloseNow) and
// returns ctx's error; SSE responses that are still open then end when
// their HTTP connection closes (http.Server.Close; see Shutdown).
//
// It costs one goroutine per session while it runs. Calling it again
// waits again.
func (t *Tracker) Shutdown(ctx context.Context) error {
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
	t.mu.Unlock()

	for _, s := range live {
		go s.goAway()
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
	t.mu.Unlock()
	for _, s := range live {
		s.kill()
	}
	return ctx.Err()
}

// Shutdowner is something Shutdown stops after the tracked sessions: a
// *hub.Hub, whose own endpoints (Topic.WebSocketHandler, SSEHandler) no
// Tracker sees.
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// Shutdown stops srv and the sessions t tracks together, then each of
// also, within ctx's deadline: srv stops accepting and closes idle
// connections (http.Server.Shutdown) while t ends the WebSocket sessions
// with 1001 and the SSE streams (Tracker.Shutdown); once t's handlers have
// returned, each of also is shut down in turn — a hub sends its own
// endpoints' clients 1001 and ends its SSE streams (hub.Hub.Shutdown),
// without which srv would wait for those responses until ctx is done.
// The order matters: a typed handler that follows a hub topic ends with
// its session's 1001, which its client takes for a reason to reconnect;
// with the hub closed first it would end with the hub's ErrClosed, which
// the client takes for final. When ctx is done before every handler has
// returned, the rest is closed at once (CloseNow for WebSockets,
// http.Server.Close for the other connections) and ctx's error is
// returned. A nil t stops srv (and also) alone, for a server whose
// handlers track nothing (no WithTracker): its WebSocket sessions are then
// left to their handlers, and its SSE responses are cut when ctx is done.
//
// A typical main waits for Shutdown after ListenAndServe, which returns
// as soon as Shutdown begins:
//
//	stopped := make(chan struct{})
//	go func() { defer close(stopped); <-sigCtx.Done(); ctx, c := context.WithTimeout(bg, 10*time.Second); defer c(); wsrpc.Shutdown(ctx, srv, tracker, h) }()
//	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) { … }
//	<-stopped
func Shutdown(ctx context.Context, srv *http.Server, t *Tracker, also ...Shutdowner) error {
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Shutdown(ctx) }()
	var errs []error
	if t != nil {
		errs = append(errs, t.Shutdown(ctx))
	}
	for _, s := range also {
		errs = append(errs, s.Shutdown(ctx))
	}
	errs = append(errs, <-srvDone)
	if err := errors.Join(errs...); err != nil {
		_ = srv.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// NewHTTPServer returns an http.Server for handler with the limits
// docs/security.md recommends for WebSocket and SSE endpoints: the
// request header must arrive within 10 s (ReadHeaderTimeout) and fit in
// 16 KiB (MaxHeaderBytes; larger requests get 431), and an idle keep-alive
// connection is closed after 2 minutes. ReadTimeout and WriteTimeout stay
// 0, since they would cut long-lived SSE responses; upgraded WebSocket
// connections use the runtime's own limits. Set Addr (or call Serve) as
// usual.
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

// goAway sends 1001 and, once the closing handshake is over, cancels the
// stream's context so a handler busy elsewhere than Receive returns too.
// When the stream is closing already (a second Shutdown's goAway, the
// handler's end), it waits for that closing handshake instead, as a
// second websocket.Conn.Close does: cancelling ends the reads in progress
// (ioCtx), and the runtime would drop the connection under the handshake,
// maybe before the close frame went out (the client would see 1006).
func (c *wsConn) goAway() {
	if c.markClosed(CloseInfo{Code: websocket.StatusGoingAway, Reason: ShutdownReason, Err: errShutdown}) {
		_ = closeWS(c.ws, websocket.StatusGoingAway, ShutdownReason)
	} else {
		_ = c.ws.Close(websocket.StatusGoingAway, ShutdownReason)
	}
	c.cancel()
}

func (c *wsConn) kill() {
	c.ws.CloseNow()
	c.cancel()
}

// sseSession is an SSE call as a Tracker sees it: cancel ends the
// handler's context, with errShutdown as its cause, which OnClose reports.
type sseSession struct {
	cancel context.CancelCauseFunc
}

func (s *sseSession) goAway() { s.cancel(errShutdown) }
func (s *sseSession) kill()   { s.cancel(errShutdown) }
