package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
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

// blackhole forwards TCP connections to target; goDark makes every
// connection open at that moment stop forwarding in both directions (a
// path that goes dark: no FIN, no RST), while new connections work;
// goDarkUp darkens one direction; cut closes the open connections; hold
// makes new connections hang unanswered.
type blackhole struct {
	addr     string
	hold     atomic.Bool // new connections are accepted and never answered (a server whose process hangs)
	mu       sync.Mutex
	up, down []*atomic.Bool // per connection: client to server, server to client
	conns    []net.Conn
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
			if b.hold.Load() {
				b.mu.Lock()
				b.conns = append(b.conns, c) // held open, unanswered
				b.mu.Unlock()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			up, down := new(atomic.Bool), new(atomic.Bool)
			b.mu.Lock()
			b.up, b.down = append(b.up, up), append(b.down, down)
			b.conns = append(b.conns, c, s)
			b.mu.Unlock()
			pipe := func(dst, src net.Conn, dark *atomic.Bool) {
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
			go pipe(s, c, up)
			go pipe(c, s, down)
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
	for i := range b.up {
		b.up[i].Store(true)
		b.down[i].Store(true)
	}
}

// cut closes every connection open now (a FIN to both ends).
func (b *blackhole) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// goDarkUp darkens the client-to-server direction only of every
// connection open now: the server's pings reach the client, its pongs
// are lost.
func (b *blackhole) goDarkUp() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.up {
		d.Store(true)
	}
}

// TestReconnectAfterMissedPong: a path that goes dark is found by the
// keepalive: no pong comes back, and the runtime closes the connection
// with ErrPongTimeout (RFC 6455 §5.5.2-3 leave the timeout to the
// endpoint). That is a lost connection, which WithReconnect retries
// (its doc and docs/reliability.md list "a missed pong"); it used to map
// to CodeInternal, like a peer's 1011, and end the call.
func TestReconnectAfterMissedPong(t *testing.T) {
	echoAcrossFault(t, serve(t), []wsrpc.Option{wsrpc.WithDialOptions(&websocket.DialOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})},
		(*blackhole).goDark)
}

// TestReconnectAfterServersMissedPong: only the server runs keepalive,
// and only the client-to-server direction goes dark, so the server's
// pings reach the client and the pongs are lost. The server closes the
// connection, and the client's call must take that for a lost connection
// and reconnect. The server used to send a 1011 close frame, which did
// reach the client and read as the server's internal error: the call
// ended with internal, not retried.
func TestReconnectAfterServersMissedPong(t *testing.T) {
	echoAcrossFault(t, serve(t, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})), nil,
		(*blackhole).goDarkUp)
}

// echoAcrossFault runs an Echo call through a blackhole to the server at
// base, with opts and WithReconnect, applies fault after a first echo,
// and requires the call to reconnect: the message sent from OnReconnect
// comes back on the new connection.
func echoAcrossFault(t *testing.T, base string, opts []wsrpc.Option, fault func(*blackhole)) {
	t.Helper()
	u, err := url.Parse(base)
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
	client := testingv1wsrpc.NewStreamServiceClient(nil, "http://"+bh.addr, append(opts, wsrpc.WithReconnect(policy))...)
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
	fault(bh)
	if res, err := stream.Receive(); err != nil || res.GetText() != "resumed" {
		t.Fatalf("after the fault: %v, %v (code %v); want the echo on a new connection", res, err, wsrpc.CodeOf(err))
	}
}

// TestReconnectQuietStreamPingsCount guards MaxAttempts on a quiet
// stream (nothing to Receive for a while) whose connection is cut again
// and again: a reconnection whose connection carried a ping or a pong was
// alive, and counts as a success as an SSE heartbeat does. Only messages
// counted, so five cuts ended a call with MaxAttempts 2 though every
// reconnection succeeded.
func TestReconnectQuietStreamPingsCount(t *testing.T) {
	alive := make(chan struct{}, 16)
	speak := make(chan struct{})
	h := wsrpc.NewServerStreamHandler("/t/Quiet", func(ctx context.Context, _ *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		if err := s.WebSocket().Ping(ctx); err != nil { // the client read a ping
			return err
		}
		alive <- struct{}{}
		select {
		case <-speak:
			return s.Send(&testingv1.CountResponse{N: 1})
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	u, err := url.Parse(newServer(t, h))
	if err != nil {
		t.Fatal(err)
	}
	bh := newBlackhole(t, u.Host)
	policy := wsrpc.ReconnectPolicy{MaxAttempts: 2, InitialDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond}
	c := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, "http://"+bh.addr+"/t/Quiet", "/t/Quiet", wsrpc.WithReconnect(policy))
	st, err := c.Call(testContext(t), &testingv1.CountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := make(chan error, 1)
	go func() {
		res, err := st.Receive()
		if err == nil && res.GetN() != 1 {
			err = fmt.Errorf("got %v", res)
		}
		got <- err
	}()
	for i := range 5 {
		select {
		case <-alive:
		case err := <-got:
			t.Fatalf("after %d cuts: Receive returned %v (code %v)", i, err, wsrpc.CodeOf(err))
		case <-time.After(10 * time.Second):
			t.Fatalf("after %d cuts: no reconnection", i)
		}
		bh.cut()
	}
	<-alive
	close(speak)
	if err := <-got; err != nil {
		t.Fatalf("after 5 cuts: %v (code %v), want the message", err, wsrpc.CodeOf(err))
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
// handler's CodeUnavailable (4014) is retried like a lost connection —
// unavailable is the transient code, to retry with backoff (gRPC's and
// Connect's definition), and docs/hub.md has handlers map a closed hub to
// it for their clients to reconnect; it was not retried, so those clients
// never came back — while a handler's other codes end the call; a handler
// that answers unavailable before any message is retried MaxAttempts
// times; when the server stays away, Receive gives up after MaxAttempts
// with the last attempt's error; without WithReconnect the loss ends the
// call at once.
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

	// The handler's CodeUnavailable is retried: the request is sent again
	// and the handler starts over.
	st, err := withRe.Count(ctx, &testingv1.CountRequest{Count: 2, FailAt: 1, FailCode: uint32(wsrpc.CodeUnavailable)})
	if err != nil {
		t.Fatal(err)
	}
	receiveN(st, 1, 2)
	receiveN(st, 1, 2)
	if n := nAttempts(); n != 1 {
		t.Fatalf("after the handler's unavailable: %d reconnections, want 1", n)
	}
	_ = st.Close()
	mu.Lock()
	attempts = nil
	mu.Unlock()

	// A handler's other codes are its answer: they end the call.
	for _, code := range []wsrpc.Code{wsrpc.CodeResourceExhausted, wsrpc.CodeInternal, wsrpc.CodeAborted, wsrpc.CodeUnknown} {
		st, err := withRe.Count(ctx, &testingv1.CountRequest{Count: 2, FailAt: 1, FailCode: uint32(code)})
		if err != nil {
			t.Fatal(err)
		}
		receiveN(st, 1, 2)
		if _, err := st.Receive(); wsrpc.CodeOf(err) != code || nAttempts() != 0 {
			t.Fatalf("handler failure: %v after %d reconnections, want %v after none", err, nAttempts(), code)
		}
		_ = st.Close()
	}

	// A handler that answers unavailable at once, every time: each
	// reconnection delivers nothing, so MaxAttempts bounds them.
	st, err = withRe.Count(ctx, &testingv1.CountRequest{FailAt: 1, FailCode: uint32(wsrpc.CodeUnavailable)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || nAttempts() != 3 {
		t.Fatalf("a handler that always answers unavailable: %v after %d reconnections, want unavailable after 3", err, nAttempts())
	}
	_ = st.Close()
	mu.Lock()
	attempts = nil
	mu.Unlock()

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
	mustAppend(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "start"}})
	start := ring.Last() // the client has seen it
	srv := &restartable{t: t, svc: ringWatch{ring: ring}}
	srv.start()

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	client := testingv1wsrpc.NewStreamServiceClient(hc, "http://"+srv.addr,
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{LastEventID: start, ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 1000}))
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

// acceptAndClose serves WebSocket upgrades (subprotocol wsrpc.proto) that
// it closes at once with code: an overloaded backend (1013), or a proxy
// that upgrades and then loses its backend. It counts the upgrades.
func acceptAndClose(t *testing.T, code websocket.StatusCode, accepted *atomic.Int64) string {
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{codec.Subprotocol(codec.Proto)}})
		if err != nil {
			return
		}
		accepted.Add(1)
		_ = c.Close(code, "try again later")
	}))
}

// TestReconnectCountsUntilDelivery: a reconnection counts as a success,
// starting MaxAttempts' count and the backoff again, only once its
// connection has delivered a message. Against a server that accepts and
// closes at once, every dial succeeded and reset both, so the call
// reconnected for ever at InitialDelay's pace (105 connections in 2 s
// with MaxAttempts 3). A server whose connections each deliver a message
// before they are lost is still followed for as long as it keeps that up.
func TestReconnectCountsUntilDelivery(t *testing.T) {
	t.Run("flapping", func(t *testing.T) {
		var accepted atomic.Int64
		base := acceptAndClose(t, websocket.StatusTryAgainLater, &accepted)
		var mu sync.Mutex
		var attempts []int
		policy := wsrpc.ReconnectPolicy{MaxAttempts: 3, InitialDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
			OnReconnect: func(n int, err error) {
				mu.Lock()
				attempts = append(attempts, n)
				mu.Unlock()
			}}
		client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithReconnect(policy), wsrpc.WithCodecs(codec.Proto))
		st, err := client.Echo(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		end := make(chan error, 1)
		go func() { _, err := st.Receive(); end <- err }()
		err = waitSeen(t, end, "Receive is still reconnecting to a server that closes every connection at once")
		if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
			t.Errorf("Receive = %v, want the last connection's unavailable", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if n := accepted.Load(); n != 4 || len(attempts) != 3 || attempts[2] != 3 {
			t.Errorf("%d connections, OnReconnect attempts %v; want the first and 3 reconnections, numbered 1 to 3", n, attempts)
		}
	})
	t.Run("delivering", func(t *testing.T) {
		const lost = 5
		var conns atomic.Int64
		h := wsrpc.NewBidiHandler("/t/E", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			n := conns.Add(1)
			if err := s.Send(&testingv1.EchoResponse{Seq: n}); err != nil {
				return err
			}
			if n <= lost {
				return s.WebSocket().Close(websocket.StatusTryAgainLater, "busy")
			}
			for _, err := range s.All() {
				if err != nil {
					return err
				}
			}
			return nil
		})
		c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h)+"/t/E", "/t/E",
			wsrpc.WithReconnect(wsrpc.ReconnectPolicy{MaxAttempts: 1, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}))
		st, err := c.Call(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for want := int64(1); want <= lost+1; want++ {
			m, err := st.Receive()
			if err != nil || m.GetSeq() != want {
				t.Fatalf("Receive = %v, %v; want seq %d (MaxAttempts 1, every connection delivered a message)", m, err, want)
			}
		}
	})
}

// TestReconnectWaitEndsWithCall: a call whose context ends, or that is
// closed, while it waits out a reconnection's backoff makes Receive fail
// with canceled (deadline_exceeded for a deadline), as BidiClient.Call
// says of a call whose context ends while it is connected. It used to
// return the lost connection's unavailable, which a caller that checks
// the code takes for a reason to retry.
func TestReconnectWaitEndsWithCall(t *testing.T) {
	type call = wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
	for _, tc := range []struct {
		name    string
		timeout time.Duration // the call's deadline; 0: none
		end     func(t *testing.T, cancel context.CancelFunc, st *call)
		want    wsrpc.Code
	}{
		{
			name: "cancel",
			end:  func(_ *testing.T, cancel context.CancelFunc, _ *call) { cancel() },
			want: wsrpc.CodeCanceled,
		},
		{
			name:    "deadline",
			timeout: time.Second,
			end:     func(*testing.T, context.CancelFunc, *call) {},
			want:    wsrpc.CodeDeadlineExceeded,
		},
		{
			name: "close",
			end: func(t *testing.T, _ context.CancelFunc, st *call) {
				if err := st.Close(); err != nil {
					t.Errorf("Close during the wait = %v", err)
				}
			},
			want: wsrpc.CodeCanceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var accepted atomic.Int64
			base := acceptAndClose(t, websocket.StatusGoingAway, &accepted)
			lost := make(chan struct{})
			var once sync.Once
			// The wait (2.5 to 5 s) outlasts the test's own bounds.
			policy := wsrpc.ReconnectPolicy{InitialDelay: 5 * time.Second, MaxDelay: 5 * time.Second}
			client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithReconnect(policy), wsrpc.WithCodecs(codec.Proto),
				wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { once.Do(func() { close(lost) }) }))
			ctx, cancel := context.WithCancel(testContext(t))
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
			}
			defer cancel()
			st, err := client.Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			end := make(chan error, 1)
			go func() { _, err := st.Receive(); end <- err }()
			waitSeen(t, lost, "the connection was never lost")
			tc.end(t, cancel, st)
			err = waitSeen(t, end, "Receive did not return when the call ended during the wait")
			if c := wsrpc.CodeOf(err); c != tc.want {
				t.Errorf("Receive = %v (code %v), want %v", err, c, tc.want)
			}
			if n := accepted.Load(); n != 1 {
				t.Errorf("%d connections, want 1: the call ended during the first wait", n)
			}
		})
	}
}

// TestSSERetriesUnavailableReconnection: a typed SSE stream whose
// reconnection is refused as unavailable (503 from a server under
// Tracker.Shutdown; 502 or 504 from a proxy during a restart; another
// status with Wsrpc-Code unavailable) retries within the SSE client's
// limits and goes on with the next server, as Tracker.Shutdown's doc and
// reliability.md say. Such a refusal used to end the call with
// unavailable. The first request's refusal stays final.
func TestSSERetriesUnavailableReconnection(t *testing.T) {
	// attempts records what OnReconnect heard, and after refuse failed
	// attempts routes requests to the next server.
	type attempts struct {
		mu     sync.Mutex
		errs   []error
		failed int
		next   atomic.Bool
	}
	options := func(a *attempts, refuse int) wsrpc.Option {
		return wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 5 * time.Millisecond, MaxReconnectionAttempts: 5,
			OnReconnect: func(_ int, err error) {
				a.mu.Lock()
				defer a.mu.Unlock()
				a.errs = append(a.errs, err)
				if err != nil {
					if a.failed++; a.failed == refuse {
						a.next.Store(true)
					}
				}
			}})
	}
	check := func(t *testing.T, a *attempts, refused func(error) bool) {
		t.Helper()
		a.mu.Lock()
		defer a.mu.Unlock()
		if n := len(a.errs); n < 2 || a.errs[n-1] != nil {
			t.Fatalf("OnReconnect saw %v, want refusals, then a stream", a.errs)
		}
		for _, err := range a.errs[:len(a.errs)-1] {
			if !refused(err) {
				t.Errorf("OnReconnect saw %v, want only the refusal", err)
			}
		}
	}
	isStatus := func(code int) func(error) bool {
		return func(err error) bool {
			var se *sse.StatusError
			return errors.As(err, &se) && se.StatusCode == code
		}
	}

	t.Run("tracker shutdown", func(t *testing.T) {
		tracker := wsrpc.NewTracker()
		old := http.NewServeMux()
		old.Handle(testingv1wsrpc.NewStreamServiceHandler(&liveServer{}, wsrpc.WithTracker(tracker)))
		next := http.NewServeMux()
		next.Handle(testingv1wsrpc.NewStreamServiceHandler(&liveServer{}))
		var a attempts
		base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.next.Load() {
				next.ServeHTTP(w, r)
				return
			}
			old.ServeHTTP(w, r)
		}))
		client := testingv1wsrpc.NewStreamServiceClient(nil, base, options(&a, 2))
		ctx := testContext(t)
		st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, handlerBound)
		defer cancel()
		if err := tracker.Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		if m, err := st.Receive(); err != nil || m.GetTick().GetSeq() != 1 {
			t.Fatalf("Receive after Shutdown = %v, %v; want the next server's first tick", m, err)
		}
		check(t, &a, isStatus(http.StatusServiceUnavailable))
	})

	// A stream that ends without wsrpc.end after its first event, under a
	// maximum stream duration, so that the client reconnects.
	var streams atomic.Int64
	h := wsrpc.NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Seq: streams.Add(1)}}}); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}, wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			context.AfterFunc(ctx, cancel)
			return next(ctx, hs)
		}
	})))
	for _, tc := range []struct {
		name    string
		status  int
		code    string // Wsrpc-Code, if any
		refused func(error) bool
	}{
		{"502", http.StatusBadGateway, "", isStatus(http.StatusBadGateway)},
		{"504", http.StatusGatewayTimeout, "", isStatus(http.StatusGatewayTimeout)},
		{"500 with Wsrpc-Code unavailable", http.StatusInternalServerError, "unavailable", func(err error) bool {
			return wsrpc.CodeOf(err) == wsrpc.CodeUnavailable
		}},
		// Another 5xx without a code reads as unavailable, which a
		// WebSocket reconnection retries; the SSE one ended the call.
		{"505 without a code", http.StatusHTTPVersionNotSupported, "", func(err error) bool {
			return wsrpc.CodeOf(err) == wsrpc.CodeUnavailable
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a attempts
			var requests atomic.Int64
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if requests.Add(1) == 1 || a.next.Load() {
					h.ServeHTTP(w, r)
					return
				}
				if tc.code != "" {
					w.Header().Set(wsrpc.CodeHeader, tc.code)
				}
				http.Error(w, "restarting", tc.status)
			}))
			c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", options(&a, 3))
			st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for range 2 {
				if m, err := st.Receive(); err != nil || m.GetTick() == nil {
					t.Fatalf("Receive = %v, %v; want a tick from each stream", m, err)
				}
			}
			check(t, &a, tc.refused)
		})
	}

	// A 503 whose Wsrpc-Code names another code is the server's answer,
	// final as on a WebSocket reconnection; the SSE client retried it to
	// the end of its attempts and then reported a lost connection.
	t.Run("503 with Wsrpc-Code permission_denied", func(t *testing.T) {
		var a attempts
		var requests atomic.Int64
		base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if requests.Add(1) == 1 {
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set(wsrpc.CodeHeader, "permission_denied")
			http.Error(w, "tenant revoked", http.StatusServiceUnavailable)
		}))
		c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", options(&a, 99))
		st, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodePermissionDenied || !strings.Contains(err.Error(), "tenant revoked") {
			t.Errorf("Receive = %v, want the refusal's permission_denied", err)
		}
		if n := requests.Load(); n != 2 {
			t.Errorf("%d requests, want 2: the refusal is final", n)
		}
	})

	t.Run("first request", func(t *testing.T) {
		var requests atomic.Int64
		base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		}))
		c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/t/W", "/t/W", options(&attempts{}, 0))
		_, err := c.Call(testContext(t), &testingv1.WatchRequest{Room: "r"})
		if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable || requests.Load() != 1 {
			t.Errorf("Call = %v after %d requests, want unavailable after 1", err, requests.Load())
		}
	})
}

// TestSendDuringReconnection: Sends from other goroutines while Receive
// reconnects, again and again, to a server that closes every connection
// at once either reach the connection in place or fail with
// CodeUnavailable, as WithReconnect says, never otherwise. A CloseSend
// made meanwhile returns nil and fails the Sends after it with
// CodeFailedPrecondition; a Close made meanwhile ends Receive with
// CodeCanceled (or, after a CloseSend, which stops the reconnections,
// with the lost connection's CodeUnavailable), unless it crossed the
// 1001 of a connection in place, the server's own close that came first,
// which is then the call's end, as on a first connection (see
// BidiStreamForClient.Close; a reconnection's said "context canceled"
// for it, a bug that hid the case here). A canceled says this side
// closed the stream: after a CloseSend, whose marker met the server's
// close first, the Receive that Close's cancel cut off said "context
// canceled" (8 runs in 150). Under -race it also guards
// the swap of the call's connection against the Send, CloseSend and Close
// that read it.
func TestSendDuringReconnection(t *testing.T) {
	for _, halfClose := range []bool{false, true} {
		name := "close"
		if halfClose {
			name = "closeSend then close"
		}
		t.Run(name, func(t *testing.T) {
			var accepted atomic.Int64
			base := acceptAndClose(t, websocket.StatusGoingAway, &accepted)
			policy := wsrpc.ReconnectPolicy{MaxAttempts: -1, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
			client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithReconnect(policy), wsrpc.WithCodecs(codec.Proto))
			st, err := client.Echo(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			end := make(chan error, 1)
			go func() { _, err := st.Receive(); end <- err }() // no message comes: it reconnects until the call ends

			// Senders: until ending is set, every Send is checked.
			var ending atomic.Bool
			var unavailable atomic.Int64
			stop := make(chan struct{})
			var senders sync.WaitGroup
			for range 2 {
				senders.Add(1)
				go func() {
					defer senders.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						err := st.Send(&testingv1.EchoRequest{Text: "x"})
						if ending.Load() {
							continue // it may have met the CloseSend or Close
						}
						switch {
						case err == nil:
						case wsrpc.CodeOf(err) == wsrpc.CodeUnavailable:
							unavailable.Add(1)
						default:
							t.Errorf("Send during reconnection = %v (code %v), want nil or unavailable", err, wsrpc.CodeOf(err))
						}
						time.Sleep(100 * time.Microsecond)
					}
				}()
			}
			defer func() { close(stop); senders.Wait() }()

			// Sends have met lost connections, and the call has reconnected
			// a number of times.
			deadline := time.Now().Add(handlerBound)
			for unavailable.Load() < 10 || accepted.Load() < 10 {
				if time.Now().After(deadline) {
					t.Fatalf("%v later, %d unavailable Sends over %d connections, want 10 over 10", handlerBound, unavailable.Load(), accepted.Load())
				}
				time.Sleep(time.Millisecond)
			}
			ending.Store(true)
			want := []wsrpc.Code{wsrpc.CodeCanceled, wsrpc.CodeUnavailable}
			if halfClose {
				if err := st.CloseSend(); err != nil {
					t.Errorf("CloseSend while reconnecting = %v, want nil", err)
				}
				if err := st.Send(&testingv1.EchoRequest{Text: "late"}); wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
					t.Errorf("Send after CloseSend = %v, want failed_precondition", err)
				}
			}
			if err := st.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
			err = waitSeen(t, end, "Receive did not return after Close")
			if !slices.Contains(want, wsrpc.CodeOf(err)) {
				t.Errorf("Receive = %v (code %v), want one of %v", err, wsrpc.CodeOf(err), want)
			}
			if wsrpc.CodeOf(err) == wsrpc.CodeCanceled && closedHereErr(err, " (normal closure)") != nil {
				t.Errorf("Receive = %v, want canceled saying this side closed the stream", err)
			}
			if !halfClose {
				if serr := st.Send(&testingv1.EchoRequest{Text: "late"}); serr == nil || serr.Error() != err.Error() {
					t.Errorf("Receive = %v, then Send = %v: want the same end", err, serr)
				}
			}
			t.Logf("Receive = %v; %d unavailable Sends over %d connections", err, unavailable.Load(), accepted.Load())
		})
	}
}

// TestReconnectNotForInvalidRequest: a handshake request websocket.Dial
// cannot make (here a header value with a CR an interceptor added) fails
// the call with invalid_argument at once. It was unavailable, the code of
// a lost connection, which WithReconnect's redials and callers' own retry
// loops take as worth the same doomed request again.
func TestReconnectNotForInvalidRequest(t *testing.T) {
	h := wsrpc.NewBidiHandler("/t/E", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		return nil
	})
	var handshakes atomic.Int64
	badHeader := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			handshakes.Add(1)
			hs.Request.Header.Set("X-Token", "a\r\nX-Injected: 1")
			return next(ctx, hs)
		}
	})
	var reconnects atomic.Int64
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h)+"/t/E", "/t/E",
		wsrpc.WithInterceptors(badHeader),
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond,
			OnReconnect: func(int, error) { reconnects.Add(1) }}))
	_, err := c.Call(testContext(t))
	if wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument || !errors.Is(err, websocket.ErrInvalidDial) {
		t.Fatalf("Call = %v, want invalid_argument wrapping websocket.ErrInvalidDial", err)
	}
	if n, r := handshakes.Load(), reconnects.Load(); n != 1 || r != 0 {
		t.Errorf("%d handshakes, %d reconnections; want 1 and none", n, r)
	}
}

// TestReconnectIntoDarkServer guards reconnection into a server that
// accepts TCP and never answers: each attempt's handshake is bounded (by
// ReconnectPolicy.DialTimeout, or by a handshake interceptor's own
// timeout), and an attempt that runs out of it is a lost connection,
// retried with the backoff, not the end of the call. The first such
// attempt used to hang for the runtime's 30 s handshake timeout, and its
// deadline_exceeded (an interceptor's bound gave the same) ended a call
// that had no deadline of its own.
func TestReconnectIntoDarkServer(t *testing.T) {
	bound := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			if _, err := next(hctx, hs); err != nil {
				return ctx, err
			}
			return ctx, nil
		}
	})
	for _, tc := range []struct {
		name        string
		dialTimeout time.Duration
		opts        []wsrpc.Option
	}{
		{"DialTimeout", 100 * time.Millisecond, nil},
		{"HandshakeInterceptor", 0, []wsrpc.Option{wsrpc.WithInterceptors(bound)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(serve(t))
			if err != nil {
				t.Fatal(err)
			}
			p := newBlackhole(t, u.Host)
			var stream *wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
			var failed []error
			policy := wsrpc.ReconnectPolicy{InitialDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 10,
				DialTimeout: tc.dialTimeout,
				OnReconnect: func(_ int, err error) {
					if err != nil {
						failed = append(failed, err)
						if len(failed) == 2 {
							p.hold.Store(false) // the server answers again
						}
						return
					}
					if serr := stream.Send(&testingv1.EchoRequest{Text: "resumed"}); serr != nil {
						t.Errorf("send after reconnect: %v", serr)
					}
				}}
			client := testingv1wsrpc.NewStreamServiceClient(nil, "http://"+p.addr, append(tc.opts, wsrpc.WithReconnect(policy))...)
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
			p.hold.Store(true)
			p.cut()
			res, err := stream.Receive()
			if err != nil || res.GetText() != "resumed" {
				t.Fatalf("after the dark attempts %v: %v, %v (code %v); want the echo on a new connection", failed, res, err, wsrpc.CodeOf(err))
			}
			for _, err := range failed {
				if wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
					t.Errorf("OnReconnect got %v (code %v); an attempt that timed out is a lost connection, unavailable", err, wsrpc.CodeOf(err))
				}
			}
		})
	}
}
