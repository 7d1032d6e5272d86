package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// A single-process hub: a topic, an in-process subscriber, and messages
// published to it. Publish queues and returns; the subscriber gets each
// message in order, on a goroutine of the topic's.
func ExampleNewTopic() {
	h, err := hub.New(nil, nil) // nil broker: an in-process MemoryBroker
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	lobby, err := hub.NewTopic[*testingv1.Joined](h, "rooms.lobby", nil)
	if err != nil {
		log.Fatal(err)
	}

	joined := make(chan string, 2)
	sub, err := lobby.SubscribeFunc(func(m *testingv1.Joined) error {
		joined <- m.GetUser() // m is shared with other subscribers: read it, do not modify it
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	for _, user := range []string{"ada", "grace"} {
		if err := lobby.Publish(context.Background(), &testingv1.Joined{User: user}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(<-joined, <-joined)
	// Output: ada grace
}

// A topic served as Server-Sent Events: each message is one event, with
// an id a reconnecting client resumes from (Last-Event-ID).
func ExampleTopic_SSEHandler() {
	h, err := hub.New(nil, &hub.Options{NodeID: "node1"}) // ids are "<node>-<seq>"
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	lobby, err := hub.NewTopic[*testingv1.Joined](h, "rooms.lobby", &hub.TopicOptions[*testingv1.Joined]{
		EventType: func(*testingv1.Joined) string { return "joined" },
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(lobby.SSEHandler(nil))
	defer srv.Close()

	// The client is subscribed once the 200 has come: publish after it.
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if err := lobby.Publish(context.Background(), &testingv1.Joined{User: "ada"}); err != nil {
		log.Fatal(err)
	}
	ev, err := sse.NewParser(resp.Body, nil).Next() // skips the stream's opening comment
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ID, ev.Type, ev.Data)
	// Output:
	// node1-1 joined {"user":"ada"}
}
