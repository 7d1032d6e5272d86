package hub

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/wsrpc/wsrpc/internal/peertext"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Policy is what a topic does when a subscriber's queue is full, that is
// when it has fallen QueueSize messages behind.
type Policy int

const (
	// DropOldest discards the oldest queued message to make room for the
	// new one; the subscriber stays and misses messages. Drops are counted
	// per subscription (Subscription.Dropped) and per topic
	// (Stats.Dropped). Suits state that the next message supersedes
	// (prices, presence, cursors). The default.
	DropOldest Policy = iota

	// Disconnect removes the subscriber: a WebSocket is closed with
	// TopicOptions.CloseCode (default 1013, try again later), an SSE
	// stream is ended, and the Subscription's Err is ErrSlowConsumer.
	// A subscriber thus never misses a message silently; it reconnects
	// (an SSE client resumes from its last id through the replay store).
	// Suits logs and chat.
	Disconnect
)

func (p Policy) String() string {
	switch p {
	case DropOldest:
		return "DropOldest"
	case Disconnect:
		return "Disconnect"
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// Defaults of TopicOptions.
const (
	// DefaultQueueSize is the per-subscriber queue bound. It bounds how
	// far a subscriber may fall behind, and so the bursts a healthy one
	// absorbs: a publish loop, or the messages nats.go buffered during a
	// broker outage and flushes as one burst on reconnection, arrive
	// faster than any client drains, and 64 slots lost healthy loopback
	// clients tens of messages of a 200-message burst (DropOldest) or
	// disconnected them (Disconnect). The queue holds pointers to
	// messages shared by all subscribers, so a full queue costs 8 bytes a
	// slot, only for a subscriber actually behind: it is grown on demand,
	// and an idle subscriber that never lagged holds at most 4 slots.
	DefaultQueueSize = 1024

	// DefaultCloseCode closes a WebSocket removed by the Disconnect
	// policy: 1013 "try again later" (RFC 6455 §7.4.1, IANA registry).
	DefaultCloseCode = websocket.StatusTryAgainLater

	// DefaultCloseReason is the close reason sent with DefaultCloseCode.
	DefaultCloseReason = "slow consumer"
)

// TopicOptions configures a topic. A nil *TopicOptions means all
// defaults.
type TopicOptions[M proto.Message] struct {
	// QueueSize bounds each subscriber's queue. Default DefaultQueueSize.
	QueueSize int

	// Policy is the slow-consumer policy. Default DropOldest.
	Policy Policy

	// CloseCode and CloseReason close a WebSocket removed by the
	// Disconnect policy. Defaults DefaultCloseCode, DefaultCloseReason.
	// NewTopic refuses a code Close may not send (StatusCode.Sendable) and
	// a reason that is not valid UTF-8 of at most 123 bytes.
	CloseCode   websocket.StatusCode
	CloseReason string

	// New returns an empty M to decode messages from other nodes into.
	// Default: M's message type's New, when M is a generated message
	// pointer type, as it almost always is. For any other M — an
	// interface such as proto.Message, or *dynamicpb.Message — New is
	// required (NewTopic fails without it), e.g. for a dynamic message:
	//
	//	New: func() *dynamicpb.Message { return dynamicpb.NewMessage(desc) }
	//
	// Its message type is then the topic's: Publish refuses a message of
	// any other type, which other nodes could not decode as sent.
	// NewTopic calls New once, and fails if it returns nil.
	New func() M

	// SSECodec encodes messages for SSE subscribers and the replay store:
	// the encoding is the event's data. It must be a text codec
	// (Binary() false). Default codec.JSON (protojson). For a topic served
	// through a generated SSE method (Follow with ServerStream.SendEvent)
	// whose response is a single oneof, use wsrpc.SSEEventCodec with
	// wsrpc.SSEEventType as EventType: a page listens for the case's name
	// as event type, with the case's value as data, and a generated
	// client refuses a case's event whose data is the whole message.
	SSECodec codec.Codec

	// EventType names the SSE event type of a message (the "event:"
	// field; for a oneof, typically the case's name). Default nil: no
	// event field, which clients dispatch as "message".
	EventType func(M) string

	// Replay records every message this node sees (published here or
	// received from the broker), as an SSE event, for clients that resume
	// with Last-Event-ID. Default: sse.NewRing(sse.DefaultRingCapacity).
	// Cost: one SSE encoding per message per node, even with no SSE
	// subscriber, so that a client can resume on any node; the ring's
	// memory grows with the events it holds, up to its capacity (a
	// topic nothing was published on holds none).
	//
	// A store belongs to one topic: NewTopic refuses one that another
	// topic of the hub, not closed, already uses (one TopicOptions value
	// reused for several topics, say) with ErrReplayInUse. Shared, the topics' events mix in
	// one log: a client resuming on one topic is replayed the other's,
	// and a Ring refuses the second topic's event ids as duplicates when
	// they coincide, so its SSE subscribers lose those events. A topic's
	// Close releases its store. Stores are compared with ==, so this
	// catches a pointer (a *sse.Ring) given twice; a store whose type is
	// not comparable is not checked.
	Replay sse.Store

	// DisableReplay turns recording off (Replay is then ignored); SSE
	// subscribers still get live events, with ids. Default false.
	DisableReplay bool
}

// Topic is a typed broadcast channel: a message published once on any
// node reaches every subscriber of the topic on every node of the broker.
//
// Per message, each node encodes once per codec its subscribers use,
// frames once for WebSocket (websocket.PreparedMessage: the same bytes are
// written to every connection that can share them; a connection
// compressing with context takeover compresses for itself), and encodes
// once for SSE. Each subscriber then gets a pointer in its own bounded
// queue (see Policy); a goroutine writes it out while the queue is not
// empty, so an idle subscriber costs no goroutine and a stalled one delays
// nobody else.
//
// Ordering: messages published on one node reach each subscriber, on every
// node, in the order Publish returned (Publish calls on one topic are
// serialised per node). Messages of different nodes interleave in arrival
// order, which may differ between nodes.
//
// Concurrency: safe for concurrent use. A publish mutex serialises
// Publish (sequence number, local fan-out, broker publish, in that order);
// a dispatch mutex serialises the fan-out of local and remote messages,
// so that each is recorded in the replay store (Append, under this mutex
// alone) and queued in one order; a third mutex guards the subscriber set
// and the per-node sequence state, and is held while one message is
// encoded and queued to every local subscriber, never while calling the
// replay store's Append, writing to a connection or calling
// Options.OnError. Close takes all three, so it waits for a message
// being recorded (a slow store's Append), after which the store is no
// longer the topic's. Stats takes none.
type Topic[M proto.Message] struct {
	core      topicCore
	newM      func() M
	sseCodec  codec.Codec
	eventType func(M) string
	replay    sse.Store

	// msgName is the full name of newM's message type, and checkMsg
	// whether Publish must check a message against it: only where M
	// itself does not fix the type (proto.Message, *dynamicpb.Message).
	msgName  protoreflect.FullName
	checkMsg bool

	pubMu sync.Mutex
	seq   uint64 // last sequence number published by this node; under pubMu

	// dispatchMu serialises dispatch, local and remote: the replay store's
	// Append runs under it but not under core.mu, so that a slow store
	// (a database) holds up the topic's deliveries, which must keep the
	// store's order, but not its subscriber set (subscribing,
	// unsubscribing, a slow consumer's removal).
	dispatchMu sync.Mutex
}

// topicCore is the part of a topic that subscriptions see.
type topicCore struct {
	h           *Hub
	name        string
	subject     string
	queueSize   int
	policy      Policy
	closeCode   websocket.StatusCode
	closeReason string

	mu          sync.Mutex
	unsubscribe func() error // from the broker; nil until NewTopic has subscribed
	subs        []*Subscription
	nsubs       atomic.Int64 // len(subs) - wakeSubs, written under mu, so Stats need not lock
	codecs      []codecUse   // codecs of WebSocket subscribers; index = Subscription.codecIdx
	sseSubs     int
	funcSubs    int
	wakeSubs    int                // Follow's wake-up subscriptions (Subscription.internal)
	lastSeq     map[string]nodeSeq // per publishing node heard from (see sweepNodes)
	ownSeen     bool               // a message of this node's has been dispatched (add's floorGap)
	swept       bool               // sweepNodes has forgotten a node: an unknown one may be an old one (add)
	sweepAt     int                // len(lastSeq) at which sweepNodes next runs
	now         func() time.Time   // time.Now; tests set a clock of their own
	closed      atomic.Bool        // written under mu
	closeDone   chan struct{}      // made under mu by the first Close, closed when it has finished

	published, received, delivered, dropped, disconnected, failed atomic.Uint64
	resumed, resumeGaps                                           atomic.Uint64 // ServeSSE's resumptions (Stats)
	missed, duplicates, decodeErrors, encodeErrors                atomic.Uint64
}

type codecUse struct {
	c codec.Codec
	n int // WebSocket subscribers using c
}

// nodeSeq is what a topic remembers of a publishing node.
type nodeSeq struct {
	seq  uint64    // last sequence number received
	seen time.Time // when it was received
}

// nodeTTL is how long a topic remembers a publishing node it no longer
// hears from. Node ids are random per process, so every restart anywhere
// leaves an entry behind; forgetting them bounds the memory. It is long
// because forgetting costs little only when the node is really gone: a
// node silent for an hour has either left (restarts take a new id) or,
// when it speaks again, is treated as new — only the gap before its next
// message goes uncounted in Stats.Missed.
const nodeTTL = time.Hour

// minSweepAt is the smallest number of remembered nodes that triggers a
// sweep; between sweeps the map may double, so each sweep's cost is
// spread over as many new nodes as it kept.
const minSweepAt = 64

// Stats are a topic's counters on this node, since it was created.
//
// Follow's own subscriptions are not counted: a follower shows up only in
// what it does with the events it reads.
//
// Failed counts WebSocket and SSE subscribers, each once, and neither
// one Disconnect removed (whose close fails the write in progress) nor
// one that was leaving: a write that finds the connection closed by a
// closing handshake (RFC 6455 §7), by the server, or an SSE client gone,
// is no failure. Nor is a SubscribeFunc function's error, which is how
// the function ends its subscription.
type Stats struct {
	Subscribers  int    // current local subscribers
	Published    uint64 // messages published on this node
	Received     uint64 // messages received from other nodes
	Delivered    uint64 // messages written to local subscribers (one per subscriber)
	Dropped      uint64 // messages discarded by DropOldest
	Disconnected uint64 // subscribers removed by Disconnect
	Failed       uint64 // subscribers removed because a write to them failed (a write timeout, a lost connection)
	// Missed counts messages of other nodes never received: gaps in a
	// publisher's sequence, as when the broker connection was down (core
	// NATS delivers at most once).
	Missed       uint64
	Duplicates   uint64 // broker messages received twice and ignored
	DecodeErrors uint64 // broker messages that did not decode, where decoded (see ErrBadEnvelope)
	EncodeErrors uint64 // messages a subscriber codec or the replay store refused
	// Resumed counts SSE requests (ServeSSE) that came back with a
	// Last-Event-ID, and ResumeGaps the streams among them opened with a
	// gap (sse.Stream.Gap): the id had left the replay store, or the
	// topic records nothing. Many gaps after a deploy or a network blip mean
	// the store holds too little history for how long clients are away.
	Resumed    uint64
	ResumeGaps uint64
}

// NewTopic creates the topic name on h and subscribes to it on the broker.
// M is the message type, inferred from opts or given explicitly:
//
//	chat, err := hub.NewTopic[*chatv1.Event](h, "chat", nil)
//
// It fails with ErrInvalidTopic, ErrTopicExists, ErrBinaryCodec,
// ErrReplayInUse (opts.Replay is the store of another topic of h not
// closed; see TopicOptions.Replay), ErrClosed or the broker's error, and
// when opts gives no New for an M whose zero value names no message type
// (proto.Message, *dynamicpb.Message). On a Hub not created with New (a
// zero or nil Hub) it fails with an error wrapping ErrClosed.
func NewTopic[M proto.Message](h *Hub, name string, opts *TopicOptions[M]) (*Topic[M], error) {
	// A Hub without a broker was not made by New: it can carry nothing,
	// as if closed, and the error says why rather than a nil map panic.
	if h == nil || h.broker == nil {
		return nil, fmt.Errorf("hub: topic %q: Hub not created with New: %w", name, ErrClosed)
	}
	var o TopicOptions[M]
	if opts != nil {
		o = *opts
	}
	if !validTopic(name) {
		return nil, fmt.Errorf("%w %q", ErrInvalidTopic, name)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Policy != DropOldest && o.Policy != Disconnect {
		return nil, fmt.Errorf("hub: topic %q: unknown policy %v", name, o.Policy)
	}
	if o.CloseCode == 0 {
		o.CloseCode = DefaultCloseCode
	}
	if o.CloseReason == "" {
		o.CloseReason = DefaultCloseReason
	}
	// Checked now: a close the connection refuses would send no close
	// frame when the policy strikes.
	if !o.CloseCode.Sendable() {
		return nil, fmt.Errorf("hub: topic %q: close code %d may not be sent", name, int(o.CloseCode))
	}
	if websocket.CloseReason(o.CloseReason) != o.CloseReason {
		return nil, fmt.Errorf("hub: topic %q: close reason %q is not valid UTF-8 of at most 123 bytes", name, o.CloseReason)
	}
	mt, typed := messageType[M]()
	if o.New == nil {
		if !typed {
			return nil, fmt.Errorf("hub: topic %q: TopicOptions.New is required for message type %v, whose zero value does not name a message type", name, reflect.TypeFor[M]())
		}
		o.New = func() M { return mt.New().Interface().(M) }
	}
	m0 := o.New()
	if isNilMessage(m0) {
		return nil, fmt.Errorf("hub: topic %q: TopicOptions.New returned a nil message", name)
	}
	if o.SSECodec == nil {
		o.SSECodec = codec.JSON
	}
	if o.SSECodec.Binary() {
		return nil, fmt.Errorf("%w: topic %q: codec %q", ErrBinaryCodec, name, o.SSECodec.Name())
	}
	if o.DisableReplay {
		o.Replay = nil
	} else if o.Replay == nil {
		o.Replay = sse.NewRing(sse.DefaultRingCapacity)
	}
	t := &Topic[M]{
		core: topicCore{
			h:           h,
			name:        name,
			subject:     h.prefix + name,
			queueSize:   o.QueueSize,
			policy:      o.Policy,
			closeCode:   o.CloseCode,
			closeReason: o.CloseReason,
			lastSeq:     make(map[string]nodeSeq),
			sweepAt:     minSweepAt,
			now:         time.Now,
		},
		newM:      o.New,
		msgName:   m0.ProtoReflect().Descriptor().FullName(),
		checkMsg:  !typed,
		sseCodec:  o.SSECodec,
		eventType: o.EventType,
		replay:    o.Replay,
	}
	// Registering first reserves the name. The topic is then visible to
	// Hub.Close while the broker subscribes (a round trip with NATS), so
	// whoever comes second unsubscribes: Close if it finds unsubscribe
	// set, this function if it finds the topic closed.
	if err := h.register(name, t, t.replay, &t.seq); err != nil {
		return nil, err
	}
	unsub, err := h.broker.Subscribe(t.core.subject, t.receive)
	if err != nil {
		h.unregister(name, t, t.seq)
		return nil, fmt.Errorf("hub: topic %q: subscribe on broker: %w", name, err)
	}
	c := &t.core
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		err := fmt.Errorf("hub: topic %q: %w", name, ErrClosed)
		if uerr := unsub(); uerr != nil {
			err = fmt.Errorf("%w; unsubscribe on broker: %w", err, uerr)
		}
		return nil, err
	}
	c.unsubscribe = unsub
	c.mu.Unlock()
	return t, nil
}

// messageType returns M's message type, which a generated message pointer
// type gives even from its nil value. It reports false where the zero
// value gives none, so NewTopic can ask for TopicOptions.New rather than
// panic: an interface type's zero value (proto.Message) is nil, and a nil
// dynamic message (*dynamicpb.Message), whose ProtoReflect returns the
// nil message itself, has no type to give.
func messageType[M proto.Message]() (protoreflect.MessageType, bool) {
	var zero M
	if any(zero) == nil {
		return nil, false
	}
	m := zero.ProtoReflect()
	if m == nil {
		return nil, false
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, false
	}
	return m.Type(), true
}

// isNilMessage reports whether m is a nil interface or a nil
// *dynamicpb.Message, whose methods would panic. A nil generated message
// needs no check: its ProtoReflect gives an invalid message, which
// Publish refuses.
func isNilMessage[M proto.Message](m M) bool {
	switch v := any(m).(type) {
	case nil:
		return true
	case *dynamicpb.Message:
		return v == nil
	}
	return false
}

// Name returns the topic's name.
func (t *Topic[M]) Name() string { return t.core.name }

// Publish sends msg to every subscriber of the topic on every node: it
// queues it to this node's subscribers, then hands it to the broker once
// (protobuf binary, tagged with this node's id and a sequence number).
// It does not wait for any subscriber and does not retain msg.
//
// It fails for a nil message and, when M does not fix the message type
// (proto.Message, *dynamicpb.Message), for a message of another type than
// TopicOptions.New's: local subscribers would get it as it is while other
// nodes decode its bytes as New's type, so the same event would differ
// between nodes.
//
// It fails with ErrTooLarge, delivering nothing anywhere, when the
// broker message (the payload, the node id and the sequence number)
// would exceed the broker's size limit (see Broker: a NATS server's
// max_payload). Otherwise local subscribers get the message even when
// the broker fails; the broker's error is returned (wrapped). Cost: one
// protobuf encoding, one encoding per codec in use, one decoding of the
// protobuf encoding when there are function subscribers (their copy of
// msg), one allocation per subscriber queue slot touched, one broker
// publish.
func (t *Topic[M]) Publish(ctx context.Context, msg M) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.checkMsg {
		if isNilMessage(msg) {
			return fmt.Errorf("hub: publish on %q: nil message", t.core.name)
		}
		if n := msg.ProtoReflect().Descriptor().FullName(); n != t.msgName {
			return fmt.Errorf("hub: publish on %q: message type %s, want the topic's %s", t.core.name, n, t.msgName)
		}
	}
	if !msg.ProtoReflect().IsValid() {
		return fmt.Errorf("hub: publish on %q: nil message", t.core.name)
	}
	payload, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("hub: publish on %q: %w", t.core.name, err)
	}
	errs, err := t.publish(ctx, msg, payload)
	t.core.report(errs)
	return err
}

// publish is Publish under the publish mutex. It returns the errors met
// delivering locally, for Publish to report once the mutex is released.
func (t *Topic[M]) publish(ctx context.Context, msg M, payload []byte) ([]error, error) {
	node := t.core.h.node
	t.pubMu.Lock()
	defer t.pubMu.Unlock()
	if t.core.closed.Load() {
		return nil, fmt.Errorf("hub: publish on %q: %w", t.core.name, ErrClosed)
	}
	seq := t.seq + 1
	env := appendEnvelope(make([]byte, 0, 2+len(node)+binaryMaxVarint+len(payload)), node, seq, payload)
	// Checked before anything is delivered here: a message the broker
	// refuses would reach this node's subscribers and replay store only,
	// and the nodes would disagree on the topic's history. The sequence
	// number is not used up, so other nodes count nothing missed.
	if b, ok := t.core.h.broker.(SizeLimiter); ok {
		if limit := b.MaxMessageSize(); limit > 0 && len(env) > limit {
			return nil, fmt.Errorf("hub: publish on %q: %w: %d bytes to send (payload %d), broker limit %d", t.core.name, ErrTooLarge, len(env), len(payload), limit)
		}
	}
	t.seq = seq
	errs := t.dispatch(node, seq, msg, true, payload, false)
	t.core.published.Add(1)
	if err := t.core.h.broker.Publish(ctx, t.core.subject, env); err != nil {
		return errs, fmt.Errorf("hub: publish on %q: broker: %w", t.core.name, err)
	}
	return errs, nil
}

const binaryMaxVarint = 10

// receive handles one broker message.
func (t *Topic[M]) receive(data []byte) {
	node, seq, payload, err := parseEnvelope(data)
	if err != nil {
		t.core.decodeErrors.Add(1)
		t.core.h.report(t.core.name, fmt.Errorf("%w: %w", ErrBadEnvelope, err))
		return
	}
	if string(node) == t.core.h.node {
		return // our own message, already delivered by Publish
	}
	var zero M
	t.core.report(t.dispatch(string(node), seq, zero, false, payload, true))
}

// report hands errs to Options.OnError. It is called with no lock held, so
// that OnError may use the topic.
func (c *topicCore) report(errs []error) {
	for _, err := range errs {
		c.h.report(c.name, err)
	}
}

// dispatch records one message and queues it to every local subscriber.
// msg is valid when haveMsg; otherwise it is decoded from payload only if
// some subscriber or the replay store needs it. It returns the errors met
// (counted already) for the caller to report once it holds no lock; nil,
// with no allocation, when there were none.
func (t *Topic[M]) dispatch(node string, seq uint64, msg M, haveMsg bool, payload []byte, remote bool) (errs []error) {
	c := &t.core
	decode := func() (M, bool) {
		m := t.newM()
		if err := proto.Unmarshal(payload, m); err != nil {
			c.decodeErrors.Add(1)
			// The node id is another process's bytes: escaped, as
			// every peer's text in an error is (internal/peertext).
			errs = append(errs, fmt.Errorf("%w: from node %s: %w", ErrBadEnvelope, peertext.OneLine(node), err))
			return m, false
		}
		return m, true
	}
	getMsg := func() (M, bool) {
		if !haveMsg {
			m, ok := decode()
			if !ok {
				return m, false
			}
			msg, haveMsg = m, true
		}
		return msg, true
	}

	t.dispatchMu.Lock()
	defer t.dispatchMu.Unlock()
	// The message is recorded before mu is taken, so that a store that
	// blocks does not hold the subscriber set; dispatchMu keeps the
	// store's order the subscribers'. A subscriber that joins between
	// Append and the queueing below is queued the message and may also
	// be replayed it, which its stream drops (sse.Stream.Send), as for
	// one that joins before dispatch and reads the store after; or it
	// resumes from the message itself, read in another stream's replay
	// once the store showed it, which its stream drops too (the client's
	// last event: TestResumeFromRecordedUndelivered). Skipped
	// for what the locked part drops: only dispatch writes lastSeq, and
	// dispatchMu is held.
	var rec *sse.Prepared
	recorded, decoded := false, true
	if t.replay != nil {
		c.mu.Lock()
		drop := c.closed.Load() || remote && seq <= c.lastSeq[node].seq
		c.mu.Unlock()
		if !drop {
			recorded = true
			var m M
			if m, decoded = getMsg(); decoded {
				rec = t.prepareSSE(node+"-"+strconv.FormatUint(seq, 10), m, &errs)
			}
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return errs // nothing recorded above: Close takes dispatchMu
	}
	if !remote {
		// Under mu, where add decides a floor's gap: a count taken after
		// the dispatch (Stats.Published) would let a subscription that
		// joined in between miss this message with no gap reported.
		c.ownSeen = true
	}
	if remote {
		now := c.now()
		last, known := c.lastSeq[node]
		if seq <= last.seq {
			c.duplicates.Add(1)
			return nil
		}
		if known && seq > last.seq+1 {
			c.missed.Add(seq - last.seq - 1)
		}
		if !known && len(c.lastSeq) >= c.sweepAt {
			c.sweepNodes(now)
		}
		c.lastSeq[node] = nodeSeq{seq: seq, seen: now}
		c.received.Add(1)
	}
	if t.replay == nil && len(c.subs) == 0 {
		return nil
	}

	d := &delivery{node: node, seq: seq}
	if recorded {
		if !decoded {
			return errs
		}
		d.sse = rec
	} else if t.replay != nil || c.sseSubs > 0 {
		m, ok := getMsg()
		if !ok {
			return errs
		}
		d.sse = t.prepareSSE(node+"-"+strconv.FormatUint(seq, 10), m, &errs)
	}
	if c.funcSubs > 0 {
		get := getMsg
		if !remote {
			// The publisher may reuse msg after Publish, so function
			// subscribers get a copy: decoded from payload, the encoding
			// Publish made anyway, as other nodes decode it. Not
			// proto.Clone: Merge skips an implicit-presence float or
			// double holding -0 (as if it were unset) where Marshal and
			// Equal do not, so the local copy would hold +0, unlike what
			// was published and what other nodes get.
			get = decode
		}
		m, ok := get()
		if !ok {
			return errs
		}
		d.msg = m
	}
	if len(c.codecs) > 0 {
		d.ws = make([]*websocket.PreparedMessage, len(c.codecs))
		for i, cu := range c.codecs {
			if cu.n == 0 {
				continue
			}
			b := payload
			if !sameCodec(cu.c, codec.Proto) {
				m, ok := getMsg()
				if !ok {
					return errs
				}
				var err error
				if b, err = cu.c.Marshal(m); err != nil {
					c.encodeError(&errs, err)
					continue
				}
			}
			typ := websocket.MessageBinary
			if !cu.c.Binary() {
				typ = websocket.MessageText
				if len(b) == 0 {
					c.encodeError(&errs, emptyEncoding(cu.c))
					continue
				}
			}
			pm, err := websocket.NewPreparedMessage(typ, b)
			if err != nil {
				c.encodeError(&errs, err)
				continue
			}
			d.ws[i] = pm
		}
	}
	var slow []*Subscription
	for _, s := range c.subs {
		if !s.enqueue(d) {
			slow = append(slow, s)
		}
	}
	for _, s := range slow {
		c.removeLocked(s)
		c.disconnected.Add(1)
		s.disconnect()
	}
	return errs
}

// sweepNodes forgets the publishing nodes not heard from for nodeTTL,
// and sets the size at which it runs next to twice what it kept: sweeps
// then cost O(1) per message, amortised. Called under mu.
func (c *topicCore) sweepNodes(now time.Time) {
	keep := 0
	for _, ns := range c.lastSeq {
		if now.Sub(ns.seen) < nodeTTL {
			keep++
		}
	}
	if keep < len(c.lastSeq) {
		// A Go map never gives back the memory of deleted entries: move
		// the survivors to one sized for them.
		m := make(map[string]nodeSeq, keep)
		for node, ns := range c.lastSeq {
			if now.Sub(ns.seen) < nodeTTL {
				m[node] = ns
			}
		}
		c.lastSeq = m
		c.swept = true
	}
	c.sweepAt = max(minSweepAt, 2*keep)
}

func (t *Topic[M]) prepareSSE(id string, m M, errs *[]error) *sse.Prepared {
	c := &t.core
	data, err := t.sseCodec.Marshal(m)
	if err == nil && len(data) == 0 {
		err = emptyEncoding(t.sseCodec)
	}
	if err != nil {
		c.encodeError(errs, err)
		return nil
	}
	ev := sse.Event{ID: id, Data: string(data)}
	if t.eventType != nil {
		ev.Type = t.eventType(m)
	}
	if t.replay != nil {
		if ev, err = t.replay.Append(ev); err != nil {
			c.encodeError(errs, fmt.Errorf("replay store: %w", err))
			return nil
		}
	}
	p, err := sse.Prepare(ev)
	if err != nil {
		c.encodeError(errs, err)
		return nil
	}
	return p
}

// emptyEncoding is the error for a text codec that encoded a message as
// nothing (codec.Codec.Binary: text encodings are never empty). Sent, it
// would be lost: an empty text message is wsrpc's end-of-stream marker,
// which ends a typed client's stream, and an SSE event without data is
// not dispatched (WHATWG HTML §9.2.6), though the replay store would
// keep its id.
func emptyEncoding(cd codec.Codec) error {
	return fmt.Errorf("text codec %s encoded a message as nothing: not sent", cd.Name())
}

// encodeError counts err and adds it to errs, to be reported once the
// topic's locks are released.
func (c *topicCore) encodeError(errs *[]error, err error) {
	c.encodeErrors.Add(1)
	*errs = append(*errs, fmt.Errorf("hub: topic %q: encode: %w", c.name, err))
}

// sameCodec compares codecs by identity; codecs whose dynamic type is not
// comparable are never shared (each subscriber then gets its own slot).
func sameCodec(a, b codec.Codec) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// Stats returns the topic's counters on this node. It takes no lock, so it
// may be called from anywhere, Options.OnError included; the counters are
// read one by one, not as one snapshot.
func (t *Topic[M]) Stats() Stats {
	c := &t.core
	return Stats{
		Subscribers:  int(c.nsubs.Load()),
		Published:    c.published.Load(),
		Received:     c.received.Load(),
		Delivered:    c.delivered.Load(),
		Dropped:      c.dropped.Load(),
		Disconnected: c.disconnected.Load(),
		Failed:       c.failed.Load(),
		Missed:       c.missed.Load(),
		Duplicates:   c.duplicates.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		EncodeErrors: c.encodeErrors.Load(),
		Resumed:      c.resumed.Load(),
		ResumeGaps:   c.resumeGaps.Load(),
	}
}

// Replay returns the topic's replay store (nil when disabled).
func (t *Topic[M]) Replay() sse.Store { return t.replay }

// replayStore is Replay, for the hub's registry (closer).
func (t *Topic[M]) replayStore() sse.Store { return t.replay }

// Close unsubscribes the topic from the broker, ends every subscription
// with ErrClosed and waits for writes in progress, which the connections'
// write timeouts bound. The connections of SubscribeWebSocket stay open:
// their callers own them. Those of WebSocketHandler, which belong to the
// topic, are closed with 1013 "topic closed" (what a client arriving
// later is told), all at once, and Close waits for them, each bounded by
// its close timeout — unless the hub is closing, which closes them
// itself. Later Publish calls fail with ErrClosed.
//
// A SubscribeFunc function must not call Close on its topic: Close would
// wait for the function to return, that is for itself.
//
// Idempotent: a Close while another is in progress returns when that one
// has finished (nil; the first returns the broker's unsubscribe error, if
// any), so whoever calls it, the hub's own Close included, can count on
// the subscriptions having ended.
func (t *Topic[M]) Close() error { return t.startClose()() }

// startClose is the first half of Close: it marks the topic closed and
// ends every subscription, so that nothing more is queued or written
// after a write in progress, and returns the second half, which
// unsubscribes the topic from the broker, waits for those writes (and,
// for a topic that was closing already, for the Close in progress) and
// returns Close's error. Hub.Shutdown runs the halves apart: it sends its
// connections 1001 between them, so a write stalled on one client does
// not delay every other client's close frame.
func (t *Topic[M]) startClose() (wait func() error) {
	t.pubMu.Lock()
	// dispatchMu too, for the broker's message in progress: Close
	// releases the replay store (h.unregister), which another topic may
	// then take, so no Append of this topic's may follow it
	// (TestCloseWaitsForRecording).
	t.dispatchMu.Lock()
	c := &t.core
	c.mu.Lock()
	if c.closed.Load() {
		done := c.closeDone
		c.mu.Unlock()
		t.dispatchMu.Unlock()
		t.pubMu.Unlock()
		return func() error {
			<-done
			return nil
		}
	}
	c.closed.Store(true)
	c.closeDone = make(chan struct{})
	seq := t.seq
	unsub := c.unsubscribe // nil if NewTopic is still subscribing: it then unsubscribes
	subs := c.subs
	c.subs = nil
	c.wakeSubs = 0
	c.nsubs.Store(0)
	for _, s := range subs {
		s.idx = -1
	}
	c.mu.Unlock()
	t.dispatchMu.Unlock()
	t.pubMu.Unlock()

	c.h.unregister(c.name, t, seq)
	hubClosing := c.h.isClosed()
	for _, s := range subs {
		s.topicClosed(hubClosing)
	}
	return func() error {
		// Unsubscribed here, in the half Hub.Shutdown bounds by its ctx:
		// a broker's unsubscribe may block (nats.go's waits for its
		// connection's lock, which a reconnection attempt holds up to its
		// dial timeout), and the topic, closed above, takes nothing from
		// the broker meanwhile.
		var err error
		if unsub != nil {
			err = unsub()
		}
		for _, s := range subs {
			s.wg.Wait()
		}
		close(c.closeDone)
		if err != nil {
			return fmt.Errorf("hub: topic %q: unsubscribe on broker: %w", c.name, err)
		}
		return nil
	}
}
