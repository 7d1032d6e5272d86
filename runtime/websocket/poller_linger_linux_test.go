package websocket

// Tests for a worker lingering on a busy connection (Poller,
// pollEntry.lingerFill). Which sockets are in the Poller's epoll interest
// list is read from /proc/self/fdinfo.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lingerPoller returns a Poller whose connections all count as busy, so
// that a worker lingers from a connection's first message on (Serve's own
// run, for what came with the handshake, never does).
func lingerPoller(t *testing.T, opts *PollerOptions) *Poller {
	t.Helper()
	p, err := NewPoller(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.busyGap = time.Hour
	t.Cleanup(func() { p.Close() })
	return p
}

// epollWatches returns the descriptors in p's epoll interest list.
func epollWatches(t *testing.T, p *Poller) map[int]bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", p.sys.epfd))
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[int]bool)
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("fdinfo line %q: %v", line, err)
			}
			fds[n] = true
		}
	}
	return fds
}

func sockFD(t *testing.T, c *Conn) int {
	t.Helper()
	fd := -1
	if err := c.rawConn.Control(func(s uintptr) { fd = int(s) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// waitUntil polls cond, bounded.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func echoHandler(closed chan<- error) Handler {
	return HandlerFuncs{
		Message: func(c *Conn, typ MessageType, msg []byte) { _ = c.Write(context.Background(), typ, msg) },
		Close:   func(_ *Conn, err error) { closed <- err },
	}
}

// exchange sends msg as the peer and checks its echo.
func exchange(t *testing.T, peer net.Conn, br *bufio.Reader, msg []byte) {
	t.Helper()
	if _, err := peer.Write(clientFrame(OpBinary, msg)); err != nil {
		t.Fatal(err)
	}
	f, err := readWireFrame(peer, br, 5*time.Second)
	if err != nil || f.op != OpBinary || !bytes.Equal(f.payload, msg) {
		t.Fatalf("echo of %q: op %v %q %v", msg, f.op, f.payload, err)
	}
}

// A busy connection's worker stays with it, the socket out of the poller's
// interest list, until Linger passes without input; then the poller
// watches it again and wakes a worker for its next message, which lingers
// again. The peer's end of stream reaches a lingering worker too, and its
// place is given back.
func TestPollerLingersOnBusyConnection(t *testing.T) {
	p := lingerPoller(t, &PollerOptions{Linger: 100 * time.Millisecond})
	c, peer, br := serverPair(t, time.Second)
	fd := sockFD(t, c)
	closed := make(chan error, 1)
	if err := p.Serve(c, echoHandler(closed)); err != nil {
		t.Fatal(err)
	}
	if !epollWatches(t, p)[fd] {
		t.Fatal("socket not in the poller's interest list after Serve")
	}
	lingering := func() bool { return p.lingering.Load() == 1 && !epollWatches(t, p)[fd] }
	for round := range 2 {
		exchange(t, peer, br, []byte("first"))
		waitUntil(t, fmt.Sprintf("round %d: the worker lingers, the socket out of the interest list", round), lingering)
		for i := range 20 {
			exchange(t, peer, br, fmt.Appendf(nil, "message %d", i))
			if !lingering() {
				t.Fatalf("round %d: message %d: lingering %d, socket watched %v", round, i, p.lingering.Load(), epollWatches(t, p)[fd])
			}
		}
		waitUntil(t, fmt.Sprintf("round %d: the linger ends, the socket watched again", round), func() bool {
			return p.lingering.Load() == 0 && epollWatches(t, p)[fd]
		})
	}
	exchange(t, peer, br, []byte("last"))
	waitUntil(t, "the worker lingers", lingering)
	peer.Close()
	select {
	case err := <-closed:
		if !errors.Is(err, errNoCloseFrame) {
			t.Fatalf("OnClose: %v, want the connection lost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnClose after the peer's end of stream")
	}
	if n := p.lingering.Load(); n != 0 {
		t.Fatalf("%d lingering after OnClose", n)
	}
}

// A lingering worker's deadline that passes inside a message, or between
// the frames of a fragmented one, does not fail it: the message is read
// whole, and the connection stays.
func TestPollerLingerDeadlineInsideMessage(t *testing.T) {
	p := lingerPoller(t, &PollerOptions{Linger: 10 * time.Millisecond})
	c, peer, br := serverPair(t, time.Second)
	closed := make(chan error, 1)
	if err := p.Serve(c, echoHandler(closed)); err != nil {
		t.Fatal(err)
	}
	pause := func() { time.Sleep(50 * time.Millisecond) } // 5× Linger
	payload := bytes.Repeat([]byte("0123456789"), 30)
	whole := clientFrame(OpBinary, payload)
	for _, cut := range []int{1, 4, 100} {
		exchange(t, peer, br, []byte("busy"))
		waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
		peer.Write(whole[:cut])
		pause()
		peer.Write(whole[cut:])
		f, err := readWireFrame(peer, br, 5*time.Second)
		if err != nil || !bytes.Equal(f.payload, payload) {
			t.Fatalf("cut at %d: echo %d bytes, %v", cut, len(f.payload), err)
		}
	}
	exchange(t, peer, br, []byte("busy"))
	waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
	peer.Write(frameBytes(false, 0, OpText, true, []byte("frag")))
	pause()
	peer.Write(frameBytes(true, 0, OpContinuation, true, []byte("mented")))
	f, err := readWireFrame(peer, br, 5*time.Second)
	if err != nil || f.op != OpText || string(f.payload) != "fragmented" {
		t.Fatalf("fragmented: op %v %q %v", f.op, f.payload, err)
	}
	select {
	case err := <-closed:
		t.Fatalf("OnClose: %v", err)
	default:
	}
}

// At most maxLinger connections linger; the others are served through the
// poller as usual. Close ends a lingering worker's wait.
func TestPollerLingerPlaces(t *testing.T) {
	p := lingerPoller(t, &PollerOptions{Linger: time.Minute})
	p.maxLinger = 1
	const n = 3
	var peers []net.Conn
	var brs []*bufio.Reader
	var fds []int
	closed := make(chan error, n)
	for range n {
		c, peer, br := serverPair(t, time.Second)
		fds = append(fds, sockFD(t, c))
		if err := p.Serve(c, echoHandler(closed)); err != nil {
			t.Fatal(err)
		}
		peers, brs = append(peers, peer), append(brs, br)
	}
	for round := range 3 {
		for i := range n {
			exchange(t, peers[i], brs[i], fmt.Appendf(nil, "round %d conn %d", round, i))
		}
	}
	waitUntil(t, "one connection lingers", func() bool { return p.lingering.Load() == 1 })
	watched := epollWatches(t, p)
	out := 0
	for _, fd := range fds {
		if !watched[fd] {
			out++
		}
	}
	if out != 1 || p.lingering.Load() != 1 {
		t.Fatalf("%d lingering, %d sockets out of the interest list; want 1 and 1", p.lingering.Load(), out)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for a lingering worker")
	}
	for range n {
		if err := <-closed; !errors.Is(err, ErrPollerClosed) {
			t.Fatalf("OnClose: %v, want ErrPollerClosed", err)
		}
	}
	if got := p.lingering.Load(); got != 0 {
		t.Fatalf("%d lingering after Close", got)
	}
}

// Close called from OnMessage, while the worker lingers, drains the
// peer's input for its close frame under a deadline of its own: the
// lingering worker's deadline handling must leave that one alone, or a
// peer that never answers would hold Close for ever.
func TestPollerCloseFromHandlerWhileLingering(t *testing.T) {
	p := lingerPoller(t, &PollerOptions{Linger: time.Minute})
	c, peer, br := serverPair(t, 200*time.Millisecond)
	closeErr := make(chan error, 1)
	closed := make(chan error, 1)
	h := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, msg []byte) {
			if string(msg) == "close" {
				closeErr <- c.Close(StatusNormalClosure, "")
				return
			}
			_ = c.Write(context.Background(), typ, msg)
		},
		Close: func(_ *Conn, err error) { closed <- err },
	}
	if err := p.Serve(c, h); err != nil {
		t.Fatal(err)
	}
	exchange(t, peer, br, []byte("busy"))
	waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
	if _, err := peer.Write(clientFrame(OpBinary, []byte("close"))); err != nil {
		t.Fatal(err)
	}
	// The peer reads our close frame and never answers.
	select {
	case err := <-closeErr:
		if err == nil {
			t.Fatal("Close: nil with no answer from the peer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close from OnMessage still waits for a peer that never answers")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("no OnClose")
	}
}

// Lingering is off with a negative Linger, and with BusyPoll.
func TestPollerLingerOff(t *testing.T) {
	for _, opts := range []*PollerOptions{{Linger: -1}, {BusyPoll: time.Millisecond}} {
		p := lingerPoller(t, opts)
		if p.linger != 0 {
			t.Fatalf("%+v: linger %v", *opts, p.linger)
		}
		c, peer, br := serverPair(t, time.Second)
		fd := sockFD(t, c)
		if err := p.Serve(c, echoHandler(make(chan error, 1))); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			exchange(t, peer, br, fmt.Appendf(nil, "message %d", i))
		}
		if p.lingering.Load() != 0 || !epollWatches(t, p)[fd] {
			t.Fatalf("%+v: lingering %d, socket watched %v", *opts, p.lingering.Load(), epollWatches(t, p)[fd])
		}
	}
}

// A linger that ends while the system has no room for another epoll
// watch (ENOSPC past max_user_watches) does not fail the connection: the
// worker stays with it, reading as before, and hands it back at a later
// deadline once the socket can be registered again.
func TestPollerLingerStaysWhenEpollFull(t *testing.T) {
	p := lingerPoller(t, &PollerOptions{Linger: 10 * time.Millisecond})
	c, peer, br := serverPair(t, time.Second)
	fd := sockFD(t, c)
	closed := make(chan error, 1)
	if err := p.Serve(c, echoHandler(closed)); err != nil {
		t.Fatal(err)
	}
	exchange(t, peer, br, []byte("busy"))
	waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
	epollFull.Store(true)
	defer epollFull.Store(false)
	time.Sleep(100 * time.Millisecond) // several deadlines without input
	for i := range 5 {
		exchange(t, peer, br, fmt.Appendf(nil, "while full %d", i))
	}
	if p.lingering.Load() != 1 || epollWatches(t, p)[fd] {
		t.Fatalf("lingering %d, socket watched %v; want the worker still there", p.lingering.Load(), epollWatches(t, p)[fd])
	}
	epollFull.Store(false)
	waitUntil(t, "the linger ends, the socket watched again", func() bool {
		return p.lingering.Load() == 0 && epollWatches(t, p)[fd]
	})
	exchange(t, peer, br, []byte("after"))
	select {
	case err := <-closed:
		t.Fatalf("OnClose: %v", err)
	default:
	}
}

// The defaults the docs state: Linger 0 is DefaultLinger (50 ms), a
// connection is busy within lingerGap (1 ms), and GOMAXPROCS connections
// may linger at once.
func TestPollerLingerDefaults(t *testing.T) {
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.linger != DefaultLinger || DefaultLinger != 50*time.Millisecond {
		t.Errorf("linger %v, DefaultLinger %v; want 50ms", p.linger, DefaultLinger)
	}
	if p.busyGap != time.Millisecond {
		t.Errorf("busy gap %v, want 1ms", p.busyGap)
	}
	if want := int32(runtime.GOMAXPROCS(0)); p.maxLinger != want {
		t.Errorf("at most %d lingering, want GOMAXPROCS (%d)", p.maxLinger, want)
	}
}
