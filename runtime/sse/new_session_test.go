package sse_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestNewSession: NewSession makes no request until the first Next, which
// connects and retries a first connection that failed as a network
// failure does, as Events does (Connect returns that failure), and the
// session it returns can Reconnect: the consumer's hold on it is what
// NewSession adds to Events.
func TestNewSession(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			// Closed unanswered: a network failure, retried.
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		case 2:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 1\ndata: a\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // held open until the client reconnects
		case 3:
			if got := r.Header.Get("Last-Event-ID"); got != "1" {
				t.Errorf("reconnection's Last-Event-ID %q, want 1", got)
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 2\ndata: b\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := sse.NewSession(ctx, srv.URL, &sse.ClientOptions{ReconnectionTime: time.Millisecond})
	defer s.Close()
	if got := n.Load(); got != 0 {
		t.Fatalf("%d requests before Next, want none", got)
	}
	var data []string
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %v: %v", data, err)
		}
		data = append(data, ev.Data)
		if ev.Data == "a" {
			s.Reconnect()
		}
	}
	if got := n.Load(); len(data) != 2 || data[0] != "a" || data[1] != "b" || got != 4 {
		t.Errorf("events %q after %d requests, want [a b] after 4 (a failed first, a, its reconnection, the 204)", data, got)
	}
}
