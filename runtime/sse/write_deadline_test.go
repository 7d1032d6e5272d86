package sse_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// SetWriteDeadline cuts a write that is blocked now, on a client that
// stopped reading, though WriteTimeout would hold it for a minute: a
// server shutting down must not wait WriteTimeout for such a client.
// The send fails as a timed-out one does.
func TestStreamSetWriteDeadlineCutsBlockedWrite(t *testing.T) {
	streams := make(chan *sse.Stream, 1)
	result := make(chan error, 1)
	var sent atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{WriteTimeout: time.Minute})
		if err != nil {
			result <- err
			return
		}
		defer s.Close()
		streams <- s
		data := strings.Repeat("x", 64<<10)
		for i := 0; i < 10000; i++ { // bounded: 640 MiB would outlast any socket buffer
			if err := s.Send(sse.Event{Data: data}); err != nil {
				result <- err
				return
			}
			sent.Add(1)
		}
		result <- errors.New("every send succeeded")
	}))
	openNotReading(t, srv.Listener.Addr().String())
	s := <-streams
	// Until the sends stop counting: the socket buffers are full and a
	// Send is blocked in its write.
	last, still := int64(-1), 0
	for i := 0; i < 400 && still < 10; i++ {
		time.Sleep(20 * time.Millisecond)
		if n := sent.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	select {
	case err := <-result:
		t.Fatalf("the sends ended before the deadline was set: %v", err)
	default:
	}
	if still < 10 {
		t.Fatal("the sends never blocked")
	}

	s.SetWriteDeadline(time.Now())
	select {
	case err := <-result:
		if !errors.Is(err, sse.ErrWriteTimeout) {
			t.Fatalf("send error %v, want ErrWriteTimeout", err)
		}
		if err := s.Err(); !errors.Is(err, sse.ErrWriteTimeout) {
			t.Errorf("Err() = %v, want ErrWriteTimeout", err)
		}
	case <-time.After(20 * time.Second): // WriteTimeout is a minute
		t.Fatal("the blocked send outlasted SetWriteDeadline")
	}
}

// A deadline bounds the writes to come too, the zero time removes it, and
// a writer without write deadlines ignores it.
func TestStreamSetWriteDeadline(t *testing.T) {
	past := func() time.Time { return time.Now().Add(-time.Second) }
	pastThenZero := func(s *sse.Stream) { s.SetWriteDeadline(past()); s.SetWriteDeadline(time.Time{}) }
	for _, tc := range []struct {
		name         string
		writeTimeout time.Duration
		set          func(s *sse.Stream)
		wantSent     bool
	}{
		{"past", time.Minute, func(s *sse.Stream) { s.SetWriteDeadline(past()) }, false},
		{"past, no WriteTimeout", -1, func(s *sse.Stream) { s.SetWriteDeadline(past()) }, false},
		{"past then zero", time.Minute, pastThenZero, true},
		// Nothing but the zero time clears the past deadline here.
		{"past then zero, no WriteTimeout", -1, pastThenZero, true},
		{"future", time.Minute, func(s *sse.Stream) { s.SetWriteDeadline(time.Now().Add(time.Minute)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			result := make(chan error, 1)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := sse.NewStream(w, r, &sse.StreamOptions{WriteTimeout: tc.writeTimeout})
				if err != nil {
					result <- err
					return
				}
				defer s.Close()
				tc.set(s)
				err = s.Send(sse.Event{Data: "a"})
				if err == nil {
					err = s.Send(sse.Event{Data: "b"}) // after a write's deadline was restored
				}
				result <- err
			}))
			resp := rawGet(t, srv.URL, nil)
			err := <-result
			if !tc.wantSent {
				if !errors.Is(err, sse.ErrWriteTimeout) {
					t.Fatalf("send error %v, want ErrWriteTimeout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("send error %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || !strings.HasSuffix(string(body), "data: a\n\ndata: b\n\n") {
				t.Fatalf("body %q, %v; want both events", body, err)
			}
		})
	}

	t.Run("writer without deadlines", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s, err := sse.NewStream(rec, httptest.NewRequest("GET", "/", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetWriteDeadline(past())
		if err := s.Send(sse.Event{Data: "a"}); err != nil {
			t.Fatalf("send after a deadline on a writer without deadlines: %v", err)
		}
		s.Close()
		s.SetWriteDeadline(past()) // after Close: nothing to bound
	})
}
