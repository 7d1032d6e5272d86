package sse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/httpfield"
)

// Event is one server-sent event, as written by a server Stream and as
// yielded by the client and the Parser.
//
// Written by a server (Send, Prepare):
//   - ID, when non-empty, is written as an "id:" line; the client makes it
//     its last event ID and sends it back as Last-Event-ID when it
//     reconnects. It may not contain CR, LF or NUL.
//   - Type, when non-empty, is written as an "event:" line; clients
//     default to "message". It may not contain CR, LF or NUL.
//   - Data is written as one "data:" line per line of Data (CRLF, CR and
//     LF all split lines, since clients do too). A data field is written
//     when Data is non-empty or Type is set; an event without one only
//     updates the client's last event ID or reconnection time and is not
//     dispatched (WHATWG HTML §9.2.6).
//   - Retry, when positive or when HasRetry is set, is written as
//     "retry:" in whole milliseconds (rounded up); the client waits that
//     long before reconnecting. HasRetry with a zero Retry sends
//     "retry: 0": reconnect at once (this package's client waits at
//     least 100 ms; WHATWG HTML §9.2.6 takes any run of
//     digits).
//   - Comment is written as ":" lines before the fields; clients ignore
//     it (WHATWG HTML §9.2.6) unless they ask for comment events.
//
// Yielded by a client:
//   - Type is the event type, "message" by default, for every dispatched
//     event. It is "" only for comment and retry events, which a client
//     yields only when ShowCommentEvents or ShowRetryEvents ask for them.
//   - ID is the last event ID string at dispatch: sticky across events,
//     reset by an empty "id:" (WHATWG HTML §9.2.6 "dispatch the event").
//   - Data is the data lines joined with LF.
//   - Retry is the reconnection time set in this event's block, if any,
//     and HasRetry says whether the block had a valid "retry:" field, so
//     that "retry: 0" (reconnect at once: at least 100 ms later here) is
//     told apart from none.
//   - Comment is the comment lines of this event's block joined with LF
//     (each without its leading colon and one optional space), kept only
//     when ShowCommentEvents asks for comments; otherwise it is empty.
type Event struct {
	ID       string
	Type     string
	Data     string
	Retry    time.Duration
	HasRetry bool
	Comment  string
}

// hasData reports whether a server writes a data field for e.
func (e *Event) hasData() bool { return e.Data != "" || e.Type != "" }

func (e *Event) validate() error {
	if why := idProblem(e.ID); why != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidID, e.ID, why)
	}
	if strings.ContainsAny(e.Type, "\r\n\x00") {
		return fmt.Errorf("%w %q: contains CR, LF or NUL", ErrInvalidType, e.Type)
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: negative duration %v", ErrInvalidRetry, e.Retry)
	}
	if !e.hasData() && e.ID == "" && e.Retry == 0 && !e.HasRetry && e.Comment == "" {
		return ErrEmptyEvent
	}
	return nil
}

// idProblem says why id could not make the round trip from an "id:" line
// to a Last-Event-ID header and back unchanged (see ErrInvalidID), or ""
// if it can.
func idProblem(id string) string {
	if why := headerValueProblem(id); why != "" { // CR, LF and NUL included
		return why
	}
	if t := strings.Trim(id, " \t"); len(t) != len(id) {
		return "leading or trailing space or tab"
	}
	if !utf8.ValidString(id) {
		return "invalid UTF-8"
	}
	return ""
}

// headerValueProblem says why v cannot be sent as an HTTP header value
// (RFC 9110 §5.5: no control characters but tab), or "" if it can.
func headerValueProblem(v string) string {
	if !httpfield.ValidValue(v) {
		return "contains a control character"
	}
	return ""
}

// AppendEvent appends the text/event-stream encoding of e, terminated by
// the blank line that makes clients dispatch it, to dst. It returns an
// error wrapping ErrInvalidID, ErrInvalidType, ErrInvalidRetry or
// ErrEmptyEvent for an event that cannot be encoded. Cost: one pass over
// the fields; no allocation beyond growing dst.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.validate(); err != nil {
		return dst, err
	}
	if e.Comment != "" {
		dst = appendLines(dst, ":", e.Comment)
	}
	if e.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 || e.HasRetry {
		// Rounded up by adding one for a remainder: adding 999,999 ns
		// first would overflow near math.MaxInt64 and write a negative
		// number, which clients ignore (not all digits).
		ms := e.Retry / time.Millisecond
		if e.Retry%time.Millisecond != 0 {
			ms++
		}
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, int64(ms), 10)
		dst = append(dst, '\n')
	}
	if e.hasData() {
		dst = appendLines(dst, "data:", e.Data)
	}
	return append(dst, '\n'), nil
}

// appendLines writes one "<prefix> line" per line of text, splitting on
// CRLF, CR and LF as a client will (WHATWG HTML §9.2.5). The space is
// written only before a non-empty value: exactly one leading space is
// stripped by the client, so a value that itself starts with a space
// survives.
func appendLines(dst []byte, prefix, text string) []byte {
	for {
		i := strings.IndexAny(text, "\r\n")
		line := text
		if i >= 0 {
			line = text[:i]
		}
		dst = append(dst, prefix...)
		if line != "" {
			dst = append(dst, ' ')
			dst = append(dst, line...)
		}
		dst = append(dst, '\n')
		if i < 0 {
			return dst
		}
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

// Prepared is an event encoded once, to be written to many streams with
// Stream.SendPrepared without encoding it again (the way a hub fans one
// event out to every subscriber).
//
// Concurrency: a Prepared is immutable; share it between goroutines
// freely.
type Prepared struct {
	id   string
	wire []byte
}

// Prepare encodes e once. It fails like AppendEvent.
func Prepare(e Event) (*Prepared, error) {
	wire, err := AppendEvent(nil, e)
	if err != nil {
		return nil, err
	}
	return &Prepared{id: e.ID, wire: wire}, nil
}

// ID returns the id of the prepared event ("" if it has none).
func (p *Prepared) ID() string { return p.id }

// Len returns the size of the encoded event in bytes.
func (p *Prepared) Len() int { return len(p.wire) }

// AppendTo appends the encoded event to dst.
func (p *Prepared) AppendTo(dst []byte) []byte { return append(dst, p.wire...) }
