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
	// state: an outage (Connected false, Err the cause when nats.go gives
	// one) and its recovery (Connected true). Called from one goroutine,
	// in order, always with a state other than the last one reported; it
	// must not block for long. A slow OnStatus loses no state: changes
	// that happen meanwhile are merged, so it then sees the state the
	// connection is in, not every step it took. Default nil (Stats still
	// counts).
	//
	// OnStatus must not call Close on its broker: Close waits for the
	// goroutine that calls OnStatus to end, that is for itself, and would
	// never return. To give up from OnStatus, call go b.Close().
	OnStatus func(BrokerStatus)

	// FlushTimeout bounds the round trip Subscribe makes so the server
	// has the subscription before it returns. Default 2 s.
	FlushTimeout time.Duration
}

// BrokerStatus is a change of a broker connection's state.
type BrokerStatus struct {
	Connected bool
	// Err is why the connection was lost (nc.LastError), when nats.go
	// gives a cause: a protocol or authorization error, say. It is nil
	// when nats.go gives none, as for a server that closed the
	// connection or was restarted (nats.go clears the read error then);
	// to see such causes, set nats.DisconnectErrHandler on the
	// connection, which the broker leaves alone.
	Err error
}

// NATSStats are a NATSBroker's counters.
type NATSStats struct {
	Connected  bool
	Outages    uint64 // times the connection was seen lost
	Recoveries uint64 // times it was seen back
	LastError  error  // the last outage's Err (see BrokerStatus.Err): nil when nats.go gave no cause
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
// The zero NATSBroker is not usable: its Publish and Subscribe fail with
// an error wrapping ErrClosed, and its Close returns nil.
//
// Concurrency: safe for concurrent use. One goroutine watches the
// connection state, writes connected and calls OnStatus; a mutex guards
// the last error; counters are atomic.
type NATSBroker struct {
	nc      *nats.Conn
	opts    NATSOptions
	statusC chan nats.Status
	done    chan struct{}
	close   sync.Once
	closing atomic.Bool // Close has begun: OnStatus is not called again

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
	// Listening first: a change after the state is read then still sends
	// an event, which makes watch read the state again.
	b.statusC = nc.StatusChanged()
	b.connected.Store(nc.IsConnected())
	go b.watch()
	return b, nil
}

// watch follows the connection's state until it closes or Close is
// called. An event only says that the state changed: nats.go drops
// events while the listener's channel is full (10 of them, which a
// reconnection storm fills while OnStatus is slow), so a dropped CONNECTED
// would leave the broker reporting an outage for good. The state is read
// from the connection after each event instead, and reported only when it
// differs from the last one reported. A dropped event is then harmless:
// nats.go drops one only while events are queued, and those are read
// after it, each reading the state anew. nats.go sends the event and sets
// the state under the connection's lock, so nc.Status, which takes it,
// already sees the state that event announced.
func (b *NATSBroker) watch() {
	defer close(b.done)
	for range b.statusC {
		if b.closing.Load() {
			return
		}
		st := b.nc.Status()
		up := st == nats.CONNECTED || st == nats.DRAINING_SUBS || st == nats.DRAINING_PUBS // nc.IsConnected
		if up != b.connected.Load() {
			b.connected.Store(up)
			if up {
				b.recoveries.Add(1)
				b.notify(BrokerStatus{Connected: true})
			} else {
				b.outages.Add(1)
				err := b.nc.LastError()
				b.mu.Lock()
				b.lastErr = err
				b.mu.Unlock()
				b.notify(BrokerStatus{Err: err})
			}
		}
		if st == nats.CLOSED {
			return
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
	if b.nc == nil {
		return errZeroNATS
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("nats publish: %w", err)
	}
	return nil
}

// MaxMessageSize implements SizeLimiter: the largest message the NATS
// server takes, its max_payload (1 MiB by default), as the server
// announced it to nc (nats.Conn.MaxPayload); 0 while nc has not connected
// yet. nats.go refuses a larger publish with nats.ErrMaxPayload;
// Topic.Publish checks first (see Broker), so that no node delivers what
// the others never get.
func (b *NATSBroker) MaxMessageSize() int {
	if b.nc == nil {
		return 0
	}
	return int(b.nc.MaxPayload())
}

// errZeroNATS is what a zero NATSBroker's Publish and Subscribe return:
// it has no connection.
var errZeroNATS = fmt.Errorf("hub: NATSBroker not created with NewNATSBroker: %w", ErrClosed)

// Subscribe subscribes handle to subject. nats.go calls it from one
// goroutine per subscription, in order, and re-subscribes after a
// reconnection. When connected, Subscribe waits (up to FlushTimeout) for
// the server to have the subscription, so a publish that follows reaches
// it.
func (b *NATSBroker) Subscribe(subject string, handle func([]byte)) (func() error, error) {
	if b.nc == nil {
		return nil, errZeroNATS
	}
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

// Close stops watching the connection (it does not close nc) and returns
// once OnStatus is not running and will not be called again. Idempotent;
// returns nil.
//
// OnStatus must not call Close: Close would wait for OnStatus to return,
// that is for itself, and never return. Call go b.Close() there instead.
func (b *NATSBroker) Close() error {
	if b.nc == nil {
		return nil // a zero NATSBroker: no watcher was started
	}
	b.closing.Store(true)
	b.close.Do(func() { b.nc.RemoveStatusListener(b.statusC) })
	<-b.done
	return nil
}
