package wsrpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
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

const closedReason = "closed by the handler"

// closingServer ends every call with its stream's Close(code,
// closedReason), then returns ret.
type closingServer struct {
	streamServer
	code wsrpc.Code
	ret  error
}

func (s closingServer) Echo(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	_ = st.Close(s.code, closedReason)
	return s.ret
}

func (s closingServer) Count(ctx context.Context, req *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	_ = st.Close(s.code, closedReason)
	return s.ret
}

func (s closingServer) Sum(ctx context.Context, st *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
	_ = st.Close(s.code, closedReason)
	return nil, s.ret
}

func (s closingServer) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	_ = st.Close(s.code, closedReason)
	return s.ret
}

// ended is one call's end as a stream interceptor or OnClose saw it.
type ended struct {
	proc string
	err  error
	ci   wsrpc.CloseInfo
}

// recordEnds returns handler options that report each call's end: what
// the stream interceptors' next returned on seen, what OnClose got on
// closed (each buffered for n).
func recordEnds(n int) (opts []wsrpc.Option, seen, closed chan ended) {
	seen, closed = make(chan ended, n), make(chan ended, n)
	record := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
		return func(ctx context.Context, conn wsrpc.StreamConn) error {
			err := next(ctx, conn)
			seen <- ended{proc: conn.Spec().Procedure, err: err}
			return err
		}
	})
	onClose := wsrpc.WithOnClose(func(_ context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
		closed <- ended{proc: info.Spec.Procedure, ci: ci}
	})
	return []wsrpc.Option{wsrpc.WithInterceptors(record), onClose}, seen, closed
}

// TestStreamInterceptorSeesClientStatus guards what a stream interceptor
// records for a handler that closed its stream itself: the code the
// client got, which OnClose reports too. A handler that called Close with
// aborted and returned nil read as an OK call to every stream interceptor
// (metrics, logs and traces said OK while the client saw aborted and
// OnClose 4010), and one that returned another error after the Close had
// the interceptors record that error, not the code on the wire. Both
// transports, every stream type; the SSE stream must still carry one end
// event only.
func TestStreamInterceptorSeesClientStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		code wsrpc.Code // the handler's Close
		ret  error      // what the handler returns after it
		sum  bool       // run the client-streaming method too
	}{
		{"nil after Close(aborted)", wsrpc.CodeAborted, nil, true},
		{"another error after Close(aborted)", wsrpc.CodeAborted, wsrpc.Errorf(wsrpc.CodeNotFound, "returned after the close"), true},
		// A normal closure is what the client got: the error the handler
		// returned after it went nowhere. (A client-streaming call that
		// closes normally without a response is not an OK call for its
		// client, so it is left out.)
		{"error after Close(0)", 0, wsrpc.Errorf(wsrpc.CodeNotFound, "returned after the close"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, seen, closed := recordEnds(8)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(closingServer{code: tc.code, ret: tc.ret}, opts...))
			base := newServer(t, mux)
			client := testingv1wsrpc.NewStreamServiceClient(nil, base)
			ctx := testContext(t)

			// check compares what the client got with the interceptor's
			// error and OnClose's CloseInfo for one call.
			check := func(t *testing.T, proc string, clientErr error) {
				t.Helper()
				got := waitSeen(t, seen, "the stream interceptor never returned")
				ci := waitSeen(t, closed, "OnClose never ran").ci
				if got.proc != proc {
					t.Fatalf("interceptor saw %s, want %s", got.proc, proc)
				}
				if tc.code == 0 {
					if !errors.Is(clientErr, io.EOF) {
						t.Errorf("client got %v, want io.EOF", clientErr)
					}
					if got.err != nil {
						t.Errorf("interceptor saw %v, want nil: the client got a normal closure", got.err)
					}
					if ci.Code != websocket.StatusNormalClosure || ci.Err != nil {
						t.Errorf("OnClose %+v, want 1000 without an error", ci)
					}
					return
				}
				wantCode(t, clientErr, tc.code, closedReason)
				var e *wsrpc.Error
				if !errors.As(got.err, &e) || e.Code() != tc.code || e.Message() != closedReason {
					t.Errorf("interceptor saw %v (code %v), want %v %q, what the client got", got.err, wsrpc.CodeOf(got.err), tc.code, closedReason)
				}
				if ci.Code != tc.code.CloseCode() || ci.Reason != closedReason || wsrpc.CodeOf(ci.Err) != tc.code {
					t.Errorf("OnClose %+v, want %d %q", ci, tc.code.CloseCode(), closedReason)
				}
			}

			t.Run("bidi", func(t *testing.T) {
				st, err := client.Echo(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				_, err = st.Receive()
				check(t, testingv1wsrpc.StreamServiceEchoProcedure, err)
			})
			t.Run("server-stream", func(t *testing.T) {
				st, err := client.Count(ctx, &testingv1.CountRequest{Count: 3})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				_, err = st.Receive()
				check(t, testingv1wsrpc.StreamServiceCountProcedure, err)
			})
			if tc.sum {
				t.Run("client-stream", func(t *testing.T) {
					st, err := client.Sum(ctx)
					if err != nil {
						t.Fatal(err)
					}
					_, err = st.CloseAndReceive()
					check(t, testingv1wsrpc.StreamServiceSumProcedure, err)
				})
			}
			t.Run("sse", func(t *testing.T) {
				st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				_, err = st.Receive()
				check(t, testingv1wsrpc.StreamServiceWatchProcedure, err)
			})
			t.Run("sse end event once", func(t *testing.T) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+testingv1wsrpc.StreamServiceWatchPath+"?room=r", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				waitSeen(t, seen, "the stream interceptor never returned")
				waitSeen(t, closed, "OnClose never ran")
				if n := strings.Count(string(body), "event: wsrpc."); n != 1 {
					t.Errorf("%d end events, want 1:\n%s", n, body)
				}
			})
		})
	}
}

// TestRefusalsWriteOneStatus guards the refusals' answers against a second
// WriteHeader, which net/http refuses and logs ("http: superfluous
// response.WriteHeader call"): an SSE request whose client left as the
// stream opened had NewStream send its 200, fail its first flush, and the
// handler then answer the failure with a refusal (500) on top. The
// refusals that skip or end the handshake chain are run in sequence on one
// http.Client as well.
func TestRefusalsWriteOneStatus(t *testing.T) {
	var errLog runtest.Buffer
	arrived := make(chan struct{}, 1)
	opened := make(chan error, 1)
	// gate holds an SSE call's open until its client has gone.
	gate := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if hs.Spec.Transport != wsrpc.TransportSSE || hs.Request.URL.Query().Get("room") != "gone" {
				return next(ctx, hs)
			}
			arrived <- struct{}{}
			select {
			case <-hs.Request.Context().Done():
			case <-time.After(handlerBound):
			}
			ctx, err := next(ctx, hs)
			opened <- err
			return ctx, err
		}
	})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, wsrpc.WithInterceptors(gate)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(&errLog, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)

	t.Run("sse client gone as the stream opens", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		defer cancel()
		go func() {
			select {
			case <-arrived:
			case <-time.After(handlerBound):
			}
			cancel()
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+testingv1wsrpc.StreamServiceWatchPath+"?room=gone", nil)
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("the request got %d, want it cancelled", resp.StatusCode)
		}
		err := waitSeen(t, opened, "the SSE open never returned")
		// What a Send would say once the client has gone.
		if wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
			t.Errorf("next returned %v, want canceled", err)
		}
	})

	t.Run("refusals in sequence", func(t *testing.T) {
		upgrade := func(kv ...string) map[string]string {
			h := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
			for i := 0; i < len(kv); i += 2 {
				h[kv[i]] = kv[i+1]
			}
			return h
		}
		echo, watch := testingv1wsrpc.StreamServiceEchoPath, testingv1wsrpc.StreamServiceWatchPath
		for _, r := range []struct {
			method, path string
			header       map[string]string
			body         string
			status       int
		}{
			{http.MethodGet, watch + "?%zz", nil, "", http.StatusBadRequest},
			{http.MethodPost, watch, nil, "x", http.StatusMethodNotAllowed},
			{http.MethodGet, echo, upgrade("Origin", "http://evil.example"), "", http.StatusForbidden},
			{http.MethodGet, echo, upgrade("Sec-WebSocket-Key", "short"), "", http.StatusBadRequest},
			{http.MethodGet, echo, upgrade("Sec-WebSocket-Version", "8"), "", http.StatusUpgradeRequired},
			{http.MethodGet, echo, upgrade("Sec-WebSocket-Protocol", "nope"), "", http.StatusBadRequest},
			{http.MethodGet, echo, nil, "", http.StatusUpgradeRequired},
			{http.MethodGet, "/wsrpc.testing.v1.StreamService/Nope", nil, "", http.StatusNotFound},
			{http.MethodGet, watch, upgrade(), "", http.StatusNotImplemented},
		} {
			var body io.Reader
			if r.body != "" {
				body = strings.NewReader(r.body)
			}
			req, _ := http.NewRequestWithContext(testContext(t), r.method, srv.URL+r.path, body)
			for k, v := range r.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != r.status {
				t.Errorf("%s %s: %d, want %d", r.method, r.path, resp.StatusCode, r.status)
			}
		}
	})

	srv.Close() // waits for the handlers, which log as they write
	if s := errLog.String(); strings.Contains(s, "superfluous") {
		t.Fatalf("a status was written twice:\n%s", s)
	}
}

// TestAcceptRefusalCodes guards the code a handshake interceptor gets
// from next for each refusal websocket.Accept makes itself, and a client
// reads from its status alone (no Wsrpc-Code comes with it): a deliberate
// code for each, where another Sec-WebSocket-Version's 426 read as
// unknown. It is invalid_argument, as the bad key's 400: the request is
// the client's mistake, and sent again it fails again whatever the
// server's state.
func TestAcceptRefusalCodes(t *testing.T) {
	seen := make(chan error, 1)
	observe := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, err := next(ctx, hs)
			seen <- err
			return ctx, err
		}
	})
	h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		return nil
	}, wsrpc.WithInterceptors(observe), wsrpc.WithCompression(nil))
	addr := strings.TrimPrefix(newServer(t, h), "http://")
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	for _, tc := range []struct {
		name    string
		request string // sent as is: HTTP/1.0 and a body are not http.Client's to send
		status  int
		code    wsrpc.Code
	}{
		{"cross-origin", "Origin: http://evil.example\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n", http.StatusForbidden, wsrpc.CodePermissionDenied},
		{"bad key", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n", http.StatusBadRequest, wsrpc.CodeInvalidArgument},
		{"other version", "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " + key + "\r\n", http.StatusUpgradeRequired, wsrpc.CodeInvalidArgument},
		{"with a body", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nContent-Length: 1\r\n\r\nx", http.StatusBadRequest, wsrpc.CodeInvalidArgument},
		{"malformed extensions", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Extensions: permessage-deflate; =\r\n", http.StatusBadRequest, wsrpc.CodeInvalidArgument},
		{"HTTP/1.0", "HTTP/1.0", http.StatusBadRequest, wsrpc.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proto, hdr := "HTTP/1.1", tc.request
			if tc.request == "HTTP/1.0" {
				proto, hdr = "HTTP/1.0", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+"\r\n"
			}
			raw := fmt.Sprintf("GET / %s\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n%s", proto, addr, hdr)
			if !strings.Contains(hdr, "\r\n\r\n") {
				raw += "\r\n"
			}
			c, err := net.DialTimeout("tcp", addr, handlerBound)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(handlerBound))
			if _, err := io.WriteString(c, raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get(wsrpc.CodeHeader) != "" {
				t.Fatalf("response %d with %s %q, want the runtime's %d", resp.StatusCode, wsrpc.CodeHeader, resp.Header.Get(wsrpc.CodeHeader), tc.status)
			}
			err = waitSeen(t, seen, "the interceptor never ran")
			if got := wsrpc.CodeOf(err); got != tc.code {
				t.Errorf("next returned %v (%v), want %v", err, got, tc.code)
			}
			// The client reads the same code from the status alone.
			if got := wsrpc.CodeFromHTTPStatus(resp.StatusCode); got != tc.code {
				t.Errorf("CodeFromHTTPStatus(%d) = %v, want %v", resp.StatusCode, got, tc.code)
			}
		})
	}
}

const racingReason = "closed from a goroutine the handler left"

// racingCloseServer's Watch closes its stream with aborted from a
// goroutine of its own and returns nil. With gate, it returns once that
// Close is writing its end event (gatedWriter); without, at once.
type racingCloseServer struct {
	streamServer
	gate   bool
	closed chan error // each Close's return
}

type writingKey struct{}

func (s racingCloseServer) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	go func() { s.closed <- st.Close(wsrpc.CodeAborted, racingReason) }()
	if s.gate {
		select {
		case <-ctx.Value(writingKey{}).(chan struct{}):
		case <-time.After(handlerBound):
		}
	}
	return nil
}

// gatedWriter holds the write of the end event that carries racingReason
// until ServeHTTP has returned (returned), or for quiet if it does not,
// and notes a write that came after ServeHTTP returned (late) instead of
// making it: net/http has reused the response's bufio.Writer by then.
type gatedWriter struct {
	http.ResponseWriter
	writing  chan struct{} // closed as the held write starts
	returned chan struct{} // closed once ServeHTTP has returned
	late     *atomic.Bool
}

func (w *gatedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *gatedWriter) Write(b []byte) (int, error) {
	if !strings.Contains(string(b), racingReason) {
		return w.ResponseWriter.Write(b)
	}
	close(w.writing)
	select {
	case <-w.returned:
		w.late.Store(true)
		return 0, errors.New("written after ServeHTTP returned")
	case <-time.After(100 * time.Millisecond):
	}
	return w.ResponseWriter.Write(b)
}

// TestSSEGoroutineCloseEndsBeforeReturn guards the SSE response against a
// write after ServeHTTP returned: a handler that left a goroutine running
// Close and returned had the session end at once (the stream was ended
// already, by that Close), and ServeHTTP return while the Close was
// still writing its event, into a bufio.Writer net/http had put back in
// its pool for another response (a data race, and an event that could
// land in another client's stream). Now the session's end waits for the
// Close's event: the client gets it, once, and OnClose reports it. Run
// unsynchronised too, where the handler's end or the Close may come
// first: the client still gets one end event, the one OnClose reports.
func TestSSEGoroutineCloseEndsBeforeReturn(t *testing.T) {
	get := func(t *testing.T, base string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, base+testingv1wsrpc.StreamServiceWatchPath+"?room=r", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	setup := func(t *testing.T, gate bool, h func(http.Handler) http.Handler) (string, racingCloseServer, chan ended, chan ended) {
		srv := racingCloseServer{gate: gate, closed: make(chan error, 64)}
		opts, seen, closed := recordEnds(64)
		mux := http.NewServeMux()
		mux.Handle(testingv1wsrpc.NewStreamServiceHandler(srv, opts...))
		return newServer(t, h(mux)), srv, seen, closed
	}

	t.Run("close writing as the handler returns", func(t *testing.T) {
		var late atomic.Bool
		base, srv, seen, closed := setup(t, true, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gw := &gatedWriter{ResponseWriter: w, writing: make(chan struct{}), returned: make(chan struct{}), late: &late}
				next.ServeHTTP(gw, r.WithContext(context.WithValue(r.Context(), writingKey{}, gw.writing)))
				close(gw.returned)
			})
		})
		body := get(t, base)
		if err := waitSeen(t, srv.closed, "the handler's Close never returned"); err != nil {
			t.Errorf("Close returned %v", err)
		}
		if late.Load() {
			t.Fatal("the Close's end event was written after ServeHTTP returned")
		}
		if n := strings.Count(body, "event: wsrpc."); n != 1 || !strings.Contains(body, racingReason) {
			t.Errorf("body %q, want the Close's end event alone", body)
		}
		// The Close had ended the stream when the handler returned.
		if got := waitSeen(t, seen, "the stream interceptor never returned").err; wsrpc.CodeOf(got) != wsrpc.CodeAborted {
			t.Errorf("interceptor saw %v, want aborted", got)
		}
		if ci := waitSeen(t, closed, "OnClose never ran").ci; ci.Code != wsrpc.CodeAborted.CloseCode() || ci.Reason != racingReason {
			t.Errorf("OnClose %+v, want %d %q", ci, wsrpc.CodeAborted.CloseCode(), racingReason)
		}
	})

	t.Run("unsynchronised", func(t *testing.T) {
		base, srv, _, closed := setup(t, false, func(h http.Handler) http.Handler { return h })
		for range 30 {
			body := get(t, base)
			waitSeen(t, srv.closed, "the handler's Close never returned")
			ci := waitSeen(t, closed, "OnClose never ran").ci
			if n := strings.Count(body, "event: wsrpc."); n != 1 {
				t.Fatalf("%d end events, want 1:\n%s", n, body)
			}
			// The end event the client got is the one OnClose reports.
			if aborted := strings.Contains(body, racingReason); aborted != (ci.Code == wsrpc.CodeAborted.CloseCode()) {
				t.Fatalf("OnClose %+v for the body\n%s", ci, body)
			}
		}
	})
}

// leavingServer's Count and Watch wait for the client to leave, then, with
// close, call their stream's Close(aborted), and return ctx.Err().
type leavingServer struct {
	streamServer
	close   bool
	started chan struct{}
	closed  chan error // each Close's return
}

func (s leavingServer) leave(ctx context.Context, closeFn func(wsrpc.Code, string) error) error {
	s.started <- struct{}{}
	select {
	case <-ctx.Done():
	case <-time.After(handlerBound):
		return errors.New("the client never left")
	}
	if s.close {
		s.closed <- closeFn(wsrpc.CodeAborted, "after the client left")
	}
	return ctx.Err()
}

func (s leavingServer) Count(ctx context.Context, req *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	return s.leave(ctx, st.Close)
}

func (s leavingServer) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	return s.leave(ctx, st.Close)
}

// TestCloseAfterClientLeftChangesNothing guards the Close docs' "a Close
// after the stream ended otherwise (the client closed first) changes
// nothing" on both transports: a handler that saw its client leave, then
// called Close(aborted) and returned ctx.Err(), had an SSE stream report
// aborted to the interceptors and 4010 to OnClose, though no event
// reached anyone; the WebSocket session reported canceled and the
// client's close. Each call must end as the same handler's without the
// Close: the client's leaving to the interceptors and OnClose (the
// client's 1000, a clean end, on WebSocket; 4001 canceled on SSE).
func TestCloseAfterClientLeftChangesNothing(t *testing.T) {
	for _, withClose := range []bool{false, true} {
		for _, tc := range []struct {
			transport string
			code      websocket.StatusCode // OnClose's
			errCode   wsrpc.Code           // OnClose's Err and the interceptors' (0: nil)
		}{
			{"websocket", websocket.StatusNormalClosure, 0},
			{"sse", wsrpc.CodeCanceled.CloseCode(), wsrpc.CodeCanceled},
		} {
			t.Run(fmt.Sprintf("%s close=%v", tc.transport, withClose), func(t *testing.T) {
				srv := leavingServer{close: withClose, started: make(chan struct{}, 1), closed: make(chan error, 1)}
				opts, seen, closed := recordEnds(1)
				mux := http.NewServeMux()
				mux.Handle(testingv1wsrpc.NewStreamServiceHandler(srv, opts...))
				client := testingv1wsrpc.NewStreamServiceClient(nil, newServer(t, mux))
				ctx := testContext(t)
				var leave func() error
				if tc.transport == "sse" {
					st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
					if err != nil {
						t.Fatal(err)
					}
					leave = st.Close
				} else {
					st, err := client.Count(ctx, &testingv1.CountRequest{Count: 1})
					if err != nil {
						t.Fatal(err)
					}
					leave = st.Close
				}
				waitSeen(t, srv.started, "the handler never ran")
				_ = leave()
				if withClose {
					if err := waitSeen(t, srv.closed, "the handler never closed"); err != nil {
						t.Errorf("Close after the client left returned %v, want nil", err)
					}
				}
				if got := waitSeen(t, seen, "the stream interceptor never returned").err; wsrpc.CodeOf(got) != tc.errCode {
					t.Errorf("interceptor saw %v (%v), want %v", got, wsrpc.CodeOf(got), tc.errCode)
				}
				ci := waitSeen(t, closed, "OnClose never ran").ci
				if ci.Code != tc.code || (tc.errCode == 0) != (ci.Err == nil) || (ci.Err != nil && wsrpc.CodeOf(ci.Err) != tc.errCode) {
					t.Errorf("OnClose %+v, want %d with code %v, as without the Close", ci, tc.code, tc.errCode)
				}
			})
		}
	}
}
