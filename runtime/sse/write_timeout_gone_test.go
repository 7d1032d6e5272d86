package sse_test

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestStreamWriteTimeoutNotClientGone: a client that stops reading fails
// the send with ErrWriteTimeout, wrapping the deadline, and not with
// ErrClientGone; later sends return the same error. Over HTTP/1.1 net/http
// cancels the request's context when a write fails, and the timeout was
// taken for a client that left ("sse: client went away: … i/o timeout").
// A client that closes its connection still fails the send with
// ErrClientGone.
func TestStreamWriteTimeoutNotClientGone(t *testing.T) {
	for _, tc := range []struct {
		how  string
		want error
		not  error
	}{
		{"stop-reading", sse.ErrWriteTimeout, sse.ErrClientGone},
		{"close", sse.ErrClientGone, sse.ErrWriteTimeout},
	} {
		t.Run(tc.how, func(t *testing.T) {
			closed := make(chan struct{}) // the client has closed its connection
			result := make(chan [2]error, 1)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := sse.NewStream(w, r, &sse.StreamOptions{WriteTimeout: 300 * time.Millisecond})
				if err != nil {
					result <- [2]error{err}
					return
				}
				defer s.Close()
				if tc.how == "close" {
					select {
					case <-closed:
					case <-time.After(10 * time.Second):
					}
				}
				data := strings.Repeat("x", 64<<10)
				for range 10000 { // bounded: 640 MiB would outlast any socket buffer
					if err := s.Send(sse.Event{Data: data}); err != nil {
						result <- [2]error{err, s.Send(sse.Event{Data: "after"})}
						return
					}
				}
				result <- [2]error{errors.New("every send succeeded")}
			}))
			nc := openNotReading(t, srv.Listener.Addr().String())
			if tc.how == "close" {
				nc.Close()
				close(closed)
			} // else read nothing more
			var got [2]error
			select {
			case got = <-result:
			case <-time.After(10 * time.Second):
				t.Fatal("the send never failed")
			}
			err, after := got[0], got[1]
			if !errors.Is(err, tc.want) || errors.Is(err, tc.not) {
				t.Fatalf("send error %v, want %v and not %v", err, tc.want, tc.not)
			}
			if tc.how == "stop-reading" && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("send error %v does not wrap the write's os.ErrDeadlineExceeded", err)
			}
			if !errors.Is(after, tc.want) || errors.Is(after, tc.not) {
				t.Errorf("send after the failure: %v, want %v and not %v", after, tc.want, tc.not)
			}
		})
	}
}
