package sse_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestStreamHead: a HEAD request (an uptime check's, say) gets the event
// stream's header and no body, and the stream that answers it has ended:
// its Context is done and Send fails with ErrStreamClosed, so a handler
// that waits on Context returns. Left open, the stream wrote heartbeats
// into nothing (net/http drops a HEAD's body), the handler never
// returned, and the client's next request on the same pooled connection
// waited behind it for ever (as did the test server's Close).
func TestStreamHead(t *testing.T) {
	type result struct {
		send, errAtEnd error
	}
	results := make(chan result, 2)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/plain" {
			w.Write([]byte("ok"))
			return
		}
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: 10 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		select {
		case <-s.Context().Done():
		case <-time.After(10 * time.Second): // a bound for the hang
		}
		results <- result{s.Send(sse.Event{Data: "x"}), s.Err()}
	}))
	c := srv.Client()
	resp, err := c.Head(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("HEAD answered %s %v, want the event stream's header", resp.Status, resp.Header)
	}
	// The same client, so the same pooled connection.
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(srv.URL + "/plain")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("GET after HEAD: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GET after HEAD still waiting behind the HEAD's stream after 10 s")
	}
	r := <-results
	if !errors.Is(r.send, sse.ErrStreamClosed) || !errors.Is(r.errAtEnd, sse.ErrStreamClosed) {
		t.Errorf("Send on the HEAD's stream = %v, Err = %v; want ErrStreamClosed", r.send, r.errAtEnd)
	}
}
