package sse_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// gzipMiddleware compresses every response to a request that accepts
// gzip, as gzhttp and hand-written middlewares do, labelled with coding
// ("gzip", or "X-Gzip" for a server that spells it so). Its Flush
// flushes the compressor (a sync flush: what was written decodes at
// once) and then the connection, so each event of a Stream goes out on
// its own.
func gzipMiddleware(coding string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Encoding", coding)
		w.Header().Add("Vary", "Accept-Encoding")
		gw := &gzipWriter{ResponseWriter: w, zw: gzip.NewWriter(w)}
		defer gw.zw.Close()
		h.ServeHTTP(gw, r)
	})
}

type gzipWriter struct {
	http.ResponseWriter
	zw *gzip.Writer
}

func (g *gzipWriter) WriteHeader(code int) {
	g.Header().Del("Content-Length")
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) { return g.zw.Write(p) }

func (g *gzipWriter) Flush() {
	g.zw.Flush()
	g.ResponseWriter.(http.Flusher).Flush()
}

func (g *gzipWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// gzipped compresses parts as one gzip member, sync-flushing after each,
// and returns the compressed bytes of each part (the last one's with the
// member's end).
func gzipped(t *testing.T, parts ...string) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	var out [][]byte
	for i, p := range parts {
		start := buf.Len()
		if _, err := io.WriteString(zw, p); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		if i == len(parts)-1 {
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, bytes.Clone(buf.Bytes()[start:]))
	}
	return out
}

// writeFlush writes b to w and flushes it.
func writeFlush(w http.ResponseWriter, b []byte) {
	w.Write(b)
	w.(http.Flusher).Flush()
}

// TestClientGzipStream guards that a stream behind a gzip middleware
// arrives event by event, exactly, when the request names its own
// Accept-Encoding (net/http then leaves the body coded, and the client
// once parsed the gzip bytes as event lines: events came corrupted, one
// as another type, or not at all), whatever the case of the coding's
// name ("x-gzip" is gzip, RFC 9110 §8.4.1.3), and still when net/http
// decodes it (no Accept-Encoding of the client's: no decoding twice).
// The server sends each event only once the client has the one before,
// so every one must decode from its own flush.
func TestClientGzipStream(t *testing.T) {
	want := []sse.Event{
		{ID: "1", Type: "joined", Data: "alice"},
		{ID: "2", Type: "message", Data: "line one\nline two"},
		{ID: "3", Type: "message", Data: strings.Repeat("x", 10000)}, // past gzip's and the parser's first buffers
		{ID: "4", Type: "bye", Data: "é ünïcode"},
	}
	for _, tc := range []struct {
		name, acceptEncoding, coding string
	}{
		{"transport decodes", "", "gzip"},
		{"explicit gzip", "gzip", "gzip"},
		{"browser list x-gzip", "gzip, deflate, br", "X-Gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan struct{}, len(want))
			srv := newServer(t, gzipMiddleware(tc.coding, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				st, err := sse.NewStream(w, r, nil)
				if err != nil {
					t.Error(err)
					return
				}
				defer st.Close()
				for _, ev := range want {
					if ev.Type == "message" {
						ev.Type = "" // the default: the client names it "message"
					}
					if err := st.Send(ev); err != nil {
						t.Error(err)
						return
					}
					select {
					case <-got:
					case <-r.Context().Done():
						return
					}
				}
			})))
			opts := &sse.ClientOptions{HTTPClient: srv.Client(), MaxReconnectionAttempts: -1}
			if tc.acceptEncoding != "" {
				opts.Header = http.Header{"Accept-Encoding": {tc.acceptEncoding}}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := sse.Connect(ctx, srv.URL, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range want {
				ev, err := s.Next()
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if !reflect.DeepEqual(ev, want[i]) {
					t.Fatalf("event %d: got %+v, want %+v", i, ev, want[i])
				}
				got <- struct{}{}
			}
			if ev, err := s.Next(); err != io.EOF {
				t.Fatalf("after the last event: %+v, %v; want io.EOF", ev, err)
			}
		})
	}
}

// TestClientGzipHeaderLate guards that Connect returns at the response
// header even when the gzip header has not come: the decoder reads it on
// the first Next, not in Connect.
func TestClientGzipHeaderLate(t *testing.T) {
	release := make(chan struct{})
	parts := gzipped(t, "id: 1\ndata: late\n\n")
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		writeFlush(w, parts[0])
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sse.Connect(ctx, srv.URL, &sse.ClientOptions{
		HTTPClient:              srv.Client(),
		Header:                  http.Header{"Accept-Encoding": {"gzip"}},
		MaxReconnectionAttempts: -1,
	})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.Data != "late" || ev.ID != "1" {
		t.Fatalf("got %+v, %v; want the event late", ev, err)
	}
}

// TestClientContentEncodingRefused guards that a response in a coding
// the client does not decode fails with ErrContentType naming it, on the
// first request and on a reconnection alike, without a retry, as a wrong
// Content-Type does: its bytes were once parsed as event lines.
func TestClientContentEncodingRefused(t *testing.T) {
	for _, coding := range []string{"br", "deflate", "zstd", "gzip, br", "gzip, gzip"} {
		t.Run(coding, func(t *testing.T) {
			coded := func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Content-Encoding", coding)
				io.WriteString(w, "data: not decoded\n\n")
			}
			check := func(err error) {
				t.Helper()
				if !errors.Is(err, sse.ErrContentType) || !strings.Contains(err.Error(), strconv.Quote(coding)) {
					t.Fatalf("got %v; want ErrContentType naming %q", err, coding)
				}
			}

			var first rawConns
			srv := newServer(t, first.handler(t, coded))
			s, err := sse.Connect(context.Background(), srv.URL, &sse.ClientOptions{Header: http.Header{"Accept-Encoding": {"gzip, deflate, br, zstd"}}})
			if err == nil {
				s.Close()
			}
			check(err)

			var again rawConns
			srv = newServer(t, again.handler(t, stream("id: 1\ndata: a\n\n"), coded))
			events, err := collect(t, srv.URL, fast(sse.ClientOptions{Header: http.Header{"Accept-Encoding": {"gzip, deflate, br, zstd"}}}))
			check(err)
			if len(events) != 1 || events[0].Data != "a" || again.count() != 2 {
				t.Fatalf("got %+v after %d requests; want event a, then the refusal on the one reconnection", events, again.count())
			}
		})
	}
}

// TestClientGzipTruncated guards that a gzip stream cut off inside its
// member (the connection ends cleanly, the gzip stream does not) is a
// broken connection: the client reconnects with Last-Event-ID (and
// the server ends the stream with 204 after it), and with reconnection
// disabled the session fails with io.ErrUnexpectedEOF rather than end as
// a stream ended by its server.
func TestClientGzipTruncated(t *testing.T) {
	// The second event is long and varied, so that half its compressed
	// bytes cannot decode to all of it (the decoder hands over what it
	// decoded before the error).
	var long strings.Builder
	for i := range 2000 {
		long.WriteString(strconv.Itoa(i * 7919))
	}
	parts := gzipped(t, "id: 1\ndata: one\n\n", "id: 2\ndata: "+long.String()+"\n\n")
	cut := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		writeFlush(w, parts[0])
		writeFlush(w, parts[1][:len(parts[1])/2])
	}
	header := http.Header{"Accept-Encoding": {"gzip"}}

	t.Run("reconnects", func(t *testing.T) {
		var rc rawConns
		srv := newServer(t, rc.handler(t, cut, stream("id: 2\ndata: two\n\n"), status(http.StatusNoContent, "")))
		events, err := collect(t, srv.URL, fast(sse.ClientOptions{Header: header}))
		if err != nil || len(events) != 2 || events[0].Data != "one" || events[1].Data != "two" || rc.count() != 3 {
			t.Fatalf("got %+v, %v after %d requests; want events one and two, then the 204", events, err, rc.count())
		}
		if id := rc.header(1, "Last-Event-ID"); id != "1" {
			t.Fatalf("reconnection's Last-Event-ID %q, want 1", id)
		}
	})
	t.Run("no reconnection", func(t *testing.T) {
		var rc rawConns
		srv := newServer(t, rc.handler(t, cut))
		events, err := collect(t, srv.URL, &sse.ClientOptions{Header: header, MaxReconnectionAttempts: -1})
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(events) != 1 || events[0].Data != "one" {
			t.Fatalf("got %+v, %v; want event one, then io.ErrUnexpectedEOF", events, err)
		}
	})
}

// TestClientGzipBomb guards that MaxEventSize bounds the decoded bytes:
// about a KiB of gzip that inflates to one line of 1 MiB fail the session
// with ErrEventTooLarge once the line passes the limit, as the same line
// sent plain does, rather than be inflated whole.
func TestClientGzipBomb(t *testing.T) {
	const limit = 16 << 10
	parts := gzipped(t, "data: "+strings.Repeat("a", 1<<20)+"\n\n")
	if len(parts[0]) >= limit {
		t.Fatalf("the bomb is %d bytes compressed; want it under the limit", len(parts[0]))
	}
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		writeFlush(w, parts[0])
		<-r.Context().Done() // the stream stays open: only the limit ends it
	}))
	events, err := collect(t, srv.URL, fast(sse.ClientOptions{
		HTTPClient:   srv.Client(),
		Header:       http.Header{"Accept-Encoding": {"gzip"}},
		MaxEventSize: limit,
	}))
	if !errors.Is(err, sse.ErrEventTooLarge) || len(events) != 0 {
		t.Fatalf("got %+v, %v; want ErrEventTooLarge", events, err)
	}
}

// TestStatusErrorGzipBody: a refusal's body coded gzip (a compressing
// middleware in front of the server) is kept decoded in StatusError.Body,
// the server's reason, when the request named its own Accept-Encoding
// (net/http decodes only what it asked for) as when it did not.
func TestStatusErrorGzipBody(t *testing.T) {
	for _, ae := range []string{"", "gzip"} {
		t.Run("Accept-Encoding "+ae, func(t *testing.T) {
			srv := newServer(t, gzipMiddleware("gzip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, "no entry")
			})))
			opts := &sse.ClientOptions{HTTPClient: srv.Client()}
			if ae != "" {
				opts.Header = http.Header{"Accept-Encoding": {ae}}
			}
			_, err := sse.Connect(context.Background(), srv.URL, opts)
			var se *sse.StatusError
			if !errors.As(err, &se) || string(se.Body) != "no entry" {
				t.Fatalf("err = %v, want a StatusError with the body %q", err, "no entry")
			}
		})
	}
}
