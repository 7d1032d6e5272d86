package websocket_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestPollerBusyPoll serves echo from a Poller that busy-polls for an
// hour after each event, on one P — a server pinned to one core — so the
// dispatcher is always runnable while the test runs. Everything that waits
// in the runtime's own poller must still be served: new connections'
// Accept, and echo Writes held up by a client that reads late. Close must
// end the polling.
func TestPollerBusyPoll(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := startPollServerWith(t, &websocket.PollerOptions{BusyPoll: time.Hour}, nil, false, nil)

	var wg sync.WaitGroup
	for i := range 8 {
		c := s.dial(nil)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			msgs := make([][]byte, 40)
			for j := range msgs {
				msgs[j] = textPayload(rng, []int{16, 1 << 10, 70_000}[j%3])
			}
			echoCheck(t, c, msgs)
		})
	}

	// A client that writes 8 MiB before it reads: the server's echoes
	// fill the socket and wait for it to drain, in the runtime's poller.
	late := s.dial(nil)
	const lateMsgs, lateSize = 128, 64 << 10
	msg := bytes.Repeat([]byte{'w'}, lateSize)
	wrote := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*wireTimeout)
		defer cancel()
		for range lateMsgs {
			if err := late.Write(ctx, websocket.MessageBinary, msg); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()

	// Connections accepted while the dispatcher polls.
	for range 4 {
		echoCheck(t, s.dial(nil), [][]byte{[]byte("hello"), []byte("again")})
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 4*wireTimeout)
	defer cancel()
	for i := range lateMsgs {
		typ, got, err := late.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, msg) {
			t.Fatalf("late reader's echo %d: %v %v, %d bytes", i, typ, err, len(got))
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("late reader's writes: %v", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- s.p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(wireTimeout):
		t.Fatal("Close of a busy-polling Poller did not return")
	}
}

// TestPollerBusyPollSleepsWhenIdle checks that busy polling ends when
// input stops: the dispatcher goes back to waiting in the runtime's
// poller (IO wait) instead of keeping a core busy.
func TestPollerBusyPollSleepsWhenIdle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("BusyPoll is the epoll poller's (Linux); elsewhere there is no dispatcher")
	}
	s := startPollServerWith(t, &websocket.PollerOptions{BusyPoll: 200 * time.Microsecond}, nil, false, nil)
	c := s.dial(nil)
	for i := range 20 {
		echoCheck(t, c, [][]byte{fmt.Appendf(nil, "message %d", i)})
	}
	deadline := time.Now().Add(wireTimeout)
	for {
		state := dispatcherState(t)
		if strings.HasPrefix(state, "IO wait") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher still %q %v after the last message; want IO wait", state, wireTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dispatcherState returns the state the goroutine dump gives the one
// Poller dispatcher running ("IO wait", "runnable", …).
func dispatcherState(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var states []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "websocket.(*pollSys).dispatch(") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n") // goroutine 7 [IO wait]:
		_, state, _ := strings.Cut(head, "[")
		state, _, _ = strings.Cut(state, "]")
		states = append(states, state)
	}
	if len(states) != 1 {
		t.Fatalf("%d Poller dispatchers in the goroutine dump, want 1", len(states))
	}
	return states[0]
}

// TestPollerBusyPollOutlastsYield checks that a BusyPoll longer than the
// dispatcher's periodic pass through the runtime's poller (every
// millisecond) keeps it polling after input stops, as documented: the
// pass is a yield, not a sleep until the next input. A dispatcher that
// slept there would make every BusyPoll above a millisecond act as about
// one, and a connection whose messages come 1-2ms apart would pay both
// the spinning and the wake-up.
func TestPollerBusyPollOutlastsYield(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("BusyPoll is the epoll poller's (Linux); elsewhere there is no dispatcher")
	}
	s := startPollServerWith(t, &websocket.PollerOptions{BusyPoll: time.Hour}, nil, false, nil)
	echoCheck(t, s.dial(nil), [][]byte{[]byte("hello")})
	// Several yields' worth of quiet; then the dispatcher must still be
	// found polling, again and again, not asleep in IO wait.
	time.Sleep(20 * time.Millisecond)
	deadline := time.Now().Add(wireTimeout)
	for seen := 0; seen < 5; {
		state := dispatcherState(t)
		if !strings.HasPrefix(state, "IO wait") {
			seen++
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher found polling %d times in %v of quiet with an hour of BusyPoll (now %q); want 5", seen, wireTimeout, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
