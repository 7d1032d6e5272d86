package wsrpc_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestReceiveInProgressAtOwnClose: a client's Receive blocked in its read
// when the same call's Close or CloseWith ran returned the server's echo
// of that close as the call's end — io.EOF after Close, which reads as the
// handler's clean end (an All loop finished without an error), the bare
// code after CloseWith — or, under -race, "canceled: context canceled",
// and every later Receive repeated it. It reports what a Receive made
// after the close reports: canceled, saying this side closed the stream
// and how. Bidirectional and server-streaming calls over WebSocket, and
// a typed SSE call's Close (which sends no code), many times each, since
// which of those the read runs into is a race.
func TestReceiveInProgressAtOwnClose(t *testing.T) {
	mux := http.NewServeMux()
	// Handlers that never answer: the client's Receive waits until its
	// own close ends the call.
	mux.Handle("/bidi", wsrpc.NewBidiHandler("/f1b.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for _, err := range s.All() {
			if err != nil {
				return err
			}
		}
		return nil
	}))
	wait := func(ctx context.Context, _ *testingv1.CountRequest, _ *wsrpc.ServerStream[testingv1.CountResponse]) error {
		<-ctx.Done()
		return nil
	}
	mux.Handle("/server", wsrpc.NewServerStreamHandler("/f1b.v1/Server", wait))
	mux.Handle("/sse", wsrpc.NewSSEHandler("/f1b.v1/SSE", wait))
	base := newServer(t, mux)
	ctx := testContext(t)
	bidi := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/bidi", "/f1b.v1/Bidi")
	server := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/server", "/f1b.v1/Server")
	sseClient := wsrpc.NewSSEClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/sse", "/f1b.v1/SSE")

	// call opens a call and returns its Receive and its close.
	type call struct {
		receive func() error
		close   func() error
	}
	for _, tc := range []struct {
		name     string
		open     func(t *testing.T) call
		mentions string // what the error says of the close
	}{
		{"bidi Close", func(t *testing.T) call {
			st, err := bidi.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return call{func() error { _, err := st.Receive(); return err }, st.Close}
		}, "normal closure"},
		{"bidi CloseWith", func(t *testing.T) call {
			st, err := bidi.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return call{func() error { _, err := st.Receive(); return err }, func() error { return st.CloseWith(wsrpc.CodeAborted, "user left") }}
		}, "aborted: user left"},
		{"server-stream Close", func(t *testing.T) call {
			st, err := server.Call(ctx, &testingv1.CountRequest{Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			return call{func() error { _, err := st.Receive(); return err }, st.Close}
		}, "normal closure"},
		{"sse Close", func(t *testing.T) call {
			st, err := sseClient.Call(ctx, &testingv1.CountRequest{Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			return call{func() error { _, err := st.Receive(); return err }, st.Close}
		}, "normal closure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if err == io.EOF || wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
					t.Fatalf("%s = %v (%v), want canceled", what, err, wsrpc.CodeOf(err))
				}
				if msg := err.Error(); strings.Contains(msg, "context") || !strings.Contains(msg, "closed by this side") || !strings.Contains(msg, tc.mentions) {
					t.Fatalf("%s = %q: want it to say this side closed the stream (%s), not a context", what, msg, tc.mentions)
				}
			}
			for i := range 20 {
				c := tc.open(t)
				got := make(chan error, 1)
				go func() { got <- c.receive() }()
				// Let the Receive reach its read. Should it not have, it
				// starts after the close and must report the same: the
				// test cannot fail for that, only test less.
				time.Sleep(5 * time.Millisecond)
				if err := c.close(); err != nil {
					t.Fatalf("close #%d = %v", i, err)
				}
				select {
				case err := <-got:
					check("Receive in progress at the close", err)
				case <-time.After(10 * time.Second):
					t.Fatal("Receive did not return within 10 s of the close")
				}
				check("Receive after the close", c.receive())
			}
		})
	}
}
