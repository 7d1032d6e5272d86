package websocket

// Closing a connection whose worker lingers: the worker holds the read
// lock while it waits (pollEntry.lingerFill), so Close and Shutdown from
// other goroutines cannot drain the peer's input themselves.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Close from another goroutine while a worker lingers (Linger far beyond
// the close timeout): the lingering worker reads the peer's close frame,
// so Close returns nil; with a peer that never answers, Close still ends
// at its close timeout. Either way OnClose runs and the place is given
// back.
func TestPollerCloseWhileLingering(t *testing.T) {
	for _, answer := range []bool{true, false} {
		t.Run(fmt.Sprintf("answer=%v", answer), func(t *testing.T) {
			p := lingerPoller(t, &PollerOptions{Linger: time.Minute})
			c, peer, br := serverPair(t, 300*time.Millisecond)
			closed := make(chan error, 1)
			if err := p.Serve(c, echoHandler(closed)); err != nil {
				t.Fatal(err)
			}
			exchange(t, peer, br, []byte("busy"))
			waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
			done := make(chan error, 1)
			go func() { done <- c.Close(StatusNormalClosure, "") }()
			if f, err := readWireFrame(peer, br, 5*time.Second); err != nil || f.op != OpClose {
				t.Fatalf("peer read op %v, %v; want our close frame", f.op, err)
			}
			if answer {
				if _, err := peer.Write(clientClose(StatusNormalClosure)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if answer != (err == nil) {
					t.Fatalf("Close: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close waits on a lingering worker")
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("no OnClose")
			}
			if n := p.lingering.Load(); n != 0 {
				t.Fatalf("%d lingering after OnClose", n)
			}
		})
	}
}

// Shutdown while a worker lingers: the peer's answer to 1001 reaches
// OnClose and Shutdown returns without waiting out the linger.
func TestPollerShutdownWhileLingering(t *testing.T) {
	p := lingerPoller(t, &PollerOptions{Linger: time.Minute})
	c, peer, br := serverPair(t, time.Second)
	closed := make(chan error, 1)
	if err := p.Serve(c, echoHandler(closed)); err != nil {
		t.Fatal(err)
	}
	exchange(t, peer, br, []byte("busy"))
	waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
	go func() {
		if f, err := readWireFrame(peer, br, 5*time.Second); err == nil && f.op == OpClose {
			_, _ = peer.Write(clientClose(StatusGoingAway))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var ce *CloseError
	if err := <-closed; !errors.As(err, &ce) || ce.Code != StatusGoingAway {
		t.Fatalf("OnClose: %v, want the peer's 1001", err)
	}
	if n := p.lingering.Load(); n != 0 {
		t.Fatalf("%d lingering after Shutdown", n)
	}
}
