package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestReconnectResumesFromRequest guards the resume point docs/reliability.md
// and WithReconnect's doc teach for server-streaming calls: each
// reconnection sends the request the call was made with, encoded anew, on
// the goroutine calling Receive, so a client that sets the request's
// resume field after each Receive (here WatchRequest.Since, the last tick
// received) gets every tick exactly once, in order, across cuts — some
// with nothing in flight, some with ticks the handler sent into the dark
// path before the cut (lost with the connection, and sent again from the
// resume point). Run with -race: the request is written between Receives
// and read inside them, with no lock.
func TestReconnectResumesFromRequest(t *testing.T) {
	const total = 1000
	// Each cut is made once the client has received cutAt. Where hold is
	// further on, the path goes dark first, the handler sends on up to
	// hold into it, and the cut follows: those ticks are lost. The
	// handler holds at hold until the cut, so the call is live when it
	// comes.
	type cut struct {
		cutAt, hold     int64
		dark, held, cut chan struct{}
		once            sync.Once
	}
	cuts := []*cut{{cutAt: 150, hold: 150}, {cutAt: 300, hold: 400}, {cutAt: 700, hold: 700}, {cutAt: 850, hold: 900}}
	for _, c := range cuts {
		c.dark, c.held, c.cut = make(chan struct{}), make(chan struct{}), make(chan struct{})
	}
	wait := func(ctx context.Context, ch chan struct{}) error {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var mu sync.Mutex
	var since []int64 // the resume points the handler was asked for
	h := wsrpc.NewServerStreamHandler("/t/Resume", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.Tick]) error {
		mu.Lock()
		since = append(since, req.GetSince())
		mu.Unlock()
		for seq := req.GetSince() + 1; seq <= total; seq++ {
			if err := s.Send(&testingv1.Tick{Seq: seq}); err != nil {
				return err
			}
			for _, c := range cuts {
				if seq == c.cutAt && c.hold > c.cutAt {
					if err := wait(ctx, c.dark); err != nil {
						return err
					}
				}
				if seq == c.hold {
					c.once.Do(func() { close(c.held) })
					if err := wait(ctx, c.cut); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	u, err := url.Parse(newServer(t, h))
	if err != nil {
		t.Fatal(err)
	}
	bh := newBlackhole(t, u.Host)
	var reconnected int // OnReconnect runs on this goroutine, in Receive
	policy := wsrpc.ReconnectPolicy{InitialDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
		OnReconnect: func(_ int, err error) {
			if err == nil {
				reconnected++
			}
		}}
	c := wsrpc.NewServerStreamClient[testingv1.WatchRequest, testingv1.Tick](nil, "http://"+bh.addr+"/t/Resume", "/t/Resume", wsrpc.WithReconnect(policy))
	req := &testingv1.WatchRequest{Room: "r"}
	st, err := c.Call(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	next := 0
	for want := int64(1); want <= total; want++ {
		res, err := st.Receive()
		if err != nil {
			t.Fatalf("after tick %d (%d reconnections): %v (code %v)", want-1, reconnected, err, wsrpc.CodeOf(err))
		}
		if got := res.GetSeq(); got != want {
			t.Fatalf("got tick %d, want %d (%d reconnections)", got, want, reconnected)
		}
		req.Since = res.GetSeq() // the resume point the next reconnection sends
		if next < len(cuts) && cuts[next].cutAt == want {
			c := cuts[next]
			if c.hold > c.cutAt {
				bh.goDark()
				close(c.dark)
				select {
				case <-c.held:
				case <-time.After(10 * time.Second):
					t.Fatalf("the handler did not send up to %d", c.hold)
				}
			}
			bh.cut()
			close(c.cut)
			next++
		}
	}
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("after tick %d: %v, want io.EOF", total, err)
	}
	if reconnected != len(cuts) {
		t.Errorf("%d reconnections, want %d (one per cut)", reconnected, len(cuts))
	}
	mu.Lock()
	defer mu.Unlock()
	want := []int64{0}
	for _, c := range cuts {
		want = append(want, c.cutAt)
	}
	if !slices.Equal(since, want) {
		t.Errorf("the handler was asked to resume from %v, want %v (from the start, then from each cut)", since, want)
	}
}

// TestBidiResumeSentFirst guards BidiStreamForClient.SetResume: on each
// connection WithReconnect opens, the resume messages reach the handler
// before any message another goroutine sends. OnReconnect, which runs
// once Send already goes to the new connection, could not promise that
// (0.6–9% of sessions got a concurrent sender's message first).
func TestBidiResumeSentFirst(t *testing.T) {
	const sessions, perSession = 25, 4
	var mu sync.Mutex
	var firsts [][]string // the first two texts of each session
	var sessionCount int
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.StreamServiceEchoPath, wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure,
		func(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			var got []string
			for range perSession {
				m, err := st.Receive()
				if err != nil {
					return err
				}
				got = append(got, m.GetText())
				if err := st.Send(&testingv1.EchoResponse{Text: m.GetText()}); err != nil {
					return err
				}
			}
			mu.Lock()
			firsts = append(firsts, got[:2])
			sessionCount++
			last := sessionCount >= sessions
			if sessionCount == sessions {
				close(done)
			}
			mu.Unlock()
			if last {
				for { // until the client's Close
					if _, err := st.Receive(); err != nil {
						return nil
					}
				}
			}
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "moving the session") // the client reconnects
		}))
	base := newServer(t, mux)
	policy := wsrpc.ReconnectPolicy{MaxAttempts: -1, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithReconnect(policy))
	ctx := testContext(t)
	st, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var resumes atomic.Int64
	st.SetResume(func() []*testingv1.EchoRequest {
		resumes.Add(1)
		return []*testingv1.EchoRequest{{Text: "join"}, {Text: "resume"}}
	})
	for _, text := range []string{"join", "resume"} { // the first connection's are the caller's
		if err := st.Send(&testingv1.EchoRequest{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	// Another goroutine sends all the time, reconnections or not.
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := st.Send(&testingv1.EchoRequest{Text: "telemetry"})
			if err != nil && wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
				t.Errorf("Send = %v, want nil or unavailable", err)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	defer func() { close(stop); sender.Wait() }()
	received := make(chan error, 1)
	go func() {
		for {
			if _, err := st.Receive(); err != nil {
				received <- err
				return
			}
		}
	}()
	select {
	case <-done:
	case err := <-received:
		t.Fatalf("Receive = %v before %d sessions", err, sessions)
	case <-time.After(handlerBound):
		t.Fatalf("%v later, fewer than %d sessions", handlerBound, sessions)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, f := range firsts {
		if !slices.Equal(f, []string{"join", "resume"}) {
			t.Errorf("session %d began %q, want [join resume]", i, f)
		}
	}
	if n := resumes.Load(); n < sessions-1 {
		t.Errorf("SetResume's function ran %d times for %d reconnections", n, sessions-1)
	}
}

// TestResumePanicClosesConnection: a SetResume function that panics
// leaves no connection behind: the one it was given is closed, and its
// OnClose runs, before the panic reaches the goroutine calling Receive.
func TestResumePanicClosesConnection(t *testing.T) {
	var sessions atomic.Int64
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.StreamServiceEchoPath, wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure,
		func(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			if sessions.Add(1) == 1 {
				return wsrpc.Errorf(wsrpc.CodeUnavailable, "moving the session") // the client reconnects
			}
			for {
				if _, err := st.Receive(); err != nil {
					return nil
				}
			}
		}))
	base := newServer(t, mux)
	closes := make(chan wsrpc.CloseInfo, 4)
	policy := wsrpc.ReconnectPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithReconnect(policy),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))
	st, err := client.Echo(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetResume(func() []*testingv1.EchoRequest { panic("resume") })
	func() {
		defer func() {
			if p := recover(); p != "resume" {
				t.Errorf("Receive's panic = %v, want the resume function's", p)
			}
		}()
		_, _ = st.Receive()
	}()
	waitSeen(t, closes, "OnClose of the first connection never ran")
	ci := waitSeen(t, closes, "OnClose of the connection given to the resume function never ran")
	if wsrpc.CodeOf(ci.Err) != wsrpc.CodeInternal {
		t.Errorf("OnClose = %+v, want internal", ci)
	}
}
