package sse

import (
	"errors"
	"net/http"

	"github.com/wsrpc/wsrpc/internal/peertext"
)

// Sentinel errors. Functions wrap them with %w and a lowercase phrase, so
// test with errors.Is.
var (
	// ErrInvalidID is returned when an event id could not come back
	// unchanged: one holding CR or LF cannot be written as one "id:" line,
	// WHATWG HTML §9.2.6 makes clients ignore ids containing NUL, and a
	// reconnecting client returns the id in a Last-Event-ID header, which
	// holds no other control character (tab aside), loses leading and
	// trailing spaces and tabs, and, after the client's UTF-8 decoding,
	// cannot carry invalid UTF-8. A Session whose server sent an id it
	// cannot put in that header fails with it rather than reconnect.
	ErrInvalidID = errors.New("sse: invalid event id")

	// ErrBadURL is returned by a client given a URL it cannot request:
	// unparsable, or not http:// or https:// with a host. No attempt is
	// made again, as a browser's EventSource throws at once.
	ErrBadURL = errors.New("sse: bad URL")

	// ErrInvalidHeader is returned by a client whose ClientOptions.Header
	// has a field no request can carry: a name that is not a token (RFC
	// 9110 §5.1) or a value with a control character other than tab (RFC
	// 9110 §5.5). net/http would refuse every request, so no attempt is
	// made, and none again.
	ErrInvalidHeader = errors.New("sse: invalid request header")

	// ErrReplayStore is wrapped by NewStream's error when the replay
	// store's Since failed with anything but ErrUnknownID: the store's
	// failure (a database out for a moment), which the client's next
	// reconnection may not meet, where NewStream's other errors before
	// the 200 are the handler's configuration, which asking again does
	// not mend. A handler answers it with a stream that ends at once:
	// NewStream again without Replay (its Retry, when set, tells the
	// client when to come back), then Close. A browser's EventSource
	// reconnects after such a stream with its Last-Event-ID, but fails
	// for good on any status but 200 (WHATWG HTML §9.2.3), 503
	// included, as Client does on a first request's; and Client counts
	// a connection that ends before an event toward
	// MaxReconnectionAttempts, with backoff, so a store that stays out
	// is not hammered. An event that says why (CloseWith, with no id, so
	// the client keeps its own) is a delivery unless the consumer
	// reconnects over it with Session.Reconnect, as wsrpc's typed
	// clients do over the wsrpc.error (unavailable) that its typed SSE
	// handlers end such a stream with; hub.SSEHandler sends none. 500
	// would end every client resuming during the outage for good.
	ErrReplayStore = errors.New("sse: replay store")

	// ErrInvalidType is returned when an event type contains CR, LF or NUL.
	ErrInvalidType = errors.New("sse: invalid event type")

	// ErrInvalidRetry is returned for a negative reconnection time.
	ErrInvalidRetry = errors.New("sse: invalid retry")

	// ErrEmptyEvent is returned by Send and Prepare for an Event with no
	// field set: it would write nothing.
	ErrEmptyEvent = errors.New("sse: empty event")

	// ErrEventTooLarge is returned by the parser when a line or an
	// event's accumulated data and (shown) comments exceed the configured
	// limit.
	ErrEventTooLarge = errors.New("sse: event too large")

	// ErrStreamClosed is returned by a server Stream used after Close.
	ErrStreamClosed = errors.New("sse: stream closed")

	// ErrClientGone is returned by a server Stream once the client has
	// disconnected (the request context is done), unless a write timed
	// out first (ErrWriteTimeout).
	ErrClientGone = errors.New("sse: client went away")

	// ErrWriteTimeout is returned by a server Stream whose write (or
	// flush) made no progress for StreamOptions.WriteTimeout: the client
	// is connected but stopped reading. It wraps the write's error
	// (os.ErrDeadlineExceeded) and ends the stream. Over HTTP/1.1 net/http
	// cancels the request's context when a write fails, so the timeout
	// cannot be told from a departure by the context: the write's error
	// decides.
	ErrWriteTimeout = errors.New("sse: write timed out: the client stopped reading")

	// ErrFlushUnsupported is returned by NewStream, before it writes
	// anything, when the http.ResponseWriter cannot flush, so events could
	// not be delivered as they are sent. (A writer whose FlushError
	// reports http.ErrNotSupported only says so when it flushes: the
	// write fails with ErrFlushUnsupported then.)
	ErrFlushUnsupported = errors.New("sse: response writer cannot flush")

	// ErrUnknownID is returned by Store.Since when it cannot return every
	// event after the requested id (it was evicted with events after it,
	// or never recorded).
	ErrUnknownID = errors.New("sse: unknown event id")

	// ErrDuplicateID is returned by Ring.Append for an id it already holds.
	ErrDuplicateID = errors.New("sse: duplicate event id")

	// ErrContentType is returned by the client when a response is not
	// text/event-stream (WHATWG HTML §9.2.3: fail the connection), or is
	// in a content coding it cannot decode (anything but gzip).
	ErrContentType = errors.New("sse: unexpected content type")

	// ErrReconnectLimit is returned by the client when the stream dropped
	// and MaxReconnectionAttempts reconnections in a row have failed; it
	// wraps the last cause.
	ErrReconnectLimit = errors.New("sse: reconnection attempts exhausted")

	// ErrIdleTimeout is the error of a client connection on which no
	// bytes arrived for ClientOptions.IdleTimeout: taken for lost, as a
	// network failure, so the client reconnects.
	ErrIdleTimeout = errors.New("sse: idle timeout")

	// ErrDecode wraps an error returned by the decode function of Decode.
	ErrDecode = errors.New("sse: decode event")
)

// StatusError is returned by the client when the server answers with an
// HTTP status other than 200 (or 204, which ends the stream without
// error). Per WHATWG HTML §9.2.3 the client fails and does not reconnect,
// with one exception: a reconnection (a stream was open before) answered
// 502, 503 or 504 (RFC 9110 §15.6.3-5), as a server restarting or
// shutting down, or a proxy in front of one, answers, is retried like a
// network failure (or, with ClientOptions.RetryRefusal set, those it
// picks), within MaxReconnectionAttempts; a Retry-After header
// is not read (the reconnection time applies). When the attempts run out,
// the StatusError is wrapped in ErrReconnectLimit.
type StatusError struct {
	StatusCode int
	Status     string
	// Header is the response's header: an application's code for the
	// refusal (wsrpc's Wsrpc-Code, say), Retry-After.
	Header http.Header
	// Body is the start of the response's body, the server's reason: at
	// most 1 KiB, read within the request's context (and
	// IdleTimeout) and at most a second after the header, so that a
	// server that stalls its body delays no failure for long. Empty when
	// the refusal is itself an event stream (text/event-stream), whose
	// body may go on for ever, and when none came in time.
	Body []byte
}

// maxStatusBody is how much of a refusal's body a StatusError keeps: a
// reason, not an error page.
const maxStatusBody = 1 << 10

// Error reports the status and, when the body has text, that text on the
// same line, both made printable on one line: white space at their ends
// trimmed, line breaks and tabs as spaces, and control characters,
// bidirectional overrides and bytes that are not UTF-8 escaped (\u001b,
// \xff), so that a server's text cannot drive the terminal or split the
// log line it is printed on. The reason phrase needs it as much as the
// body: net/http refuses control characters in header lines but passes
// them in the status line. Status and Body keep the raw text.
func (e *StatusError) Error() string {
	msg := "sse: unexpected status " + peertext.OneLine(e.Status)
	if text := peertext.OneLine(string(e.Body)); text != "" {
		msg += ": " + text
	}
	return msg
}
