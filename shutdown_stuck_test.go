package wsrpc_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestShutdownNamesStuckSessions: when the deadline passes with handlers
// that ignore both 1001 and their context, Tracker.Shutdown and Shutdown
// still report ctx's error (errors.Is) but name the sessions still
// running, counted by procedure, most first, at most five procedures.
// They returned a bare "context deadline exceeded", and an operator found
// the stuck handlers only in a goroutine dump.
func TestShutdownNamesStuckSessions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tracker := wsrpc.NewTracker()
	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	stuck := func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		<-release
		return nil
	}
	// Sessions per procedure; ties are named in procedure order.
	load := []struct {
		proc string
		n    int
	}{{"/t.Stuck/E", 1}, {"/t.Stuck/B", 3}, {"/t.Stuck/G", 1}, {"/t.Stuck/A", 4}, {"/t.Stuck/D", 1}, {"/t.Stuck/C", 2}, {"/t.Stuck/F", 1}}
	mux := http.NewServeMux()
	for _, l := range load {
		mux.Handle(l.proc, wsrpc.NewBidiHandler(l.proc, stuck, wsrpc.WithTracker(tracker)))
	}
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)
	ctx := testContext(t)
	total := 0
	for _, l := range load {
		c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+l.proc, l.proc)
		for range l.n {
			st, err := c.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			total++
		}
	}
	for tracker.Len() != total {
		if ctx.Err() != nil {
			t.Fatalf("%d sessions tracked, want %d", tracker.Len(), total)
		}
		time.Sleep(time.Millisecond)
	}

	const want = ": 13 sessions still running: /t.Stuck/A ×4, /t.Stuck/B ×3, /t.Stuck/C ×2, /t.Stuck/D ×1, /t.Stuck/E ×1 and 2 more in 2 other procedures"
	sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := tracker.Shutdown(sctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Tracker.Shutdown = %v, want context.DeadlineExceeded naming the sessions (…%s)", err, want)
	}

	// The handlers still run after the deadline; Shutdown, called again
	// with a cancelled context, names them again and reports Canceled.
	cctx, cancelNow := context.WithCancel(ctx)
	cancelNow()
	err = wsrpc.Shutdown(cctx, srv, tracker)
	if !errors.Is(err, context.Canceled) || err.Error() != "wsrpc: shutdown: context canceled"+want {
		t.Errorf("Shutdown = %v, want context.Canceled naming the sessions (…%s)", err, want)
	}
	if n := tracker.Len(); n != total {
		t.Errorf("Len = %d after the deadline, want the %d stuck sessions", n, total)
	}
	waitSeen(t, served, "Serve never returned")

	close(release)
	released = true
	if err := tracker.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown once the handlers are released: %v", err)
	}
}
