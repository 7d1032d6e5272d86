package websocket

import (
	"errors"
	"fmt"
	"io"

	"github.com/wsrpc/wsrpc/internal/peertext"
)

// errWouldBlock: a Poller's worker found no input between messages.
var errWouldBlock = errors.New("websocket: no input")

// errNoCloseFrame is what a read returns when the peer ended the TCP
// connection (a FIN, or a reset) without a close frame: RFC 6455 §7.1.5
// makes that close 1006, which CloseStatus reports. It wraps
// io.ErrUnexpectedEOF, which callers test for (docs/security.md).
var errNoCloseFrame = fmt.Errorf("websocket: connection closed without a close frame (%d): %w", int(StatusAbnormalClosure), io.ErrUnexpectedEOF)

// Sentinel errors (test with errors.Is). What a Conn's calls return:
//   - the peer's close frame: a *CloseError;
//   - a broken rule or limit (ours or the peer's): ErrProtocol,
//     ErrInvalidUTF8, ErrInvalidPayload or ErrMessageTooBig, the
//     connection failed with the matching close code;
//   - the call's own ctx ended: ctx's error itself (context.Canceled,
//     context.DeadlineExceeded), the connection closed if a message was
//     under way;
//   - the network failed: the I/O error, wrapped (a write past WriteTimeout
//     wraps os.ErrDeadlineExceeded, a reset the system call's errno, a
//     FIN or reset without a close frame io.ErrUnexpectedEOF: 1006);
//   - any call after the connection closed: the peer's *CloseError if
//     its close frame arrived, else ErrClosed, wrapping what closed it;
//   - a misuse: ErrRawMode, ErrWriterClosed, ErrReaderDiscarded, or an
//     error naming the bad argument (a close code or reason Close may
//     not send, an invalid message type).
var (
	// ErrClosed is returned by calls on a connection that is already
	// closed. The calls of a zero Conn (not from Accept or Dial) return
	// an error wrapping it.
	ErrClosed = errors.New("websocket: connection closed")
	// ErrProtocol means the peer broke RFC 6455; the connection was failed
	// with close code 1002.
	ErrProtocol = errors.New("websocket: protocol error")
	// ErrInvalidUTF8 means a text message or close reason was not valid
	// UTF-8; the connection was failed with close code 1007 (RFC 6455 §8.1).
	ErrInvalidUTF8 = errors.New("websocket: invalid UTF-8")
	// ErrInvalidPayload means an extension could not decode a message (for
	// example corrupt compressed data); the connection was failed with 1007.
	ErrInvalidPayload = errors.New("websocket: invalid message payload")
	// ErrMessageTooBig means a frame or message exceeded MaxFrameSize or
	// MaxMessageSize; the connection was failed with close code 1009.
	ErrMessageTooBig = errors.New("websocket: message too big")
	// ErrPongTimeout means no pong arrived within PongTimeout of a ping.
	ErrPongTimeout = errors.New("websocket: pong timeout")
	// ErrInvalidDial is wrapped by Dial's errors for a request it cannot
	// make at all: an unparsable URL, a scheme other than ws, wss, http or
	// https, no host, a DialOptions.Header it refuses, Subprotocols that
	// are not unique tokens, or an extension offer (ClientOffers) whose
	// names or values are not tokens. Nothing was sent; retrying the same
	// request fails the same way.
	ErrInvalidDial = errors.New("websocket: invalid dial request")
	// ErrBadHandshake is wrapped by every handshake failure.
	ErrBadHandshake = errors.New("websocket: bad handshake")
	// ErrRawMode is returned by message calls on a raw connection and by
	// frame calls on a message-mode connection.
	ErrRawMode = errors.New("websocket: wrong mode for this call (raw vs message)")
	// ErrPollerClosed is returned by Poller.Serve after Poller.Close, and
	// is the reason handed to OnClose for connections Close ended. The
	// methods of a zero Poller (not created with NewPoller) return an
	// error wrapping it.
	ErrPollerClosed = errors.New("websocket: poller closed")
	// ErrWriterClosed is returned by Write through a Writer after its
	// Close: a kept Writer never writes into a later message.
	ErrWriterClosed = errors.New("websocket: write to a closed message writer")
	// ErrCloseNotSent is wrapped, next to why, by a Close whose close
	// frame never went out: a write in progress held the connection for
	// the close timeout (its peer stopped reading) and the TCP connection
	// was closed under it, or the connection was closed before the frame
	// could be written. The peer saw the connection drop, 1006 (RFC 6455
	// §7.1.5), not the code Close was given.
	ErrCloseNotSent = errors.New("websocket: close frame not sent")
	// ErrReaderDiscarded is returned by Read through a Reader whose
	// message a later Reader, Read or ReadAppend discarded before it was
	// read to its end: what was left of it is gone, and a kept Reader
	// never reads a later message. The connection stays usable.
	ErrReaderDiscarded = errors.New("websocket: read from a Reader whose message was discarded by a later read call")
)

// StatusCode is a close code (RFC 6455 §7.4).
type StatusCode int

// Close codes defined by RFC 6455 §7.4.1 and the IANA registry.
const (
	StatusNormalClosure         StatusCode = 1000
	StatusGoingAway             StatusCode = 1001
	StatusProtocolError         StatusCode = 1002
	StatusUnsupportedData       StatusCode = 1003
	StatusNoStatusRcvd          StatusCode = 1005 // never sent: no code in the close frame
	StatusAbnormalClosure       StatusCode = 1006 // never sent: TCP closed without a close frame
	StatusInvalidFramePayload   StatusCode = 1007
	StatusPolicyViolation       StatusCode = 1008
	StatusMessageTooBig         StatusCode = 1009
	StatusMandatoryExtension    StatusCode = 1010
	StatusInternalError         StatusCode = 1011
	StatusServiceRestart        StatusCode = 1012
	StatusTryAgainLater         StatusCode = 1013
	StatusBadGateway            StatusCode = 1014
	StatusTLSHandshake          StatusCode = 1015 // never sent
	statusApplicationRangeStart StatusCode = 3000
	statusPrivateRangeEnd       StatusCode = 4999
)

// validReceived reports whether code may appear in a received close frame
// (RFC 6455 §7.4.1-2): 1000–1003, 1007–1014 and the 3000–4999 ranges.
// 1004–1006 and 1015 are reserved, 1016–2999 unassigned, ≥5000 undefined.
func (s StatusCode) validReceived() bool {
	switch {
	case s >= 1000 && s <= 1003:
		return true
	case s >= 1007 && s <= 1014:
		return true
	case s >= statusApplicationRangeStart && s <= statusPrivateRangeEnd:
		return true
	}
	return false
}

// Sendable reports whether Close may send code: the codes a close frame may
// carry (1000–1003, 1007–1014, 3000–4999), not the reserved ones that stand
// for a missing code or close frame (1005, 1006, 1015).
func (s StatusCode) Sendable() bool { return s.validReceived() }

func (s StatusCode) String() string {
	switch s {
	case StatusNormalClosure:
		return "normal closure"
	case StatusGoingAway:
		return "going away"
	case StatusProtocolError:
		return "protocol error"
	case StatusUnsupportedData:
		return "unsupported data"
	case StatusNoStatusRcvd:
		return "no status"
	case StatusAbnormalClosure:
		return "abnormal closure"
	case StatusInvalidFramePayload:
		return "invalid frame payload data"
	case StatusPolicyViolation:
		return "policy violation"
	case StatusMessageTooBig:
		return "message too big"
	case StatusMandatoryExtension:
		return "mandatory extension"
	case StatusInternalError:
		return "internal error"
	case StatusServiceRestart:
		return "service restart"
	case StatusTryAgainLater:
		return "try again later"
	case StatusBadGateway:
		return "bad gateway"
	case StatusTLSHandshake:
		return "TLS handshake"
	}
	return fmt.Sprintf("status %d", int(s))
}

// CloseError is the peer's close frame: the code and reason it sent. A read
// that ends because the peer closed returns a *CloseError, so a handler can
// tell a clean close from a failure (errors.As, or CloseStatus).
type CloseError struct {
	Code StatusCode
	// Reason is the reason as the peer sent it: UTF-8 (RFC 6455 §5.5.1),
	// which may hold control characters, line breaks and bidirectional
	// overrides. Error shows it escaped.
	Reason string
}

// Error reports the code and the reason, the reason on one line (line breaks
// as spaces; control characters, bidirectional overrides and bytes that are
// not UTF-8 escaped), so that a peer's text cannot drive the terminal or
// split the log line it is printed on.
func (e *CloseError) Error() string {
	reason := peertext.OneLine(e.Reason)
	if reason == "" {
		return fmt.Sprintf("websocket: closed by peer: %d (%v)", int(e.Code), e.Code)
	}
	return fmt.Sprintf("websocket: closed by peer: %d (%v): %s", int(e.Code), e.Code, reason)
}

// CloseStatus returns the code of the peer's close frame carried by err;
// StatusAbnormalClosure (1006) when err says the peer ended the connection
// without a close frame (TCP closed or reset; such an err wraps
// io.ErrUnexpectedEOF), the code RFC 6455 §7.1.5 and §7.4.1 reserve for
// reporting exactly that; and -1 for any other err (nil, a context's
// error, ErrClosed after our own close, a failure: see FailureStatus).
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	if errors.Is(err, errNoCloseFrame) {
		return StatusAbnormalClosure
	}
	return -1
}

// FailureStatus returns the code of the close frame this side sent when err
// made it fail the connection (RFC 6455 §7.1.7: 1002 for a protocol
// violation, 1007 for invalid UTF-8 or a payload an extension could not
// decode, 1009 for a frame or message over the limits), or -1 when err is
// not such a failure (the peer's close: see CloseStatus).
func FailureStatus(err error) StatusCode {
	var f *failure
	if errors.As(err, &f) {
		return f.code
	}
	return -1
}

// failure is a local decision to fail the connection (RFC 6455 §7.1.7): the
// code we send in our close frame and the error the caller sees.
type failure struct {
	code StatusCode
	err  error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func protocolErr(format string, args ...any) error {
	return failWith(StatusProtocolError, ErrProtocol, format, args...)
}

// failWith returns the failure that closes with code, its error wrapping
// sentinel. The error's text is also the close reason (RFC 6455 §7.1.6),
// so it reads "<sentinel>: <what broke the rule>" ("websocket: invalid
// UTF-8: text message"): the package prefix once, where "websocket: %s: %w"
// repeated it, and the kind first, so a reason cut to 123 bytes keeps it.
// format takes no %w: the sentinel is what errors.Is finds.
func failWith(code StatusCode, sentinel error, format string, args ...any) error {
	return &failure{code, fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// closeNotSent is Close's error when its close frame never went out: err
// as it is, which errors.Is also finds ErrCloseNotSent in.
type closeNotSent struct{ err error }

func (e closeNotSent) Error() string   { return e.err.Error() }
func (e closeNotSent) Unwrap() []error { return []error{e.err, ErrCloseNotSent} }
