package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
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

// TestSSEClientErrorsParity: a typed SSE call that fails on this side
// for good — an event over MaxEventSize, a 200 that is no event stream
// (a captive portal's page), a header or URL no request can carry, an
// event id no Last-Event-ID header can carry — ends with the code a
// WebSocket call gets for the same kind of failure, on the first request
// and on a reconnection, with no request after it. They all used to be
// unavailable, the lost connection's code, which a caller retries: a
// walkthrough's retry loop hammered a captive portal and re-fetched an
// oversized item for ever.
func TestSSEClientErrorsParity(t *testing.T) {
	const open = "retry: 10\n\n"
	event := func(id, data string) string { return "event: note\nid: " + id + "\ndata: \"" + data + "\"\n\n" }
	stream := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, body) // then the stream ends, without wsrpc.end
		}
	}
	okThenCut := stream(open + event("1", "ok"))
	tooLarge := stream(open + event("2", strings.Repeat("x", 200)))
	portal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>log in first</html>")
	})
	const badToken = "Bearer t\nX-Injected: y"

	// ws makes the same kind of failure over WebSocket, for the same code.
	type wsCase func(t *testing.T, ctx context.Context) error
	wsCount := func(base string, opts ...wsrpc.Option) wsCase {
		return func(t *testing.T, ctx context.Context) error {
			c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base, opts...)
			st, err := c.Count(ctx, &testingv1.CountRequest{Count: 1})
			if err != nil {
				return err
			}
			defer st.Close()
			for {
				if _, err := st.Receive(); err != nil {
					return err
				}
			}
		}
	}
	bearer := func(token func(attempt int32) string) wsrpc.Option {
		var n atomic.Int32
		return wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				hs.Request.Header.Set("Authorization", token(n.Add(1)))
				return next(ctx, hs)
			}
		}))
	}
	badFrom := func(attempt int32) func(int32) string {
		return func(n int32) string {
			if n >= attempt {
				return badToken
			}
			return "Bearer t"
		}
	}

	for _, tc := range []struct {
		name     string
		answers  []http.HandlerFunc // per SSE request; the last repeats
		base     string             // instead of the server's URL
		opts     *sse.ClientOptions
		header   func(attempt int32) string // Authorization per connection
		code     wsrpc.Code
		is       error // in the error's chain
		requests int32 // the call made, none after its end
		notes    int
		ws       wsCase // the WebSocket equivalent, for the same code
	}{
		{name: "event too large, first request", answers: []http.HandlerFunc{tooLarge},
			code: wsrpc.CodeResourceExhausted, is: sse.ErrEventTooLarge, requests: 1,
			ws: func(t *testing.T, ctx context.Context) error {
				c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, serve(t),
					wsrpc.WithDialOptions(&websocket.DialOptions{MaxMessageSize: 64}))
				st, err := c.Echo(ctx)
				if err != nil {
					return err
				}
				defer st.Close()
				if err := st.Send(&testingv1.EchoRequest{Blob: make([]byte, 200)}); err != nil {
					return err
				}
				_, err = st.Receive()
				return err
			}},
		{name: "event too large, reconnection", answers: []http.HandlerFunc{okThenCut, tooLarge},
			code: wsrpc.CodeResourceExhausted, is: sse.ErrEventTooLarge, requests: 2, notes: 1},
		{name: "200 text/html, first request", answers: []http.HandlerFunc{portal},
			code: wsrpc.CodeUnknown, is: sse.ErrContentType, requests: 1,
			ws: func(t *testing.T, ctx context.Context) error { return wsCount(newServer(t, portal))(t, ctx) }},
		{name: "200 text/html, reconnection", answers: []http.HandlerFunc{okThenCut, portal},
			code: wsrpc.CodeUnknown, is: sse.ErrContentType, requests: 2, notes: 1},
		{name: "header no request can carry, first request", answers: []http.HandlerFunc{okThenCut}, header: badFrom(1),
			code: wsrpc.CodeInvalidArgument, is: sse.ErrInvalidHeader, requests: 0,
			ws: func(t *testing.T, ctx context.Context) error { return wsCount(serve(t), bearer(badFrom(1)))(t, ctx) }},
		{name: "header no request can carry, reconnection", answers: []http.HandlerFunc{okThenCut}, header: badFrom(2),
			code: wsrpc.CodeInvalidArgument, is: sse.ErrInvalidHeader, requests: 1, notes: 1},
		{name: "URL not http", answers: []http.HandlerFunc{okThenCut}, base: "ftp://127.0.0.1:1",
			code: wsrpc.CodeInvalidArgument, is: sse.ErrBadURL, requests: 0,
			ws: wsCount("ftp://127.0.0.1:1")},
		{name: "last event id no header can carry, first request", answers: []http.HandlerFunc{okThenCut},
			opts: &sse.ClientOptions{LastEventID: "a\x01b"}, code: wsrpc.CodeUnknown, is: sse.ErrInvalidID, requests: 0},
		{name: "server's id no header can carry, reconnection", answers: []http.HandlerFunc{stream(open + event("a\x01b", "ok"))},
			code: wsrpc.CodeUnknown, is: sse.ErrInvalidID, requests: 1, notes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				tc.answers[min(i, len(tc.answers)-1)](w, r)
			}))
			if tc.base != "" {
				base = tc.base
			}
			opts := sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 3, MaxEventSize: 64}
			if tc.opts != nil {
				opts.LastEventID = tc.opts.LastEventID
			}
			copts := []wsrpc.Option{wsrpc.WithSSEClientOptions(&opts)}
			if tc.header != nil {
				copts = append(copts, bearer(tc.header))
			}
			c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base, copts...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			notes, err := watchNotes(t, ctx, c, "ok")
			t.Logf("SSE: %d notes over %d requests, then %v", notes, n.Load(), err)
			if got := wsrpc.CodeOf(err); got != tc.code || !errors.Is(err, tc.is) {
				t.Fatalf("SSE call ended with %v (code %v), want %v wrapping %v", err, got, tc.code, tc.is)
			}
			if notes != tc.notes || n.Load() != tc.requests {
				t.Errorf("SSE: %d notes over %d requests, want %d over %d (no reconnection after the failure)", notes, n.Load(), tc.notes, tc.requests)
			}
			if tc.ws == nil {
				return
			}
			werr := tc.ws(t, ctx)
			t.Logf("WebSocket: %v", werr)
			if got := wsrpc.CodeOf(werr); got != tc.code {
				t.Errorf("WebSocket call ended with %v (code %v), want %v as over SSE", werr, got, tc.code)
			}
		})
	}
}

// TestSSEHandshakeTimeoutUnavailable: a typed SSE call whose server
// accepts and never answers ends, once sse.ClientOptions.HandshakeTimeout
// has passed, with unavailable, as a WebSocket call does once its
// handshake timeout has (a server that does not answer is unavailable),
// where it used to block for ever on a ctx without deadline; a
// reconnection left unanswered is retried, and its interceptors see
// unavailable too, not the canceled of the request's context.
func TestSSEHandshakeTimeoutUnavailable(t *testing.T) {
	const bound = time.Second // short, but long enough for the server that answers, under -race on a loaded machine
	var n atomic.Int32
	answer := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "retry: 10\n\n"+body)
	}
	base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("room") == "never":
			<-r.Context().Done()
		case n.Add(1) == 2:
			<-r.Context().Done() // the reconnection: no header until the client gives up
		case r.Header.Get("Last-Event-ID") == "":
			answer(w, "event: note\nid: 1\ndata: \"one\"\n\n")
		default:
			answer(w, "event: note\nid: 2\ndata: \"two\"\n\nevent: wsrpc.end\nid: wsrpc.end\ndata: {}\n\n")
		}
	}))
	var mu sync.Mutex
	var handshakes []wsrpc.Code
	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{HandshakeTimeout: bound, MaxReconnectionAttempts: 3}),
		wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				ctx, err := next(ctx, hs)
				mu.Lock()
				handshakes = append(handshakes, wsrpc.CodeOf(err))
				mu.Unlock()
				return ctx, err
			}
		})))
	ctx, cancel := context.WithCancel(context.Background()) // no deadline
	defer cancel()
	timer := time.AfterFunc(20*time.Second, cancel)
	defer timer.Stop()

	_, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "never"})
	t.Logf("first request unanswered: %v", err)
	if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("call = %v (code %v), want unavailable wrapping os.ErrDeadlineExceeded", err, wsrpc.CodeOf(err))
	}

	mu.Lock()
	handshakes = nil
	mu.Unlock()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var notes []string
	for {
		m, err := st.Receive()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %v: %v", notes, err)
		}
		notes = append(notes, m.GetNote())
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("notes %v, interceptors saw %v", notes, handshakes)
	if strings.Join(notes, " ") != "one two" {
		t.Errorf("notes %v, want one two", notes)
	}
	if len(handshakes) != 3 || handshakes[0] != 0 || handshakes[1] != wsrpc.CodeUnavailable || handshakes[2] != 0 {
		t.Errorf("interceptors saw %v, want [0 unavailable 0]", handshakes)
	}
}
