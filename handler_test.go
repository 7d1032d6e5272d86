package wsrpc_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/runtest"
)

// panickingServer panics in every method once the session has begun
// (after reading the request where there is one).
type panickingServer struct{ streamServer }

func (panickingServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	if _, err := s.Receive(); err != nil {
		return err
	}
	panic("echo bug")
}

func (panickingServer) Count(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
	panic("count bug")
}

func (panickingServer) Sum(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
	if _, err := s.Receive(); err != nil {
		return nil, err
	}
	panic("sum bug")
}

func (panickingServer) Watch(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "first"}}); err != nil {
		return err
	}
	panic("watch bug")
}

// waitPanics waits (bounded) until net/http's log holds n panics and
// every one of want.
func waitPanics(t *testing.T, log *runtest.Buffer, n int, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := log.String()
		missing := ""
		if got := strings.Count(s, "http: panic serving"); got < n {
			missing = fmt.Sprintf("%d panics (%d so far)", n, got)
		}
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = strconv.Quote(w)
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("net/http's log never showed %s; it holds:\n%s", missing, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPanicEndsSession guards the end of a session whose handler, stream
// interceptor or handshake interceptor (after next) panics. net/http
// recovers the panic but never closes a hijacked connection, and can
// only cut an SSE response, which clients take for a lost connection:
// without the handler's own recover a WebSocket client waited forever
// (no close frame, RFC 6455 §7.1.2; OnClose never ran, Tracker.Shutdown
// could not reach the socket) and an SSE client reconnected into the
// panic forever. Each call must end with internal, OnClose must run once
// per session, and the panic must go on to net/http's log, with the
// panicking frames in its stack.
func TestPanicEndsSession(t *testing.T) {
	panicky := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
		return func(ctx context.Context, conn wsrpc.StreamConn) error { panic("interceptor bug") }
	})
	afterNext := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, err := next(ctx, hs)
			if err == nil {
				panic("handshake bug")
			}
			return ctx, err
		}
	})
	// Before the upgrade: no session, the call is refused. Unanswered,
	// the client took the cut for a lost connection (unavailable) and
	// reconnected into the panic.
	beforeNext := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			panic("auth bug")
		}
	})
	for _, tc := range []struct {
		name     string
		svc      testingv1wsrpc.StreamServiceHandler
		opts     []wsrpc.Option
		logged   []string // in net/http's log once every call has ended
		sessions int64    // OnClose calls
	}{
		{"handler", panickingServer{}, nil,
			[]string{"echo bug", "count bug", "sum bug", "watch bug", "panickingServer.Echo", "panickingServer.Watch"}, 4},
		{"stream interceptor", streamServer{}, []wsrpc.Option{wsrpc.WithInterceptors(panicky)},
			[]string{"interceptor bug"}, 4},
		{"handshake interceptor after next", streamServer{}, []wsrpc.Option{wsrpc.WithInterceptors(afterNext)},
			[]string{"handshake bug"}, 0},
		{"handshake interceptor before next", streamServer{}, []wsrpc.Option{wsrpc.WithInterceptors(beforeNext)},
			[]string{"auth bug"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var closes atomic.Int64
			var errLog runtest.Buffer
			tracker := wsrpc.NewTracker()
			opts := append([]wsrpc.Option{wsrpc.WithTracker(tracker),
				wsrpc.WithOnClose(func(_ context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					if wsrpc.CodeOf(ci.Err) != wsrpc.CodeInternal {
						t.Errorf("OnClose of %s: %+v, want internal", info.Spec.Procedure, ci)
					}
					closes.Add(1)
				})}, tc.opts...)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(tc.svc, opts...))
			srv := httptest.NewUnstartedServer(mux)
			srv.Config.ErrorLog = log.New(&errLog, "", 0)
			srv.Start()
			t.Cleanup(srv.Close)
			client := testingv1wsrpc.NewStreamServiceClient(nil, srv.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			t.Run("bidi", func(t *testing.T) {
				st, err := client.Echo(ctx)
				if err != nil {
					wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
					return
				}
				defer st.Close()
				_ = st.Send(&testingv1.EchoRequest{Text: "x"})
				_, err = st.Receive()
				wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
			})
			t.Run("server-stream", func(t *testing.T) {
				st, err := client.Count(ctx, &testingv1.CountRequest{Count: 1})
				if err != nil {
					wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
					return
				}
				defer st.Close()
				_, err = st.Receive()
				wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
			})
			t.Run("client-stream", func(t *testing.T) {
				st, err := client.Sum(ctx)
				if err != nil {
					wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
					return
				}
				defer st.Close()
				_ = st.Send(&testingv1.SumRequest{N: 1})
				_, err = st.CloseAndReceive()
				wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
			})
			t.Run("sse", func(t *testing.T) {
				st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
				if err != nil {
					wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
					return
				}
				defer st.Close()
				for {
					if _, err = st.Receive(); err != nil {
						break
					}
				}
				wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
			})

			// net/http logs each panic after the session has ended (and
			// its OnClose has run): the re-panic reached it.
			waitPanics(t, &errLog, 4, tc.logged...)
			if n := closes.Load(); n != tc.sessions {
				t.Errorf("OnClose ran %d times for %d sessions", n, tc.sessions)
			}
			if n := tracker.Len(); n != 0 {
				t.Errorf("Tracker still holds %d sessions", n)
			}
		})
	}
}

// countStallServer sends count numbers, waits for its context to end,
// and returns its error once released: what the client sees must not
// depend on the handler noticing the end first.
type countStallServer struct {
	streamServer
	release <-chan struct{}
}

func (s countStallServer) Count(ctx context.Context, req *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	for i := int32(1); i <= req.GetCount(); i++ {
		if err := st.Send(&testingv1.CountResponse{N: i}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	<-s.release
	return ctx.Err()
}

// TestSessionDeadlineClosesWithCode guards the close code of a session
// whose context ends while the server is reading (a bidi handler's
// Receive, the server-stream peer watcher): a maximum session length that
// a handshake interceptor sets, as docs/codegen.md's "Errors" describes.
// The reads used that context, so the runtime dropped the TCP connection
// under them and the client saw 1006 (unavailable, which WithReconnect
// retries) instead of 4004 deadline_exceeded (RFC 6455 §7.4.2 application
// code); OnClose must report the same code.
func TestSessionDeadlineClosesWithCode(t *testing.T) {
	maxSession := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			context.AfterFunc(ctx, cancel)
			return next(ctx, hs)
		}
	})
	closes := make(chan wsrpc.CloseInfo, 2)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(countStallServer{release: release}, wsrpc.WithInterceptors(maxSession),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })))
	client := testingv1wsrpc.NewStreamServiceClient(nil, newServer(t, mux))
	ctx := testContext(t)
	serverSaw := func(t *testing.T) {
		t.Helper()
		select {
		case ci := <-closes:
			if ci.Code != wsrpc.CodeDeadlineExceeded.CloseCode() {
				t.Errorf("OnClose: %+v, want close code 4004", ci)
			}
		case <-ctx.Done():
			t.Fatal("OnClose never ran")
		}
	}

	t.Run("bidi", func(t *testing.T) {
		st, err := client.Echo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = st.Receive()
		if c := wsrpc.CodeOf(err); c != wsrpc.CodeDeadlineExceeded {
			t.Errorf("client got %v (code %v), want deadline_exceeded (4004)", err, c)
		}
		serverSaw(t)
	})
	t.Run("server-stream", func(t *testing.T) {
		st, err := client.Count(ctx, &testingv1.CountRequest{Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		_, err = st.Receive()
		free()
		if c := wsrpc.CodeOf(err); c != wsrpc.CodeDeadlineExceeded {
			t.Errorf("client got %v (code %v), want deadline_exceeded (4004)", err, c)
		}
		serverSaw(t)
	})
}

// TestNonGETRefused405 guards the refusal of a request with another method
// than GET: 405 Method Not Allowed with Allow: GET (RFC 9110 §15.5.6, which
// pairs the two; an SSE route answered 400), HEAD included; the SSE
// route's code is invalid_argument, in Wsrpc-Code. A WebSocket handshake
// must be a GET (RFC 6455 §4.1): a WebSocket route refuses another method
// before negotiating the subprotocol or running interceptors, which
// answered it 400 or 401 first.
func TestNonGETRefused405(t *testing.T) {
	base := serve(t, wsrpc.WithInterceptors(authInterceptor()))
	ctx := testContext(t)
	do := func(method, path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, m := range []string{http.MethodPost, http.MethodHead, http.MethodPut} {
		resp := do(m, testingv1wsrpc.StreamServiceWatchPath, map[string]string{"Authorization": "Bearer s3cret"})
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" || resp.Header.Get(wsrpc.CodeHeader) != "invalid_argument" {
			t.Errorf("SSE %s: %d, Allow %q, %s %q; want 405, GET, invalid_argument",
				m, resp.StatusCode, resp.Header.Get("Allow"), wsrpc.CodeHeader, resp.Header.Get(wsrpc.CodeHeader))
		}
	}
	upgrade := func(extra ...string) map[string]string {
		hdr := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
		for i := 0; i < len(extra); i += 2 {
			hdr[extra[i]] = extra[i+1]
		}
		return hdr
	}
	for name, hdr := range map[string]map[string]string{
		"no token":                upgrade("Sec-WebSocket-Protocol", "wsrpc.json"),
		"unsupported subprotocol": upgrade("Authorization", "Bearer s3cret", "Sec-WebSocket-Protocol", "wsrpc.nope"),
	} {
		resp := do(http.MethodPost, testingv1wsrpc.StreamServiceEchoPath, hdr)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
			t.Errorf("WebSocket POST, %s: %d, Allow %q; want 405, GET", name, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}
