package hub_test

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestResumeAfterRestartSingleNode: a single-node server (its hub on a
// MemoryBroker no other hub shares: hub.New(nil, …)) restarts, and an SSE
// client that had read up to old-2 of the previous process, and missed
// old-3, resumes on the new process before it publishes anything. No
// other node can have a message on its way to a hub no other hub shares
// a broker with, so the id is a passed one the store no longer holds:
// Gap must be true for OnOpen to send a snapshot. It was taken for a
// message on its way, which reported no gap, and the client never learnt
// of old-3. Checked with a fresh hub on a broker of its own and with a
// hub on a shared MemoryBroker that no other hub serves the topic on.
func TestResumeAfterRestartSingleNode(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run("shared="+strconv.FormatBool(shared), func(t *testing.T) {
			old := freshNode("old")
			var b hub.Broker
			if shared {
				b = hub.NewMemoryBroker()
			}
			before := newHub(t, b, old)
			tp := newTopic(t, before, "ticks", nil)
			publishN(t, tp, "m", 0, 3) // old-1, old-2, old-3
			before.Close()             // the process ends

			after := newTopic(t, newHub(t, b, freshNode("new")), "ticks", nil)
			srv := httptest.NewServer(after.SSEHandler(&hub.SSEOptions{OnOpen: func(s *sse.Stream) error {
				return s.Send(sse.Event{Type: "open", Data: strconv.FormatBool(s.Gap())})
			}}))
			defer srv.Close()
			c := openSSE(t, srv.URL, old+"-2")
			defer c.close()
			if e := c.next(t); e.Type != "open" || e.Data != "true" {
				t.Fatalf("first event %+v, want Gap true: %s-3 was missed", e, old)
			}
			if st := after.Stats(); st.ResumeGaps != 1 {
				t.Errorf("Stats.ResumeGaps = %d, want 1", st.ResumeGaps)
			}
		})
	}
}
