package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestSSECutShortIsNotEOF: a typed SSE call ends cleanly (io.EOF) only at
// its wsrpc.end event. The session's own clean end before it — a 204 to
// a reconnection or to the first request, or the stream's end with
// reconnection disabled — used to read as the call's, so a stream cut
// after one event of a hundred (by a proxy, a maintenance page, a
// hostile server) passed for a complete one; a 204 to the first request
// read "wsrpc: unknown: EOF". No wsrpc server does either: it answers 204
// only to Last-Event-ID wsrpc.end, which a typed client never sends, and
// always ends a stream with wsrpc.end. Now the call ends with
// unavailable, as a WebSocket call cut so does, and so do its OnClose
// hooks (1006) and the handshake interceptors of a 204.
func TestSSECutShortIsNotEOF(t *testing.T) {
	const event = "event: note\nid: 1\ndata: \"1 of 100\"\n\n"
	streamThen := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "retry: 10\n\n"+event)
	}
	noContent := func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
	for _, tc := range []struct {
		name     string
		answers  []func(http.ResponseWriter) // per request; the last repeats
		opts     *sse.ClientOptions
		requests int32
		notes    int
		msg      string // in the error's message
		// handshakes is what the interceptor's next returned, in order.
		handshakes []wsrpc.Code
	}{
		{name: "reconnection answered 204", answers: []func(http.ResponseWriter){streamThen, noContent},
			requests: 2, notes: 1, msg: "204", handshakes: []wsrpc.Code{0, wsrpc.CodeUnavailable}},
		{name: "first request answered 204", answers: []func(http.ResponseWriter){noContent},
			requests: 1, msg: "204", handshakes: []wsrpc.Code{wsrpc.CodeUnavailable}},
		{name: "reconnection disabled, stream cut", answers: []func(http.ResponseWriter){streamThen},
			opts: &sse.ClientOptions{MaxReconnectionAttempts: -1}, requests: 1, notes: 1, msg: "ended without wsrpc.end", handshakes: []wsrpc.Code{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				tc.answers[min(i, len(tc.answers)-1)](w)
			}))
			var mu sync.Mutex
			var handshakes []wsrpc.Code
			var closes []wsrpc.CloseInfo
			opts := []wsrpc.Option{
				wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
					return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
						ctx, err := next(ctx, hs)
						mu.Lock()
						handshakes = append(handshakes, wsrpc.CodeOf(err))
						mu.Unlock()
						return ctx, err
					}
				})),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					mu.Lock()
					closes = append(closes, ci)
					mu.Unlock()
				}),
			}
			if tc.opts != nil {
				opts = append(opts, wsrpc.WithSSEClientOptions(tc.opts))
			}
			c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			notes, err := watchNotes(t, ctx, c, "1 of 100")
			t.Logf("%d notes then %v", notes, err)
			if errors.Is(err, io.EOF) {
				t.Fatalf("%d notes then %v: a stream cut short read as complete", notes, err)
			}
			if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%d notes then %v, want unavailable saying %q", notes, err, tc.msg)
			}
			if notes != tc.notes || n.Load() != tc.requests {
				t.Errorf("%d notes over %d requests, want %d over %d", notes, n.Load(), tc.notes, tc.requests)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(handshakes) != len(tc.handshakes) {
				t.Fatalf("interceptor saw %v, want %v", handshakes, tc.handshakes)
			}
			for i, code := range tc.handshakes {
				if handshakes[i] != code {
					t.Errorf("interceptor saw %v, want %v", handshakes, tc.handshakes)
				}
			}
			if tc.notes == 0 {
				if len(closes) != 0 {
					t.Errorf("OnClose ran %v for a call that never opened", closes)
				}
				return
			}
			if len(closes) != 1 || closes[0].Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(closes[0].Err) != wsrpc.CodeUnavailable {
				t.Errorf("OnClose saw %+v, want one 1006 with unavailable", closes)
			}
		})
	}
}

// TestSSEEndIsEOF: the stream's wsrpc.end is still the call's clean end,
// with reconnection disabled too (the client stops at the event, before
// the connection ends).
func TestSSEEndIsEOF(t *testing.T) {
	for _, opts := range []*sse.ClientOptions{nil, {MaxReconnectionAttempts: -1}} {
		var closes []wsrpc.CloseInfo
		var mu sync.Mutex
		wopts := []wsrpc.Option{wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
			mu.Lock()
			closes = append(closes, ci)
			mu.Unlock()
		})}
		if opts != nil {
			wopts = append(wopts, wsrpc.WithSSEClientOptions(opts))
		}
		c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, serve(t), wopts...)
		st, err := c.Watch(testContext(t), &testingv1.WatchRequest{Room: "r", Count: 2})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			if _, err = st.Receive(); err != nil {
				break
			}
			n++
		}
		if err != io.EOF || n != 8 {
			t.Fatalf("opts %+v: %d responses then %v, want 8 then io.EOF", opts, n, err)
		}
		mu.Lock()
		if len(closes) != 1 || closes[0].Code != websocket.StatusNormalClosure || closes[0].Err != nil {
			t.Errorf("opts %+v: OnClose saw %+v, want one 1000", opts, closes)
		}
		mu.Unlock()
	}
}

// watchNotes makes a Watch call and receives until its end, checking that
// every response carries note and that a Receive after the end repeats
// it. It returns how many responses came, and the call's end.
func watchNotes(t *testing.T, ctx context.Context, c testingv1wsrpc.StreamServiceClient, note string) (int, error) {
	t.Helper()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		return 0, err
	}
	notes := 0
	for {
		m, err := st.Receive()
		if err != nil {
			if _, again := st.Receive(); again != err {
				t.Errorf("Receive after the end = %v, want %v again", again, err)
			}
			return notes, err
		}
		if m.GetNote() != note {
			t.Fatalf("response %v, want the note %q", m, note)
		}
		notes++
	}
}
