package websocket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// pollFaultRecorder is a Handler that records what a Poller delivers.
type pollFaultRecorder struct {
	mu     sync.Mutex
	msgs   []string
	closes []error
	closed chan struct{}
}

func newPollFaultRecorder() *pollFaultRecorder {
	return &pollFaultRecorder{closed: make(chan struct{}, 8)}
}

func (r *pollFaultRecorder) OnMessage(c *Conn, typ MessageType, msg []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, string(msg))
	r.mu.Unlock()
}

// onlyClose waits for OnClose, then a moment for a second (wrong) one,
// and returns the messages delivered and the one OnClose error.
func (r *pollFaultRecorder) onlyClose(t *testing.T) ([]string, error) {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("no OnClose")
	}
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.closes) != 1 {
		t.Fatalf("%d OnClose calls: %v", len(r.closes), r.closes)
	}
	return slices.Clone(r.msgs), r.closes[0]
}

func (r *pollFaultRecorder) OnClose(c *Conn, err error) {
	r.mu.Lock()
	r.closes = append(r.closes, err)
	r.mu.Unlock()
	r.closed <- struct{}{}
}

// TestPollerPeerFaults: the peer's connection ends abnormally — reset or
// half-closed inside a frame header, a payload, between the fragments of
// a message, right after a whole message or after its close frame — on a
// polled connection, with and without a lingering worker: OnClose comes
// once, with the lost connection (1006) or the peer's close frame, no
// message is delivered twice or cut short, and nothing is left running.
func TestPollerPeerFaults(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 100)
	whole := clientFrame(OpBinary, payload)
	first := frameBytes(false, 0, OpBinary, true, []byte("first half "))
	cases := []struct {
		name  string
		send  []byte
		peer  bool // the peer's close frame ends it, not the loss
		msgs  []string
		pause bool // let the server read what was sent before the end
	}{
		{name: "mid-header", send: whole[:1]},
		{name: "mid-header-read", send: whole[:3], pause: true},
		{name: "mid-payload", send: whole[:500]},
		{name: "mid-payload-read", send: whole[:500], pause: true},
		{name: "between-fragments", send: first},
		{name: "between-fragments-read", send: first, pause: true},
		{name: "after-message", send: whole, msgs: []string{string(payload)}},
		{name: "after-close-frame", send: clientClose(StatusNormalClosure), peer: true},
	}
	for _, mode := range []string{"plain", "linger", "busypoll"} {
		linger := mode == "linger"
		opts := &PollerOptions{Linger: time.Second}
		if mode == "busypoll" {
			opts.BusyPoll = 100 * time.Microsecond
		}
		for _, end := range []string{"reset", "half-close"} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", mode, end, tc.name), func(t *testing.T) {
					defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
					p, err := NewPoller(opts)
					if err != nil {
						t.Fatal(err)
					}
					defer p.Close()
					if linger {
						p.busyGap = time.Hour
					}
					c, peer, br := serverPair(t, 200*time.Millisecond)
					r := newPollFaultRecorder()
					h := HandlerFuncs{
						Message: func(c *Conn, typ MessageType, msg []byte) {
							r.OnMessage(c, typ, msg)
							if string(msg) == "busy" {
								_ = c.Write(t.Context(), typ, msg)
							}
						},
						Close: r.OnClose,
					}
					if err := p.Serve(c, h); err != nil {
						t.Fatal(err)
					}
					want := tc.msgs
					if linger {
						exchange(t, peer, br, []byte("busy"))
						waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
						want = append([]string{"busy"}, want...)
					}
					if _, err := peer.Write(tc.send); err != nil {
						t.Fatal(err)
					}
					if tc.pause {
						time.Sleep(20 * time.Millisecond)
					}
					tcp := peer.(*net.TCPConn)
					if end == "reset" {
						_ = tcp.SetLinger(0)
						_ = tcp.Close()
					} else {
						_ = tcp.CloseWrite()
						go func() { _, _ = io.Copy(io.Discard, peer) }()
					}
					msgs, err := r.onlyClose(t)
					if tc.peer {
						var ce *CloseError
						if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
							t.Errorf("OnClose: %v, want the peer's close frame", err)
						}
					} else if !errors.Is(err, errNoCloseFrame) {
						t.Errorf("OnClose: %v, want the connection lost", err)
					}
					if fmt.Sprint(msgs) != fmt.Sprint(want) {
						t.Errorf("messages %d, want %d", len(msgs), len(want))
					}
					checkPollerLeftNothing(t, p)
				})
			}
		}
	}
}

// TestPollerPeerEndsDuringLargeWrite: the peer stops reading while the
// server writes a large message, from OnMessage (the worker itself) or
// from another goroutine, then half-closes or resets: the write fails,
// OnClose comes once, and nothing hangs or stays behind.
func TestPollerPeerEndsDuringLargeWrite(t *testing.T) {
	big := make([]byte, 64<<20)
	for _, from := range []string{"handler", "goroutine"} {
		for _, end := range []string{"half-close", "reset", "half-close-then-reset"} {
			t.Run(from+"/"+end, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				p, err := NewPoller(nil)
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				local, peer := tcpPair(t)
				c := newConn(local, false, resolveConfig(0, 0, 0, 0, 500*time.Millisecond, 200*time.Millisecond, false), "", nil, nil)
				defer c.CloseNow()
				defer peer.Close()
				r := newPollFaultRecorder()
				writeErr := make(chan error, 1)
				writing := make(chan struct{})
				h := HandlerFuncs{
					Message: func(c *Conn, typ MessageType, msg []byte) {
						r.OnMessage(c, typ, msg)
						if from == "handler" {
							close(writing)
							writeErr <- c.Write(t.Context(), MessageBinary, big)
						}
					},
					Close: r.OnClose,
				}
				if err := p.Serve(c, h); err != nil {
					t.Fatal(err)
				}
				if from == "goroutine" {
					go func() {
						close(writing)
						writeErr <- c.Write(t.Context(), MessageBinary, big)
					}()
				} else if _, err := peer.Write(clientFrame(OpText, []byte("go"))); err != nil {
					t.Fatal(err)
				}
				<-writing
				time.Sleep(50 * time.Millisecond) // the write fills the buffers and waits
				tcp := peer.(*net.TCPConn)
				switch end {
				case "half-close":
					_ = tcp.CloseWrite()
				case "reset":
					_ = tcp.SetLinger(0)
					_ = tcp.Close()
				case "half-close-then-reset":
					_ = tcp.CloseWrite()
					time.Sleep(20 * time.Millisecond)
					_ = tcp.SetLinger(0)
					_ = tcp.Close()
				}
				select {
				case err := <-writeErr:
					if err == nil {
						t.Fatal("the write succeeded")
					}
					t.Logf("write: %v", err)
				case <-time.After(5 * time.Second):
					t.Fatal("the write hangs")
				}
				_, cerr := r.onlyClose(t)
				t.Logf("OnClose: %v", cerr)
			})
		}
	}
}

// TestPollerAppClosesDuringRead: the application closes a polled
// connection (Close, CloseNow) while its worker waits inside a message,
// between messages while lingering, or while idle in the poller.
func TestPollerAppClosesDuringRead(t *testing.T) {
	half := clientFrame(OpBinary, bytes.Repeat([]byte("x"), 1000))[:500]
	for _, linger := range []bool{false, true} {
		for _, where := range []string{"mid-message", "between"} {
			for _, how := range []string{"Close", "CloseNow", "both"} {
				t.Run(fmt.Sprintf("linger=%v/%s/%s", linger, where, how), func(t *testing.T) {
					defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
					p, err := NewPoller(&PollerOptions{Linger: time.Second})
					if err != nil {
						t.Fatal(err)
					}
					defer p.Close()
					if linger {
						p.busyGap = time.Hour
					}
					c, peer, br := serverPair(t, 200*time.Millisecond)
					r := newPollFaultRecorder()
					h := HandlerFuncs{
						Message: func(c *Conn, typ MessageType, msg []byte) {
							r.OnMessage(c, typ, msg)
							_ = c.Write(t.Context(), typ, msg)
						},
						Close: r.OnClose,
					}
					if err := p.Serve(c, h); err != nil {
						t.Fatal(err)
					}
					exchange(t, peer, br, []byte("busy"))
					if linger {
						waitUntil(t, "the worker lingers", func() bool { return p.lingering.Load() == 1 })
					}
					if where == "mid-message" {
						if _, err := peer.Write(half); err != nil {
							t.Fatal(err)
						}
						time.Sleep(20 * time.Millisecond)
					}
					go func() { _, _ = io.Copy(io.Discard, peer) }()
					var wg sync.WaitGroup
					if how != "CloseNow" {
						wg.Go(func() { _ = c.Close(StatusGoingAway, "") })
					}
					if how != "Close" {
						wg.Go(func() { _ = c.CloseNow() })
					}
					done := make(chan struct{})
					go func() { wg.Wait(); close(done) }()
					select {
					case <-done:
					case <-time.After(5 * time.Second):
						t.Fatal("Close hangs")
					}
					msgs, err := r.onlyClose(t)
					if !errors.Is(err, ErrClosed) {
						t.Errorf("OnClose: %v, want ErrClosed", err)
					}
					if len(msgs) != 1 {
						t.Errorf("messages: %d", len(msgs))
					}
					checkPollerLeftNothing(t, p)
				})
			}
		}
	}
}

// TestPollerFDReuse: connections are closed while their peers keep
// sending, and new ones take their descriptor numbers at once: every
// message reaches the Handler of the connection it was sent on, once.
func TestPollerFDReuse(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := NewPoller(&PollerOptions{Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wrong, dup sync.Map
	var wg sync.WaitGroup
	reused := 0
	lastFD := -1
	for round := range 200 {
		peer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		local, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := newConn(local, false, resolveConfig(0, 0, 0, 0, 0, 100*time.Millisecond, false), "", nil, nil)
		if fd := sockFD(t, c); fd == lastFD {
			reused++
		} else {
			lastFD = fd
		}
		tag := fmt.Sprintf("%d:", round)
		seen := map[string]bool{}
		h := HandlerFuncs{Message: func(c *Conn, typ MessageType, msg []byte) {
			if !bytes.HasPrefix(msg, []byte(tag)) {
				wrong.Store(tag+string(msg), true)
			}
			if seen[string(msg)] {
				dup.Store(string(msg), true)
			}
			seen[string(msg)] = true
		}}
		if err := p.Serve(c, h); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer peer.Close()
			for i := 0; ; i++ {
				if _, err := peer.Write(clientFrame(OpText, fmt.Appendf(nil, "%s%d", tag, i))); err != nil {
					return
				}
				if i == 3 {
					go c.CloseNow()
				}
			}
		})
	}
	wg.Wait()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Poller.Close hangs")
	}
	wrong.Range(func(k, _ any) bool { t.Errorf("message to the wrong connection: %v", k); return true })
	dup.Range(func(k, _ any) bool { t.Errorf("message delivered twice: %v", k); return true })
	t.Logf("%d of 200 connections reused the descriptor before them", reused)
}

// TestPollerManyEndAtOnce: more connections than an epoll batch end at
// once, reset or half-closed by their peers after a message: each is
// delivered its message once and gets one OnClose, and the poller holds
// nothing for them afterwards.
func TestPollerManyEndAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 2*epollBatch + 10
	var mu sync.Mutex
	msgs := map[*Conn][]string{}
	closes := map[*Conn]int{}
	allClosed := make(chan struct{})
	h := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, msg []byte) {
			mu.Lock()
			msgs[c] = append(msgs[c], string(msg))
			mu.Unlock()
		},
		Close: func(c *Conn, err error) {
			if !errors.Is(err, errNoCloseFrame) {
				t.Errorf("OnClose: %v", err)
			}
			mu.Lock()
			closes[c]++
			if len(closes) == n {
				close(allClosed)
			}
			mu.Unlock()
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make([]*net.TCPConn, n)
	conns := make([]*Conn, n)
	for i := range n {
		pc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		local, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = pc.(*net.TCPConn)
		conns[i] = newConn(local, false, resolveConfig(0, 0, 0, 0, 0, 100*time.Millisecond, false), "", nil, nil)
		defer conns[i].CloseNow()
		defer pc.Close()
		if err := p.Serve(conns[i], h); err != nil {
			t.Fatal(err)
		}
	}
	for i, pc := range peers {
		if _, err := pc.Write(clientFrame(OpText, fmt.Appendf(nil, "%d", i))); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			_ = pc.SetLinger(0)
			_ = pc.Close()
		} else {
			_ = pc.CloseWrite()
		}
	}
	select {
	case <-allClosed:
	case <-time.After(10 * time.Second):
		mu.Lock()
		t.Fatalf("%d of %d OnClose calls", len(closes), n)
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for i, c := range conns {
		if closes[c] != 1 {
			t.Errorf("connection %d: %d OnClose calls", i, closes[c])
		}
		if want := fmt.Sprint([]string{fmt.Sprint(i)}); fmt.Sprint(msgs[c]) != want {
			t.Errorf("connection %d: messages %v, want %v", i, msgs[c], want)
		}
	}
	checkPollerLeftNothing(t, p)
}

// checkPollerLeftNothing fails t if p still lingers on a connection or
// holds an entry for one, once every connection's OnClose has run.
func checkPollerLeftNothing(t *testing.T, p *Poller) {
	t.Helper()
	if n := p.lingering.Load(); n != 0 {
		t.Errorf("%d lingering after OnClose", n)
	}
	p.mu.Lock()
	left := len(p.servedLocked())
	p.mu.Unlock()
	if left != 0 {
		t.Errorf("%d entries left", left)
	}
}

// TestPollerKeepaliveHandlerBlocked: a Handler may block (a slow
// database), holding up its own connection's reads. Its peer's pongs
// then wait unread in the socket, and prove it alive as they do for a
// read loop that is between two reads (KeepaliveUnread): the keepalive
// closed the connection with ErrPongTimeout, its peer answering every
// ping, as if a Poller read every pong whatever its Handler does. A peer
// that answers no ping is still closed.
func TestPollerKeepaliveHandlerBlocked(t *testing.T) {
	for _, answers := range []bool{true, false} {
		t.Run(fmt.Sprintf("peer-answers=%v", answers), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			p, err := NewPoller(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			local, peer := tcpPair(t)
			c := newConn(local, false, resolveConfig(0, 0, 50*time.Millisecond, 100*time.Millisecond, 0, 100*time.Millisecond, false), "", nil, nil)
			defer c.CloseNow()
			defer peer.Close()
			replied := make(chan error, 1)
			closed := make(chan error, 1)
			h := HandlerFuncs{
				Message: func(c *Conn, typ MessageType, msg []byte) {
					time.Sleep(600 * time.Millisecond) // 4 keepalive rounds
					replied <- c.Write(context.Background(), typ, msg)
				},
				Close: func(_ *Conn, err error) { closed <- err },
			}
			if err := p.Serve(c, h); err != nil {
				t.Fatal(err)
			}
			if answers {
				// A client reading in a loop answers every ping.
				cl := newConn(peer, true, resolveConfig(0, 0, 0, 0, 0, 100*time.Millisecond, false), "", nil, nil)
				defer cl.CloseNow()
				if err := cl.Write(context.Background(), MessageText, []byte("slow")); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, msg, err := cl.Read(ctx); err != nil || string(msg) != "slow" {
					select {
					case cerr := <-closed:
						t.Fatalf("reply: %q, %v; OnClose: %v", msg, err, cerr)
					case <-time.After(time.Second):
						t.Fatalf("reply: %q, %v", msg, err)
					}
				}
				if n := c.Stats().KeepaliveUnread; n == 0 {
					t.Error("Stats().KeepaliveUnread = 0")
				}
				return
			}
			if _, err := peer.Write(clientFrame(OpText, []byte("slow"))); err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, peer) }() // reads the pings, answers none
			select {
			case err := <-closed:
				if !errors.Is(err, ErrPongTimeout) {
					t.Fatalf("OnClose: %v, want ErrPongTimeout", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no OnClose")
			}
			if err := <-replied; err == nil {
				t.Fatal("the reply went out on a connection closed for its silent peer")
			}
		})
	}
}
