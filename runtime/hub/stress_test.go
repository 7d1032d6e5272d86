package hub_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// TestStressPublishSubscribeClose: publishers on two nodes, subscribers
// that come and go, a Follow, and the topics closing under them, with
// -race. Passes if nothing races, panics or hangs.
func TestStressPublishSubscribeClose(t *testing.T) {
	b := hub.NewMemoryBroker()
	ha, hb := newHub(t, b, freshNode("sa")), newHub(t, b, freshNode("sb"))
	ta := newTopic(t, ha, "stress", &hub.TopicOptions[msg]{QueueSize: 8})
	tb := newTopic(t, hb, "stress", &hub.TopicOptions[msg]{QueueSize: 8, Policy: hub.Disconnect})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var published atomic.Int64
	for _, tp := range []*hub.Topic[msg]{ta, tb, ta, tb} {
		wg.Go(func() {
			for ctx.Err() == nil {
				if tp.Publish(context.Background(), wrapperspb.String("x")) == nil {
					published.Add(1)
				}
			}
		})
	}
	for _, tp := range []*hub.Topic[msg]{ta, tb} {
		wg.Go(func() {
			for ctx.Err() == nil {
				s, err := tp.SubscribeFunc(func(m msg) error {
					if m.GetValue() != "x" {
						return fmt.Errorf("got %q", m.GetValue())
					}
					return nil
				})
				if err != nil {
					return
				}
				time.Sleep(time.Millisecond)
				s.Close()
				s.Close()
			}
		})
		wg.Go(func() {
			fctx, fcancel := context.WithCancel(ctx)
			defer fcancel()
			_ = tp.Follow(fctx, func() (string, []sse.Event, error) { return "", nil, nil },
				func(string) ([]sse.Event, error) { return nil, nil },
				func(sse.Event) error { return nil })
		})
	}
	time.Sleep(time.Second)
	done := make(chan struct{})
	go func() { ta.Close(); hb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	cancel()
	wg.Wait()
	if published.Load() == 0 {
		t.Fatal("nothing published")
	}
}
