package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
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
	late := wsrpc.Errorf(wsrpc.CodeDeadlineExceeded, "token fetch timed out")
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
			// An interceptor's deadline_exceeded is an attempt that
			// timed out: retried, as a WebSocket interceptor's is.
			name:   "deadline exceeded once",
			refuse: func(a int64) (string, error) { return map[bool]string{true: "before"}[a == 2], late },
			last:   2, ticks: []int64{11, 12, 21, 22}, end: io.EOF, attempts: 3, served: []string{"1", "3"},
			hooks: []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable",
				"connect 3 X-Attempt=3", "close 3 X-Attempt=3 1000 nil"},
			retries: []string{"504", "ok"},
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

// redirecting serves /t/W: its first request gets tick 1 and a stream cut
// without wsrpc.end, so that the client reconnects; each later one a 307
// to Location to, whose handler, /t/W2, sends tick 2 and wsrpc.end with
// X-Conn: 2. Each /t/W answer sets a cookie (s=1, then hop=1). It records
// what each request carried.
type redirecting struct {
	to   string
	mu   sync.Mutex
	reqs []string
}

func (rs *redirecting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	rs.reqs = append(rs.reqs, fmt.Sprintf("%s %s X-Attempt=%s Authorization=%q Cookie=%q",
		r.Host[:strings.Index(r.Host, ":")], r.URL.Path, r.Header.Get("X-Attempt"), r.Header.Get("Authorization"), r.Header.Get("Cookie")))
	n := len(rs.reqs)
	rs.mu.Unlock()
	switch {
	case r.URL.Path == "/t/W2":
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Conn", "2")
		fmt.Fprintf(w, "id: 2\nevent: tick\ndata: {\"seq\":2}\n\n")
		fmt.Fprintf(w, "id: %s\nevent: %s\ndata: {}\n\n", wsrpc.SSEEndEventID, wsrpc.SSEEventEnd)
	case n == 1:
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Conn", "1")
		fmt.Fprintf(w, "id: 1\nevent: tick\ndata: {\"seq\":1}\n\n")
	default:
		http.SetCookie(w, &http.Cookie{Name: "hop", Value: "1", Path: "/"})
		http.Redirect(w, r, rs.to, http.StatusTemporaryRedirect)
	}
}

func (rs *redirecting) requests() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.reqs)
}

// TestSSEReconnectRedirected: a reconnection the server redirects (307)
// is followed inside the interceptors' next, by the call's client's
// CheckRedirect and Jar: the interceptor sees the final answer (no
// error, X-Conn 2), every hop carries the headers it set — less
// Authorization and Cookie on a hop to another host, which net/http
// drops there — and the Jar's cookies once; the final 200 is a
// connection with its hooks, RemoteAddr the final host, and the stream's
// headers become its own. Before, next returned the 307 as a refusal
// (unknown), the session followed it with the first request's header
// (X-Attempt 1), the second connection got no OnConnect or OnClose, and
// an interceptor that wraps next's error ended the call with unknown.
func TestSSEReconnectRedirected(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wrap      bool // the first interceptor rewraps next's error
		otherHost bool // the redirect goes to wsrpc-other.test, dialled at the same server
		served    []string
	}{
		{name: "same host", served: []string{
			`127.0.0.1 /t/W X-Attempt=1 Authorization="Bearer t1" Cookie=""`,
			`127.0.0.1 /t/W X-Attempt=2 Authorization="Bearer t2" Cookie="s=1"`,
			`127.0.0.1 /t/W2 X-Attempt=2 Authorization="Bearer t2" Cookie="s=1; hop=1"`,
		}},
		{name: "wrapping interceptor", wrap: true, served: []string{
			`127.0.0.1 /t/W X-Attempt=1 Authorization="Bearer t1" Cookie=""`,
			`127.0.0.1 /t/W X-Attempt=2 Authorization="Bearer t2" Cookie="s=1"`,
			`127.0.0.1 /t/W2 X-Attempt=2 Authorization="Bearer t2" Cookie="s=1; hop=1"`,
		}},
		{name: "another host", otherHost: true, served: []string{
			`127.0.0.1 /t/W X-Attempt=1 Authorization="Bearer t1" Cookie=""`,
			`127.0.0.1 /t/W X-Attempt=2 Authorization="Bearer t2" Cookie="s=1"`,
			`wsrpc-other.test /t/W2 X-Attempt=2 Authorization="" Cookie=""`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &redirecting{to: "/t/W2"}
			base := newServer(t, srv)
			addr := strings.TrimPrefix(base, "http://")
			final := addr
			tr := &http.Transport{}
			if tc.otherHost {
				final = "wsrpc-other.test" + addr[strings.Index(addr, ":"):]
				srv.to = "http://" + final + "/t/W2"
				tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}
			}
			t.Cleanup(tr.CloseIdleConnections)
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			var cmu sync.Mutex
			var checked []string
			hc := &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
				cmu.Lock()
				checked = append(checked, fmt.Sprintf("%s X-Attempt=%s after %d", r.URL.Path, r.Header.Get("X-Attempt"), len(via)))
				cmu.Unlock()
				return nil
			}}
			var log, hooks hookLog
			var attempts atomic.Int64
			var rmu sync.Mutex
			var remotes []string
			wrapper := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					rctx, err := next(ctx, hs)
					if tc.wrap && err != nil {
						return ctx, wsrpc.Errorf(wsrpc.CodeOf(err), "auth: %v", err)
					}
					return rctx, err
				}
			})
			bearer := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					hs.Request.Header.Set("Authorization", "Bearer t"+hs.Request.Header.Get("X-Attempt"))
					return next(ctx, hs)
				}
			})
			opts := append(hooks.options(t),
				wsrpc.WithOnConnect(func(_ context.Context, info *wsrpc.ConnInfo) {
					rmu.Lock()
					remotes = append(remotes, info.RemoteAddr)
					rmu.Unlock()
				}),
				wsrpc.WithInterceptors(wrapper, counting(&log, &attempts, nil), bearer),
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 3}))
			c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](hc, base+"/t/W", "/t/W", opts...)
			st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got, want := tickSeqs(t, st, 2), []int64{1, 2}; !slices.Equal(got, want) {
				t.Fatalf("ticks %v, want %v", got, want)
			}
			if got, want := st.RequestHeader().Get("X-Attempt"), "2"; got != want {
				t.Errorf("RequestHeader X-Attempt = %q, want %q", got, want)
			}
			if got, want := st.ResponseHeader().Get("X-Conn"), "2"; got != want {
				t.Errorf("ResponseHeader X-Conn = %q, want %q", got, want)
			}
			if _, err := st.Receive(); err != io.EOF {
				t.Fatalf("Receive at the end = %v, want io.EOF", err)
			}
			st.Close()
			if got, want := srv.requests(), tc.served; !slices.Equal(got, want) {
				t.Errorf("the server saw\n\t%q\nwant\n\t%q", got, want)
			}
			if got, want := log.get(), []string{
				`handshake 1 Last-Event-ID="" X-Conn=1 err=<nil>`,
				`handshake 2 Last-Event-ID="1" X-Conn=2 err=<nil>`,
			}; !slices.Equal(got, want) {
				t.Errorf("the interceptor saw\n\t%q\nwant\n\t%q", got, want)
			}
			if got, want := hooks.get(), []string{
				"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable",
				"connect 2 X-Attempt=2", "close 2 X-Attempt=2 1000 nil",
			}; !slices.Equal(got, want) {
				t.Errorf("hooks ran as\n\t%q\nwant\n\t%q", got, want)
			}
			cmu.Lock()
			if got, want := checked, []string{"/t/W2 X-Attempt=2 after 1"}; !slices.Equal(got, want) {
				t.Errorf("CheckRedirect saw %q, want %q", got, want)
			}
			cmu.Unlock()
			rmu.Lock()
			if got, want := remotes, []string{addr, final}; !slices.Equal(got, want) {
				t.Errorf("OnConnect's RemoteAddr %q, want %q", got, want)
			}
			rmu.Unlock()
		})
	}
}

// TestSSEReconnectEndedBeforeChain: a call that ends before a
// reconnection's interceptors run — here closed or cancelled by the lost
// connection's OnClose, which runs just before them — runs neither the
// interceptors nor any hook for it, and sends nothing: Receive returns
// canceled. Before, the interceptors ran for that attempt (attempt 2) on
// a call already ended.
func TestSSEReconnectEndedBeforeChain(t *testing.T) {
	for _, how := range []string{"Close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			srv := &cutStreams{last: 3}
			base := newServer(t, srv)
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			var log hookLog
			var attempts atomic.Int64
			var call atomic.Pointer[wsrpc.ServerStreamForClient[testingv1.WatchResponse]]
			opts := append(log.options(t),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					if ci.Code != websocket.StatusAbnormalClosure {
						return
					}
					if how == "Close" {
						call.Load().Close()
					} else {
						cancel()
					}
				}),
				wsrpc.WithInterceptors(counting(&hookLog{}, &attempts, nil)),
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 5}))
			c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", opts...)
			st, err := c.Call(ctx, &testingv1.WatchRequest{Room: "r"})
			if err != nil {
				t.Fatal(err)
			}
			call.Store(st)
			defer st.Close()
			tickSeqs(t, st, 2)
			if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
				t.Fatalf("Receive after the end = %v, want canceled", err)
			}
			st.Close()
			if got := attempts.Load(); got != 1 {
				t.Errorf("the interceptor ran %d times, want 1", got)
			}
			if got, want := srv.requests("X-Attempt"), []string{"1"}; !slices.Equal(got, want) {
				t.Errorf("the server saw X-Attempt %q, want %q", got, want)
			}
			if got, want := log.get(), []string{"connect 1 X-Attempt=1", "close 1 X-Attempt=1 1006 unavailable"}; !slices.Equal(got, want) {
				t.Errorf("hooks ran as\n\t%q\nwant\n\t%q", got, want)
			}
		})
	}
}

// TestSSEReconnectAfterReturnedContextEnded: an interceptor that returns
// a context of its own, derived after next, ends the call when that
// context ends (OnClose, canceled), though the session, which reads with
// the context given to next, still runs; when its stream then drops, the
// session reconnects no more: no interceptor runs, no request is sent,
// and Receive returns canceled. Before, the reconnection ran the
// interceptor, opened a connection and Receive returned its tick, after
// the call had ended.
func TestSSEReconnectAfterReturnedContextEnded(t *testing.T) {
	release := make(chan struct{})
	var served atomic.Int64
	base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"seq\":%d}\n\n", n, n)
		w.(http.Flusher).Flush()
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	var attempts atomic.Int64
	var cancelReturned context.CancelFunc
	ic := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			a := attempts.Add(1)
			rctx, err := next(ctx, hs)
			if err != nil || a > 1 {
				return rctx, err
			}
			c, cancel := context.WithCancel(rctx)
			cancelReturned = cancel
			return c, nil
		}
	})
	closed := make(chan wsrpc.CloseInfo, 4)
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W",
		wsrpc.WithInterceptors(ic),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }),
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 5}))
	st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tickSeqs(t, st, 1)
	cancelReturned()
	select {
	case ci := <-closed:
		if wsrpc.CodeOf(ci.Err) != wsrpc.CodeCanceled {
			t.Fatalf("OnClose after the returned context ended: %+v, want canceled", ci)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose after the returned context ended")
	}
	close(release) // the server cuts the stream: the session would reconnect
	m, err := st.Receive()
	if wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
		t.Fatalf("Receive after the call ended = %v, %v; want canceled", m, err)
	}
	st.Close()
	if got := attempts.Load(); got != 1 {
		t.Errorf("the interceptor ran %d times, want 1", got)
	}
	if got := served.Load(); got != 1 {
		t.Errorf("the server was sent %d requests, want 1", got)
	}
	if n := len(closed); n != 0 {
		t.Errorf("%d more OnClose", n)
	}
}
