package hub_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

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

// TestSSEHandlerReplayStoreOutage: SSEHandler refuses a client resuming
// while the topic's replay store fails (not sse.ErrUnknownID, a gap) with
// 503, which clients retry, and the client resumes once the store is
// back. It was 500, which EventSource and sse.Client take for final: a
// brief store outage ended every client resuming during it for good. The
// typed SSE server answers the same (TestSSEReplayStoreOutageIsUnavailable
// in the root package).
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
	if resp.StatusCode != http.StatusServiceUnavailable || !sse.RetriedStatus(resp.StatusCode) {
		t.Fatalf("store failure answered %s (%q), want 503, which clients retry", resp.Status, body)
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
