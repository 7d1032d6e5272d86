package sse_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// fast reconnects quickly, so tests do not wait the 3 s default.
func fast(o sse.ClientOptions) *sse.ClientOptions {
	if o.ReconnectionTime == 0 {
		o.ReconnectionTime = time.Millisecond
	}
	return &o
}

// collect runs the client until it stops and returns what it yielded.
func collect(t *testing.T, url string, opts *sse.ClientOptions) ([]sse.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var events []sse.Event
	for ev, err := range sse.Events(ctx, url, opts) {
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// rawConns serves each connection's request with the raw stream
// bodies[n] (n counting connections from 0; the last repeats) and
// records the requests.
type rawConns struct {
	mu       sync.Mutex
	requests []*http.Request
}

func (rc *rawConns) handler(t *testing.T, bodies ...func(w http.ResponseWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		n := len(rc.requests)
		rc.requests = append(rc.requests, r)
		rc.mu.Unlock()
		bodies[min(n, len(bodies)-1)](w)
	})
}

func (rc *rawConns) header(i int, name string) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests[i].Header.Get(name)
}

func (rc *rawConns) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

// stream answers with text/event-stream and writes chunks, flushing
// after each, so the client sees them arrive separately.
func stream(chunks ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	}
}

func status(code int, contentType string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(code)
		io.WriteString(w, "data: not an event stream\n\n")
	}
}

// contentType answers 200 with the given Content-Type and body.
func contentType(ct, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", ct)
		io.WriteString(w, body)
	}
}

func TestClientRawStream(t *testing.T) {
	var rc rawConns
	srv := newServer(t, rc.handler(t, stream(
		"\uFEFF: welcome\r\n",
		"id: 1\r\nevent: greet\r\ndata: hel", "lo\r\ndata: world\r\n\r",
		"\ndata: second\n\ndata: a\xffb\r\r",
		"retry: 5\n\nid\ndata: no id\n\n",
	), status(http.StatusNoContent, "")))
	events, err := collect(t, srv.URL, &sse.ClientOptions{Header: http.Header{"Authorization": {"Bearer x"}, "X-Multi": {"a", "b"}, "Host": {"events.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []sse.Event{
		{ID: "1", Type: "greet", Data: "hello\nworld"}, // "welcome" is hidden: comments are not kept
		{ID: "1", Type: "message", Data: "second"},
		{ID: "1", Type: "message", Data: "a\uFFFDb"},
		{ID: "", Type: "message", Data: "no id"},
	}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events:\n got %#v\nwant %#v", events, want)
	}
	if rc.count() != 2 {
		t.Fatalf("%d connections, want 2 (the stream, then 204)", rc.count())
	}
	for name, want := range map[string]string{"Accept": "text/event-stream", "Cache-Control": "no-cache", "Authorization": "Bearer x", "Last-Event-ID": ""} {
		if got := rc.header(0, name); got != want {
			t.Errorf("first request %s = %q, want %q", name, got, want)
		}
	}
	rc.mu.Lock()
	if got := rc.requests[0].Header.Values("X-Multi"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("X-Multi = %q", got)
	}
	if got := rc.requests[0].Host; got != "events.example" {
		t.Errorf("Host = %q, want the Header's events.example", got)
	}
	rc.mu.Unlock()
	// The empty id reset the last event ID, so none is sent.
	if got := rc.header(1, "Last-Event-ID"); got != "" {
		t.Errorf("reconnect Last-Event-ID = %q, want none", got)
	}
}

// TestClientReconnect: a dropped stream is reconnected with Last-Event-ID,
// waiting the server's retry instead of the (long) configured time.
func TestClientReconnect(t *testing.T) {
	var rc rawConns
	srv := newServer(t, rc.handler(t,
		stream("retry: 10\nid: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: partial"),
		stream("id: 3\ndata: c\n\n: no blank line after this\nid: 4\n"),
		stream("data: d\n\n"),
		status(http.StatusNoContent, ""),
	))
	var reconnects []string
	s, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{ReconnectionTime: time.Hour, LastEventID: "0",
		OnReconnect: func(attempt int, err error) { reconnects = append(reconnects, fmt.Sprint(attempt, " ", err)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for ev, err := range s.Events() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.ID+":"+ev.Data)
	}
	if want := []string{"1:a", "2:b", "3:c", "3:d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	// Every stream opened after an event, so each reconnection was the
	// first attempt since; the last found the stream over (204).
	if want := []string{"1 <nil>", "1 <nil>", "1 EOF"}; !reflect.DeepEqual(reconnects, want) {
		t.Errorf("OnReconnect calls %q, want %q", reconnects, want)
	}
	if s.ReconnectionTime() != 10*time.Millisecond {
		t.Errorf("ReconnectionTime = %v, want the server's 10ms", s.ReconnectionTime())
	}
	for i, want := range []string{"0", "2", "3", "3"} {
		if got := rc.header(i, "Last-Event-ID"); got != want {
			t.Errorf("request %d Last-Event-ID = %q, want %q", i, got, want)
		}
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after end = %v, want io.EOF", err)
	}
}

func TestClientStops(t *testing.T) {
	tests := []struct {
		name    string
		bodies  []func(http.ResponseWriter)
		opts    sse.ClientOptions
		events  int
		conns   int
		wantErr func(error) bool
	}{
		{name: "204 first", bodies: []func(http.ResponseWriter){status(204, "")}, conns: 1, wantErr: noError},
		{name: "204 on reconnect", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), status(204, "")}, events: 1, conns: 2, wantErr: noError},
		{name: "500", bodies: []func(http.ResponseWriter){status(500, "text/event-stream")}, conns: 1, wantErr: isStatus(500)},
		{name: "404 on reconnect", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), status(404, "text/event-stream")}, events: 1, conns: 2, wantErr: isStatus(404)},
		// A reconnection refused with 502, 503 or 504 (a server restarting
		// or shutting down, or its proxy meanwhile) is retried like a
		// network failure, within the limit; the first request's refusal
		// stays final, even when Events retried a network failure first.
		// Such refusals used to end the stream for good.
		{name: "503 first", bodies: []func(http.ResponseWriter){status(503, "text/plain")}, conns: 1, wantErr: isStatus(503)},
		{name: "503 after a network failure first", bodies: []func(http.ResponseWriter){hangUp, status(503, "text/plain")}, conns: 2, wantErr: isStatus(503)},
		{name: "502 503 504 on reconnect retried", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), status(502, "text/plain"), status(503, "text/plain"), status(504, "text/plain"), stream("data: b\n\n"), status(204, "")},
			events: 2, conns: 6, wantErr: noError},
		{name: "503 on reconnect within the limit", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), status(503, "text/plain")}, opts: sse.ClientOptions{MaxReconnectionAttempts: 2},
			events: 1, conns: 3, wantErr: both(is(sse.ErrReconnectLimit), isStatus(503))},
		{name: "500 on reconnect", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), status(500, "text/plain")}, events: 1, conns: 2, wantErr: isStatus(500)},
		{name: "301 without location", bodies: []func(http.ResponseWriter){status(301, "text/event-stream")}, conns: 1, wantErr: isStatus(301)},
		{name: "wrong content type", bodies: []func(http.ResponseWriter){status(200, "text/plain")}, conns: 1, wantErr: is(sse.ErrContentType)},
		{name: "no content type", bodies: []func(http.ResponseWriter){func(w http.ResponseWriter) { w.Header()["Content-Type"] = nil; w.WriteHeader(200) }}, conns: 1, wantErr: is(sse.ErrContentType)},
		{name: "charset ignored", bodies: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "Text/Event-Stream; charset=iso-8859-1")
			io.WriteString(w, "data: \xc3\xa9\n\n")
		}, status(204, "")}, events: 1, conns: 2, wantErr: noError},
		// A malformed parameter is skipped, as browsers do (WHATWG MIME
		// Sniffing §4.4): the essence alone decides. Such responses used
		// to fail with ErrContentType.
		{name: "malformed parameter ignored", bodies: []func(http.ResponseWriter){contentType("text/event-stream; charset", "data: a\n\n"),
			contentType("text/event-stream;;charset=utf-8", "data: b\n\n"), contentType(`text/event-stream; charset="utf-8`, "data: c\n\n"), status(204, "")},
			events: 3, conns: 4, wantErr: noError},
		// A parameter twice is malformed too (mime.ParseMediaType returns
		// no media type for it); browsers keep the first and the stream.
		{name: "duplicate parameter ignored", bodies: []func(http.ResponseWriter){contentType("text/event-stream; charset=utf-8; Charset=UTF-8", "data: a\n\n"), status(204, "")},
			events: 1, conns: 2, wantErr: noError},
		{name: "malformed parameter of another type", bodies: []func(http.ResponseWriter){contentType("text/plain; charset", "data: a\n\n")}, conns: 1, wantErr: is(sse.ErrContentType)},
		{name: "reconnect limit", bodies: []func(http.ResponseWriter){stream(": nothing\n")}, opts: sse.ClientOptions{MaxReconnectionAttempts: 3}, conns: 4, wantErr: is(sse.ErrReconnectLimit)},
		{name: "limit counts since last event", bodies: []func(http.ResponseWriter){stream("data: 1\n\n"), stream(""), stream("data: 2\n\n"), stream(""), stream("data: 3\n\n"), stream("")},
			opts: sse.ClientOptions{MaxReconnectionAttempts: 2}, events: 3, conns: 7, wantErr: is(sse.ErrReconnectLimit)},
		// Each connection delivers heartbeat comments (hidden) after the
		// block it opens with, and drops at once: comments cost a server
		// nothing, so they are no delivery on a connection that ended as
		// it opened, and the count goes on (held open a second, they
		// reset it: "heartbeats held open reset the count" below).
		{name: "heartbeats on connections ended at once", bodies: []func(http.ResponseWriter){stream(": open\n\n: hb\n\n"), stream(": hb\n\n: hb\n\n"), stream("retry: 1\n\n: hb\n\n"), stream(": open\n\n: hb\n\n"), stream("data: a\n\n"), status(204, "")},
			opts: sse.ClientOptions{MaxReconnectionAttempts: 1}, events: 0, conns: 2, wantErr: is(sse.ErrReconnectLimit)},
		{name: "reconnection disabled", bodies: []func(http.ResponseWriter){stream("data: a\n\n")}, opts: sse.ClientOptions{MaxReconnectionAttempts: -1}, events: 1, conns: 1, wantErr: noError},
		// Hidden comments are not kept, so they do not count toward
		// MaxEventSize: heartbeats without a blank line between them
		// used to end the stream for good with ErrEventTooLarge.
		{name: "hidden comments not counted", bodies: []func(http.ResponseWriter){stream(strings.Repeat(": ping\n", 20) + "data: x\n\n"), status(204, "")},
			opts: sse.ClientOptions{MaxEventSize: 64}, events: 1, conns: 2, wantErr: noError},
		{name: "event too large", bodies: []func(http.ResponseWriter){stream("data: " + strings.Repeat("x", 100) + "\n\n")}, opts: sse.ClientOptions{MaxEventSize: 10}, conns: 1, wantErr: is(sse.ErrEventTooLarge)},
		// Another server's id that no Last-Event-ID header can carry: net/http
		// would refuse every reconnection, so the session fails at once.
		{name: "id not a header value", bodies: []func(http.ResponseWriter){stream("id: a\x01b\ndata: a\n\n")}, events: 1, conns: 1, wantErr: is(sse.ErrInvalidID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, rc.handler(t, tt.bodies...))
			events, err := collect(t, srv.URL, fast(tt.opts))
			if !tt.wantErr(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(events) != tt.events || rc.count() != tt.conns {
				t.Fatalf("%d events over %d connections, want %d over %d", len(events), rc.count(), tt.events, tt.conns)
			}
		})
	}
	t.Run("heartbeats held open reset the count", func(t *testing.T) {
		sse.SetHeldOpen(t, 0) // every connection counts as held open long enough
		var rc rawConns
		srv := newServer(t, rc.handler(t, stream(": open\n\n: hb\n\n"), stream(": hb\n\n: hb\n\n"), stream("retry: 1\n\n: hb\n\n"), stream(": open\n\n: hb\n\n"), stream("data: a\n\n"), status(204, "")))
		events, err := collect(t, srv.URL, fast(sse.ClientOptions{MaxReconnectionAttempts: 1}))
		if err != nil || len(events) != 1 || rc.count() != 6 {
			t.Fatalf("%d events over %d connections, %v; want 1 over 6, nil", len(events), rc.count(), err)
		}
	})
	t.Run("connect on 204", func(t *testing.T) {
		srv := newServer(t, (&rawConns{}).handler(t, status(204, "")))
		if s, err := sse.Connect(context.Background(), srv.URL, nil); s != nil || err != io.EOF {
			t.Fatalf("Connect = %v, %v; want nil, io.EOF", s, err)
		}
	})
	t.Run("connect reports status", func(t *testing.T) {
		srv := newServer(t, (&rawConns{}).handler(t, status(503, "")))
		_, err := sse.Connect(context.Background(), srv.URL, nil)
		var se *sse.StatusError
		if !errors.As(err, &se) || se.StatusCode != 503 || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Connect = %v, want a *StatusError 503", err)
		}
	})
}

// TestStatusErrorKeepsReason: a refused request's *StatusError keeps the
// response's header and the start of its body (at most 1 KiB), and its
// Error shows that text on one line with control characters escaped, so
// that an application's code (wsrpc's Wsrpc-Code) and message reach the
// caller. It used to keep the status alone: "sse: unexpected status 400
// Bad Request" for a refusal that said why. An event stream's body, which
// may not end, is not read, nor is a body the server stalls waited for
// past a bound (the refusal still fails at once, with what came).
func TestStatusErrorKeepsReason(t *testing.T) {
	// stall holds a response open until the client leaves (bounded, so
	// that a client that never leaves fails the test, not hangs it).
	stall := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantBody  string
		wantError string
	}{
		{"reason", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Wsrpc-Code", "invalid_argument")
			http.Error(w, "room is required", http.StatusBadRequest)
		}, "room is required\n", "sse: unexpected status 400 Bad Request: room is required"},
		{"control characters", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "\x1b]0;owned\a\r\nsecond line\xff \u202eevil", http.StatusForbidden)
		}, "\x1b]0;owned\a\r\nsecond line\xff \u202eevil\n", `sse: unexpected status 403 Forbidden: \u001b]0;owned\u0007  second line\xff \u202eevil`},
		{"long", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, strings.Repeat("x", 5000), http.StatusInternalServerError)
		}, strings.Repeat("x", 1024), "sse: unexpected status 500 Internal Server Error: " + strings.Repeat("x", 1024)},
		{"empty", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
		}, "", "sse: unexpected status 404 Not Found"},
		{"event stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "data: not read\n\n")
			http.NewResponseController(w).Flush()
			stall(r) // a stream that does not end
		}, "", "sse: unexpected status 404 Not Found"},
		{"stalled body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "partial")
			http.NewResponseController(w).Flush()
			stall(r)
		}, "partial", "sse: unexpected status 400 Bad Request: partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := sse.Connect(ctx, srv.URL, nil)
			var se *sse.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Connect = %v, want a *StatusError", err)
			}
			if string(se.Body) != tt.wantBody || err.Error() != tt.wantError {
				t.Fatalf("Body %.80q (%d bytes), Error %.120q; want %.80q (%d bytes), %.120q", se.Body, len(se.Body), err, tt.wantBody, len(tt.wantBody), tt.wantError)
			}
			if tt.name == "reason" && se.Header.Get("Wsrpc-Code") != "invalid_argument" {
				t.Fatalf("Header = %v, want the response's Wsrpc-Code", se.Header)
			}
		})
	}
}

// TestStatusErrorEscapesStatusLine: the reason phrase is the server's
// text as much as the body, and net/http's client passes control
// characters in it. Error escapes both; Status and Body keep them. The
// status was printed raw.
func TestStatusErrorEscapesStatusLine(t *testing.T) {
	addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) { rawserver.Refuse(c, "") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sse.Connect(ctx, "http://"+addr+"/feed", nil)
	var se *sse.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("Connect = %v, want a *StatusError", err)
	}
	if want := "sse: unexpected status " + rawserver.EscapedStatus + ": " + rawserver.EscapedBody; err.Error() != want {
		t.Fatalf("Error() = %q\nwant %q", err, want)
	}
	if se.Status != rawserver.Status || string(se.Body) != rawserver.Body {
		t.Fatalf("Status %q, Body %q; want them as sent", se.Status, se.Body)
	}
}

func noError(err error) bool { return err == nil }

func both(a, b func(error) bool) func(error) bool {
	return func(err error) bool { return a(err) && b(err) }
}

// hangUp closes the connection without a response: a network failure.
func hangUp(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		c.Close()
	}
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func isStatus(code int) func(error) bool {
	return func(err error) bool {
		var se *sse.StatusError
		return errors.As(err, &se) && se.StatusCode == code
	}
}

func TestClientCommentAndRetryEvents(t *testing.T) {
	body := ": c1\n: c2\n\nretry: 7\n\nretry: 8\n: both\n\n: with data\ndata: d\n\nid: 5\n\n"
	tests := []struct {
		name string
		opts sse.ClientOptions
		want []sse.Event
	}{
		// Hidden comments are not kept at all, not even on the events they
		// came with.
		{name: "hidden", want: []sse.Event{{Type: "message", Data: "d"}}},
		{name: "comments", opts: sse.ClientOptions{ShowCommentEvents: true}, want: []sse.Event{
			{Comment: "c1\nc2"}, {Comment: "both", Retry: 8 * time.Millisecond, HasRetry: true}, {Type: "message", Data: "d", Comment: "with data"}}},
		{name: "retries", opts: sse.ClientOptions{ShowRetryEvents: true}, want: []sse.Event{
			{Retry: 7 * time.Millisecond, HasRetry: true}, {Retry: 8 * time.Millisecond, HasRetry: true}, {Type: "message", Data: "d"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, (&rawConns{}).handler(t, stream(body), status(204, "")))
			events, err := collect(t, srv.URL, fast(tt.opts))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(events, tt.want) {
				t.Fatalf("events:\n got %+v\nwant %+v", events, tt.want)
			}
		})
	}
}

// TestClientRawTCP: the client against a server that writes a raw
// HTTP/1.1 response, with no chunking, ending the body by closing the
// connection mid-event; the next connection is refused at the TCP level
// once, then the stream resumes.
func TestClientRawTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var lastIDs []string
	var mu sync.Mutex
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			lastIDs = append(lastIDs, req.Header.Get("Last-Event-ID"))
			mu.Unlock()
			switch n {
			case 0:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nid: 1\ndata: one\n\nid: 2\ndata: tw")
			case 1:
				// Reset the connection without answering: a network error.
				c.(*net.TCPConn).SetLinger(0)
			case 2:
				io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\nid: 2\ndata: two\n\n")
			default:
				io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			}
			c.Close()
		}
	}()
	events, err := collect(t, "http://"+ln.Addr().String()+"/", fast(sse.ClientOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.ID+":"+e.Data)
	}
	if want := []string{"1:one", "2:two"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "1", "1", "2"}; !reflect.DeepEqual(lastIDs, want) {
		t.Fatalf("Last-Event-ID per request = %q, want %q", lastIDs, want)
	}
}

func TestSessionClose(t *testing.T) {
	var hold sync.WaitGroup
	release := make(chan struct{})
	srv2 := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream("data: a\n\n")(w)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer close(release)
	s, err := sse.Connect(context.Background(), srv2.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("Next = %v, %v", ev, err)
	}
	hold.Go(func() {
		time.Sleep(10 * time.Millisecond)
		s.Close()
	})
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after Close = %v, want context.Canceled", err)
	}
	hold.Wait()

	// Events the parser holds already are not returned after Close either.
	s, err = sse.Connect(context.Background(), newServer(t, rcHold(release, "data: a\n\ndata: b\n\n")).URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("Next = %v, %v", ev, err)
	}
	s.Close()
	if ev, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after Close = %+v, %v; want context.Canceled, not the buffered event", ev, err)
	}
}

// rcHold serves body as one chunk, then holds the stream open until the
// client goes or release is closed.
func rcHold(release <-chan struct{}, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stream(body)(w)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// A "retry: 0" sets the reconnection time to zero (WHATWG HTML §9.2.6:
// any string of ASCII digits), not "no retry seen", and the event it
// comes with says so with HasRetry, as does a retry event for it.
func TestClientRetryZero(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newServer(t, rcHold(release, "retry: 5000\ndata: a\n\nretry: 0\ndata: b\n\ndata: c\n\nretry: 0\n\n"))
	s, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{ShowRetryEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []struct {
		ev        sse.Event
		reconnect time.Duration
	}{
		{sse.Event{Type: "message", Data: "a", Retry: 5 * time.Second, HasRetry: true}, 5 * time.Second},
		{sse.Event{Type: "message", Data: "b", HasRetry: true}, 0},
		{sse.Event{Type: "message", Data: "c"}, 0},
		{sse.Event{HasRetry: true}, 0},
	}
	for i, w := range want {
		ev, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev != w.ev {
			t.Errorf("event %d = %+v, want %+v", i, ev, w.ev)
		}
		if d := s.ReconnectionTime(); d != w.reconnect {
			t.Fatalf("ReconnectionTime after event %d = %v, want %v", i, d, w.reconnect)
		}
	}
}

type tick struct {
	N int `json:"n"`
}

func TestDecode(t *testing.T) {
	srv := newServer(t, (&rawConns{}).handler(t,
		stream("id: 1\nevent: tick\ndata: {\"n\":1}\n\n: note\n\nid: 2\nevent: tick\ndata: not json\n\nid: 3\nretry: 0\ndata: {\"n\":3}\n\n"),
		status(204, "")))
	var got []string
	var decodeErrs int
	events := sse.Events(context.Background(), srv.URL, fast(sse.ClientOptions{ShowCommentEvents: true}))
	for ev, err := range sse.Decode(events, func(e sse.Event) (tick, error) {
		var v tick
		err := json.Unmarshal([]byte(e.Data), &v)
		return v, err
	}) {
		if err != nil {
			if !errors.Is(err, sse.ErrDecode) || ev.ID != "2" || ev.Type != "tick" {
				t.Fatalf("unexpected error %v for %+v", err, ev)
			}
			decodeErrs++
			continue
		}
		got = append(got, fmt.Sprintf("%s/%s/%d/%s/%t", ev.ID, ev.Type, ev.Data.N, ev.Comment, ev.HasRetry))
	}
	if want := []string{"1/tick/1//false", "1//0/note/false", "3/message/3//true"}; !reflect.DeepEqual(got, want) || decodeErrs != 1 {
		t.Fatalf("typed events = %q (%d decode errors), want %q", got, decodeErrs, want)
	}
}

// TestEventsBreak: breaking out of the loop closes the connection, which
// the server sees.
func TestEventsBreak(t *testing.T) {
	var gone atomic.Bool
	done := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		s, err := sse.NewStream(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		for i := 0; ; i++ {
			if err := s.Send(sse.Event{Data: fmt.Sprint(i)}); err != nil {
				gone.Store(errors.Is(err, sse.ErrClientGone) || !errors.Is(err, sse.ErrStreamClosed))
				return
			}
			time.Sleep(time.Millisecond)
		}
	}))
	n := 0
	for _, err := range sse.Events(context.Background(), srv.URL, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not see the client leave")
	}
	if !gone.Load() {
		t.Fatal("send did not fail with a disconnect error")
	}
}

// OnReconnect counts attempts since a connection last delivered a block
// (an unterminated comment is none) and reports each
// attempt's outcome.
func TestClientOnReconnect(t *testing.T) {
	for _, tt := range []struct {
		name   string
		bodies []func(http.ResponseWriter)
		opts   sse.ClientOptions
		want   []string
	}{
		{"streams without events", []func(http.ResponseWriter){stream(": nothing\n")}, sse.ClientOptions{MaxReconnectionAttempts: 3},
			[]string{"1 <nil>", "2 <nil>", "3 <nil>"}},
		{"refused", []func(http.ResponseWriter){stream("data: a\n\n"), status(404, "text/event-stream")}, sse.ClientOptions{},
			[]string{"1 sse: unexpected status 404 Not Found"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, rc.handler(t, tt.bodies...))
			var got []string
			opts := fast(tt.opts)
			opts.OnReconnect = func(attempt int, err error) { got = append(got, fmt.Sprint(attempt, " ", err)) }
			_, _ = collect(t, srv.URL, opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("OnReconnect calls %q, want %q", got, tt.want)
			}
		})
	}
}

// A URL no request can use fails at once with ErrBadURL, as a browser's
// EventSource throws, rather than being retried as a network error.
func TestClientBadURL(t *testing.T) {
	for _, url := range []string{"127.0.0.1:1/events", "ws://127.0.0.1:1/events", "http://[::1", "", "http:///events"} {
		events, err := collect(t, url, fast(sse.ClientOptions{}))
		if len(events) != 0 || !errors.Is(err, sse.ErrBadURL) {
			t.Errorf("Events(%q) = %d events, %v; want ErrBadURL", url, len(events), err)
		}
		if _, err := sse.Connect(context.Background(), url, nil); !errors.Is(err, sse.ErrBadURL) {
			t.Errorf("Connect(%q) = %v; want ErrBadURL", url, err)
		}
	}
}

// TestClientEmptyHostNameBadURL: a URL whose host is a port alone
// ("http://:8080/events") has no host, as EventSource's URL parser says
// (it throws), and fails at once with ErrBadURL, no request made. The
// client checked only that the authority was not empty, and net/http
// dialed ":8080", which net.Dial takes for this machine.
func TestClientEmptyHostNameBadURL(t *testing.T) {
	dialed := false
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = true
			return nil, errors.New("no dial expected")
		},
	}}
	for _, url := range []string{"http://:8080/events", "https://:443/events"} {
		if _, err := sse.Connect(context.Background(), url, &sse.ClientOptions{HTTPClient: client}); !errors.Is(err, sse.ErrBadURL) || dialed {
			t.Errorf("Connect(%q) = %v (dialed %v); want ErrBadURL, no dial", url, err, dialed)
		}
	}
}

// TestClientInvalidHeader: a ClientOptions.Header field that no request
// can carry (RFC 9110 §5.1: a field name is a token; §5.5: a field value
// has no control character but tab) fails the session at once with
// ErrInvalidHeader naming the field, not its value, which may be a
// secret. net/http refuses such a request before sending it, and the
// client used to take that for a network failure and retry it for ever.
func TestClientInvalidHeader(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header http.Header
		field  string
	}{
		{"name with space", http.Header{"Bad Name": {"v"}}, `"Bad Name"`},
		{"name with colon", http.Header{"X:Y": {"v"}}, `"X:Y"`},
		{"name not ascii", http.Header{"X-É": {"v"}}, `"X-É"`},
		{"empty name", http.Header{"": {"v"}}, `""`},
		{"value with control", http.Header{"Authorization": {"Bearer se\x01cret"}}, `"Authorization"`},
		{"value with lf", http.Header{"X-Ok": {"ok", "a\nb"}}, `"X-Ok"`},
		{"value with del", http.Header{"X-Ok": {"a\x7f"}}, `"X-Ok"`},
		{"host with nul", http.Header{"Host": {"a\x00"}}, `"Host"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, rc.handler(t, stream("data: a\n\n")))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var events int
			var err error
			for _, err = range sse.Events(ctx, srv.URL, &sse.ClientOptions{Header: tt.header, ReconnectionTime: time.Millisecond}) {
				if err != nil {
					break
				}
				events++
			}
			if !errors.Is(err, sse.ErrInvalidHeader) || !strings.Contains(err.Error(), tt.field) || strings.Contains(err.Error(), "cret") {
				t.Fatalf("Events = %v; want ErrInvalidHeader naming %s, not the value", err, tt.field)
			}
			if events != 0 || rc.count() != 0 {
				t.Fatalf("%d events over %d connections, want none", events, rc.count())
			}
			if _, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{Header: tt.header}); !errors.Is(err, sse.ErrInvalidHeader) {
				t.Fatalf("Connect = %v, want ErrInvalidHeader", err)
			}
		})
	}
	// What net/http sends is accepted: token names, tab and obs-text
	// (bytes from 0x80) in values.
	var rc rawConns
	srv := newServer(t, rc.handler(t, stream("data: a\n\n"), status(http.StatusNoContent, "")))
	events, err := collect(t, srv.URL, fast(sse.ClientOptions{Header: http.Header{"X-Token_!#$%&'*+.^`|~": {"a\tb é"}}}))
	if err != nil || len(events) != 1 {
		t.Fatalf("valid header: %d events, %v", len(events), err)
	}
	if got := rc.header(0, "X-Token_!#$%&'*+.^`|~"); got != "a\tb é" {
		t.Fatalf("header sent as %q", got)
	}
}

// TestSessionHTTP2: our client against our server over HTTP/2 (TLS),
// where there is no connection per stream: events and heartbeat comments
// arrive as sent, and Close from another goroutine ends a Next blocked
// on the stream.
func TestSessionHTTP2(t *testing.T) {
	protos := make(chan int, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case protos <- r.ProtoMajor:
		default:
		}
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: 20 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		s.Send(sse.Event{ID: "1", Type: "t", Data: "a\nb"})
		<-r.Context().Done()
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(srv.Client().CloseIdleConnections)
	s, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{HTTPClient: srv.Client(), ShowCommentEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // the handler waits for the client to go
	if proto := <-protos; proto != 2 {
		t.Fatalf("request over HTTP/%d, want HTTP/2", proto)
	}
	if ev, err := s.Next(); err != nil || ev.Type != "" || ev.Comment != "open" {
		t.Fatalf("Next = %+v, %v; want the stream's opening comment", ev, err)
	}
	if ev, err := s.Next(); err != nil || ev.Data != "a\nb" || ev.Type != "t" || ev.ID != "1" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	if ev, err := s.Next(); err != nil || ev.Comment != "heartbeat" {
		t.Fatalf("Next = %+v, %v; want the heartbeat", ev, err)
	}
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Next(); err != nil {
				done <- err
				return
			}
		}
	}()
	closeEndsNext(t, s, done)
}

// bodyClosed is an http.RoundTripper that reports on closed when the
// client closes a response body.
type bodyClosed struct {
	closed chan struct{}
}

func (b bodyClosed) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = notifyCloser{resp.Body, b.closed}
	}
	return resp, err
}

type notifyCloser struct {
	io.ReadCloser
	closed chan struct{}
}

func (n notifyCloser) Close() error {
	err := n.ReadCloser.Close()
	select {
	case n.closed <- struct{}{}:
	default:
	}
	return err
}

// TestSessionCloseDuringBackoff: Close ends the wait before a
// reconnection at once, even when the server asked for a reconnection
// time of decades (the client honours "retry:" unbounded, WHATWG HTML
// §9.2.6).
func TestSessionCloseDuringBackoff(t *testing.T) {
	srv := newServer(t, (&rawConns{}).handler(t, stream("retry: 999999999999\ndata: a\n\n")))
	closed := make(chan struct{}, 1)
	s, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{HTTPClient: &http.Client{Transport: bodyClosed{closed}}})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	if d := s.ReconnectionTime(); d < 100*24*time.Hour {
		t.Fatalf("ReconnectionTime = %v, want the server's decades", d)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Next() // reads the end of the stream, then waits to reconnect
		done <- err
	}()
	select {
	case <-closed: // the stream is over: Next is waiting, or about to
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not close the ended stream")
	}
	closeEndsNext(t, s, done)
}

// closeEndsNext closes s and checks that the Next under way, which
// reports on done, returns context.Canceled promptly.
func closeEndsNext(t *testing.T, s *sse.Session, done <-chan error) {
	t.Helper()
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after Close = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
}

// TestClientBackoff pins the wait before each reconnection in a row: the
// reconnection time for the first plus up to a quarter of it more (WHATWG
// HTML §9.2.3 lets a client "wait some more"), then a doubling delay d
// drawn from [d/2, d] up to MaxReconnectionDelay, never below the
// reconnection time and never overflowing.
func TestClientBackoff(t *testing.T) {
	const ms = time.Millisecond
	for _, tt := range []struct {
		tries            int
		reconnect, limit time.Duration
		atLeast, atMost  time.Duration
	}{
		{tries: 1, reconnect: 0, limit: time.Second, atLeast: 0, atMost: 0}, // "retry: 0": backoff's own figure; reconnectWait makes it at least minBackoff
		{tries: 1, reconnect: 3 * time.Second, limit: time.Second, atLeast: 3 * time.Second, atMost: 3750 * ms},
		{tries: 1, reconnect: 1<<63 - 1, limit: time.Second, atLeast: 1<<63 - 1, atMost: 1<<63 - 1},
		{tries: 2, reconnect: 0, limit: time.Second, atLeast: 100 * ms, atMost: 200 * ms}, // "retry: 0": from 100 ms
		{tries: 3, reconnect: 0, limit: time.Second, atLeast: 200 * ms, atMost: 400 * ms},
		{tries: 2, reconnect: 3 * time.Second, limit: 30 * time.Second, atLeast: 3 * time.Second, atMost: 6 * time.Second},
		{tries: 4, reconnect: 3 * time.Second, limit: 30 * time.Second, atLeast: 12 * time.Second, atMost: 24 * time.Second},
		{tries: 50, reconnect: 3 * time.Second, limit: 30 * time.Second, atLeast: 15 * time.Second, atMost: 30 * time.Second},
		{tries: 5, reconnect: time.Hour, limit: 30 * time.Second, atLeast: time.Hour, atMost: time.Hour}, // a longer "retry:" holds
		{tries: 5, reconnect: 0, limit: 50 * ms, atLeast: 25 * ms, atMost: 50 * ms},
		{tries: 1000, reconnect: 0, limit: 1<<63 - 1, atLeast: 1 << 61, atMost: 1<<63 - 1},
	} {
		for range 20 {
			if d := sse.Backoff(tt.tries, tt.reconnect, tt.limit); d < tt.atLeast || d > tt.atMost {
				t.Fatalf("Backoff(%d, %v, %v) = %v, want within [%v, %v]", tt.tries, tt.reconnect, tt.limit, d, tt.atLeast, tt.atMost)
			}
		}
	}
}

// TestClientFirstReconnectionJitter guards the spread of the first
// reconnection after a drop: it used to wait exactly the reconnection
// time, so the 2,000 clients of a restarted server came back within
// 0.6 s, all at once, and failed together again. It now waits the
// reconnection time plus a random extra of up to a quarter of it (WHATWG
// HTML §9.2.3: wait the reconnection time, then "optionally, wait some
// more"), never less than the reconnection time a server's "retry:" sets.
func TestClientFirstReconnectionJitter(t *testing.T) {
	const reconnect = 4 * time.Second
	seen := map[time.Duration]bool{}
	var lo, hi time.Duration = 1<<63 - 1, 0
	for range 1000 {
		d := sse.Backoff(1, reconnect, sse.DefaultMaxReconnectionDelay)
		if d < reconnect || d > reconnect+reconnect/4 {
			t.Fatalf("first reconnection waits %v, want within [%v, %v]", d, reconnect, reconnect+reconnect/4)
		}
		seen[d] = true
		lo, hi = min(lo, d), max(hi, d)
	}
	// Uniform over a second: 1,000 draws cover more than half of it, save
	// with a chance far below 2^-100.
	if len(seen) < 900 || hi-lo < reconnect/8 {
		t.Fatalf("1,000 first reconnections: %d distinct waits within [%v, %v], want them spread over [%v, %v]", len(seen), lo, hi, reconnect, reconnect+reconnect/4)
	}
}

// A server that answers 200 with "retry: 0" and closes before a block is
// a failing server, not a stream: the reconnections after the first back
// off instead of hammering it in a tight loop (they did, for ever with
// the default MaxReconnectionAttempts).
func TestClientBacksOffAfterRetryZero(t *testing.T) {
	var mu sync.Mutex
	var arrived []time.Time
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
		stream("retry: 0\n")(w)
	}))
	_, err := collect(t, srv.URL, &sse.ClientOptions{MaxReconnectionAttempts: 4, MaxReconnectionDelay: 400 * time.Millisecond})
	if !errors.Is(err, sse.ErrReconnectLimit) {
		t.Fatalf("err = %v, want ErrReconnectLimit", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrived) != 5 {
		t.Fatalf("%d requests, want 5", len(arrived))
	}
	// Reconnection k waits at least: 0 ("retry: 0"), then d/2 of 200,
	// 400 and 800 ms capped at 400.
	for k, least := range []time.Duration{0, 100, 200, 200} {
		if gap := arrived[k+1].Sub(arrived[k]); gap < least*time.Millisecond {
			t.Errorf("reconnection %d came %v after the request before, want at least %v", k+1, gap, least*time.Millisecond)
		}
	}
}

// Only a clean end matches io.EOF. A terminal error whose cause holds
// io.EOF — reconnection attempts exhausted on a server that kept closing
// the stream before a block, or a server that closed the connection
// unanswered (net/http's *url.Error wrapping io.EOF) — used to match it
// too, so the common `errors.Is(err, io.EOF)` read a failed stream as a
// finished one. The cause stays reachable with errors.As and the message
// keeps it.
func TestFailureIsNotEOF(t *testing.T) {
	check := func(t *testing.T, err error, want error) {
		t.Helper()
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("err = %v, want a failure that does not match io.EOF", err)
		}
		if want != nil && !errors.Is(err, want) {
			t.Errorf("err = %v, want it to match %v", err, want)
		}
	}
	t.Run("limit after ended streams", func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stream()(w) }))
		_, err := collect(t, srv.URL, &sse.ClientOptions{MaxReconnectionAttempts: 2, ReconnectionTime: time.Millisecond})
		check(t, err, sse.ErrReconnectLimit)
		if !strings.Contains(err.Error(), "EOF") {
			t.Errorf("err = %q, want the last attempt's cause in its message", err)
		}
	})
	t.Run("limit after unanswered connections", func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hangUp(w) }))
		_, err := collect(t, srv.URL, &sse.ClientOptions{MaxReconnectionAttempts: 1, ReconnectionTime: time.Millisecond})
		check(t, err, sse.ErrReconnectLimit)
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Errorf("err = %v, want the *url.Error reachable with errors.As", err)
		}
	})
	t.Run("connect unanswered", func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hangUp(w) }))
		_, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{MaxReconnectionAttempts: -1})
		check(t, err, nil)
	})
	t.Run("clean end is io.EOF", func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stream("data: x\n\n")(w) }))
		s, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{MaxReconnectionAttempts: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Next(); err != io.EOF {
			t.Fatalf("Next after the end = %v, want io.EOF", err)
		}
	})
}

// TestClientOpeningBlockIsNoDelivery: the block a stream opens with (this
// package's ": open" comment, or a retry field) says only that the server
// answered. A server that opens streams and ends them at once is failing,
// and its reconnections count toward MaxReconnectionAttempts and back off:
// once NewStream wrote the opening comment, the client took every such
// connection for a working one (9,201 connections in 20 s against a limit
// of 2). An event after it counts; a heartbeat only on a connection that
// stayed open a while (heldOpen).
func TestClientOpeningBlockIsNoDelivery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    sse.StreamOptions
		then    func(*sse.Stream)
		held    bool // connections count as held open long enough
		conns   int
		limited bool
	}{
		{name: "open comment only", conns: 3, limited: true},
		{name: "retry only", opts: sse.StreamOptions{Retry: time.Millisecond}, conns: 3, limited: true},
		{name: "open comment and a heartbeat", then: func(s *sse.Stream) { s.Comment("heartbeat") }, conns: 3, limited: true},
		{name: "open comment and a heartbeat, held open", then: func(s *sse.Stream) { s.Comment("heartbeat") }, held: true, conns: 6},
		{name: "an event", then: func(s *sse.Stream) { s.Send(sse.Event{Data: "x"}) }, conns: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.held {
				sse.SetHeldOpen(t, 0)
			}
			var n atomic.Int32
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) > 5 && !tc.limited {
					w.WriteHeader(http.StatusNoContent) // the end, after five working connections
					return
				}
				opts := tc.opts
				s, err := sse.NewStream(w, r, &opts)
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				if tc.then != nil {
					tc.then(s)
				}
			}))
			_, err := collect(t, srv.URL, &sse.ClientOptions{MaxReconnectionAttempts: 2, ReconnectionTime: time.Millisecond, MaxReconnectionDelay: 10 * time.Millisecond})
			if got := int(n.Load()); got != tc.conns {
				t.Errorf("%d connections, want %d", got, tc.conns)
			}
			if tc.limited != errors.Is(err, sse.ErrReconnectLimit) {
				t.Errorf("err = %v, limited %v", err, tc.limited)
			}
		})
	}
}

// TestClientOnReconnectUnansweredIsNotEOF: OnReconnect's io.EOF says the
// server answered 204, the stream is over. A reconnection closed
// unanswered (net/http's *url.Error wrapping io.EOF) is a failed attempt,
// and matched io.EOF with errors.Is as Next's error no longer does.
func TestClientOnReconnectUnansweredIsNotEOF(t *testing.T) {
	var rc rawConns
	srv := newServer(t, rc.handler(t, stream("data: a\n\n"), hangUp))
	var reports []error
	opts := fast(sse.ClientOptions{MaxReconnectionAttempts: 2})
	opts.OnReconnect = func(attempt int, err error) { reports = append(reports, err) }
	if _, err := collect(t, srv.URL, opts); !errors.Is(err, sse.ErrReconnectLimit) {
		t.Fatalf("err = %v, want ErrReconnectLimit", err)
	}
	if len(reports) != 2 {
		t.Fatalf("%d OnReconnect calls, want 2", len(reports))
	}
	for i, err := range reports {
		var ue *url.Error
		if err == nil || errors.Is(err, io.EOF) || !errors.As(err, &ue) {
			t.Errorf("attempt %d reported %v: want the *url.Error, not matching io.EOF", i+1, err)
		}
	}
}

// TestClientEmptyIDResetsLastEventID: an empty "id:" field resets the
// last event ID (WHATWG HTML §9.2.6), so the reconnection sends no
// Last-Event-ID, whether the id before came from the server, from
// ClientOptions.LastEventID or from a Last-Event-ID entry of Header. The
// Header entry was sent as is on every request, the server's reset
// notwithstanding, and the server replayed events the consumer had.
func TestClientEmptyIDResetsLastEventID(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sse.ClientOptions
	}{
		{"server's id", sse.ClientOptions{}},
		{"LastEventID option", sse.ClientOptions{LastEventID: "0"}},
		{"Header entry", sse.ClientOptions{Header: http.Header{"Last-Event-ID": {"0"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, rc.handler(t,
				stream("id: 1\ndata: a\n\nid\ndata: b\n\n"),
				stream("data: c\n\n"),
				status(http.StatusNoContent, ""),
			))
			events, err := collect(t, srv.URL, fast(tc.opts))
			if err != nil || len(events) != 3 {
				t.Fatalf("%d events, %v; want 3 and the end", len(events), err)
			}
			for i := 1; i < 3; i++ {
				if got := rc.header(i, "Last-Event-ID"); got != "" {
					t.Errorf("request %d Last-Event-ID = %q, want none: the server reset it", i, got)
				}
			}
		})
	}
}
