package sse_test

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestClientRetryRefusal: ClientOptions.RetryRefusal decides which of a
// reconnection's refusals the session retries, in place of the 502, 503
// and 504 it retries without one: a 500 it picks is retried within
// MaxReconnectionAttempts (then ErrReconnectLimit wraps the
// *StatusError), a 503 it does not pick ends the session with the
// *StatusError, as sent. A first request's refusal is never retried,
// whatever it says. It gets each refusal's *StatusError, header
// included.
func TestClientRetryRefusal(t *testing.T) {
	// refuse answers code, with X-Retry: retry when set.
	refuse := func(code int, retry string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			if retry != "" {
				w.Header().Set("X-Retry", retry)
			}
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(code)
			io.WriteString(w, "busy")
		}
	}
	for _, tc := range []struct {
		name    string
		bodies  []func(http.ResponseWriter)
		limit   int
		events  int
		conns   int
		asked   []int // the statuses RetryRefusal was asked about
		wantErr func(error) bool
	}{
		{name: "500 it picks is retried", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), refuse(500, "yes"), refuse(500, "yes"), stream("data: b\n\n"), status(204, "")},
			events: 2, conns: 5, asked: []int{500, 500}, wantErr: noError},
		{name: "503 it does not pick is final", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), refuse(503, "no")},
			events: 1, conns: 2, asked: []int{503}, wantErr: func(err error) bool {
				return isStatus(503)(err) && !errors.Is(err, sse.ErrReconnectLimit)
			}},
		{name: "retried within the limit", bodies: []func(http.ResponseWriter){stream("data: a\n\n"), refuse(500, "yes")}, limit: 2,
			events: 1, conns: 3, asked: []int{500, 500}, wantErr: both(is(sse.ErrReconnectLimit), isStatus(500))},
		{name: "first request's refusal is final", bodies: []func(http.ResponseWriter){refuse(503, "yes")},
			events: 0, conns: 1, wantErr: isStatus(503)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, rc.handler(t, tc.bodies...))
			var mu sync.Mutex
			var asked []int
			opts := fast(sse.ClientOptions{MaxReconnectionAttempts: tc.limit, RetryRefusal: func(e *sse.StatusError) bool {
				mu.Lock()
				asked = append(asked, e.StatusCode)
				mu.Unlock()
				return e.Header.Get("X-Retry") == "yes"
			}})
			events, err := collect(t, srv.URL, opts)
			if !tc.wantErr(err) {
				t.Errorf("error %v", err)
			}
			if len(events) != tc.events {
				t.Errorf("%d events, want %d", len(events), tc.events)
			}
			if n := rc.count(); n != tc.conns {
				t.Errorf("%d connections, want %d", n, tc.conns)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != len(tc.asked) {
				t.Fatalf("RetryRefusal asked about %v, want %v", asked, tc.asked)
			}
			for i := range asked {
				if asked[i] != tc.asked[i] {
					t.Errorf("RetryRefusal asked about %v, want %v", asked, tc.asked)
				}
			}
		})
	}
}
