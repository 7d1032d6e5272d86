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

// TestZeroSubscription calls each exported method of a Subscription not
// made by a Topic: Close dereferenced its nil topic, Done was a nil
// channel that never closes, and Err said it was active. Close and Err now
// return an error wrapping ErrClosed that names the Topic methods, Done
// is closed, and the rest return their zero results.
func TestZeroSubscription(t *testing.T) {
	calls := []struct {
		name   string
		call   func(s *hub.Subscription) error
		result bool // the call returns no error: call checks its zero result
	}{
		{"Err", (*hub.Subscription).Err, false},
		{"Close", (*hub.Subscription).Close, false},
		{"Close again", (*hub.Subscription).Close, false},
		{"Done", func(s *hub.Subscription) error {
			<-s.Done() // bounded by the caller's wait
			return nil
		}, true},
		{"Dropped", func(s *hub.Subscription) error {
			if n := s.Dropped(); n != 0 {
				t.Errorf("Dropped: %d", n)
			}
			return nil
		}, true},
		{"Queued", func(s *hub.Subscription) error {
			if n := s.Queued(); n != 0 {
				t.Errorf("Queued: %d", n)
			}
			return nil
		}, true},
		{"Stream", func(s *hub.Subscription) error {
			if st := s.Stream(); st != nil {
				t.Errorf("Stream: %v, want nil", st)
			}
			return nil
		}, true},
	}
	for _, zero := range []struct {
		name string
		sub  func() *hub.Subscription
	}{
		{"new", func() *hub.Subscription { return new(hub.Subscription) }},
		// One zero Subscription through every call, so each finds what
		// the calls before it left.
		{"shared", func() func() *hub.Subscription {
			var s hub.Subscription
			return func() *hub.Subscription { return &s }
		}()},
	} {
		for _, c := range calls {
			t.Run(zero.name+"/"+c.name, func(t *testing.T) {
				done := make(chan error, 1)
				go func() { done <- c.call(zero.sub()) }()
				select {
				case err := <-done:
					if c.result {
						return // checked by call
					}
					if !errors.Is(err, hub.ErrClosed) || !strings.Contains(err.Error(), "SubscribeFunc") {
						t.Fatalf("%s = %v; want an error wrapping ErrClosed that names SubscribeFunc", c.name, err)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%s did not return", c.name)
				}
			})
		}
	}
}
