package hub_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// outageStore is a replay store whose Since fails, as a database out for
// a moment does, while out is set.
type outageStore struct {
	sse.Store
	out atomic.Bool
}

func (s *outageStore) Since(id string) ([]sse.Event, error) {
	if s.out.Load() {
		return nil, errors.New("replay store: connection refused")
	}
	return s.Store.Since(id)
}

// TestSSEHandlerReplayStoreOutage: SSEHandler answers a client resuming
// while the topic's replay store fails (not sse.ErrUnknownID, a gap) with
// an event stream that ends at once, as for a closed topic, and the
// client resumes once the store is back. It was 500, which EventSource
// and sse.Client take for final: a brief store outage ended every client
// resuming during it for good; then 503, which sse.Client retries only
// on a reconnection and EventSource never (WHATWG HTML §9.2.3: any status
// but 200 fails the connection), so a page whose store blipped stopped
// for good. (The typed SSE server ends the same stream with a wsrpc.error
// event, unavailable: TestSSEReplayStoreOutageBrowser in the root
// package.)
func TestSSEHandlerReplayStoreOutage(t *testing.T) {
	store := &outageStore{Store: sse.NewRing(16)}
	tp := newTopic(t, newHub(t, nil, "a"), "outage", &hub.TopicOptions[msg]{Replay: store})
	srv := httptest.NewServer(tp.SSEHandler(nil))
	defer srv.Close()
	publishN(t, tp, "m", 0, 3)
	evs, err := store.Store.Since("")
	if err != nil || len(evs) != 3 {
		t.Fatalf("store holds %v, %v; want 3 events", evs, err)
	}

	store.out.Store(true)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", evs[0].ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("store failure answered %s, Content-Type %q (%q); want an event stream, which clients reconnect on", resp.Status, ct, body)
	}
	if evs, err := collectEvents(body); err != nil || len(evs) != 0 {
		t.Fatalf("store failure answered events %+v (%v), want none", evs, err)
	}

	store.out.Store(false)
	c := openSSE(t, srv.URL, evs[0].ID)
	defer c.close()
	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("store back: %s", c.resp.Status)
	}
	for _, want := range evs[1:] {
		if e := c.next(t); e.ID != want.ID {
			t.Fatalf("replayed %q, want %q", e.ID, want.ID)
		}
	}
}

// collectEvents parses a whole event stream's events (comments and retry
// blocks left out).
func collectEvents(body []byte) ([]sse.Event, error) {
	p := sse.NewParser(bytes.NewReader(body), nil)
	var evs []sse.Event
	for {
		e, err := p.Next()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, e)
	}
}

// TestSSEHandlerReplayStoreOutageClient: an sse.Client that resumes from
// an id of its own (ClientOptions.LastEventID, a consumer restarted
// from a saved position) while the topic's replay store fails reconnects
// until the store is back and gets the events after its id. Its first
// request was answered 503, which sse.Client takes for final on a first
// request, as EventSource does on any request: the session ended at once.
func TestSSEHandlerReplayStoreOutageClient(t *testing.T) {
	store := &outageStore{Store: sse.NewRing(16)}
	tp := newTopic(t, newHub(t, nil, "a"), "outage", &hub.TopicOptions[msg]{Replay: store})
	var failing atomic.Int32
	failing.Store(2) // the first two requests meet the outage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		store.out.Store(failing.Add(-1) >= 0)
		tp.SSEHandler(nil).ServeHTTP(w, r)
	}))
	defer srv.Close()
	publishN(t, tp, "m", 0, 3)
	evs, err := store.Store.Since("")
	if err != nil || len(evs) != 3 {
		t.Fatalf("store holds %v, %v; want 3 events", evs, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sse.Connect(ctx, srv.URL, &sse.ClientOptions{
		LastEventID: evs[0].ID, ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 5,
	})
	if err != nil {
		t.Fatalf("Connect during the outage: %v", err)
	}
	defer s.Close()
	for _, want := range evs[1:] {
		e, err := s.Next()
		if err != nil || e.ID != want.ID {
			t.Fatalf("read %q, %v; want %q", e.ID, err, want.ID)
		}
	}
}
