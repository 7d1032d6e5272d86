package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// cutStreams serves event streams of WatchResponse ticks: connection n
// (counting from 1) sends ticks n*10+1 and n*10+2, with those ids, and
// then ends without wsrpc.end, so that the client reconnects, until
// connection last, which ends the call with wsrpc.end. It records each
// request's header and answers with X-Conn: n.
type cutStreams struct {
	last int
	mu   sync.Mutex
	reqs []http.Header
}

func (c *cutStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Header.Clone())
	n := len(c.reqs)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Conn", strconv.Itoa(n))
	for i := n*10 + 1; i <= n*10+2; i++ {
		fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"seq\":%d}\n\n", i, i)
	}
	if n >= c.last {
		fmt.Fprintf(w, "id: %s\nevent: %s\ndata: {}\n\n", wsrpc.SSEEndEventID, wsrpc.SSEEventEnd)
	}
}

// requests returns header key of each request served so far.
func (c *cutStreams) requests(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var vs []string
	for _, h := range c.reqs {
		vs = append(vs, h.Get(key))
	}
	return vs
}

// attemptKey carries the handshake attempt's number in the context the
// interceptor passes to next, which the hooks of that connection get.
type attemptKey struct{}

// hookLog records, in order, the handshakes an interceptor saw and the
// OnConnect and OnClose hooks of one call.
type hookLog struct {
	mu    sync.Mutex
	lines []string
	infos map[*wsrpc.ConnInfo]string // OnConnect's ConnInfo, by attempt
}

func (l *hookLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *hookLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// options returns the hooks, which log the attempt in their context and
// the X-Attempt their ConnInfo's request carried, and check that each
// OnClose gets its own connection's ConnInfo.
func (l *hookLog) options(t *testing.T) []wsrpc.Option {
	l.infos = map[*wsrpc.ConnInfo]string{}
	return []wsrpc.Option{
		wsrpc.WithOnConnect(func(ctx context.Context, info *wsrpc.ConnInfo) {
			l.mu.Lock()
			l.infos[info] = info.RequestHeader.Get("X-Attempt")
			l.mu.Unlock()
			l.add("connect %v X-Attempt=%s", ctx.Value(attemptKey{}), info.RequestHeader.Get("X-Attempt"))
		}),
		wsrpc.WithOnClose(func(ctx context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
			l.mu.Lock()
			if got, ok := l.infos[info]; !ok || got != info.RequestHeader.Get("X-Attempt") {
				t.Errorf("OnClose got a ConnInfo no OnConnect had (X-Attempt %s)", info.RequestHeader.Get("X-Attempt"))
			}
			l.mu.Unlock()
			code := "nil"
			if ci.Err != nil {
				code = wsrpc.CodeOf(ci.Err).String()
			}
			l.add("close %v X-Attempt=%s %d %s", ctx.Value(attemptKey{}), info.RequestHeader.Get("X-Attempt"), ci.Code, code)
		}),
	}
}

// counting returns an interceptor that numbers each handshake from 1,
// sets the number as X-Attempt, passes it in the context, and then does
// what refuse says for that attempt: call next (nil), or return an error
// before next ("before") or after it ("after"), or return without calling
// next ("skip").
func counting(log *hookLog, n *atomic.Int64, refuse func(attempt int64) (string, error)) wsrpc.Interceptor {
	return wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			a := n.Add(1)
			hs.Request.Header.Set("X-Attempt", strconv.FormatInt(a, 10))
			lastID := hs.Request.Header.Get("Last-Event-ID")
			how, rerr := "", error(nil)
			if refuse != nil {
				how, rerr = refuse(a)
			}
			switch how {
			case "before":
				log.add("handshake %d refused", a)
				return ctx, rerr
			case "skip":
				log.add("handshake %d skipped", a)
				return ctx, nil
			}
			rctx, err := next(context.WithValue(ctx, attemptKey{}, a), hs)
			log.add("handshake %d Last-Event-ID=%q X-Conn=%s err=%v", a, lastID, hs.ResponseHeader.Get("X-Conn"), err)
			if how == "after" {
				return ctx, rerr
			}
			return rctx, err
		}
	})
}

func tickSeqs(t *testing.T, st *wsrpc.ServerStreamForClient[testingv1.WatchResponse], n int) []int64 {
	t.Helper()
	var seqs []int64
	for range n {
		m, err := st.Receive()
		if err != nil {
			t.Fatalf("Receive after ticks %v: %v", seqs, err)
		}
		seqs = append(seqs, m.GetTick().GetSeq())
	}
	return seqs
}

// TestSSEReconnectRunsHandshakeChain: each connection of a typed SSE call
// — the first and each reconnection runtime/sse makes after the server
// cut the stream — goes through the client's handshake interceptors with
// that attempt's request (Last-Event-ID included), so a header set per
// attempt reaches the server, and the interceptor reads that
// connection's response header after next; OnConnect and OnClose run for
// each connection, in the WebSocket reconnection's order (the lost
// connection's OnClose, 1006 and unavailable, before the next attempt),
// with the context the interceptors returned for it. Before, only the
// first request ran the chain, and the reconnections carried its header
// (X-Attempt 1 three times); the hooks ran once each.
func TestSSEReconnectRunsHandshakeChain(t *testing.T) {
	srv := &cutStreams{last: 3}
	base := newServer(t, srv)
	var log hookLog
	var attempts atomic.Int64
	opts := append(log.options(t),
		wsrpc.WithInterceptors(counting(&log, &attempts, nil)),
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 5}))
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", opts...)
	st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for conn := int64(1); conn <= 3; conn++ {
		if got, want := tickSeqs(t, st, 2), []int64{conn*10 + 1, conn*10 + 2}; !slices.Equal(got, want) {
			t.Fatalf("ticks %v, want %v", got, want)
		}
		// As a WebSocket call's, the stream's headers are its latest
		// connection's.
		if got, want := st.ResponseHeader().Get("X-Conn"), strconv.FormatInt(conn, 10); got != want {
			t.Errorf("ResponseHeader X-Conn = %q on connection %d", got, conn)
		}
		if got, want := st.RequestHeader().Get("X-Attempt"), strconv.FormatInt(conn, 10); got != want {
			t.Errorf("RequestHeader X-Attempt = %q on connection %d", got, conn)
		}
	}
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive at the end = %v, want io.EOF", err)
	}
	if got, want := srv.requests("X-Attempt"), []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("the server saw X-Attempt %q, want %q", got, want)
	}
	if got, want := srv.requests("Last-Event-ID"), []string{"", "12", "22"}; !slices.Equal(got, want) {
		t.Errorf("the server saw Last-Event-ID %q, want %q", got, want)
	}
	want := []string{
		`handshake 1 Last-Event-ID="" X-Conn=1 err=<nil>`,
		"connect 1 X-Attempt=1",
		"close 1 X-Attempt=1 1006 unavailable",
		`handshake 2 Last-Event-ID="12" X-Conn=2 err=<nil>`,
		"connect 2 X-Attempt=2",
		"close 2 X-Attempt=2 1006 unavailable",
		`handshake 3 Last-Event-ID="22" X-Conn=3 err=<nil>`,
		"connect 3 X-Attempt=3",
		"close 3 X-Attempt=3 1000 nil",
	}
	st.Close() // runs no hook again
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("interceptor and hooks ran as\n\t%q\nwant\n\t%q", got, want)
	}
}

// TestSSEReconnectInterceptorRefuses: an interceptor's error on a
// reconnection ends the attempt as a server's refusal with the error's
// code would: permission_denied, unauthenticated (also when returned
// after next) and internal (an interceptor that did not call next) end
// the call with the interceptor's own *Error and no further attempt;
// unavailable is retried with the session's backoff and limits. Before,
// the reconnections did not run the interceptor at all.
func TestSSEReconnectInterceptorRefuses(t *testing.T) {
	denied := wsrpc.Errorf(wsrpc.CodePermissionDenied, "token revoked")
	expired := wsrpc.Errorf(wsrpc.CodeUnauthenticated, "token expired")
	down := wsrpc.Errorf(wsrpc.CodeUnavailable, "token service down")
	for _, tc := range []struct {
		name     string
		refuse   func(attempt int64) (string, error)
		last     int     // the server's connection that ends the call
		ticks    []int64 // what Receive returns before the end
		end      error   // Receive's error at the end: this *Error, or io.EOF
		endCode  wsrpc.Code
		attempts int64    // interceptor runs
		served   []string // X-Attempt of the requests the server saw
		hooks    []string
		retries  []string // what the application's OnReconnect heard
	}{
		{
			name:   "permission denied",
			refuse: func(a int64) (string, error) { return map[bool]string{true: "before"}[a == 2], denied },
			last:   3, ticks: []int64{11, 12}, end: denied, attempts: 2, served: []string{"1"},
			hooks:   []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable"},
			retries: []string{"403"},
		},
		{
			name:   "unauthenticated after next",
			refuse: func(a int64) (string, error) { return map[bool]string{true: "after"}[a == 2], expired },
			last:   3, ticks: []int64{11, 12}, end: expired, attempts: 2, served: []string{"1", "2"},
			hooks:   []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable"},
			retries: []string{"401"},
		},
		{
			name:   "next not called",
			refuse: func(a int64) (string, error) { return map[bool]string{true: "skip"}[a == 2], nil },
			last:   3, ticks: []int64{11, 12}, endCode: wsrpc.CodeInternal, attempts: 2, served: []string{"1"},
			hooks:   []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable"},
			retries: []string{"500"},
		},
		{
			name:   "unavailable once",
			refuse: func(a int64) (string, error) { return map[bool]string{true: "before"}[a == 2], down },
			last:   2, ticks: []int64{11, 12, 21, 22}, end: io.EOF, attempts: 3, served: []string{"1", "3"},
			hooks: []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable",
				"connect 3 X-Attempt=3", "close 3 X-Attempt=3 1000 nil"},
			retries: []string{"503", "ok"},
		},
		{
			name:   "unavailable for ever",
			refuse: func(a int64) (string, error) { return map[bool]string{true: "before"}[a >= 2], down },
			last:   3, ticks: []int64{11, 12}, endCode: wsrpc.CodeUnavailable, attempts: 4, served: []string{"1"},
			hooks:   []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable"},
			retries: []string{"503", "503", "503"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &cutStreams{last: tc.last}
			base := newServer(t, srv)
			var log, hooks hookLog
			var attempts atomic.Int64
			var rmu sync.Mutex
			var retries []string
			opts := append(hooks.options(t),
				wsrpc.WithInterceptors(counting(&log, &attempts, tc.refuse)),
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 3,
					OnReconnect: func(_ int, err error) {
						var se *sse.StatusError
						r := "ok"
						if errors.As(err, &se) {
							r = strconv.Itoa(se.StatusCode)
						} else if err != nil {
							r = err.Error()
						}
						rmu.Lock()
						retries = append(retries, r)
						rmu.Unlock()
					}}))
			c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", opts...)
			st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := tickSeqs(t, st, len(tc.ticks)); !slices.Equal(got, tc.ticks) {
				t.Fatalf("ticks %v, want %v", got, tc.ticks)
			}
			_, err = st.Receive()
			switch {
			case tc.end == io.EOF:
				if err != io.EOF {
					t.Fatalf("Receive at the end = %v, want io.EOF", err)
				}
			case tc.end != nil:
				// The interceptor's own error, not one rebuilt from a
				// status.
				var e *wsrpc.Error
				if !errors.As(err, &e) || e != tc.end {
					t.Fatalf("Receive at the end = %v (%T), want the interceptor's %v", err, err, tc.end)
				}
			default:
				if wsrpc.CodeOf(err) != tc.endCode {
					t.Fatalf("Receive at the end = %v, want %v", err, tc.endCode)
				}
			}
			st.Close()
			if got := attempts.Load(); got != tc.attempts {
				t.Errorf("the interceptor ran %d times, want %d; it saw %q", got, tc.attempts, log.get())
			}
			if got := srv.requests("X-Attempt"); !slices.Equal(got, tc.served) {
				t.Errorf("the server saw X-Attempt %q, want %q", got, tc.served)
			}
			if got := hooks.get(); !slices.Equal(got, tc.hooks) {
				t.Errorf("hooks ran as\n\t%q\nwant\n\t%q", got, tc.hooks)
			}
			rmu.Lock()
			defer rmu.Unlock()
			if !slices.Equal(retries, tc.retries) {
				t.Errorf("OnReconnect heard %q, want %q", retries, tc.retries)
			}
		})
	}
}

// TestSSEReconnectClosedInOnConnect: a call closed while a reconnection's
// OnConnect hooks run (here by one of them) still gets that connection's
// OnClose, once, after its OnConnect: each OnConnect has its OnClose.
func TestSSEReconnectClosedInOnConnect(t *testing.T) {
	srv := &cutStreams{last: 3}
	base := newServer(t, srv)
	var log hookLog
	var attempts atomic.Int64
	var call atomic.Pointer[wsrpc.ServerStreamForClient[testingv1.WatchResponse]]
	opts := append(log.options(t),
		wsrpc.WithOnConnect(func(ctx context.Context, info *wsrpc.ConnInfo) {
			if info.RequestHeader.Get("X-Attempt") == "2" {
				call.Load().Close()
			}
		}),
		wsrpc.WithInterceptors(counting(&hookLog{}, &attempts, nil)),
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 5}))
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", opts...)
	st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	call.Store(st)
	defer st.Close()
	tickSeqs(t, st, 2)
	// The session may still hand over what it had read when Close
	// came; then it ends.
	for i := 0; ; i++ {
		if _, err := st.Receive(); err != nil {
			break
		}
		if i == 2 {
			t.Fatal("Receive goes on after Close")
		}
	}
	want := []string{
		"connect 1 X-Attempt=1",
		"close 1 X-Attempt=1 1006 unavailable",
		"connect 2 X-Attempt=2",
		"close 2 X-Attempt=2 1000 nil",
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("hooks ran as\n\t%q\nwant\n\t%q", got, want)
	}
}
