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
func resetAfterClose(t *testing.T, peer net.Conn, code StatusCode) {
	t.Helper()
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	if _, err := peer.Write(frameBytes(true, 0, OpClose, false, p[:])); err != nil {
		t.Fatal(err)
	}
	_ = peer.(*net.TCPConn).SetLinger(0)
	_ = peer.Close()
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
			ctx, cancel := context.WithTimeout(context.Background(), ioBound)
			defer cancel()
			_, _, err := c.Read(ctx)
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != StatusMessageTooBig {
				t.Fatalf("Read after the failed Write: %v (CloseStatus %d), want the peer's close frame, 1009", err, CloseStatus(err))
			}
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
