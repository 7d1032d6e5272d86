package hub_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
)

// TestLocalDeliveryKeepsNegativeZero: a function subscriber on the
// publishing node gets the message exactly as published, -0 in an
// implicit-presence double included, as subscribers on other nodes do
// (they decode the broadcast bytes, and protobuf's encoding keeps -0).
// Local delivery copied the message with proto.Clone, which skips a ±0
// implicit-presence float (Merge treats it as unset while Marshal and
// Equal do not), so the local subscriber got +0: not proto.Equal to what
// was published.
func TestLocalDeliveryKeepsNegativeZero(t *testing.T) {
	h := newHub(t, nil, freshNode("negzero"))
	tp, err := hub.NewTopic[*wrapperspb.DoubleValue](h, "negzero", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *wrapperspb.DoubleValue, 1)
	sub, err := tp.SubscribeFunc(func(m *wrapperspb.DoubleValue) error {
		got <- m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sent := wrapperspb.Double(math.Copysign(0, -1))
	if err := tp.Publish(context.Background(), sent); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m == sent {
			t.Fatal("the subscriber got the publisher's own message, which the publisher may reuse")
		}
		if !math.Signbit(m.GetValue()) || !proto.Equal(m, sent) {
			t.Fatalf("local subscriber got %v (sign bit %v), want -0 as published", m.GetValue(), math.Signbit(m.GetValue()))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
}

// BenchmarkPublishFunc1KiB: Publish of a 1 KiB message to one function
// subscriber on the same node; an op ends when the subscriber has it.
// It measures the local copy the subscriber gets (decoded from the
// encoding Publish makes anyway) with the rest of the publish path.
//
//	go test -run '^$' -bench PublishFunc -count 3 ./runtime/hub
func BenchmarkPublishFunc1KiB(b *testing.B) {
	h, err := hub.New(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	tp, err := hub.NewTopic[msg](h, "bench-func", &hub.TopicOptions[msg]{DisableReplay: true})
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	sub, err := tp.SubscribeFunc(func(msg) error {
		got <- struct{}{}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	m := wrapperspb.String(strings.Repeat("x", 1024))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := tp.Publish(ctx, m); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
