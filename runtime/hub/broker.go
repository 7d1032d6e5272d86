package hub

import (
	"context"
	"fmt"
	"sync"
)

// Broker carries published messages between the nodes (processes) that
// share topics. A Hub publishes each message once to its broker and
// delivers it to its own subscribers directly; every other node's Hub
// receives it from the broker and fans it out to its subscribers.
//
// Two implementations come with the package: MemoryBroker (one process,
// the default) and NATSBroker (github.com/nats-io/nats.go, core NATS).
//
// A Broker that refuses messages over a size should implement
// SizeLimiter, giving the largest data its Publish takes. Topic.Publish
// then refuses a larger message with ErrTooLarge before delivering it
// anywhere; without the check, the publishing node's subscribers and
// replay store would have a message that the broker refused to carry to
// the other nodes. NATSBroker has it; MemoryBroker has no limit.
//
// Concurrency: implementations must be safe for concurrent use.
type Broker interface {
	// Publish sends data to every subscription on subject, in any process
	// (the publisher's own included or not: the hub ignores its own
	// messages). Messages published by one goroutine must reach each
	// subscription in the order they were published. Publish may return
	// before delivery. data is not modified afterwards; the broker may
	// hand it to subscribers without copying.
	Publish(ctx context.Context, subject string, data []byte) error

	// Subscribe calls handle for every message published on subject until
	// the returned unsubscribe function is called. Calls to handle for one
	// subscription never overlap and follow the publish order of each
	// publisher. handle must not block for long (the hub only enqueues)
	// and must not modify data, which it may keep.
	Subscribe(subject string, handle func(data []byte)) (unsubscribe func() error, err error)
}

// SizeLimiter is implemented by a Broker that refuses messages over a
// size, as NATSBroker does over the server's max_payload. MaxMessageSize
// returns the largest data Publish takes; 0 or less means no limit is
// known. Topic.Publish refuses a larger message with ErrTooLarge before
// delivering it anywhere (see Broker). A Broker that wraps another should
// forward it, or the check is lost.
type SizeLimiter interface{ MaxMessageSize() int }

// MemoryBroker is the in-process Broker: Publish calls the handler of
// every subscription on the subject synchronously, in the publishing
// goroutine. One MemoryBroker shared by several Hubs makes them behave as
// nodes of one cluster (as tests do); a Hub created with a nil broker gets
// its own. The zero MemoryBroker is ready to use, as one from
// NewMemoryBroker.
//
// Cost: Publish is one read-locked map lookup plus one call per
// subscription; no goroutine, no copy.
//
// Concurrency: safe for concurrent use; a mutex guards the subscription
// lists, which are copied on change so Publish calls handlers without
// holding it.
type MemoryBroker struct {
	mu     sync.RWMutex
	subs   map[string][]*memSub
	closed bool
}

// memSub serialises calls to one handler: publishers on several
// goroutines (or several hubs) must not run it concurrently.
type memSub struct {
	mu     sync.Mutex
	handle func([]byte)
}

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{subs: make(map[string][]*memSub)}
}

// Publish delivers data to the subscriptions on subject before returning.
func (b *MemoryBroker) Publish(ctx context.Context, subject string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	subs, closed := b.subs[subject], b.closed
	b.mu.RUnlock()
	if closed {
		return fmt.Errorf("memory broker: publish: %w", ErrClosed)
	}
	for _, s := range subs {
		s.mu.Lock()
		s.handle(data)
		s.mu.Unlock()
	}
	return nil
}

// Subscribe registers handle for subject.
func (b *MemoryBroker) Subscribe(subject string, handle func([]byte)) (func() error, error) {
	s := &memSub{handle: handle}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("memory broker: subscribe: %w", ErrClosed)
	}
	if b.subs == nil { // a zero MemoryBroker (Publish reads a nil map fine)
		b.subs = make(map[string][]*memSub)
	}
	old := b.subs[subject]
	b.subs[subject] = append(old[:len(old):len(old)], s)
	var once sync.Once
	return func() error {
		once.Do(func() { b.remove(subject, s) })
		return nil
	}, nil
}

func (b *MemoryBroker) remove(subject string, s *memSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.subs[subject]
	subs := make([]*memSub, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	if len(subs) == 0 {
		delete(b.subs, subject)
		return
	}
	b.subs[subject] = subs
}

// subscriptions returns how many subscriptions subject has: ServeSSE's
// test for another node (Topic.othersMayDeliver).
func (b *MemoryBroker) subscriptions(subject string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs[subject])
}

// Close drops every subscription; later calls fail with ErrClosed.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	clear(b.subs)
	return nil
}
