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
	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
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
			// The first event's lines, up to its blank line. Comment
			// blocks before it (the stream's ": open", written before the
			// session is tracked) do not count: the first event comes
			// from the handler, which runs tracked.
			for event := false; ; {
				line, err := br.ReadString('\n')
				if err != nil {
					done(fmt.Errorf("sse %d: %w", i, err))
					return
				}
				if line == "\n" && event {
					break
				}
				event = event || line != "\n" && !strings.HasPrefix(line, ":")
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

// followServer serves Watch (SSE) and Count (WebSocket) by following a hub
// topic with Topic.Follow, and returns what Follow returns as it is: the
// hub's ErrClosed, which a client would take for final (unknown), once
// the hub has closed. stalled counts the events sent to watchers of room
// "stall".
type followServer struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	topic     *hub.Topic[*testingv1.WatchResponse]
	following chan struct{} // one value per follower, once it follows
	stalled   atomic.Int64
}

func (f *followServer) follow(ctx context.Context, send func(sse.Event) error) error {
	ring := f.topic.Replay().(*sse.Ring)
	start := func() (string, []sse.Event, error) {
		f.following <- struct{}{}
		return ring.Last(), nil, nil
	}
	return f.topic.Follow(ctx, start, ring.Since, send)
}

func (f *followServer) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	return f.follow(ctx, func(ev sse.Event) error {
		if err := st.SendEvent(ev); err != nil {
			return err
		}
		if req.GetRoom() == "stall" {
			f.stalled.Add(1)
		}
		return nil
	})
}

func (f *followServer) Count(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	return f.follow(ctx, func(sse.Event) error { return st.Send(&testingv1.CountResponse{N: 1}) })
}

// Echo reads on a goroutine of its own (a Receive is pending when the
// handler returns) and follows the topic.
func (f *followServer) Echo(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	go func() {
		for _, err := range st.All() {
			if err != nil {
				return
			}
		}
	}()
	return f.follow(ctx, func(sse.Event) error { return st.Send(&testingv1.EchoResponse{}) })
}

// TestShutdownHubFollowersReturningAtOnceGet1001: bidirectional typed
// sessions whose handlers follow a hub topic, with a Receive pending on
// another goroutine, return the hub's ErrClosed as soon as wsrpc.Shutdown
// closes the hub, which it now does alongside the tracker rather than
// after every handler has returned. Every client must still read the
// tracker's 1001 (RFC 6455 §7.4.1). A handler's return cancels its
// session's reads, and the runtime drops the connection under the
// pending Receive: without the tracker making the returning handler wait
// for its going away's closing handshake, some of those connections
// were dropped before the 1001 went out and their clients saw 1006.
func TestShutdownHubFollowersReturningAtOnceGet1001(t *testing.T) {
	h, topic := newFeedHub(t)
	const n = 200
	tracker := wsrpc.NewTracker()
	svc := &followServer{topic: topic, following: make(chan struct{}, n)}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc, wsrpc.WithTracker(tracker)))
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := testingv1wsrpc.NewStreamServiceClient(nil, base)
	ends := make(chan error, n)
	for range n {
		st, err := client.Echo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		go func() {
			for {
				if _, err := st.Receive(); err != nil {
					ends <- err
					return
				}
			}
		}()
	}
	for range n {
		select {
		case <-svc.following:
		case <-ctx.Done():
			t.Fatal("the sessions never followed the topic")
		}
	}
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	if err := wsrpc.Shutdown(sctx, srv, tracker, h); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	bad := 0
	for range n {
		if err := <-ends; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			if bad++; bad <= 5 {
				t.Errorf("client: %v, want 1001", err)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d clients did not get 1001", bad, n)
	}
}

// TestShutdownStalledTypedClientDoesNotCostHubClients1001: one typed SSE
// client that stopped reading holds its handler in a write far longer
// than Shutdown's deadline, yet wsrpc.Shutdown sends the hub endpoint's
// WebSocket clients 1001 (going away, RFC 6455 §7.4.1). Before, the hub
// was shut down only once every tracked handler had returned, so the
// stalled one held it to the deadline and the hub's clients were then
// cut without a close frame (1006). It also guards why the hub waited at
// all: typed sessions following the hub's topic, whose handlers return
// the hub's ErrClosed as the hub closes under them, still end as Tracker
// Shutdown marked them — 1001 (unavailable) on WebSocket, and on SSE a
// stream that ends without a "wsrpc.end" or "wsrpc.error" event — which
// clients take for a reason to reconnect, never the final unknown.
func TestShutdownStalledTypedClientDoesNotCostHubClients1001(t *testing.T) {
	h, topic := newFeedHub(t)
	tracker := wsrpc.NewTracker()
	svc := &followServer{topic: topic, following: make(chan struct{}, 8)}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc, wsrpc.WithTracker(tracker),
		// Far beyond Shutdown's deadline: only the deadline ends the stall.
		wsrpc.WithSSEOptions(&sse.StreamOptions{WriteTimeout: time.Minute})))
	mux.Handle("/feed/ws", topic.WebSocketHandler(nil, codec.JSON))
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const nHub = 10
	hubEnds := make(chan error, nHub)
	for range nHub {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/feed/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					hubEnds <- err
					return
				}
			}
		}()
	}
	client := testingv1wsrpc.NewStreamServiceClient(nil, base)
	count, err := client.Count(ctx, &testingv1.CountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer count.Close()
	countEnd := make(chan error, 1)
	go func() {
		for {
			if _, err := count.Receive(); err != nil {
				countEnd <- err
				return
			}
		}
	}()
	watchEnd := make(chan error, 1)
	stalled := make(chan struct{})
	for _, room := range []string{"healthy", "stall"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/rooms/watch?room="+room, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if room == "stall" {
			go func() { // never reads
				<-stalled
				resp.Body.Close()
			}()
			continue
		}
		go func() {
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && strings.Contains(string(body), "event: wsrpc.") {
				err = errors.New("the stream ended with an event of wsrpc's: " + string(body[strings.LastIndex(string(body), "event: wsrpc."):]))
			}
			watchEnd <- err
		}()
	}
	defer close(stalled)
	for range 3 { // Count, and the two watchers
		select {
		case <-svc.following:
		case <-ctx.Done():
			t.Fatal("the typed sessions never followed the topic")
		}
	}
	waitSubscribersOf(t, ctx, topic, nHub)

	// Large events until the stalled watcher's handler is blocked in a
	// write: it stops counting sends while events keep coming.
	big := &testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Room: strings.Repeat("z", 256<<10)}}}
	last, still := int64(-1), 0
	for i := 0; i < 400 && still < 10; i++ { // at most 100 MiB
		if err := topic.Publish(ctx, big); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		if n := svc.stalled.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	if still < 10 {
		t.Fatal("the stalled watcher's handler never blocked")
	}

	sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
	defer scancel()
	if err := wsrpc.Shutdown(sctx, srv, tracker, h); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline (the stalled handler outlives it)", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	for i := range nHub {
		if err := <-hubEnds; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("hub WebSocket client %d: %v, want 1001", i, err)
		}
	}
	if err := <-countEnd; websocket.CloseStatus(err) != websocket.StatusGoingAway || wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Errorf("typed WebSocket follower: %v, want 1001 (unavailable)", err)
	}
	if err := <-watchEnd; err != nil {
		t.Errorf("typed SSE follower: %v, want a stream that ends without an end event", err)
	}
}

// waitSubscribersOf waits until topic has n subscribers.
func waitSubscribersOf[M proto.Message](t *testing.T, ctx context.Context, topic *hub.Topic[M], n int) {
	t.Helper()
	for topic.Stats().Subscribers != n {
		if ctx.Err() != nil {
			t.Fatalf("%d subscribers, want %d", topic.Stats().Subscribers, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// newFeedHub returns a hub with a "feed" topic that records what a typed
// SSE handler of WatchResponse sends (so that typed sessions can follow
// it); the hub is closed when the test ends.
func newFeedHub(t *testing.T) (*hub.Hub, *hub.Topic[*testingv1.WatchResponse]) {
	t.Helper()
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	topic, err := hub.NewTopic(h, "feed", &hub.TopicOptions[*testingv1.WatchResponse]{
		SSECodec:  wsrpc.SSEEventCodec,
		EventType: wsrpc.SSEEventType[*testingv1.WatchResponse],
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, topic
}
