package wsrpc_test

import (
	"errors"
	"testing"

	"github.com/wsrpc/wsrpc"
	greetv1 "github.com/wsrpc/wsrpc/gen/greet/v1"
)

// TestSSEEncodersNilMessage: the two exported SSE encoders answer a nil
// interface, which names no message type, with invalid_argument instead
// of panicking in ProtoReflect, and take a typed nil as the empty
// message, as proto.Marshal does.
func TestSSEEncodersNilMessage(t *testing.T) {
	var werr *wsrpc.Error
	if _, err := wsrpc.NewSSEEvent(nil, "1"); !errors.As(err, &werr) || werr.Code() != wsrpc.CodeInvalidArgument {
		t.Errorf("NewSSEEvent(nil): %v, want invalid_argument", err)
	}
	if q, err := wsrpc.EncodeSSERequest(nil); !errors.As(err, &werr) || werr.Code() != wsrpc.CodeInvalidArgument || q != nil {
		t.Errorf("EncodeSSERequest(nil): %v, %v; want invalid_argument and no query", q, err)
	}
	ev, err := wsrpc.NewSSEEvent((*greetv1.ChatResponse)(nil), "1")
	if err != nil || ev.Data != "{}" {
		t.Errorf("NewSSEEvent(typed nil): %q, %v; want the empty message {}", ev.Data, err)
	}
	if q, err := wsrpc.EncodeSSERequest((*greetv1.ChatRequest)(nil)); err != nil || len(q) != 0 {
		t.Errorf("EncodeSSERequest(typed nil): %v, %v; want the empty query", q, err)
	}
}
