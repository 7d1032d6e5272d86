package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/runtime/hub"
)

// TestZeroMemoryBroker checks that a zero MemoryBroker works as one from
// NewMemoryBroker: its first Subscribe wrote to a nil map and panicked,
// so hub.New(&hub.MemoryBroker{}, nil) made a hub whose NewTopic panicked.
func TestZeroMemoryBroker(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		var b hub.MemoryBroker
		got := make(chan string, 1)
		unsub, err := b.Subscribe("s", func(data []byte) { got <- string(data) })
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(context.Background(), "s", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "hello" { // Publish delivers before returning
			t.Fatalf("got %q, want hello", s)
		}
		if err := unsub(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Subscribe("s", func([]byte) {}); !errors.Is(err, hub.ErrClosed) {
			t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
		}
	})
	t.Run("two hubs", func(t *testing.T) {
		// Two hubs sharing one zero broker are nodes of one cluster: a
		// message published on one reaches the other through it.
		b := &hub.MemoryBroker{}
		pub := newTopic(t, newHub(t, b, freshNode("zero-a")), "zero", nil)
		sub := newTopic(t, newHub(t, b, freshNode("zero-b")), "zero", nil)
		got := make(chan string, 1)
		s, err := sub.SubscribeFunc(func(m msg) error { got <- m.GetValue(); return nil })
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := pub.Publish(context.Background(), wrapperspb.String("over the zero broker")); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-got:
			if v != "over the zero broker" {
				t.Fatalf("got %q", v)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("message not received through a zero MemoryBroker")
		}
	})
}

// TestZeroHub checks that NewTopic on a Hub not created with New fails
// with a clear error wrapping ErrClosed: it panicked on the zero Hub's nil
// topic map (and a nil *Hub on its prefix). Close and Shutdown of a zero
// Hub have nothing to do and return nil.
func TestZeroHub(t *testing.T) {
	var h hub.Hub
	for name, h := range map[string]*hub.Hub{"zero": &h, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			tp, err := hub.NewTopic[msg](h, "t", nil)
			if tp != nil || !errors.Is(err, hub.ErrClosed) || !strings.Contains(err.Error(), "New") {
				t.Fatalf("NewTopic = %v, %v; want nil and an error wrapping ErrClosed that names New", tp, err)
			}
		})
	}
	if err := h.Close(); err != nil {
		t.Fatalf("zero Hub: Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("zero Hub: Shutdown: %v", err)
	}
}

// TestZeroNATSBroker checks that a NATSBroker not created with
// NewNATSBroker fails with a clear error wrapping ErrClosed, as a zero
// Hub does: its Close and MaxMessageSize dereferenced the nil connection
// (and Close would then have waited for ever for a watcher never
// started), and its Publish and Subscribe returned nats.go's bare
// "invalid connection".
func TestZeroNATSBroker(t *testing.T) {
	var b hub.NATSBroker
	if err := b.Publish(context.Background(), "s", []byte("x")); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Publish: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe("s", func([]byte) {}); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Subscribe: %v, want ErrClosed", err)
	}
	if n := b.MaxMessageSize(); n != 0 {
		t.Fatalf("MaxMessageSize: %d, want 0 (no limit known)", n)
	}
	if st := b.Stats(); st.Connected {
		t.Fatalf("Stats: %+v", st)
	}
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close of a zero NATSBroker never returned")
	}
}
