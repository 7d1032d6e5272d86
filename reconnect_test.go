package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// restartable serves the golden StreamService on one address that can
// be stopped (graceful Shutdown: 1001 to every session) and started again.
type restartable struct {
	t       *testing.T
	svc     testingv1wsrpc.StreamServiceHandler
	addr    string
	srv     *http.Server
	tracker *wsrpc.Tracker
	served  chan error
}

func (r *restartable) start() {
	r.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 100 { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.tracker = wsrpc.NewTracker()
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(r.svc, wsrpc.WithTracker(r.tracker)))
	r.srv = wsrpc.NewHTTPServer(mux)
	r.served = make(chan error, 1)
	go func() { r.served <- r.srv.Serve(ln) }()
}

func (r *restartable) stop() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wsrpc.Shutdown(ctx, r.srv, r.tracker); err != nil {
		r.t.Errorf("Shutdown: %v", err)
	}
	<-r.served
}

// TestReconnectAcrossRestart: with WithReconnect, a bidirectional call
// survives a server restart on the same port. The restart's 1001 starts
// the reconnection; attempts fail while the port is closed and are
// reported to OnReconnect, which resends on the new connection once an
// attempt succeeds; Receive then goes on there.
func TestReconnectAcrossRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := &restartable{t: t, svc: streamServer{}}
	srv.start()

	var mu sync.Mutex
	var attempts []error
	var stream *wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
	policy := wsrpc.ReconnectPolicy{
		MaxAttempts:  50,
		InitialDelay: 20 * time.Millisecond,
		MaxDelay:     100 * time.Millisecond,
		OnReconnect: func(attempt int, err error) {
			mu.Lock()
			attempts = append(attempts, err)
			mu.Unlock()
			if err == nil {
				// Resume: the application resends what the new
				// connection needs.
				if serr := stream.Send(&testingv1.EchoRequest{Text: "resumed", Seq: 2}); serr != nil {
					t.Errorf("send after reconnect: %v", serr)
				}
			}
		},
	}
	hc := &http.Client{Transport: &http.Transport{}}
	client := testingv1wsrpc.NewStreamServiceClient(hc, "http://"+srv.addr, wsrpc.WithReconnect(policy))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	stream, err = client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if err := stream.Send(&testingv1.EchoRequest{Text: "first", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if res, err := stream.Receive(); err != nil || res.GetSeq() != 1 {
		t.Fatalf("first echo: %v %v", res, err)
	}

	// Stop the server; restart it once at least one attempt has failed
	// against the closed port.
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		srv.stop()
		for {
			mu.Lock()
			n := len(attempts)
			mu.Unlock()
			if n > 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		srv.start()
	}()

	res, err := stream.Receive()
	if err != nil || res.GetText() != "resumed" || res.GetSeq() != 2 {
		t.Fatalf("after restart: %v %v", res, err)
	}
	<-restarted
	mu.Lock()
	got := append([]error(nil), attempts...)
	mu.Unlock()
	if len(got) < 2 || got[len(got)-1] != nil {
		t.Fatalf("OnReconnect saw %v, want failed attempts then a success", got)
	}
	for _, err := range got[:len(got)-1] {
		if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
			t.Errorf("failed attempt %v, want unavailable", err)
		}
	}

	// A normal end is not retried.
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want io.EOF", err)
	}
	srv.stop()
	hc.CloseIdleConnections()
}

// blackhole forwards TCP connections to target; dark makes every
// connection open at that moment stop forwarding in both directions (a
// path that goes dark: no FIN, no RST), while new connections work.
type blackhole struct {
	addr  string
	mu    sync.Mutex
	dark  []*atomic.Bool
	conns []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			dark := new(atomic.Bool)
			b.mu.Lock()
			b.dark = append(b.dark, dark)
			b.conns = append(b.conns, c, s)
			b.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if dark.Load() {
						if err != nil {
							return
						}
						continue
					}
					if n > 0 {
						if _, err := dst.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						dst.Close()
						return
					}
				}
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	return b
}

func (b *blackhole) goDark() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.dark {
		d.Store(true)
	}
}

// TestReconnectAfterMissedPong: a path that goes dark is found by the
// keepalive: no pong comes back, and the runtime fails the connection
// with 1011 and ErrPongTimeout (RFC 6455 §5.5.2-3 leave the timeout to
// the endpoint). That is a lost connection, which WithReconnect retries
// (its doc and docs/reliability.md list "a missed pong"); it used to map
// to CodeInternal, like a peer's 1011, and end the call.
func TestReconnectAfterMissedPong(t *testing.T) {
	u, err := url.Parse(serve(t))
	if err != nil {
		t.Fatal(err)
	}
	bh := newBlackhole(t, u.Host)
	var stream *wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
	policy := wsrpc.ReconnectPolicy{InitialDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
		OnReconnect: func(_ int, err error) {
			if err == nil {
				if serr := stream.Send(&testingv1.EchoRequest{Text: "resumed"}); serr != nil {
					t.Errorf("send after reconnect: %v", serr)
				}
			}
		}}
	client := testingv1wsrpc.NewStreamServiceClient(nil, "http://"+bh.addr,
		wsrpc.WithDialOptions(&websocket.DialOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}),
		wsrpc.WithReconnect(policy))
	stream, err = client.Echo(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if err := stream.Send(&testingv1.EchoRequest{Text: "first"}); err != nil {
		t.Fatal(err)
	}
	if res, err := stream.Receive(); err != nil || res.GetText() != "first" {
		t.Fatalf("first echo: %v %v", res, err)
	}
	bh.goDark()
	if res, err := stream.Receive(); err != nil || res.GetText() != "resumed" {
		t.Fatalf("after the path went dark: %v, %v (code %v); want the echo on a new connection", res, err, wsrpc.CodeOf(err))
	}
}

// TestCloseSendWhileReconnecting: a CloseSend made while the call is
// reconnecting (its connection lost, Receive waiting out the backoff or
// dialling) carries over: it returns nil, and the new connection gets the
// end-of-stream marker as soon as it opens, so the handler's Receive
// returns io.EOF and the client's All ends. CloseSend used to fail on the
// dead connection while the call reconnected anyway, and a client
// draining All for its io.EOF waited forever.
func TestCloseSendWhileReconnecting(t *testing.T) {
	var conns atomic.Int64
	h := wsrpc.NewBidiHandler("/t/E", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if conns.Add(1) == 1 {
			// The first connection goes away, as in a restart.
			return s.WebSocket().Close(websocket.StatusGoingAway, "restarting")
		}
		for _, err := range s.All() {
			if err != nil {
				return err
			}
		}
		return nil
	})
	// The second handshake waits until CloseSend has returned, so that
	// CloseSend certainly lands while the call is reconnecting.
	var dials atomic.Int64
	gate := make(chan struct{})
	base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dials.Add(1) == 2 {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	lost := make(chan struct{})
	var once sync.Once
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/E", "/t/E",
		wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { once.Do(func() { close(lost) }) }),
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond}))
	st, err := c.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	done := make(chan error, 1)
	go func() {
		for _, err := range st.All() {
			if err != nil {
				done <- err
				return
			}
			done <- errors.New("a message arrived")
			return
		}
		done <- io.EOF
	}()
	<-lost // the client has read the 1001
	if err := st.CloseSend(); err != nil {
		t.Errorf("CloseSend while reconnecting = %v, want nil", err)
	}
	close(gate)
	if err := waitSeen(t, done, "All has not ended: the new connection never got the end-of-stream marker"); !errors.Is(err, io.EOF) {
		t.Fatalf("All ended with %v, want io.EOF", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// holdingCount sends 1..count, then fails with fail_code if fail_at is
// set, else holds the stream open until its context ends.
type holdingCount struct{ streamServer }

func (holdingCount) Count(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
	for i := int32(1); i <= req.GetCount(); i++ {
		if err := s.Send(&testingv1.CountResponse{N: i}); err != nil {
			return err
		}
	}
	if req.GetFailAt() > 0 {
		return wsrpc.Errorf(wsrpc.Code(req.GetFailCode()), "failed after %d", req.GetCount())
	}
	<-ctx.Done()
	return nil
}

// TestReconnectServerStreamAndLimits: a server-streaming call sends its
// request again on the new connection (the handler starts over); a
// handler's own CodeUnavailable is not retried; when the server stays
// away, Receive gives up after MaxAttempts with the last attempt's error;
// without WithReconnect the loss ends the call at once.
func TestReconnectServerStreamAndLimits(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := &restartable{t: t, svc: holdingCount{}}
	srv.start()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	var attempts []error
	var hold chan struct{} // if set, a failed attempt waits for it
	policy := wsrpc.ReconnectPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
		OnReconnect: func(_ int, err error) {
			mu.Lock()
			attempts = append(attempts, err)
			h := hold
			mu.Unlock()
			if err != nil && h != nil {
				<-h
			}
		}}
	nAttempts := func() int { mu.Lock(); defer mu.Unlock(); return len(attempts) }
	withRe := testingv1wsrpc.NewStreamServiceClient(hc, "http://"+srv.addr, wsrpc.WithReconnect(policy))
	without := testingv1wsrpc.NewStreamServiceClient(hc, "http://"+srv.addr)
	receiveN := func(st *wsrpc.ServerStreamForClient[testingv1.CountResponse], want ...int32) {
		t.Helper()
		for _, w := range want {
			res, err := st.Receive()
			if err != nil || res.GetN() != w {
				t.Fatalf("received %v, %v; want %d", res, err, w)
			}
		}
	}

	// The handler's CodeUnavailable ends the call.
	st, err := withRe.Count(ctx, &testingv1.CountRequest{Count: 2, FailAt: 1, FailCode: uint32(wsrpc.CodeUnavailable)})
	if err != nil {
		t.Fatal(err)
	}
	receiveN(st, 1, 2)
	if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || nAttempts() != 0 {
		t.Fatalf("handler failure: %v after %d reconnections, want unavailable after none", err, nAttempts())
	}
	_ = st.Close()

	// A restart: the request is sent again and the handler starts over.
	st, err = withRe.Count(ctx, &testingv1.CountRequest{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	receiveN(st, 1, 2)
	plain, err := without.Count(ctx, &testingv1.CountRequest{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	receiveN(plain, 1, 2)
	plainEnd := make(chan error, 1)
	go func() { _, err := plain.Receive(); plainEnd <- err }() // answers the 1001
	restarted := make(chan struct{})
	mu.Lock()
	hold = restarted // the first failed attempt waits for the restart
	mu.Unlock()
	go func() {
		defer close(restarted)
		srv.stop()
		for nAttempts() == 0 && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		srv.start()
	}()
	receiveN(st, 1, 2)
	<-restarted
	if err := <-plainEnd; wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Errorf("without reconnection: %v, want unavailable", err)
	}
	mu.Lock()
	if n := len(attempts); n < 2 || attempts[n-1] != nil {
		t.Errorf("OnReconnect saw %v, want failures then a success", attempts)
	}
	attempts, hold = nil, nil
	mu.Unlock()

	// A server that stays away: MaxAttempts failures, then the error.
	end := make(chan error, 1)
	go func() { _, err := st.Receive(); end <- err }()
	srv.stop()
	err = <-end
	if n := nAttempts(); n != 3 || wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Errorf("gave up after %d attempts with %v, want 3 and unavailable", n, err)
	}
}

// ringWatch serves Watch from a replay store that outlives the server
// (as a shared store or a hub would): it sends what the store holds after
// the client's Last-Event-ID, then polls for more until its context ends.
type ringWatch struct {
	streamServer
	ring *sse.Ring
}

func (w ringWatch) Watch(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	last := s.LastEventID()
	for {
		evs, err := w.ring.Since(last)
		if err != nil {
			return wsrpc.Errorf(wsrpc.CodeDataLoss, "resume from %q: %v", last, err)
		}
		for _, ev := range evs {
			// Events NewStream replayed already are dropped here.
			if err := s.SendEvent(ev); err != nil {
				return err
			}
			last = ev.ID
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Millisecond):
		}
	}
}

// TestSSEResumeAcrossRestart: a typed SSE client follows a stream across
// three graceful restarts of its server on the same port and receives
// every event exactly once, in order: Shutdown ends SSE responses without
// "wsrpc.end", so the client reconnects with Last-Event-ID and the
// replay store fills the gap.
func TestSSEResumeAcrossRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const total, restarts = 600, 3
	ring := sse.NewRing(2 * total)
	mustAppend := func(m *testingv1.WatchResponse) {
		ev, err := wsrpc.NewSSEEvent(m, "")
		if err == nil {
			_, err = ring.Append(ev)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "start"}}) // id 1
	srv := &restartable{t: t, svc: ringWatch{ring: ring}}
	srv.start()

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	client := testingv1wsrpc.NewStreamServiceClient(hc, "http://"+srv.addr,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{LastEventID: "1", ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 1000}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := int64(1); i <= total; i++ {
			mustAppend(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Seq: i}}})
			if restarts > 0 && i%(total/(restarts+1)) == 0 && i < total {
				srv.stop()
				srv.start()
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for want := int64(1); want <= total; want++ {
		m, err := st.Receive()
		if err != nil {
			t.Fatalf("after %d events: %v", want-1, err)
		}
		if got := m.GetTick().GetSeq(); got != want {
			t.Fatalf("event %d: got tick %d (%v)", want, got, m)
		}
	}
	<-published
	if err := st.Close(); err != nil {
		t.Error(err)
	}
	srv.stop()
}
