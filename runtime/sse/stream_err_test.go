package sse_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestStreamErr: Err is nil while the stream is live, the failed write's
// error once one failed (and stays so after Close), and ErrStreamClosed
// after Close or CloseWith of a stream whose writes had not failed. A
// done context with no write since is no failed write yet.
func TestStreamErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *sse.Stream, cancel context.CancelFunc)
	}{
		{"close", func(t *testing.T, s *sse.Stream, _ context.CancelFunc) {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "after Close", s.Err(), sse.ErrStreamClosed, nil)
		}},
		{"close-with", func(t *testing.T, s *sse.Stream, _ context.CancelFunc) {
			if err := s.CloseWith(sse.Event{Type: "end", Data: "{}"}); err != nil {
				t.Fatal(err)
			}
			wantErr(t, "after CloseWith", s.Err(), sse.ErrStreamClosed, nil)
		}},
		{"client-gone", func(t *testing.T, s *sse.Stream, cancel context.CancelFunc) {
			cancel()
			if err := s.Err(); err != nil {
				t.Errorf("Err with the context done and no write since = %v, want nil", err)
			}
			serr := s.Send(sse.Event{Data: "b"})
			wantErr(t, "Send after the context ended", serr, sse.ErrClientGone, nil)
			if err := s.Err(); err != serr {
				t.Errorf("Err = %v, want Send's error %v", err, serr)
			}
			_ = s.Close()
			wantErr(t, "after the failed write and Close", s.Err(), sse.ErrClientGone, sse.ErrStreamClosed)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
			s, err := sse.NewStream(httptest.NewRecorder(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Err(); err != nil {
				t.Fatalf("Err of a stream just opened = %v, want nil", err)
			}
			if err := s.Send(sse.Event{Data: "a"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Err(); err != nil {
				t.Fatalf("Err after a Send = %v, want nil", err)
			}
			tc.run(t, s, cancel)
		})
	}
}

// TestStreamErrWriteTimeout: after a write that timed out (the client
// stopped reading), Err is that write's ErrWriteTimeout, wrapping the
// deadline, though net/http has cancelled the request's context, and
// Close leaves it so.
func TestStreamErrWriteTimeout(t *testing.T) {
	result := make(chan [3]error, 1) // the Send's error, then Err before and after Close
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{WriteTimeout: 300 * time.Millisecond})
		if err != nil {
			result <- [3]error{err}
			return
		}
		defer s.Close()
		data := strings.Repeat("x", 64<<10)
		for range 10000 { // bounded: 640 MiB would outlast any socket buffer
			if err := s.Send(sse.Event{Data: data}); err != nil {
				got := s.Err()
				_ = s.Close()
				result <- [3]error{err, got, s.Err()}
				return
			}
		}
		result <- [3]error{errors.New("every send succeeded")}
	}))
	openNotReading(t, srv.Listener.Addr().String()) // and read nothing more
	var got [3]error
	select {
	case got = <-result:
	case <-time.After(10 * time.Second):
		t.Fatal("the send never failed")
	}
	wantErr(t, "Send", got[0], sse.ErrWriteTimeout, sse.ErrClientGone)
	if got[1] != got[0] {
		t.Errorf("Err = %v, want Send's error %v", got[1], got[0])
	}
	if !errors.Is(got[1], os.ErrDeadlineExceeded) {
		t.Errorf("Err = %v, does not wrap the write's os.ErrDeadlineExceeded", got[1])
	}
	wantErr(t, "Err after Close", got[2], sse.ErrWriteTimeout, sse.ErrStreamClosed)
}

func wantErr(t *testing.T, what string, err, want, not error) {
	t.Helper()
	if !errors.Is(err, want) || (not != nil && errors.Is(err, not)) {
		t.Errorf("%s: %v, want %v and not %v", what, err, want, not)
	}
}
