package wsrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestSSEReplayStoreOutageBrowser: a typed SSE method whose replay store
// fails as a client resumes (a database out for a moment) answers with a
// 200 event stream that ends at once — the server's retry: (the
// reconnection time a browser waits), a wsrpc.error event with code
// unavailable and no id, so the client keeps its Last-Event-ID — with the
// handshake interceptors' headers (a CORS header a page needs to read
// it). A browser's EventSource reconnects after such a stream and
// resumes; runtime/sse's Client, which behaves as one, resumes from its
// own id (a first request, as a page's new EventSource with
// ?lastEventId= makes) once the store is back. It was 503 unavailable,
// on which EventSource fails for good (WHATWG HTML §9.2.3: any status
// but 200), as sse.Client does on a first request: a page whose store
// blipped never came back.
func TestSSEReplayStoreOutageBrowser(t *testing.T) {
	store := &outageStore{Store: sse.NewRing(16)}
	h := &storeWatch{store: store}
	h.calls.Store(1) // every call resumes: the store holds the notes already
	for i := 1; i <= 6; i++ {
		ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: strconv.Itoa(i)}}, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Store.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var refusals []error // what next returned to the handshake interceptor
	cors := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hs.ResponseHeader.Set("Access-Control-Allow-Origin", "*")
			ctx, err := next(ctx, hs)
			mu.Lock()
			refusals = append(refusals, err)
			mu.Unlock()
			return ctx, err
		}
	})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h, wsrpc.WithSSEReplay(store),
		wsrpc.WithSSEOptions(&sse.StreamOptions{Retry: 250 * time.Millisecond}),
		wsrpc.WithInterceptors(cors)))
	base := newServer(t, mux)
	url := base + testingv1wsrpc.StreamServiceWatchPath + "?room=r"

	// The answer itself, on a plain request as a browser makes it.
	store.fails.Store(1)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", "3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body) // the stream ends: ReadAll returns
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !sse.IsEventStream(ct) {
		t.Fatalf("store failure answered %s, Content-Type %q (%q); want a 200 event stream, which EventSource reconnects after", resp.Status, ct, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want the interceptor's *", got)
	}
	p := sse.NewParser(bytes.NewReader(body), nil)
	var evs []sse.Event
	for {
		e, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse %q: %v", body, err)
		}
		evs = append(evs, e)
	}
	if p.ReconnectionTime() != 250*time.Millisecond {
		t.Errorf("retry %v in %q, want the server's 250ms", p.ReconnectionTime(), body)
	}
	if p.LastEventID() != "" {
		t.Errorf("the stream set the last event id %q (%q): the client would lose its own", p.LastEventID(), body)
	}
	var data struct{ Code, Message string }
	if len(evs) != 1 || evs[0].Type != wsrpc.SSEEventError || json.Unmarshal([]byte(evs[0].Data), &data) != nil ||
		data.Code != "unavailable" || !strings.Contains(data.Message, "replay store") {
		t.Errorf("events %+v, want one %s, unavailable, naming the replay store", evs, wsrpc.SSEEventError)
	}
	mu.Lock()
	if len(refusals) != 1 || !errors.Is(refusals[0], sse.ErrReplayStore) || wsrpc.CodeOf(refusals[0]) != wsrpc.CodeUnavailable {
		t.Errorf("next returned %v to the interceptor, want unavailable wrapping sse.ErrReplayStore", refusals)
	}
	mu.Unlock()
	if got := h.calls.Load(); got != 1 {
		t.Errorf("the handler ran %d times for the failed resumption", got-1)
	}

	// A client resuming from an id of its own: its first request meets
	// the outage, and it reconnects after the stream's end.
	store.fails.Store(2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := sse.Connect(ctx, url, &sse.ClientOptions{
		LastEventID: "3", ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 5,
	})
	if err != nil {
		t.Fatalf("Connect during the outage: %v", err)
	}
	defer s.Close()
	var got []string
	for {
		e, err := s.Next()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, e.Type+":"+e.ID)
		if e.Type == wsrpc.SSEEventEnd {
			break
		}
	}
	// An event's ID is the last event id as it stood (WHATWG HTML
	// §9.2.6): the client's own, kept through the outage.
	want := "wsrpc.error:3 wsrpc.error:3 note:4 note:5 note:6 wsrpc.end:wsrpc.end"
	if strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s: the outage's, then the rest once the store is back", got, want)
	}
}

// TestSSEReplayStoreOutageTypedBackoff: a typed client whose resumption
// keeps meeting a failed replay store reconnects over each answer (the
// wsrpc.error unavailable) with backoff, running its interceptors and
// sse OnReconnect for each attempt, and counting each toward
// MaxReconnectionAttempts: an answer that ends at once is no delivery,
// else the waits would not grow and the call would reconnect every
// reconnection time for ever. Once the attempts are used up the call
// ends with the store's unavailable. On the server, next returns that
// error to the interceptors for each failed resumption, and OnConnect
// and OnClose run for the handler's one call only.
func TestSSEReplayStoreOutageTypedBackoff(t *testing.T) {
	store := &outageStore{Store: sse.NewRing(16)}
	store.fails.Store(1 << 20) // never back
	h := &storeWatch{store: store}
	var mu sync.Mutex
	var nextErrs []error
	var serverConnects, serverCloses int
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h, wsrpc.WithSSEReplay(store),
		wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				ctx, err := next(ctx, hs)
				mu.Lock()
				nextErrs = append(nextErrs, err)
				mu.Unlock()
				return ctx, err
			}
		})),
		wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) { mu.Lock(); serverConnects++; mu.Unlock() }),
		wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { mu.Lock(); serverCloses++; mu.Unlock() })))
	base := newServer(t, mux)

	var starts []time.Time
	var lastIDs []string
	var attempts []string
	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{
			ReconnectionTime: 10 * time.Millisecond, MaxReconnectionAttempts: 3,
			OnReconnect: func(n int, err error) {
				mu.Lock()
				attempts = append(attempts, strconv.Itoa(n)+":"+strconv.FormatBool(err == nil))
				mu.Unlock()
			},
		}),
		wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				mu.Lock()
				starts = append(starts, time.Now())
				lastIDs = append(lastIDs, strconv.Quote(hs.Request.Header.Get("Last-Event-ID")))
				mu.Unlock()
				return next(ctx, hs)
			}
		})))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	notes, err := receiveNotes(st)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("notes %v then %v; Last-Event-ID %v, OnReconnect %v", notes, err, lastIDs, attempts)
	if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || !strings.Contains(err.Error(), "replay store") {
		t.Errorf("call ended with %v, want the store's unavailable once the attempts are used up", err)
	}
	if got := strings.Join(notes, " "); got != "1 2 3" {
		t.Errorf("notes %q, want 1 2 3", got)
	}
	if got := strings.Join(lastIDs, " "); got != `"" "3" "3" "3"` {
		t.Errorf("requests with Last-Event-ID %s, want the call's and three resumptions from 3", got)
	}
	if got := strings.Join(attempts, " "); got != "1:true 2:true 3:true" {
		t.Errorf("OnReconnect %s, want attempts 1 to 3, each answered with a stream", got)
	}
	if len(starts) == 4 {
		// The third reconnection's wait is drawn from [200ms, 400ms]
		// (sse.ClientOptions.MaxReconnectionDelay); a row reset by the
		// answer would wait 100 to 125 ms again.
		if gap := starts[3].Sub(starts[2]); gap < 190*time.Millisecond {
			t.Errorf("third reconnection %v after the second, want the backoff's 200ms or more", gap)
		}
	}
	if len(nextErrs) != 4 || nextErrs[0] != nil {
		t.Fatalf("next returned %v, want nil then three store failures", nextErrs)
	}
	for _, e := range nextErrs[1:] {
		if !errors.Is(e, sse.ErrReplayStore) || wsrpc.CodeOf(e) != wsrpc.CodeUnavailable {
			t.Errorf("next returned %v, want unavailable wrapping sse.ErrReplayStore", e)
		}
	}
	if serverConnects != 1 || serverCloses != 1 {
		t.Errorf("server OnConnect %d, OnClose %d; want the handler's one call", serverConnects, serverCloses)
	}
}
