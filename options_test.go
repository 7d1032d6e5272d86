package wsrpc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestWebSocketOptionsPassThrough: compression is negotiated when both
// sides ask, and the server's message limit fails an oversized message
// with resource_exhausted (1009).
func TestWebSocketOptionsPassThrough(t *testing.T) {
	base := serve(t, wsrpc.WithCompression(nil), wsrpc.WithAcceptOptions(&websocket.AcceptOptions{MaxMessageSize: 64 << 10}))
	ctx := testContext(t)
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithCompression(&websocket.DeflateOptions{}))
	s, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ext := s.ResponseHeader().Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("extensions %q", ext)
	}
	big := strings.Repeat("compressible ", 4000) // 52 kB, under the limit
	if err := s.Send(&testingv1.EchoRequest{Text: big}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Receive(); err != nil || m.GetText() != big {
		t.Fatalf("Receive: %v", err)
	}
	if err := s.Send(&testingv1.EchoRequest{Text: big + big}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Receive()
	wantCode(t, err, wsrpc.CodeResourceExhausted, "")
}

// TestSSEReplay: with a replay store, a client resuming with
// Last-Event-ID gets the events it missed before the handler's own —
// whatever the order of WithSSEReplay and WithSSEOptions (a later
// WithSSEOptions, whose struct has no Replay, dropped the store: the
// resumed client got no replay and lost the events).
func TestSSEReplay(t *testing.T) {
	stream := wsrpc.WithSSEOptions(&sse.StreamOptions{Heartbeat: time.Minute})
	for name, opts := range map[string]func(sse.Store) []wsrpc.Option{
		"replay":              func(r sse.Store) []wsrpc.Option { return []wsrpc.Option{wsrpc.WithSSEReplay(r)} },
		"replay then options": func(r sse.Store) []wsrpc.Option { return []wsrpc.Option{wsrpc.WithSSEReplay(r), stream} },
		"options then replay": func(r sse.Store) []wsrpc.Option { return []wsrpc.Option{stream, wsrpc.WithSSEReplay(r)} },
		"replay in options": func(r sse.Store) []wsrpc.Option {
			return []wsrpc.Option{wsrpc.WithSSEOptions(&sse.StreamOptions{Replay: r})}
		},
	} {
		t.Run(name, func(t *testing.T) { testSSEReplay(t, opts) })
	}
}

func testSSEReplay(t *testing.T, opts func(sse.Store) []wsrpc.Option) {
	ring := sse.NewRing(8)
	var first string // the id the client resumes from
	for i := int64(1); i <= 3; i++ {
		ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Level{Level: i}}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ring.Append(ev); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			first = ring.Last()
		}
	}
	h := wsrpc.NewSSEHandler("/t/Replay", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		if s.LastEventID() != first || s.Gap() {
			return wsrpc.Errorf(wsrpc.CodeInternal, "last event id %q gap %v", s.LastEventID(), s.Gap())
		}
		ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "live"}}, "")
		if err != nil {
			return err
		}
		rec, err := ring.Append(ev)
		if err != nil {
			return err
		}
		return s.SendEvent(rec)
	}, opts(ring)...)
	srv := newServer(t, h)
	ctx := testContext(t)
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](http.DefaultClient, srv, "/t/Replay",
		wsrpc.WithSSEClientOptions(&sse.ClientOptions{LastEventID: first}))
	s, err := c.Call(ctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s", m.GetLevel(), m.GetNote()))
	}
	if strings.Join(got, ",") != "2 ,3 ,0 live" {
		t.Fatalf("got %q", got)
	}
	if s.LastEventID() != ring.Last() { // the live event's
		t.Fatalf("last event id %q, want %q", s.LastEventID(), ring.Last())
	}
}

// An Option is a value that may be applied by many goroutines at once
// (one options slice shared by clients made concurrently): applying it
// must not write what its closure captured. WithCompression(nil) did.
func TestOptionsAppliedConcurrently(t *testing.T) {
	opts := []wsrpc.Option{wsrpc.WithCompression(nil), wsrpc.WithReconnect(wsrpc.ReconnectPolicy{})}
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, "http://127.0.0.1:1/t/E", "/t/E", opts...)
		}()
	}
	for range 8 {
		<-done
	}
}

// TestRawOptionIgnored: Raw in the accept or dial options given to the
// typed layer is ignored, as Subprotocols is. It used to reach the
// runtime: every typed call then failed its first read or write on the
// raw connection, reported unavailable (a transient error) for a
// configuration mistake, and left the connection without a close frame.
func TestRawOptionIgnored(t *testing.T) {
	base := serve(t, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{Raw: true}))
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithDialOptions(&websocket.DialOptions{Raw: true}))
	ctx := testContext(t)
	st, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&testingv1.EchoRequest{Text: "typed"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	res, err := st.Receive()
	if err != nil || res.GetText() != "typed" {
		t.Fatalf("Receive = %v, %v; want the echo", res, err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	if _, err := st.Receive(); err != io.EOF {
		t.Fatalf("Receive after CloseSend = %v, want io.EOF", err)
	}
}
