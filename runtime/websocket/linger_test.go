package websocket_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

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
	failed := make(chan error, 1)
	read := func(c *websocket.Conn) error {
		_, _, err := c.Read(context.Background())
		failed <- err
		return err
	}
	o := engOpts{MaxMessageSize: maxMessage, CloseTimeout: closeTimeout}
	switch mode {
	case lingerServer:
		return startServer(t, o.accept(), read).wirePeer, failed
	case lingerClient:
		return startClient(t, o.dial(), read).wirePeer, failed
	}
	var p *websocket.Poller
	if mode == lingerPoller {
		var err error
		if p, err = websocket.NewPoller(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
	}
	polled := make(chan bool, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, o.accept())
		if err != nil {
			failed <- err
			return
		}
		if p == nil {
			_ = read(c)
			c.CloseNow()
			return
		}
		h := websocket.HandlerFuncs{Close: func(c *websocket.Conn, err error) {
			failed <- err
			c.CloseNow()
		}}
		if err := p.Serve(c, h); err != nil {
			failed <- err
			return
		}
		polled <- websocket.Polled(c)
	}))
	var nc net.Conn
	var err error
	if mode == lingerTLS {
		srv.StartTLS()
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: wireTimeout}, Config: &tls.Config{RootCAs: roots}}
		nc, err = d.Dial("tcp", srv.Listener.Addr().String())
	} else {
		srv.Start()
		nc, err = net.DialTimeout("tcp", srv.Listener.Addr().String(), wireTimeout)
	}
	t.Cleanup(srv.Close)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	peer, _ := handshakeWirePeer(t, nc, srv.Listener.Addr().String(), "")
	if p != nil {
		// Linux serves it from epoll, whose raw reads are what the drain
		// must take over; elsewhere a goroutine reads it, as for Accept.
		if got := within(t, wireTimeout, polled, "Serve"); got != (runtime.GOOS == "linux") {
			t.Fatalf("Polled = %v on %s", got, runtime.GOOS)
		}
	}
	return peer, failed
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
// resource_exhausted). So the engine half-closes and reads what comes
// until the peer closes. Read's failure stays immediate, and CloseNow
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
			// The close frame, then EOF: the engine half-closed.
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
			p.expectClose(1009) // and EOF: the engine half-closed
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
