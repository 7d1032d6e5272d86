package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// reconnectingServer serves a bidirectional and a server-streaming method
// whose first call of each round ends with unavailable (4014), which
// WithReconnect retries; later calls stay open. With holdDial set, the
// handshake of every later connection is held until the client gives up
// on it (or the test ends), and reported on dialing: the client is then
// dialling.
type reconnectingServer struct {
	calls    atomic.Int32
	holdDial atomic.Bool
	dialing  chan struct{}
}

func newReconnectingServer(t *testing.T) (*reconnectingServer, string) {
	rs := &reconnectingServer{dialing: make(chan struct{}, 1)}
	done := make(chan struct{})
	hold := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if rs.calls.Load() >= 1 && rs.holdDial.Load() {
				rs.dialing <- struct{}{}
				select {
				case <-ctx.Done():
				case <-done:
				}
				return ctx, wsrpc.Errorf(wsrpc.CodeUnavailable, "held")
			}
			return next(ctx, hs)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/bidi", wsrpc.NewBidiHandler("/r.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if rs.calls.Add(1) == 1 {
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "go away")
		}
		<-ctx.Done()
		return nil
	}, wsrpc.WithInterceptors(hold)))
	mux.Handle("/server", wsrpc.NewServerStreamHandler("/r.v1/Server", func(ctx context.Context, req *testingv1.EchoRequest, s *wsrpc.ServerStream[testingv1.EchoResponse]) error {
		if rs.calls.Add(1) == 1 {
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "go away")
		}
		<-ctx.Done()
		return nil
	}, wsrpc.WithInterceptors(hold)))
	base := newServer(t, mux)
	// Before the server's Close, which waits for held handshakes.
	t.Cleanup(func() { close(done) })
	return rs, base
}

// closedHereErr checks that err says this side closed the stream, with
// want ("(normal closure)", or ": aborted: user left" for CloseWith).
func closedHereErr(err error, want string) error {
	if err == nil || errors.Is(err, io.EOF) || wsrpc.CodeOf(err) != wsrpc.CodeCanceled ||
		!strings.Contains(err.Error(), "stream closed by this side"+want) {
		return fmt.Errorf("%v (code %v), want canceled, %q", err, wsrpc.CodeOf(err), "stream closed by this side"+want)
	}
	return nil
}

// TestCloseDuringReconnectClosedHere: Close or CloseWith on a
// WithReconnect call that is reconnecting — waiting out the backoff, or
// dialling — ends it as on a live connection: the Receive in progress,
// every later Receive and every later Send fail with canceled, saying
// this side closed the stream and how. The Receive said "context
// canceled" (the context Close cancels) and Send the lost connection's
// "unavailable: go away", the code callers retry on.
func TestCloseDuringReconnectClosedHere(t *testing.T) {
	rs, base := newReconnectingServer(t)
	for _, kind := range []string{"bidi", "server"} {
		for _, phase := range []string{"wait", "dial"} {
			for _, with := range []bool{false, true} {
				if with && kind == "server" {
					continue // ServerStreamForClient has no CloseWith
				}
				name := kind + "/" + phase + "/Close"
				want := " (normal closure)"
				if with {
					name, want = kind+"/"+phase+"/CloseWith", ": aborted: user left"
				}
				t.Run(name, func(t *testing.T) {
					rs.holdDial.Store(phase == "dial")
					delay := time.Hour // the wait outlasts the test
					if phase == "dial" {
						delay = time.Millisecond
					}
					for i := range 15 {
						rs.calls.Store(0)
						lost := make(chan struct{}, 4)
						opts := []wsrpc.Option{
							wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: delay, MaxDelay: delay}),
							wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { lost <- struct{}{} }),
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
							if with {
								closeIt = func() error { return st.CloseWith(wsrpc.CodeAborted, "user left") }
							}
						} else {
							c := wsrpc.NewServerStreamClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/server", "/r.v1/Server", opts...)
							st, err := c.Call(ctx, &testingv1.EchoRequest{Text: "x"})
							if err != nil {
								t.Fatal(err)
							}
							receive = func() error { _, err := st.Receive(); return err }
							closeIt = st.Close
						}
						got := make(chan error, 1)
						go func() { got <- receive() }()
						// The first connection's OnClose runs before the
						// reconnection's wait.
						waitSeen(t, lost, "the first connection was never lost")
						if phase == "dial" {
							waitSeen(t, rs.dialing, "the client never dialled again")
						}
						_ = closeIt()
						rerr := waitSeen(t, got, "Receive did not return after Close")
						checks := []struct {
							what string
							err  error
						}{{"Receive in progress", rerr}, {"later Receive", receive()}}
						if send != nil {
							checks = append(checks, struct {
								what string
								err  error
							}{"later Send", send()})
						}
						for _, c := range checks {
							if err := closedHereErr(c.err, want); err != nil {
								t.Fatalf("run %d: %s = %v", i, c.what, err)
							}
						}
					}
				})
			}
		}
	}
}

// TestCancelDuringReconnectSendCanceled: a WithReconnect call whose
// context ends while it waits to reconnect ends with canceled, for
// Receive and for a later Send, which reported the lost connection's
// "unavailable: go away"; a Close after it changes neither (the context
// came first).
func TestCancelDuringReconnectSendCanceled(t *testing.T) {
	rs, base := newReconnectingServer(t)
	lost := make(chan struct{}, 4)
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/bidi", "/r.v1/Bidi",
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: time.Hour, MaxDelay: time.Hour}),
		wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) { lost <- struct{}{} }))
	rs.calls.Store(0)
	ctx, cancel := context.WithCancel(testContext(t))
	st, err := c.Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { _, err := st.Receive(); got <- err }()
	waitSeen(t, lost, "the first connection was never lost")
	cancel()
	rerr := waitSeen(t, got, "Receive did not return after the cancel")
	serr := st.Send(&testingv1.EchoRequest{Text: "x"})
	_ = st.Close()
	_, rerr2 := st.Receive()
	serr2 := st.Send(&testingv1.EchoRequest{Text: "x"})
	for _, c := range []struct {
		what string
		err  error
	}{{"Receive in progress", rerr}, {"later Send", serr}, {"Receive after Close", rerr2}, {"Send after Close", serr2}} {
		if wsrpc.CodeOf(c.err) != wsrpc.CodeCanceled || strings.Contains(c.err.Error(), "closed by this side") {
			t.Errorf("%s = %v (code %v), want the context's canceled", c.what, c.err, wsrpc.CodeOf(c.err))
		}
	}
}

// TestCloseCrossingServerEndAgree: the server ends the call (returning
// nil, or aborted) as the client closes it. Whichever came first,
// Receive and a later Send report the same end: the server's (io.EOF, or
// its aborted) or this side's close (canceled, "stream closed by this
// side"). Send said the close while Receive said the server's aborted
// (serverEnd) in a few runs in a hundred, or its io.EOF when the close
// crossed Receive's check.
func TestCloseCrossingServerEndAgree(t *testing.T) {
	for _, srvCode := range []wsrpc.Code{0, wsrpc.CodeAborted} {
		t.Run(fmt.Sprint(srvCode), func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/bidi", wsrpc.NewBidiHandler("/r.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
				if _, err := s.Receive(); err != nil {
					return err
				}
				if srvCode == 0 {
					return nil
				}
				return wsrpc.Errorf(srvCode, "server ends")
			}))
			base := newServer(t, mux)
			c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/bidi", "/r.v1/Bidi")
			ctx := testContext(t)
			seen := map[string]int{}
			for range 150 {
				st, err := c.Call(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got := make(chan error, 1)
				go func() { _, err := st.Receive(); got <- err }()
				_ = st.Send(&testingv1.EchoRequest{Text: "go"})
				time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
				_ = st.Close()
				rerr := waitSeen(t, got, "Receive did not return after Close")
				serr := st.Send(&testingv1.EchoRequest{Text: "x"})
				seen[fmt.Sprintf("Receive %v | Send %v", rerr, serr)]++
				server := (srvCode == 0 && rerr == io.EOF) ||
					(srvCode != 0 && wsrpc.CodeOf(rerr) == srvCode && strings.Contains(rerr.Error(), "server ends"))
				if !server && closedHereErr(rerr, " (normal closure)") != nil {
					t.Errorf("Receive = %v, want the server's end or this side's close", rerr)
				}
				if serr == nil || rerr == nil || serr.Error() != rerr.Error() || (rerr == io.EOF) != (serr == io.EOF) {
					t.Errorf("Receive = %v, then Send = %v: want the same end", rerr, serr)
				}
			}
			t.Logf("%v", seen)
		})
	}
}
