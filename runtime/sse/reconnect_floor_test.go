package sse_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestClientNoEventIsNoDelivery: only a connection that dispatched an
// event (WHATWG HTML §9.2.6: a block with data) starts the reconnection
// count and the backoff over. A server that answered every request with
// "retry: 0" and one comment block, and ended the stream, had each
// connection taken for a working one (two blocks), so the count never
// grew and the client waited "retry: 0" between requests: about 12,000
// requests in 2 s against MaxReconnectionAttempts 3. Comments, shown or
// not, and blocks of retry or id fields alone cost a server nothing and
// serve nothing.
func TestClientNoEventIsNoDelivery(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		opts sse.ClientOptions
	}{
		{"retry 0 and a comment", "retry: 0\n\n: x\n\n", sse.ClientOptions{}},
		{"retry 0 and a comment shown", "retry: 0\n\n: x\n\n", sse.ClientOptions{ShowCommentEvents: true}},
		{"open comment and heartbeats", ": open\n\n: heartbeat\n\n: heartbeat\n\n", sse.ClientOptions{ReconnectionTime: time.Millisecond}},
		{"retry 0 and an id block", "retry: 0\n\nid: 7\n\n", sse.ClientOptions{}},
		{"retry blocks shown", "retry: 0\n\nretry: 0\n\n", sse.ClientOptions{ShowRetryEvents: true}},
		{"event type without data", "retry: 0\n\nevent: e\n\n", sse.ClientOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rc rawConns
			srv := newServer(t, rc.handler(t, stream(tc.body)))
			opts := tc.opts
			opts.MaxReconnectionAttempts = 3
			// Bounded well past the four requests' backoff (about 1 s),
			// and far short of for ever.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			for ev, e := range sse.Events(ctx, srv.URL, &opts) {
				if e != nil {
					err = e
					break
				}
				if ev.Type != "" {
					t.Fatalf("event %+v from a stream without one", ev)
				}
			}
			if !errors.Is(err, sse.ErrReconnectLimit) {
				t.Errorf("err = %v, want ErrReconnectLimit", err)
			}
			if n := rc.count(); n != 4 {
				t.Errorf("%d requests, want 4 (the first and MaxReconnectionAttempts 3)", n)
			}
		})
	}
}

// TestClientReconnectFloor: no wait before a reconnection is shorter than
// 100 ms, whatever the reconnection time. A server that sends "retry: 0"
// and one event per connection, then ends the stream, delivers each time,
// so every reconnection is a first one, which waited the reconnection
// time: nothing. Such a server drove requests as fast as it could end
// streams; now at most 10 a second.
func TestClientReconnectFloor(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		opts sse.ClientOptions
	}{
		{"retry 0", "retry: 0\n\nid: 1\ndata: x\n\n", sse.ClientOptions{}},
		{"retry 0 with the event", "retry: 0\ndata: x\n\n", sse.ClientOptions{}},
		{"short reconnection time", "data: x\n\n", sse.ClientOptions{ReconnectionTime: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var arrived []time.Time
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				arrived = append(arrived, time.Now())
				mu.Unlock()
				stream(tc.body)(w)
			}))
			const window = time.Second
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			events := 0
			for _, err := range sse.Events(ctx, srv.URL, &tc.opts) {
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("err = %v, want the window's end", err)
					}
					break
				}
				events++
			}
			mu.Lock()
			defer mu.Unlock()
			// 1 + 1 s / 100 ms at most, with room to spare; it was
			// thousands.
			if len(arrived) > 15 {
				t.Fatalf("%d requests in %v, want at most 15", len(arrived), window)
			}
			if events < 2 {
				t.Fatalf("%d events in %v, want the stream reconnected", events, window)
			}
			// Each request waited at least 100 ms after the previous one
			// had ended, after it arrived.
			for k := 1; k < len(arrived); k++ {
				if gap := arrived[k].Sub(arrived[k-1]); gap < 100*time.Millisecond {
					t.Errorf("request %d came %v after the one before, want at least 100ms", k, gap)
				}
			}
		})
	}
}
