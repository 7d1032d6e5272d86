package websocket

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/rawserver"
)

// blackhole accepts TCP connections on 127.0.0.1, reads the request and
// never answers, until the test ends.
func blackhole(t *testing.T) string {
	t.Helper()
	return rawserver.Start(t, func(c net.Conn, _ *http.Request) { rawserver.Hold(c) })
}

// TestDialOwnTimeoutIsNetworkTimeout: when the caller's ctx has no
// deadline, Dial's own bound (DefaultHandshakeTimeout) expiring against a
// server that accepts and never answers is a network timeout, wrapping
// os.ErrDeadlineExceeded, and not context.DeadlineExceeded, which said
// the caller's deadline passed though it set none (the typed layer
// reported deadline_exceeded for a server that was unavailable). The
// caller's own deadline and cancel still give the caller's ctx error.
func TestDialOwnTimeoutIsNetworkTimeout(t *testing.T) {
	const bound = 200 * time.Millisecond
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = bound
	addr := blackhole(t)
	hangingDial := &DialOptions{NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done() // a SYN nobody answers
		return nil, ctx.Err()
	}}

	for _, tc := range []struct {
		name   string
		opts   *DialOptions
		ctx    func() (context.Context, context.CancelFunc)
		caller error // the caller's ctx error expected; nil for Dial's own bound
	}{
		{name: "no answer to the upgrade, no deadline", ctx: func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		{name: "TCP dial hangs, no deadline", opts: hangingDial, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
		{name: "caller's deadline", ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), bound)
		}, caller: context.DeadlineExceeded},
		{name: "caller's cancel", ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(bound/2, cancel)
			return ctx, cancel
		}, caller: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() {
				c, _, err := Dial(ctx, "ws://"+addr+"/", tc.opts)
				if c != nil {
					c.CloseNow()
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Dial still blocked 20 s after a 200 ms bound")
			}
			t.Logf("Dial: %v", err)
			if tc.caller != nil {
				if !errors.Is(err, tc.caller) {
					t.Fatalf("Dial = %v, want the caller's %v", err, tc.caller)
				}
				return
			}
			var ne net.Error
			if errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) ||
				!errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Dial = %v, want a network timeout (os.ErrDeadlineExceeded), not context.DeadlineExceeded", err)
			}
			if want := "websocket: no handshake within 200ms"; !strings.Contains(err.Error(), want) {
				t.Errorf("Dial = %q, want it to say %q", err, want)
			}
		})
	}
}
