package wsrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wsrpc/wsrpc/internal/peertext"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Code is the kind of failure an *Error reports. The values and names are
// those of gRPC and Connect, so errors translate one to one at a gateway.
//
// On the wire a Code travels three ways (the table below is the contract):
//
//   - A WebSocket stream that fails after the upgrade is closed with the
//     application close code 4000+Code (RFC 6455 §7.4.2 reserves 4000–4999
//     for applications) and the error's message as the close reason
//     (invalid UTF-8 replaced by U+FFFD, cut to 123 bytes on a rune
//     boundary: RFC 6455 §5.5, §7.1.6).
//
//   - A request refused before the upgrade (by an interceptor, a codec
//     mismatch, a bad SSE request) is answered with the HTTP status below,
//     the code's name in the Wsrpc-Code header and the message as a
//     text/plain body. A method other than GET is the exception: 405
//     Method Not Allowed with Allow: GET (RFC 9110 §15.5.6), with
//     invalid_argument in Wsrpc-Code on an SSE route. A call the method
//     does not serve as asked is unimplemented with another status: a
//     request that is not an upgrade at a WebSocket method keeps the 426
//     (RFC 9110 §15.5.22; 400 over HTTP/2), a path naming a method the
//     service does not have is 404 (see ServiceNotFound). The WebSocket
//     runtime's own refusals of a handshake are exceptions too
//     (websocket.Accept: 400 malformed, 403 cross-origin, 405 not GET, 426
//     another version): it writes them itself, without Wsrpc-Code, so a
//     client maps their status by the table (CodeFromHTTPStatus: 405 and
//     426 read as invalid_argument, as 400 does), and a handshake
//     interceptor gets that code from next.
//
//   - An SSE stream that fails after it started ends with an event of type
//     "wsrpc.error" whose data is {"code":"<name>","message":"…"}.
//
// The table gives each code's name (in Wsrpc-Code and the event), close
// code and HTTP status:
//
//	Code                    Name                 Close code  HTTP status
//	CodeCanceled            canceled             4001        499
//	CodeUnknown             unknown              4002        500
//	CodeInvalidArgument     invalid_argument     4003        400
//	CodeDeadlineExceeded    deadline_exceeded    4004        504
//	CodeNotFound            not_found            4005        404
//	CodeAlreadyExists       already_exists       4006        409
//	CodePermissionDenied    permission_denied    4007        403
//	CodeResourceExhausted   resource_exhausted   4008        429
//	CodeFailedPrecondition  failed_precondition  4009        412
//	CodeAborted             aborted              4010        409
//	CodeOutOfRange          out_of_range         4011        400
//	CodeUnimplemented       unimplemented        4012        501
//	CodeInternal            internal             4013        500
//	CodeUnavailable         unavailable          4014        503
//	CodeDataLoss            data_loss            4015        500
//	CodeUnauthenticated     unauthenticated      4016        401
//
// A Code outside the table (0 included) travels as CodeUnknown all three
// ways: 4002, 500 with Wsrpc-Code: unknown, "unknown" in the event; and
// NewError and Errorf store it as CodeUnknown, so that the handler's side
// (stream interceptors, OnClose) reads the code its client does.
//
// A stream that ends without error closes with 1000 (normal closure), which
// a receiver reports as io.EOF. So is a close frame with no status code
// (1005, RFC 6455 §7.1.5: what a browser's plain ws.close() sends), which
// OnClose reports with a nil Err — except in a client-streaming handler
// before the client's end-of-stream marker: only the marker finishes an
// upload, so there a 1000 or 1005 is the client abandoning it, and Receive
// and OnClose report CodeCanceled. A server reads a client's 1001 (going
// away: a browser's page closed, reloaded or navigated away, RFC 6455
// §7.4.1) as CodeCanceled too, the client leaving, in Receive and
// OnClose's Err (OnClose's Code stays 1001), as an SSE client's leaving
// reads. Otherwise close codes the runtime itself sends map back to
// codes as follows: 1001 going away, 1006 abnormal closure, 1012
// service restart and 1013 try again later → CodeUnavailable; 1003
// unsupported data and 1007 invalid payload → CodeInvalidArgument; 1008
// policy violation → CodePermissionDenied; 1009 message too big →
// CodeResourceExhausted; 1002 protocol error, 1010 and 1011 →
// CodeInternal; any other code → CodeUnknown. A connection this side
// failed because a pong did not come back in time is a lost connection:
// CodeUnavailable (it is closed without a close frame, so the peer, if
// it hears of it, sees 1006; see websocket.AcceptOptions.PingInterval). An HTTP status without a
// Wsrpc-Code header maps back by the table (the first row other than
// unknown wins, so 500 is CodeInternal, 409 CodeAlreadyExists and 400
// CodeInvalidArgument), 405, 415 and 426 to CodeInvalidArgument, 413
// and 431 to CodeResourceExhausted, other 4xx to CodeUnknown, other 5xx
// to CodeUnavailable.
type Code uint32

// The codes, as in gRPC and Connect. The zero Code is not an error.
const (
	CodeCanceled           Code = 1
	CodeUnknown            Code = 2
	CodeInvalidArgument    Code = 3
	CodeDeadlineExceeded   Code = 4
	CodeNotFound           Code = 5
	CodeAlreadyExists      Code = 6
	CodePermissionDenied   Code = 7
	CodeResourceExhausted  Code = 8
	CodeFailedPrecondition Code = 9
	CodeAborted            Code = 10
	CodeOutOfRange         Code = 11
	CodeUnimplemented      Code = 12
	CodeInternal           Code = 13
	CodeUnavailable        Code = 14
	CodeDataLoss           Code = 15
	CodeUnauthenticated    Code = 16

	minCode = CodeCanceled
	maxCode = CodeUnauthenticated
)

// CloseCodeBase is added to a Code to form its WebSocket close code.
const CloseCodeBase = 4000

// CodeHeader is the response header that carries a Code's name when a
// request is refused before the upgrade.
const CodeHeader = "Wsrpc-Code"

// TimeoutHeader is the handshake request header with which a client tells
// the server how long the call may last: the time left before its
// context's deadline, in whole milliseconds rounded up, 1 to 10 ASCII
// digits (as Connect-Timeout-Ms; gRPC's grpc-timeout). The client sets
// it on every handshake of a call whose context has a deadline (not more
// than 10 digits away, about 115 days), the first and each
// reconnection's, before the handshake interceptors run,
// which may change or delete it. Over SSE the event stream is read with
// the context the innermost HandshakeFunc is given (see HandshakeFunc),
// so there the innermost sets the header again from that context, unless
// an interceptor changed it: a deadline an interceptor derives for next
// reaches the server as the caller's own does. On a WebSocket the
// context given to next bounds the handshake only, and the call runs
// with the one the interceptors return, known only after the request has
// gone: the header carries the caller's deadline, and a shorter one the
// interceptors return reaches the handler as the call's 4004 close when
// it passes (an interceptor that wants the handler to see it from the
// start sets the header itself). The server gives the session's context
// that timeout, counted from the request's arrival, and refuses any
// other value (empty, signed, not digits, longer, or 0) with
// CodeInvalidArgument. Browsers cannot set it: EventSource and WebSocket
// take no request headers.
const TimeoutHeader = "Wsrpc-Timeout-Ms"

var codeInfo = [...]struct {
	name   string
	status int
}{
	CodeCanceled:           {"canceled", 499},
	CodeUnknown:            {"unknown", http.StatusInternalServerError},
	CodeInvalidArgument:    {"invalid_argument", http.StatusBadRequest},
	CodeDeadlineExceeded:   {"deadline_exceeded", http.StatusGatewayTimeout},
	CodeNotFound:           {"not_found", http.StatusNotFound},
	CodeAlreadyExists:      {"already_exists", http.StatusConflict},
	CodePermissionDenied:   {"permission_denied", http.StatusForbidden},
	CodeResourceExhausted:  {"resource_exhausted", http.StatusTooManyRequests},
	CodeFailedPrecondition: {"failed_precondition", http.StatusPreconditionFailed},
	CodeAborted:            {"aborted", http.StatusConflict},
	CodeOutOfRange:         {"out_of_range", http.StatusBadRequest},
	CodeUnimplemented:      {"unimplemented", http.StatusNotImplemented},
	CodeInternal:           {"internal", http.StatusInternalServerError},
	CodeUnavailable:        {"unavailable", http.StatusServiceUnavailable},
	CodeDataLoss:           {"data_loss", http.StatusInternalServerError},
	CodeUnauthenticated:    {"unauthenticated", http.StatusUnauthorized},
}

func (c Code) valid() bool { return c >= minCode && c <= maxCode }

// onWire is the code a peer is told for c: c itself, or CodeUnknown for a
// value outside the table (0 included), as CloseCode sends 4002 for it,
// so a refusal and an SSE error event name a code the peer can parse.
func (c Code) onWire() Code {
	if c.valid() {
		return c
	}
	return CodeUnknown
}

// String returns the code's name ("invalid_argument"), "ok" for the zero
// Code (no error: CodeOf(nil); gRPC's codes.OK), or "code_N"
// for another value outside the table. ParseCode does not accept "ok": a
// peer that reports a failure must name one of the table.
func (c Code) String() string {
	if c.valid() {
		return codeInfo[c].name
	}
	if c == 0 {
		return "ok"
	}
	return "code_" + strconv.FormatUint(uint64(c), 10)
}

// CloseCode returns the WebSocket close code for c: 4000+c for the codes of
// the table, 4002 (unknown) otherwise.
func (c Code) CloseCode() websocket.StatusCode {
	if !c.valid() {
		c = CodeUnknown
	}
	return websocket.StatusCode(CloseCodeBase + int(c))
}

// HTTPStatus returns the HTTP status a refusal before the upgrade is
// answered with (see the table on Code); 500 for a value outside it.
func (c Code) HTTPStatus() int {
	if c.valid() {
		return codeInfo[c].status
	}
	return http.StatusInternalServerError
}

// ParseCode returns the Code named name ("not_found"), and false for a name
// not in the table.
func ParseCode(name string) (Code, bool) {
	for c := minCode; c <= maxCode; c++ {
		if codeInfo[c].name == name {
			return c, true
		}
	}
	return 0, false
}

// CodeFromCloseCode maps a WebSocket close code to a Code (see the table on
// Code). It returns 0 for 1000 (normal closure) and 1005 (a close frame
// without a code), which are not errors. It maps 1001 as a client reads
// it, the server going away (CodeUnavailable); a server reads its
// client's 1001 as CodeCanceled (see Code).
func CodeFromCloseCode(sc websocket.StatusCode) Code {
	switch sc {
	case websocket.StatusNormalClosure, websocket.StatusNoStatusRcvd:
		// A peer that closes without saying why (a browser's ws.close())
		// is ending the stream, not failing it.
		return 0
	case websocket.StatusGoingAway, websocket.StatusAbnormalClosure, websocket.StatusServiceRestart, websocket.StatusTryAgainLater:
		return CodeUnavailable
	case websocket.StatusUnsupportedData, websocket.StatusInvalidFramePayload:
		return CodeInvalidArgument
	case websocket.StatusPolicyViolation:
		return CodePermissionDenied
	case websocket.StatusMessageTooBig:
		return CodeResourceExhausted
	case websocket.StatusProtocolError, websocket.StatusMandatoryExtension, websocket.StatusInternalError:
		return CodeInternal
	}
	if c := Code(int(sc) - CloseCodeBase); int(sc) > CloseCodeBase && c.valid() {
		return c
	}
	return CodeUnknown
}

// CodeFromHTTPStatus maps the status of a refused request to a Code, for
// responses without a Wsrpc-Code header (see the table on Code). Three
// statuses outside the table are the client's request, not the server,
// and map to invalid_argument, as a bad Sec-WebSocket-Key's 400 does: 415,
// 405 (a handshake with another method than GET, RFC 6455 §4.1; the SSE
// routes' 405 says invalid_argument in Wsrpc-Code too) and 426, the
// WebSocket runtime's answer to another Sec-WebSocket-Version (RFC 6455
// §4.4): the same request fails the same way, whatever state the server
// is in, which is invalid_argument's meaning and not
// failed_precondition's. Two more say the request is too large and map
// to resource_exhausted, as a message over the limit does (1009, an SSE
// event over MaxEventSize): 413 Content Too Large (RFC 9110 §15.5.14) and
// 431 Request Header Fields Too Large (RFC 6585 §5), net/http's answer to
// a header over http.Server.MaxHeaderBytes, which no handler sees. Other
// 4xx statuses are unknown, 5xx unavailable.
func CodeFromHTTPStatus(status int) Code {
	for c := minCode; c <= maxCode; c++ {
		if c != CodeUnknown && codeInfo[c].status == status {
			return c
		}
	}
	switch {
	case status == http.StatusUnsupportedMediaType, status == http.StatusMethodNotAllowed, status == http.StatusUpgradeRequired:
		return CodeInvalidArgument
	case status == http.StatusRequestEntityTooLarge, status == http.StatusRequestHeaderFieldsTooLarge:
		return CodeResourceExhausted
	case status >= 500:
		return CodeUnavailable
	}
	return CodeUnknown
}

// Error is an error with a Code: what a handler returns to fail a stream
// with a chosen code, and what a client receives when the server failed it.
//
// Errors are values: once created they are not modified, so they may be
// shared between goroutines.
type Error struct {
	code Code
	msg  string
	err  error // the cause, for errors.Is/As; nil for errors from the wire
	meta http.Header
}

// NewError returns an error with code c whose message is err's text, and
// which unwraps to err. A nil err gives an empty message. A c outside the
// table (0 included) is stored as CodeUnknown, the code the peer is told
// (see Code), so that the error's Code, CodeOf and what interceptors and
// OnClose see agree with the client's.
func NewError(c Code, err error) *Error {
	e := &Error{code: c.onWire(), err: err}
	if err != nil {
		e.msg = err.Error()
	}
	return e
}

// Errorf returns an error with code c and a formatted message; %w verbs
// wrap as in fmt.Errorf. A c outside the table is stored as CodeUnknown,
// as NewError does.
func Errorf(c Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{code: c.onWire(), msg: err.Error(), err: err}
}

// Code returns the error's code.
func (e *Error) Code() Code { return e.code }

// Message returns the message without the "wsrpc: <code>: " prefix. For
// an error the peer sent (a refusal's body, a close reason, a
// "wsrpc.error" event's message) it is the peer's text as sent, which may
// hold control characters: Error escapes it, Message does not, so that a
// program can compare it or pass it on unchanged.
func (e *Error) Message() string { return e.msg }

// Meta returns the response headers that came with an error refused before
// the upgrade (nil otherwise). The map must not be modified.
func (e *Error) Meta() http.Header { return e.meta }

// Error reports the code and the message, the message on one line
// through peertext.OneLine (control characters, line breaks and
// bidirectional overrides escaped): it may be a peer's text, which must
// not drive the terminal or split the log line it is printed on.
func (e *Error) Error() string {
	msg := peertext.OneLine(e.msg)
	if msg == "" {
		return "wsrpc: " + e.code.String()
	}
	return "wsrpc: " + e.code.String() + ": " + msg
}

// Unwrap returns the cause given to NewError or wrapped by Errorf.
func (e *Error) Unwrap() error { return e.err }

// CodeOf returns the Code carried by err: an *Error's code, CodeCanceled and
// CodeDeadlineExceeded for the context errors, the mapped code of a
// *websocket.CloseError, CodeUnknown for anything else and 0 for nil.
// A *websocket.CloseError with 1000 or 1005, for which CodeFromCloseCode
// returns 0, is CodeUnknown: CodeOf returns 0 for nil alone, so a
// non-nil error never reads as "ok". (The typed layer's receivers report
// such a close as io.EOF, which is CodeUnknown too: test for io.EOF
// before asking CodeOf.)
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if c := CodeFromCloseCode(ce.Code); c != 0 {
			return c
		}
	}
	return CodeUnknown
}

// asError turns any error a handler returns into an *Error.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return NewError(CodeOf(err), err)
}

// fromClose turns a peer's close frame into what a receiver returns: io.EOF
// for a normal closure (1000 or 1005), an *Error otherwise.
func fromClose(ce *websocket.CloseError) error {
	c := CodeFromCloseCode(ce.Code)
	if c == 0 {
		return io.EOF
	}
	return &Error{code: c, msg: ce.Reason, err: ce}
}

// wireError translates an error from the runtime into the typed layer's
// vocabulary: io.EOF for a clean end, an *Error for everything else. Only
// io.EOF itself is a clean end: an error that wraps it is a transport's
// (a handshake cut during TLS's, "tls: EOF") and means a lost connection.
func wireError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fromClose(ce)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return NewError(CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return NewError(CodeDeadlineExceeded, err)
	case errors.Is(err, websocket.ErrInvalidDial):
		// A URL or header no request can carry (a handshake interceptor's
		// header with a CR in it, say): the same request fails the same
		// way, so it is not a lost connection to retry.
		return NewError(CodeInvalidArgument, err)
	case errors.Is(err, websocket.ErrPongTimeout):
		// The runtime closes the connection when no pong comes back: the
		// path to the peer is gone. A lost connection, retried by
		// WithReconnect like any other.
		return NewError(CodeUnavailable, err)
	case errors.Is(err, sse.ErrEventTooLarge):
		// An SSE event over MaxEventSize: what a WebSocket message over
		// MaxMessageSize is (1009).
		return NewError(CodeResourceExhausted, err)
	case errors.Is(err, sse.ErrBadURL), errors.Is(err, sse.ErrInvalidHeader):
		// A URL or header no SSE request can carry: as ErrInvalidDial.
		return NewError(CodeInvalidArgument, err)
	case errors.Is(err, sse.ErrContentType), errors.Is(err, sse.ErrInvalidID):
		// A 200 that is no event stream (a captive portal's page, a
		// proxy's), or an event id the client cannot send back as
		// Last-Event-ID (no wsrpc server sends one): the peer is not a
		// wsrpc server speaking SSE, and asking again gets the same.
		// Unknown, as a WebSocket handshake answered 200 is
		// (CodeFromHTTPStatus) and a malformed wsrpc.error event; not
		// the lost connection's unavailable, which would be retried.
		return NewError(CodeUnknown, err)
	}
	// This side failed the connection over what the peer sent (RFC 6455
	// §7.1.7; an oversized message is 1009, resource exhausted): the code
	// is the one the peer would have read from our close frame, so a
	// broken peer is not retried like a lost connection.
	if sc := websocket.FailureStatus(err); sc > 0 {
		if c := CodeFromCloseCode(sc); c != 0 {
			return NewError(c, err)
		}
	}
	// A lost connection: the network failed, or timed out (websocket.Dial's
	// own bound, sse.ClientOptions.HandshakeTimeout: a server that accepts
	// and never answers, an os.ErrDeadlineExceeded and not the caller's
	// deadline).
	return NewError(CodeUnavailable, err)
}

// fromHTTPResponse builds the error for a refused request from its status,
// Wsrpc-Code header and body. A wsrpc server's body is its message; any
// other answer (a proxy's 502 page, a wrong URL's 404) keeps its status in
// front of the body, which alone said nothing to whoever reads the log
// ("unavailable: <html> <head><title>…", a walkthrough behind nginx).
func fromHTTPResponse(resp *http.Response, body []byte) *Error {
	c, ok := ParseCode(resp.Header.Get(CodeHeader))
	msg := strings.TrimSpace(string(body))
	if !ok {
		c = CodeFromHTTPStatus(resp.StatusCode)
		if msg != "" && resp.Status != "" {
			msg = resp.Status + ": " + msg
		}
	}
	if msg == "" {
		msg = resp.Status
	}
	return &Error{code: c, msg: msg, meta: resp.Header.Clone()}
}

// writeHTTPError answers a request refused before the upgrade.
func writeHTTPError(w http.ResponseWriter, err *Error) {
	writeHTTPStatus(w, err.code.onWire().HTTPStatus(), err)
}

// writeHTTPStatus is writeHTTPError with a status other than the code's
// (405 for a method the route does not serve). A code outside the table
// is sent as unknown: "code_99" would not parse, and the client would
// fall back to the status (500: internal), not read unknown as it does
// after the upgrade (close code 4002).
func writeHTTPStatus(w http.ResponseWriter, status int, err *Error) {
	setRefusalHeader(w.Header(), err)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, err.msg)
}

// refusePanicked answers a request whose handshake interceptor panicked
// before the upgrade with 500 internal, flushed before the panic goes on:
// net/http then closes the connection without finishing the response,
// so its length is set for the client to read it whole.
func refusePanicked(w http.ResponseWriter) {
	w.Header().Set("Content-Length", strconv.Itoa(len(errPanicked.msg)))
	writeHTTPError(w, errPanicked)
	_ = http.NewResponseController(w).Flush()
}

// setRefusalHeader sets the header of a refusal of err: its code in
// Wsrpc-Code (as the client reads it, fromHTTPResponse), and its message
// as plain text the browser does not sniff.
func setRefusalHeader(h http.Header, err *Error) {
	h.Set(CodeHeader, err.code.onWire().String())
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
}
