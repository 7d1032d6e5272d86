package wsrpc_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/rawserver"
)

// hostileCalls makes the typed WebSocket and SSE calls of the test
// service against base and returns each one's error: the call's own (a
// refused handshake) or its first Receive's.
func hostileCalls(t *testing.T, base string) map[string]error {
	client := testingv1wsrpc.NewStreamServiceClient(nil, base)
	ctx := testContext(t)
	errs := map[string]error{}
	if st, err := client.Echo(ctx); err != nil {
		errs["websocket"] = err
	} else {
		_, errs["websocket"] = st.Receive()
	}
	if st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"}); err != nil {
		errs["sse"] = err
	} else {
		_, errs["sse"] = st.Receive()
	}
	return errs
}

// wantEscaped checks that err is an *Error with code c whose Error shows
// rawserver.Body escaped and whose Message keeps it as sent.
func wantEscaped(t *testing.T, name string, err error, c wsrpc.Code) {
	t.Helper()
	var e *wsrpc.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v, want an *wsrpc.Error", name, err)
	}
	if want := "wsrpc: " + c.String() + ": " + rawserver.EscapedBody; e.Code() != c || e.Error() != want {
		t.Errorf("%s: %q\nwant %q", name, e.Error(), want)
	}
	if e.Message() != rawserver.Body {
		t.Errorf("%s: Message() = %q, want %q as sent", name, e.Message(), rawserver.Body)
	}
}

// TestHostileRefusalEscaped: a hostile server's refusal of a typed call,
// over either transport, reaches the *wsrpc.Error's Error() escaped (its
// Message keeps the text as sent). Printing the error turned the terminal
// red, set its title, forged a second log line and reversed the rest.
func TestHostileRefusalEscaped(t *testing.T) {
	addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) {
		rawserver.Refuse(c, wsrpc.CodeHeader+": invalid_argument\r\n")
	})
	for name, err := range hostileCalls(t, "http://"+addr) {
		wantEscaped(t, name, err, wsrpc.CodeInvalidArgument)
	}
}

// hostileHandler fails every call with rawserver.Body for message: a
// close reason over WebSocket, a wsrpc.error event over SSE.
type hostileHandler struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
}

func (hostileHandler) Echo(context.Context, *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	return wsrpc.Errorf(wsrpc.CodeFailedPrecondition, "%s", rawserver.Body)
}

func (hostileHandler) Watch(context.Context, *testingv1.WatchRequest, *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	return wsrpc.Errorf(wsrpc.CodeFailedPrecondition, "%s", rawserver.Body)
}

// TestHostileErrorTextEscaped: a stream's error text from the server (a
// close reason, a wsrpc.error event's message) is escaped in Error() as
// a refusal's body is, and kept as sent in Message().
func TestHostileErrorTextEscaped(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(hostileHandler{}))
	for name, err := range hostileCalls(t, newServer(t, mux)) {
		wantEscaped(t, name, err, wsrpc.CodeFailedPrecondition)
	}
}
