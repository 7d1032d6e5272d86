package hub

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// resumeOn opens an SSE stream of tp resuming from lastID and returns
// whether it reported a gap and a reader of its body.
func resumeOn(t *testing.T, tp *Topic[*wrapperspb.StringValue], lastID string) (gap bool, body *bufio.Reader) {
	t.Helper()
	gaps := make(chan bool, 1)
	srv := httptest.NewServer(tp.SSEHandler(&SSEOptions{OnOpen: func(s *sse.Stream) error { gaps <- s.Gap(); return nil }}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	stop := time.AfterFunc(10*time.Second, func() { resp.Body.Close() }) // bounds the reads
	t.Cleanup(func() { stop.Stop() })
	select {
	case gap = <-gaps:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnOpen")
	}
	return gap, bufio.NewReader(resp.Body)
}

// TestFloorGapOwnPublishInFlight: a client moving here with an id of
// another node not received yet, while this node's own publish has been
// dispatched but not yet counted in Stats.Published. The floor's gap was
// decided on that count, so the client was told no gap and never got
// this node's message (dispatched before it joined: neither queued nor
// replayed). It is decided under the topic's mutex now, where dispatch
// records the publish.
func TestFloorGapOwnPublishInFlight(t *testing.T) {
	mb := NewMemoryBroker()
	h, err := New(mb, &Options{NodeID: "nodeB"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tp, err := NewTopic[*wrapperspb.StringValue](h, "ticks", nil)
	if err != nil {
		t.Fatal(err)
	}
	// nodeA serves the topic on the broker too, so its message may be on
	// its way (othersMayDeliver) and the floor is what decides the gap.
	ha, err := New(mb, &Options{NodeID: "nodeA"})
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	if _, err := NewTopic[*wrapperspb.StringValue](ha, "ticks", nil); err != nil {
		t.Fatal(err)
	}
	m := wrapperspb.String("own-1")
	payload, _ := proto.Marshal(m)
	// publish up to its dispatch, stopping before it counts the message.
	tp.pubMu.Lock()
	tp.seq++
	tp.dispatch(h.node, tp.seq, m, true, payload, false)
	tp.pubMu.Unlock()
	if gap, _ := resumeOn(t, tp, "nodeA-5"); !gap {
		t.Fatal("Gap = false, but nodeB-1, published before the client joined, is neither replayed nor queued")
	}
}

// TestFloorForgottenNode: a node forgotten after nodeTTL (sweepNodes)
// whose messages the store still holds is not taken for one whose first
// message is on its way: the client resuming from its id is replayed
// what followed, as for any id the node has passed. It used to get
// nothing replayed and no gap.
func TestFloorForgottenNode(t *testing.T) {
	mb := NewMemoryBroker()
	ha, err := New(mb, &Options{NodeID: "nodeA"})
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := New(mb, &Options{NodeID: "nodeB"})
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	ta, err := NewTopic[*wrapperspb.StringValue](ha, "ticks", nil)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := NewTopic[*wrapperspb.StringValue](hb, "ticks", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := ta.Publish(t.Context(), wrapperspb.String("a")); err != nil {
			t.Fatal(err)
		}
	}
	tb.core.mu.Lock()
	tb.core.sweepNodes(time.Now().Add(2 * nodeTTL)) // nodeA quiet for longer than nodeTTL
	_, known := tb.core.lastSeq["nodeA"]
	tb.core.mu.Unlock()
	if known {
		t.Fatal("sweepNodes kept nodeA")
	}
	// Sequence numbers go on across hubs of one node id in a process.
	id := func(seq uint64) string { return "nodeA-" + strconv.FormatUint(seq, 10) }
	gap, body := resumeOn(t, tb, id(ta.seq-2))
	if gap {
		t.Fatal("Gap = true, but the store holds what followed the id")
	}
	for _, want := range []string{"id: " + id(ta.seq-1), "id: " + id(ta.seq)} {
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended (%v) before %q", err, want)
			}
			if strings.TrimSpace(line) == want {
				break
			}
		}
	}
}
