package websocket_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// A client leaves the server to close the TCP connection first (RFC 6455
// §7.1.1: the client SHOULD wait for the server's TCP close, so that the
// server, not the client, carries TIME_WAIT). That wait is the socket's
// business, not the caller's: once both close frames have crossed, Read
// returns the *CloseError and Close returns at once, and the socket waits
// for the server's FIN in the background, up to CloseTimeout. Servers that
// linger before closing TCP are common: gorilla/websocket's command
// example sends its close frame and sleeps closeGracePeriod (10 s) first,
// and a client's Read and Close sat out the whole CloseTimeout behind it.

// finCloseTimeout is a CloseTimeout no test reaches: a call that waits for
// the server's FIN would outlast every bound below.
const finCloseTimeout = time.Minute

// expectOpen checks that the engine has not closed the TCP connection:
// nothing arrives for a moment (the time for a close to happen if it were
// going to), and the connection is not at EOF.
func (p *wirePeer) expectOpen(why string) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [1]byte
	if n, err := p.br.Read(b[:]); n > 0 || !isTimeout(err) {
		p.t.Fatalf("wire peer: %s: read %d bytes, %v; want the connection open and silent", why, n, err)
	}
}

// sendFIN half-closes the wire peer's side: the server's TCP close, which
// the client waits for.
func (p *wirePeer) sendFIN() {
	p.t.Helper()
	if err := p.nc.(*net.TCPConn).CloseWrite(); err != nil {
		p.t.Fatalf("wire peer: CloseWrite: %v", err)
	}
}

// TestClientReadReturnsAtServerClose guards the client's Read when the
// server closes (RFC 6455 §7.1.1, §7.1.2): it returns the server's
// *CloseError as soon as it has answered the close frame, while the
// server keeps TCP open; the socket stays open for the server's FIN
// (also through the CloseNow the session calls once Read returned, as
// wsrpc's layer does), then closes.
func TestClientReadReturnsAtServerClose(t *testing.T) {
	noLeaks(t) // the background wait ends with the FIN
	s := start(t, roleClient, engOpts{CloseTimeout: finCloseTimeout}, echo)
	s.send(opText, []byte("last"))
	s.expect(opText, []byte("last"))
	s.sendClose(4000, "done")
	if f := s.mustRead(); f.op != opClose || string(f.payload) != string(closePayload(4000, "")) {
		t.Fatalf("got op %#x %q, want the close reply 4000", f.op, f.payload)
	}
	var ce *websocket.CloseError
	if err := within(t, wireTimeout, s.done, "Read after the close handshake, with the server's TCP still open"); !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "done" {
		t.Fatalf("Read: %v, want the server's close 4000 \"done\"", err)
	}
	if got := websocket.CloseStatus(ce); got != 4000 {
		t.Fatalf("CloseStatus %d, want 4000", got)
	}
	s.expectOpen("after the close handshake, before the server's FIN")
	s.sendFIN()
	s.expectEOF() // the client closed its side after the server's
}

// TestClientCloseReturnsAtServerReply guards the client's Close (RFC 6455
// §7.1.2): it returns nil once the server's close frame arrived, whether
// a reader or Close itself read it, while the server keeps TCP open; the
// socket closes after the server's FIN.
func TestClientCloseReturnsAtServerReply(t *testing.T) {
	for _, reading := range []bool{true, false} {
		name := "Close reads"
		if reading {
			name = "reader"
		}
		t.Run(name, func(t *testing.T) {
			noLeaks(t)
			release := make(chan struct{})
			run := echo
			if !reading {
				run = func(*websocket.Conn) error { <-release; return nil }
			}
			s := start(t, roleClient, engOpts{CloseTimeout: finCloseTimeout}, run)
			defer close(release)
			closed := make(chan error, 1)
			go func() { closed <- s.conn.Close(websocket.StatusNormalClosure, "bye") }()
			if f := s.mustRead(); f.op != opClose {
				t.Fatalf("got op %#x, want the client's close frame", f.op)
			}
			s.sendClose(1000, "")
			if err := within(t, wireTimeout, closed, "Close after the server's reply, with its TCP still open"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := s.conn.Write(context.Background(), websocket.MessageText, []byte("x")); err == nil {
				t.Fatal("Write after Close succeeded")
			}
			s.expectOpen("after the close handshake, before the server's FIN")
			s.sendFIN()
			s.expectEOF()
		})
	}
}

// TestClientFINWaitBounded: a server that never closes TCP after the
// closing handshake costs the client its socket for CloseTimeout, not
// longer; then the client closes it itself (§7.1.1 lets the client close
// when the server does not within a reasonable time).
func TestClientFINWaitBounded(t *testing.T) {
	noLeaks(t)
	s := start(t, roleClient, engOpts{CloseTimeout: 100 * time.Millisecond}, echo)
	s.sendClose(1000, "")
	if f := s.mustRead(); f.op != opClose {
		t.Fatalf("got op %#x, want the close reply", f.op)
	}
	if err := s.result(); websocket.CloseStatus(err) != 1000 {
		t.Fatalf("Read: %v, want the close 1000", err)
	}
	s.expectEOF() // within wireTimeout, with no FIN from us
}
