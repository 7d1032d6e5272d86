package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/internal/httpfield"
	"github.com/wsrpc/wsrpc/internal/peertext"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

func init() {
	register("sse", command{
		summary: "print Server-Sent Events as they arrive",
		run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
			return runSSE(ctx, args, stdout, stderr)
		},
	})
}

const sseUsage = `usage: wsrpc sse [flags] URL

Connects to URL and prints each event as it arrives, reconnecting like a
browser (with Last-Event-ID) until the server answers 204, ends a wsrpc
call (below), refuses with another status or content type, or the
reconnection limit is reached. A reconnection answered 502, 503 or 504
(a server restarting) is retried like a network failure, within the
limit.

Without --json each event is printed in text/event-stream form followed
by a blank line. With --json each dispatched event is one line:
  {"event":"<type>","data":"<data>","id":"<last event id>"}
and comment or retry events (only with --show-comments / --show-retry)
are {"comment":"..."} / {"retry":<ms>} lines ("retry: 0" included); a
block with both prints each part only when its own flag asks for it.

A wsrpc SSE method's stream ends with a wsrpc.end event (the handler
returned) or a wsrpc.error event (it failed). Neither is printed, and
neither is reconnected after, which would run the call again: wsrpc.end
exits 0, wsrpc.error exits 1 after printing on stderr
  wsrpc sse: <code>: <message>
(or "malformed wsrpc.error event: <data>" when its data is not wsrpc's
{"code":…,"message":…}). Except a wsrpc.error with code unavailable (a
transient failure: a server draining, a hub topic closed), which is
printed so and then reconnected over with Last-Event-ID, as wsrpc's
typed client does, within --max-reconnects (the event is no delivery:
a handler that fails so before any event uses the attempts up); with
reconnection disabled or no attempt left it exits 1 as the others do,
and so it does when that reconnection is answered 204 (the stream was
cut short: a wsrpc server answers 204 only after wsrpc.end).
--raw prints them as any other event instead,
for a server that is not wsrpc's (a wsrpc server answers the
reconnection after wsrpc.end, whose id is wsrpc.end, with 204: the
stream is over).

A refusal (a status other than 200 and 204, unless retried as above)
exits 1 after printing on stderr
  wsrpc sse: [<code>: ]sse: unexpected status <status>[: <message>]
where <code> is the response's Wsrpc-Code (a wsrpc server's refusal)
and <message> the start of its body (up to 1 KiB, on one line).

Each failed reconnection is reported on stderr, as
  wsrpc sse: reconnection attempt <N> failed: <error>
(N counts as --max-reconnects does; a first connection that fails is
retried without a line).

An https:// server's certificate is verified against the system's CAs
(SSL_CERT_FILE and SSL_CERT_DIR select others); --insecure skips that,
for testing only.

Exit status: 0 when the stream ends normally (wsrpc.end, 204, or the
connection ends with reconnection disabled), 1 on failure (wsrpc.error
included), 2 on a usage error, 130 when interrupted.

Flags:
`

// runSSE is the sse subcommand; it returns the exit status.
func runSSE(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stderr = diagnostics(stderr)
	fs := flag.NewFlagSet("sse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, sseUsage)
		fs.PrintDefaults()
	}
	var headers headerFlag
	fs.Var(&headers, "H", "request header `\"Name: value\"` (repeatable)")
	jsonOut := fs.Bool("json", false, "print one JSON object per event")
	maxReconnects := fs.Int("max-reconnects", -1, "give up after `N` reconnections in a row with nothing received between them (no event, nor heartbeats on a connection open a second or more); -1 means no limit, 0 never reconnects")
	reconnectTime := fs.Duration("reconnect-time", sse.DefaultReconnectionTime, "wait `D` before reconnecting; a retry: from the server overrides it")
	showComments := fs.Bool("show-comments", false, "also print comment events")
	showRetry := fs.Bool("show-retry", false, "also print retry-only events")
	lastEventID := fs.String("last-event-id", "", "resume after event `ID`: send it as Last-Event-ID with the first request (-H \"Last-Event-ID: ID\" does the same)")
	insecure := fs.Bool("insecure", false, insecureUsage)
	maxEventSize := fs.Int("max-event-size", sse.DefaultMaxEventSize, "largest event (its data) and longest line to accept, in `BYTES`; a larger one ends the stream")
	idleTimeout := fs.Duration("idle-timeout", 0, "reconnect when nothing (not even a heartbeat comment) arrives for `D`; set it to 2–3× the server's heartbeat interval; 0 waits for ever, as TCP does on a path gone dark")
	raw := fs.Bool("raw", false, "print wsrpc.end and wsrpc.error events as any other, instead of ending on them (for a server that is not wsrpc's)")

	url, code, ok := parseURLAndFlags(fs, args, "http", "https")
	if !ok {
		return code
	}
	if *reconnectTime <= 0 {
		fmt.Fprintln(stderr, "wsrpc sse: --reconnect-time must be positive")
		return 2
	}
	if *maxEventSize <= 0 {
		fmt.Fprintln(stderr, "wsrpc sse: --max-event-size must be positive")
		return 2
	}
	if *idleTimeout < 0 {
		fmt.Fprintln(stderr, "wsrpc sse: --idle-timeout must not be negative")
		return 2
	}
	header := headers.header()
	// A Last-Event-ID header becomes the option: the client then owns the
	// header, and sends none once the server resets the id with an empty
	// id field (WHATWG HTML §9.2.6), where a fixed header would ask to
	// resume from the old id on every reconnection.
	if ids := header.Values("Last-Event-ID"); len(ids) > 0 {
		if len(ids) > 1 || *lastEventID != "" {
			fmt.Fprintln(stderr, "wsrpc sse: give one Last-Event-ID: --last-event-id or -H, once")
			return 2
		}
		*lastEventID = ids[0]
		header.Del("Last-Event-ID")
	}
	if !httpfield.ValidValue(*lastEventID) {
		fmt.Fprintln(stderr, "wsrpc sse: --last-event-id has a control character")
		return 2
	}
	// retrying: the session was told to reconnect over a handler's
	// unavailable and has made no attempt since (see the loop below);
	// cutShort: that attempt was answered 204, which a wsrpc server
	// answers only after wsrpc.end.
	retrying, cutShort := false, false
	opts := &sse.ClientOptions{
		Header:            header,
		LastEventID:       *lastEventID,
		ReconnectionTime:  *reconnectTime,
		MaxEventSize:      *maxEventSize,
		IdleTimeout:       *idleTimeout,
		ShowCommentEvents: *showComments,
		ShowRetryEvents:   *showRetry,
		// Without this a dead host is retried for ever in silence.
		// Called on this goroutine (the one ranging over Events).
		OnReconnect: func(attempt int, err error) {
			cutShort = retrying && err == io.EOF
			retrying = false
			if err != nil && err != io.EOF { // io.EOF: a 204, the normal end
				fmt.Fprintf(stderr, "wsrpc sse: reconnection attempt %d failed: %s\n", attempt, failureText(err))
			}
		},
	}
	if *insecure {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		opts.HTTPClient = &http.Client{Transport: t}
	}
	switch n := *maxReconnects; {
	case n < 0:
		opts.MaxReconnectionAttempts = 0 // no limit
	case n == 0:
		opts.MaxReconnectionAttempts = -1 // never reconnect
	default:
		opts.MaxReconnectionAttempts = n
	}

	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	show := showFlags{comments: *showComments, retry: *showRetry}
	sess := sse.NewSession(ctx, url, opts)
	defer sess.Close()
	for ev, err := range sess.Events() {
		if err != nil {
			out.Flush()
			if ctx.Err() != nil {
				return 130
			}
			if retrying && errors.Is(err, sse.ErrReconnectLimit) {
				// No attempt left after the handler's unavailable, whose
				// line is printed: it ends the command as any other
				// wsrpc.error does.
				return 1
			}
			fmt.Fprintf(stderr, "wsrpc sse: %s\n", failureText(err))
			return 1
		}
		if !*raw {
			// A wsrpc SSE handler ends its stream with one of these and
			// then closes it; reconnecting, as EventSource would, runs
			// the call again (wsrpc's typed client stops at them too),
			// which a handler's unavailable asks for: come back later.
			// out holds nothing: it is flushed after each event.
			switch ev.Type {
			case wsrpc.SSEEventEnd:
				return 0
			case wsrpc.SSEEventError:
				text, code := wsrpcError(ev.Data)
				fmt.Fprintf(stderr, "wsrpc sse: %s\n", text)
				if code != wsrpc.CodeUnavailable.String() {
					return 1
				}
				// As wsrpc's typed client does (and WithReconnect on a
				// WebSocket's 4014): resume with Last-Event-ID, the last
				// event's id, since wsrpc.error carries none.
				retrying = true
				sess.Reconnect()
				continue
			}
		}
		if *jsonOut {
			err = writeEventJSON(enc, ev, show)
		} else {
			err = writeEventText(out, ev, show)
		}
		if err == nil {
			err = out.Flush()
		}
		if err != nil {
			fmt.Fprintf(stderr, "wsrpc sse: write output: %v\n", err)
			return 1
		}
	}
	if retrying {
		// Reconnection disabled (--max-reconnects 0): the session ended
		// at the handler's unavailable, as at any other wsrpc.error.
		return 1
	}
	if cutShort {
		// A 204 to the reconnection over a handler's unavailable: not a
		// wsrpc server's end (it answers 204 only after wsrpc.end), so
		// the stream was cut short, as wsrpc's typed client reports it.
		fmt.Fprintf(stderr, "wsrpc sse: the stream ended without %s: the reconnection after unavailable was answered 204 No Content\n", wsrpc.SSEEventEnd)
		return 1
	}
	return 0
}

// failureText is how a failure is reported. A refused request's error
// (*sse.StatusError) shows the status and the start of the body, the
// server's message; when the response names a wsrpc code (Wsrpc-Code: a
// wsrpc handler's or interceptor's refusal) that code leads, as on a
// wsrpc.error event's line ("<code>: …"), printed as sent, like there.
// Exhausted reconnections keep their own wording, the last refusal in it.
func failureText(err error) string {
	var se *sse.StatusError
	if errors.As(err, &se) && !errors.Is(err, sse.ErrReconnectLimit) {
		if code := se.Header.Get(wsrpc.CodeHeader); code != "" {
			return code + ": " + err.Error()
		}
	}
	return err.Error()
}

// wsrpcError reads a wsrpc.error event's data, {"code":"<code
// name>","message":"…"} (the root package's sseErrorEvent; the message
// may be absent): code is the code as sent ("" when the data is not
// that), and text how the event is reported, "<code>: <message>", or
// "malformed wsrpc.error event: <data>", the data whole. The code is
// printed as sent, even a name this build does not know (a newer
// server's). All of the text is the server's, on one line (peertext's
// rule): stderr's escaping lets line breaks through, with which it would
// forge lines of its own.
func wsrpcError(data string) (text, code string) {
	var d struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil || d.Code == "" {
		return "malformed " + wsrpc.SSEEventError + " event: " + peertext.OneLine(data), ""
	}
	shown, msg := peertext.OneLine(d.Code), peertext.OneLine(d.Message)
	if msg == "" {
		return shown, d.Code
	}
	return shown + ": " + msg, d.Code
}

// dispatchedJSON is the --json form of a dispatched event; the field
// order is part of the output format.
type dispatchedJSON struct {
	Event string `json:"event"`
	Data  string `json:"data"`
	ID    string `json:"id"`
}

// controlJSON is the --json form of a comment or retry event.
type controlJSON struct {
	Comment *string `json:"comment,omitempty"`
	Retry   *int64  `json:"retry,omitempty"` // a pointer: "retry: 0" is printed
}

// controlParts says what to print of a comment or retry event (Type ""):
// the library yields a block with both a comment and a retry when either
// flag asks for it, so each part is printed only if its own flag is set.
// HasRetry, not a positive Retry, tells a retry: "retry: 0" is one
// (WHATWG HTML §9.2.6). With no retry to print, the event is a comment
// event even if its comment is empty.
func controlParts(ev sse.Event, show showFlags) (comment, retry bool) {
	retry = show.retry && ev.HasRetry
	comment = show.comments && (ev.Comment != "" || !retry)
	return comment, retry
}

// showFlags are --show-comments and --show-retry.
type showFlags struct{ comments, retry bool }

func writeEventJSON(enc *json.Encoder, ev sse.Event, show showFlags) error {
	if ev.Type != "" {
		return enc.Encode(dispatchedJSON{Event: ev.Type, Data: ev.Data, ID: ev.ID})
	}
	var c controlJSON
	comment, retry := controlParts(ev, show)
	if comment {
		c.Comment = &ev.Comment
	}
	if retry {
		ms := ev.Retry.Milliseconds()
		c.Retry = &ms
	}
	return enc.Encode(c)
}

// writeEventText prints ev in text/event-stream form: the dispatched
// event's type, last event id and data, or the comment and retry of a
// comment or retry event.
func writeEventText(w *bufio.Writer, ev sse.Event, show showFlags) error {
	if ev.Type == "" {
		comment, retry := controlParts(ev, show)
		if comment {
			for _, line := range strings.Split(ev.Comment, "\n") {
				fmt.Fprintf(w, ": %s\n", line)
			}
		}
		if retry {
			fmt.Fprintf(w, "retry: %d\n", ev.Retry/time.Millisecond)
		}
		_, err := w.WriteString("\n")
		return err
	}
	fmt.Fprintf(w, "event: %s\n", ev.Type)
	if ev.ID != "" {
		fmt.Fprintf(w, "id: %s\n", ev.ID)
	}
	for _, line := range strings.Split(ev.Data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	_, err := w.WriteString("\n")
	return err
}
