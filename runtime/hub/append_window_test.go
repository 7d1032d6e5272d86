package hub_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestResumeFromRecordedUndelivered: an event the store holds but the
// topic has not delivered yet (its Append has not returned) is replayed
// to a client resuming before it, which then leaves and resumes from that
// event's id while the delivery is still held. The reconnected client
// must not get that event again: its Last-Event-ID says it has it. With
// Append outside the subscriber set's lock, the second client joined the
// set before the delivery, was queued the event, and, with nothing to
// replay after its id, the stream sent it: a duplicate.
func TestResumeFromRecordedUndelivered(t *testing.T) {
	store := &blockingStore{Store: sse.NewRing(16), recordFirst: true, entered: make(chan struct{}), release: make(chan struct{})}
	tp := newTopic(t, newHub(t, nil, freshNode("a")), "recordfirst", &hub.TopicOptions[msg]{Replay: store})
	var once sync.Once
	release := func() { once.Do(func() { close(store.release) }) }
	t.Cleanup(release) // before the hub's Close, which waits for the Publish
	srv := httptest.NewServer(tp.SSEHandler(nil))
	t.Cleanup(srv.Close)
	publishN(t, tp, "m", 0, 1)
	held, err := store.Store.Since("")
	if err != nil || len(held) != 1 {
		t.Fatalf("store holds %v, %v; want 1 event", held, err)
	}

	store.mu.Lock()
	store.armed = true
	store.mu.Unlock()
	published := make(chan error, 1)
	go func() { published <- tp.Publish(context.Background(), wrapperspb.String("m1")) }()
	<-store.entered

	a := openSSE(t, srv.URL, held[0].ID)
	got := a.next(t)
	a.close()
	if got.Data != `"m1"` {
		t.Fatalf("replayed %q %q, want m1's event", got.ID, got.Data)
	}
	b := openSSE(t, srv.URL, got.ID)
	defer b.close()

	release()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	publishN(t, tp, "m", 2, 3)
	if e := b.next(t); e.Data != `"m2"` {
		t.Fatalf("resumed from %q, got %q %q first, want m2's event", got.ID, e.ID, e.Data)
	}
}

// TestCloseWaitsForRecording: a closed topic records nothing in its
// replay store once Close has returned, since Close releases the store
// (another topic may take it: TopicOptions.Replay). A broker message
// whose Append was in progress, blocked in a slow store, when Close came
// is recorded before Close returns. Close used to return at once, the
// Append went on after it: the store got an event of a topic closed.
func TestCloseWaitsForRecording(t *testing.T) {
	store := &blockingStore{Store: sse.NewRing(16), entered: make(chan struct{}), release: make(chan struct{})}
	var closeReturned, lateAppend atomic.Bool
	rec := &lateStore{blockingStore: store, closed: &closeReturned, late: &lateAppend}
	b := &rawBroker{}
	tp := newTopic(t, newHub(t, b, freshNode("sub")), "closing", &hub.TopicOptions[msg]{Replay: rec})
	var once sync.Once
	release := func() { once.Do(func() { close(store.release) }) }
	t.Cleanup(release)
	payload, err := proto.Marshal(wrapperspb.String("m1"))
	if err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.armed = true
	store.mu.Unlock()
	received := make(chan struct{})
	go func() {
		b.handle(hub.AppendEnvelope(nil, "pub", 1, payload))
		close(received)
	}()
	<-store.entered

	closed := make(chan error, 1)
	go func() {
		err := tp.Close()
		closeReturned.Store(true)
		closed <- err
	}()
	// A Close that does not wait returns at once; one that does waits for
	// the store. Either way the store is released after this, and a Close
	// that returned first is seen by the Append it did not wait for.
	select {
	case err := <-closed:
		closed <- err
	case <-time.After(200 * time.Millisecond):
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	<-received
	if lateAppend.Load() {
		t.Fatal("the topic recorded a message in its replay store after Close returned")
	}
}

// lateStore notes an Append that comes (returns from its blocking store)
// once closed is set.
type lateStore struct {
	*blockingStore
	closed, late *atomic.Bool
}

func (s *lateStore) Append(e sse.Event) (sse.Event, error) {
	e, err := s.blockingStore.Append(e)
	if s.closed.Load() {
		s.late.Store(true)
	}
	return e, err
}
