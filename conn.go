package wsrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc/internal/netfail"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// bufPool holds marshal buffers; a buffer goes back as soon as the
// message is written, since Conn.Write copies what it sends.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledBuf keeps one huge message from pinning its buffer in the pool.
const maxPooledBuf = 64 << 10

// largeBufs holds the read and marshal buffers of messages over
// maxPooledBuf, by size class: class k holds buffers of capacity at least
// 1<<k. A stream keeps a read buffer up to maxPooledBuf of its own
// (rbuf), and marshals into bufPool's; a larger one would pin a message's
// size for the connection's life, and dropped, the next large message
// grew a new one by doubling (from 64 KiB on a read: the runtime caps
// each growth so that a frame header alone pins no memory): 3–4 bytes
// allocated and copied per byte of a 4 MiB upload. A stream whose last
// message was large takes a buffer of that class from here (rhint,
// shint) and gives it back once the message is decoded, or written;
// idle, the buffers go with the garbage collector, as sync.Pool's do.
var largeBufs [48]sync.Pool

// getLargeBuf returns a buffer of capacity at least n (n >
// maxPooledBuf), from the pool or new.
func getLargeBuf(n int) *[]byte {
	k := bits.Len(uint(n - 1)) // 1<<k >= n
	if k >= len(largeBufs) {
		return nil
	}
	if b, ok := largeBufs[k].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1<<k)
	return &b
}

// putBuf gives a marshal buffer back to bufPool, or to largeBufs.
func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		putLargeBuf(b)
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// putLargeBuf gives b back, by the class its capacity fills.
func putLargeBuf(b *[]byte) {
	// getLargeBuf asks for classes above maxPooledBuf's, so a buffer
	// under twice its size (65–128 KiB) would never be taken: dropped.
	k := bits.Len(uint(cap(*b))) - 1 // 1<<k <= cap
	if cap(*b) >= 2*maxPooledBuf && k < len(largeBufs) {
		*b = (*b)[:0]
		largeBufs[k].Put(b)
	}
}

func asMessage(msg any) (proto.Message, error) {
	m, ok := msg.(proto.Message)
	if !ok || m == nil {
		return nil, Errorf(CodeInternal, "%T is not a protobuf message", msg)
	}
	return m, nil
}

// wsConn is one WebSocket stream, for either side: the StreamConn that
// interceptors see on a server, and the engine of the client streams.
//
// Concurrency: Send from any goroutine (the runtime serialises writes);
// Receive from one goroutine at a time (rbuf and recvErr are its own);
// closeWith, closeOwn (a handler's Close, from any goroutine), abort and
// the close bookkeeping are guarded by mu (watch too: a handler's Receive
// may start the watcher on another goroutine than the one that waits for
// it; and receiving and lostErr, which watchLost's callback reads on a
// goroutine of its own); released is atomic because release runs on the
// receiving goroutine while others may be in Send, resetWrite because
// any Send may set it while serveWebSocket's end reads it, shint
// because any Send sets it, and over because the session's end sets it
// while a goroutine the handler left running may Send; unwatch, call,
// answered, ioCtx and the cancel functions are set before the connection
// is shared; aborting and detached (guarded by mu) decide whether detach
// or abort's goroutine cancels ioCtx. On a client-streaming call
// readAnswer is the one reader: answer, gotAnswer and answerErr are its
// until it closes answered, and read only after.
type wsConn struct {
	spec       Spec
	codec      codec.Codec
	ws         *websocket.Conn
	ctx        context.Context
	cancel     context.CancelFunc // ends ctx and ioCtx
	cancelCtx  context.CancelFunc // ends ctx alone
	ioCtx      context.Context    // of reads and writes (see newWSConn)
	cancelIO   context.CancelFunc // ends ioCtx alone
	msgType    websocket.MessageType
	reqHeader  http.Header
	respHeader http.Header
	info       *ConnInfo
	onClose    []func(context.Context, *ConnInfo, CloseInfo)
	// unwatch stops the client's watch on the call's context, call (see
	// watchCall); both nil on a server.
	unwatch func() bool
	call    context.Context

	rbuf  []byte
	rhint int          // the length of the last message read: see largeBufs
	shint atomic.Int64 // the length of the last message marshalled: see largeBufs
	// recvErr, once set, is how reading ended: io.EOF for a clean end
	// (the end-of-stream marker, a normal closure), else the error. Every
	// later Receive returns it again, so that a call that failed never
	// reads as one that ended cleanly.
	recvErr error

	// answered is closed by readAnswer once a client-streaming call's
	// server has ended it; answer (its response, if any: gotAnswer, as an
	// empty response may be nil) and answerErr are readAnswer's until
	// then. nil on other streams.
	answered  chan struct{}
	answer    []byte
	gotAnswer bool
	answerErr error

	mu        sync.Mutex
	closed    bool       // the end is recorded; the socket is closed or closing
	closeInfo CloseInfo  // how the stream ended
	hooked    bool       // onClose hooks have run
	watch     chan error // closed when the peer watcher exits (server side)
	aborting  bool       // abort's closing handshake is running
	detached  bool       // detach ran: ioCtx ends once aborting is over
	local     bool       // the end recorded is the client's Close or CloseWith (closeLocal)
	own       bool       // the end recorded is a server handler's Close (closeOwn)
	ownErr    error      // what that Close ended the stream with: nil for 1000
	// peerEnd is the end a client's Receive reported as the server's
	// though this side's Close had marked the stream (local): a close
	// code of the server's own (serverEnd), or one that came as Close
	// crossed Receive's check. localEnd returns it, so that a later Send
	// reports the end Receive did.
	peerEnd error
	// A server's reader (Receive, the peer watcher) is reading the
	// connection, and reports its end itself; lostErr is the runtime's
	// close that came meanwhile, for a Receive that read a message
	// instead (connClosed, endRead).
	receiving bool
	lostErr   error

	released   atomic.Bool           // release cancelled ctx after the stream ended
	resetWrite atomic.Pointer[error] // a server write the peer reset: set once by writeErr, read by serveWebSocket's end
	// over is set once a server session's handler and stream
	// interceptors have returned (wsSession.session's end): from then on
	// Send fails with sendAfterReturn, whatever the close under way has
	// reached.
	over atomic.Bool
}

func newWSConn(ctx context.Context, spec Spec, c codec.Codec, ws *websocket.Conn, reqHeader, respHeader http.Header, cfg *config, remote string) *wsConn {
	ctx, cancelCtx := context.WithCancel(ctx)
	// Both sides read and write with a context only the connection's own
	// end (cancel, detach) ends, not the call's or session's: the runtime
	// drops the TCP connection, without a close frame, when the context
	// of a read or write in progress ends, and the peer would see 1006, a
	// lost connection it retries. The context ending is a close with its
	// code instead (watchSession, watchCall), which also ends a read or
	// write in progress, with the peer's answer or the close timeout.
	ioCtx, cancelIO := context.WithCancel(context.Background())
	cancel := func() { cancelCtx(); cancelIO() }
	typ := websocket.MessageText
	if c.Binary() {
		typ = websocket.MessageBinary
	}
	return &wsConn{
		spec: spec, codec: c, ws: ws, ctx: ctx, cancel: cancel, cancelCtx: cancelCtx,
		ioCtx: ioCtx, cancelIO: cancelIO, msgType: typ,
		reqHeader: reqHeader, respHeader: respHeader, onClose: cfg.onClose,
		info: &ConnInfo{Spec: spec, Codec: c, RequestHeader: reqHeader, RemoteAddr: remote},
	}
}

func (c *wsConn) Spec() Spec                  { return c.spec }
func (c *wsConn) Codec() codec.Codec          { return c.codec }
func (c *wsConn) RequestHeader() http.Header  { return c.reqHeader }
func (c *wsConn) ResponseHeader() http.Header { return c.respHeader }

func (c *wsConn) Send(msg any) error {
	if c.over.Load() {
		return sendAfterReturn(c.spec.Procedure)
	}
	m, err := asMessage(msg)
	if err != nil {
		return err
	}
	if c.spec.IsClient {
		if err := c.ctx.Err(); err != nil {
			// The call has ended (its context, Close, release): what a
			// write with ctx would have said, with nothing written.
			return c.writeErr(err)
		}
	}
	var bp *[]byte
	if n := int(c.shint.Load()); n > maxPooledBuf {
		bp = getLargeBuf(n)
	}
	if bp == nil {
		bp = bufPool.Get().(*[]byte)
	}
	b, err := c.codec.MarshalAppend((*bp)[:0], m)
	if err != nil {
		putBuf(bp)
		// A client's message is the caller's own mistake (a proto2
		// required field unset, invalid UTF-8 in a proto3 string), as it
		// is over SSE; a handler's response is the server's.
		code := CodeInternal
		if c.spec.IsClient {
			code = CodeInvalidArgument
		}
		return Errorf(code, "marshal %s: %w", c.codec.Name(), err)
	}
	if len(b) == 0 && c.msgType == websocket.MessageText {
		// An empty text message is the end-of-stream marker (closeSend):
		// written, the peer would read io.EOF and drop every later
		// message, while each Send here returned nil. A text codec must
		// never produce one (codec.Codec.Binary), so the codec is at
		// fault, on either side: internal, and nothing is written, so
		// the stream goes on.
		putBuf(bp)
		return Errorf(CodeInternal, "text codec %s encoded %s as an empty message, which is wsrpc's end-of-stream marker: not sent", c.codec.Name(), m.ProtoReflect().Descriptor().FullName())
	}
	err = c.ws.Write(c.ioCtx, c.msgType, b)
	c.shint.Store(int64(len(b)))
	*bp = b
	putBuf(bp)
	if err != nil {
		return c.writeErr(err)
	}
	return nil
}

// sendAfterReturn is what a server stream's Send returns once the
// handler and its stream interceptors have returned, on WebSocket and SSE
// alike: the call is over, and nothing is written. Without it a Send from
// a goroutine the handler left running returned io.EOF, unavailable or
// canceled depending on how far the session's close had got (ioCtx
// cancelled, the close frame out, the client gone). failed_precondition,
// as a client's Send after CloseSend: the stream is not in a state to
// send, whoever ended it.
func sendAfterReturn(procedure string) *Error {
	return Errorf(CodeFailedPrecondition, "%s: send after the handler returned", procedure)
}

// Receive reads the next message. An empty text message is the peer's
// end-of-stream marker (CloseSend): it and everything after it read as
// io.EOF, as does a normal closure (1000, or 1005), except in a
// client-streaming handler before the marker (see abandonedUpload). Once
// reading has failed, every later Receive returns the same error.
func (c *wsConn) Receive(msg any) error {
	m, err := asMessage(msg)
	if err != nil {
		return err
	}
	if c.recvErr != nil {
		return c.recvErr
	}
	if c.spec.IsClient {
		if err := c.ctx.Err(); err != nil {
			// As in Send: the call has ended; nothing is read.
			if c.closedLocally() {
				c.recvErr = c.callErr(c.localEnd())
			} else {
				c.recvErr = c.readErr(err)
			}
			return c.recvErr
		}
	}
	if !c.spec.IsClient {
		c.beginRead()
	}
	dst := c.rbuf[:0]
	var large *[]byte // a buffer from largeBufs, or for one
	if c.rhint > maxPooledBuf {
		if large = getLargeBuf(c.rhint); large != nil {
			dst = *large
		}
	}
	typ, data, err := c.ws.ReadAppend(c.ioCtx, dst)
	if err != nil {
		if large != nil {
			putLargeBuf(large)
		}
		if c.spec.IsClient && c.closedLocally() && !c.serverEnd(err) {
			// A read in progress when this side's Close or CloseWith
			// ended the call ends with what that close caused: the
			// server's echo of it (RFC 6455 §5.5.1: io.EOF for Close's
			// 1000, the bare code for CloseWith's), or the context
			// the close cancelled. It reports the close, as a Receive
			// after it does (and, kept in recvErr, every later one):
			// the echo's io.EOF would read as the handler's clean end.
			// A close code of the server's own that came first is the
			// server's end (serverEnd), as for CloseAndReceive.
			c.recvErr = c.callErr(c.localEnd())
		} else {
			end := c.readErr(err)
			if errors.Is(err, context.Canceled) {
				// Close or release cancelled ioCtx under this read once
				// another goroutine had recorded the end (a Send that met
				// the server's close frame first; Close then finds the
				// stream closed, and marks nothing): the read reports
				// that end, as a write does (writeErr), not the "context
				// canceled" of a context the caller never cancelled. On
				// a server ioCtx ends only with the session (cancel: the
				// runtime closed a connection nothing was reading,
				// connClosed), after its end is recorded: a handler that
				// learnt of it from ctx and then reads gets that end
				// (1006: unavailable), as its Send does, not canceled.
				c.mu.Lock()
				if c.closed {
					if end = c.closeInfo.Err; end == nil {
						end = io.EOF
					}
				}
				c.mu.Unlock()
			}
			if c.spec.IsClient {
				// The server's end, or the connection lost, before this
				// side's Close: if that Close marked the stream as its
				// own meanwhile (it crossed the check above), or a close
				// code of the server's own came first (serverEnd), Send
				// reports this end too (localEnd), not the close.
				c.mu.Lock()
				c.peerEnd = end
				c.mu.Unlock()
			}
			c.recvErr = c.callErr(end)
		}
		if !c.spec.IsClient {
			// Only now that the end is recorded: the runtime's close of
			// the connection, which follows the failure it reports here,
			// would otherwise be taken by connClosed in between, with
			// its own wording of it (OnClose's reason read "connection
			// closed: …" where the close frame said "…", 2–4% of runs).
			c.endRead(err)
		}
		if c.recvErr == io.EOF && c.spec.StreamType == StreamTypeClient && !c.spec.IsClient {
			c.recvErr = c.abandonedUpload()
		}
		if !c.spec.IsClient {
			// A failed read is the connection's end (the client's close
			// frame, its cancel 4001 or deadline 4004, a lost connection,
			// a frame the runtime refused), and it ends the handler's
			// context as the peer watcher's or watchLost's read does
			// (docs/protocol.md §3.5): a handler that reads on one
			// goroutine and waits on ctx on another, as codegen.md
			// advises, otherwise waited for good, its session never over.
			// After the end is recorded, so that a Send or ctx.Err()
			// that follows reports it (writeErr, handlerOutcome).
			c.cancel()
		}
		return c.recvErr
	}
	if !c.spec.IsClient {
		c.endRead(nil)
	}
	c.rhint = len(data)
	if cap(data) <= maxPooledBuf {
		c.rbuf = data[:0]
	} else {
		// Given back once decoded: the codec copies what it keeps.
		if large == nil {
			large = new([]byte)
		}
		*large = data
		defer putLargeBuf(large)
	}
	if typ == websocket.MessageText && len(data) == 0 {
		c.recvErr = io.EOF
		if !c.spec.IsClient {
			// Half-closed: nothing would read the connection any more,
			// so the client's close frame would go unanswered (its Close
			// waiting out the close timeout) and ctx would live on.
			c.watchPeer()
		}
		return io.EOF
	}
	return c.decode(data, m)
}

// beginRead and endRead bracket a server Receive's read: while it reads,
// the runtime's close of the connection is left to it (connClosed), as it
// reports the end itself. If it read a message instead, the close came
// after it, and the handler may not read again (it only sends, waiting on
// ctx): endRead ends the session then.
func (c *wsConn) beginRead() {
	c.mu.Lock()
	c.receiving = true
	c.mu.Unlock()
}

func (c *wsConn) endRead(err error) {
	c.mu.Lock()
	c.receiving = false
	lost := c.lostErr
	c.lostErr = nil
	c.mu.Unlock()
	if lost != nil && err == nil {
		c.lost(lost)
	}
}

// endedByClient reports whether the stream has ended with the client's
// normal closure (1000, or 1005: a close frame with no status code), a
// clean end (no Err recorded: not an upload abandoned before its marker,
// see abandonedUpload). On a server the only other normal closure is the
// handler's own Close (own), which handlerOutcome reports first.
func (c *wsConn) endedByClient() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	code := c.closeInfo.Code
	return c.closed && !c.own && c.closeInfo.Err == nil &&
		(code == websocket.StatusNormalClosure || code == websocket.StatusNoStatusRcvd)
}

// abandonedUpload is what a client-streaming handler's Receive reports
// for a normal closure (1000, or 1005: no status code) that came before
// the end-of-stream marker: canceled, not io.EOF. Only the marker says an
// upload is finished; a page that gives up half-way closes the way
// browsers do by default (ws.close(), ws.close(1000)), and a handler that
// reads to io.EOF and then commits would commit part of the input. A
// bidirectional stream keeps io.EOF: a normal closure is its client's
// normal end. The close recorded for OnClose keeps the code that came
// (RFC 6455 §7.1.5) and gets the same error, unless this side had closed
// first, whose error then stands for both.
func (c *wsConn) abandonedUpload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeInfo.Err == nil {
		c.closeInfo.Err = Errorf(CodeCanceled, "%s: the client closed before finishing its upload (no end-of-stream marker)", c.spec.Procedure)
	}
	return c.closeInfo.Err
}

// decode unmarshals one message with the stream's codec. A peer may
// learn of the error only from the close reason, its first 123 bytes
// (RFC 6455 §5.5), so the prefix is short and leaves the codec's name to
// an error that starts with it, as the built-in codecs' errors do
// ("bad message: msgpack: field seq (…): float where int64 expected: 1.5").
func (c *wsConn) decode(data []byte, m proto.Message) error {
	if err := c.codec.Unmarshal(data, m); err != nil {
		name := c.codec.Name()
		if strings.HasPrefix(err.Error(), name+":") {
			return Errorf(CodeInvalidArgument, "bad message: %w", err)
		}
		return Errorf(CodeInvalidArgument, "bad %s message: %w", name, err)
	}
	return nil
}

// readAnswer reads a client-streaming call's connection from its start,
// so that the server's answer is seen when it comes, not once the client
// has sent everything: a handler that fails early closes with its code,
// the close is answered at once (RFC 6455 §5.5.1), and the next Send
// reports the handler's error. Without a reader the close went
// unanswered while the client uploaded on, until the server's close
// timeout dropped the connection and the client saw a broken pipe
// (unavailable, which invites a retry) instead of the handler's code.
// It also answers pings during a long upload. It returns once the
// connection has ended: after the response, the server's normal closure.
func (c *wsConn) readAnswer() {
	defer close(c.answered)
	// This read is always in progress, so it must not end with the
	// call's context: the runtime would drop the TCP connection under it
	// when the context ends, racing watchCall's close frame, and the
	// handler would see 1006 instead of canceled (4001). watchCall's
	// close, or any other, ends it.
	ctx := context.WithoutCancel(c.ctx)
	typ, data, err := c.ws.ReadAppend(ctx, nil)
	if err != nil {
		c.answerErr = c.readErr(err)
		return
	}
	if typ == websocket.MessageText && len(data) == 0 {
		c.answerErr = io.EOF // an end-of-stream marker: no response
	} else {
		c.answer, c.gotAnswer = data, true
	}
	if _, _, err := c.ws.Read(ctx); err != nil {
		if err = c.readErr(err); !errors.Is(err, io.EOF) {
			c.answerErr = err
		}
		return
	}
	_ = c.closeWith(Errorf(CodeInvalidArgument, "%s: more than one response", c.spec.Procedure))
	c.answerErr = Errorf(CodeInternal, "%s: the server sent more than one response", c.spec.Procedure)
}

// answeredErr is what a write reports once readAnswer has returned: how
// the server ended the call, or io.EOF when it answered (the response
// waits for CloseAndReceive) or closed normally.
func (c *wsConn) answeredErr() error {
	if c.answerErr != nil {
		return c.answerErr
	}
	return io.EOF
}

// closeSend sends the end-of-stream marker: an empty text message, which
// no codec produces for a message (JSON's empty message is "{}"; the
// binary codecs use binary frames).
func (c *wsConn) closeSend() error {
	err := c.ctx.Err() // as in Send
	if err == nil {
		err = c.ws.Write(c.ioCtx, websocket.MessageText, nil)
	}
	if err != nil {
		return c.writeErr(err)
	}
	return nil
}

// transportErr records a close by the peer and translates err (on a
// server, a client's 1001 as wentAway says). A close frame this side's
// runtime sent first is recorded instead (sentEnd).
func (c *wsConn) transportErr(err error) error {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return wireError(err)
	}
	own, sent := c.runtimeClose()
	c.mu.Lock()
	defer c.mu.Unlock()
	gone := c.wentAway(ce)
	if !c.closed {
		c.closed = true
		if own != nil && sent {
			c.closeInfo = sentEnd(own, sent)
		} else {
			c.closeInfo = CloseInfo{Code: ce.Code, Reason: ce.Reason}
			switch {
			case gone != nil:
				c.closeInfo.Err = gone
			case CodeFromCloseCode(ce.Code) != 0:
				c.closeInfo.Err = fromClose(ce)
			}
		}
	}
	if gone != nil {
		return gone
	}
	return wireError(err)
}

// runtimeClose is the close frame the runtime sent, or tried to, when it
// began the closing handshake beneath this layer (websocket.Conn.
// CloseSent), before this stream recorded an end: nil once one is
// recorded, since the close that recorded it is this layer's (or it came
// from the peer).
func (c *wsConn) runtimeClose() (*websocket.CloseError, bool) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, false
	}
	return c.ws.CloseSent()
}

// sentEnd is the end of a stream whose connection this side's runtime
// began to close, under this layer: a hub's Close of a slow consumer
// (1013 "slow consumer"), a Close on the stream's WebSocket. The peer's
// answer echoes the code alone (RFC 6455 §5.5.1), so its reason is this
// side's close frame's: what went on the wire, which OnClose reports.
// Unsent when that frame never went out (the peer saw 1006).
func sentEnd(own *websocket.CloseError, sent bool) CloseInfo {
	ci := CloseInfo{Code: own.Code, Reason: own.Reason, Unsent: !sent}
	if CodeFromCloseCode(own.Code) != 0 {
		ci.Err = fromClose(own)
	}
	return ci
}

// wentAway is what a server reads for the client's close frame with 1001
// (going away): CodeCanceled, the client leaving, not the unavailable
// CodeFromCloseCode maps 1001 to. A browser closes a page's WebSockets
// with 1001 when the page goes away (RFC 6455 §7.4.1: "a browser having
// navigated away from a page"; a tab closed or reloaded), which is no
// outage of the server's: the same page's SSE stream reads as canceled
// (4001) then, and metrics counted every closed tab as unavailable. The
// close recorded for OnClose keeps 1001, the code that came. A client
// reading a server's 1001 (Tracker.Shutdown) keeps unavailable, which it
// retries, and so does a server reading the echo (RFC 6455 §5.5.1) of
// its own 1001, goAway's. nil for any other close. Caller holds mu.
func (c *wsConn) wentAway(ce *websocket.CloseError) error {
	if c.spec.IsClient || ce.Code != websocket.StatusGoingAway ||
		(c.closed && c.closeInfo.Err == errShutdown) {
		return nil
	}
	if ce.Reason != "" {
		return &Error{code: CodeCanceled, msg: ce.Reason, err: ce}
	}
	return &Error{code: CodeCanceled, msg: c.spec.Procedure + ": the client went away (1001)", err: ce}
}

// readErr is transportErr for a failed read, which may also be the
// runtime failing the connection over what the peer sent (RFC 6455
// §7.1.7): it has sent its own close frame then, and the stream records
// that code, not the one the handler's error would map to, so that
// OnClose reports what went on the wire.
func (c *wsConn) readErr(err error) error {
	code := websocket.FailureStatus(err)
	if code < 0 && connectionLost(err) {
		// The TCP connection ended without a close frame: no close frame
		// of ours can reach the peer any more, so the stream ends as
		// 1006 (RFC 6455 §7.1.5), which OnClose reports, not as the
		// 4000+code of the error the handler then returns.
		code = websocket.StatusAbnormalClosure
	}
	if code < 0 {
		var ce *websocket.CloseError
		if !errors.As(err, &ce) && errors.Is(err, websocket.ErrClosed) {
			// The connection was closed beneath this layer with no close
			// frame from the peer: the runtime's Close, which a peer that
			// does not answer lets run out its close timeout, or whose
			// frame a write to a peer that stopped reading held back.
			// Reads fail so only once the connection is closed: its
			// close frame's fate is known (sent or not) by now.
			if own, sent := c.runtimeClose(); own != nil {
				c.mu.Lock()
				if !c.closed {
					c.closed = true
					c.closeInfo = sentEnd(own, sent)
				}
				c.mu.Unlock()
			}
		}
		return c.transportErr(err)
	}
	werr := wireError(err)
	reason := ""
	if code != websocket.StatusAbnormalClosure {
		reason = websocket.CloseReason(err.Error())
	}
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.closeInfo = CloseInfo{Code: code, Reason: reason, Err: werr}
	}
	c.mu.Unlock()
	return werr
}

// connectionLost says whether a read failed because the TCP connection
// is gone (the peer closed or reset it without a close frame, RFC 6455
// §7.1.5's 1006), rather than over a close frame, a context, or a close
// of the connection (ours, or one whose cause an earlier read reported).
func connectionLost(err error) bool {
	if errors.Is(err, websocket.ErrPongTimeout) {
		return true // keepalive closed it: no pong, the path is gone
	}
	var ce *websocket.CloseError
	return !errors.As(err, &ce) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, websocket.ErrClosed)
}

// writeErr is transportErr for a failed write. Once release has cancelled
// ctx every write fails with context.Canceled; the caller is told how the
// stream ended instead (io.EOF after a normal end), as a write on the
// closed connection would have said. So is a server's write once the
// session's end has cancelled ioCtx: a server-streaming handler's Send
// after the client's normal closure returns io.EOF, as a bidirectional
// one's does, and handlerOutcome takes that io.EOF returned for the clean
// end it is.
//
// On a client-streaming call the reader knows better than the write why
// the connection ended, so the write waits for it when the connection is
// closing (ErrClosed: a close frame went out, and the closing handshake
// is bounded by the close timeout), when the peer reset it (netfail.Reset:
// a server over its MaxMessageSize sends 1009, drains a bounded amount
// and resets, and the reader finds the 1009 in what arrived before the
// reset; the runtime closes the connection after the close timeout at
// the latest), or the reader has finished already. What it reports is
// the reader's end, unless the call's context has ended (callErr), as
// Receive reports: a Send cut off by the caller's cancel, once the close
// timeout has cut a connection the server stopped reading, is canceled,
// not the unavailable of the cut.
//
// On a server a write that failed because the TCP connection is gone
// (writeLost) records the stream's end as 1006 (ended), as readErr does
// for a read, whatever the handler then returns: OnClose reports the
// lost connection, not the 4014 of the handler's unavailable. A reset is
// recorded later, when the handler returns (resetWrite, serveWebSocket's
// end), since what the peer sent before it — messages, a close frame,
// whose code is then the end — is still there to read. The write itself
// reports the failure as any other: unavailable.
//
// A call this side's Close or CloseWith ended (closeLocal) reports
// canceled, as its Receive does after the Close, whatever the write ran
// into and whether or not a Receive has released the connection since;
// a client-streaming call whose reader has the server's own close code
// (serverEnd) reports the server's end, as CloseAndReceive does.
func (c *wsConn) writeErr(err error) error {
	if c.closedLocally() {
		if c.answered != nil {
			select {
			case <-c.answered:
				if c.serverEnd(c.answerErr) {
					// The server ended the call before the Close (see
					// CloseAndReceive).
					return c.callErr(c.answerErr)
				}
			default:
			}
		}
		return c.callErr(c.localEnd())
	}
	if c.answered != nil {
		select {
		case <-c.answered:
			return c.callErr(c.answeredErr())
		default:
		}
		if errors.Is(err, websocket.ErrClosed) || netfail.Reset(err) {
			<-c.answered
			return c.callErr(c.answeredErr())
		}
	}
	if errors.Is(err, context.Canceled) && (c.released.Load() || !c.spec.IsClient) {
		// On a server ioCtx ends with the session (cancel: the peer
		// watcher saw the client's close, the connection was lost,
		// Shutdown); once the end is recorded, the write reports it too,
		// not a context the handler never cancelled.
		c.mu.Lock()
		closed, end := c.closed, c.closeInfo.Err
		c.mu.Unlock()
		if closed {
			if end == nil {
				return io.EOF
			}
			return end
		}
	}
	if !c.spec.IsClient && writeLost(err) {
		if netfail.Reset(err) {
			// Leave the socket to the runtime: what the peer sent before
			// its reset (messages, its close frame) is still readable.
			// end records 1006 if no reader finds a close frame.
			c.resetWrite.CompareAndSwap(nil, &err)
			return wireError(err)
		}
		// The socket is closed at once too, as the handler's close would
		// have closed it (it finds the end recorded, and does nothing).
		c.ended(err)
		return wireError(err)
	}
	return c.callErr(c.transportErr(err))
}

// writeLost is connectionLost for a write: the peer reset the connection,
// a write made no progress for WriteTimeout (the peer stopped reading),
// the keepalive found the path dead, or the connection was closed over
// one of these or over the end of its input — the TCP connection ended
// without a close frame (RFC 6455 §7.1.5's 1006). Not a close frame, a
// context, a close of ours (bare ErrClosed) or a refused message: a
// write's error may be any of those too, so the causes are listed rather
// than excluded as connectionLost does for a read.
func writeLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return netfail.Reset(err) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, websocket.ErrPongTimeout)
}

// callErr is what a client's read or write that failed reports once the
// call's context has ended: its error (canceled, or deadline_exceeded),
// as when the context ended before the read or write began, whatever the
// end looked like from here (the server's echo of watchCall's close, or
// the close timeout cutting the connection). err otherwise, and always
// on a server.
func (c *wsConn) callErr(err error) error {
	if c.call != nil {
		// A reconnection's call is the redialer's context, which the
		// call's own end cancels too (errCallOver): not the caller's.
		if cerr := c.call.Err(); cerr != nil && context.Cause(c.call) != errCallOver {
			return wireError(cerr)
		}
	}
	return err
}

// release cancels ctx once a client's call has ended for good, and leaves
// the socket closed whatever ended the call. The runtime watches the
// context of each read and write with context.AfterFunc, and ctx is a
// child of the caller's: until it is cancelled, the caller's context
// (often long-lived: a server's base context, signal.NotifyContext) keeps
// the finished connection reachable.
func (c *wsConn) release() {
	c.released.Store(true)
	c.detach()
	c.mu.Lock()
	open := !c.closed
	c.mu.Unlock()
	if open {
		// Every path that ends a call records its end (and closes) first;
		// this is the backstop, so that no ended call keeps its socket.
		c.abort(Errorf(CodeCanceled, "%s: the client ended the call", c.spec.Procedure))
	}
}

// watchCall ties a client's connection to the call's context: when ctx
// ends, the connection closes at once with canceled's close code (4001;
// 4004 for a deadline), whether or not a Receive or Send is running to
// notice, so that the server's handler learns the client left and why.
// Reads and writes use ioCtx, which ctx does not end, so that one in
// progress does not make the runtime drop the TCP connection before the
// close frame is out (the server would see 1006, unavailable): it ends
// with the server's answer to the close, or when the close timeout cuts
// the connection, and reports ctx's error (callErr). The call has ended,
// so the onClose hooks run now, once, with the cancellation's CloseInfo:
// nothing else may come to run them (the docs promise such a call needs
// no Close). release and detach stop the watch, so a long-lived ctx does
// not keep finished calls reachable. Cost: one AfterFunc per call,
// nothing per message.
func (c *wsConn) watchCall(ctx context.Context) {
	c.call = ctx
	c.unwatch = context.AfterFunc(ctx, func() {
		c.abort(ctx.Err())
		c.runOnClose()
	})
}

// watchSession is watchCall's server side: when ctx, the session's
// context (ended by the client's deadline, by a deadline a handshake
// interceptor set, by an interceptor's context.WithCancelCause, or by
// the server's base context: r.Context()'s, which a detached session
// follows only until the upgrade, see serveWebSocket), ends, the
// connection closes and a close frame goes out. The code and reason are
// those of the context's cause when it is an *Error (sessionCause), as
// if the handler had returned it: an interceptor that cancels a revoked
// tenant's sessions with permission_denied gets 4007, a server whose
// base context ends with unavailable 4014, which WithReconnect retries.
// Otherwise they are the context's: 4004 for a
// deadline, 4001 (canceled) for anything else. Reads and writes use
// ioCtx, which ctx does not end: were they to use it, the runtime would
// drop the TCP connection under a read in progress (a bidi handler's
// Receive, the peer watcher) and the client would see 1006, a lost
// connection it retries, instead of the code. stop ends the watch and,
// if the close has begun, waits for the closing handshake, as a
// handler's return does, and closes with an *Error cause the watch had
// no time to close with; it may be called more than once. Cost: one
// AfterFunc per session, nothing per message.
func (c *wsConn) watchSession(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	unwatch := context.AfterFunc(ctx, func() {
		defer close(done)
		err := sessionCause(ctx)
		if err == nil {
			err = ctx.Err()
		}
		_ = c.closeWith(err)
	})
	return func() {
		if unwatch() {
			// ctx ended, but the watch had not run yet when the handler
			// returned (with the ctx.Err() it saw, typically): an *Error
			// cause is still the end, so that what the client is told
			// does not depend on which came first.
			if err := sessionCause(ctx); err != nil {
				_ = c.closeWith(err)
			}
			close(done)
		}
		<-done
	}
}

// watchLost is watchSession for the connection: when the runtime closes
// it on its own (a missed pong, ErrPongTimeout; a write of another
// goroutine that timed out; a CloseNow elsewhere) while nothing reads it —
// a handler that only sends, waiting on ctx between its Receives or
// after the request — the session ends there (connClosed), where
// nothing would otherwise tell the handler: its ctx stayed live, OnClose
// never ran and Tracker kept the session, for ever. stop ends the watch,
// waiting for its callback if the close came and the callback has
// started, so that the end it records is in place before the handler's
// return is; it may be called more than once. Cost: one AfterClose
// registration per session, a few words; no goroutine until the close.
func (c *wsConn) watchLost() (stop func()) {
	done := make(chan struct{})
	unwatch := c.ws.AfterClose(func(err error) {
		defer close(done)
		c.connClosed(err)
	})
	return func() {
		if unwatch == nil {
			return
		}
		if !unwatch() {
			<-done
		}
		unwatch = nil
	}
}

// connClosed is watchLost's callback: err is what a read would now
// return. If the stream's end is recorded already (the handler's Close,
// a reader's, watchSession's, Shutdown's), whoever recorded it closed the
// connection and the session goes on to its end as before. If a reader
// is reading, it reports the end (endRead takes over if it read a message
// instead). Otherwise ctx is cancelled, so that the handler returns, and
// the end is recorded where a read's would be (readErr: 1006 with
// unavailable for a lost connection or a missed pong, the peer's code
// for its close frame); a close whose cause readErr does not record (a
// write's timeout, a CloseNow) is settled by the session's end
// (closeEnd: 1006 for a lost connection, 4001 for a kill). OnClose
// reports that end, whatever the handler then returns.
func (c *wsConn) connClosed(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.receiving {
		c.lostErr = err
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.lost(err)
}

// lost ends a server session whose connection the runtime closed with
// err (connClosed).
func (c *wsConn) lost(err error) {
	_ = c.readErr(err)
	c.cancel()
}

// sessionCause is the error a server session whose context ctx has ended
// ends with when whoever ended it chose one: context.Cause(ctx) if it is
// (or wraps) an *Error, passed on as a handler's return of it would be;
// nil for any other end (a deadline, a plain cancel, the client gone),
// which keeps the context's own code. Tracker.Shutdown's errShutdown, the
// cause of an SSE session it cancels, is not such a choice: that session
// ends without an end event, so that its client reconnects
// (sseSession.goAway).
func sessionCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	var e *Error
	if cause == errShutdown || !errors.As(cause, &e) {
		return nil
	}
	return cause
}

// detach stops watching the call's context and cancels ctx and ioCtx.
// While abort's closing handshake runs, ioCtx is left to it: ending a
// read or write in progress now would drop the TCP connection, maybe
// before the close frame went out (a Send holding the connection delays
// it), and the server would see 1006 instead of the code.
func (c *wsConn) detach() {
	if c.unwatch != nil {
		c.unwatch()
	}
	c.mu.Lock()
	c.detached = true
	aborting := c.aborting
	c.mu.Unlock()
	c.cancelCtx()
	if !aborting {
		c.cancelIO()
	}
}

// discard closes a connection the call never used (a reconnection that
// lost a race with Close, or failed to resend the request), without a
// close frame, and runs the onClose hooks with err: connect ran the
// onConnect hooks for it.
func (c *wsConn) discard(err error) {
	c.markClosed(CloseInfo{Code: websocket.StatusAbnormalClosure, Err: asError(err)})
	_ = c.ws.CloseNow()
	c.detach()
	c.runOnClose()
}

// closeWith closes the stream with the code and reason for err (1000 for
// nil) unless it is closed already, and records how it ended.
func (c *wsConn) closeWith(err error) error { return c.closeBy(err, closedByOther) }

// closeEnd is closeWith for the end of a server session, once the handler
// has returned (serveWebSocket's end). When the close frame could not go
// out because the TCP connection is lost — its write met the peer's reset
// or made no progress for WriteTimeout, or found the connection closed
// over one of those or a missed pong (writeLost) — the end recorded is
// 1006 with unavailable, as for a read or write that met the same
// (readErr, writeErr), not the code of err: CloseInfo promises 1006 when
// the TCP connection ended without a close frame, whatever error the
// handler returned. The frame did not go out if nothing reached the
// socket during the Close (WireBytesWritten counts only what the socket
// took: a failed write adds nothing). A close frame that went out keeps
// its code and reason, whether or not the peer answered.
func (c *wsConn) closeEnd(err error) {
	ci := closeInfoFor(err)
	if !c.markClosed(ci) {
		return
	}
	written := c.ws.Stats().WireBytesWritten
	cerr := c.closeRecorded(ci)
	if cerr == nil {
		return
	}
	if writeLost(cerr) && c.ws.Stats().WireBytesWritten == written {
		c.mu.Lock()
		c.closeInfo = CloseInfo{Code: websocket.StatusAbnormalClosure, Err: wireError(cerr)}
		c.mu.Unlock()
	}
}

// closeRecorded runs the closing handshake of ci, the end this side just
// recorded, returning Close's error as it is (closeWSErr). A close frame
// that never went out (websocket.ErrCloseNotSent: a write to a peer that
// stopped reading held the connection for the close timeout, or the
// connection was closed first) marks the end Unsent: the peer saw 1006,
// while ci keeps why this side closed (the chat's "too slow").
//
// A close frame the runtime began first, under this layer (a hub's Close
// of a slow consumer), is what went on the wire instead of ci's, which
// Close then refuses (ErrClosed, once that closing handshake is over):
// the end recorded takes its code and reason, and Unsent if it never went
// out; Err stays ci's, the stream's own error, unless ci is a clean end.
func (c *wsConn) closeRecorded(ci CloseInfo) error {
	err := closeWSErr(c.ws, ci.Code, ci.Reason)
	if errors.Is(err, websocket.ErrCloseNotSent) {
		c.mu.Lock()
		if c.closeInfo.Code == ci.Code {
			c.closeInfo.Unsent = true
		}
		c.mu.Unlock()
		return err
	}
	if !errors.Is(err, websocket.ErrClosed) {
		return err
	}
	if own, sent := c.ws.CloseSent(); own != nil && (own.Code != ci.Code || own.Reason != ci.Reason || !sent) {
		c.mu.Lock()
		if c.closeInfo.Code == ci.Code && c.closeInfo.Reason == ci.Reason {
			end := sentEnd(own, sent)
			if ci.Err != nil {
				end.Err = ci.Err
			}
			c.closeInfo = end
		}
		c.mu.Unlock()
	}
	return err
}

// closeLocal is closeWith for a client's Close and CloseWith. If this
// close is what ends the stream (nothing ended it before), it is noted
// (local), so that the call reports canceled from then on, whatever the
// reads and writes run into: the server's echo, the context Close
// cancelled, or the connection lost as it closed (see writeErr and
// ClientStreamForClient.CloseAndReceive). The mark is set before the close
// frame goes out, so a reader cannot record an end this close caused
// first.
func (c *wsConn) closeLocal(err error) error { return c.closeBy(err, closedByClient) }

// closeOwn is closeWith for a server handler's Close (closeStream). If
// this close is what ends the stream, it is noted (own), with its error,
// under the same lock as the end: the innermost StreamFunc reports it to
// the stream interceptors (see handlerOutcome), since it is what the
// client got. The error is kept apart from closeInfo.Err, which a later
// Receive may fill in (abandonedUpload).
func (c *wsConn) closeOwn(err error) error { return c.closeBy(err, closedByHandler) }

// closer is who ended a stream, for the marks closeLocal and closeOwn
// leave (local, own).
type closer uint8

const (
	closedByOther   closer = iota
	closedByClient         // a client's Close or CloseWith (closeLocal)
	closedByHandler        // a server handler's Close (closeOwn)
)

// closeBy closes the stream with the code and reason for err unless it is
// closed already, recording how it ended and, if this close is what ended
// it, who closed it.
func (c *wsConn) closeBy(err error, by closer) error {
	ci := closeInfoFor(err)
	if !c.markClosedBy(ci, by) {
		return nil
	}
	if err := c.closeRecorded(ci); !errors.Is(err, websocket.ErrClosed) { // as closeWS
		return err
	}
	return nil
}

// ownEnd reports whether a handler's Close ended the stream (closeOwn),
// and the error it ended it with (nil for a normal closure).
func (c *wsConn) ownEnd() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.own, c.ownErr
}

// localEnd is what a client's Receive and Send report once its own Close
// or CloseWith ended the call (closeLocal): canceled, as always, with a
// message that says so and what the close sent ("stream closed by this
// side: aborted: user left"), rather than the "context canceled" of the
// context Close cancels to release the connection, which the caller
// never cancelled. The call's context ending first is reported as such
// (callErr). An end of the server's that Receive reported although the
// close had marked the stream (peerEnd) is that end instead: Receive and
// Send agree on how the call ended.
func (c *wsConn) localEnd() error {
	c.mu.Lock()
	sent, peer := c.closeInfo.Err, c.peerEnd
	c.mu.Unlock()
	if peer != nil {
		return peer
	}
	return closedHere(c.spec.Procedure, sent)
}

// closedHere is the error of a call this side's Close or CloseWith ended,
// which sent sent (nil for a normal closure): see localEnd.
func closedHere(procedure string, sent error) *Error {
	if sent == nil {
		return Errorf(CodeCanceled, "%s: stream closed by this side (normal closure)", procedure)
	}
	e := asError(sent)
	if e.msg == "" {
		return Errorf(CodeCanceled, "%s: stream closed by this side: %s", procedure, e.code)
	}
	return Errorf(CodeCanceled, "%s: stream closed by this side: %s: %s", procedure, e.code, e.msg)
}

// closedLocally reports whether the client's Close or CloseWith ended the
// stream (see closeLocal).
func (c *wsConn) closedLocally() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local
}

// serverEnd reports whether err, how the reader saw a call end that
// this side's Close then closed locally, is the server's own end: a
// close frame whose code is not the one closeLocal sent (the server
// echoes the code it receives, RFC 6455 §5.5.1). The server's frame can
// reach the client before the Close and still be recorded after it: its
// echo, which the runtime writes before the read returns, waits behind a
// large write still going out.
func (c *wsConn) serverEnd(err error) bool {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return false
	}
	c.mu.Lock()
	sent := c.closeInfo.Code
	c.mu.Unlock()
	return ce.Code != sent
}

// closeFor is the close code and reason that tell the peer err (1000 for
// nil), and the error the stream records.
func closeFor(err error) (websocket.StatusCode, string, error) {
	if err == nil {
		return websocket.StatusNormalClosure, "", nil
	}
	e := asError(err)
	return e.code.CloseCode(), websocket.CloseReason(e.msg), e
}

// closeInfoFor is closeFor as the CloseInfo the hooks get.
func closeInfoFor(err error) CloseInfo {
	code, reason, werr := closeFor(err)
	return CloseInfo{Code: code, Reason: reason, Err: werr}
}

// markClosed records how the stream ended unless that is recorded
// already; it reports whether this call recorded it (and so closes).
func (c *wsConn) markClosed(ci CloseInfo) bool { return c.markClosedBy(ci, closedByOther) }

// markClosedBy is markClosed that also leaves by's mark (closer).
func (c *wsConn) markClosedBy(ci CloseInfo, by closer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	c.closeInfo = ci
	switch by {
	case closedByClient:
		c.local = true
	case closedByHandler:
		c.own, c.ownErr = true, ci.Err
	}
	return true
}

// closeWS runs the closing handshake with code and reason. If Close fails
// for any reason but an earlier close (a reason it refuses, a handshake
// that went wrong), the TCP connection is closed at once: nothing else
// would close it, and the peer would wait for a close frame forever.
func closeWS(ws *websocket.Conn, code websocket.StatusCode, reason string) error {
	if err := closeWSErr(ws, code, reason); !errors.Is(err, websocket.ErrClosed) {
		return err
	}
	return nil
}

// closeWSErr is closeWS returning Close's error as it is, ErrClosed (an
// earlier close, which may wrap why: a missed pong) included.
func closeWSErr(ws *websocket.Conn, code websocket.StatusCode, reason string) error {
	err := ws.Close(code, reason)
	if err != nil && !errors.Is(err, websocket.ErrClosed) {
		_ = ws.CloseNow()
	}
	return err
}

// abort closes the stream with err's close code and reason unless it is
// closed already, without making the caller wait for the peer's answer:
// the close frame goes out and the closing handshake finishes on a
// goroutine of its own, bounded by the close timeout (RFC 6455 §7.1.1:
// the client waits for the server to close the TCP connection first; a
// close right after the frame could reset it, losing the frame, when
// input is still unread). A detach meanwhile leaves ioCtx to it (see
// detach).
func (c *wsConn) abort(err error) {
	code, reason, werr := closeFor(err)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.closeInfo = CloseInfo{Code: code, Reason: reason, Err: werr}
	c.aborting = true
	c.mu.Unlock()
	go func() {
		// The hooks of a call whose context ended may have run by the
		// time Close returns (watchCall): Unsent reaches only later ones.
		_ = c.closeRecorded(CloseInfo{Code: code, Reason: reason})
		c.mu.Lock()
		c.aborting = false
		detached := c.detached
		c.mu.Unlock()
		if detached {
			c.cancelIO()
		}
	}()
}

// ended records a failure that ended the stream without a close frame,
// and closes the socket: a read or write refused because the call's
// context had ended left it open, and it closes with the context's code
// so that the server learns why (see watchCall); any other failure has
// closed it already, except a write the peer reset: the runtime keeps
// that socket for a reader to find the peer's close frame, and
// serveWebSocket's end calls ended for it once the handler has returned,
// which closes it here.
func (c *wsConn) ended(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		c.abort(wireError(err))
		return
	}
	c.markClosed(CloseInfo{Code: websocket.StatusAbnormalClosure, Err: wireError(err)})
	_ = c.ws.CloseNow()
}

// runOnClose calls the onClose hooks once.
func (c *wsConn) runOnClose() {
	c.mu.Lock()
	if c.hooked {
		c.mu.Unlock()
		return
	}
	c.hooked = true
	ci := c.closeInfo
	if !c.closed {
		ci = CloseInfo{Code: websocket.StatusAbnormalClosure, Err: NewError(CodeUnavailable, websocket.ErrClosed)}
	}
	c.mu.Unlock()
	ci.Stats = c.ws.Stats()
	for _, fn := range c.onClose {
		fn(c.ctx, c.info, ci)
	}
}

// watchPeer reads the connection for the rest of a call where the client
// sends nothing more: after the request of a server-streaming call, after
// the end-of-stream marker of the others. It answers pings, notices the
// client's close (cancelling the stream's context), and fails the stream
// if the client sends another message.
func (c *wsConn) watchPeer() {
	if c.recvErr == nil {
		c.recvErr = io.EOF // the client sends no more messages
	}
	// Receive reads no more (recvErr is set; the watcher reads with
	// buffers of its own): the read buffer, 512 bytes or the request's
	// size, would stay with an idle server-streaming call for its life.
	c.rbuf = nil
	c.mu.Lock()
	if c.watch != nil {
		c.mu.Unlock()
		return
	}
	watch := make(chan error)
	c.watch = watch
	c.receiving = true // for good: it reads until the connection ends
	c.mu.Unlock()
	extra := "%s is server-streaming: the client sends one request only"
	if c.spec.StreamType != StreamTypeServer {
		extra = "%s: the client sent a message after its end-of-stream marker"
	}
	go func() {
		defer close(watch)
		defer c.cancel()
		for {
			typ, data, err := c.ws.Read(c.ioCtx)
			if err != nil {
				_ = c.readErr(err)
				return
			}
			if typ == websocket.MessageText && len(data) == 0 {
				continue // an end-of-stream marker: the client was done anyway
			}
			_ = c.closeWith(Errorf(CodeInvalidArgument, extra, c.spec.Procedure))
			return
		}
	}()
}

func (c *wsConn) waitWatcher() {
	c.mu.Lock()
	watch := c.watch
	c.mu.Unlock()
	if watch != nil {
		<-watch
	}
}

func (c *wsConn) String() string {
	return fmt.Sprintf("wsrpc %s stream %s", c.spec.Transport, c.spec.Procedure)
}
