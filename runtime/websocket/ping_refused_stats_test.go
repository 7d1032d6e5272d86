package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// refusePingExt is a frame extension whose OutgoingFrame refuses every
// ping with an error and passes every other frame.
type refusePingExt struct{}

func (refusePingExt) Name() string                      { return "x-no-ping" }
func (refusePingExt) RSV() byte                         { return 0 }
func (refusePingExt) ClientOffers() [][]websocket.Param { return [][]websocket.Param{nil} }
func (refusePingExt) ServerNegotiate([][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	return nil, refusePingSession{}, true
}
func (refusePingExt) ClientAccept([]websocket.Param) (websocket.ExtensionSession, error) {
	return refusePingSession{}, nil
}

type refusePingSession struct{}

var errNoPing = errors.New("no pings here")

func (refusePingSession) OutgoingFrame(f *websocket.Frame) error {
	if f.Opcode == websocket.OpPing {
		return errNoPing
	}
	return nil
}
func (refusePingSession) IncomingFrame(*websocket.FrameHeader) error { return nil }

// TestRefusedPingNotCounted: a ping a frame extension refuses is not
// written, so it is not in PingsSent, which counts the pings that went
// out. It used to be counted before the extension saw it. Both of Ping's
// write paths are taken: a ctx that is never done (writeControl) and one
// that can be (the frame lock tried at once).
func TestRefusedPingNotCounted(t *testing.T) {
	set := websocket.MustExtensionSet(refusePingExt{})
	s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second},
		"Sec-WebSocket-Extensions: x-no-ping\r\n", func(c *websocket.Conn) error {
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			for _, pctx := range []context.Context{context.Background(), ctx} {
				if err := c.Ping(pctx); !errors.Is(err, errNoPing) {
					return fmt.Errorf("Ping: %v, want the extension's refusal", err)
				}
			}
			if n := c.Stats().PingsSent; n != 0 {
				return fmt.Errorf("PingsSent = %d after two refused pings, want 0", n)
			}
			// Nothing went out and the connection stays usable.
			return c.Write(context.Background(), websocket.MessageText, []byte("kept"))
		})
	if err := s.result(); err != nil {
		t.Fatal(err)
	}
	s.expect(opText, []byte("kept"))
}
