package hub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// blockingStore is a replay store whose Append, once armed, blocks until
// released, as a slow database does; entered is closed when it blocks.
// With recordFirst it records the event before it blocks (Since returns
// it at once, as a database's committed row), as a slow acknowledgement
// does.
type blockingStore struct {
	sse.Store
	recordFirst bool
	mu          sync.Mutex
	armed       bool
	entered     chan struct{}
	release     chan struct{}
}

func (s *blockingStore) Append(e sse.Event) (sse.Event, error) {
	var err error
	if s.recordFirst {
		e, err = s.Store.Append(e)
	}
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		close(s.entered)
		<-s.release
	}
	if s.recordFirst {
		return e, err
	}
	return s.Store.Append(e)
}

// TestReplayAppendBlocksNoSubscriberSet: a replay store whose Append
// blocks holds up the Publish in progress, and the publishers behind it
// (their events must reach subscribers in store order), but not the
// subscriber set: a subscription ends, and an SSE client resuming from
// Last-Event-ID joins and is replayed what the store holds, meanwhile.
// Once the store returns, that client gets the blocked event and the next
// live, each once, in store order. The topic held the subscriber set's
// lock across Append: unsubscribing and subscribing waited for the store
// (a handler's deferred Close stuck, per client that left).
func TestReplayAppendBlocksNoSubscriberSet(t *testing.T) {
	store := &blockingStore{Store: sse.NewRing(16), entered: make(chan struct{}), release: make(chan struct{})}
	tp := newTopic(t, newHub(t, nil, "a"), "slowstore", &hub.TopicOptions[msg]{Replay: store})
	var once sync.Once
	release := func() { once.Do(func() { close(store.release) }) }
	t.Cleanup(release) // before the hub's Close, which waits for the Publish
	srv := httptest.NewServer(tp.SSEHandler(nil))
	t.Cleanup(srv.Close)
	publishN(t, tp, "m", 0, 2)
	held, err := store.Store.Since("")
	if err != nil || len(held) != 2 {
		t.Fatalf("store holds %v, %v; want 2 events", held, err)
	}
	sub, err := tp.SubscribeFunc(func(msg) error { return nil })
	if err != nil {
		t.Fatal(err)
	}

	store.mu.Lock()
	store.armed = true
	store.mu.Unlock()
	published := make(chan error, 1)
	go func() { published <- tp.Publish(context.Background(), wrapperspb.String("m2")) }()
	<-store.entered

	// bounded waits for what must not wait for the store: on timeout the
	// test fails, and Cleanup releases the store.
	wait := func(what string, done <-chan struct{}) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s waited for the replay store's Append", what)
		}
	}
	unsubscribed := make(chan struct{})
	go func() { sub.Close(); close(unsubscribed) }()
	wait("unsubscribing", unsubscribed)

	type opened struct {
		c   *sseClient
		ev  sse.Event
		err error
	}
	resumed := make(chan opened, 1)
	go func() { // no t.Fatal here: openSSE's work, reporting to the test
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("Last-Event-ID", held[0].ID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			resumed <- opened{err: err}
			return
		}
		c := &sseClient{resp, sse.NewParser(resp.Body, nil), cancel}
		ev, err := c.p.Next()
		resumed <- opened{c, ev, err}
	}()
	var o opened
	select {
	case o = <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("a resuming SSE client waited for the replay store's Append")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.c.close()
	if o.ev.ID != held[1].ID {
		t.Fatalf("replayed %q, want %q", o.ev.ID, held[1].ID)
	}

	release()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	publishN(t, tp, "m", 3, 4)
	all, err := store.Store.Since("")
	if err != nil || len(all) != 4 {
		t.Fatalf("store holds %v, %v; want 4 events", all, err)
	}
	for _, want := range all[2:] {
		if e := o.c.next(t); e.ID != want.ID || e.Data != want.Data {
			t.Fatalf("got %q %q, want %q %q: the store's order, each once", e.ID, e.Data, want.ID, want.Data)
		}
	}
}
