package sse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// isHeaderTimeout reports whether err is the network timeout of a
// request unanswered for HandshakeTimeout, and not a context's error.
func isHeaderTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout() &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// TestClientHandshakeTimeout: a server that accepts the connection and
// never answers — at the TCP level, or an HTTP server whose handler
// never writes the header — fails the request after HandshakeTimeout
// though the caller's ctx has no deadline: Connect returns the error,
// and a reconnection retries it as a network failure. Connect used to
// block for ever. The stream after the header is not bounded by it.
func TestClientHandshakeTimeout(t *testing.T) {
	// Short for the server that never answers, long enough for one that
	// does under -race on a loaded machine.
	const bound, served = 200 * time.Millisecond, time.Second
	within := func(t *testing.T, what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s still blocked 20 s after a HandshakeTimeout of at most %v", what, served)
		}
	}

	t.Run("TCP never answered", func(t *testing.T) {
		// Accepts and reads the request, never answers.
		addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) { rawserver.Hold(c) })
		var err error
		var s *sse.Session
		within(t, "Connect", func() {
			s, err = sse.Connect(context.Background(), "http://"+addr+"/", &sse.ClientOptions{HandshakeTimeout: bound})
		})
		if s != nil {
			s.Close()
		}
		t.Logf("Connect: %v", err)
		if !isHeaderTimeout(err) || !strings.Contains(err.Error(), "sse: no response header within 200ms") {
			t.Fatalf("Connect = %v, want the HandshakeTimeout's network timeout", err)
		}
	})

	t.Run("reconnection never answered, then served", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch n.Add(1) {
			case 2:
				<-r.Context().Done() // no header, until the client gives up
				return
			case 1:
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "retry: 10\n\nid: 1\ndata: one\n\n")
			default:
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "retry: 10\n\nid: 2\ndata: two\n\n")
				w.(http.Flusher).Flush()
				// The stream is not bounded by the timeout: the next event
				// comes well after it.
				time.Sleep(2 * served)
				io.WriteString(w, "id: 3\ndata: three\n\n")
			}
		}))
		defer srv.Close()
		var attempts []error
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := sse.Connect(ctx, srv.URL, &sse.ClientOptions{HandshakeTimeout: served, MaxReconnectionAttempts: 3,
			OnReconnect: func(_ int, err error) { attempts = append(attempts, err) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var got []string
		within(t, "Next", func() {
			for len(got) < 3 {
				ev, err := s.Next()
				if err != nil {
					t.Errorf("Next after %v: %v", got, err)
					return
				}
				got = append(got, ev.Data)
			}
		})
		t.Logf("events %v, reconnection attempts %v", got, attempts)
		if strings.Join(got, " ") != "one two three" {
			t.Fatalf("events %v, want one two three", got)
		}
		if len(attempts) != 2 || !isHeaderTimeout(attempts[0]) || attempts[1] != nil {
			t.Fatalf("reconnection attempts %v, want the HandshakeTimeout's timeout, then a stream", attempts)
		}
	})
}

// TestSessionReconnect: Reconnect ends the open connection at once, and
// the next Next reconnects as after a lost one — the reconnection wait,
// Last-Event-ID, OnReconnect — without the events the connection had
// sent after the one Next returned last. That event is no delivery, so
// a server that sends only what the consumer reconnects over (a
// transient error report) uses up MaxReconnectionAttempts rather than
// being reconnected to for ever; with reconnection disabled the session
// ends as at the stream's end.
func TestSessionReconnect(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     func(lastID string) string // after "retry: 10"; the connection then stays open
		opts     sse.ClientOptions
		want     string // the data of the events read, Reconnect called at each "oops"
		end      func(error) bool
		requests []string // Last-Event-ID of each request
		attempts []error  // OnReconnect's
	}{
		{name: "resumes", body: func(lastID string) string {
			if lastID == "" {
				return "id: 1\ndata: one\n\nid: 2\ndata: two\n\nevent: error\ndata: oops\n\nid: 9\ndata: late\n\n"
			}
			return "id: 3\ndata: three\n\nevent: end\ndata: end\n\n"
		}, opts: sse.ClientOptions{MaxReconnectionAttempts: 1},
			want: "one two oops three end", requests: []string{"", "2"}, attempts: []error{nil}},
		{name: "only errors use up the attempts", body: func(string) string { return "event: error\ndata: oops\n\n" },
			opts: sse.ClientOptions{MaxReconnectionAttempts: 2}, want: "oops oops oops",
			end:      func(err error) bool { return errors.Is(err, sse.ErrReconnectLimit) && !errors.Is(err, io.EOF) },
			requests: []string{"", "", ""}, attempts: []error{nil, nil}},
		{name: "reconnection disabled", body: func(string) string { return "id: 1\ndata: one\n\nevent: error\ndata: oops\n\n" },
			opts: sse.ClientOptions{MaxReconnectionAttempts: -1}, want: "one oops",
			end: func(err error) bool { return err == io.EOF }, requests: []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var requests []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				lastID := r.Header.Get("Last-Event-ID")
				mu.Lock()
				requests = append(requests, lastID)
				mu.Unlock()
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "retry: 10\n\n"+tc.body(lastID))
				w.(http.Flusher).Flush()
				<-r.Context().Done() // open until the client ends it
			}))
			defer srv.Close()
			var attempts []error
			opts := tc.opts
			opts.OnReconnect = func(_ int, err error) { attempts = append(attempts, err) }
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := sse.Connect(ctx, srv.URL, &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got []string
			for {
				ev, err := s.Next()
				if err != nil {
					if tc.end == nil || !tc.end(err) {
						t.Fatalf("after %v: Next = %v", got, err)
					}
					break
				}
				got = append(got, ev.Data)
				if ev.Data == "oops" {
					s.Reconnect()
				}
				if ev.Data == "end" {
					break
				}
			}
			s.Close()
			srv.Close() // its handlers have returned: requests is final
			t.Logf("events %v, requests with Last-Event-ID %q, attempts %v", got, requests, attempts)
			if strings.Join(got, " ") != tc.want {
				t.Errorf("events %v, want %s", got, tc.want)
			}
			if strings.Join(requests, ",") != strings.Join(tc.requests, ",") || len(requests) != len(tc.requests) {
				t.Errorf("requests with Last-Event-ID %q, want %q", requests, tc.requests)
			}
			if len(attempts) != len(tc.attempts) {
				t.Errorf("OnReconnect got %v, want %v", attempts, tc.attempts)
			}
			for i := range min(len(attempts), len(tc.attempts)) {
				if attempts[i] != tc.attempts[i] {
					t.Errorf("OnReconnect got %v, want %v", attempts, tc.attempts)
				}
			}
		})
	}
}
