package hub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSOptions configures a NATSBroker. A nil *NATSOptions means all
// defaults.
type NATSOptions struct {
	// OnStatus, when set, is called on every change of the connection's
	// state: an outage (Connected false, Err the cause when known) and its
	// recovery (Connected true). Called from one goroutine, in order; it
	// must not block for long. Default nil (Stats still counts).
	OnStatus func(BrokerStatus)

	// FlushTimeout bounds the round trip Subscribe makes so the server
	// has the subscription before it returns. Default 2 s.
	FlushTimeout time.Duration
}

// BrokerStatus is a change of a broker connection's state.
type BrokerStatus struct {
	Connected bool
	Err       error // why the connection was lost, when known
}

// NATSStats are a NATSBroker's counters.
type NATSStats struct {
	Connected  bool
	Outages    uint64 // times the connection was lost
	Recoveries uint64 // times it came back
	LastError  error  // the cause of the last outage, if known
}

// NATSBroker is a Broker over core NATS (github.com/nats-io/nats.go):
// one NATS subject per topic, one subscription per topic per node.
//
// Delivery is what core NATS gives: at most once, in publish order per
// publishing connection. While the connection is down, nats.go buffers
// publishes (up to its ReconnectBufSize) and sends them on reconnect, and
// re-creates subscriptions; messages other nodes publish meanwhile are
// not delivered to this node (topics count them in Stats.Missed from the
// sequence gap). Outages and recoveries are reported through
// NATSOptions.OnStatus and Stats. Configure reconnection on the
// nats.Conn (nats.MaxReconnects(-1) to never give up).
//
// The broker watches the connection with nc.StatusChanged, so handlers
// the application set on the connection are left alone. It does not own
// nc: Close stops watching but does not close it.
//
// Concurrency: safe for concurrent use. One goroutine watches the
// connection state; a mutex guards the last error; counters are atomic.
type NATSBroker struct {
	nc      *nats.Conn
	opts    NATSOptions
	statusC chan nats.Status
	done    chan struct{}
	close   sync.Once

	connected           atomic.Bool
	outages, recoveries atomic.Uint64
	mu                  sync.Mutex
	lastErr             error
}

// NewNATSBroker returns a broker publishing and subscribing on nc. It fails
// if nc is nil or closed.
func NewNATSBroker(nc *nats.Conn, opts *NATSOptions) (*NATSBroker, error) {
	if nc == nil {
		return nil, fmt.Errorf("hub: nats broker: nil connection")
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("hub: nats broker: %w", nats.ErrConnectionClosed)
	}
	b := &NATSBroker{nc: nc, done: make(chan struct{})}
	if opts != nil {
		b.opts = *opts
	}
	if b.opts.FlushTimeout <= 0 {
		b.opts.FlushTimeout = 2 * time.Second
	}
	b.connected.Store(nc.IsConnected())
	b.statusC = nc.StatusChanged()
	go b.watch()
	return b, nil
}

func (b *NATSBroker) watch() {
	defer close(b.done)
	for st := range b.statusC {
		switch st {
		case nats.CONNECTED:
			if !b.connected.Swap(true) {
				b.recoveries.Add(1)
				b.notify(BrokerStatus{Connected: true})
			}
		case nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED:
			if b.connected.Swap(false) {
				b.outages.Add(1)
				err := b.nc.LastError()
				b.mu.Lock()
				b.lastErr = err
				b.mu.Unlock()
				b.notify(BrokerStatus{Err: err})
			}
			if st == nats.CLOSED {
				return
			}
		}
	}
}

func (b *NATSBroker) notify(s BrokerStatus) {
	if b.opts.OnStatus != nil {
		b.opts.OnStatus(s)
	}
}

// Publish publishes data on subject. During an outage nats.go buffers it;
// it fails when that buffer is full or the connection is closed.
func (b *NATSBroker) Publish(ctx context.Context, subject string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("nats publish: %w", err)
	}
	return nil
}

// Subscribe subscribes handle to subject. nats.go calls it from one
// goroutine per subscription, in order, and re-subscribes after a
// reconnection. When connected, Subscribe waits (up to FlushTimeout) for
// the server to have the subscription, so a publish that follows reaches
// it.
func (b *NATSBroker) Subscribe(subject string, handle func([]byte)) (func() error, error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { handle(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("nats subscribe: %w", err)
	}
	// Messages are small and handled fast; an unlimited pending buffer
	// would hide a stuck handler, so keep nats.go's limits but make them
	// generous.
	_ = sub.SetPendingLimits(1<<20, 1<<30)
	if b.nc.IsConnected() {
		if err := b.nc.FlushTimeout(b.opts.FlushTimeout); err != nil && b.nc.IsConnected() {
			_ = sub.Unsubscribe()
			return nil, fmt.Errorf("nats subscribe: flush: %w", err)
		}
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			if e := sub.Unsubscribe(); e != nil && !b.nc.IsClosed() {
				err = fmt.Errorf("nats unsubscribe: %w", e)
			}
		})
		return err
	}, nil
}

// Stats returns the broker's connection counters.
func (b *NATSBroker) Stats() NATSStats {
	b.mu.Lock()
	err := b.lastErr
	b.mu.Unlock()
	return NATSStats{
		Connected:  b.connected.Load(),
		Outages:    b.outages.Load(),
		Recoveries: b.recoveries.Load(),
		LastError:  err,
	}
}

// Close stops watching the connection (it does not close nc). Idempotent;
// returns nil.
func (b *NATSBroker) Close() error {
	b.close.Do(func() { b.nc.RemoveStatusListener(b.statusC) })
	<-b.done
	return nil
}
