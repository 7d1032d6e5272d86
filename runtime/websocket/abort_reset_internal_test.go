package websocket

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// A compressed message the peer refuses part way (its close frame, 1009,
// then a reset, as a server over its MaxMessageSize does once its linger
// budget is spent) leaves the peer's close frame to the reader, as an
// uncompressed one does (TestWriteResetKeepsPeerCloseFrame). The failed
// write ended the message through abortMessage, which failed the
// connection with 1011 because fragments had gone out: the connection
// closed, and Read returned ErrClosed wrapping the reset instead of the
// *CloseError 1009, so the refusal looked like a network fault.
func TestCompressedWriteResetKeepsPeerCloseFrame(t *testing.T) {
	msg := make([]byte, 32<<20) // far more than the socket buffers hold
	_, _ = rand.NewChaCha8([32]byte{1}).Read(msg)
	for _, tc := range []struct {
		name     string
		hideSock bool
		writer   bool
	}{
		{"Write socket", false, false},
		{"Write net.Conn", true, false},
		{"Writer socket", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, peer := tcpPair(t)
			var nc net.Conn = local
			if tc.hideSock {
				nc = netOnly{local}
			}
			ext := newNegotiated(PerMessageDeflate(nil), nil,
				newDeflateSession(DeflateOptions{Level: 1, Threshold: 128}, false, false, 15, 15))
			c := newConn(nc, true, resolveConfig(0, 0, 0, 0, 0, 10*time.Second, false), "", []*negotiated{ext}, nil)
			t.Cleanup(func() { c.CloseNow() })
			// The peer takes the start of the message, so that fragments
			// have gone out, then refuses it: close frame, then reset.
			peerErr := make(chan error, 1)
			go func() {
				if _, err := io.ReadFull(peer, make([]byte, 256<<10)); err != nil {
					peerErr <- err
					return
				}
				var p [2]byte
				binary.BigEndian.PutUint16(p[:], uint16(StatusMessageTooBig))
				_, err := peer.Write(frameBytes(true, 0, OpClose, false, p[:]))
				_ = peer.(*net.TCPConn).SetLinger(0)
				_ = peer.Close()
				peerErr <- err
			}()
			var werr error
			if tc.writer {
				w, err := c.Writer(context.Background(), MessageBinary)
				if err != nil {
					t.Fatal(err)
				}
				_, werr = w.Write(msg)
				if cerr := w.Close(); werr == nil {
					werr = cerr
				}
			} else {
				werr = c.Write(context.Background(), MessageBinary, msg)
			}
			if err := waitFor(t, ioBound, peerErr, "the peer"); err != nil {
				t.Fatal(err)
			}
			if !peerReset(werr) {
				t.Fatalf("Write: %v, want a connection reset", werr)
			}
			readPeerClose(t, c, StatusMessageTooBig)
		})
	}
}
