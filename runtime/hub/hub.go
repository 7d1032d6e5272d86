package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"reflect"
	"sync"

	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// DefaultSubjectPrefix is prepended to a topic's name to form its broker
// subject: topic "chat" travels on "wsrpc.hub.chat".
const DefaultSubjectPrefix = "wsrpc.hub."

// Options configures a Hub. A nil *Options means all defaults.
type Options struct {
	// NodeID names this node in broker messages and in SSE event ids
	// ("<node>-<seq>"). It must be unique among live hubs (two open at
	// once with one id would number over each other) and must change
	// when a process restarts: a topic numbers its messages from where
	// the last one of its name with that node id stopped, and only the
	// process remembers where that was, so a new process starts from 1
	// again and other nodes would drop its messages as repeats of the old
	// ones. Within a process the id may be reused: a Hub created with the
	// id of one closed before, like a topic created again under a closed
	// one's name, numbers on above its predecessor (the process keeps 512
	// bytes per node id whose topics published, for as long as it runs).
	// Letters, digits, '_', '-' and '.' only, at most 64 bytes: nothing
	// splits an SSE id apart again, and the sequence after its last '-'
	// stays unambiguous. Default: 16 random hex digits, new for every Hub.
	NodeID string

	// SubjectPrefix is prepended to topic names to form broker subjects:
	// letters, digits, '_', '-' and '.', no leading '.' and no "..", at
	// most 64 bytes, so that every topic's subject is one valid NATS
	// subject without wildcards. Usually it ends with '.'. Default
	// DefaultSubjectPrefix.
	SubjectPrefix string

	// OnError, when set, is called with errors that have no caller to
	// return to: a broker message that does not decode, a message a codec
	// cannot encode for its subscribers, an SSE replay store that refuses
	// an event. They are also counted in Stats. Called from the goroutine
	// that hit the error (a Publish, or the broker's delivery) with no
	// hub lock held, once the message has been queued: it may use the
	// topic (Stats, even Publish), but must not block for long, since
	// that goroutine is publishing or receiving. One exception: a
	// MemoryBroker delivers inside the publisher's Publish and serialises
	// each subscription's deliveries, so for a message received from it,
	// publishing on the same topic would wait for itself. Default nil.
	OnError func(topic string, err error)
}

// Hub owns a set of typed topics on one broker. Create one with New; the
// zero Hub is not usable (NewTopic fails on it with ErrClosed). Create
// topics with NewTopic; publish and subscribe on them.
//
// Concurrency: a Hub is safe for concurrent use; a mutex guards its topic
// registry, and the process-wide record of where closed topics' sequence
// numbers stopped (see Options.NodeID) has a mutex of its own, taken after
// it. Each topic has its own locks (see Topic).
type Hub struct {
	broker Broker
	node   string
	prefix string
	onErr  func(string, error)

	mu     sync.Mutex
	topics map[string]closer
	closed bool
	// ownFloors, for a hub whose node id New generated, are its sequence
	// floors (see seqFloors), kept with the hub rather than in the
	// process-wide map: no later Hub is given a random id by New, so the
	// map would only keep them, 512 bytes per hub, for the life of the
	// process. Nil for a chosen node id; guarded by mu.
	ownFloors *[seqBuckets]uint64
	// poller reads the connections of WebSocketHandler endpoints, so an
	// idle subscriber holds no goroutine; made on first use.
	poller *websocket.Poller
}

// closer is a topic as its hub closes it: startClose ends its
// subscriptions at once and returns the wait for their writes in progress
// (Topic.startClose), which the caller must call. replayStore is its
// replay store (nil when disabled), which no other topic may share.
type closer interface {
	startClose() (wait func() error)
	replayStore() sse.Store
}

const seqBuckets = 64

// seqFloors holds, per node id and per bucket of topic names
// (seqBucket), the highest sequence number a closed topic of any Hub of
// this process with that node id published: a topic created under the
// same name starts above it — on the same Hub or on a later one with the
// same node id — since other nodes (which may still hold the old topic's
// last number) and resuming SSE clients (which hold "<node>-<seq>" ids)
// cannot tell the two apart; the wire format stays as it was, so nodes of
// different versions still mix. Buckets rather than a map per name keep
// this at 512 bytes per node id however many names come and go; only
// node ids whose topics published get an entry. Names sharing a bucket
// only start higher than they need to; a node that still has the old
// topic open then counts the jump in Stats.Missed, once.
//
// The floors are read when a topic registers and raised when it closes,
// so Publish takes no lock for them. A Hub that is dropped without Close
// records nothing: a later Hub with its node id starts where its last
// closed topic stopped. A Hub whose node id New generated keeps its
// floors itself (Hub.ownFloors), freed with it: New never generates an
// id twice, so only a Hub given that id explicitly (Options.NodeID:
// h.NodeID()) would read them here, and it starts from 0.
var seqFloors struct {
	mu sync.Mutex
	m  map[string]*[seqBuckets]uint64
}

// seqSeed seeds seqBucket's hash; the floors live only as long as the
// process, so any seed will do.
var seqSeed = maphash.MakeSeed()

// seqBucket hashes a topic name to its seqFloor bucket.
func seqBucket(name string) int { return int(maphash.String(seqSeed, name) % seqBuckets) }

// New returns a hub publishing through broker; a nil broker means a new
// MemoryBroker of its own (a single-process hub). It fails only for an
// invalid Options.NodeID or Options.SubjectPrefix.
func New(broker Broker, opts *Options) (*Hub, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if broker == nil {
		broker = NewMemoryBroker()
	}
	generated := o.NodeID == ""
	if generated {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		o.NodeID = hex.EncodeToString(b[:])
	} else if !validNodeID(o.NodeID) {
		return nil, fmt.Errorf("hub: invalid node id %q: letters, digits, '_', '-' and '.' only, 1 to 64 bytes", o.NodeID)
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	} else if !validSubjectPrefix(o.SubjectPrefix) {
		// A space would split the subject on the wire, '*' or '>' would
		// subscribe to other topics' subjects as wildcards.
		return nil, fmt.Errorf("hub: invalid subject prefix %q: letters, digits, '_', '-' and '.' only (no leading '.', no \"..\"), at most %d bytes", o.SubjectPrefix, maxPrefixLen)
	}
	h := &Hub{
		broker: broker,
		node:   o.NodeID,
		prefix: o.SubjectPrefix,
		onErr:  o.OnError,
		topics: make(map[string]closer),
	}
	if generated {
		h.ownFloors = new([seqBuckets]uint64)
	}
	return h, nil
}

// NodeID returns the node id that tags this hub's messages.
func (h *Hub) NodeID() string { return h.node }

// Broker returns the hub's broker.
func (h *Hub) Broker() Broker { return h.broker }

// Close closes the connections of WebSocketHandler endpoints, without a
// closing handshake (Shutdown sends one), then every topic (see
// Topic.Close). The connections go first and at once: they belong to the
// hub, so a write in progress on one fails at once instead of running to
// its write timeout. Writes in progress on the connections of
// SubscribeWebSocket, which their callers own, are still waited for, each
// bounded by its connection's write timeout, as is a SubscribeFunc call in
// progress. It does not close the broker, which may be shared.
// Idempotent; returns nil.
func (h *Hub) Close() error {
	p, ts := h.markClosed()
	if p != nil {
		_ = p.Close()
	}
	waitAll(startCloseAll(ts))
	return nil
}

// Shutdown is Close with a closing handshake for the connections of
// WebSocketHandler endpoints: each gets 1001 (going away, RFC 6455
// §7.4.1), so clients know the server left on purpose. In three steps:
//
//  1. Every topic is marked closed and its subscriptions are ended,
//     without waiting for the writes in progress: nothing more is queued,
//     and no subscription starts another write.
//  2. At once, the hub's connections are sent 1001, all closing
//     handshakes running in parallel. A write in progress on a connection
//     goes out before its close frame (a connection serialises its
//     writes), and no message can follow the close frame (the connection
//     refuses data after it, RFC 6455 §5.5.1), so a healthy client reads
//     what was being written to it, then 1001. A client that stopped
//     reading cannot delay the others' close frames: only its own waits
//     for its stalled write, up to its connection's close timeout
//     (websocket.AcceptOptions.CloseTimeout), after which its TCP
//     connection is closed, which fails that write.
//  3. Shutdown waits for the topics' writes in progress and for the
//     clients' replies to the close frames.
//
// Shutdown returns once ctx is done, whatever it is waiting for: the
// connections of WebSocketHandler endpoints still open are then closed
// at once without a handshake, which fails their stalled writes, and
// ctx's error is returned without waiting further: a topic still waiting
// for a SubscribeFunc call, for a write on a connection of
// SubscribeWebSocket (bounded by that connection's write timeout), for
// its broker's unsubscribe, or for a Publish in progress blocked in its
// broker (NATS: a reconnection attempt in progress holds the connection
// up to its dial timeout, and step 1 waits for that Publish), finishes
// closing in the background when that returns. Idempotent with Close.
func (h *Hub) Shutdown(ctx context.Context) error {
	p, ts := h.markClosed()
	// A topic's first half waits for a Publish in progress, which may be
	// blocked in its broker (nats.go's Publish waits for the connection
	// while a reconnection attempt holds it, up to its dial timeout), so
	// ctx bounds it too.
	started := make(chan []func() error, 1)
	go func() { started <- startCloseAll(ts) }()
	var waits []func() error
	select {
	case waits = <-started:
	case <-ctx.Done():
		select {
		case waits = <-started: // not blocked: carry on, ctx ends what follows
		default:
			go func() { waitAll(<-started) }() // the topics finish in the background
			if p != nil {
				_ = p.Close() // ctx is done: no handshake
			}
			return ctx.Err()
		}
	}
	// The handshakes start before anything is waited for: a write stalled
	// on one client (up to its write timeout) would otherwise hold every
	// healthy client's close frame back until ctx ends, and they would
	// all be cut without one (1006).
	var perr error
	handshakes := make(chan struct{})
	if p != nil {
		go func() {
			defer close(handshakes)
			perr = p.Shutdown(ctx)
		}()
	} else {
		close(handshakes)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		waitAll(waits)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		// Waiting longer would break Shutdown's promise to return with
		// ctx. The poller's Shutdown returns with ctx too: it closes the
		// connections left under their writers, which lets the topics
		// finish.
		<-handshakes
		return ctx.Err()
	}
	<-handshakes
	if errors.Is(perr, websocket.ErrPollerClosed) {
		return nil // closed before
	}
	return perr
}

// markClosed marks h closed and returns its poller, if one was started,
// and its topics, for the caller to close.
func (h *Hub) markClosed() (*websocket.Poller, []closer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	ts := make([]closer, 0, len(h.topics))
	for _, t := range h.topics {
		ts = append(ts, t)
	}
	return h.poller, ts
}

// startCloseAll starts closing the topics ts (Topic.startClose) and
// returns the waits for them to finish.
func startCloseAll(ts []closer) []func() error {
	waits := make([]func() error, len(ts))
	for i, t := range ts {
		waits[i] = t.startClose()
	}
	return waits
}

// waitAll calls the waits startCloseAll returned. A topic's error (the
// broker's unsubscribe) has no caller to go to: a closed hub is closed.
func waitAll(waits []func() error) {
	for _, w := range waits {
		_ = w()
	}
}

// isClosed reports whether Close or Shutdown has begun.
func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// wsPoller returns the hub's Poller, starting it on first use. It fails
// with ErrClosed once the hub is closed, or with why no poller could be
// made (the system is out of descriptors; the next call tries again).
func (h *Hub) wsPoller() (*websocket.Poller, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("hub: poller: %w", ErrClosed)
	}
	if h.poller == nil {
		p, err := websocket.NewPoller(nil)
		if err != nil {
			return nil, fmt.Errorf("hub: poller: %w", err)
		}
		h.poller = p
	}
	return h.poller, nil
}

// register reserves name for t, whose replay store is replay, and sets
// *seq, t's last sequence number, to its bucket's floor for h's node id
// (seqFloors). *seq is written under h.mu, before t is visible to
// Hub.Close. It refuses a replay store another registered topic uses
// (TopicOptions.Replay) with ErrReplayInUse; a topic is registered until
// its Close.
func (h *Hub) register(name string, t closer, replay sse.Store, seq *uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if _, ok := h.topics[name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if other := h.replayUserLocked(replay); other != "" {
		return fmt.Errorf("%w: topic %q, already used by %q", ErrReplayInUse, name, other)
	}
	if h.ownFloors != nil {
		*seq = h.ownFloors[seqBucket(name)]
	} else {
		seqFloors.mu.Lock()
		if f := seqFloors.m[h.node]; f != nil {
			*seq = f[seqBucket(name)]
		}
		seqFloors.mu.Unlock()
	}
	h.topics[name] = t
	return nil
}

// replayUserLocked returns the name of a registered topic whose replay
// store is replay, or "". Stores are compared with == only when the value
// is comparable (reflect.Value.Comparable also looks at what interface
// fields hold, so == cannot panic): a store that cannot be compared is not
// checked. Called under h.mu.
func (h *Hub) replayUserLocked(replay sse.Store) string {
	if replay == nil || !reflect.ValueOf(replay).Comparable() {
		return ""
	}
	for n, t := range h.topics {
		if t.replayStore() == replay {
			return n
		}
	}
	return ""
}

// unregister frees name, whose topic t got as far as sequence number seq.
// The floor is raised in the same critical section, so a topic created
// under the name as soon as it is free already starts above seq.
func (h *Hub) unregister(name string, t closer, seq uint64) {
	h.mu.Lock()
	if h.topics[name] == t {
		delete(h.topics, name)
	}
	if seq > 0 && h.ownFloors != nil {
		b := seqBucket(name)
		h.ownFloors[b] = max(h.ownFloors[b], seq)
	} else if seq > 0 { // a topic that published nothing leaves no floor to keep
		seqFloors.mu.Lock()
		f := seqFloors.m[h.node]
		if f == nil {
			if seqFloors.m == nil {
				seqFloors.m = make(map[string]*[seqBuckets]uint64)
			}
			f = new([seqBuckets]uint64)
			seqFloors.m[h.node] = f
		}
		b := seqBucket(name)
		f[b] = max(f[b], seq)
		seqFloors.mu.Unlock()
	}
	h.mu.Unlock()
}

func (h *Hub) report(topic string, err error) {
	if h.onErr != nil {
		h.onErr(topic, err)
	}
}

func validNodeID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// maxTopicLen and maxPrefixLen bound a topic name and the subject prefix:
// a subject stays far below nats-server's default 4 KiB control line.
const (
	maxTopicLen  = 200
	maxPrefixLen = 64
)

// validTopic reports whether name is one NATS-safe subject fragment:
// tokens of [A-Za-z0-9_-] joined by single dots.
func validTopic(name string) bool {
	if name == "" || len(name) > maxTopicLen {
		return false
	}
	prevDot := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
			prevDot = false
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		default:
			return false
		}
	}
	return !prevDot
}

// validSubjectPrefix reports whether p can precede every valid topic name
// in a NATS subject: p followed by a token is itself a valid topic.
func validSubjectPrefix(p string) bool {
	return len(p) <= maxPrefixLen && validTopic(p+"x")
}

// The broker envelope: what travels between nodes, once per publish.
//
//	version  1 byte (envelopeVersion)
//	node     1 byte length + publisher node id
//	seq      uvarint: the publisher's sequence number on this topic, rising
//	         by 1 per message; a topic's first is 1, or one above the last
//	         of a topic of the same name and node id this process closed
//	         (seqFloors)
//	payload  the message in protobuf binary
const envelopeVersion = 1

func appendEnvelope(dst []byte, node string, seq uint64, payload []byte) []byte {
	dst = append(dst, envelopeVersion, byte(len(node)))
	dst = append(dst, node...)
	dst = binary.AppendUvarint(dst, seq)
	return append(dst, payload...)
}

var errEnvelope = errors.New("truncated or unknown version")

func parseEnvelope(b []byte) (node []byte, seq uint64, payload []byte, err error) {
	if len(b) < 2 || b[0] != envelopeVersion {
		return nil, 0, nil, errEnvelope
	}
	n := int(b[1])
	if len(b) < 2+n {
		return nil, 0, nil, errEnvelope
	}
	node = b[2 : 2+n]
	seq, k := binary.Uvarint(b[2+n:])
	// One encoding per sequence number: a padded varint is malformed.
	if k <= 0 || seq == 0 || k != (bits.Len64(seq)+6)/7 {
		return nil, 0, nil, errEnvelope
	}
	return node, seq, b[2+n+k:], nil
}
