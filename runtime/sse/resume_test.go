package sse_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// testHub is the smallest publisher a replaying server needs: append to
// the store and fan out to the live subscribers under one lock, so every
// subscriber sees events in store order.
type testHub struct {
	mu    sync.Mutex
	store sse.Store
	subs  map[chan *sse.Prepared]struct{}
}

func (h *testHub) publish(e sse.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, err := h.store.Append(e)
	if err != nil {
		return err
	}
	p, err := sse.Prepare(e)
	if err != nil {
		return err
	}
	for ch := range h.subs {
		select {
		case ch <- p:
		default:
			return errors.New("subscriber queue full")
		}
	}
	return nil
}

func (h *testHub) subscribe(size int) (<-chan *sse.Prepared, func()) {
	ch := make(chan *sse.Prepared, size)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// cutWriter writes through until its budget of bytes is spent, then
// writes the part of the current write that fits, flushes it and closes
// the TCP connection: the client sees the stream stop at an arbitrary
// byte, often in the middle of an event.
type cutWriter struct {
	http.ResponseWriter
	conn   net.Conn
	budget int // -1: no cut
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if c.budget < 0 || len(b) <= c.budget {
		if c.budget >= 0 {
			c.budget -= len(b)
		}
		return c.ResponseWriter.Write(b)
	}
	n, _ := c.ResponseWriter.Write(b[:c.budget])
	http.NewResponseController(c.ResponseWriter).Flush()
	c.conn.Close()
	return n, errors.New("connection cut by test")
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type connKey struct{}

// TestResume sends 10,000 events while the server cuts the connection at
// random bytes at least 20 times; the client must receive every event
// exactly once, in order, by reconnecting with Last-Event-ID and the
// server replaying from a Ring.
func TestResume(t *testing.T) {
	const total, cuts = 10_000, 30
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	var rngMu sync.Mutex

	hub := &testHub{store: sse.NewRing(2 * total), subs: map[chan *sse.Prepared]struct{}{}}
	var cutsDone, conns, gaps atomic.Int64
	firstSubscriber := make(chan struct{})
	var once sync.Once

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		budget := -1
		if cutsDone.Add(1) <= cuts {
			rngMu.Lock()
			budget = 100 + rng.IntN(6000)
			rngMu.Unlock()
		}
		w = &cutWriter{ResponseWriter: w, conn: r.Context().Value(connKey{}).(net.Conn), budget: budget}
		// Subscribe before NewStream replays, so nothing falls between
		// the replay and the live events.
		live, unsubscribe := hub.subscribe(2 * total)
		defer unsubscribe()
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Replay: hub.store})
		if err != nil {
			return // cut during the replay
		}
		defer s.Close()
		if s.Gap() {
			gaps.Add(1)
		}
		once.Do(func() { close(firstSubscriber) })
		for {
			select {
			case p := <-live:
				if err := s.SendPrepared(p); err != nil {
					return
				}
			case <-s.Context().Done():
				return
			}
		}
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	srv.Start()
	t.Cleanup(srv.Close)

	produced := make(chan error, 1)
	go func() {
		<-firstSubscriber
		for i := 1; i <= total; i++ {
			if err := hub.publish(sse.Event{Data: fmt.Sprintf("event %d", i)}); err != nil {
				produced <- err
				return
			}
			if i%50 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		produced <- nil
	}()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	next := 1
	ring, epoch := hub.store.(*sse.Ring), ""
	for ev, err := range sse.Events(ctx, srv.URL, &sse.ClientOptions{HTTPClient: client, ReconnectionTime: time.Millisecond}) {
		if err != nil {
			t.Fatalf("after %d events: %v", next-1, err)
		}
		if next == 1 {
			epoch = ringEpoch(t, ring)
		}
		if want := fmt.Sprintf("event %d", next); ev.Data != want || ev.ID != epoch+fmt.Sprint(next) {
			t.Fatalf("got event id %q data %q, want sequence number %d, data %q (duplicate or loss)", ev.ID, ev.Data, next, want)
		}
		if next++; next > total {
			break
		}
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if next != total+1 {
		t.Fatalf("received %d of %d events", next-1, total)
	}
	if c := conns.Load(); c < 21 {
		t.Fatalf("only %d connections: fewer than 20 disconnects", c)
	}
	if gaps.Load() != 0 {
		t.Fatalf("%d resumes hit a gap", gaps.Load())
	}
	t.Logf("%d events over %d connections", total, conns.Load())
}

// TestResumeGapReset: a client resuming from an evicted id is told so and
// the handler's reset event reaches it, followed by the live stream.
func TestResumeGapReset(t *testing.T) {
	ring := sse.NewRing(2)
	for range 5 {
		ring.Append(sse.Event{Data: "old"})
	}
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Replay: ring})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		if s.Gap() {
			s.Send(sse.Event{ID: "5", Type: "reset", Data: "snapshot"})
		}
	}))
	var got []string
	opts := fast(sse.ClientOptions{LastEventID: "1", MaxReconnectionAttempts: -1})
	for ev, err := range sse.Events(context.Background(), srv.URL, opts) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Type+":"+ev.ID+":"+ev.Data)
	}
	if len(got) != 1 || got[0] != "reset:5:snapshot" {
		t.Fatalf("events = %q, want the reset", got)
	}
}
