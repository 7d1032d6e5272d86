package sse_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestCloseAsReconnectTimerFires: a Close that comes as the reconnection
// timer fires starts no reconnection, and OnReconnect is not called: Next
// returns the context's error. select took the timer as often as Close,
// ready together, and the attempt then ran on the cancelled context,
// reported to OnReconnect as "context canceled".
func TestCloseAsReconnectTimerFires(t *testing.T) {
	var rc rawConns
	srv := newServer(t, rc.handler(t, stream("id: 1\ndata: a\n\n")))
	var reconnects []string
	opts := fast(sse.ClientOptions{OnReconnect: func(attempt int, err error) {
		reconnects = append(reconnects, fmt.Sprint(attempt, " ", err))
	}})
	s := sse.NewSession(context.Background(), srv.URL, opts)
	defer s.Close()
	sse.OnReconnectTimer(t, func(got *sse.Session) {
		if got == s {
			s.Close()
		}
	})
	if ev, err := s.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	// The stream ends: the session waits to reconnect, and is closed as
	// its timer fires.
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after Close = %v, want context.Canceled", err)
	}
	if reconnects != nil {
		t.Errorf("OnReconnect calls %q after Close, want none", reconnects)
	}
	if n := rc.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
