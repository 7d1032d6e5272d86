package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestReceiveAfterOwnCloseGetsClientMessages pins docs/protocol.md §3.4:
// once the handler's own Close sent the server's close frame, the data
// messages the client sent before its close frame are not discarded: the
// runtime's Close keeps them while it waits for the client's close frame,
// and the handler's Receive returns them, in order, then the client's
// close (io.EOF for 1000). One the codec cannot decode is an
// invalid_argument for that Receive only, and refused with nothing: the
// close frame stands, the client reads the 1000 alone.
func TestReceiveAfterOwnCloseGetsClientMessages(t *testing.T) {
	sent := make(chan struct{})
	got := make(chan []any, 1)
	h := wsrpc.NewBidiHandler("/t/CloseThenReceive", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		<-sent
		var out []any
		if err := s.Close(0, ""); err != nil {
			out = append(out, err)
		}
		for range 5 {
			m, err := s.Receive()
			if err == io.EOF {
				break
			}
			if err != nil {
				out = append(out, wsrpc.CodeOf(err))
				continue
			}
			out = append(out, m.Text)
		}
		got <- out
		return nil
	})
	base := newServer(t, h)
	ctx := testContext(t)
	c, _, err := websocket.Dial(ctx, base, &websocket.DialOptions{Subprotocols: []string{codec.Subprotocol(codec.Proto)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, text := range []string{"a", "", "b"} {
		b, err := proto.Marshal(&testingv1.EchoRequest{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if text == "" {
			b = []byte{0xff, 0xff} // not protobuf
		}
		if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
			t.Fatal(err)
		}
	}
	// Sent before the server's close frame goes out, so before the
	// client's close frame, which answers it.
	close(sent)
	_, _, rerr := c.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(rerr, &ce) || ce.Code != websocket.StatusNormalClosure {
		t.Errorf("the client read %v, want the server's 1000 alone", rerr)
	}
	out := waitSeen(t, got, "the handler has not read to the client's close")
	want := []any{"a", wsrpc.CodeInvalidArgument, "b"}
	if len(out) != len(want) {
		t.Fatalf("Receive after the handler's Close: %v, want %v then io.EOF", out, want)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("Receive after the handler's Close: %v, want %v then io.EOF", out, want)
		}
	}
}
