package websocket_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// pollServer is an HTTP server whose handler hands every accepted
// connection to one Poller and returns, as a production server would.
type pollServer struct {
	t      testing.TB
	p      *websocket.Poller
	srv    *httptest.Server
	url    string
	conns  chan *websocket.Conn // every accepted connection, if wanted
	closes chan pollClose       // every OnClose
	// Serve's errors.
	serveErrs chan error
	// OnMessage checks: calls for one connection never overlap.
	inMsg sync.Map // *Conn -> *atomic.Int32
}

type pollClose struct {
	c   *websocket.Conn
	err error
}

// startPollServer serves echo (or onMessage, if set) from a new Poller.
func startPollServer(t testing.TB, opts *websocket.AcceptOptions, tlsServer bool, onMessage func(c *websocket.Conn, typ websocket.MessageType, msg []byte)) *pollServer {
	t.Helper()
	return startPollServerWith(t, nil, opts, tlsServer, onMessage)
}

// startPollServerWith is startPollServer with a Poller made with popts.
func startPollServerWith(t testing.TB, popts *websocket.PollerOptions, opts *websocket.AcceptOptions, tlsServer bool, onMessage func(c *websocket.Conn, typ websocket.MessageType, msg []byte)) *pollServer {
	t.Helper()
	p, err := websocket.NewPoller(popts)
	if err != nil {
		t.Fatal(err)
	}
	s := &pollServer{t: t, p: p, conns: make(chan *websocket.Conn, 4096), closes: make(chan pollClose, 4096), serveErrs: make(chan error, 16)}
	if onMessage == nil {
		onMessage = func(c *websocket.Conn, typ websocket.MessageType, msg []byte) {
			_ = c.Write(context.Background(), typ, msg)
		}
	}
	h := websocket.HandlerFuncs{
		Message: func(c *websocket.Conn, typ websocket.MessageType, msg []byte) {
			v, ok := s.inMsg.Load(c)
			if !ok {
				v, _ = s.inMsg.LoadOrStore(c, new(atomic.Int32))
			}
			n := v.(*atomic.Int32)
			if n.Add(1) != 1 {
				t.Errorf("OnMessage calls overlap for one connection")
			}
			onMessage(c, typ, msg)
			n.Add(-1)
		},
		Close: func(c *websocket.Conn, err error) { s.closes <- pollClose{c, err} },
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		if err := p.Serve(c, h); err != nil {
			s.serveErrs <- err
			c.CloseNow()
			return
		}
		select {
		case s.conns <- c:
		default:
		}
	})
	if tlsServer {
		s.srv = httptest.NewTLSServer(handler)
		s.url = "wss" + strings.TrimPrefix(s.srv.URL, "https")
	} else {
		s.srv = httptest.NewServer(handler)
		s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	}
	t.Cleanup(func() {
		s.srv.Close()
		_ = p.Close()
	})
	return s
}

// serveRefused dials once more and checks that the server's Serve call
// failed with ErrPollerClosed, the poller having been ended by after.
func (s *pollServer) serveRefused(after string) {
	s.t.Helper()
	s.dial(nil)
	select {
	case err := <-s.serveErrs:
		wantErr(s.t, err, websocket.ErrPollerClosed)
	case <-time.After(wireTimeout):
		s.t.Fatalf("Serve after %s returned no error", after)
	}
}

// dial connects our client to the poll server.
func (s *pollServer) dial(opts *websocket.DialOptions) *websocket.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.url, opts)
	if err != nil {
		s.t.Fatalf("Dial: %v", err)
	}
	s.t.Cleanup(func() { c.CloseNow() })
	return c
}

// peer connects a wire peer (raw frames) to the poll server.
func (s *pollServer) peer() (*wirePeer, *websocket.Conn) {
	s.t.Helper()
	p, _ := dialWirePeer(s.t, s.srv.Listener.Addr().String(), "")
	select {
	case c := <-s.conns:
		return p, c
	case <-time.After(wireTimeout):
		s.t.Fatal("no server connection")
		return nil, nil
	}
}

// closed waits for the next OnClose.
func (s *pollServer) closed() pollClose {
	s.t.Helper()
	select {
	case pc := <-s.closes:
		return pc
	case <-time.After(wireTimeout):
		s.t.Fatal("OnClose was not called")
		return pollClose{}
	}
}

// closeFrame reads frames until a close frame, skipping pings, and returns
// its code; it leaves the TCP connection as it is.
func closeFrame(p *wirePeer) int {
	p.t.Helper()
	for {
		f := p.mustRead()
		switch f.op {
		case opPing:
			continue
		case opClose:
			if len(f.payload) < 2 {
				return -1
			}
			return int(binary.BigEndian.Uint16(f.payload))
		}
		p.t.Fatalf("wire peer: got op=%#x, want a close frame", f.op)
	}
}

// noMoreCloses fails the test if OnClose is called again within 50 ms.
func (s *pollServer) noMoreCloses() {
	s.t.Helper()
	select {
	case pc := <-s.closes:
		s.t.Fatalf("extra OnClose: %v", pc.err)
	case <-time.After(50 * time.Millisecond):
	}
}

// waitGoroutines waits (bounded) until at most max goroutines run.
func waitGoroutines(t testing.TB, max int) {
	t.Helper()
	deadline := time.Now().Add(wireTimeout)
	for runtime.NumGoroutine() > max {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), max)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// echoCheck sends msgs and checks each echo, in order.
func echoCheck(t testing.TB, c *websocket.Conn, msgs [][]byte) {
	t.Helper()
	for i, m := range msgs {
		typ := websocket.MessageBinary
		if i%2 == 1 {
			typ = websocket.MessageText
		}
		ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
		err := c.Write(ctx, typ, m)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		gt, got, err := c.Read(ctx)
		cancel()
		if err != nil || gt != typ || !bytes.Equal(got, m) {
			t.Fatalf("echo %d (%d bytes): %v %v, %d bytes", i, len(m), gt, err, len(got))
		}
	}
}

func textPayload(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return b
}

func TestPollerEcho(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, &websocket.AcceptOptions{MaxMessageSize: 4 << 20}, false, nil)
	var wg sync.WaitGroup
	for i := range 16 {
		c := s.dial(nil)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			var msgs [][]byte
			for j := range 60 {
				n := rng.IntN(2 << 10)
				switch j % 10 {
				case 3:
					n = 64<<10 + rng.IntN(300) // past the large buffer
				case 7:
					n = 300<<10 + rng.IntN(1000) // several reads, in pieces
				case 9:
					n = 0
				}
				msgs = append(msgs, textPayload(rng, n))
			}
			echoCheck(t, c, msgs)
		})
	}
	wg.Wait()
}

// An idle connection costs no goroutine: 300 connections open, each
// echoed once, then idle again.
func TestPollerIdleHoldsNoGoroutine(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, false, nil)
	// More connections than the worker pool may keep, so a goroutine per
	// connection cannot hide in the bound.
	const n = 2 * websocket.MaxIdleWorkers
	base := runtime.NumGoroutine()
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = s.dial(nil)
	}
	// Accepting starts no worker (Serve's first run is the handler's), so
	// only the dispatcher and httptest's goroutines come on top.
	slack := 16
	waitGoroutines(t, base+slack)
	for i, c := range conns {
		echoCheck(t, c, [][]byte{fmt.Appendf(nil, "hello %d", i)})
	}
	// Traffic leaves at most the pool's idle workers behind.
	slack += websocket.MaxIdleWorkers
	waitGoroutines(t, base+slack)
	// Pings and pongs are read without leaving a worker waiting for a
	// data message.
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	for _, c := range conns[:50] {
		go func() { _, _, _ = c.Read(ctx) }() // answers nothing: the server sends no pings
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	waitGoroutines(t, base+slack+50) // the 50 client readers remain
	for _, c := range conns {
		c.CloseNow()
	}
	for range n {
		s.closed()
	}
}

// A message whose frames arrive in pieces, with control frames between
// them, is read whole; a burst of pipelined messages is echoed in order.
func TestPollerPartialAndPipelined(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, false, nil)
	p, _ := s.peer()
	payload := bytes.Repeat([]byte("0123456789"), 1000)
	whole := encodeFrame(true, 0, opBinary, true, p.nextKey(), payload)
	for _, cut := range []int{1, 2, 5, 100, len(whole) - 1} {
		p.writeRaw(whole[:cut])
		time.Sleep(20 * time.Millisecond)
		p.writeRaw(whole[cut:])
		p.expectMessage(opBinary, payload)
	}
	// Fragmented, with a ping inside, each piece after a pause.
	p.frame(false, 0, opText, []byte("hel"))
	time.Sleep(20 * time.Millisecond)
	p.send(opPing, []byte("inside"))
	p.expect(opPong, []byte("inside"))
	time.Sleep(20 * time.Millisecond)
	p.frame(true, 0, opCont, []byte("lo"))
	p.expectMessage(opText, []byte("hello"))
	// 200 messages in one write.
	var burst []byte
	for i := range 200 {
		burst = append(burst, encodeFrame(true, 0, opBinary, true, p.nextKey(), binary.BigEndian.AppendUint32(nil, uint32(i)))...)
	}
	p.writeRaw(burst)
	for i := range 200 {
		p.expectMessage(opBinary, binary.BigEndian.AppendUint32(nil, uint32(i)))
	}
	p.sendClose(1000, "")
	p.expectClose(1000)
	if pc := s.closed(); websocket.CloseStatus(pc.err) != websocket.StatusNormalClosure {
		t.Fatalf("OnClose: %v", pc.err)
	}
}

// Bad input on a polled connection fails it with the protocol's close code
// and reaches OnClose.
func TestPollerBadInput(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, &websocket.AcceptOptions{MaxMessageSize: 1 << 10}, false, nil)
	cases := []struct {
		name string
		send func(p *wirePeer)
		code int
	}{
		{"unmasked", func(p *wirePeer) { p.writeRaw(encodeFrame(true, 0, opText, false, [4]byte{}, []byte("x"))) }, 1002},
		{"invalid UTF-8", func(p *wirePeer) { p.send(opText, []byte{'a', 0xff}) }, 1007},
		{"too big", func(p *wirePeer) { p.send(opBinary, make([]byte, 2<<10)) }, 1009},
		{"reserved opcode", func(p *wirePeer) { p.send(0x3, nil) }, 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := s.peer()
			p.t = t
			p.send(opText, []byte("ok"))
			p.expectMessage(opText, []byte("ok"))
			tc.send(p)
			p.expectClose(tc.code)
			pc := s.closed()
			wantErr(t, pc.err, failSentinel(tc.code))
		})
	}
}

// Close from another goroutine while the connection is idle runs the
// closing handshake; the handler hears of it once.
func TestPollerCloseWhileIdle(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, false, nil)
	p, c := s.peer()
	p.send(opText, []byte("first"))
	p.expectMessage(opText, []byte("first"))
	done := make(chan error, 1)
	go func() { done <- c.Close(websocket.StatusGoingAway, "restart") }()
	if code := closeFrame(p); code != 1001 {
		t.Fatalf("close code %d", code)
	}
	p.send(opText, []byte("late")) // sent before our close reply: kept for a read, never lost silently
	p.sendClose(1001, "")
	if err := <-done; err != nil {
		t.Fatalf("Close: %v", err)
	}
	p.expectEOF()
	pc := s.closed()
	if pc.c != c || pc.err == nil {
		t.Fatalf("OnClose: %v", pc.err)
	}
	s.noMoreCloses()
}

// Keepalive works on polled connections: a client that answers pings
// stays; a silent one is closed with ErrPongTimeout.
func TestPollerKeepalive(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, &websocket.AcceptOptions{PingInterval: 20 * time.Millisecond, PongTimeout: 150 * time.Millisecond}, false, nil)
	live := s.dial(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []byte, 1)
	go func() {
		for {
			_, m, err := live.Read(ctx) // answers the pings
			if err != nil {
				return
			}
			got <- m
		}
	}()
	silent, _ := s.peer() // never answers
	pc := s.closed()
	wantErr(t, pc.err, websocket.ErrPongTimeout)
	for { // pings, then the connection closed without a close frame
		f, err := silent.read()
		if err != nil {
			break
		}
		if f.op != opPing {
			t.Fatalf("silent peer got op %#x, want pings, then the connection closed", f.op)
		}
	}
	if err := live.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m) != "still here" {
			t.Fatalf("echo %q", m)
		}
	case <-time.After(wireTimeout):
		t.Fatal("no echo")
	}
}

// Poller.Close ends every connection and reports each to its handler.
func TestPollerClose(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, false, nil)
	const n = 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = s.dial(nil)
		echoCheck(t, conns[i], [][]byte{[]byte("x")})
	}
	if err := s.p.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		wantErr(t, s.closed().err, websocket.ErrPollerClosed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	if _, _, err := conns[0].Read(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("client read after Poller.Close: %v", err)
	}
	s.serveRefused("Close")
	if err := s.p.Close(); !errors.Is(err, websocket.ErrPollerClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// Shutdown closes every served connection with the closing handshake
// (1001): each client reads the server's close frame, each OnClose sees
// the client's reply, and the poller is closed afterwards.
func TestPollerShutdown(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, false, nil)
	const n = 20
	reads := make(chan error, n)
	for range n {
		c := s.dial(nil)
		echoCheck(t, c, [][]byte{[]byte("before")})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			_, _, err := c.Read(ctx)
			reads <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	if err := s.p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range n {
		pc := s.closed()
		if websocket.CloseStatus(pc.err) != websocket.StatusGoingAway {
			t.Errorf("OnClose: %v, want the client's 1001 reply", pc.err)
		}
		err := <-reads
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "server shutting down" {
			t.Errorf("client read: %v, want 1001 \"server shutting down\"", err)
		}
	}
	s.serveRefused("Shutdown")
	if err := s.p.Shutdown(ctx); !errors.Is(err, websocket.ErrPollerClosed) {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := s.p.Close(); !errors.Is(err, websocket.ErrPollerClosed) {
		t.Fatalf("Close after Shutdown: %v", err)
	}
}

// A peer that never answers the close frame cannot hold Shutdown beyond
// its context: the connection is then closed without a handshake, while
// a peer that answers still gets its 1001.
func TestPollerShutdownDeadline(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, false, nil)
	silent, silentConn := s.peer()
	polite := s.dial(nil)
	echoCheck(t, polite, [][]byte{[]byte("x")})
	politeRead := make(chan error, 1)
	go func() {
		_, _, err := polite.Read(context.Background())
		politeRead <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if code := closeFrame(silent); code != int(websocket.StatusGoingAway) {
		t.Fatalf("silent peer got close code %d, want 1001", code)
	}
	got := map[*websocket.Conn]error{}
	for range 2 {
		pc := s.closed()
		got[pc.c] = pc.err
	}
	if err, ok := got[silentConn]; !ok || !errors.Is(err, websocket.ErrPollerClosed) {
		t.Errorf("silent peer's OnClose: %v, want ErrPollerClosed", err)
	}
	if err := <-politeRead; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("polite client read: %v, want 1001", err)
	}
}

// Shutdown reports ctx's error only when a connection was left without
// its handshake: with none to close, a context already done is no
// failure (it was, at random, before the handshakes were counted).
func TestPollerShutdownNothingLeft(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		p, err := websocket.NewPoller(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown %d with no connections and ctx done: %v, want nil", i, err)
		}
	}
}

// A TLS connection has no socket the poller can watch: Serve reads it
// from a goroutine with the same Handler calls.
func TestPollerTLSFallback(t *testing.T) {
	noLeaks(t)
	s := startPollServer(t, nil, true, nil)
	tr := s.srv.Client().Transport.(*http.Transport)
	c := s.dial(&websocket.DialOptions{TLSConfig: tr.TLSClientConfig.Clone()})
	echoCheck(t, c, [][]byte{[]byte("over"), []byte("tls"), bytes.Repeat([]byte("z"), 100<<10)})
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if pc := s.closed(); websocket.CloseStatus(pc.err) != websocket.StatusNormalClosure {
		t.Fatalf("OnClose: %v", pc.err)
	}
}

// pollerAndAcceptor starts a Poller and a server whose handler only
// accepts (with opts(r), if set) and hands each connection to the test,
// both closed at cleanup.
func pollerAndAcceptor(t *testing.T, opts func(*http.Request) *websocket.AcceptOptions) (*websocket.Poller, string, <-chan *websocket.Conn) {
	t.Helper()
	p, err := websocket.NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var o *websocket.AcceptOptions
		if opts != nil {
			o = opts(r)
		}
		if c, err := websocket.Accept(w, r, o); err == nil {
			conns <- c
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		_ = p.Close()
	})
	return p, "ws" + strings.TrimPrefix(srv.URL, "http"), conns
}

func TestPollerServeErrors(t *testing.T) {
	noLeaks(t)
	p, url, conns := pollerAndAcceptor(t, func(r *http.Request) *websocket.AcceptOptions {
		return &websocket.AcceptOptions{Raw: r.URL.Path == "/raw"}
	})
	h := websocket.HandlerFuncs{Message: func(*websocket.Conn, websocket.MessageType, []byte) {}}
	ctx := context.Background()
	cl, _, err := websocket.Dial(ctx, url+"/raw", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.CloseNow()
	raw := <-conns
	defer raw.CloseNow()
	if err := p.Serve(raw, h); !errors.Is(err, websocket.ErrRawMode) {
		t.Fatalf("Serve(raw): %v", err)
	}
	cl2, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.CloseNow()
	c := <-conns
	if err := p.Serve(c, h); err != nil {
		t.Fatal(err)
	}
	if err := p.Serve(c, h); err == nil {
		t.Fatal("second Serve of one connection succeeded")
	}
}

// BenchmarkPollerEcho: a round trip through a Poller-served echo (client
// Write, server OnMessage → Write, client ReadAppend), over 127.0.0.1.
// allocs/op counts both ends; the server side allocates nothing per
// message once its worker's buffer has grown.
func BenchmarkPollerEcho(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := startPollServer(b, nil, false, nil)
			c := s.dial(nil)
			ctx := context.Background()
			msg := bytes.Repeat([]byte("x"), size)
			buf := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
					b.Fatal(err)
				}
				_, got, err := c.ReadAppend(ctx, buf[:0])
				if err != nil || len(got) != size {
					b.Fatal(err)
				}
			}
		})
	}
}

// Connections end every way at once — the client closes, the handler
// closes from OnMessage, another goroutine calls CloseNow, the client's
// TCP connection drops — while messages flow: every connection gets
// exactly one OnClose, and nothing is left running.
func TestPollerEndingsUnderLoad(t *testing.T) {
	noLeaks(t)
	const n = 60
	s := startPollServer(t, nil, false, func(c *websocket.Conn, typ websocket.MessageType, msg []byte) {
		if string(msg) == "close me" {
			_ = c.Close(websocket.StatusNormalClosure, "asked")
			return
		}
		_ = c.Write(context.Background(), typ, msg)
	})
	var wg sync.WaitGroup
	for i := range n {
		c := s.dial(nil)
		server := <-s.conns
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			for j := range 5 + i%7 {
				if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "%d-%d", i, j)); err != nil {
					return
				}
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
			switch i % 4 {
			case 0:
				_ = c.Close(websocket.StatusNormalClosure, "")
			case 1:
				_ = c.Write(ctx, websocket.MessageText, []byte("close me"))
				_, _, _ = c.Read(ctx) // the close frame; our client answers it
			case 2:
				_ = server.CloseNow()
			case 3:
				c.NetConn().Close()
			}
		})
	}
	wg.Wait()
	seen := map[*websocket.Conn]int{}
	for range n {
		seen[s.closed().c]++
	}
	for c, k := range seen {
		if k != 1 {
			t.Fatalf("%v: %d OnClose calls", c.RemoteAddr(), k)
		}
	}
	s.noMoreCloses()
}

// A connection closed while Serve is taking it (a timer, another
// goroutine) is still reported once.
func TestPollerServeRacesClose(t *testing.T) {
	noLeaks(t)
	p, url, conns := pollerAndAcceptor(t, nil)
	var closes sync.Map // *Conn -> *atomic.Int32
	h := websocket.HandlerFuncs{Close: func(c *websocket.Conn, err error) {
		v, _ := closes.LoadOrStore(c, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}}
	const n = 100
	served := make([]*websocket.Conn, 0, n)
	for range n {
		cl, _, err := websocket.Dial(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := <-conns
		go c.CloseNow()
		if err := p.Serve(c, h); err != nil {
			t.Fatal(err)
		}
		served = append(served, c)
		cl.CloseNow()
	}
	deadline := time.Now().Add(wireTimeout)
	for _, c := range served {
		for {
			v, ok := closes.Load(c)
			if ok && v.(*atomic.Int32).Load() == 1 {
				break
			}
			if ok && v.(*atomic.Int32).Load() > 1 || time.Now().After(deadline) {
				t.Fatalf("%v: OnClose calls: %v", c.RemoteAddr(), v)
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond)
	closes.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("%d OnClose calls for one connection", n)
		}
		return true
	})
}

// A Handler that blocks holds up its own connection only: a connection
// queued behind it in the same batch is read by another worker. The two
// are queued by hand, so that the blocked worker certainly finds the other
// behind it; the other's input arrives while it is queued, which marks it
// pending and queues nothing — only the poller's call for another worker
// can serve it.
func TestPollerBlockedHandlerHoldsUpNoOne(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			blocked, release := make(chan struct{}), make(chan struct{})
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			s := startPollServer(t, nil, false, func(c *websocket.Conn, typ websocket.MessageType, msg []byte) {
				if string(msg) == "block" {
					close(blocked)
					<-release
				}
				_ = c.Write(context.Background(), typ, msg)
			})
			t.Cleanup(unblock) // before the poller's Close, which waits for handlers
			blocker := s.dial(nil)
			blockerServed := <-s.conns
			other := s.dial(nil)
			otherServed := <-s.conns
			queue := websocket.QueueTogether(t, blockerServed, otherServed)

			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			if err := blocker.Write(ctx, websocket.MessageText, []byte("block")); err != nil {
				t.Fatal(err)
			}
			if err := other.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			queue()
			select {
			case <-blocked:
			case <-ctx.Done():
				t.Fatal("the blocking handler never ran")
			}
			if _, got, err := other.Read(ctx); err != nil || string(got) != "hello" {
				t.Fatalf("the connection queued behind a blocked handler: %q, %v", got, err)
			}
			unblock()
			if _, got, err := blocker.Read(ctx); err != nil || string(got) != "block" {
				t.Fatalf("blocked connection after release: %q, %v", got, err)
			}
		})
	}
}
