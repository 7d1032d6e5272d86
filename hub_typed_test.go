package wsrpc_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/hub"
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
