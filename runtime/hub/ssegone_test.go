package hub_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// leavingWriter is a ResponseWriter whose first write of an event fails,
// as on a connection broken under it; with leave, the request's context
// ends during that write, as net/http ends it when the client closed the
// connection (an EventSource's close, a closed tab).
//
// Concurrency: the stream serialises its writes, and the fields are set
// before ServeSSE.
type leavingWriter struct {
	h      http.Header
	cancel context.CancelFunc
	leave  bool
}

func (w *leavingWriter) Header() http.Header { return w.h }
func (w *leavingWriter) WriteHeader(int)     {}
func (w *leavingWriter) Flush()              {}

func (w *leavingWriter) Write(b []byte) (int, error) {
	if !strings.Contains(string(b), "data:") {
		return len(b), nil // the stream's opening
	}
	if w.leave {
		w.cancel()
	}
	return 0, errors.New("connection reset by peer")
}

// TestStatsFailedSSEClientGone: an SSE subscriber whose write fails
// because the client left (the stream's sse.ErrClientGone, wrapping the
// write's error when the request's context ended during the write) is
// not a failed subscriber; one whose write fails with the client still
// there is. The first used to be counted in Stats.Failed: 13 to 20 of
// 400 clients that simply left, in a walkthrough.
func TestStatsFailedSSEClientGone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leave  bool
		failed uint64
	}{
		{"client left", true, 0},
		{"write failed", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopic(t, newHub(t, nil, "a"), "gone", nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &leavingWriter{h: http.Header{}, cancel: cancel, leave: tc.leave}
			r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			sub, err := tp.ServeSSE(w, r, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			publishN(t, tp, "m", 0, 1)
			select {
			case <-sub.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the failed write did not end the subscription")
			}
			if tc.leave && !errors.Is(sub.Err(), sse.ErrClientGone) {
				t.Fatalf("Err %v, want sse.ErrClientGone", sub.Err())
			}
			if st := tp.Stats(); st.Failed != tc.failed || st.Subscribers != 0 {
				t.Fatalf("after %v: stats %+v, want Failed %d, Subscribers 0", sub.Err(), st, tc.failed)
			}
		})
	}
}
