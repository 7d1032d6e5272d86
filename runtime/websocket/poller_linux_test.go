package websocket

// Regression tests for how the epoll Poller learns that a peer has gone.

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestPollerPeerDataAndFINInOneEvent guards the end of stream that comes
// in the same epoll event as the last data. A connection idle in the
// poller receives one frame and the peer's FIN in a single TCP segment
// (the peer's socket is corked, so shutdown piggybacks the FIN on the
// queued data): epoll reports EPOLLIN|EPOLLRDHUP once, the worker's read
// returns the frame, and with the edge-triggered registration no further
// event ever comes. The worker must read on until it sees the end of the
// stream, or the connection stays served forever: OnClose never called,
// its descriptor leaked.
func TestPollerPeerDataAndFINInOneEvent(t *testing.T) {
	p, err := NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 3
	got := make(chan []byte, n)
	closed := make(chan error, n)
	h := HandlerFuncs{
		Message: func(_ *Conn, _ MessageType, msg []byte) { got <- append([]byte(nil), msg...) },
		Close:   func(_ *Conn, err error) { closed <- err },
	}
	for i := range n {
		c, peer, _ := serverPair(t, time.Second)
		// Serve returns once its first run has drained the socket: the
		// connection is idle in the poller from here.
		if err := p.Serve(c, h); err != nil {
			t.Fatal(err)
		}
		tc := peer.(*net.TCPConn)
		setCork(t, tc)
		if _, err := tc.Write(clientFrame(OpBinary, []byte{'m', byte('0' + i)})); err != nil {
			t.Fatal(err)
		}
		if err := tc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-got:
			if string(msg) != string([]byte{'m', byte('0' + i)}) {
				t.Fatalf("peer %d: message %q", i, msg)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("peer %d: message not handled", i)
		}
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Fatalf("peer %d sent a message and its FIN together: no OnClose 2 s later, the connection stays served", i)
		}
	}
}

// setCork holds c's output back until it is uncorked or shut down
// (TCP_CORK, tcp(7)).
func setCork(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
}
