package hub_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// emptyCodec is a text codec that encodes every message as nothing,
// which codec.Codec.Binary forbids.
type emptyCodec struct{ failCodec }

func (emptyCodec) Name() string                                            { return "empty" }
func (emptyCodec) Marshal(proto.Message) ([]byte, error)                   { return []byte{}, nil }
func (emptyCodec) MarshalAppend(b []byte, _ proto.Message) ([]byte, error) { return b, nil }

// TestEmptyTextEncodingNotSent: a text codec's empty encoding is an
// encode error, not a message. Sent over WebSocket it was an empty text
// message, the end-of-stream marker, which ends a typed client's stream;
// as an SSE event it had no data, which clients do not dispatch, while
// the replay store kept its id.
func TestEmptyTextEncodingNotSent(t *testing.T) {
	reported := make(chan error, 4)
	h, err := hub.New(nil, &hub.Options{NodeID: "a", OnError: func(_ string, err error) { reported <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ring := sse.NewRing(8)
	tp := newTopic(t, h, "empty", &hub.TopicOptions[msg]{SSECodec: emptyCodec{}, Replay: ring})
	srv := httptest.NewServer(tp.WebSocketHandler(nil, emptyCodec{})) // no subprotocol offered: the fallback
	defer srv.Close()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitSubscribers(t, tp, 1)
	if err := tp.Publish(context.Background(), wrapperspb.String("m")); err != nil {
		t.Fatal(err)
	}
	if st := tp.Stats(); st.EncodeErrors != 2 || st.Delivered != 0 {
		t.Errorf("stats %+v, want 2 encode errors (SSE, WebSocket) and nothing delivered", st)
	}
	if n := len(reported); n != 2 {
		t.Errorf("OnError reported %d errors, want 2", n)
	}
	if id := ring.Last(); id != "" {
		t.Errorf("the replay store recorded %q for an event with no data", id)
	}
}
