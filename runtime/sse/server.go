package sse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// StreamOptions configures a server Stream. A nil *StreamOptions means
// all defaults.
type StreamOptions struct {
	// Replay, when set, is the store NewStream replays from when the
	// request carries a last event ID (see LastEventID): every event
	// recorded after that id is sent before NewStream returns. Default
	// nil: no replay.
	Replay Store

	// MaxReplayBytes, when positive, bounds what one resumption replays:
	// when the events after the client's id hold more data than that
	// (ids, types and data, counted before encoding), nothing is
	// replayed and Gap reports true, so the handler sends what lets the
	// client start over (a snapshot) instead of the whole backlog. A
	// resumption costs the server the backlog's bytes for an 82-byte
	// request, as often as a client asks (see docs/security.md); this
	// caps it. Default 0: no bound.
	MaxReplayBytes int

	// Heartbeat, when positive, makes the stream write a comment
	// (": heartbeat") whenever it has been idle that long, so proxies and
	// clients see the connection alive; idle counts from the last write,
	// what NewStream writes at open included. It costs one goroutine and
	// one timer per stream. Default 0: no heartbeats.
	Heartbeat time.Duration

	// Retry, when positive, is sent as "retry:" when the stream opens
	// (in place of the opening comment: see NewStream): the client waits
	// that long before reconnecting. Default 0: the client's own default
	// (about 3 s in browsers).
	Retry time.Duration

	// WriteTimeout bounds each write (and flush): a client that does not
	// read for that long fails the send with ErrWriteTimeout instead of
	// blocking the sender.
	// Default 0: DefaultWriteTimeout, applied where the ResponseWriter
	// supports write deadlines (http.ResponseController) and skipped where
	// it does not; a positive value is required to apply (NewStream fails
	// otherwise, before writing anything); a negative value turns
	// deadlines off.
	WriteTimeout time.Duration
}

// DefaultWriteTimeout bounds each write of a Stream whose StreamOptions
// set none, as websocket.DefaultWriteTimeout does for WebSocket frames.
const DefaultWriteTimeout = 30 * time.Second

// Stream is the server side of one event stream: an http.ResponseWriter
// answering a request with text/event-stream (WHATWG HTML §9.2). Every
// event is flushed as soon as it is written. The first failed write ends
// the stream, and every later write returns its error: ErrClientGone for
// a client that left, ErrWriteTimeout for one that stopped reading.
//
// Concurrency: Send, SendPrepared, Comment, Close, CloseWith and Err may
// be called from any goroutine; a mutex serialises writes so events never
// interleave, and CloseWith's event is the last. SetWriteDeadline may be
// called from any goroutine too, concurrently with a write: it does not
// wait for that write, which it bounds. Close (or CloseWith) must be
// called (defer Close) before the handler returns, since a heartbeat must
// not write to a finished response.
//
// The zero Stream is not usable: its writes, Close, CloseWith and Err
// return an error wrapping ErrStreamClosed that names NewStream, and its
// Context is done.
type Stream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	ctx  context.Context
	opts StreamOptions
	// deadlineOptional: WriteTimeout is the default, skipped where the
	// ResponseWriter has no write deadlines.
	deadlineOptional bool

	lastEventID string
	gap         bool

	mu        sync.Mutex
	buf       []byte
	err       error               // sticky write error or ErrStreamClosed
	replayed  map[string]struct{} // ids just replayed, dropped once if sent again
	lastWrite time.Time

	stop chan struct{} // closed by Close and CloseWith (endLocked)
	done chan struct{} // closed when the heartbeat goroutine has exited

	// dmu guards the fields below and every rc.SetWriteDeadline call, so
	// that SetWriteDeadline can move the deadline of a write that holds
	// mu. Lock order: mu, then dmu. writing is only true under mu, so
	// SetWriteDeadline never touches the writer after Close: over
	// HTTP/1.1 the connection may serve the next request by then.
	dmu         sync.Mutex
	deadline    time.Time // SetWriteDeadline's bound; zero: none
	writeBy     time.Time // WriteTimeout's deadline for the write in progress; zero: none
	writing     bool      // a write (and flush) is in progress
	armed       bool      // the writer's deadline may be set (not zero)
	noDeadlines bool      // the writer cannot set deadlines
}

// errZeroStream is what a zero Stream's methods return: it has no
// response to write to, no context and no heartbeat to stop.
var errZeroStream = fmt.Errorf("sse: Stream not created with NewStream: %w", ErrStreamClosed)

// errHead ends the stream that answers a HEAD request (see NewStream).
var errHead = fmt.Errorf("%w: a HEAD request is answered with no body", ErrStreamClosed)

// headDone is the Context of a stream answering HEAD: done, with errHead
// as its cause, so that a handler waiting on it returns.
var headDone = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errHead)
	return ctx
}()

// zeroStreamCtx is a zero Stream's Context: done, with errZeroStream as
// its cause, so that a handler waiting on it returns.
var zeroStreamCtx = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errZeroStream)
	return ctx
}()

// NewStream answers r with an event stream: it sets Content-Type:
// text/event-stream, Cache-Control: no-cache and X-Accel-Buffering: no
// (so nginx-style proxies do not buffer), writes status 200 and flushes.
// If opts.Replay is set and r carries a last event ID (a Last-Event-ID
// header, else a lastEventId query parameter: see LastEventID), it then
// sends every event the store holds after that id (see Gap).
//
// The stream never opens without a body byte: when it has no retry field
// (opts.Retry) and no replayed event to write, NewStream writes the
// comment ": open" and a blank line (8 bytes) with the headers. A proxy
// that holds the response until the first byte of its body (nginx
// towards an HTTP/2 client) otherwise sends the client nothing, not even
// the status, until the first event or heartbeat. Clients ignore it
// (WHATWG HTML §9.2.6); a Session with ShowCommentEvents yields it as an
// event with Comment "open".
//
// A HEAD request gets the same header and no body (RFC 9110 §9.3.2): the
// stream returned has ended already, its Context done and its writes
// failing with an error wrapping ErrStreamClosed, so that the handler
// returns and the connection serves its next request.
//
// Everything that can fail is checked before the status is written, so a
// handler that gets an error can still answer with one (http.Error): a
// client told 200 and an empty stream would reconnect forever. NewStream
// fails with ErrFlushUnsupported when w cannot flush (neither w nor a
// writer it unwraps to, as http.ResponseController walks them, has Flush
// or FlushError); with an error wrapping http.ErrNotSupported when
// opts.WriteTimeout is positive but w cannot set write deadlines (the
// default WriteTimeout is skipped there instead); with an error wrapping
// ErrReplayStore and the store's error when replay fails for a reason
// other than ErrUnknownID (transient: answered with a stream that ends,
// not a status; see ErrReplayStore); and with AppendEvent's error for a
// replayed event it cannot encode.
//
// To deliver every event exactly once across reconnections, the publisher
// appends each event to the store and then hands the returned event to
// the live subscribers, in store order (one publishing goroutine, or both
// steps under one lock); the handler subscribes to the live events before
// calling NewStream and forwards them with Send or SendPrepared
// afterwards. An event both replayed and queued live is then dropped the
// second time (see Send), as is the client's last event queued live (the
// store showed it, to another stream's replay, before the publisher
// handed it on), and none falls between replay and live.
func NewStream(w http.ResponseWriter, r *http.Request, opts *StreamOptions) (*Stream, error) {
	s := &Stream{
		w:           w,
		rc:          http.NewResponseController(w),
		ctx:         r.Context(),
		lastEventID: RequestLastEventID(r),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Retry < 0 || s.opts.Heartbeat < 0 {
		return nil, fmt.Errorf("%w: negative duration in StreamOptions", ErrInvalidRetry)
	}
	switch {
	case s.opts.WriteTimeout == 0:
		s.opts.WriteTimeout = DefaultWriteTimeout
		s.deadlineOptional = true
	case s.opts.WriteTimeout < 0:
		s.opts.WriteTimeout = 0
	}
	// Nothing is written until every check below has passed: once the
	// 200 is out, the handler's error answer is lost.
	if !canFlush(w) {
		return nil, fmt.Errorf("%w: no Flush or FlushError on the writer or any it unwraps to", ErrFlushUnsupported)
	}
	if s.opts.WriteTimeout > 0 && !s.deadlineOptional {
		// Clearing the deadline is harmless and tells whether one can be
		// set; an explicit WriteTimeout must apply (StreamOptions).
		if err := s.rc.SetWriteDeadline(time.Time{}); err != nil {
			return nil, fmt.Errorf("sse: cannot set a write deadline for WriteTimeout %v: %w", s.opts.WriteTimeout, err)
		}
	}
	var replay []Event
	resumed := false // the store holds the client's last event
	if s.opts.Replay != nil && s.lastEventID != "" {
		evs, err := s.opts.Replay.Since(s.lastEventID)
		switch {
		case errors.Is(err, ErrUnknownID):
			s.gap = true
		case err != nil:
			return nil, fmt.Errorf("%w: since %q: %w", ErrReplayStore, s.lastEventID, err)
		default:
			resumed = true
		}
		replay = evs
		if max := s.opts.MaxReplayBytes; max > 0 {
			n := 0
			for _, e := range evs {
				if n += len(e.ID) + len(e.Type) + len(e.Data); n > max {
					replay, s.gap = nil, true
					break
				}
			}
		}
	}
	if s.opts.Retry > 0 {
		s.buf, _ = AppendEvent(s.buf, Event{Retry: s.opts.Retry})
	} else if len(replay) == 0 {
		s.buf = append(s.buf, openWire...)
	}
	if len(replay) > 0 || resumed {
		s.replayed = make(map[string]struct{}, len(replay)+1)
	}
	if resumed {
		// The client has this event, yet it may come live: a publisher
		// whose store shows an event before the event reaches the
		// subscribers (hub.Topic appends outside its subscriber set's
		// lock) queues it to a stream that subscribed in between, from
		// a client that read it in another stream's replay meanwhile;
		// with nothing replayed after it, Send wrote it a second time.
		s.replayed[s.lastEventID] = struct{}{}
	}
	for _, e := range replay {
		// Checked here, written after the 200 (writeReplayLocked): an
		// event no stream can carry is the handler's error, answered 500.
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("sse: replay event %q: %w", e.ID, err)
		}
		s.replayed[e.ID] = struct{}{}
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		// The answer to HEAD is the GET's header and no body (RFC 9110
		// §9.3.2): the stream is over once that is out. Left open, it
		// wrote into nothing (net/http drops a HEAD's body) until the
		// client closed the connection, a handler waiting on Context
		// never returned, and the client's next request on that
		// connection (an uptime check's HEAD, then a GET from the same
		// pool) waited behind it for ever.
		s.err = errHead
		if err := s.rc.Flush(); err != nil {
			s.err = s.writeErr(err)
		}
		s.ctx = headDone
		close(s.stop)
		close(s.done)
		return s, nil
	}

	s.mu.Lock()
	err := s.writeReplayLocked(replay)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.opts.Heartbeat > 0 {
		go s.heartbeat()
	} else {
		close(s.done)
	}
	return s, nil
}

// LastEventID returns the id the client resumes from ("" for a fresh
// client): its Last-Event-ID header (WHATWG HTML §9.2.4), or, when the
// request has none (or an empty one), its lastEventId query parameter. A
// page cannot set headers on an EventSource, and must create a new one
// after the browser gave up for good (a 502, 503 or 504 from a proxy while
// the server restarts, say: WHATWG HTML §9.2.3), which starts with no last
// event ID; it passes the last e.lastEventId it saw as
// ?lastEventId=<id>, the name EventSource polyfills that cannot set
// headers use. The header wins when both are present: the browser sends
// it on its own reconnections, with the newer id, to the same URL. The
// parameter is held to what a header can carry: leading and trailing
// spaces and tabs are trimmed, as from a header field (RFC 9110 §5.5),
// and a value with a control character other than tab, which no header
// could carry (net/http refuses such a header with 400), is ignored, as
// if absent.
func (s *Stream) LastEventID() string { return s.lastEventID }

// RequestLastEventID is the id r resumes from, as NewStream reads it (see
// Stream.LastEventID): the Last-Event-ID header, else the lastEventId
// query parameter, held to what a header can carry. For code that must
// know it before opening a stream. It costs a parse of the query only for
// a request without the header.
func RequestLastEventID(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	if r.URL == nil || r.URL.RawQuery == "" {
		return ""
	}
	id := strings.Trim(r.URL.Query().Get("lastEventId"), " \t")
	if headerValueProblem(id) != "" {
		return ""
	}
	return id
}

// Gap reports whether the client asked to resume from an id the replay
// store does not hold (evicted, or never recorded), or whose backlog
// exceeds StreamOptions.MaxReplayBytes, so the events it missed could not
// be replayed. The handler should then send whatever
// lets the client start over, such as a "reset" event with a snapshot.
func (s *Stream) Gap() bool { return s.gap }

// Context returns the request's context: done when the client goes away
// or the handler returns (a zero Stream's is done already, and so is the
// Context of a stream answering HEAD: see NewStream).
func (s *Stream) Context() context.Context {
	if s.ctx == nil {
		return zeroStreamCtx
	}
	return s.ctx
}

// Err returns the error that ended the stream's writes: nil while the
// stream is live; after a failed write (a Send's, a Comment's or a
// heartbeat's), that write's error, which every later write returns too:
// ErrClientGone for a client that left, ErrWriteTimeout (wrapping the
// write's error) for one that stopped reading; after Close or CloseWith
// of a stream no write had failed on, ErrStreamClosed. A done Context
// with no write since leaves it nil: only a write finds the client gone.
//
// It tells a handler that only waits on Context which of the two ended
// it: over HTTP/1.1 net/http cancels the request's context when any write
// fails, a heartbeat's timed-out write included, so a client that stopped
// reading and one that left both end the context. Cost: a lock, held by a
// write in progress until that write is through.
func (s *Stream) Err() error {
	if s.done == nil {
		return errZeroStream
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// SetWriteDeadline bounds every write (and flush) of the stream, the one
// in progress and those to come, by t, as net.Conn's SetWriteDeadline
// does: each write's deadline becomes the earlier of t and WriteTimeout
// from the write's start. A write it cuts fails as one that timed out,
// with ErrWriteTimeout, and ends the stream. The zero time removes the
// bound. It takes effect at once, also on a write blocked now, which is
// how a server shutting down ends a stream whose client stopped reading
// without waiting WriteTimeout. As WriteTimeout's, the deadline is set
// only while the stream writes: a quiet stream is not reset when t
// passes (over HTTP/2 a deadline is a timer), and what net/http writes
// once the handler has returned (the end of a chunked body) is not cut.
//
// It does nothing where the ResponseWriter cannot set write deadlines
// (http.ResponseController returns http.ErrNotSupported): writes are then
// bounded by nothing. An error setting the deadline (the connection is
// failing) shows in the write. Cost: a lock that writes hold only to set
// and clear their deadline, and a deadline update when a write is in
// progress.
func (s *Stream) SetWriteDeadline(t time.Time) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.deadline = t
	if !s.writing || s.noDeadlines {
		return // the next write's armLocked applies it
	}
	d := earlier(s.writeBy, t)
	if d.IsZero() && !s.armed {
		return
	}
	if err := s.rc.SetWriteDeadline(d); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			s.noDeadlines = true
		}
		return
	}
	s.armed = !d.IsZero()
}

// earlier returns the earlier of a and b, a zero time standing for no
// bound.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Send encodes e (see AppendEvent) and writes and flushes it.
//
// After a replay, an event whose ID was among the replayed ones, or is
// the last event ID the stream resumed from (one the store holds), is
// dropped (Send returns nil, unless the stream has ended) until the
// first event with a new ID is sent: a handler that subscribed to live
// events before NewStream thus sends each event exactly once.
//
// It returns ErrClientGone once the client has disconnected,
// ErrStreamClosed after Close, ErrWriteTimeout (wrapping the write's
// error) when the client stopped reading for WriteTimeout (or past
// SetWriteDeadline's bound), or the write error; a failed write ends the
// stream, and later calls return its error again.
func (s *Stream) Send(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skipLocked(e.ID) {
		return nil
	}
	var err error
	if s.buf, err = AppendEvent(s.buf[:0], e); err != nil {
		return err
	}
	return s.writeLocked(s.buf)
}

// SendPrepared writes an event encoded once with Prepare. It behaves like
// Send, without encoding.
func (s *Stream) SendPrepared(p *Prepared) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skipLocked(p.id) {
		return nil
	}
	return s.writeLocked(p.wire)
}

// Comment writes text as comment lines followed by a blank line. Clients
// ignore comments (WHATWG HTML §9.2.6) unless they ask for comment events.
func (s *Stream) Comment(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = appendLines(s.buf[:0], ":", text)
	s.buf = append(s.buf, '\n')
	return s.writeLocked(s.buf)
}

// Close stops the heartbeat and makes later sends fail with
// ErrStreamClosed. It does not end the response: that happens when the
// handler returns. Close is idempotent and returns nil (but on a zero
// Stream: see Stream).
func (s *Stream) Close() error {
	if s.done == nil {
		return errZeroStream // no heartbeat to stop, nor a stop channel to close
	}
	s.mu.Lock()
	s.endLocked()
	s.mu.Unlock()
	<-s.done
	return nil
}

// endLocked marks the stream closed for every later call and stops its
// heartbeat goroutine; the caller holds mu, then waits for done.
func (s *Stream) endLocked() {
	if s.err == nil {
		s.err = ErrStreamClosed
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// CloseWith sends e as the stream's last event and closes the stream, as
// Send followed by Close would, but under one lock: a Send, SendPrepared
// or Comment from another goroutine comes either before e, or after it
// and then fails with ErrStreamClosed (or with the error that ended the
// stream, as after Close). So a closing event such as "end" or "error"
// is last on the wire. It returns Send's error for e (nothing is written
// if the stream had ended already, or if e does not encode); the stream
// is closed either way. e is never dropped as a replayed event. Cost: as
// Send and Close.
func (s *Stream) CloseWith(e Event) error {
	if s.done == nil {
		return errZeroStream
	}
	s.mu.Lock()
	var err error
	if s.buf, err = AppendEvent(s.buf[:0], e); err == nil {
		err = s.writeLocked(s.buf)
	}
	s.endLocked()
	s.mu.Unlock()
	<-s.done
	return err
}

func (s *Stream) skipLocked(id string) bool {
	if s.replayed == nil || id == "" {
		return false
	}
	if s.err != nil || s.ctx.Err() != nil {
		// The stream has ended: writeLocked reports how (ErrStreamClosed,
		// ErrClientGone…), as Send documents, rather than a nil that
		// reads as delivered.
		return false
	}
	if _, ok := s.replayed[id]; ok {
		return true
	}
	s.replayed = nil
	return false
}

// replayChunk is how much of a replay is written at a time, and
// maxKeptBuf the largest encoding buffer a stream keeps between writes. A
// resumed stream's backlog (a ring of 1,024 events: megabytes) was
// encoded into one buffer that the stream then kept for its lifetime, and
// an attacker resuming from an old id on many connections that read
// nothing held that much server memory per connection (2.27 MB against
// 16.6 KB fresh, from an 82-byte request).
const (
	replayChunk = 32 << 10
	maxKeptBuf  = 64 << 10
)

// writeReplayLocked writes what NewStream prepared in s.buf (a retry
// field, or the opening comment) and the replayed events after it, about
// replayChunk at a time, and flushes, which sends the response header
// with them. The events were validated by NewStream.
func (s *Stream) writeReplayLocked(replay []Event) error {
	for _, e := range replay {
		s.buf, _ = AppendEvent(s.buf, e)
		if len(s.buf) >= replayChunk {
			if err := s.writeLocked(s.buf); err != nil {
				return err
			}
			s.buf = s.buf[:0]
		}
	}
	return s.writeLocked(s.buf)
}

// writeLocked writes b (often s.buf) and flushes, then drops s.buf if one
// large event or a replay grew it past maxKeptBuf.
func (s *Stream) writeLocked(b []byte) error {
	err := s.writeFlushLocked(b)
	if cap(s.buf) > maxKeptBuf {
		s.buf = nil
	}
	return err
}

func (s *Stream) writeFlushLocked(b []byte) error {
	if s.err != nil {
		return s.err
	}
	if s.ctx == nil { // a zero Stream: one branch, not taken by any other
		return errZeroStream
	}
	if s.ctx.Err() != nil {
		s.err = fmt.Errorf("%w: %w", ErrClientGone, context.Cause(s.ctx))
		return s.err
	}
	if err := s.armLocked(); err != nil {
		s.err = err
		return s.err
	}
	err := s.writeOnce(b)
	if derr := s.disarmLocked(err == nil); err == nil {
		err = derr
	}
	if err != nil {
		s.err = err
		return s.err
	}
	s.lastWrite = time.Now()
	return nil
}

// writeOnce writes b and flushes, and returns the error the stream ends
// with if either fails.
func (s *Stream) writeOnce(b []byte) error {
	if len(b) > 0 {
		if _, err := s.w.Write(b); err != nil {
			return s.writeErr(err)
		}
	}
	if err := s.rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) && s.ctx.Err() == nil {
			// A FlushError passing on an inner writer's "cannot": canFlush
			// saw a flusher, and only flushing tells.
			return fmt.Errorf("%w: %w", ErrFlushUnsupported, err)
		}
		return s.writeErr(err)
	}
	return nil
}

// armLocked sets the deadline of the write about to start: the earlier
// of WriteTimeout from now and SetWriteDeadline's bound. The caller
// holds mu.
func (s *Stream) armLocked() error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.writeBy = time.Time{}
	if s.opts.WriteTimeout > 0 {
		s.writeBy = time.Now().Add(s.opts.WriteTimeout)
	}
	d := earlier(s.writeBy, s.deadline)
	if !d.IsZero() && !s.noDeadlines {
		err := s.rc.SetWriteDeadline(d)
		switch {
		case err == nil:
			s.armed = true
		case errors.Is(err, http.ErrNotSupported) && (s.deadlineOptional || s.opts.WriteTimeout == 0):
			// The default WriteTimeout, or SetWriteDeadline's bound
			// alone: skipped where the writer has no deadlines.
			s.opts.WriteTimeout, s.writeBy, s.noDeadlines = 0, time.Time{}, true
		default:
			return fmt.Errorf("sse: set write deadline: %w", err)
		}
	}
	s.writing = true
	return nil
}

// disarmLocked ends the write armLocked began and, after one that went
// through (ok), clears its deadline: the deadline bounds this write, not
// the quiet until the next one, and over HTTP/2 a deadline left set is a
// timer that resets the stream when it fires, writing or not. A failed
// write leaves its deadline: the stream has ended. The caller holds mu.
func (s *Stream) disarmLocked(ok bool) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.writing, s.writeBy = false, time.Time{}
	if !ok || !s.armed {
		return nil
	}
	if err := s.rc.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("sse: clear write deadline: %w", err)
	}
	s.armed = false
	return nil
}

// canFlush reports whether http.ResponseController.Flush would find a
// flusher: w or a writer it unwraps to (Unwrap() http.ResponseWriter)
// with FlushError or Flush, looked for in the controller's order. It
// writes nothing, so NewStream can still fail with an error status.
func canFlush(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case interface{ FlushError() error }, http.Flusher:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// writeErr is the error a failed write or flush ends the stream with. A
// timeout is ErrWriteTimeout even when the context is done by then: over
// HTTP/1.1 net/http cancels the request's context when a write fails
// (any write, a timed-out one too), and a client that stopped reading
// would read as one that left.
func (s *Stream) writeErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrWriteTimeout, err)
	}
	if s.ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	return fmt.Errorf("sse: write: %w", err)
}

var heartbeatWire = []byte(": heartbeat\n\n")

// openWire is what a stream writes at open when it has nothing else to
// (see NewStream): a comment, which WHATWG HTML §9.2.6 has clients ignore
// ("If the line starts with a U+003A COLON character (:) — Ignore the
// line."), and a blank line, which dispatches nothing since no data came
// before it. It carries a text, as heartbeatWire does, so that a client
// showing comments (ShowCommentEvents, `wsrpc sse --show-comments`) can
// tell what it is: an empty comment would reach it as a comment event
// with no text at all.
var openWire = []byte(": open\n\n")

func (s *Stream) heartbeat() {
	defer close(s.done)
	interval := s.opts.Heartbeat
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		idle := time.Since(s.lastWrite)
		if idle >= interval {
			if s.writeLocked(heartbeatWire) != nil {
				s.mu.Unlock()
				return
			}
			idle = 0
		}
		s.mu.Unlock()
		t.Reset(interval - idle)
	}
}
