package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
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
