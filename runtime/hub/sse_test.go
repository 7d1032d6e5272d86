package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// sseClient opens an event stream, resuming from lastID when set.
type sseClient struct {
	resp   *http.Response
	p      *sse.Parser
	cancel context.CancelFunc
}

func openSSE(t testing.TB, url, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return &sseClient{resp, sse.NewParser(resp.Body, nil), cancel}
}

func (c *sseClient) next(t testing.TB) sse.Event {
	t.Helper()
	e, err := c.p.Next()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (c *sseClient) close() { c.cancel(); c.resp.Body.Close() }

// TestSSEResume: node A and node B share a MemoryBroker. A client of node
// A reads three events and leaves; more are published on A; the client
// reconnects to node B with its Last-Event-ID and gets exactly the events
// after it, then live ones, each once, with the same ids on both nodes.
func TestSSEResume(t *testing.T) {
	b := hub.NewMemoryBroker()
	opts := &hub.TopicOptions[msg]{EventType: func(m msg) string { return "v" + strconv.Itoa(len(m.GetValue())) }}
	nodeA := freshNode("nodeA") // the ids are checked from <node>-1 on
	ta := newTopic(t, newHub(t, b, nodeA), "feed", opts)
	tb := newTopic(t, newHub(t, b, freshNode("nodeB")), "feed", opts)
	sa := httptest.NewServer(ta.SSEHandler(nil))
	defer sa.Close()
	sb := httptest.NewServer(tb.SSEHandler(nil))
	defer sb.Close()

	c := openSSE(t, sa.URL, "")
	waitSubscribers(t, ta, 1)
	publishN(t, ta, "m", 0, 5)
	var last sse.Event
	for i := range 3 {
		last = c.next(t)
		if last.Data != `"m`+strconv.Itoa(i)+`"` || last.ID != nodeA+"-"+strconv.Itoa(i+1) || last.Type != "v2" {
			t.Fatalf("event %d: %+v", i, last)
		}
	}
	c.close()
	waitSubscribers(t, ta, 0)
	publishN(t, ta, "m", 5, 7)

	c = openSSE(t, sb.URL, last.ID)
	defer c.close()
	waitSubscribers(t, tb, 1)
	publishN(t, ta, "m", 7, 9)
	for i := 3; i < 9; i++ {
		e := c.next(t)
		if e.Data != `"m`+strconv.Itoa(i)+`"` || e.ID != nodeA+"-"+strconv.Itoa(i+1) {
			t.Fatalf("resumed on node B: event %+v, want m%d", e, i)
		}
	}
}

// TestSSEGapAndSnapshot: a client resuming from an id the node does not
// hold is told so (Stream.Gap) before any live event, so OnOpen can send
// a snapshot first; Stats counts the resumptions and their gaps.
func TestSSEGapAndSnapshot(t *testing.T) {
	a := freshNode("a") // the ids are checked from <node>-1 on
	tp := newTopic(t, newHub(t, nil, a), "gap", &hub.TopicOptions[msg]{Replay: sse.NewRing(2)})
	srv := httptest.NewServer(tp.SSEHandler(&hub.SSEOptions{OnOpen: func(s *sse.Stream) error {
		if s.Gap() {
			return s.Send(sse.Event{Type: "reset", Data: "snapshot"})
		}
		return nil
	}}))
	defer srv.Close()
	publishN(t, tp, "m", 0, 5) // the ring keeps a-4 and a-5
	c := openSSE(t, srv.URL, a+"-1")
	defer c.close()
	if e := c.next(t); e.Type != "reset" {
		t.Fatalf("first event %+v, want the snapshot", e)
	}
	waitSubscribers(t, tp, 1)
	publishN(t, tp, "m", 5, 6)
	if e := c.next(t); e.ID != a+"-6" {
		t.Fatalf("live event %+v", e)
	}
	c2 := openSSE(t, srv.URL, a+"-5") // the ring now holds a-5 and a-6
	defer c2.close()
	if e := c2.next(t); e.ID != a+"-6" {
		t.Fatalf("resume from a-5: %+v", e)
	}
	c3 := openSSE(t, srv.URL, "") // a new client: neither
	defer c3.close()
	waitSubscribers(t, tp, 3)
	// Counted before OnOpen runs, so both resumptions are in by now.
	if st := tp.Stats(); st.Resumed != 2 || st.ResumeGaps != 1 {
		t.Errorf("Stats: Resumed %d, ResumeGaps %d; want 2 resumptions, 1 with a gap", st.Resumed, st.ResumeGaps)
	}
}

// TestSSEGapWithoutReplay: a topic that records nothing (DisableReplay)
// cannot resume anyone, so a client that comes back with Last-Event-ID
// has a gap (Stream.Gap) and OnOpen can send it a snapshot; Gap said
// false, and the client silently missed what was published meanwhile.
func TestSSEGapWithoutReplay(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "noreplay", &hub.TopicOptions[msg]{DisableReplay: true})
	srv := httptest.NewServer(tp.SSEHandler(&hub.SSEOptions{OnOpen: func(s *sse.Stream) error {
		return s.Send(sse.Event{Type: "open", Data: strconv.FormatBool(s.Gap())})
	}}))
	defer srv.Close()
	for _, tc := range []struct{ lastID, gap string }{{"", "false"}, {"a-1", "true"}} {
		c := openSSE(t, srv.URL, tc.lastID)
		if e := c.next(t); e.Type != "open" || e.Data != tc.gap {
			t.Errorf("Last-Event-ID %q: first event %+v, want Gap %s", tc.lastID, e, tc.gap)
		}
		c.close()
	}
}

// flushOnlyWriter is a middleware-style wrapper that forwards Flush but
// has no Unwrap, so http.ResponseController cannot set its write
// deadlines, as many logging and metrics wrappers are.
type flushOnlyWriter struct{ http.ResponseWriter }

func (w flushOnlyWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// TestSSEBehindFlushOnlyWrapper: the hub's default write timeout is
// skipped where the writer cannot take deadlines, as sse's default is; the
// hub passed it as an explicit timeout, which must apply, so behind such a
// wrapper every stream failed and its client reconnected forever.
func TestSSEBehindFlushOnlyWrapper(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "wrapped", nil)
	h := tp.SSEHandler(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(flushOnlyWriter{w}, r)
	}))
	defer srv.Close()
	c := openSSE(t, srv.URL, "")
	defer c.close()
	waitSubscribers(t, tp, 1)
	publishN(t, tp, "m", 0, 1)
	if e := c.next(t); e.Data != `"m0"` {
		t.Fatalf("event %+v", e)
	}
}

// TestSSEClosedTopicRetry: a client that comes to a closed topic is told to
// come back later, as a WebSocket one is (1013): an event stream that ends
// at once, with the stream's retry time. It got an empty 200 without a
// Content-Type, on which EventSource and sse's client give up for good.
func TestSSEClosedTopicRetry(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "gone", nil)
	srv := httptest.NewServer(tp.SSEHandler(&hub.SSEOptions{Stream: &sse.StreamOptions{Retry: 5 * time.Second}}))
	defer srv.Close()
	tp.Close()
	c := openSSE(t, srv.URL, "")
	defer c.close()
	if ct := c.resp.Header.Get("Content-Type"); c.resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q, want 200 text/event-stream", c.resp.StatusCode, ct)
	}
	p := sse.NewParser(c.resp.Body, &sse.ParserOptions{ShowRetryEvents: true})
	if e, err := p.Next(); err != nil || e.Retry != 5*time.Second {
		t.Fatalf("first block %+v, %v: want retry 5s", e, err)
	}
	if e, err := p.Next(); err == nil {
		t.Fatalf("the stream goes on: %+v", e)
	}
}

// TestSSEDisconnectPolicy: an SSE subscription removed by the Disconnect
// policy ends (Done, ErrSlowConsumer), and its handler ends the response.
func TestSSEDisconnectPolicy(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "ssedc", &hub.TopicOptions[msg]{QueueSize: 1, Policy: hub.Disconnect})
	subs := make(chan *hub.Subscription, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := tp.ServeSSE(w, r, &hub.SSEOptions{OnOpen: func(*sse.Stream) error {
			// Hold the queue closed while two messages arrive: the second
			// overflows it.
			for deadline := time.Now().Add(20 * time.Second); tp.Stats().Published < 2; {
				if time.Now().After(deadline) {
					return errors.New("no publishes")
				}
				time.Sleep(time.Millisecond)
			}
			return nil
		}})
		if err != nil {
			t.Error(err)
			return
		}
		subs <- sub
		defer sub.Close()
		<-sub.Done()
	}))
	defer srv.Close()
	c := openSSE(t, srv.URL, "")
	defer c.close()
	waitSubscribers(t, tp, 1)
	publishN(t, tp, "m", 0, 2)
	sub := <-subs
	<-sub.Done()
	if !errors.Is(sub.Err(), hub.ErrSlowConsumer) {
		t.Fatalf("Err = %v", sub.Err())
	}
	if _, err := c.p.Next(); err == nil {
		t.Fatal("the stream of a disconnected subscriber goes on")
	}
	if st := tp.Stats(); st.Disconnected != 1 || st.Subscribers != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestStatsFailedSSE guards Stats.Failed for SSE subscribers: one removed
// because a write to it timed out (its client stopped reading) is counted
// once; it used to count nowhere. One whose client leaves, or that is
// closed, is not.
func TestStatsFailedSSE(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "ssefailed", &hub.TopicOptions[msg]{QueueSize: 4})
	subs := make(chan *hub.Subscription, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := tp.ServeSSE(w, r, &hub.SSEOptions{Stream: &sse.StreamOptions{WriteTimeout: 200 * time.Millisecond}})
		if err != nil {
			t.Error(err)
			return
		}
		subs <- sub
		defer sub.Close()
		select {
		case <-sub.Done():
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	stalled := openSSE(t, srv.URL, "") // never read
	defer stalled.close()
	failing := <-subs
	leaving := openSSE(t, srv.URL, "")
	<-subs

	leaving.close()
	waitSubscribers(t, tp, 1)
	// The handler may Close the subscription before the failed write ends
	// it (net/http cancels the request's context when a write fails):
	// Err is then nil, and the write is still counted.
	publishUntilDone(t, tp, failing)
	waitFor(t, "the failed write to be counted", func() bool { return tp.Stats().Failed > 0 })
	if st := tp.Stats(); st.Failed != 1 || st.Disconnected != 0 || st.Subscribers != 0 {
		t.Fatalf("after %v: stats %+v, want Failed 1, Disconnected 0, Subscribers 0", failing.Err(), st)
	}

	closed := openSSE(t, srv.URL, "")
	defer closed.close()
	sub := <-subs
	publishN(t, tp, "m", 0, 10)
	closed.next(t)
	sub.Close()
	publishN(t, tp, "m", 10, 20)
	if st := tp.Stats(); st.Failed != 1 || st.Subscribers != 0 {
		t.Fatalf("after Close: stats %+v, want Failed 1, Subscribers 0", st)
	}
}

// statusWriter is a ResponseWriter that records the statuses written to
// it; with failWrites every Write fails, as on a connection the client
// broke. It cannot flush; flushingStatusWriter can.
type statusWriter struct {
	h          http.Header
	codes      []int
	failWrites bool
}

func (w *statusWriter) Header() http.Header  { return w.h }
func (w *statusWriter) WriteHeader(code int) { w.codes = append(w.codes, code) }
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.failWrites {
		return 0, errors.New("broken pipe")
	}
	return len(b), nil
}

type flushingStatusWriter struct{ *statusWriter }

func (flushingStatusWriter) Flush() {}

// TestSSEHandlerStatusOnlyBeforeStream: SSEHandler answers an error with
// 500 only while no status has gone out. When the stream's 200 is out —
// the client left while the stream opened, a write of the open failed,
// OnOpen failed — a second status is an error net/http drops and logs
// ("superfluous response.WriteHeader call", once per such client). A
// writer that cannot stream still gets its 500.
func TestSSEHandlerStatusOnlyBeforeStream(t *testing.T) {
	tp := newTopic(t, newHub(t, nil, "a"), "status", nil)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	retry := &sse.StreamOptions{Retry: time.Second} // something to write on open
	for _, tc := range []struct {
		name  string
		opts  *hub.SSEOptions
		ctx   context.Context
		fail  bool // writes fail
		flush bool // the writer can flush
		want  string
	}{
		{"client gone during open", nil, gone, false, true, "[200]"},
		{"write fails during open", &hub.SSEOptions{Stream: retry}, context.Background(), true, true, "[200]"},
		{"OnOpen fails", &hub.SSEOptions{OnOpen: func(*sse.Stream) error { return errors.New("no snapshot") }}, context.Background(), false, true, "[200]"},
		// A snapshot from a topic that closed: the stream is open, so no
		// second stream follows for ErrClosed (it wrote a second 200).
		{"OnOpen fails with ErrClosed", &hub.SSEOptions{OnOpen: func(*sse.Stream) error { return hub.ErrClosed }}, context.Background(), false, true, "[200]"},
		{"writer cannot flush", nil, context.Background(), false, false, "[500]"},
	} {
		sw := &statusWriter{h: http.Header{}, failWrites: tc.fail}
		var w http.ResponseWriter = sw
		if tc.flush {
			w = flushingStatusWriter{sw}
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(tc.ctx)
		tp.SSEHandler(tc.opts).ServeHTTP(w, r)
		if got := fmt.Sprint(sw.codes); got != tc.want {
			t.Errorf("%s: statuses written %s, want %s", tc.name, got, tc.want)
		}
	}
	if st := tp.Stats(); st.Subscribers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

var _ = wrapperspb.String
