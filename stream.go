package wsrpc

import (
	"context"
	"errors"
	"io"
	"iter"
	"net/http"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// serverConn is the raw stream under a handler's typed stream.
type serverConn interface {
	StreamConn
	closeWith(err error) error
	// closeOwn is closeWith for the handler's Close: it notes when this
	// close is what ended the stream, which ownEnd then reports with the
	// close's error (nil for a normal closure).
	closeOwn(err error) error
	ownEnd() (bool, error)
}

// messages turns a receive function into an iterator that ends at io.EOF
// and yields any other error once, as its last pair. Only a bare io.EOF
// is the clean end: an *Error whose cause wraps io.EOF (an SSE call out
// of reconnection attempts, say) is a failure to yield.
func messages[T any](receive func() (*T, error)) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		for {
			m, err := receive()
			if err == io.EOF {
				return
			}
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

func receiveInto[T any](conn StreamConn) (*T, error) {
	m := new(T)
	if err := conn.Receive(m); err != nil {
		return nil, err
	}
	return m, nil
}

// closeStream is a handler's Close: code and reason; code 0 is a normal
// closure (1000, or wsrpc.end on SSE), which carries no reason, not
// Code(0)'s close code (CloseCode: 4002, unknown). If it is what ends the
// stream, the handler's outcome, as the stream interceptors see it, is
// this close's (see handlerOutcome).
func closeStream(raw serverConn, code Code, reason string) error {
	if code == 0 {
		return raw.closeOwn(nil)
	}
	return raw.closeOwn(&Error{code: code.onWire(), msg: reason}) // a code outside the table travels as unknown
}

// BidiStream is the server side of a bidirectional-streaming call over a
// WebSocket: the handler receives the client's messages and sends its own,
// independently.
//
// The handler learns that the client left through Receive, which returns
// the client's close as an error (io.EOF for a normal closure; canceled
// for 1001, a browser's page going away, RFC 6455 §7.4.1): control
// frames, the close among them, are read by whoever reads the connection
// (RFC 6455 §5.5), so while the handler reads nothing the client's close
// goes unanswered and ctx stays live. A handler that stops reading before
// the client has finished sending (it only sends, or waits on ctx) should
// keep a Receive pending on another goroutine. ctx does end, with OnClose
// reporting 1006, when the runtime closes the connection on its own, as
// keepalive does for a client that is gone. Once Receive has returned
// io.EOF after the client's CloseSend, the stream reads on by itself: the
// client's close is answered and ctx cancelled.
//
// Concurrency: one goroutine at a time may Receive (or range over All);
// any number may Send. Close may be called from any goroutine.
type BidiStream[Req, Res any] struct {
	conn StreamConn
	raw  serverConn
}

// Receive returns the next message; io.EOF when the client has finished
// sending (CloseSend or a normal closure), an *Error when the client
// left otherwise (canceled, say) or sent what the codec cannot decode.
// Once reading has ended, every later Receive returns the same again.
// Cost: one allocation of Req plus the codec's decoding.
func (s *BidiStream[Req, Res]) Receive() (*Req, error) { return receiveInto[Req](s.conn) }

// All yields the client's messages until it finishes sending; a failure is
// yielded once, last.
func (s *BidiStream[Req, Res]) All() iter.Seq2[*Req, error] { return messages(s.Receive) }

// Send marshals msg with the negotiated codec and sends it as one
// WebSocket message. A nil msg is the empty message (see
// ServerStream.Send).
//
// Once the client has ended the stream, Send returns io.EOF after a
// normal end (its close with 1000, or with no status code: 1005), and
// the end's error otherwise (canceled for a client that went away, 1001,
// or cancelled, 4001; unavailable for a lost connection). A handler that
// returns that io.EOF (`if err := s.Send(m); err != nil { return err }`)
// ends cleanly: the stream interceptors get nil, as OnClose reports a
// normal closure. An io.EOF returned while the client is still
// connected is an error (unknown).
//
// Once the handler and its stream interceptors have returned, Send
// fails with failed_precondition ("send after the handler returned")
// and sends nothing, however the stream ended and however far its close
// has got: a goroutine the handler left running gets that one error,
// not whichever of io.EOF, unavailable or canceled the close under way
// would have made its write report.
//
// Send blocks while the client is not reading (TCP's window full), for
// at most the WriteTimeout of WithAcceptOptions (30 s by default,
// websocket.DefaultWriteTimeout) without progress, after which it fails
// and the connection is lost (1006); Sends from other goroutines on the
// stream wait behind it.
func (s *BidiStream[Req, Res]) Send(msg *Res) error { return s.conn.Send(msg) }

// RequestHeader returns the handshake request's header.
func (s *BidiStream[Req, Res]) RequestHeader() http.Header { return s.conn.RequestHeader() }

// ResponseHeader returns the headers sent with the 101 response.
func (s *BidiStream[Req, Res]) ResponseHeader() http.Header { return s.conn.ResponseHeader() }

// Codec returns the negotiated codec.
func (s *BidiStream[Req, Res]) Codec() codec.Codec { return s.conn.Codec() }

// Close closes the connection with the close code for code (4000+code)
// and reason (truncated to 123 bytes). Code 0 closes normally (1000) and
// sends no reason: it is not Code(0).CloseCode(), 4002. The handler's
// return value is then ignored: the stream interceptors get
// this close's *Error (nil for code 0), what the client got, whatever
// the handler returns. Returning an error from the handler does the same.
// A Close after the stream ended otherwise (the client closed first; on
// SSE, the client left) changes nothing.
//
// A Close made after the handler returned, or racing its return (from a
// goroutine the handler left running), is not the handler's outcome:
// the interceptors get what the handler returned unless that Close had
// ended the stream before it returned; the client and OnClose get
// whichever end came first.
func (s *BidiStream[Req, Res]) Close(code Code, reason string) error {
	return closeStream(s.raw, code, reason)
}

// Conn returns the untyped stream (as interceptors see it).
func (s *BidiStream[Req, Res]) Conn() StreamConn { return s.conn }

// WebSocket returns the session's connection, for runtime-level work such
// as subscribing it to a hub topic of Res messages
// (hub.Topic.SubscribeWebSocket), which frames each broadcast once for all
// subscribers instead of encoding it per session. Messages written to it
// directly must be whole messages of the negotiated codec.
func (s *BidiStream[Req, Res]) WebSocket() *websocket.Conn { return rawWebSocket(s.raw) }

// ServerStream is the server side of a server-streaming call, over a
// WebSocket or SSE: the handler sends messages until it returns.
//
// Concurrency: Send, SendEvent and Close may be called from any goroutine.
type ServerStream[Res any] struct {
	conn StreamConn
	raw  serverConn
}

// Send marshals msg and sends it: one WebSocket message, or one SSE event
// (see NewSSEEvent for the event's type and data).
//
// Once the client has ended the stream, Send returns what
// BidiStream.Send does on a WebSocket: io.EOF after the client's normal
// close (1000, or 1005), which returned from the handler is a clean end
// (nil to the stream interceptors), else the end's error. Over SSE a
// client that left is canceled. Once the handler and its stream
// interceptors have returned, Send (and SendEvent) fails with
// failed_precondition on both transports, as BidiStream.Send does.
//
// A nil msg is the empty message, as proto.Marshal and every codec
// encode it: the client receives an empty Res, on a WebSocket and over
// SSE alike. Over SSE a response whose oneof names the event type
// (SSERule) needs a case set to have a type, so the empty message, nil
// or not, fails there with internal (see NewSSEEvent) and nothing is
// sent.
//
// Send blocks while the client is not
// reading, for at most the stream's write timeout without progress
// (WithAcceptOptions' WriteTimeout on a WebSocket, WithSSEOptions' on
// SSE; 30 s by default), Sends from other goroutines waiting behind it.
func (s *ServerStream[Res]) Send(msg *Res) error { return s.conn.Send(msg) }

// SendEvent sends an event made with NewSSEEvent, typically the one a
// replay store returned from Append, so that its id is what a reconnecting
// client resumes from. Events the replay already delivered are dropped
// (see sse.Stream.Send). Its id must be unique across process restarts
// and replicas, not only within a run (see NewSSEEvent): a client that
// resumes from an id another event reused after a restart skips the
// events in between, with no Gap reported. On a WebSocket it fails with
// CodeUnimplemented; an event with the id SSEEndEventID, reserved for the
// end of the stream, fails with CodeInternal: a client resuming from it
// would be told the call is over.
func (s *ServerStream[Res]) SendEvent(ev sse.Event) error {
	sc, ok := s.raw.(*sseConn)
	if !ok {
		return Errorf(CodeUnimplemented, "SendEvent needs an SSE stream")
	}
	if ev.ID == SSEEndEventID {
		return Errorf(CodeInternal, "SendEvent: event id %q is reserved for the end of the stream", ev.ID)
	}
	return sc.sendEvent(ev)
}

// LastEventID returns the id an SSE client resumed from, from its
// Last-Event-ID header or else its lastEventId query parameter (see
// sse.Stream.LastEventID); "" on a WebSocket or for a fresh client.
func (s *ServerStream[Res]) LastEventID() string {
	if sc, ok := s.raw.(*sseConn); ok {
		return sc.stream.LastEventID()
	}
	return ""
}

// Gap reports whether an SSE client resumed from an id the replay store
// no longer holds (see sse.Stream.Gap).
func (s *ServerStream[Res]) Gap() bool {
	if sc, ok := s.raw.(*sseConn); ok {
		return sc.stream.Gap()
	}
	return false
}

// RequestHeader returns the handshake request's header.
func (s *ServerStream[Res]) RequestHeader() http.Header { return s.conn.RequestHeader() }

// ResponseHeader returns the headers sent with the 101 or 200 response.
func (s *ServerStream[Res]) ResponseHeader() http.Header { return s.conn.ResponseHeader() }

// Codec returns the codec messages are sent with.
func (s *ServerStream[Res]) Codec() codec.Codec { return s.conn.Codec() }

// Close ends the stream with code and reason (see BidiStream.Close; on
// SSE a non-zero code sends a "wsrpc.error" event). Code 0 closes
// normally (1000; on SSE the "wsrpc.end" event) and sends no reason.
func (s *ServerStream[Res]) Close(code Code, reason string) error {
	return closeStream(s.raw, code, reason)
}

// Conn returns the untyped stream (as interceptors see it).
func (s *ServerStream[Res]) Conn() StreamConn { return s.conn }

// WebSocket returns the connection of a stream served over WebSocket, or
// nil over SSE (see BidiStream.WebSocket). A handler that subscribes it
// to a hub topic (hub.Topic.SubscribeWebSocket) need not read it: after
// the request the stream reads the connection itself, answering pings
// and cancelling ctx at the client's close, so waiting on ctx or the
// subscription's Done is enough.
func (s *ServerStream[Res]) WebSocket() *websocket.Conn { return rawWebSocket(s.raw) }

// SSE returns the event stream of a stream served as Server-Sent Events,
// or nil over WebSocket: for runtime-level work such as serving it from a
// hub topic's replay store. Events sent on it directly must carry data in
// the stream's codec (protojson).
func (s *ServerStream[Res]) SSE() *sse.Stream {
	if sc, ok := s.raw.(*sseConn); ok {
		return sc.stream
	}
	return nil
}

// rawWebSocket is the runtime connection under a WebSocket stream.
func rawWebSocket(raw serverConn) *websocket.Conn {
	if wc, ok := raw.(*wsConn); ok {
		return wc.ws
	}
	return nil
}

// ClientStream is the server side of a client-streaming call over a
// WebSocket: the handler receives until io.EOF, then returns the one
// response. io.EOF means the client finished its upload with the
// end-of-stream marker (CloseSend; an empty text message from a page); a
// close before the marker, even a normal one (1000, or a browser's
// ws.close() with no status code), is the client abandoning the upload,
// and Receive returns CodeCanceled, so that a handler that commits at
// io.EOF never commits part of the input.
//
// Concurrency: one goroutine at a time may Receive; Close from any.
type ClientStream[Req any] struct {
	conn StreamConn
	raw  serverConn
}

// Receive returns the next message; io.EOF when the client has finished
// sending (its end-of-stream marker); CodeCanceled when it closed normally
// (1000 or 1005) or went away (1001) before the marker; other close codes
// map as on Code.
func (s *ClientStream[Req]) Receive() (*Req, error) { return receiveInto[Req](s.conn) }

// All yields the client's messages until it finishes sending; a failure is
// yielded once, last.
func (s *ClientStream[Req]) All() iter.Seq2[*Req, error] { return messages(s.Receive) }

// RequestHeader returns the handshake request's header.
func (s *ClientStream[Req]) RequestHeader() http.Header { return s.conn.RequestHeader() }

// ResponseHeader returns the headers sent with the 101 response.
func (s *ClientStream[Req]) ResponseHeader() http.Header { return s.conn.ResponseHeader() }

// Codec returns the negotiated codec.
func (s *ClientStream[Req]) Codec() codec.Codec { return s.conn.Codec() }

// Close ends the call with code and reason (see BidiStream.Close)
// without a response. Code 0 is no normal closure here: a
// client-streaming call's only clean end is its response, and a client
// told 1000 without one reads internal ("the server closed without a
// response"), while the stream interceptors and OnClose would report
// success. So Close(0, reason) ends the call with CodeInternal (4013)
// and reason, or, if reason is empty, a message saying the handler
// closed the call without a response, as a handler that returns neither
// a response nor an error does: the client, the interceptors and OnClose
// all report internal.
func (s *ClientStream[Req]) Close(code Code, reason string) error {
	if code == 0 {
		if reason == "" {
			reason = s.conn.Spec().Procedure + ": the handler closed the call without a response"
		}
		code = CodeInternal
	}
	return closeStream(s.raw, code, reason)
}

// Conn returns the untyped stream (as interceptors see it).
func (s *ClientStream[Req]) Conn() StreamConn { return s.conn }

// sseConn is the StreamConn of an SSE call on the server.
//
// Concurrency: Send, closeWith, closeOwn, drop and lost from any
// goroutine (sse.Stream serialises writes, and its CloseWith keeps the
// end event last; mu guards the end state, own included); Receive from
// one; over is atomic, set by serveSSE's end and read by any Send. The
// first of closeWith, closeOwn, drop and lost ends the stream;
// the others wait until it has (done), so that once serveSSE's own call
// returns nothing writes to the ResponseWriter: net/http hands its
// bufio.Writer to the next response when ServeHTTP returns.
type sseConn struct {
	spec       Spec
	stream     *sse.Stream
	codec      codec.Codec   // the handler's JSON codec (sseJSON)
	req        proto.Message // decoded from the URL before the response; nil once received
	received   bool
	reqHeader  http.Header
	respHeader http.Header

	// over: the handler and its stream interceptors have returned
	// (serveSSE's end); Send and SendEvent fail with sendAfterReturn.
	over atomic.Bool

	mu    sync.Mutex
	ended bool
	done  chan struct{} // made with ended, closed once the end has been written
	own   bool          // the end is the handler's Close (closeOwn)
	info  CloseInfo
}

func (c *sseConn) Spec() Spec                  { return c.spec }
func (c *sseConn) Codec() codec.Codec          { return c.codec }
func (c *sseConn) RequestHeader() http.Header  { return c.reqHeader }
func (c *sseConn) ResponseHeader() http.Header { return c.respHeader }

func (c *sseConn) Send(msg any) error {
	m, err := asMessage(msg)
	if err != nil {
		return err
	}
	ev, err := newSSEEvent(c.codec, m, "")
	if err != nil {
		return err
	}
	return c.sendEvent(ev)
}

// sendEvent sends ev, reporting a client that left as canceled and any
// other failure as unavailable. A client that stopped reading until
// WriteTimeout (sse.ErrWriteTimeout) is a lost connection, as on a
// WebSocket (wsConn.writeErr): the stream's end is recorded then (lost),
// whatever the handler returns after, so OnClose reports 1006 and not
// the 4001 of a context that net/http cancelled over the failed write.
// A timeout of a write that is not a Send (a heartbeat's, or one on the
// sse.Stream itself) is recorded the same way when the stream ends (drop).
func (c *sseConn) sendEvent(ev sse.Event) error {
	if c.over.Load() {
		return sendAfterReturn(c.spec.Procedure)
	}
	if err := c.stream.Send(ev); err != nil {
		if errors.Is(err, sse.ErrClientGone) {
			return NewError(CodeCanceled, err)
		}
		werr := NewError(CodeUnavailable, err)
		if errors.Is(err, sse.ErrWriteTimeout) {
			c.lost(werr)
		}
		return werr
	}
	return nil
}

// Receive yields the request decoded from the URL once, then io.EOF.
func (c *sseConn) Receive(msg any) error {
	m, err := asMessage(msg)
	if err != nil {
		return err
	}
	if c.received {
		return io.EOF
	}
	c.received = true
	// A copy of the decoded request through its protobuf encoding, not
	// proto.Merge: Merge skips an implicit-presence float or double
	// holding -0, as if it were unset, where Marshal and Equal do not,
	// so a client's -0 reached the handler as +0. Partial: the request
	// was checked for required fields as the codec decoded it.
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(c.req)
	if err != nil {
		return Errorf(CodeInternal, "sse request: %w", err)
	}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, m); err != nil {
		return Errorf(CodeInternal, "sse request: %w", err)
	}
	// Read once: the handler has its copy, and an idle stream need not
	// keep this one for its life.
	c.req = nil
	return nil
}

// closeWith ends the stream with "wsrpc.end" or "wsrpc.error" once.
func (c *sseConn) closeWith(err error) error { return c.end(err, false) }

// closeOwn is closeWith for the handler's Close (see wsConn.closeOwn). A
// Close that finds the client gone is not the stream's end as the client
// saw it: nothing reached it, and the end is recorded as the client's
// leaving (closeInfo: canceled, 4001), as when the handler returns
// without a Close, and not as the handler's (ownEnd). The WebSocket
// session reports the client's close there, which came first.
func (c *sseConn) closeOwn(err error) error { return c.end(err, true) }

// ownEnd reports whether the handler's Close ended the stream, and with
// what error (nil for wsrpc.end).
func (c *sseConn) ownEnd() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.own, c.info.Err
}

// claim records the stream's end (own, info) and reports true, unless
// it had ended already: then it waits until that end has been written,
// and reports false.
func (c *sseConn) claim(own bool, info CloseInfo) bool {
	c.mu.Lock()
	if c.ended {
		done := c.done
		c.mu.Unlock()
		<-done
		return false
	}
	c.ended, c.done, c.own, c.info = true, make(chan struct{}), own, info
	c.mu.Unlock()
	return true
}

func (c *sseConn) end(err error, own bool) error {
	// The id makes a client that reconnects anyway say it saw the end
	// (see SSEEndEventID).
	ev := sse.Event{Type: SSEEventEnd, ID: SSEEndEventID, Data: "{}"}
	info := CloseInfo{Code: websocket.StatusNormalClosure}
	if err != nil {
		e := asError(err)
		ev = sseErrorEvent(e)
		info = closeInfoFor(e)
	}
	if !c.claim(own, info) {
		return nil
	}
	defer close(c.done)
	// One step, not Send then Close: a Send from a goroutine the handler
	// left running would otherwise slip in after the end event, which
	// clients take for the stream's last.
	serr := c.stream.CloseWith(ev)
	if own && errors.Is(serr, sse.ErrClientGone) {
		// The client left before (or as) the event went out: the
		// stream ended as the client saw it (see closeOwn).
		c.mu.Lock()
		c.own, c.info = false, CloseInfo{}
		c.mu.Unlock()
		return nil
	}
	if errors.Is(serr, sse.ErrWriteTimeout) {
		// The event never reached a client that stopped reading (this
		// write timed out, or an earlier one, a heartbeat's, ended the
		// stream): it will reconnect, and the end is a lost connection,
		// as a Send's timeout is (sendEvent) and a WebSocket close frame
		// that could not be written (wsConn.closeEnd), not the event's.
		werr := NewError(CodeUnavailable, serr)
		c.mu.Lock()
		c.own, c.info = false, CloseInfo{Code: websocket.StatusAbnormalClosure, Err: werr}
		c.mu.Unlock()
		return werr
	}
	if serr != nil && !errors.Is(serr, sse.ErrStreamClosed) {
		return NewError(CodeUnavailable, serr)
	}
	return nil
}

// drop ends the stream without an end event, for a session whose
// context is done (see serveSSE); after an end on another goroutine, it
// waits until that end has been written. A stream whose write timed out
// ends as lost (1006, unavailable), as sendEvent's does: over HTTP/1.1
// net/http cancels the request's context when a write fails, and a
// timed-out write that did not go through sendEvent (a heartbeat's, under
// a handler that only waits on ctx, or one on the sse.Stream itself,
// which ServerStream.SSE hands out) left closeInfo to take the client
// for one that went away (4001). Stream.Err waits for a write in
// progress, so the timed-out write that cancelled the context is seen.
func (c *sseConn) drop() {
	if err := c.stream.Err(); errors.Is(err, sse.ErrWriteTimeout) {
		c.lost(NewError(CodeUnavailable, err))
		return
	}
	c.endWithout(CloseInfo{})
}

// lost ends the stream as a connection lost without an end event (no
// event can reach a client that stopped reading): OnClose reports 1006
// (RFC 6455 §7.1.5's abnormal closure, what a WebSocket reports for the
// same client: wsConn.ended) with err.
func (c *sseConn) lost(err error) {
	c.endWithout(CloseInfo{Code: websocket.StatusAbnormalClosure, Err: err})
}

// endWithout ends the stream with no end event, recording info (zero:
// closeInfo derives it from the context), unless it had ended already:
// then it waits until that end has been written, and records nothing.
func (c *sseConn) endWithout(info CloseInfo) {
	if c.claim(false, info) {
		defer close(c.done)
		_ = c.stream.Close()
	}
}

// closeInfo is how the stream ended, for OnClose. A stream that the
// session's context ended (no end event went out) reports what a
// WebSocket session reports for the same cause: 1001 with ShutdownReason
// and unavailable for Tracker.Shutdown (wsConn.goAway), else the
// context's code, 4004 for a deadline and 4001 when cancelled
// (watchSession). A write that timed out is not derived here: sendEvent
// and drop record it (lost: 1006), even though net/http cancelled the
// context over it.
func (c *sseConn) closeInfo(ctx context.Context) CloseInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() == nil || c.info.Err != nil || c.info.Code != 0 {
		return c.info
	}
	if context.Cause(ctx) == errShutdown {
		return CloseInfo{Code: websocket.StatusGoingAway, Reason: ShutdownReason, Err: errShutdown}
	}
	return closeInfoFor(ctx.Err())
}
