package wsrpc_test

// The life of client calls under load and at their edges: Close during a
// blocked Receive, a response over the client's limit, many concurrent
// calls of every kind cancelled at random points, and Sends racing the
// handler's failure. Kept from session 19's audit of the client side.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// within runs fn and fails if it takes longer than d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v", what, d)
	}
}

// TestCloseDuringReceive: Close from another goroutine while a Receive
// is blocked returns promptly, the Receive returns promptly, and no
// goroutine is left behind.
func TestCloseDuringReceive(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/t/Quiet", wsrpc.NewBidiHandler("/t/Quiet", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for _, err := range s.All() {
			if err != nil {
				return err
			}
		}
		return nil
	}))
	base := newServer(t, mux)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the server's own goroutines are older
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Quiet", "/t/Quiet")
	for range 20 {
		st, err := c.Call(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { _, err := st.Receive(); got <- err }()
		time.Sleep(5 * time.Millisecond)
		within(t, 2*time.Second, "Close during Receive", func() {
			if err := st.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
		})
		select {
		case err := <-got:
			if err == nil {
				t.Fatalf("Receive after Close = nil")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Receive still blocked 2 s after Close")
		}
	}
}

// TestOversizedResponse: a response over the client's MaxMessageSize
// ends the call with resource_exhausted, and the handler's Send learns
// that the call ended.
func TestOversizedResponse(t *testing.T) {
	seen := make(chan error, 1)
	mux := http.NewServeMux()
	mux.Handle("/t/Big", wsrpc.NewServerStreamHandler("/t/Big", func(ctx context.Context, _ *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.EchoResponse]) error {
		err := s.Send(&testingv1.EchoResponse{Blob: make([]byte, 64<<10)})
		if err == nil {
			<-ctx.Done()
			err = context.Cause(ctx)
		}
		seen <- err
		return err
	}))
	base := newServer(t, mux)
	c := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.EchoResponse](nil, base+"/t/Big", "/t/Big",
		wsrpc.WithDialOptions(&websocket.DialOptions{MaxMessageSize: 1024}))
	st, err := c.Call(testContext(t), &testingv1.CountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Receive()
	if wsrpc.CodeOf(err) != wsrpc.CodeResourceExhausted {
		t.Fatalf("Receive = %v, want resource_exhausted", err)
	}
	waitSeen(t, seen, "handler") // the handler ends too
}

// TestManyCallsNoLeak: many concurrent calls of every kind, some
// cancelled mid-flight, leave no goroutine behind.
func TestManyCallsNoLeak(t *testing.T) {
	client := testingv1wsrpc.NewStreamServiceClient(nil, serve(t))
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the server's own goroutines are older
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				cctx, cancel := context.WithCancel(ctx)
				switch (w + i) % 4 {
				case 0:
					st, err := client.Echo(cctx)
					if err != nil {
						errs <- err
						cancel()
						return
					}
					_ = st.Send(&testingv1.EchoRequest{Text: "x"})
					_, _ = st.Receive()
					cancel()
					_, err = st.Receive()
					if wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
						errs <- errors.New("bidi after cancel: " + errString(err))
					}
				case 1:
					st, err := client.Count(cctx, &testingv1.CountRequest{Count: 5})
					if err != nil {
						errs <- err
						cancel()
						return
					}
					_, _ = st.Receive()
					_ = st.Close()
				case 2:
					st, err := client.Sum(cctx)
					if err != nil {
						errs <- err
						cancel()
						return
					}
					_ = st.Send(&testingv1.SumRequest{N: 1})
					cancel()
					_, _ = st.CloseAndReceive() // the answer may beat the cancel
				case 3:
					st, err := client.Echo(cctx)
					if err != nil {
						errs <- err
						cancel()
						return
					}
					_ = st.Send(&testingv1.EchoRequest{Text: "y"})
					_ = st.CloseSend()
					for _, err := range st.All() {
						if err != nil {
							errs <- err
						}
					}
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSendRacesReceiveEnd: a bidi client with a Receive pending and a
// Send loop; the handler fails after the first message. Counts what the
// Send loop's failing Send reports: always the handler's error, never a
// lost connection.
func TestSendRacesReceiveEnd(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/t/Reject", wsrpc.NewBidiHandler("/t/Reject", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if _, err := s.Receive(); err != nil {
			return err
		}
		return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "bad input")
	}))
	base := newServer(t, mux)
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Reject", "/t/Reject")
	counts := map[string]int{}
	for range 100 {
		st, err := c.Call(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		recv := make(chan error, 1)
		go func() { _, err := st.Receive(); recv <- err }()
		var sendErr error
		for range 5000 {
			if sendErr = st.Send(&testingv1.EchoRequest{Text: "x"}); sendErr != nil {
				break
			}
		}
		rerr := <-recv
		if sendErr == nil {
			// On a loaded machine all 5000 can go out before the reader
			// has taken in the close frame; once Receive has, a Send
			// must fail with the handler's error.
			sendErr = st.Send(&testingv1.EchoRequest{Text: "x"})
		}
		if wsrpc.CodeOf(rerr) != wsrpc.CodeInvalidArgument {
			t.Fatalf("Receive = %v", rerr)
		}
		key := "nil"
		if sendErr != nil {
			key = wsrpc.CodeOf(sendErr).String() + ": " + sendErr.Error()
		}
		counts[key]++
		_ = st.Close()
	}
	for k := range counts {
		if !strings.Contains(k, "bad input") {
			t.Errorf("a Send after the handler failed reported %q, not the handler's error", k)
		}
	}
}
