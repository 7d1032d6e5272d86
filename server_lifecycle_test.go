package wsrpc_test

// The life of server sessions at their edges: a request over the
// server's limit, sends after the handler returned, Shutdown racing new
// calls and itself, a panicking OnClose hook, and Close racing the
// handler's end. Kept from session 19's audit of the server side.

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// quietServer serves h on 127.0.0.1 until the test ends, with net/http's
// log (the panics a test provokes) discarded.
func quietServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("5s later, still waiting for %s", what)
		}
	}
}

// TestOversizedRequest: a message over the server's MaxMessageSize fails
// the connection with 1009 (RFC 6455 §7.4.1, message too big); the typed
// client reads resource_exhausted and OnClose reports 1009 with
// resource_exhausted.
func TestOversizedRequest(t *testing.T) {
	closes := make(chan wsrpc.CloseInfo, 1)
	h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for req, err := range s.All() {
			if err != nil {
				return err
			}
			if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
				return err
			}
		}
		return nil
	}, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{MaxMessageSize: 1024}),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))
	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h), "/t/Echo").Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&testingv1.EchoRequest{Blob: make([]byte, 2048)}); err != nil {
		t.Fatal(err)
	}
	if _, err = st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeResourceExhausted {
		t.Errorf("client: %v, want resource_exhausted", err)
	}
	if ci := waitSeen(t, closes, "OnClose never ran"); ci.Code != websocket.StatusMessageTooBig || wsrpc.CodeOf(ci.Err) != wsrpc.CodeResourceExhausted {
		t.Errorf("OnClose %+v, want 1009 resource_exhausted", ci)
	}
}

// TestSendAfterHandlerReturned: a goroutine that sends after its handler
// returned (and OnClose ran) gets an error (io.EOF or an *Error), never a
// panic, on WebSocket and SSE alike, and the client sees the clean end
// (io.EOF), nothing after it.
func TestSendAfterHandlerReturned(t *testing.T) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	errs := make(chan error, 2)
	// late runs send once the session's OnClose has closed ended.
	late := func(ended <-chan struct{}, send func() error, more func() error) {
		wg.Go(func() {
			<-ended
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				err = send()
			}
			if more != nil && err != nil {
				if rerr := more(); rerr == nil {
					err = errors.New("Receive after the handler returned succeeded")
				}
			}
			errs <- err
		})
	}
	wsEnded, sseEnded := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/t/Echo", wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		late(wsEnded, func() error { return s.Send(&testingv1.EchoResponse{Text: "late"}) },
			func() error { _, err := s.Receive(); return err })
		return nil
	}, wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { close(wsEnded) })))
	mux.Handle("/t/Watch", wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		late(sseEnded, func() error {
			return s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "late"}})
		}, nil)
		return nil
	}, wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { close(sseEnded) })))
	url := newServer(t, mux)
	ctx := testContext(t)

	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, url+"/t/Echo", "/t/Echo").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("WebSocket client Receive = %v, want io.EOF", err)
	}
	sst, err := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, url+"/t/Watch", "/t/Watch").Call(ctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sst.Close()
	if _, err := sst.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("SSE client Receive = %v, want io.EOF", err)
	}
	for range 2 {
		// io.EOF: the stream had ended cleanly (1000), as Receive says.
		err := waitSeen(t, errs, "a late sender never finished")
		var e *wsrpc.Error
		if !errors.As(err, &e) && !errors.Is(err, io.EOF) {
			t.Errorf("late Send = %v, want io.EOF or an *wsrpc.Error", err)
		}
	}
}

// TestShutdownRacesNewCalls: calls that open while Tracker.Shutdown runs
// are either refused (503, unavailable) or served and then sent 1001
// (WebSocket) or ended (SSE, after its first event); Shutdown returns
// nil, and no session stays tracked.
func TestShutdownRacesNewCalls(t *testing.T) {
	tracker := wsrpc.NewTracker()
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(&liveServer{}, wsrpc.WithTracker(tracker)))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	client := testingv1wsrpc.NewStreamServiceClient(ts.Client(), ts.URL)
	ctx := testContext(t)

	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	var calls atomic.Int64
	note := func(s string) { mu.Lock(); outcomes[s]++; mu.Unlock(); calls.Add(1) }
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for range 200 {
				select {
				case <-stop:
					return
				default:
				}
				if g%2 == 0 {
					st, err := client.Echo(ctx)
					if err != nil {
						note("WebSocket refused: " + wsrpc.CodeOf(err).String())
						continue
					}
					_ = st.Send(&testingv1.EchoRequest{Text: "x"})
					_, err = st.Receive()
					if err == nil {
						_, err = st.Receive()
					}
					if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) {
						note("WebSocket closed: " + ce.Code.String())
					} else {
						note("WebSocket ended: " + wsrpc.CodeOf(err).String())
					}
					st.Close()
				} else {
					st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
					if err != nil {
						note("SSE refused: " + wsrpc.CodeOf(err).String())
						continue
					}
					if _, err = st.Receive(); err != nil {
						note("SSE failed: " + wsrpc.CodeOf(err).String())
					} else {
						note("SSE served")
					}
					st.Close()
				}
			}
		})
	}
	waitFor(t, "calls before Shutdown", func() bool { return calls.Load() >= 16 })
	sctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	err := tracker.Shutdown(sctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if n := tracker.Len(); n != 0 {
		t.Errorf("%d sessions still tracked", n)
	}
	allowed := map[string]bool{
		"WebSocket refused: unavailable": true, "WebSocket closed: " + websocket.StatusGoingAway.String(): true,
		"SSE refused: unavailable": true, "SSE served": true,
	}
	for o, n := range outcomes {
		if !allowed[o] {
			t.Errorf("%d calls: %s", n, o)
		}
	}
	if t.Failed() {
		t.Logf("outcomes: %v", outcomes)
	}
}

// TestConcurrentShutdowns guards two Tracker.Shutdown calls at once (a
// second signal): every WebSocket client must still get 1001 with
// ShutdownReason. The second call's goAway found the stream closing and
// cancelled its context at once, which made the runtime drop the
// connection under the first call's closing handshake, often before its
// close frame went out (RFC 6455 §7.1.2): the client saw 1006, a lost
// connection.
func TestConcurrentShutdowns(t *testing.T) {
	const rounds, sessions, shutdowns = 40, 20, 4
	for round := range rounds {
		tracker := wsrpc.NewTracker()
		mux := http.NewServeMux()
		mux.Handle(testingv1wsrpc.NewStreamServiceHandler(&liveServer{}, wsrpc.WithTracker(tracker)))
		ts := httptest.NewServer(mux)
		client := testingv1wsrpc.NewStreamServiceClient(ts.Client(), ts.URL)
		ctx := testContext(t)
		ends := make(chan error, sessions)
		for range sessions {
			st, err := client.Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			go func() { _, err := st.Receive(); ends <- err; st.Close() }()
		}
		waitFor(t, "every session tracked", func() bool { return tracker.Len() == sessions })
		sctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		var wg sync.WaitGroup
		for range shutdowns {
			wg.Go(func() {
				if err := tracker.Shutdown(sctx); err != nil {
					t.Errorf("Shutdown = %v", err)
				}
			})
		}
		wg.Wait()
		cancel()
		bad := 0
		for range sessions {
			err := waitSeen(t, ends, "a client never ended")
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != wsrpc.ShutdownReason {
				bad++
				t.Logf("client ended with %v", err)
			}
		}
		ts.Close()
		if bad > 0 {
			t.Fatalf("round %d: %d of %d clients did not get 1001 %q", round, bad, sessions, wsrpc.ShutdownReason)
		}
	}
}

// TestPanicInOnClose: a panicking OnClose hook, on WebSocket and SSE,
// runs once, does not hang the session or leave it tracked, and the
// client sees the clean end the handler chose.
func TestPanicInOnClose(t *testing.T) {
	tracker := wsrpc.NewTracker()
	var calls atomic.Int64
	opts := []wsrpc.Option{wsrpc.WithTracker(tracker), wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) {
		calls.Add(1)
		panic("onclose bug")
	})}
	mux := http.NewServeMux()
	mux.Handle("/ws", wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		return nil
	}, opts...))
	mux.Handle("/sse", wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		return nil
	}, opts...))
	srv := quietServer(t, mux)
	ctx := testContext(t)
	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, srv.URL+"/ws", "/t/Echo").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err = st.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("WebSocket client: %v, want io.EOF", err)
	}
	sst, err := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, srv.URL+"/sse", "/t/Watch").Call(ctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sst.Close()
	if _, err = sst.Receive(); !errors.Is(err, io.EOF) {
		t.Errorf("SSE client: %v, want io.EOF", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := tracker.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("OnClose ran %d times for 2 sessions", n)
	}
	if n := tracker.Len(); n != 0 {
		t.Errorf("%d sessions still tracked", n)
	}
}

// TestCloseRacesHandlerEnd: Close from another goroutine racing the
// handler's own end (a return, an error, a panic), its Sends and
// Tracker.Shutdown: every client call ends (no hang), Shutdown returns
// nil, and nothing stays tracked.
func TestCloseRacesHandlerEnd(t *testing.T) {
	tracker := wsrpc.NewTracker()
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		i := n.Add(1)
		wg.Go(func() { _ = s.Close(wsrpc.CodeAborted, "closed from elsewhere") })
		wg.Go(func() {
			for range 20 {
				if s.Send(&testingv1.EchoResponse{Text: "x"}) != nil {
					return
				}
			}
		})
		switch i % 3 {
		case 0:
			panic("racing panic")
		case 1:
			return wsrpc.Errorf(wsrpc.CodeNotFound, "gone")
		}
		_, err := s.Receive()
		return err
	}, wsrpc.WithTracker(tracker))
	srv := quietServer(t, h)
	ctx := testContext(t)
	client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](srv.Client(), srv.URL, "/t/Echo")
	var ended atomic.Int64
	var cw sync.WaitGroup
	for range 6 {
		cw.Go(func() {
			for range 20 {
				st, err := client.Call(ctx)
				if err == nil {
					for err == nil {
						_, err = st.Receive()
					}
					st.Close()
				}
				ended.Add(1)
			}
		})
	}
	waitFor(t, "calls before Shutdown", func() bool { return ended.Load() >= 30 })
	sctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	if err := tracker.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	cw.Wait()
	if l := tracker.Len(); l != 0 {
		t.Errorf("%d sessions still tracked", l)
	}
}

// TestVanishedClientIs1006 guards what OnClose reports for a client that
// drops its TCP connection without a close frame (a killed process, a
// proxy's idle cut): 1006, abnormal closure (RFC 6455 §7.1.5), with an
// unavailable Err — not the 4014 the handler's returned error maps to,
// which was neither sent nor received (the server tried to send it on a
// dead connection).
func TestVanishedClientIs1006(t *testing.T) {
	closes := make(chan wsrpc.CloseInfo, 1)
	h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for _, err := range s.All() {
			if err != nil {
				return err // what handlers do: the lost connection's unavailable
			}
		}
		return nil
	}, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))
	url := "ws" + strings.TrimPrefix(newServer(t, h), "http") + "/t/Echo"
	c, _, err := websocket.Dial(testContext(t), url, &websocket.DialOptions{Subprotocols: []string{"wsrpc.proto"}})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	ci := waitSeen(t, closes, "OnClose never ran")
	if ci.Code != websocket.StatusAbnormalClosure || ci.Reason != "" || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
		t.Errorf("OnClose %+v (%v), want 1006, no reason, unavailable", ci, wsrpc.CodeOf(ci.Err))
	}
}
