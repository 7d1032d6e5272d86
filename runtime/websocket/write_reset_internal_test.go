package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"
)

// resetAfterClose plays a server that refuses a message it will not take:
// it sends a close frame with code and closes with the client's input
// unread, which resets the connection (SO_LINGER 0 makes the reset
// certain). It returns once the reset is sent.
func resetAfterClose(t *testing.T, peer net.Conn, code StatusCode, before ...[]byte) {
	t.Helper()
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	for _, f := range append(before, frameBytes(true, 0, OpClose, false, p[:])) {
		if _, err := peer.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	_ = peer.(*net.TCPConn).SetLinger(0)
	_ = peer.Close()
}

// readPeerClose fails t unless c's next Read returns the peer's close
// frame with code.
func readPeerClose(t *testing.T, c *Conn, code StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioBound)
	defer cancel()
	_, _, err := c.Read(ctx)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("Read: %v (CloseStatus %d), want the peer's close frame, %d", err, CloseStatus(err), code)
	}
}

// writeUntilFails writes until a Write fails (the reset has arrived), at
// most for ioBound.
func writeUntilFails(t *testing.T, c *Conn) error {
	t.Helper()
	deadline := time.Now().Add(ioBound)
	for time.Now().Before(deadline) {
		if err := c.Write(context.Background(), MessageBinary, make([]byte, 1024)); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no Write failed after the peer reset the connection")
	return nil
}

// A client whose Write fails because the server reset the connection
// still reads the close frame the server sent before the reset: the code
// says why (1009 here), where it used to read only ErrClosed wrapping the
// reset (CloseStatus -1), so a permanent refusal looked like a transient
// network failure. The connection is closed with that close frame.
func TestWriteResetKeepsPeerCloseFrame(t *testing.T) {
	for _, hideSock := range []bool{false, true} {
		name := map[bool]string{false: "socket", true: "net.Conn"}[hideSock]
		t.Run(name, func(t *testing.T) {
			local, peer := tcpPair(t)
			var nc net.Conn = local
			if hideSock {
				nc = netOnly{local}
			}
			c := newConn(nc, true, resolveConfig(0, 0, 0, 0, 0, 10*time.Second, false), "", nil, nil)
			t.Cleanup(func() { c.CloseNow() })
			resetAfterClose(t, peer, StatusMessageTooBig)
			werr := writeUntilFails(t, c)
			if !peerReset(werr) {
				t.Fatalf("Write: %v, want a connection reset", werr)
			}
			readPeerClose(t, c, StatusMessageTooBig)
			select {
			case <-c.closed:
			case <-time.After(ioBound):
				t.Fatal("the connection is still open after the peer's close frame")
			}
			if err := c.Write(context.Background(), MessageText, []byte("x")); err == nil {
				t.Fatal("a Write after the reset succeeded")
			}
		})
	}
}

// With nobody reading, a connection whose write was reset is closed by the
// close timeout, with the write's error.
func TestWriteResetClosesWithoutReader(t *testing.T) {
	local, peer := tcpPair(t)
	c := newConn(local, true, resolveConfig(0, 0, 0, 0, 0, 100*time.Millisecond, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow() })
	resetAfterClose(t, peer, StatusMessageTooBig)
	werr := writeUntilFails(t, c)
	select {
	case <-c.closed:
	case <-time.After(ioBound):
		t.Fatal("the connection is still open with nobody reading")
	}
	if err := c.Write(context.Background(), MessageBinary, []byte("x")); !errors.Is(err, ErrClosed) && !peerReset(err) {
		t.Fatalf("Write after the close: %v (first failure %v)", err, werr)
	}
}

// The reset's close frame reaches the reader past a ping the peer sent
// before it (its keepalive): the pong cannot go out, and that failed the
// connection before the close frame was read (a review of 79a32a8, which
// the ping defeated). After it, calls on the closed connection report the
// peer's close frame, not the write's reset.
func TestWriteResetPingBeforeClose(t *testing.T) {
	local, peer := tcpPair(t)
	c := newConn(local, true, resolveConfig(0, 0, 0, 0, 0, 10*time.Second, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow() })
	resetAfterClose(t, peer, StatusMessageTooBig, frameBytes(true, 0, OpPing, false, []byte("hb")))
	writeUntilFails(t, c)
	readPeerClose(t, c, StatusMessageTooBig)
	var ce *CloseError
	if err := c.Write(context.Background(), MessageText, []byte("x")); !errors.As(err, &ce) || ce.Code != StatusMessageTooBig {
		t.Fatalf("Write after the peer's close frame was read: %v, want it (*CloseError 1009)", err)
	}
}

// A Writer whose fragment the reset failed leaves the peer's close frame
// to the reader too: its Close fails the message, not the connection.
func TestWriterResetKeepsPeerCloseFrame(t *testing.T) {
	local, peer := tcpPair(t)
	c := newConn(local, true, resolveConfig(0, 0, 0, 0, 0, 10*time.Second, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow() })
	w, err := c.Writer(context.Background(), MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 100<<10)
	if _, err := w.Write(chunk); err != nil { // a first fragment goes out
		t.Fatal(err)
	}
	resetAfterClose(t, peer, StatusMessageTooBig)
	var werr error
	for deadline := time.Now().Add(ioBound); werr == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, werr = w.Write(chunk)
	}
	if werr == nil {
		t.Fatal("no fragment failed after the reset")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Writer.Close: nil for a message missing a fragment")
	}
	readPeerClose(t, c, StatusMessageTooBig)
}

// A Writer's Close after Close's close frame went out (its fragment then
// refused) does not cut the closing handshake short: the Close under way
// gets the peer's answer, and the peer reads 1000, not 1011.
func TestWriterCloseDuringClosingHandshake(t *testing.T) {
	a, b := tcpPair(t)
	c := newConn(a, true, resolveConfig(0, 0, 0, 0, 0, 3*time.Second, false), "", nil, nil)
	s := newConn(b, false, resolveConfig(0, 0, 0, 0, 0, 3*time.Second, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); s.CloseNow() })
	srvErr := make(chan error, 1)
	start := make(chan struct{})
	go func() {
		<-start // the peer reads once the Writer's Close has run
		for {
			if _, _, err := s.Read(context.Background()); err != nil {
				srvErr <- err
				return
			}
		}
	}()
	w, err := c.Writer(context.Background(), MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 100<<10)
	if _, err := w.Write(chunk); err != nil {
		t.Fatal(err)
	}
	closeErr := make(chan error, 1)
	go func() { closeErr <- c.Close(StatusNormalClosure, "bye") }()
	for deadline := time.Now().Add(ioBound); ; time.Sleep(time.Millisecond) {
		c.frameMu.Lock()
		sent := c.closeFrameSent
		c.frameMu.Unlock()
		if sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close sent no close frame")
		}
	}
	if _, err := w.Write(chunk); err == nil {
		t.Fatal("a fragment after our close frame went out")
	}
	_ = w.Close()
	close(start)
	if err := waitFor(t, 2*ioBound, closeErr, "Close"); err != nil {
		t.Errorf("Close: %v, want nil (the peer answered)", err)
	}
	err = waitFor(t, 2*ioBound, srvErr, "the peer's read")
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
		t.Errorf("peer read %v (status %d), want 1000", err, CloseStatus(err))
	}
}
