package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestFinishedCallsReleased: a call that has ended for good (read to its
// end, failed, or answered by CloseAndReceive) releases its connection
// without Close. Each connection's context is a child of the caller's,
// and the runtime watches it with context.AfterFunc: until it is
// cancelled, a long-lived caller context keeps every finished call
// reachable (about 2.7 KB each). The test records each connection's
// context (the one OnConnect sees), checks it was cancelled, then checks
// that the garbage collector frees it while the caller's context lives on.
func TestFinishedCallsReleased(t *testing.T) {
	srv := serve(t)
	var (
		mu   sync.Mutex
		ctxs []context.Context
	)
	client := testingv1wsrpc.NewStreamServiceClient(nil, srv, wsrpc.WithOnConnect(func(ctx context.Context, _ *wsrpc.ConnInfo) {
		mu.Lock()
		ctxs = append(ctxs, ctx)
		mu.Unlock()
	}))
	appCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	calls := []struct {
		name string
		run  func() error
	}{
		{"server stream to its end", func() error {
			st, err := client.Count(appCtx, &testingv1.CountRequest{Count: 2})
			if err != nil {
				return err
			}
			for _, err := range st.All() {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"server stream failed", func() error {
			st, err := client.Count(appCtx, &testingv1.CountRequest{Count: 2, FailAt: 1, FailCode: uint32(wsrpc.CodeAborted)})
			if err != nil {
				return err
			}
			for _, err := range st.All() {
				if wsrpc.CodeOf(err) == wsrpc.CodeAborted {
					return nil
				}
			}
			return errors.New("the handler's error did not arrive")
		}},
		{"bidi to its end", func() error {
			st, err := client.Echo(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.EchoRequest{Text: "a"}); err != nil {
				return err
			}
			if err := st.CloseSend(); err != nil {
				return err
			}
			for _, err := range st.All() {
				if err != nil {
					return err
				}
			}
			// Released, the stream still reports its end to a late Send.
			if err := st.Send(&testingv1.EchoRequest{}); !errors.Is(err, io.EOF) {
				return errors.New("Send after the end: " + errString(err) + ", want io.EOF")
			}
			return nil
		}},
		{"client stream answered", func() error {
			st, err := client.Sum(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
				return err
			}
			_, err = st.CloseAndReceive()
			return err
		}},
		{"client stream failed", func() error {
			st, err := client.Sum(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.SumRequest{N: -1}); err != nil {
				return err
			}
			if _, err = st.CloseAndReceive(); wsrpc.CodeOf(err) != wsrpc.CodeOutOfRange {
				return errors.New("CloseAndReceive: " + errString(err) + ", want out_of_range")
			}
			return nil
		}},
	}
	const rounds = 10
	for range rounds {
		for _, c := range calls {
			if err := c.run(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}

	mu.Lock()
	recorded := ctxs
	ctxs = nil
	mu.Unlock()
	if len(recorded) != rounds*len(calls) {
		t.Fatalf("%d connections, want %d", len(recorded), rounds*len(calls))
	}
	var freed atomic.Int64
	for i, ctx := range recorded {
		if ctx.Err() == nil {
			t.Errorf("call %d (%s) ended but its connection's context is live", i, calls[i%len(calls)].name)
		}
		runtime.SetFinalizer(ctx, func(context.Context) { freed.Add(1) })
	}
	recorded = nil
	// Bounded: finalizers run on their own goroutine after a collection.
	for i := 0; i < 100 && freed.Load() < rounds*int64(len(calls)); i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := freed.Load(); n < rounds*int64(len(calls)) {
		t.Errorf("%d of %d finished calls still reachable from the caller's live context", rounds*int64(len(calls))-n, rounds*len(calls))
	}
	if appCtx.Err() != nil {
		t.Fatal("the caller's context ended during the test: the check above proved nothing")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
