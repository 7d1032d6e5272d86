package websocket_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// The keepalive of a connection whose application does not read: a pong
// is seen only by a read, so such a connection was closed with
// ErrPongTimeout PingInterval + PongTimeout after it opened, though its
// peer answered every ping. Bytes from the peer that reached the socket
// since the ping, unread, now prove it alive (Linux, ioctl SIOCINQ).

// unreadOpts: keepalive that ends a connection within 300 ms when nothing
// proves the peer alive; the pong timeout leaves a loaded machine time to
// answer.
var unreadOpts = engOpts{PingInterval: 100 * time.Millisecond, PongTimeout: 200 * time.Millisecond}

// needUnreadCount skips a test that needs the count of unread bytes,
// taken on Linux only.
func needUnreadCount(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the count of unread bytes (SIOCINQ) is taken on Linux only")
	}
}

// writeWhenTold is an application that never reads: it writes one message
// when say is closed and returns the Write's error (at once if the
// connection closed before).
func writeWhenTold(say <-chan struct{}) func(c *websocket.Conn) error {
	return func(c *websocket.Conn) error {
		closed := make(chan struct{})
		c.AfterClose(func(error) { close(closed) })
		select {
		case <-say:
		case <-closed:
		}
		return c.Write(context.Background(), websocket.MessageText, []byte("still here"))
	}
}

// writeUntilClosed is an application that only writes: a small message
// every 20 ms until a Write fails, whose error it returns.
func writeUntilClosed(c *websocket.Conn) error {
	for {
		if err := c.Write(context.Background(), websocket.MessageBinary, []byte("tick")); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answerEveryPing plays a live peer: it reads the engine's frames and answers
// each ping with its pong, until n pings came; the test fails if the
// connection ends first.
func answerEveryPing(t *testing.T, p *wirePeer, n int) {
	t.Helper()
	for got := 0; got < n; {
		f, err := p.read()
		if err != nil {
			t.Fatalf("connection ended after %d pings, each answered: %v", got, err)
		}
		if f.op == opPing {
			p.send(opPong, f.payload)
			got++
		}
	}
}

// expectAlive checks a connection whose application never read and whose
// peer answered every ping: open after 6 keepalive rounds (1.6 s at
// unreadOpts, where 300 ms ended it), and its Write goes through. The
// message itself is not awaited: the application returns after the
// Write, the harness then closes the socket with the pongs unread in it,
// which sends a reset, and a reset may discard what the wire peer had
// not read yet.
func expectAlive(t *testing.T, s *session, say chan struct{}) {
	t.Helper()
	answerEveryPing(t, s.wirePeer, 6)
	close(say)
	if err := s.result(); err != nil {
		t.Fatalf("Write after 6 pings answered, none read: %v", err)
	}
	if n := s.conn.Stats().KeepaliveUnread; n == 0 {
		t.Errorf("Stats().KeepaliveUnread = 0, want the pong timeouts the unread pongs answered")
	}
}

// TestKeepaliveUnreadPeerAlive: a connection with keepalive on whose
// application never reads (a typed bidirectional handler that only
// pushes, a raw user that only writes) stays open while its peer answers
// the pings. It was closed with ErrPongTimeout at the first pong timeout.
func TestKeepaliveUnreadPeerAlive(t *testing.T) {
	needUnreadCount(t)
	forRoles(t, func(t *testing.T, r role) {
		say := make(chan struct{})
		s := start(t, r, unreadOpts, writeWhenTold(say))
		expectAlive(t, s, say)
	})
	// Through TLS the socket under the tls.Conn is asked (NetConn): the
	// pongs' records wait there unread.
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		say := make(chan struct{})
		s := startTLSServer(t, unreadOpts, writeWhenTold(say))
		expectAlive(t, s, say)
	})
}

// TestKeepaliveUnreadSilentPeer: a peer that sends nothing (a path gone
// dark) is still found dead, the application's reads or none: the
// connection is closed with ErrPongTimeout.
func TestKeepaliveUnreadSilentPeer(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, unreadOpts, writeUntilClosed)
		wantErr(t, s.result(), websocket.ErrPongTimeout)
		if n := s.conn.Stats().KeepaliveUnread; n != 0 {
			t.Errorf("Stats().KeepaliveUnread = %d, want 0: nothing came", n)
		}
	})
}

// TestKeepaliveUnreadPeerFallsSilent: a peer whose bytes arrive once,
// unread, and then nothing more, is closed at a later pong timeout: the
// bytes waiting count once, for the round they came in (the count only
// grows while nobody reads, and it must grow).
func TestKeepaliveUnreadPeerFallsSilent(t *testing.T) {
	needUnreadCount(t)
	// A longer pong timeout: the message must arrive within the first.
	o := engOpts{PingInterval: 100 * time.Millisecond, PongTimeout: 500 * time.Millisecond}
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, o, writeUntilClosed)
		for {
			f := s.mustRead()
			if f.op == opPing {
				break
			}
		}
		// Not the pong: any bytes prove the peer alive.
		s.send(opBinary, make([]byte, 100))
		wantErr(t, s.result(), websocket.ErrPongTimeout)
		if n := s.conn.Stats().KeepaliveUnread; n != 1 {
			t.Errorf("Stats().KeepaliveUnread = %d, want 1: the round the message came in", n)
		}
	})
}

// startTLSServer is startServer over TLS: Accept behind an httptest TLS
// server, a wire peer that does the client handshake by hand.
func startTLSServer(t *testing.T, o engOpts, run func(c *websocket.Conn) error) *session {
	t.Helper()
	s := &session{done: make(chan error, 1)}
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, o.accept())
		if err != nil {
			s.done <- err
			return
		}
		conns <- c
		err = run(c)
		c.CloseNow()
		s.done <- err
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: wireTimeout}, Config: &tls.Config{RootCAs: roots}}
	nc, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	s.wirePeer, _ = handshakeWirePeer(t, nc, srv.Listener.Addr().String(), "")
	select {
	case s.conn = <-conns:
	case err := <-s.done:
		t.Fatalf("Accept: %v", err)
	case <-time.After(wireTimeout):
		t.Fatal("Accept did not return")
	}
	return s
}

// TestKeepaliveReaderStillNeedsPong: where the application reads, the
// pong is what counts, as before: a peer that keeps sending but never
// answers a ping (the path towards it dark, say) is closed with
// ErrPongTimeout. Counting every byte that arrived would have kept it
// open for as long as it sent.
func TestKeepaliveReaderStillNeedsPong(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, unreadOpts, func(c *websocket.Conn) error {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return err
				}
			}
		})
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for range 250 { // 5 s at most: the connection ends well before
				if _, err := s.nc.Write(encodeFrame(true, 0, opBinary, s.client, s.nextKey(), []byte("data"))); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		wantErr(t, s.result(), websocket.ErrPongTimeout)
		<-sent
	})
}

// TestKeepaliveReadOnceThenWriteOnly: an application that reads one
// message (a subscription, say) while a ping is out and then only
// writes keeps a peer that answers: the pong, behind that message or in
// the same segment, was read from the socket with it but never parsed.
// A rule that required nothing read since the ping closed it.
func TestKeepaliveReadOnceThenWriteOnly(t *testing.T) {
	needUnreadCount(t)
	for _, sameSegment := range []bool{false, true} {
		forRoles(t, func(t *testing.T, r role) {
			say := make(chan struct{})
			s := start(t, r, unreadOpts, func(c *websocket.Conn) error {
				if _, _, err := c.Read(context.Background()); err != nil {
					return err
				}
				return writeWhenTold(say)(c)
			})
			var ping []byte
			for ping == nil {
				if f := s.mustRead(); f.op == opPing {
					ping = f.payload
				}
			}
			request := encodeFrame(true, 0, opBinary, s.client, s.nextKey(), []byte("subscribe"))
			if sameSegment {
				s.writeRaw(append(request, encodeFrame(true, 0, opPong, s.client, s.nextKey(), ping)...))
			} else {
				s.writeRaw(request)
				time.Sleep(30 * time.Millisecond) // the application reads it meanwhile
				s.send(opPong, ping)
			}
			expectAlive(t, s, say)
		})
	}
}
