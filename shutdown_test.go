package wsrpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// liveServer echoes on Echo and, on Watch, sends one tick and then waits
// for its context: the shape of a long-lived session.
type liveServer struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	returned atomic.Int64
	release  chan struct{} // if set, Echo ignores its context until closed
}

func (s *liveServer) Echo(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	defer s.returned.Add(1)
	if s.release != nil {
		<-s.release
		return nil
	}
	for req, err := range st.All() {
		if err != nil {
			return err
		}
		if err := st.Send(&testingv1.EchoResponse{Text: req.GetText(), Seq: req.GetSeq()}); err != nil {
			return err
		}
	}
	return nil
}

func (s *liveServer) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	defer s.returned.Add(1)
	if err := st.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Seq: 1, Room: req.GetRoom()}}}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// serveHTTP serves srv on a new 127.0.0.1 port until the test stops it
// (Shutdown, Close); it returns the base URL and where Serve's result
// arrives.
func serveHTTP(t *testing.T, srv *http.Server) (base string, served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), done
}

// TestShutdownLiveSessions shuts a server down under 1,000 live sessions
// (700 WebSocket, 300 SSE): every WebSocket client gets 1001, every SSE
// response ends cleanly (the chunked body's end, not a cut), every
// handler returns before Shutdown does, and no goroutine is left.
func TestShutdownLiveSessions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const nWS, nSSE = 700, 300

	tracker := wsrpc.NewTracker()
	svc := &liveServer{}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc, wsrpc.WithTracker(tracker)))
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)

	tr := &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	client := testingv1wsrpc.NewStreamServiceClient(hc, base)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	wsEnds := make(chan error, nWS)
	sseEnds := make(chan error, nSSE)
	var opened sync.WaitGroup
	openErrs := make(chan error, nWS+nSSE)
	sem := make(chan struct{}, 64) // bounded dialling concurrency
	// openDone returns the function a session calls once it is open (or
	// failed to open): it reports the error and frees its dialling slot.
	openDone := func() func(error) {
		var once sync.Once
		return func(err error) {
			once.Do(func() {
				if err != nil {
					openErrs <- err
				}
				opened.Done()
				<-sem
			})
		}
	}
	for i := range nWS {
		opened.Add(1)
		sem <- struct{}{}
		go func() {
			done := openDone()
			st, err := client.Echo(ctx)
			if err != nil {
				done(err)
				return
			}
			defer st.Close()
			if err := st.Send(&testingv1.EchoRequest{Text: "hi", Seq: int64(i)}); err != nil {
				done(err)
				return
			}
			if res, err := st.Receive(); err != nil || res.GetSeq() != int64(i) {
				done(fmt.Errorf("echo %d: %v %v", i, res, err))
				return
			}
			done(nil)
			_, err = st.Receive()
			wsEnds <- err
		}()
	}
	for i := range nSSE {
		opened.Add(1)
		sem <- struct{}{}
		go func() {
			done := openDone()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/rooms/watch?room=r%d", base, i), nil)
			resp, err := hc.Do(req)
			if err != nil {
				done(err)
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			// The first event's lines, up to its blank line.
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					done(fmt.Errorf("sse %d: %w", i, err))
					return
				}
				if line == "\n" {
					break
				}
			}
			done(nil)
			rest, err := io.ReadAll(br)
			if err == nil && strings.Contains(string(rest), wsrpc.SSEEventEnd) {
				err = fmt.Errorf("sse %d: shutdown sent %q, which stops clients from resuming", i, wsrpc.SSEEventEnd)
			}
			sseEnds <- err
		}()
	}
	opened.Wait()
	close(openErrs)
	for err := range openErrs {
		t.Fatalf("opening sessions: %v", err)
	}
	if n := tracker.Len(); n != nWS+nSSE {
		t.Fatalf("tracker has %d sessions, want %d", n, nWS+nSSE)
	}

	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := wsrpc.Shutdown(sctx, srv, tracker); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := svc.returned.Load(); n != nWS+nSSE {
		t.Errorf("%d handlers returned before Shutdown did, want %d", n, nWS+nSSE)
	}
	if n := tracker.Len(); n != 0 {
		t.Errorf("tracker still has %d sessions", n)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	for range nWS {
		err := <-wsEnds
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != wsrpc.ShutdownReason {
			t.Fatalf("WebSocket client ended with %v, want close 1001 %q", err, wsrpc.ShutdownReason)
		}
		if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
			t.Fatalf("code %v, want unavailable", wsrpc.CodeOf(err))
		}
	}
	for range nSSE {
		if err := <-sseEnds; err != nil {
			t.Fatalf("SSE response did not end cleanly: %v", err)
		}
	}
}

// TestShutdownDeadline: a handler that ignores both 1001 and its context
// holds Shutdown only until the deadline; then its connection is closed
// at once, Shutdown reports the deadline, and calls that arrive during
// Shutdown are refused with 503 (CodeUnavailable).
func TestShutdownDeadline(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tracker := wsrpc.NewTracker()
	svc := &liveServer{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc, wsrpc.WithTracker(tracker)))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	client := testingv1wsrpc.NewStreamServiceClient(ts.Client(), ts.URL)

	ctx := context.Background()
	st, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ended := make(chan error, 1)
	go func() { _, err := st.Receive(); ended <- err }()
	for tracker.Len() != 1 {
		time.Sleep(time.Millisecond)
	}

	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- tracker.Shutdown(sctx) }()

	// A call during Shutdown is refused before the upgrade.
	for {
		_, err := client.Echo(ctx)
		if err == nil {
			t.Fatal("a call during Shutdown was accepted")
		}
		if wsrpc.CodeOf(err) == wsrpc.CodeUnavailable {
			break
		}
		t.Fatalf("a call during Shutdown failed with %v, want unavailable", err)
	}

	var ce *websocket.CloseError
	if err := <-ended; !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("client ended with %v, want 1001", err)
	}
	if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	if n := svc.returned.Load(); n != 0 {
		t.Errorf("%d handlers returned, want the stuck one still running", n)
	}
	close(svc.release)
	// Shutdown may be called again: it waits for the released handler.
	if err := tracker.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if n := svc.returned.Load(); n != 1 {
		t.Errorf("%d handlers returned, want 1", n)
	}
}

// TestNewHTTPServerLimits: the recommended server's limits are those
// docs/security.md lists.
func TestNewHTTPServerLimits(t *testing.T) {
	srv := wsrpc.NewHTTPServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 10*time.Second || srv.MaxHeaderBytes != 16<<10 || srv.IdleTimeout != 2*time.Minute || srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("NewHTTPServer: ReadHeaderTimeout %v MaxHeaderBytes %d IdleTimeout %v ReadTimeout %v WriteTimeout %v",
			srv.ReadHeaderTimeout, srv.MaxHeaderBytes, srv.IdleTimeout, srv.ReadTimeout, srv.WriteTimeout)
	}
}

// TestShutdownUploadingClient: a client-streaming client in the middle of
// its upload answers Shutdown's 1001 at once — its call reads the
// connection while it sends — so Shutdown is not held for the close
// timeout (5 s by default; the deadline here is 3 s), and the client's
// Send reports the shutdown: 1001, unavailable.
func TestShutdownUploadingClient(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tracker := wsrpc.NewTracker()
	receiving := make(chan struct{})
	var once sync.Once
	h := wsrpc.NewClientStreamHandler("/t/Up", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		for _, err := range s.All() {
			once.Do(func() { close(receiving) })
			if err != nil {
				return nil, err
			}
		}
		return &testingv1.SumResponse{}, nil
	}, wsrpc.WithTracker(tracker))
	ts := httptest.NewServer(h)
	defer ts.Close()

	st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](ts.Client(), ts.URL, "/t/Up").Call(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sent := make(chan error, 1)
	go func() {
		for range 10000 { // 10 s at most
			if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
				sent <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		sent <- nil
	}()
	<-receiving

	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := tracker.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown = %v: the uploading client did not answer 1001", err)
	}
	err = <-sent
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Fatalf("Send during Shutdown = %v, want 1001 (unavailable)", err)
	}
}

// TestShutdownExpiredContext: Shutdown called with a context that is done
// already (the signal's own context passed by mistake, say) does not
// return leaving the sessions live: it still ends every WebSocket session
// (unavailable for its client) and SSE stream, even those whose handlers
// ignore it, refuses new calls and returns the context's error. A second
// Shutdown with time to spare then waits for the handlers still running
// and returns nil.
func TestShutdownExpiredContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tracker := wsrpc.NewTracker()
	// Echo ignores its context until released: the first Shutdown
	// certainly finds handlers running.
	svc := &liveServer{release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(svc.release) })
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc, wsrpc.WithTracker(tracker)))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer release() // also when the test fails early
	client := testingv1wsrpc.NewStreamServiceClient(ts.Client(), ts.URL)
	ctx := testContext(t)

	var wsEnds []chan error
	for range 2 {
		st, err := client.Echo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		end := make(chan error, 1)
		wsEnds = append(wsEnds, end)
		go func() { _, err := st.Receive(); end <- err }()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/rooms/watch?room=r", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for line := ""; line != "\n"; { // the first event, up to its blank line
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatalf("SSE stream before Shutdown: %v", err)
		}
	}
	sseEnd := make(chan error, 1)
	go func() { _, err := io.ReadAll(br); sseEnd <- err }()
	for deadline := time.Now().Add(handlerBound); tracker.Len() != 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tracker has %d sessions, want 3", tracker.Len())
		}
	}

	expired, cancel := context.WithCancel(ctx)
	cancel()
	if err := tracker.Shutdown(expired); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown(expired context) = %v, want context.Canceled", err)
	}
	for i, end := range wsEnds {
		if err := waitSeen(t, end, "a WebSocket session outlived Shutdown"); wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
			t.Errorf("WebSocket client %d ended with %v, want unavailable", i, err)
		}
	}
	if err := waitSeen(t, sseEnd, "an SSE stream outlived Shutdown"); err != nil {
		t.Errorf("SSE stream ended with %v, want its clean end", err)
	}
	if _, err := client.Echo(ctx); wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Errorf("call after Shutdown = %v, want unavailable", err)
	}

	release()
	sctx, scancel := context.WithTimeout(ctx, handlerBound)
	defer scancel()
	if err := tracker.Shutdown(sctx); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if n, l := svc.returned.Load(), tracker.Len(); n != 3 || l != 0 {
		t.Errorf("after the second Shutdown, %d of 3 handlers returned and %d sessions tracked, want 3 and 0", n, l)
	}
}

// TestShutdownNilTracker guards wsrpc.Shutdown for a server whose
// handlers track nothing (built without WithTracker), as its doc allows:
// with a nil *Tracker it stops srv alone, and when ctx ends first it
// closes the connections still open (an SSE response) and returns ctx's
// error. It panicked on the nil Tracker.
func TestShutdownNilTracker(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(&liveServer{}))
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)
	ctx := testContext(t)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/rooms/watch?room=r", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("SSE stream before Shutdown: %v", err)
	}
	sseEnd := make(chan error, 1)
	go func() { _, err := io.ReadAll(br); sseEnd <- err }()

	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				shut <- fmt.Errorf("panicked: %v", p)
			}
		}()
		shut <- wsrpc.Shutdown(sctx, srv, nil)
	}()
	if err := waitSeen(t, shut, "Shutdown never returned"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown(ctx, srv, nil) with an SSE response open = %v, want the deadline", err)
	}
	if err := waitSeen(t, served, "Serve never returned"); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	waitSeen(t, sseEnd, "the SSE response outlived Shutdown")
}
