package wsrpc

import (
	"context"
	"net/http"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// StreamType is the shape of a streaming method.
type StreamType int

// The stream types. Unary methods have no wsrpc transport.
const (
	StreamTypeClient StreamType = 1 // the client sends many messages, the server one
	StreamTypeServer StreamType = 2 // the client sends one message, the server many
	StreamTypeBidi   StreamType = 3 // both send many, independently
)

func (t StreamType) String() string {
	switch t {
	case StreamTypeClient:
		return "client"
	case StreamTypeServer:
		return "server"
	case StreamTypeBidi:
		return "bidi"
	}
	return "unknown"
}

// Transport is what carries a stream.
type Transport int

// The transports.
const (
	TransportWebSocket Transport = 1 // RFC 6455, one connection per call
	TransportSSE       Transport = 2 // text/event-stream answering a GET
)

func (t Transport) String() string {
	switch t {
	case TransportWebSocket:
		return "websocket"
	case TransportSSE:
		return "sse"
	}
	return "unknown"
}

// Spec describes a method: what an interceptor or hook can branch on.
type Spec struct {
	// Procedure is "/<package>.<Service>/<Method>", as in the generated
	// procedure constants, whatever path the method is mounted on.
	Procedure  string
	StreamType StreamType
	Transport  Transport
	// IsClient is true on the calling side.
	IsClient bool
}

// Handshake is one call's opening exchange, as interceptors see it.
//
// On a server, Request is the incoming upgrade (or SSE) request, Codec the
// codec chosen for it, and ResponseHeader the headers that will be sent
// with the 101 (or 200) response: an interceptor may add to it before it
// calls next, whose innermost step sends the response. What it adds after
// next has returned is not sent, nor in the stream's ResponseHeader,
// which is a copy of what was. On a client, Request is the request about
// to be sent (an interceptor may set headers such as Authorization), and
// after next returns ResponseHeader holds the server's response headers
// and Codec the negotiated codec.
type Handshake struct {
	Spec           Spec
	Request        *http.Request
	ResponseHeader http.Header
	Codec          codec.Codec
}

// HandshakeFunc performs a handshake. On a server the innermost one
// accepts; returning an error refuses the request before the upgrade with
// the HTTP status of the error's Code (see Code). When the WebSocket
// runtime refuses the handshake itself (a cross-origin request, 403), it
// writes that response, and the innermost HandshakeFunc returns an *Error
// with the status's code (permission_denied) and the runtime's message;
// the response stands whatever the interceptors return. An error
// returned after next has accepted fails the call once open, without
// running the handler: the WebSocket closes with the error's close code
// and message, the event stream ends with a wsrpc.error event — the one
// way a browser page, which sees no refusal's status, learns the reason
// (TestInterceptorRefusesAfterNext). The returned context is the one the
// stream then runs with, so an authentication interceptor can attach the
// caller's identity.
//
// On a WebSocket client too the call runs with the returned context until
// it ends: a context an interceptor derives and returns bounds the whole
// call (a timeout derived there is the call's deadline), and cancelling
// it (a deferred cancel, say) ends the call (see BidiClient.Call). The
// innermost HandshakeFunc, the dial, uses the context it is given for the
// handshake only. So to bound only the handshake, pass a derived context
// to next and return the interceptor's own:
//
//	func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
//		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
//		defer cancel()
//		if _, err := next(hctx, hs); err != nil {
//			return ctx, err
//		}
//		return ctx, nil // not hctx: its cancel would end the call
//	}
//
// (Values inner interceptors added to the context they returned are
// dropped with it.) A client's interceptor, WebSocket or SSE, may call
// next again: after a failed attempt, to retry it (with a refreshed token
// after CodeUnauthenticated, say), or after a success, to connect anew,
// when the call runs on the new connection (the event stream, on SSE),
// with the codec that connection's handshake negotiated (next fails with
// CodeInternal for a WebSocket one that selected no offered codec, as
// for a first one), and the earlier one is closed; the OnConnect and
// OnClose hooks run for the one connection the call runs on. This holds
// for the first request and for each reconnection of a call that
// reconnects. An SSE
// client reads its event stream with the context given to the innermost
// HandshakeFunc, so there a context derived for next bounds the whole
// stream, and its deadline is the one TimeoutHeader tells the server.
type HandshakeFunc func(ctx context.Context, hs *Handshake) (context.Context, error)

// StreamConn is the untyped stream an interceptor sees: Send and Receive
// take the generated message types as any (pointers to messages).
//
// Concurrency: as the typed streams: one goroutine receives, any number
// send.
type StreamConn interface {
	Spec() Spec
	// Codec is the negotiated codec.
	Codec() codec.Codec
	// RequestHeader is the handshake request's header.
	RequestHeader() http.Header
	// ResponseHeader is what was sent with the handshake response.
	ResponseHeader() http.Header
	// Send marshals and sends msg.
	Send(msg any) error
	// Receive reads the next message into msg; io.EOF when the peer has
	// finished sending.
	Receive(msg any) error
}

// StreamFunc runs a stream on a server: the innermost one calls the
// handler. Its error closes the stream with the error's code (see Code).
//
// The innermost one returns the handler's outcome as the client gets it:
// the handler's error, or, when the handler ended the stream itself with
// its stream's Close, that close's *Error (code and reason; nil for code
// 0), whatever the handler returned after it (TestStreamInterceptorSeesClientStatus).
// It returns before the close handshake; OnClose runs after it, with the
// close code that went on the wire, and is the one to see a stream the
// client ended (see docs/observability.md). A handler's panic goes through
// the interceptors without a return: one that records it defers a recover
// that records CodeInternal and panics again with the same value.
type StreamFunc func(ctx context.Context, conn StreamConn) error

// An Interceptor wraps the two phases of a server call: the handshake
// (before the upgrade: authenticate, refuse, add headers) and the stream
// (after it: log, count messages, time the call, change the error). On a
// client only WrapHandshake is used, around the dial (set headers, observe
// refusals); WrapStream is not called.
//
// Interceptors run in the order given to WithInterceptors: the first is
// the outermost.
type Interceptor interface {
	WrapHandshake(next HandshakeFunc) HandshakeFunc
	WrapStream(next StreamFunc) StreamFunc
}

// HandshakeInterceptorFunc is an Interceptor that wraps only the handshake.
type HandshakeInterceptorFunc func(next HandshakeFunc) HandshakeFunc

// WrapHandshake implements Interceptor.
func (f HandshakeInterceptorFunc) WrapHandshake(next HandshakeFunc) HandshakeFunc { return f(next) }

// WrapStream implements Interceptor and returns next unchanged.
func (f HandshakeInterceptorFunc) WrapStream(next StreamFunc) StreamFunc { return next }

// StreamInterceptorFunc is an Interceptor that wraps only the stream.
type StreamInterceptorFunc func(next StreamFunc) StreamFunc

// WrapHandshake implements Interceptor and returns next unchanged.
func (f StreamInterceptorFunc) WrapHandshake(next HandshakeFunc) HandshakeFunc { return next }

// WrapStream implements Interceptor.
func (f StreamInterceptorFunc) WrapStream(next StreamFunc) StreamFunc { return f(next) }

func chainHandshake(ics []Interceptor, next HandshakeFunc) HandshakeFunc {
	for i := len(ics) - 1; i >= 0; i-- {
		next = ics[i].WrapHandshake(next)
	}
	return next
}

func chainStream(ics []Interceptor, next StreamFunc) StreamFunc {
	for i := len(ics) - 1; i >= 0; i-- {
		next = ics[i].WrapStream(next)
	}
	return next
}

// ConnInfo describes an open stream to the OnConnect and OnClose hooks.
type ConnInfo struct {
	Spec          Spec
	Codec         codec.Codec
	RequestHeader http.Header
	RemoteAddr    string
}

// CloseInfo says how a stream ended. Code is the WebSocket close code sent
// or received (1000 for a clean end), or 1006 (abnormal closure) when the
// TCP connection ended without a close frame — the peer's process gone, a
// proxy's idle cut — whatever error the handler then returned. For SSE it is what a WebSocket
// session would have sent: 1000 or the error's 4000+Code, and when the
// session's context ended the stream, 4004 (deadline_exceeded) for its
// deadline, 4001 (canceled) when it was cancelled (the client gone, say),
// or 1001 (going away, with ShutdownReason and an unavailable Err) when
// Tracker.Shutdown ended it. Err is the error the stream ended with: nil
// for a clean end, otherwise the handler's error or the transport
// failure, as an *Error. A close made beneath the typed layer on the
// stream's WebSocket (a hub topic's 1013 "slow consumer") is reported as
// the close frame it sent (websocket.Conn.CloseSent), reason included,
// ahead of an end the handler returned later, whose frame never went out.
// Unsent is true when Code is this side's (a
// handler's Close or returned error, the session's context ending,
// Tracker.Shutdown's 1001, a client's Close or CloseWith, such a close
// beneath the typed layer) but its close
// frame never went out: a write to a peer that stopped reading held the
// connection for the close timeout, and the TCP connection was closed
// first (websocket.ErrCloseNotSent), so the peer saw the connection
// drop, 1006. Code and Reason still say why this side closed. A client
// call whose context ended runs its hooks as the close frame goes out,
// before this is known. False for SSE.
type CloseInfo struct {
	Code   websocket.StatusCode
	Reason string
	Err    error
	Unsent bool
	// Stats are the WebSocket connection's counters when the hooks run
	// (websocket.ConnStats: messages and bytes each way, on the wire and
	// before compression, pings, the last ping's round-trip time). The
	// hooks run after the closing handshake of a stream that ended by
	// returning, Close or CloseWith, so its close frames count; a call
	// whose context ended runs them as its close frame goes out. A
	// client that reconnects reports each connection's own. Zero for SSE.
	Stats websocket.ConnStats
}
