package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// flakyWatch is a Watch handler that sends the notes 1 to 6, with their
// number as the event id, resuming after Last-Event-ID, and returns
// unavailable before the note failAt on each of its first failCalls
// calls, as a handler following a hub topic that closed under it does
// (docs/hub.md).
type flakyWatch struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	failCalls int32
	failAt    int
	calls     atomic.Int32
}

func (h *flakyWatch) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	call := h.calls.Add(1)
	from, _ := strconv.Atoi(st.LastEventID())
	for i := from + 1; i <= 6; i++ {
		if call <= h.failCalls && i == h.failAt {
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "topic closed")
		}
		ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: strconv.Itoa(i)}}, strconv.Itoa(i))
		if err != nil {
			return err
		}
		if err := st.SendEvent(ev); err != nil {
			return err
		}
	}
	return nil
}

// TestSSERetriesHandlerUnavailable: a typed SSE call whose handler ends
// the stream with unavailable — the code docs/hub.md tells handlers to
// return for a closed topic "so WithReconnect clients reconnect" —
// reconnects with Last-Event-ID, as a WebSocket call with WithReconnect
// does on 4014, within the SSE client's reconnection options, and the
// call reads every event once, in order, then io.EOF. It used to end the
// call for good. Each connection runs the interceptors and hooks: the
// first's OnClose with the handler's error (4014). With reconnection
// disabled, or its attempts used up by a handler that fails before any
// event (the error event is no delivery), the call ends with the
// handler's unavailable.
func TestSSERetriesHandlerUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handler   *flakyWatch
		opts      sse.ClientOptions
		notes     string
		err       wsrpc.Code // 0: io.EOF
		calls     int32
		lastIDs   string // the Last-Event-ID of each request
		closes    string // OnClose's code of each connection
		connected int
	}{
		{name: "resumes after the handler's unavailable", handler: &flakyWatch{failCalls: 1, failAt: 4},
			opts: sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond}, notes: "1 2 3 4 5 6",
			calls: 2, lastIDs: `"" "3"`, closes: "4014 1000", connected: 2},
		{name: "reconnection disabled", handler: &flakyWatch{failCalls: 1, failAt: 4},
			opts: sse.ClientOptions{MaxReconnectionAttempts: -1}, notes: "1 2 3", err: wsrpc.CodeUnavailable,
			calls: 1, lastIDs: `""`, closes: "4014", connected: 1},
		{name: "attempts used up by a handler failing at once", handler: &flakyWatch{failCalls: 99, failAt: 1},
			opts: sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 2}, err: wsrpc.CodeUnavailable,
			calls: 3, lastIDs: `"" "" ""`, closes: "4014 4014 4014", connected: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(tc.handler))
			base := newServer(t, mux)
			var mu sync.Mutex
			var lastIDs, closes []string
			var hookErrs []error
			connected := 0
			c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base,
				wsrpc.WithSSEClientOptions(&tc.opts),
				wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
					return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
						mu.Lock()
						lastIDs = append(lastIDs, strconv.Quote(hs.Request.Header.Get("Last-Event-ID")))
						mu.Unlock()
						return next(ctx, hs)
					}
				})),
				wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) {
					mu.Lock()
					connected++
					mu.Unlock()
				}),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					mu.Lock()
					closes = append(closes, strconv.Itoa(int(ci.Code)))
					hookErrs = append(hookErrs, ci.Err)
					mu.Unlock()
				}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			notes, err := receiveNotes(st)
			mu.Lock()
			defer mu.Unlock()
			t.Logf("notes %v then %v; %d handler calls, Last-Event-ID %v, OnConnect %d, OnClose %v %v",
				notes, err, tc.handler.calls.Load(), lastIDs, connected, closes, hookErrs)
			if tc.err == 0 && err != io.EOF {
				t.Errorf("call ended with %v, want io.EOF", err)
			}
			if tc.err != 0 && (wsrpc.CodeOf(err) != tc.err || !strings.Contains(err.Error(), "topic closed")) {
				t.Errorf("call ended with %v, want the handler's %v", err, tc.err)
			}
			if got := strings.Join(notes, " "); got != tc.notes {
				t.Errorf("notes %q, want %q: each once, in order", got, tc.notes)
			}
			if got := tc.handler.calls.Load(); got != tc.calls {
				t.Errorf("%d handler calls, want %d", got, tc.calls)
			}
			if got := strings.Join(lastIDs, " "); got != tc.lastIDs {
				t.Errorf("requests with Last-Event-ID %s, want %s", got, tc.lastIDs)
			}
			if got := strings.Join(closes, " "); got != tc.closes || connected != tc.connected {
				t.Errorf("OnConnect %d, OnClose %s; want %d, %s", connected, got, tc.connected, tc.closes)
			}
			for i, code := range closes {
				if code != strconv.Itoa(int(wsrpc.CodeUnavailable.CloseCode())) {
					continue
				}
				var e *wsrpc.Error
				if !errors.As(hookErrs[i], &e) || e.Code() != wsrpc.CodeUnavailable || e.Message() != "topic closed" {
					t.Errorf("OnClose %d: Err %v, want the handler's unavailable", i, hookErrs[i])
				}
			}
		})
	}
}

// outageStore is a replay store whose Since fails, as a database out for
// a moment does, while fails is above zero, counting down.
type outageStore struct {
	sse.Store
	fails atomic.Int32
	calls atomic.Int32
}

func (s *outageStore) Since(id string) ([]sse.Event, error) {
	s.calls.Add(1)
	if s.fails.Add(-1) >= 0 {
		return nil, errors.New("replay store: connection refused")
	}
	return s.Store.Since(id)
}

// storeWatch records the notes 1 to 6 in its store, with their number
// as the event id, sends the first three and returns unavailable: the
// client reconnects with Last-Event-ID 3, for the store to replay the
// rest. A resumed call sends nothing of its own.
type storeWatch struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	store sse.Store
	calls atomic.Int32
}

func (h *storeWatch) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	if h.calls.Add(1) > 1 {
		return nil
	}
	for i := 1; i <= 6; i++ {
		ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: strconv.Itoa(i)}}, strconv.Itoa(i))
		if err != nil {
			return err
		}
		if ev, err = h.store.Append(ev); err != nil {
			return err
		}
		if i <= 3 {
			if err := st.SendEvent(ev); err != nil {
				return err
			}
		}
	}
	return wsrpc.Errorf(wsrpc.CodeUnavailable, "topic closed")
}

// TestSSEReplayStoreOutageIsUnavailable: a typed SSE call's replay store
// that fails (not sse.ErrUnknownID, a gap) answers the reconnection with
// a stream that ends at once with a wsrpc.error unavailable, which the
// client reconnects over, and the call resumes once the store is back:
// every note once, in order. It was 500 internal, taken for a
// configuration error, which a reconnecting client takes for final: a
// brief store outage ended every resuming call for good; then 503
// unavailable, which the typed client retried but a browser's
// EventSource does not (TestSSEReplayStoreOutageBrowser).
func TestSSEReplayStoreOutageIsUnavailable(t *testing.T) {
	store := &outageStore{Store: sse.NewRing(16)}
	store.fails.Store(2)
	h := &storeWatch{store: store}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h, wsrpc.WithSSEReplay(store)))
	base := newServer(t, mux)

	// The refusal itself, on a raw request.
	req, err := http.NewRequest(http.MethodGet, base+testingv1wsrpc.StreamServiceWatchPath+"?room=r", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", "3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "event: wsrpc.error\ndata: {\"code\":\"unavailable\"") {
		t.Errorf("store failure answered %s (%q); want a 200 stream ending with a wsrpc.error, unavailable",
			resp.Status, body)
	}

	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 5}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	notes, err := receiveNotes(st)
	t.Logf("notes %v then %v; %d handler calls, %d Since calls", notes, err, h.calls.Load(), store.calls.Load())
	if err != io.EOF {
		t.Errorf("call ended with %v, want io.EOF: the store's outage is not final", err)
	}
	if got := strings.Join(notes, " "); got != "1 2 3 4 5 6" {
		t.Errorf("notes %q, want 1 to 6, each once, in order", got)
	}
	// The raw request's failure, the client's first reconnection's, and
	// its second's, which replays.
	if got := store.calls.Load(); got != 3 {
		t.Errorf("%d Since calls, want 3", got)
	}
}

// receiveNotes receives until the call ends: the notes, and the error it
// ended with (io.EOF for a clean end).
func receiveNotes(st *wsrpc.ServerStreamForClient[testingv1.WatchResponse]) ([]string, error) {
	var notes []string
	for {
		m, err := st.Receive()
		if err != nil {
			return notes, err
		}
		notes = append(notes, m.GetNote())
	}
}
