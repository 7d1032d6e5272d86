package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// broadcastServer subscribes every Echo session to a hub topic of
// EchoResponse through the session's WebSocket, so broadcasts take the
// hub's prepared-frame path, and acknowledges each session once it is
// subscribed.
type broadcastServer struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	topic *hub.Topic[*testingv1.EchoResponse]
}

func (b broadcastServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	sub, err := b.topic.SubscribeWebSocket(s.WebSocket(), s.Codec())
	if err != nil {
		return err
	}
	defer sub.Close()
	if err := s.Send(&testingv1.EchoResponse{Text: "subscribed"}); err != nil {
		return err
	}
	for _, err := range s.All() { // reading answers pings and sees the close
		if err != nil {
			return err
		}
	}
	return nil
}

// TestTypedSessionsOnHubTopic: generated clients on every codec receive a
// hub broadcast as typed messages, in order, when their sessions are
// subscribed through BidiStream.WebSocket.
func TestTypedSessionsOnHubTopic(t *testing.T) {
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	topic, err := hub.NewTopic[*testingv1.EchoResponse](h, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(broadcastServer{topic: topic}))
	url := newServer(t, mux)
	ctx := testContext(t)

	var streams []*wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
	for _, cd := range allCodecs {
		client := testingv1wsrpc.NewStreamServiceClient(http.DefaultClient, url, wsrpc.WithPreferredCodec(cd))
		s, err := client.Echo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if res, err := s.Receive(); err != nil || res.GetText() != "subscribed" {
			t.Fatalf("%s: %v %v", cd.Name(), res, err)
		}
		streams = append(streams, s)
	}
	for i := int64(1); i <= 20; i++ {
		if err := topic.Publish(ctx, &testingv1.EchoResponse{Text: "news", Seq: i, Blob: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for j, s := range streams {
		for i := int64(1); i <= 20; i++ {
			res, err := s.Receive()
			if err != nil || res.GetSeq() != i || res.GetText() != "news" || res.GetBlob()[0] != byte(i) {
				t.Fatalf("%s: message %d: %v %v", allCodecs[j].Name(), i, res, err)
			}
		}
	}
	// A delivery is counted after its write returns, which may be after
	// the client has read it: wait (bounded) for the count.
	deadline := time.Now().Add(5 * time.Second)
	for st := topic.Stats(); st.Published != 20 || st.Delivered != 60; st = topic.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 20 published and 60 delivered", st)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHubFollowOneofResponse: a generated server-streaming SSE method
// served from a hub topic as docs/hub.md shows (Follow over the default
// store, sending each recorded event with SendEvent), for a response that
// is a single oneof. With SSECodec SSEEventCodec and EventType
// SSEEventType the topic records exactly the events a wsrpc SSE handler
// sends, and the generated client receives every case. With the defaults
// it skipped every event (whole messages as "message" events); with an
// EventType alone it refused the data (the whole message where it
// expects the case's value).
func TestHubFollowOneofResponse(t *testing.T) {
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	topic, err := hub.NewTopic(h, "watch", &hub.TopicOptions[*testingv1.WatchResponse]{
		SSECodec:  wsrpc.SSEEventCodec,
		EventType: wsrpc.SSEEventType[*testingv1.WatchResponse],
	})
	if err != nil {
		t.Fatal(err)
	}
	following := make(chan struct{}, 1)
	hd := wsrpc.NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		ring := topic.Replay().(*sse.Ring) // the default store
		start := func() (string, []sse.Event, error) {
			// The cursor is read before the test is let publish: a
			// message published first would be in it, taken as one the
			// follower has, and never sent (2 of 30 runs under load).
			last := ring.Last()
			following <- struct{}{}
			return last, nil, nil
		}
		return topic.Follow(ctx, start, ring.Since, st.SendEvent)
	})
	c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, newServer(t, hd)+"/t/W", "/t/W")
	ctx := testContext(t)
	st, err := c.Call(ctx, &testingv1.WatchRequest{Room: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	select {
	case <-following:
	case <-ctx.Done():
		t.Fatal("the handler never followed")
	}
	sent := []*testingv1.WatchResponse{
		{Event: &testingv1.WatchResponse_Note{Note: "hi"}},
		{Event: &testingv1.WatchResponse_Level{Level: 7}},
		{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{}}},
		{Event: &testingv1.WatchResponse_UserJoined{UserJoined: &testingv1.Joined{}}},
	}
	for _, m := range sent {
		if err := topic.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range sent {
		got, err := st.Receive()
		if err != nil || !proto.Equal(got, want) {
			ev, _ := topic.Replay().(*sse.Ring).Since("")
			t.Fatalf("event %d: Receive = %v, %v; want %v (the topic recorded %+v)", i, got, err, want, ev)
		}
	}
	if st := topic.Stats(); st.EncodeErrors != 0 {
		t.Errorf("encode errors: %+v", st)
	}
}

// TestShutdownWithHub: wsrpc.Shutdown given the hub stops a server whose
// mux serves typed sessions on a hub topic and the hub's own WebSocket and
// SSE endpoints, within its deadline: the typed client gets 1001
// (unavailable, which reconnecting clients retry), the hub endpoint's
// WebSocket client 1001, and its SSE client a clean end. Shutdown without
// the hub ran to its deadline, waiting for the hub's SSE response, and
// left the hub's WebSocket clients connected; with the hub shut down
// first, typed sessions ended with the hub's ErrClosed (unknown), which
// clients take for final.
func TestShutdownWithHub(t *testing.T) {
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	topic, err := hub.NewTopic[*testingv1.EchoResponse](h, "news", nil)
	if err != nil {
		t.Fatal(err)
	}
	tracker := wsrpc.NewTracker()
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(broadcastServer{topic: topic}, wsrpc.WithTracker(tracker)))
	mux.Handle("/news/ws", topic.WebSocketHandler(nil, codec.JSON))
	mux.Handle("/news/events", topic.SSEHandler(nil))
	srv := wsrpc.NewHTTPServer(mux)
	base, served := serveHTTP(t, srv)
	ctx := testContext(t)

	typed, err := testingv1wsrpc.NewStreamServiceClient(nil, base).Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer typed.Close()
	if res, err := typed.Receive(); err != nil || res.GetText() != "subscribed" {
		t.Fatalf("typed session: %v %v", res, err)
	}
	raw, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/news/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.CloseNow()
	events, err := sse.Connect(ctx, base+"/news/events", &sse.ClientOptions{MaxReconnectionAttempts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	for topic.Stats().Subscribers != 3 {
		if ctx.Err() != nil {
			t.Fatal("the three subscribers never subscribed")
		}
		time.Sleep(time.Millisecond)
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Each client reads, as a live one does: a close is answered at once.
	typedErr, rawErr, eventsErr := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() { _, err := typed.Receive(); typedErr <- err }()
	go func() { _, _, err := raw.Read(ctx); rawErr <- err }()
	go func() { _, err := events.Next(); eventsErr <- err }()
	if err := wsrpc.Shutdown(sctx, srv, tracker, h); err != nil {
		t.Fatalf("Shutdown = %v, want nil before its deadline", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	if err := <-typedErr; wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Errorf("typed client: %v, want unavailable (1001)", err)
	}
	if err := <-rawErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("hub WebSocket client: %v, want 1001", err)
	}
	if err := <-eventsErr; err != io.EOF {
		t.Errorf("hub SSE client: %v, want a clean end (io.EOF)", err)
	}
}
