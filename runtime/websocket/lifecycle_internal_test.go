package websocket

// Regression tests for the lifecycle of a connection: what may be written
// once our close frame is out, what a read gets while Close waits for the
// peer's, what a Poller does when a Handler panics or a peer half-closes,
// and what a closed connection leaves behind.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wireFrame is one frame as the peer reads it (server frames are unmasked).
type wireFrame struct {
	op      Opcode
	payload []byte
}

// readWireFrame reads one unmasked frame from br within d.
func readWireFrame(nc net.Conn, br *bufio.Reader, d time.Duration) (wireFrame, error) {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return wireFrame{}, err
	}
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return wireFrame{}, err
		}
		n = int64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return wireFrame{}, err
		}
		n = int64(binary.BigEndian.Uint64(b[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return wireFrame{}, err
	}
	return wireFrame{op: Opcode(h[0] & 0x0f), payload: p}, nil
}

// serverPair returns a server Conn over loopback TCP, its raw peer, and a
// reader of the peer's side.
func serverPair(t *testing.T, closeTimeout time.Duration) (*Conn, net.Conn, *bufio.Reader) {
	t.Helper()
	local, peer := tcpPair(t)
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, 0, closeTimeout, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })
	return c, peer, bufio.NewReader(peer)
}

func clientFrame(op Opcode, p []byte) []byte { return frameBytes(true, 0, op, true, p) }

func clientClose(code StatusCode) []byte {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], uint16(code))
	return clientFrame(OpClose, b[:])
}

// A Poller's worker that finds the peer's end of stream right after the
// messages it pipelined (the input filled the read buffer exactly, so the
// next read is attempted at once) flushes the replies it deferred before
// the connection is closed: a peer that sends its requests and then shuts
// down its write side still gets every reply.
func TestPollerFlushesDeferredRepliesOnPeerEOF(t *testing.T) {
	noFlushTimer(t) // only the EOF path may flush
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, peer, br := serverPair(t, time.Second)
	// 32 frames of 6+122 bytes fill the 4 KiB read buffer exactly. The
	// last one gets no reply, so nothing flushes the others when it is
	// handled.
	const n = 32
	var in []byte
	for i := range n {
		p := bytes.Repeat([]byte{'a' + byte(i%26)}, 122)
		if i == n-1 {
			p[0] = '!'
		}
		in = append(in, clientFrame(OpBinary, p)...)
	}
	if len(in) != smallBufSize {
		t.Fatalf("input of %d bytes, want %d", len(in), smallBufSize)
	}
	if _, err := peer.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := peer.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the input and the FIN arrive
	closed := make(chan error, 1)
	h := HandlerFuncs{
		Message: func(c *Conn, typ MessageType, msg []byte) {
			if msg[0] != '!' {
				_ = c.Write(context.Background(), typ, msg)
			}
		},
		Close: func(_ *Conn, err error) { closed <- err },
	}
	if err := p.Serve(c, h); err != nil {
		t.Fatal(err)
	}
	for i := range n - 1 {
		f, err := readWireFrame(peer, br, 2*time.Second)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, n-1, err)
		}
		if f.op != OpBinary || f.payload[0] != 'a'+byte(i%26) {
			t.Fatalf("reply %d: op %v payload %q", i+1, f.op, f.payload[:1])
		}
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("no OnClose after the peer's end of stream")
	}
}

// RFC 6455 §5.5.1: after sending a close frame an endpoint must not send
// any more data frames. While Close waits for the peer's close frame, a
// Write, WritePrepared or Writer from another goroutine is refused with
// ErrClosed and nothing reaches the wire.
func TestNoDataFrameAfterOurCloseFrame(t *testing.T) {
	c, peer, br := serverPair(t, 5*time.Second)
	done := make(chan error, 1)
	go func() { done <- c.Close(StatusNormalClosure, "bye") }()
	if f, err := readWireFrame(peer, br, 2*time.Second); err != nil || f.op != OpClose {
		t.Fatalf("want our close frame first: %v %v", f.op, err)
	}
	ctx := context.Background()
	if err := c.Write(ctx, MessageText, []byte("after close")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after our close frame: %v, want ErrClosed", err)
	}
	pm, err := NewPreparedMessage(MessageText, []byte("prepared"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WritePrepared(ctx, pm); !errors.Is(err, ErrClosed) {
		t.Errorf("WritePrepared after our close frame: %v, want ErrClosed", err)
	}
	if w, err := c.Writer(ctx, MessageBinary); err == nil {
		_, _ = w.Write([]byte("streamed"))
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("Writer.Close after our close frame: %v, want ErrClosed", err)
		}
	}
	// Give a frame that must not be sent the time to arrive.
	if f, err := readWireFrame(peer, br, 100*time.Millisecond); err == nil {
		t.Errorf("%v frame %q sent after our close frame", f.op, f.payload)
	}
	if _, err := peer.Write(clientClose(StatusNormalClosure)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// Close's promise that a read loop loses nothing the peer sent before its
// close frame holds for a Read that comes back while Close is still
// reading (the usual case, the handshake taking a round trip): the
// message Close kept comes first, then the *CloseError. The Read waits
// for the read lock that Close holds while the peer's close frame closes
// the connection.
func TestReadDuringCloseGetsKeptMessages(t *testing.T) {
	c, peer, br := serverPair(t, 5*time.Second)
	cerr := make(chan error, 1)
	go func() { cerr <- c.Close(StatusNormalClosure, "bye") }()
	if f, err := readWireFrame(peer, br, 2*time.Second); err != nil || f.op != OpClose {
		t.Fatalf("want our close frame: %v %v", f.op, err)
	}
	waitReadLocked(t, c) // Close reads the peer's close frame itself
	type result struct {
		msg string
		err error
	}
	reads := make(chan result, 2)
	go func() {
		for range 2 {
			_, m, err := c.Read(context.Background())
			reads <- result{string(m), err}
		}
	}()
	time.Sleep(20 * time.Millisecond) // the Read waits for the lock
	in := append(clientFrame(OpText, []byte("late")), clientClose(StatusNormalClosure)...)
	if _, err := peer.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := <-cerr; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, want := range []string{"late", ""} {
		var r result
		select {
		case r = <-reads:
		case <-time.After(5 * time.Second):
			t.Fatal("Read did not return")
		}
		if want == "" {
			if CloseStatus(r.err) != StatusNormalClosure {
				t.Fatalf("after the kept message: %q %v, want the peer's close", r.msg, r.err)
			}
			break
		}
		if r.err != nil || r.msg != want {
			t.Fatalf("Read: %q %v, want %q", r.msg, r.err, want)
		}
	}
}

// waitReadLocked waits until some goroutine holds c's read lock.
func waitReadLocked(t *testing.T, c *Conn) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); len(c.readSem) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nobody took the read lock")
		}
	}
}

// recorder is a Handler that records messages and hands OnClose's error
// over a channel.
type recorder struct {
	mu     sync.Mutex
	msgs   []string
	closed chan error
}

func (r *recorder) OnMessage(c *Conn, typ MessageType, msg []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, string(msg))
	r.mu.Unlock()
}

func (r *recorder) OnClose(c *Conn, err error) { r.closed <- err }

// The same promise for a polled connection that is idle when Conn.Close
// or Poller.Shutdown closes it: the closing handshake reads the peer's
// frames itself, and a worker woken meanwhile (by the input, or by the
// close) waits for the read lock. The message the peer sent before its
// close frame still reaches OnMessage, before OnClose.
func TestPollerCloseKeepsMessagesBeforePeerClose(t *testing.T) {
	for _, how := range []string{"Conn.Close", "Poller.Shutdown"} {
		t.Run(how, func(t *testing.T) {
			p, err := NewPoller(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, peer, br := serverPair(t, 5*time.Second)
			r := &recorder{closed: make(chan error, 1)}
			if err := p.Serve(c, r); err != nil {
				t.Fatal(err)
			}
			closing := make(chan error, 1)
			go func() {
				if how == "Conn.Close" {
					closing <- c.Close(StatusNormalClosure, "bye")
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				closing <- p.Shutdown(ctx)
			}()
			if f, err := readWireFrame(peer, br, 2*time.Second); err != nil || f.op != OpClose {
				t.Fatalf("want our close frame: %v %v", f.op, err)
			}
			waitReadLocked(t, c)
			// The poller's event for the peer's input (which the
			// handshake may read first, and epoll then drops): the
			// worker waits for the lock the handshake holds.
			c.poll.Load().wake()
			time.Sleep(20 * time.Millisecond)
			// The peer's message crossed our close frame.
			in := append(clientFrame(OpText, []byte("last words")), clientClose(StatusGoingAway)...)
			if _, err := peer.Write(in); err != nil {
				t.Fatal(err)
			}
			if err := <-closing; err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			var cerr error
			select {
			case cerr = <-r.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("no OnClose")
			}
			r.mu.Lock()
			msgs := r.msgs
			r.mu.Unlock()
			if len(msgs) != 1 || msgs[0] != "last words" {
				t.Fatalf("OnMessage got %q before OnClose(%v), want [\"last words\"]", msgs, cerr)
			}
			if CloseStatus(cerr) != StatusGoingAway {
				t.Fatalf("OnClose: %v, want the peer's 1001", cerr)
			}
		})
	}
}

// Deferred replies to pipelined input go out within flushDelay even when
// the flush timer fired while a writer was busy (it skips, leaving the
// flush to that writer) and that writer, after another read with input
// still buffered, deferred again: the deferral arms the timer anew. The
// application then does not read for a while, as a Handler blocked on a
// database would not.
func TestDeferredRepliesFlushedAfterTimerSkipped(t *testing.T) {
	c, peer, br := serverPair(t, time.Second)
	var in []byte
	for _, m := range []string{"m1", "m2", "m3"} {
		in = append(in, clientFrame(OpBinary, []byte(m))...)
	}
	if _, err := peer.Write(in); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := c.ReadAppend(ctx, nil); err != nil { // m1; m2, m3 buffered
		t.Fatal(err)
	}
	if err := c.Write(ctx, MessageBinary, []byte("reply1")); err != nil { // deferred
		t.Fatal(err)
	}
	// A Writer streams while a Write waits for it: a writer is busy when
	// the timer fires.
	w, err := c.Writer(ctx, MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	pushed := make(chan error, 1)
	go func() { pushed <- c.Write(ctx, MessageBinary, []byte("push")) }()
	for c.writers.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the timer fires and skips
	// m2; m3 is still buffered.
	if _, _, err := c.ReadAppend(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("stream"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-pushed; err != nil { // the last writer out defers again
		t.Fatal(err)
	}
	for _, want := range []string{"reply1", "stream", "push"} {
		f, err := readWireFrame(peer, br, 2*time.Second)
		if err != nil {
			t.Fatalf("%s not sent while the application does not read: %v", want, err)
		}
		if string(f.payload) != want {
			t.Fatalf("got %q, want %q", f.payload, want)
		}
	}
}

// A Handler that panics on a message that came with the handshake panics
// on Serve's goroutine, which net/http recovers for an HTTP handler. The
// panic still reaches Serve's caller, but the connection is failed with
// 1011 on the way, OnClose is called, and the Poller is not left waiting
// for the entry: Close returns.
func TestPollerHandlerPanicInServe(t *testing.T) {
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, peer, br := serverPair(t, time.Second)
	if _, err := peer.Write(clientFrame(OpText, []byte("boom"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the message is there for Serve's first run
	closed := make(chan error, 1)
	h := HandlerFuncs{
		Message: func(*Conn, MessageType, []byte) { panic("handler bug") },
		Close:   func(_ *Conn, err error) { closed <- err },
	}
	var recovered any
	func() {
		defer func() { recovered = recover() }() // as net/http's conn.serve does
		_ = p.Serve(c, h)
	}()
	if recovered != "handler bug" {
		t.Errorf("Serve's caller recovered %v, want the Handler's panic", recovered)
	}
	select {
	case err := <-closed:
		if !errors.Is(err, errHandlerPanicked) {
			t.Errorf("OnClose: %v, want errHandlerPanicked", err)
		}
	default:
		t.Error("OnClose not called when the Handler panicked")
	}
	f, err := readWireFrame(peer, br, 2*time.Second)
	if err != nil || f.op != OpClose || len(f.payload) < 2 ||
		StatusCode(binary.BigEndian.Uint16(f.payload)) != StatusInternalError {
		t.Errorf("peer got %v %x (%v), want a 1011 close frame", f.op, f.payload, err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Poller.Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		c.poll.Load().p.live.Done() // release the poller so that it does not leak
		<-done
		t.Fatal("Poller.Close hangs after a Handler panicked in Serve")
	}
}

// A Close or Shutdown called while a Close is in progress returns, like
// the first, once every OnClose has been called; a Shutdown whose context
// ends first returns the context's error.
func TestPollerConcurrentCloseWaits(t *testing.T) {
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		second func(*Poller) error
		want   error
		waits  bool // returns only after the first has finished
	}{
		{"Close", (*Poller).Close, ErrPollerClosed, true},
		{"Shutdown", func(p *Poller) error { return p.Shutdown(context.Background()) }, ErrPollerClosed, true},
		{"ShutdownExpired", func(p *Poller) error { return p.Shutdown(expired) }, context.Canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPoller(nil)
			if err != nil {
				t.Fatal(err)
			}
			c, _, _ := serverPair(t, time.Second)
			inClose := make(chan struct{})
			release := make(chan struct{})
			h := HandlerFuncs{Close: func(*Conn, error) {
				close(inClose)
				<-release
			}}
			if err := p.Serve(c, h); err != nil {
				t.Fatal(err)
			}
			first := make(chan error, 1)
			go func() { first <- p.Close() }()
			select {
			case <-inClose:
			case <-time.After(5 * time.Second):
				close(release)
				t.Fatal("OnClose not called")
			}
			second := make(chan error, 1)
			go func() { second <- tc.second(p) }()
			var errs [2]error
			if tc.waits {
				select {
				case err := <-second:
					close(release)
					t.Fatalf("second call returned %v while OnClose was still running", err)
				case <-time.After(50 * time.Millisecond): // it must not return yet
				}
			} else {
				select {
				case errs[1] = <-second:
				case <-time.After(5 * time.Second):
					close(release)
					t.Fatal("second call ignored its context")
				}
			}
			close(release)
			if tc.waits {
				select {
				case errs[1] = <-second:
				case <-time.After(5 * time.Second):
					t.Fatal("second call did not return")
				}
			}
			select {
			case errs[0] = <-first:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return")
			}
			if errs[0] != nil {
				t.Errorf("first Close: %v", errs[0])
			}
			if !errors.Is(errs[1], tc.want) {
				t.Errorf("second call: %v, want %v", errs[1], tc.want)
			}
		})
	}
}

// A connection used with a long-lived cancellable context (a hub pushing
// with its server's context) is not kept reachable by that context once
// closed: closing removes the context.AfterFunc registration that a
// Write or Read keeps for the next call with the same context.
func TestClosedConnNotRetainedByContext(t *testing.T) {
	for _, op := range []string{"Write", "Read"} {
		t.Run(op, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var collected atomic.Int32
			const n = 10
			for range n {
				local, peer := tcpPair(t)
				go func() { _, _ = io.Copy(io.Discard, peer) }()
				c := newConn(local, false, resolveConfig(0, 0, 0, 0, 0, 0, false), "", nil, nil)
				runtime.AddCleanup(c, func(*atomic.Int32) { collected.Add(1) }, &collected)
				if op == "Write" {
					if err := c.Write(ctx, MessageText, []byte("hi")); err != nil {
						t.Fatal(err)
					}
				} else {
					if _, err := peer.Write(clientFrame(OpText, []byte("hi"))); err != nil {
						t.Fatal(err)
					}
					if _, _, err := c.Read(ctx); err != nil {
						t.Fatal(err)
					}
				}
				c.CloseNow()
				peer.Close()
			}
			for i := 0; i < 50 && collected.Load() < n; i++ {
				runtime.GC()
				time.Sleep(10 * time.Millisecond)
			}
			if got := collected.Load(); got < n {
				t.Errorf("%d of %d closed connections collected while the %s context lives", got, n, op)
			}
		})
	}
}

// TestCloseDuringConcurrentUse: both sides Close while each of them reads,
// writes whole messages, streams messages through Writer and pings. Every
// call returns (with an error or not), nothing panics or races, nothing
// is left waiting, and a Writer once closed stays closed, however its
// connection's next messages and its close interleave with it.
func TestCloseDuringConcurrentUse(t *testing.T) {
	for round := range 20 {
		a, b := tcpPair(t)
		cfg := resolveConfig(0, 1<<20, 0, 0, time.Second, 200*time.Millisecond, false)
		srv := newConn(b, false, cfg, "", nil, nil)
		cli := newConn(a, true, cfg, "", nil, nil)
		t.Cleanup(func() { srv.CloseNow(); cli.CloseNow() })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		// Close lands after 1, 11, … 41 messages, a different moment of
		// the traffic each round.
		var written atomic.Int32
		closeNow := make(chan struct{})
		wrote := func() {
			if written.Add(1) == int32(1+round%5*10) {
				close(closeNow)
			}
		}
		var wg sync.WaitGroup
		for _, c := range []*Conn{srv, cli} {
			wg.Go(func() {
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			})
			for k := range 3 {
				wg.Go(func() {
					msg := bytes.Repeat([]byte{'x'}, 100+k*40000)
					for range 200 {
						if k < 2 {
							if err := c.Write(ctx, MessageBinary, msg); err != nil {
								return
							}
							wrote()
							continue
						}
						w, err := c.Writer(ctx, MessageText)
						if err != nil {
							return
						}
						_, _ = w.Write(msg[:len(msg)/2])
						_, _ = w.Write(msg[len(msg)/2:])
						err = w.Close()
						if _, werr := w.Write(msg); werr == nil {
							t.Error("Write through a closed Writer succeeded")
						}
						if cerr := w.Close(); cerr != nil {
							t.Errorf("second Close of a Writer: %v", cerr)
						}
						if err != nil {
							return
						}
						wrote()
					}
				})
			}
			wg.Go(func() {
				pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer pcancel()
				_ = c.Ping(pctx)
			})
		}
		select {
		case <-closeNow:
		case <-time.After(5 * time.Second):
			cancel()
			t.Fatalf("round %d: %d messages written in 5 s", round, written.Load())
		}
		wg.Go(func() { _ = srv.Close(StatusNormalClosure, "bye") })
		wg.Go(func() { _ = cli.Close(StatusGoingAway, "") })
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			t.Fatalf("round %d: calls still running 5 s after Close", round)
		}
		cancel()
	}
}
