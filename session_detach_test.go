package wsrpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// With WithDetachedSessions typed WebSocket sessions run on a goroutine
// of their own once the handshake has succeeded, and ServeHTTP returns
// (BenchmarkIdleSession): these tests guard what the session keeps of
// the request once net/http is done with it, and what changes, and does
// not, from the default, where the session runs within ServeHTTP.

type (
	middlewareKey  struct{}
	interceptorKey struct{}
)

// sendTimeout is a client handshake interceptor that sends d as the
// client's deadline (Wsrpc-Timeout-Ms) with every handshake.
func sendTimeout(d time.Duration) wsrpc.Interceptor {
	return wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hs.Request.Header.Set(wsrpc.TimeoutHeader, fmt.Sprint(d.Milliseconds()))
			return next(ctx, hs)
		}
	})
}

// detachOpts returns opts, with WithDetachedSessions if detach.
func detachOpts(detach bool, opts ...wsrpc.Option) []wsrpc.Option {
	if detach {
		return append(opts, wsrpc.WithDetachedSessions())
	}
	return opts
}

// valuesServer answers each Echo message with the values its context
// carries from the request (a middleware's) and from a handshake
// interceptor, until the session ends.
type valuesServer struct{ streamServer }

func (valuesServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	for req, err := range s.All() {
		if err != nil {
			return err
		}
		text := fmt.Sprintf("%v/%v/%s", ctx.Value(middlewareKey{}), ctx.Value(interceptorKey{}), req.GetText())
		if err := s.Send(&testingv1.EchoResponse{Text: text}); err != nil {
			return err
		}
	}
	return nil
}

// TestSessionOutlivesServeHTTP: with WithDetachedSessions ServeHTTP
// returns once the upgrade is done, and net/http cancels r.Context()
// then, yet the session goes on with the request context's values and a
// handshake interceptor's, and the client's deadline (Wsrpc-Timeout-Ms)
// still ends it, with 4004 deadline_exceeded, as OnClose reports. By
// default ServeHTTP returns only when the session has ended: the wait
// for its return outlasts the session, whose Receive then fails.
func TestSessionOutlivesServeHTTP(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	derive := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			return next(context.WithValue(ctx, interceptorKey{}, "interceptor"), hs)
		}
	})
	closes := make(chan wsrpc.CloseInfo, 1)
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(valuesServer{},
		wsrpc.WithDetachedSessions(), wsrpc.WithInterceptors(derive),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })))
	requests := make(chan context.Context, 1)
	returned := make(chan struct{})
	base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), middlewareKey{}, "middleware"))
		requests <- r.Context()
		mux.ServeHTTP(w, r)
		close(returned)
	}))
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithInterceptors(sendTimeout(timeout)))
	ctx := testContext(t)
	start := time.Now()
	st, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rctx := <-requests
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP had not returned 10 s after the upgrade")
	}
	select {
	case <-rctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("net/http never cancelled the request's context")
	}
	for _, text := range []string{"a", "b"} {
		if err := st.Send(&testingv1.EchoRequest{Text: text}); err != nil {
			t.Fatalf("Send after ServeHTTP returned: %v", err)
		}
		res, err := st.Receive()
		if err != nil {
			t.Fatalf("Receive after ServeHTTP returned: %v", err)
		}
		if want := "middleware/interceptor/" + text; res.GetText() != want {
			t.Errorf("the handler answered %q, want %q", res.GetText(), want)
		}
	}
	_, err = st.Receive()
	if c := wsrpc.CodeOf(err); c != wsrpc.CodeDeadlineExceeded {
		t.Errorf("the session ended with %v (code %v), want deadline_exceeded", err, c)
	}
	if d := time.Since(start); d < timeout-100*time.Millisecond {
		t.Errorf("the session ended after %v, before the client's deadline (%v)", d, timeout)
	}
	select {
	case ci := <-closes:
		if ci.Code != 4004 || wsrpc.CodeOf(ci.Err) != wsrpc.CodeDeadlineExceeded {
			t.Errorf("OnClose: %+v, want 4004 deadline_exceeded", ci)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose never ran")
	}
}

// TestHandshakeSeesClientGone: until the upgrade, the context a handshake
// interceptor is given still ends when the request's does (the client
// left while an interceptor was checking its credentials), in either
// mode, though a detached session's context no longer descends from
// r.Context().
func TestHandshakeSeesClientGone(t *testing.T) {
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached %v", detach), func(t *testing.T) { testHandshakeSeesClientGone(t, detach) })
	}
}

func testHandshakeSeesClientGone(t *testing.T, detach bool) {
	arrived := make(chan struct{})
	ended := make(chan error, 1)
	wait := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			close(arrived)
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
			case <-time.After(10 * time.Second):
				ended <- errors.New("the interceptor's context never ended")
			}
			return ctx, ctx.Err()
		}
	})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, detachOpts(detach, wsrpc.WithInterceptors(wait))...))
	base := newServer(t, mux)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, handshakeHead+"\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the handshake never reached the interceptor")
	}
	conn.Close()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the interceptor's context: %v, want context.Canceled", err)
	}
}

// abortingServer's Echo panics with http.ErrAbortHandler, which net/http
// does not log; Count answers, for the server to show it still serves.
type abortingServer struct{ panickingServer }

func (abortingServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	if _, err := s.Receive(); err != nil {
		return err
	}
	panic(http.ErrAbortHandler)
}

func (abortingServer) Count(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
	return streamServer{}.Count(ctx, req, s)
}

const sessionPanicEnv = "WSRPC_SESSION_PANIC_CHILD"

// TestSessionPanicLogged: a panic in a detached WebSocket session
// (WithDetachedSessions), which runs on a goroutine of its own and no
// longer under net/http's recover, ends the
// session with internal (4013) and is logged as net/http logs a
// handler's panic — "http: panic serving <client>: <value>" and the
// panicking goroutine's stack, to the server's ErrorLog, else through the
// log package, never http.ErrAbortHandler — and the process goes on
// serving. The calls run in a child process (this test binary again,
// TestSessionPanicChild): a panic that escaped would end it, not this
// test binary.
func TestSessionPanicLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSessionPanicChild$", "-test.v", "-test.count", "1")
	cmd.Env = append(os.Environ(), sessionPanicEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestSessionPanicChild")) {
		t.Fatalf("the child process: %v\n%s", err, out)
	}
}

// TestSessionPanicChild is TestSessionPanicLogged's child process.
// Skipped unless started by it.
func TestSessionPanicChild(t *testing.T) {
	if os.Getenv(sessionPanicEnv) == "" {
		t.Skip("the child process of TestSessionPanicLogged")
	}
	shape := regexp.MustCompile(`(?m)^http: panic serving 127\.0\.0\.1:\d+: echo bug\ngoroutine \d+ \[running\]:\n`)
	for _, errorLog := range []bool{true, false} {
		t.Run(fmt.Sprintf("ErrorLog %v", errorLog), func(t *testing.T) {
			var logged runtest.Buffer
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(panickingServer{}, wsrpc.WithDetachedSessions()))
			_, aborting := testingv1wsrpc.NewStreamServiceHandler(abortingServer{}, wsrpc.WithDetachedSessions())
			mux.Handle("/abort/", http.StripPrefix("/abort", aborting))
			srv := httptest.NewUnstartedServer(mux)
			if errorLog {
				srv.Config.ErrorLog = log.New(&logged, "", 0)
			} else {
				// This process runs this test alone: nothing else logs.
				log.SetOutput(&logged)
				defer log.SetOutput(os.Stderr)
				flags := log.Flags()
				log.SetFlags(0)
				defer log.SetFlags(flags)
			}
			srv.Start()
			defer srv.Close()
			ctx := testContext(t)
			echo := func(base string) {
				t.Helper()
				st, err := testingv1wsrpc.NewStreamServiceClient(nil, base).Echo(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				_ = st.Send(&testingv1.EchoRequest{Text: "x"})
				_, err = st.Receive()
				wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
			}
			echo(srv.URL + "/abort")
			echo(srv.URL)
			s := waitPanics(t, &logged, 1, "panickingServer.Echo")
			if !shape.MatchString(s) {
				t.Errorf("the log does not read as net/http's:\n%s", s)
			}
			if n := strings.Count(s, "panic serving"); n != 1 {
				t.Errorf("%d panics logged, want 1 (not http.ErrAbortHandler's):\n%s", n, s)
			}
			// The process still serves.
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, srv.URL+"/abort").Count(ctx, &testingv1.CountRequest{Count: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for {
				if _, err := st.Receive(); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Errorf("Count after the panics: %v", err)
					}
					break
				}
			}
		})
	}
}

// TestBaseContextEndsSession: the server's base context
// (http.Server.BaseContext), cancelled once a session has begun, ends
// the session by default, as r.Context() does, with its cause's code
// (unavailable, 4014), as documented; a detached session
// (WithDetachedSessions) follows r.Context() only until the upgrade and
// goes on serving, and still ends on the client's deadline (4004) or
// when the client is done (1000).
func TestBaseContextEndsSession(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	for _, tc := range []struct {
		name   string
		detach bool
		end    string // how a detached session ends: "deadline" or "close"
	}{
		{"default", false, ""},
		{"detached deadline", true, "deadline"},
		{"detached close", true, "close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseCtx, stop := context.WithCancelCause(context.Background())
			defer stop(nil)
			closes := make(chan wsrpc.CloseInfo, 1)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, detachOpts(tc.detach,
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))...))
			srv := httptest.NewUnstartedServer(mux)
			srv.Config.BaseContext = func(net.Listener) context.Context { return baseCtx }
			srv.Start()
			defer srv.Close()
			var copts []wsrpc.Option
			if tc.end == "deadline" {
				copts = append(copts, wsrpc.WithInterceptors(sendTimeout(timeout)))
			}
			ctx := testContext(t)
			start := time.Now()
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, srv.URL, copts...).Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			echo := func(text string) error {
				if err := st.Send(&testingv1.EchoRequest{Text: text}); err != nil {
					return err
				}
				res, err := st.Receive()
				if err == nil && res.GetText() != text {
					t.Errorf("the handler answered %q, want %q", res.GetText(), text)
				}
				return err
			}
			if err := echo("before"); err != nil {
				t.Fatal(err)
			}
			stop(wsrpc.Errorf(wsrpc.CodeUnavailable, "the server is going away"))
			wantClose := func(code websocket.StatusCode, c wsrpc.Code) {
				t.Helper()
				select {
				case ci := <-closes:
					if ci.Code != code || wsrpc.CodeOf(ci.Err) != c {
						t.Errorf("OnClose: %+v, want %d %v", ci, code, c)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("OnClose never ran")
				}
			}
			if !tc.detach {
				_, err := st.Receive()
				wantCode(t, err, wsrpc.CodeUnavailable, "the server is going away")
				wantClose(4014, wsrpc.CodeUnavailable)
				return
			}
			// Time enough for the cancellation to have reached the
			// session, had it followed the base context.
			time.Sleep(300 * time.Millisecond)
			if err := echo("after"); err != nil {
				t.Fatalf("the detached session after the base context ended: %v", err)
			}
			switch tc.end {
			case "deadline":
				_, err := st.Receive()
				wantCode(t, err, wsrpc.CodeDeadlineExceeded, "")
				if d := time.Since(start); d < timeout-100*time.Millisecond {
					t.Errorf("the session ended after %v, before the client's deadline (%v)", d, timeout)
				}
				wantClose(4004, wsrpc.CodeDeadlineExceeded)
			case "close":
				if err := st.CloseSend(); err != nil {
					t.Fatal(err)
				}
				if _, err := st.Receive(); !errors.Is(err, io.EOF) {
					t.Errorf("Receive after CloseSend: %v, want io.EOF", err)
				}
				wantClose(1000, 0) // no error
			}
		})
	}
}

// TestSessionPanicReachesMiddleware: by default a WebSocket session's
// panic, once it has ended the session with internal (4013) and OnClose
// has run, goes on out of ServeHTTP, to a recovering middleware around
// the Handler as to net/http, and the Handler logs nothing; a detached
// session's (WithDetachedSessions) is recovered and logged by the
// Handler, to the server's ErrorLog, and no middleware sees it.
func TestSessionPanicReachesMiddleware(t *testing.T) {
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached %v", detach), func(t *testing.T) {
			var logged runtest.Buffer
			closes := make(chan wsrpc.CloseInfo, 1)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(panickingServer{}, detachOpts(detach,
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))...))
			type recovered struct {
				p      any
				closed bool // OnClose had run
			}
			recoveries := make(chan recovered, 1)
			returned := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(returned)
				defer func() {
					if p := recover(); p != nil {
						recoveries <- recovered{p, len(closes) == 1}
					}
				}()
				mux.ServeHTTP(w, r)
			}))
			srv.Config.ErrorLog = log.New(&logged, "", 0)
			srv.Start()
			defer srv.Close()
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, srv.URL).Echo(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.Send(&testingv1.EchoRequest{Text: "x"})
			_, err = st.Receive()
			wantCode(t, err, wsrpc.CodeInternal, "handler panicked")
			select {
			case <-returned:
			case <-time.After(10 * time.Second):
				t.Fatal("the middleware never returned")
			}
			if !detach {
				select {
				case rec := <-recoveries:
					if rec.p != "echo bug" || !rec.closed {
						t.Errorf("the middleware recovered %v (OnClose had run: %v), want \"echo bug\" after OnClose", rec.p, rec.closed)
					}
				default:
					t.Error("the panic never reached the middleware")
				}
				if s := logged.String(); s != "" {
					t.Errorf("the panic was logged, not left to the middleware:\n%s", s)
				}
			} else {
				waitPanics(t, &logged, 1, "echo bug", "panickingServer.Echo")
				select {
				case rec := <-recoveries:
					t.Errorf("the middleware recovered %v from a detached session", rec.p)
				default:
				}
			}
			select {
			case ci := <-closes:
				if ci.Code != 4013 {
					t.Errorf("OnClose: %+v, want 4013", ci)
				}
			default:
				t.Error("OnClose never ran")
			}
		})
	}
}

// exitingServer's Echo ends its goroutine with runtime.Goexit, as a
// t.FailNow in a test's handler does, after the first request.
type exitingServer struct{ streamServer }

func (exitingServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	if _, err := s.Receive(); err != nil {
		return err
	}
	runtime.Goexit()
	return nil
}

// TestSessionGoexit: a handler that ends its goroutine with
// runtime.Goexit instead of returning, which no recover sees, ends the
// session as a panic does, in either mode: internal (4013) to the
// client, OnClose run once with it, the session gone from the Tracker.
// Before, OnClose never ran for it (a gauge of open sessions kept it for
// ever) and the client was told canceled (4001), by the request's
// context ending as the goroutine unwound.
func TestSessionGoexit(t *testing.T) {
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached %v", detach), func(t *testing.T) {
			tr := wsrpc.NewTracker()
			closes := make(chan wsrpc.CloseInfo, 2)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(exitingServer{}, detachOpts(detach, wsrpc.WithTracker(tr),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))...))
			base := newServer(t, mux)
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, base).Echo(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.Send(&testingv1.EchoRequest{Text: "x"})
			_, err = st.Receive()
			if c := wsrpc.CodeOf(err); c != wsrpc.CodeInternal {
				t.Errorf("the client got %v (code %v), want internal", err, c)
			}
			select {
			case ci := <-closes:
				if ci.Code != 4013 || wsrpc.CodeOf(ci.Err) != wsrpc.CodeInternal {
					t.Errorf("OnClose: %+v, want 4013 internal", ci)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("OnClose never ran")
			}
			shutdownNoMoreCloses(t, tr, closes)
		})
	}
}

// TestHandshakeGoexit: a handshake interceptor that ends its goroutine
// with runtime.Goexit after next, once the connection is upgraded, gets
// the connection closed with internal (4013), as a panic there does, in
// either mode. Before, no one closed the hijacked connection: the client
// waited until its own deadline.
func TestHandshakeGoexit(t *testing.T) {
	exit := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, err := next(ctx, hs)
			runtime.Goexit()
			return ctx, err
		}
	})
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached %v", detach), func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, detachOpts(detach, wsrpc.WithInterceptors(exit))...))
			base := newServer(t, mux)
			// Short, so that the test fails soon without the close.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, base).Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.Send(&testingv1.EchoRequest{Text: "x"})
			_, err = st.Receive()
			wantCode(t, err, wsrpc.CodeInternal, "handler exited without returning")
		})
	}
}

// Watch sends one event, then ends its goroutine with runtime.Goexit.
func (exitingServer) Watch(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "first"}}); err != nil {
		return err
	}
	runtime.Goexit()
	return nil
}

// TestSSEGoexit: an SSE call whose handler, stream interceptor, OnConnect
// hook or handshake interceptor (after next) ends its goroutine with
// runtime.Goexit ends as a panic there does: a wsrpc.error event with
// internal, which stops the client, OnClose run once (for a session that
// had begun), the stream gone from the Tracker. Before, the response was
// cut without an event, so the client reconnected into the same handler
// until its deadline, and OnClose never ran.
func TestSSEGoexit(t *testing.T) {
	exitStream := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
		return func(ctx context.Context, conn wsrpc.StreamConn) error {
			runtime.Goexit()
			return nil
		}
	})
	exitHandshake := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, err := next(ctx, hs)
			runtime.Goexit()
			return ctx, err
		}
	})
	exitConnect := wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) { runtime.Goexit() })
	for _, tc := range []struct {
		name     string
		svc      testingv1wsrpc.StreamServiceHandler
		opts     []wsrpc.Option
		sessions int // OnClose calls
	}{
		{"handler", exitingServer{}, nil, 1},
		{"stream interceptor", streamServer{}, []wsrpc.Option{wsrpc.WithInterceptors(exitStream)}, 1},
		{"OnConnect", streamServer{}, []wsrpc.Option{exitConnect}, 1},
		{"handshake interceptor after next", streamServer{}, []wsrpc.Option{wsrpc.WithInterceptors(exitHandshake)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := wsrpc.NewTracker()
			closes := make(chan wsrpc.CloseInfo, 16)
			var calls atomic.Int32
			count := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					calls.Add(1)
					return next(ctx, hs)
				}
			})
			opts := append([]wsrpc.Option{wsrpc.WithTracker(tr), wsrpc.WithInterceptors(count),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })}, tc.opts...)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(tc.svc, opts...))
			base := newServer(t, mux)
			// Short, so that the test fails soon without the event: the
			// client reconnects after a cut.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, base).Watch(ctx, &testingv1.WatchRequest{Room: "r"})
			if err == nil {
				defer st.Close()
				for err == nil {
					_, err = st.Receive()
				}
			}
			wantCode(t, err, wsrpc.CodeInternal, "handler exited without returning")
			if n := calls.Load(); n != 1 {
				t.Errorf("the call ran %d times, want once", n)
			}
			for i := 0; i < tc.sessions; i++ {
				select {
				case ci := <-closes:
					if wsrpc.CodeOf(ci.Err) != wsrpc.CodeInternal {
						t.Errorf("OnClose: %+v, want internal", ci)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("OnClose never ran")
				}
			}
			shutdownNoMoreCloses(t, tr, closes)
		})
	}
}

// shutdownNoMoreCloses shuts tr down and checks that no further OnClose
// came for the sessions whose closes the test has taken from closes:
// each ran OnClose once, and left the Tracker.
func shutdownNoMoreCloses(t *testing.T, tr *wsrpc.Tracker, closes chan wsrpc.CloseInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(closes); n != 0 {
		t.Errorf("OnClose ran %d more times", n)
	}
}
