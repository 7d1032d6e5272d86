package websocket_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/sockbuf"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// lingerMode is how the engine whose connection fails is set up.
type lingerMode string

const (
	lingerServer lingerMode = "server" // Accept, a goroutine calling Read
	lingerPoller lingerMode = "poller" // Accept, served by a Poller (epoll)
	lingerTLS    lingerMode = "tls"    // Accept over TLS, a goroutine calling Read
	lingerClient lingerMode = "client" // Dial, a goroutine calling Read
)

// startFailing connects a wire peer to an engine in mode, whose first read
// is to fail; the failure's error arrives on the channel. Like wsrpc's
// layer, the engine calls CloseNow once its read has failed.
func startFailing(t *testing.T, mode lingerMode, maxMessage int64, closeTimeout time.Duration) (*wirePeer, <-chan error) {
	t.Helper()
	o := engOpts{MaxMessageSize: maxMessage, CloseTimeout: closeTimeout}
	switch mode {
	case lingerServer:
		failed := make(chan error, 1)
		read := func(c *websocket.Conn) error {
			_, _, err := c.Read(context.Background())
			failed <- err
			return err
		}
		return startServer(t, o.accept(), read).wirePeer, failed
	case lingerClient:
		failed := make(chan error, 1)
		read := func(c *websocket.Conn) error {
			_, _, err := c.Read(context.Background())
			failed <- err
			return err
		}
		return startClient(t, o.dial(), read).wirePeer, failed
	}
	srv, failed, polled := failingServer(t, mode, o.accept())
	var nc net.Conn
	var err error
	if mode == lingerTLS {
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: wireTimeout}, Config: &tls.Config{RootCAs: roots}}
		nc, err = d.Dial("tcp", srv.Listener.Addr().String())
	} else {
		nc, err = net.DialTimeout("tcp", srv.Listener.Addr().String(), wireTimeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	peer, _ := handshakeWirePeer(t, nc, srv.Listener.Addr().String(), "")
	checkPolled(t, mode, polled)
	return peer, failed
}

// failingServer starts an Accept server (mode lingerServer, lingerPoller
// or lingerTLS) whose connections fail on their first read, the error
// arriving on failed; polled says, for lingerPoller, whether Serve put the
// connection in epoll. Like wsrpc's layer, it calls CloseNow once the
// read has failed.
func failingServer(t *testing.T, mode lingerMode, opts *websocket.AcceptOptions) (srv *httptest.Server, failed <-chan error, polled <-chan bool) {
	t.Helper()
	failedc, polledc := make(chan error, 1), make(chan bool, 1)
	var p *websocket.Poller
	if mode == lingerPoller {
		var err error
		if p, err = websocket.NewPoller(nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
	}
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			failedc <- err
			return
		}
		if p == nil {
			_, _, err := c.Read(context.Background())
			failedc <- err
			c.CloseNow()
			return
		}
		h := websocket.HandlerFuncs{Close: func(c *websocket.Conn, err error) {
			failedc <- err
			c.CloseNow()
		}}
		if err := p.Serve(c, h); err != nil {
			failedc <- err
			return
		}
		polledc <- websocket.Polled(c)
	}))
	if mode == lingerTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, failedc, polledc
}

// checkPolled checks, for lingerPoller, that Serve put the connection in
// the Poller's epoll set.
func checkPolled(t *testing.T, mode lingerMode, polled <-chan bool) {
	t.Helper()
	if mode != lingerPoller {
		return
	}
	// Linux serves it from epoll, whose raw reads are what the drain
	// must take over; elsewhere a goroutine reads it, as for Accept.
	if got := within(t, wireTimeout, polled, "Serve"); got != (runtime.GOOS == "linux") {
		t.Fatalf("Polled = %v on %s", got, runtime.GOOS)
	}
}

// sendOversize starts a frame over the engine's 1 KiB limit, which fails
// the connection with 1009 at its header, and waits for the failure.
func sendOversize(t *testing.T, p *wirePeer, failed <-chan error) {
	t.Helper()
	p.writeRaw(encodeHeader(true, 0, opBinary, p.client, p.nextKey(), 64<<10))
	wantErr(t, within(t, wireTimeout, failed, "the engine's read"), websocket.ErrMessageTooBig)
}

// TestFailLingersUntilPeerReadsClose guards the lingering close of a
// connection failed on what the peer sent (RFC 6455 §7.1.7, here 1009 for
// a message over MaxMessageSize): the peer, still writing the rest of its
// message when we fail, must get our close frame. A socket closed with
// input unread, or that input reaches after its close, answers with a TCP
// reset, which fails the peer's next write and may erase our close frame
// before the peer reads it (RFC 9112 §9.6 describes the same for HTTP):
// the peer saw "connection reset by peer", a lost connection (wsrpc's
// clients reported unavailable, which WithReconnect retries, not
// resource_exhausted). So the engine reads and drops what comes, frame by
// frame, until the peer's close frame (or EOF). Read's failure stays
// immediate, and CloseNow
// afterwards does not cut the lingering short. The peer here sends only
// once the engine's read has failed, so without the lingering every run
// draws the reset.
func TestFailLingersUntilPeerReadsClose(t *testing.T) {
	for _, mode := range []lingerMode{lingerServer, lingerPoller, lingerTLS, lingerClient} {
		t.Run(string(mode), func(t *testing.T) {
			noLeaks(t) // the drain ends when the peer closes, at cleanup
			p, failed := startFailing(t, mode, 1<<10, wireTimeout)
			sendOversize(t, p, failed)
			// The rest of the message, as a peer that writes a message
			// whole before it reads. Each pause gives a reset the time to
			// come back and fail the next write.
			chunk := make([]byte, 4<<10)
			for i := range 16 {
				_ = p.nc.SetWriteDeadline(time.Now().Add(wireTimeout))
				if _, err := p.nc.Write(chunk); err != nil {
					t.Fatalf("write %d after the engine failed: %v (the engine reset the connection before the close frame was read)", i, err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			// The close frame; the peer answers it (a client, as §5.5.1
			// has it) or closes TCP (a server, §7.1.1), and the engine,
			// which has drained the message up to that point, closes.
			p.expectClose(1009)
		})
	}
}

// TestFailLingerBounded: the lingering close of TestFailLingersUntilPeerReadsClose
// ends without the peer's help: after the close timeout for a peer that
// keeps the connection open and sends a little now and then, after its
// byte limit (MaxMessageSize×2 + 1 MiB) for one that floods it. The socket
// is then closed, and the peer's writes draw a reset.
func TestFailLingerBounded(t *testing.T) {
	cases := []struct {
		name         string
		closeTimeout time.Duration
		chunk        int
		pause        time.Duration
	}{
		{"close timeout", 200 * time.Millisecond, 16, 10 * time.Millisecond},
		// A close timeout the test never reaches: only the limit ends it.
		{"byte limit", time.Minute, 64 << 10, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			p, failed := startFailing(t, lingerServer, 1<<10, tc.closeTimeout)
			sendOversize(t, p, failed)
			// No answer: the peer sends on instead. Its bytes are the rest
			// of the oversize frame's 64 KiB payload, then (zeros) empty
			// frames, which the drain parses and drops.
			p.expectCloseFrame(1009)
			chunk := make([]byte, tc.chunk)
			deadline := time.Now().Add(wireTimeout)
			_ = p.nc.SetWriteDeadline(deadline)
			var sent int
			for {
				n, err := p.nc.Write(chunk)
				sent += n
				if err != nil {
					if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
						t.Fatalf("after %d bytes: %v, want the reset of a closed socket", sent, err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the engine still reads after %v and %d bytes", wireTimeout, sent)
				}
				time.Sleep(tc.pause)
			}
			if tc.pause == 0 && sent < 1<<20 {
				t.Errorf("socket closed after %d bytes, before the limit", sent)
			}
		})
	}
}

// nginxProxy forwards the TCP connections it accepts to addr, both ways,
// as nginx proxies an upgraded (WebSocket) request: as soon as either
// side's read ends (EOF or an error) it closes both connections
// (ngx_http_upstream_process_upgraded finalizes the request), whatever the
// other side is still sending. It returns the proxy's address.
func nginxProxy(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			track(down)
			_ = down.(*net.TCPConn).SetReadBuffer(16 << 10)
			up, err := net.DialTimeout("tcp", addr, wireTimeout)
			if err != nil {
				down.Close()
				continue
			}
			track(up)
			var once sync.Once
			end := func() { once.Do(func() { down.Close(); up.Close() }) }
			wg.Go(func() { _, _ = io.Copy(up, down); end() })
			wg.Go(func() { _, _ = io.Copy(down, up); end() })
		}
	})
	return ln.Addr().String()
}

// TestFailReachesPeerThroughProxy: the close frame of a connection failed
// on the peer's input reaches a peer behind a proxy that ends the tunnel
// at the first EOF (nginx, HAProxy). The engine used to half-close before
// it drained: the proxy, seeing our FIN, closed both sides while the
// client was still writing its message, and the client got "connection
// reset by peer" (unavailable, which WithReconnect retries) instead of
// 1009 (resource_exhausted): through nginx 10 of 10 uploads of 8 MB over a
// 4 MiB limit (a user walkthrough), here every run. Now the engine drains
// without a FIN, frame by frame, until the client's close frame.
func TestFailReachesPeerThroughProxy(t *testing.T) {
	const maxMessage = 1 << 20
	for _, mode := range []lingerMode{lingerServer, lingerPoller} {
		t.Run(string(mode), func(t *testing.T) {
			noLeaks(t)
			srv, failed, polled := failingServer(t, mode, &websocket.AcceptOptions{MaxMessageSize: maxMessage, CloseTimeout: wireTimeout})
			proxy := nginxProxy(t, srv.Listener.Addr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 2*wireTimeout)
			defer cancel()
			d := sockbuf.Dialer(0, 16<<10)
			c, _, err := websocket.Dial(ctx, "ws://"+proxy+"/", &websocket.DialOptions{CloseTimeout: wireTimeout, NetDialContext: d.DialContext})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			checkPolled(t, mode, polled)
			// One Write, as a client sends a message whole before it
			// reads: the engine fails it at its header, when little of it
			// has left the client (small socket buffers on the client's
			// side of the proxy keep it so), and lingerLimit (2 MiB +
			// 1 MiB here) covers the rest.
			if err := c.Write(ctx, websocket.MessageBinary, make([]byte, 2*maxMessage)); err != nil {
				t.Fatalf("Write: %v (the proxy reset the connection: it saw the engine's EOF before the client read the close frame)", err)
			}
			_, _, err = c.Read(ctx)
			if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
				t.Fatalf("Read: %v (status %d), want the engine's 1009", err, got)
			}
			wantErr(t, within(t, wireTimeout, failed, "the engine's read"), websocket.ErrMessageTooBig)
		})
	}
}

// TestFailClosesOnPeerCloseFrame: a peer that answers the close frame of
// a failed connection with its own and then waits for the server to close
// TCP (RFC 6455 §7.1.1; browsers do) sees it closed promptly, not after
// CloseTimeout: the drain reads frames, and the peer's close frame
// completes the closing handshake. Before that the engine does not end
// the TCP connection (no half-close: a proxy would tear the tunnel down,
// see TestFailReachesPeerThroughProxy). A drain that read raw bytes until
// EOF without a half-close held the connection for the whole
// CloseTimeout. Our client, whose server answers, waits for the server's
// FIN after that, as after any closing handshake (§7.1.1).
func TestFailClosesOnPeerCloseFrame(t *testing.T) {
	for _, mode := range []lingerMode{lingerServer, lingerPoller, lingerTLS, lingerClient} {
		t.Run(string(mode), func(t *testing.T) {
			noLeaks(t)
			// A close timeout the test never reaches.
			p, failed := startFailing(t, mode, 1<<10, time.Minute)
			sendOversize(t, p, failed)
			// The rest of the oversize frame, a whole message after it,
			// and the start of another, left unfinished: the drain must
			// follow the frames through their payloads to the close frame.
			p.writeRaw(make([]byte, 64<<10))
			p.send(opText, []byte("next"))
			p.frame(false, 0, opBinary, make([]byte, 300))
			p.expectCloseFrame(1009)
			p.expectOpen("before our close frame") // no FIN
			p.sendClose(1009, "")
			if mode == lingerClient {
				p.expectOpen("a client after the server's close frame")
				p.sendFIN()
			}
			p.expectEOF() // within wireTimeout, far below the minute
		})
	}
}

// TestFailMalformedHeaderClosesAtOnce: a client failed on a header that
// does not parse (a 64-bit length with its high bit set, RFC 6455 §5.2)
// has lost the framing and closes its socket at once, whatever opcode the
// broken header names. A close opcode there read as the peer's close frame
// to the drain (parseHeader had written it before failing), and the client
// then waited out its close timeout for the server's FIN.
func TestFailMalformedHeaderClosesAtOnce(t *testing.T) {
	for _, op := range []byte{0x1, 0x8} {
		t.Run(websocket.Opcode(op).String(), func(t *testing.T) {
			s := startClient(t, &websocket.DialOptions{CloseTimeout: time.Minute}, func(c *websocket.Conn) error {
				_, _, err := c.Read(context.Background())
				return err
			})
			s.writeRaw([]byte{0x80 | op, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0})
			s.expectCloseFrame(1002)
			// Well short of the close timeout: only a prompt close ends
			// the read with EOF.
			_ = s.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, s.nc); err != nil {
				t.Fatalf("the client kept its socket open after a header that does not parse: %v", err)
			}
		})
	}
}
