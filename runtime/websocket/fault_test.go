package websocket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// faultProxy forwards one TCP connection between a client and target and
// injects faults: blackhole stops forwarding in both directions without
// closing anything (a peer that vanished without a FIN: pulled cable,
// dead NAT entry), and cut lets n more bytes through in one direction and
// then closes both sides, in the middle of whatever was being sent.
type faultProxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	cond      *sync.Cond
	blackhole bool
	budget    [2]int // per direction (0: client→server, 1: server→client); -1 unlimited
	conns     []net.Conn
	wg        sync.WaitGroup
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, budget: [2]int{-1, -1}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(s, c, 0)
		go p.pipe(c, s, 1)
	}
}

// pipe copies src to dst under the fault settings of direction dir.
func (p *faultProxy) pipe(dst, src net.Conn, dir int) {
	defer p.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.blackhole {
				p.cond.Wait() // hold the bytes: nothing goes through, nothing closes
			}
			b := p.budget[dir]
			cut := false
			if b >= 0 && n >= b {
				n, cut = b, true
			} else if b >= 0 {
				p.budget[dir] = b - n
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil || cut {
				p.closeConns()
				return
			}
		}
		if err != nil {
			// Pass a half-close on as a FIN.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

func (p *faultProxy) setBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.cond.Broadcast()
	p.mu.Unlock()
}

// cut lets n more bytes through in direction dir, then closes both sides.
func (p *faultProxy) cut(dir, n int) {
	p.mu.Lock()
	p.budget[dir] = n
	p.mu.Unlock()
}

func (p *faultProxy) closeConns() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.setBlackhole(false)
	p.closeConns()
	p.wg.Wait()
}

// acceptServer runs Accept with opts for each request and hands the
// connection to fn on the handler's goroutine.
func acceptServer(t *testing.T, opts *websocket.AcceptOptions, fn func(*websocket.Conn)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		fn(c)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// within fails the test if ch yields nothing within d: a fault must be
// noticed, not wait forever.
func within[T any](t *testing.T, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %v", what, d)
		var zero T
		return zero
	}
}

// TestFaultBlackholeDetectedByPongTimeout: when the path to the peer
// silently stops carrying packets (no FIN, no RST), both ends' keepalive
// notice within PingInterval+PongTimeout: the reads fail with
// ErrPongTimeout instead of waiting forever.
func TestFaultBlackholeDetectedByPongTimeout(t *testing.T) {
	noLeaks(t)
	const ping, pong = 50 * time.Millisecond, 150 * time.Millisecond
	serverErr := make(chan error, 1)
	srv := acceptServer(t, &websocket.AcceptOptions{PingInterval: ping, PongTimeout: pong, CloseTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				serverErr <- err
				return
			}
		}
	})
	proxy := newFaultProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws://"+proxy.addr(), &websocket.DialOptions{PingInterval: ping, PongTimeout: pong, CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	clientErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				clientErr <- err
				return
			}
		}
	}()
	// Keepalive works through the healthy path for several intervals.
	time.Sleep(4 * (ping + pong))
	select {
	case err := <-serverErr:
		t.Fatalf("server failed on a healthy path: %v", err)
	case err := <-clientErr:
		t.Fatalf("client failed on a healthy path: %v", err)
	default:
	}
	proxy.setBlackhole(true)
	if err := within(t, 10*time.Second, serverErr, "server"); !errors.Is(err, websocket.ErrPongTimeout) {
		t.Errorf("server read: %v, want ErrPongTimeout", err)
	}
	if err := within(t, 10*time.Second, clientErr, "client"); !errors.Is(err, websocket.ErrPongTimeout) {
		t.Errorf("client read: %v, want ErrPongTimeout", err)
	}
}

// TestWriteTimeoutNotHiddenByLateCancel: a write that ran past
// WriteTimeout reports its timeout even if its context ends between the
// failure and the report. wsrpc's server streams share one context
// between the handler's writes and a peer watcher that cancels it when
// its read finds the connection closed (by that very timeout): the write
// then reported context.Canceled, and OnClose said 4001, canceled, for a
// client that had stopped reading (about 1 run in 150).
func TestWriteTimeoutNotHiddenByLateCancel(t *testing.T) {
	const writeTimeout = time.Second
	s := startServer(t, &websocket.AcceptOptions{WriteTimeout: writeTimeout, CloseTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) error {
		ctx := &endsLateCtx{from: time.Now().Add(writeTimeout / 2)}
		ctx.Context, ctx.cancel = context.WithCancel(context.Background())
		defer ctx.cancel()
		// More than the socket buffers hold: the wire peer never reads.
		return c.Write(ctx, websocket.MessageBinary, make([]byte, 32<<20))
	})
	if err := s.result(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write: %v, want its timeout (os.ErrDeadlineExceeded)", err)
	}
}

// endsLateCtx is a context that is cancelled when Err is called at or
// after from: the write looks at it when it starts, and again only to
// report how it ended, by when its timeout (twice from) has closed the
// connection.
type endsLateCtx struct {
	context.Context
	cancel context.CancelFunc
	from   time.Time
}

func (c *endsLateCtx) Err() error {
	if !time.Now().Before(c.from) {
		c.cancel()
	}
	return c.Context.Err()
}

// TestFaultPeerStopsReading: a client that never reads cannot block the
// server's writer forever: once the socket buffers are full, the write
// times out after WriteTimeout and closes that connection only; another
// client of the same server keeps echoing.
func TestFaultPeerStopsReading(t *testing.T) {
	noLeaks(t)
	const writeTimeout = 300 * time.Millisecond
	floodErr := make(chan error, 1)
	srv := acceptServer(t, &websocket.AcceptOptions{WriteTimeout: writeTimeout, CloseTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) {
		ctx := context.Background()
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if string(data) == "flood me" {
			msg := bytes.Repeat([]byte("x"), 64<<10)
			for i := 0; ; i++ {
				if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
					floodErr <- err
					return
				}
				if i > 1<<16 { // 4 GiB: the peer would have to be reading
					floodErr <- nil
					return
				}
			}
		}
		for ; err == nil; typ, data, err = c.Read(ctx) {
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	stuck, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.CloseNow()
	healthy, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.CloseNow()

	if err := stuck.Write(ctx, websocket.MessageText, []byte("flood me")); err != nil {
		t.Fatal(err)
	}
	// stuck never reads again.
	err = within(t, 20*time.Second, floodErr, "server writer")
	if err == nil {
		t.Fatal("the server wrote 4 GiB to a peer that does not read")
	}
	if !faultTimeout(err) {
		t.Errorf("flood write failed with %v, want a write timeout", err)
	}
	t.Logf("flood write: %v", err)
	for i := range 20 {
		msg := []byte{byte(i)}
		if err := healthy.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := healthy.Read(ctx); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("healthy echo %d: %q, %v", i, got, err)
		}
	}
	if err := healthy.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Error(err)
	}
}

// TestFaultCutMidMessage cuts the TCP connection in the middle of a
// frame, and between the frames of a fragmented message, with and
// without permessage-deflate, in each direction: the receiving side's
// read fails promptly with an error (no hang, no panic, no partial
// message delivered as whole), and the sender's next write fails too.
func TestFaultCutMidMessage(t *testing.T) {
	noLeaks(t)
	// Compressible but not trivially: about 5:1 with deflate.
	var msg []byte
	for i := 0; len(msg) < 256<<10; i++ {
		msg = append(msg, []byte(strings.Repeat(string(rune('a'+i%26)), 1+i%7)+" ")...)
		msg = append(msg, byte(i), byte(i>>8))
	}
	for _, deflate := range []bool{false, true} {
		for _, dir := range []int{0, 1} { // 0: client sends, the server is cut off; 1: the reverse
			for _, mode := range []string{"mid-frame", "between-fragments"} {
				name := map[bool]string{false: "plain", true: "deflate"}[deflate] + "/" + map[int]string{0: "to-server", 1: "to-client"}[dir] + "/" + mode
				t.Run(name, func(t *testing.T) {
					var exts *websocket.ExtensionSet
					if deflate {
						exts = websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))
					}
					opts := &websocket.AcceptOptions{Extensions: exts, CloseTimeout: 100 * time.Millisecond, WriteTimeout: 5 * time.Second}
					recvErr := make(chan error, 2)
					send := func(ctx context.Context, c *websocket.Conn) error {
						if mode == "mid-frame" {
							return c.Write(ctx, websocket.MessageBinary, msg)
						}
						w, err := c.Writer(ctx, websocket.MessageBinary)
						if err != nil {
							return err
						}
						for off := 0; off < len(msg); off += 4 << 10 {
							if _, err := w.Write(msg[off : off+4<<10]); err != nil {
								return err
							}
						}
						return w.Close()
					}
					receive := func(ctx context.Context, c *websocket.Conn) {
						_, data, err := c.Read(ctx)
						if err == nil {
							err = errors.New("a whole message arrived: " + map[bool]string{true: "intact", false: "CORRUPT"}[bytes.Equal(data, msg)])
						}
						recvErr <- err
					}
					sendErr := make(chan error, 1)
					srv := acceptServer(t, opts, func(c *websocket.Conn) {
						ctx := context.Background()
						if dir == 0 {
							receive(ctx, c)
							return
						}
						// Wait for the go-ahead, then send until the cut.
						if _, _, err := c.Read(ctx); err != nil {
							return
						}
						var err error
						for err == nil {
							err = send(ctx, c)
						}
						sendErr <- err
					})
					proxy := newFaultProxy(t, strings.TrimPrefix(srv.URL, "http://"))
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					c, _, err := websocket.Dial(ctx, "ws://"+proxy.addr(), &websocket.DialOptions{Extensions: exts, CloseTimeout: 100 * time.Millisecond, WriteTimeout: 5 * time.Second})
					if err != nil {
						t.Fatal(err)
					}
					defer c.CloseNow()
					if deflate && len(c.Extensions()) != 1 {
						t.Fatal("permessage-deflate was not negotiated")
					}
					// The cut falls inside the first message: past its
					// first frame header, before its end (compressed, it
					// is still tens of KiB).
					proxy.cut(dir, 3000)
					if dir == 0 {
						go func() {
							var err error
							for err == nil {
								err = send(ctx, c)
							}
							sendErr <- err
						}()
					} else {
						if err := c.Write(ctx, websocket.MessageText, []byte("go")); err != nil {
							t.Fatal(err)
						}
						go receive(ctx, c)
					}
					rerr := within(t, 10*time.Second, recvErr, "receiver")
					if rerr == nil || strings.HasPrefix(rerr.Error(), "a whole message") {
						t.Fatalf("receiver: %v, want an error", rerr)
					}
					// The cut is the transport's failure (1006), not bad
					// data from the peer, whatever layer was reading.
					if !errors.Is(rerr, io.ErrUnexpectedEOF) {
						t.Errorf("receiver: %v, want an unexpected EOF", rerr)
					}
					if errors.Is(rerr, websocket.ErrInvalidPayload) {
						t.Errorf("receiver: %v blames the peer's data for a cut connection", rerr)
					}
					serr := within(t, 10*time.Second, sendErr, "sender")
					if serr == nil {
						t.Fatal("sender: no error")
					}
					t.Logf("receiver: %v; sender: %v", rerr, serr)
				})
			}
		}
	}
}

func faultTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// noLeaks fails t if goroutines started during it outlive it, checked
// after every cleanup (servers, proxies) has run.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// TestFaultPongTimeoutUnblocksStalledWrite: a client that keeps sending
// into a path gone dark fills the socket's buffers, and its Write blocks;
// keepalive must still end the connection within PingInterval +
// PongTimeout, failing the stalled Write and the pending Read with
// ErrPongTimeout. It wrote a 1011 close frame first, which waited behind
// the stalled Write for the whole write timeout (30 s by default), with
// Write and Read blocked on a connection known dead.
func TestFaultPongTimeoutUnblocksStalledWrite(t *testing.T) {
	url, peers := fakeServer(t, acceptHandshake) // a peer that never reads again
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if p := <-peers; p == nil {
		t.Fatal("fake server: no connection")
	}
	writeErr, readErr := make(chan error, 1), make(chan error, 1)
	go func() {
		msg := make([]byte, 64<<10)
		for {
			if err := c.Write(context.Background(), websocket.MessageBinary, msg); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	// Far less than the 30 s write timeout a close frame would wait for.
	if err := within(t, 10*time.Second, writeErr, "stalled Write"); !errors.Is(err, websocket.ErrPongTimeout) {
		t.Errorf("Write: %v, want ErrPongTimeout", err)
	}
	if err := within(t, 10*time.Second, readErr, "pending Read"); !errors.Is(err, websocket.ErrPongTimeout) {
		t.Errorf("Read: %v, want ErrPongTimeout", err)
	}
}
