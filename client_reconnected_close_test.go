package wsrpc_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestCloseAfterReconnectClosedHere: Close on a WithReconnect call whose
// connection in place is a reconnection (live, not reconnecting) ends
// the call as on its first connection: the Receive in progress, and
// every later Receive and Send, fail with canceled, saying this side
// closed the stream. They said "context canceled", the caller never
// having cancelled anything: a reconnection's connection lives on the
// redialer's context, which Close cancels, and callErr took that for the
// call's context ending.
func TestCloseAfterReconnectClosedHere(t *testing.T) {
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("/bidi", wsrpc.NewBidiHandler("/r.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if calls.Add(1) == 1 {
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "go away")
		}
		if err := s.Send(&testingv1.EchoResponse{Text: "again"}); err != nil {
			return err
		}
		for {
			// Reads the client's close, so that its Close returns at
			// once.
			if _, err := s.Receive(); err != nil {
				return nil
			}
		}
	}))
	mux.Handle("/server", wsrpc.NewServerStreamHandler("/r.v1/Server", func(ctx context.Context, req *testingv1.EchoRequest, s *wsrpc.ServerStream[testingv1.EchoResponse]) error {
		if calls.Add(1) == 1 {
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "go away")
		}
		if err := s.Send(&testingv1.EchoResponse{Text: "again"}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	base := newServer(t, mux)
	for _, kind := range []string{"bidi", "server"} {
		for _, inProgress := range []bool{false, true} {
			name := kind + "/idle"
			if inProgress {
				name = kind + "/receiving"
			}
			t.Run(name, func(t *testing.T) {
				calls.Store(0)
				opts := []wsrpc.Option{
					wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}),
				}
				ctx := testContext(t)
				var receive func() error
				var send func() error
				var closeIt func() error
				if kind == "bidi" {
					c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/bidi", "/r.v1/Bidi", opts...)
					st, err := c.Call(ctx)
					if err != nil {
						t.Fatal(err)
					}
					receive = func() error { _, err := st.Receive(); return err }
					send = func() error { return st.Send(&testingv1.EchoRequest{Text: "x"}) }
					closeIt = st.Close
				} else {
					c := wsrpc.NewServerStreamClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/server", "/r.v1/Server", opts...)
					st, err := c.Call(ctx, &testingv1.EchoRequest{Text: "x"})
					if err != nil {
						t.Fatal(err)
					}
					receive = func() error { _, err := st.Receive(); return err }
					closeIt = st.Close
				}
				// The first connection ends with 4014; the message comes
				// on the second.
				if err := receive(); err != nil {
					t.Fatalf("Receive across the reconnection: %v", err)
				}
				if calls.Load() != 2 {
					t.Fatalf("%d calls reached the server, want 2", calls.Load())
				}
				var rerr error
				if inProgress {
					got := make(chan error, 1)
					go func() { got <- receive() }()
					_ = closeIt()
					rerr = waitSeen(t, got, "Receive did not return after Close")
				} else {
					_ = closeIt()
					rerr = receive()
				}
				checks := []struct {
					what string
					err  error
				}{{"Receive", rerr}, {"later Receive", receive()}}
				if send != nil {
					checks = append(checks, struct {
						what string
						err  error
					}{"later Send", send()})
				}
				for _, c := range checks {
					if err := closedHereErr(c.err, " (normal closure)"); err != nil {
						t.Errorf("%s = %v", c.what, err)
					}
				}
			})
		}
	}
}
