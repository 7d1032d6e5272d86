package wsrpc_test

// Clients and servers built from different versions of one schema, as
// during a rolling deploy: a method moved between WebSocket and SSE, or
// changed from server-streaming to bidirectional.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestWebSocketClientAtSSEMethod guards a method moved from WebSocket to
// SSE while old WebSocket clients still call it: the upgrade request is
// refused with unimplemented (501, Wsrpc-Code) before any interceptor,
// decoding or the handler runs. The SSE handler ran, with an empty
// request and its side effects, and the client's dial read the event
// stream until the handshake's deadline, then reported unknown with the
// stream's text as the message.
func TestWebSocketClientAtSSEMethod(t *testing.T) {
	var ran, shaken atomic.Int32
	count := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			shaken.Add(1)
			return next(ctx, hs)
		}
	})
	h := wsrpc.NewSSEHandler(testingv1wsrpc.StreamServiceWatchProcedure,
		func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
			ran.Add(1)
			if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "hi"}}); err != nil {
				return err
			}
			<-ctx.Done() // a quiet stream
			return nil
		}, wsrpc.WithInterceptors(count))
	srv := newServer(t, h)
	ctx := testContext(t)

	client := wsrpc.NewServerStreamClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, srv+"/", testingv1wsrpc.StreamServiceWatchProcedure)
	st, err := client.Call(ctx, &testingv1.WatchRequest{Room: "r"})
	if err == nil {
		st.Close()
		t.Fatal("WebSocket call of an SSE method succeeded")
	}
	wantCode(t, err, wsrpc.CodeUnimplemented, testingv1wsrpc.StreamServiceWatchProcedure+" is served as Server-Sent Events (GET text/event-stream), not WebSocket")

	// Any spelling of the tokens (RFC 9110 §7.8: case-insensitive), as
	// websocket.Accept reads them.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "keep-alive, UPGRADE")
	req.Header.Set("Upgrade", "WebSocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != wsrpc.CodeUnimplemented.HTTPStatus() || resp.Header.Get(wsrpc.CodeHeader) != "unimplemented" {
		t.Errorf("upgrade request: %d, Wsrpc-Code %q; want %d, unimplemented", resp.StatusCode, resp.Header.Get(wsrpc.CodeHeader), wsrpc.CodeUnimplemented.HTTPStatus())
	}
	if n, m := ran.Load(), shaken.Load(); n != 0 || m != 0 {
		t.Fatalf("for the upgrade requests the handler ran %d times and the interceptor %d, want 0", n, m)
	}

	// The method's own clients are served as before.
	sse := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, srv+"/", testingv1wsrpc.StreamServiceWatchProcedure)
	st, err = sse.Call(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if res, err := st.Receive(); err != nil || res.GetNote() != "hi" {
		t.Fatalf("SSE call: %v %v, want the note", res, err)
	}
}

// TestSSEClientAtWebSocketMethod guards the reverse move, SSE to
// WebSocket: a request that is not an upgrade keeps its 426 with
// Upgrade: websocket (RFC 9110 §15.5.22) and carries Wsrpc-Code
// unimplemented with a message naming the method's transport. Without
// the code the client read the 426 as unknown.
func TestSSEClientAtWebSocketMethod(t *testing.T) {
	srv := serve(t)
	ctx := testContext(t)
	want := testingv1wsrpc.StreamServiceCountProcedure + " is served over WebSocket, not as Server-Sent Events"

	sse := wsrpc.NewSSEClient[testingv1.CountRequest, testingv1.CountResponse](nil, srv+testingv1wsrpc.StreamServiceCountPath, testingv1wsrpc.StreamServiceCountProcedure)
	st, err := sse.Call(ctx, &testingv1.CountRequest{Count: 2})
	if err == nil {
		_, err = st.Receive()
		st.Close()
	}
	if wsrpc.CodeOf(err) != wsrpc.CodeUnimplemented || !strings.Contains(err.Error(), want) {
		t.Errorf("SSE call of a WebSocket method: %v, want unimplemented: %s", err, want)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv+testingv1wsrpc.StreamServiceCountPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-WebSocket-Version") != "13" ||
		resp.Header.Get(wsrpc.CodeHeader) != "unimplemented" || !strings.Contains(string(body), want) {
		t.Errorf("plain GET: %d, Upgrade %q, Sec-WebSocket-Version %q, Wsrpc-Code %q, body %q; want 426, websocket, 13, unimplemented, %q",
			resp.StatusCode, resp.Header.Get("Upgrade"), resp.Header.Get("Sec-WebSocket-Version"), resp.Header.Get(wsrpc.CodeHeader), body, want)
	}
}

// echoUntilEOF is a bidirectional handler that answers each request and
// reports how many it read once its All has ended.
func echoUntilEOF(reqs chan<- int) func(context.Context, *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	return func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		n := 0
		for req, err := range s.All() {
			if err != nil {
				return err
			}
			n++
			if err := s.Send(&testingv1.EchoResponse{Text: req.GetText(), Seq: int64(n)}); err != nil {
				return err
			}
		}
		reqs <- n
		return nil
	}
}

// TestServerStreamClientEndsBidiHandler guards a method changed from
// server-streaming to bidirectional while old clients still call it: the
// server-streaming client sends the end-of-stream marker after its
// request (docs/codegen.md: a server-streaming method's server accepts
// it), so the bidirectional handler's All ends after the one request and
// the call completes. The client sent the request alone: the handler
// waited for more requests and the client for responses, until a
// deadline, if any.
func TestServerStreamClientEndsBidiHandler(t *testing.T) {
	reqs := make(chan int, 1)
	srv := newServer(t, wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure, echoUntilEOF(reqs)))
	for _, cd := range allCodecs {
		t.Run(cd.Name(), func(t *testing.T) {
			ctx := testContext(t)
			client := wsrpc.NewServerStreamClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, srv+"/", testingv1wsrpc.StreamServiceEchoProcedure, wsrpc.WithCodecs(cd))
			st, err := client.Call(ctx, &testingv1.EchoRequest{Text: "one"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if res, err := st.Receive(); err != nil || res.GetText() != "one" {
				t.Fatalf("Receive: %v %v, want the echo", res, err)
			}
			if _, err := st.Receive(); !errors.Is(err, io.EOF) {
				t.Fatalf("Receive after the echo: %v (code %v), want io.EOF", err, wsrpc.CodeOf(err))
			}
			select {
			case n := <-reqs:
				if n != 1 {
					t.Fatalf("the handler read %d requests, want 1", n)
				}
			case <-ctx.Done():
				t.Fatal("the handler's All did not end")
			}
		})
	}
}

// TestServerStreamReconnectEndsBidiHandler: the same on a reconnection
// (WithReconnect), where the client sends its request again, and the
// end-of-stream marker after it.
func TestServerStreamReconnectEndsBidiHandler(t *testing.T) {
	reqs := make(chan int, 1)
	var conns atomic.Int32
	echo := echoUntilEOF(reqs)
	h := wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure,
		func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			if conns.Add(1) > 1 {
				return echo(ctx, s)
			}
			req, err := s.Receive()
			if err != nil {
				return err
			}
			if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
				return err
			}
			return wsrpc.Errorf(wsrpc.CodeUnavailable, "node going down") // retried
		})
	srv := newServer(t, h)
	ctx := testContext(t)
	client := wsrpc.NewServerStreamClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, srv+"/", testingv1wsrpc.StreamServiceEchoProcedure,
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: 10 * time.Millisecond, MaxAttempts: 3}))
	st, err := client.Call(ctx, &testingv1.EchoRequest{Text: "again"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 2 {
		if res, err := st.Receive(); err != nil || res.GetText() != "again" {
			t.Fatalf("Receive %d: %v %v, want the echo", i, res, err)
		}
	}
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive after the echoes: %v (code %v), want io.EOF", err, wsrpc.CodeOf(err))
	}
	if n := <-reqs; n != 1 || conns.Load() != 2 {
		t.Fatalf("the second connection's handler read %d requests, and %d connections came; want 1 and 2", n, conns.Load())
	}
}

// TestServerStreamHandlerTakesEndOfStreamMarker: a server-streaming
// handler is unaffected by the marker its client now sends after the
// request: its context stays live while it streams, and the call ends
// cleanly on both sides.
func TestServerStreamHandlerTakesEndOfStreamMarker(t *testing.T) {
	release := make(chan struct{})
	live := make(chan error, 1)
	closed := make(chan wsrpc.CloseInfo, 1)
	h := wsrpc.NewServerStreamHandler(testingv1wsrpc.StreamServiceCountProcedure,
		func(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
			if err := s.Send(&testingv1.CountResponse{N: 1}); err != nil {
				return err
			}
			<-release
			live <- ctx.Err()
			return s.Send(&testingv1.CountResponse{N: 2})
		}, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
	srv := newServer(t, h)
	ctx := testContext(t)
	client := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, srv+"/", testingv1wsrpc.StreamServiceCountProcedure)
	st, err := client.Call(ctx, &testingv1.CountRequest{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if res, err := st.Receive(); err != nil || res.GetN() != 1 {
		t.Fatalf("Receive: %v %v", res, err)
	}
	// Time for the marker to reach the server and, wrongly, end the
	// handler's context.
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-live; err != nil {
		t.Fatalf("the handler's context ended after the marker: %v", err)
	}
	if res, err := st.Receive(); err != nil || res.GetN() != 2 {
		t.Fatalf("Receive: %v %v", res, err)
	}
	if _, err := st.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive at the end: %v, want io.EOF", err)
	}
	select {
	case ci := <-closed:
		if ci.Err != nil || ci.Code != 1000 {
			t.Fatalf("server OnClose: %+v, want a clean end (1000)", ci)
		}
	case <-ctx.Done():
		t.Fatal("the server's OnClose did not run")
	}
}
