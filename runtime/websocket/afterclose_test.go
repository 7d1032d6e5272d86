package websocket_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// afterClosePair returns both ends of a connection on 127.0.0.1: the
// server's, accepted with opts and left alone (nothing reads it), and the
// client's. Both are closed when the test ends.
func afterClosePair(t *testing.T, opts *websocket.AcceptOptions) (server, client *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		conns <- c
		<-done
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	select {
	case s := <-conns:
		return s, c
	case <-time.After(10 * time.Second):
		t.Fatal("no server connection")
		return nil, nil
	}
}

// afterCloseErr registers a callback on c and returns the channel its
// error arrives on.
func afterCloseErr(c *websocket.Conn) (<-chan error, func() bool) {
	ch := make(chan error, 1)
	stop := c.AfterClose(func(err error) { ch <- err })
	return ch, stop
}

func awaitAfterClose(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("AfterClose's callback did not run within 10s of the close")
		return nil
	}
}

// TestAfterClose: the callback runs once the connection has closed,
// whoever closed it, with what a call on it now returns, also when nobody
// reads the connection (a handler that only sends, waiting on its
// context): a missed pong ended such a connection without anything to
// tell the handler.
func TestAfterClose(t *testing.T) {
	t.Run("CloseNow", func(t *testing.T) {
		s, _ := afterClosePair(t, nil)
		ch, stop := afterCloseErr(s)
		s.CloseNow()
		err := awaitAfterClose(t, ch)
		var ce *websocket.CloseError
		if !errors.Is(err, websocket.ErrClosed) || errors.As(err, &ce) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
		if stop() {
			t.Error("stop after the callback started = true")
		}
	})
	t.Run("pong timeout", func(t *testing.T) {
		// Neither side reads: the client never answers the server's pings.
		s, _ := afterClosePair(t, &websocket.AcceptOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
		ch, _ := afterCloseErr(s)
		err := awaitAfterClose(t, ch)
		if !errors.Is(err, websocket.ErrPongTimeout) || !errors.Is(err, websocket.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed wrapping ErrPongTimeout", err)
		}
		if _, _, rerr := s.Read(context.Background()); !errors.Is(rerr, websocket.ErrPongTimeout) {
			t.Errorf("Read after the callback = %v, want what the callback got (%v)", rerr, err)
		}
	})
	t.Run("peer's close frame", func(t *testing.T) {
		s, c := afterClosePair(t, nil)
		ch, _ := afterCloseErr(s)
		go func() { _, _, _ = s.Read(context.Background()) }() // answers the close
		if err := c.Close(4321, "bye"); err != nil {
			t.Fatal(err)
		}
		err := awaitAfterClose(t, ch)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4321 || ce.Reason != "bye" {
			t.Errorf("err = %v, want the peer's *CloseError 4321 bye", err)
		}
	})
	t.Run("stop before the close", func(t *testing.T) {
		s, _ := afterClosePair(t, nil)
		var ran [3]atomic.Bool
		stops := make([]func() bool, 3)
		for i := range stops {
			stops[i] = s.AfterClose(func(error) { ran[i].Store(true) })
		}
		// The list's head (the last registered), then its tail.
		if !stops[2]() || !stops[0]() {
			t.Fatal("stop before the close = false")
		}
		if stops[2]() {
			t.Error("a second stop = true")
		}
		last, _ := afterCloseErr(s)
		s.CloseNow()
		awaitAfterClose(t, last)
		deadline := time.Now().Add(10 * time.Second)
		for !ran[1].Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !ran[1].Load() {
			t.Error("the callback left registered did not run")
		}
		// Only a stopped callback that already ran shows here; that one
		// never does is checked without guessing by
		// TestAfterCloseStoppedNeverRuns.
		if ran[0].Load() || ran[2].Load() {
			t.Errorf("stopped callbacks ran: %v %v", ran[0].Load(), ran[2].Load())
		}
		if stops[1]() {
			t.Error("stop after the callback started = true")
		}
	})
	t.Run("stop all", func(t *testing.T) {
		// Each connection's registrations are kept beside it until the
		// last is stopped; registering again after that works as at first.
		s, _ := afterClosePair(t, nil)
		stoppedRan := make(chan struct{}, 3)
		for range 3 {
			if stop := s.AfterClose(func(error) { stoppedRan <- struct{}{} }); !stop() {
				t.Fatal("stop before the close = false")
			}
		}
		ch, _ := afterCloseErr(s)
		s.CloseNow()
		awaitAfterClose(t, ch)
		// As above: TestAfterCloseStoppedNeverRuns checks the rest.
		if len(stoppedRan) != 0 {
			t.Errorf("%d stopped callbacks ran", len(stoppedRan))
		}
	})
	t.Run("stop racing the close", func(t *testing.T) {
		// Each callback runs if and only if its stop reported false.
		s, _ := afterClosePair(t, nil)
		const n = 64
		var ran [n]atomic.Bool
		runs := make(chan int, n)
		stops := make([]func() bool, n)
		for i := range stops {
			stops[i] = s.AfterClose(func(error) { ran[i].Store(true); runs <- i })
		}
		var stopped [n]bool
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range stops {
			wg.Go(func() { <-start; stopped[i] = stops[i]() })
		}
		wg.Go(func() { <-start; s.CloseNow() })
		close(start)
		wg.Wait()
		want := 0
		for i := range stopped {
			if !stopped[i] {
				want++
			}
		}
		for range want {
			select {
			case i := <-runs:
				if stopped[i] {
					t.Errorf("callback %d ran though its stop reported true", i)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a callback whose stop reported false did not run")
			}
		}
		// A callback whose stop reported true and that ran anyway shows
		// here only if it ran already (see TestAfterCloseStoppedNeverRuns).
		for i := range ran {
			if ran[i].Load() == stopped[i] {
				t.Errorf("callback %d: ran %v, stop reported %v", i, ran[i].Load(), stopped[i])
			}
		}
	})
	t.Run("closed already", func(t *testing.T) {
		s, _ := afterClosePair(t, &websocket.AcceptOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
		first, _ := afterCloseErr(s)
		awaitAfterClose(t, first)
		ch, stop := afterCloseErr(s)
		if err := awaitAfterClose(t, ch); !errors.Is(err, websocket.ErrPongTimeout) {
			t.Errorf("err = %v, want ErrClosed wrapping ErrPongTimeout", err)
		}
		if stop() {
			t.Error("stop of a callback registered after the close = true")
		}
	})
}
