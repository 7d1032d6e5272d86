package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// delivery is one message as every local subscriber receives it: built
// once per message per node and shared by all the queues.
type delivery struct {
	ws  []*websocket.PreparedMessage // by codec index; nil where encoding failed
	sse *sse.Prepared                // nil without SSE subscribers and replay
	msg proto.Message                // for SubscribeFunc subscribers; read-only

	// node and seq are the message's publisher and sequence number, for
	// a subscription's floor (Subscription.floorNode).
	node string
	seq  uint64
}

type sinkKind uint8

const (
	sinkWebSocket sinkKind = iota
	sinkSSE
	sinkFunc
)

// Subscription is one subscriber of a topic: a WebSocket connection, an
// SSE stream or a function. It has a bounded queue of messages; while the
// queue is not empty one goroutine of its own writes them out in order.
//
// A subscription ends when Close is called, when a write fails (the
// connection is gone) or a SubscribeFunc function returns an error, when
// the Disconnect policy removes it, or when its topic or hub is closed;
// Done is then closed and Err tells why. Queued messages are released at
// once, so nothing leaks.
//
// Concurrency: all methods are safe from any goroutine. A mutex guards the
// queue; the topic's mutex guards its place in the subscriber set.
//
// The zero Subscription is not usable: it counts as ended, its Done is
// closed, and its Close and Err return an error wrapping ErrClosed that
// names the Topic methods that make one.
type Subscription struct {
	t           *topicCore
	kind        sinkKind
	conn        *websocket.Conn
	ownsConn    bool // conn is WebSocketHandler's: closed when the topic closes
	codecIdx    int
	stream      *sse.Stream
	fn          func(proto.Message) error
	limit       int
	policy      Policy
	closeCode   websocket.StatusCode
	closeReason string
	// internal marks Follow's wake-up subscription, which the topic's
	// Stats leave out: it is no subscriber of the user's, and its merged
	// wake-ups lose nothing.
	internal bool
	// floorNode and floorSeq, when floorNode is set, are the id an SSE
	// client resumes from whose message is still on its way to this node
	// (see ServeSSE): messages of floorNode up to floorSeq are not
	// queued, since the client read them on another node. Set before s
	// joins the set (add may clear floorNode, under the topic's mutex),
	// read-only after.
	floorNode string
	floorSeq  uint64
	// floorGap: when the floor was set, this node had heard from other
	// publishers too, or published itself. Their messages around the
	// client's position cannot be placed (ids order one publisher's
	// messages, not the topic's), so the client may have missed some: the
	// stream reports a gap, though it still skips floorNode's messages up
	// to floorSeq. Set by add.
	floorGap bool

	idx int // position in t.subs, -1 when removed; under t.mu

	mu      sync.Mutex
	q       []*delivery // circular, grown up to limit
	head, n int
	running bool // a drain goroutine is running
	paused  bool // no drain until resume (SSE replay in progress)
	ended   bool
	err     error
	dropped uint64

	done chan struct{}
	wg   sync.WaitGroup // drain goroutine and the close of conn (Disconnect, topic closed)
}

// errZeroSub is what a zero Subscription's Close and Err return: it
// belongs to no topic, and has no done channel to close.
var errZeroSub = fmt.Errorf("hub: Subscription not made by a Topic's SubscribeFunc, SubscribeWebSocket or ServeSSE: %w", ErrClosed)

// closedDone is a zero Subscription's Done: closed, as for one that ended.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (c *topicCore) newSub(kind sinkKind) *Subscription {
	return &Subscription{
		t: c, kind: kind, limit: c.queueSize, policy: c.policy,
		closeCode: c.closeCode, closeReason: c.closeReason,
		idx: -1, done: make(chan struct{}),
	}
}

// add puts s into the subscriber set; for a WebSocket subscriber it also
// finds (or adds) the slot of codec cd.
func (c *topicCore) add(s *Subscription, cd codec.Codec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("hub: subscribe to %q: %w", c.name, ErrClosed)
	}
	switch s.kind {
	case sinkWebSocket:
		s.codecIdx = -1
		for i := range c.codecs {
			if sameCodec(c.codecs[i].c, cd) {
				s.codecIdx = i
				break
			}
		}
		if s.codecIdx < 0 {
			for i := range c.codecs { // reuse a slot no subscriber uses
				if c.codecs[i].n == 0 {
					c.codecs[i].c, s.codecIdx = cd, i
					break
				}
			}
		}
		if s.codecIdx < 0 {
			s.codecIdx = len(c.codecs)
			c.codecs = append(c.codecs, codecUse{c: cd})
		}
		c.codecs[s.codecIdx].n++
	case sinkSSE:
		c.sseSubs++
		// The floor's message has reached this node already, so the
		// replay store answers for it (and reports a gap if it no longer
		// holds it). Decided under mu, which dispatch holds while it
		// records a message's sequence number and queues it, after it
		// appended it to the store: a message this node has not seen by
		// now will be queued to s, and one it has is in the store.
		// A node this one never heard from is taken for one whose first
		// message is on its way, unless nodes have been forgotten
		// (sweepNodes): it may be one of those, its messages passed and
		// possibly still in the store, which then answers as for any
		// passed id.
		if last, known := c.lastSeq[s.floorNode]; s.floorNode != "" && (last.seq >= s.floorSeq || !known && c.swept) {
			s.floorNode = ""
		}
		if s.floorNode != "" {
			s.floorGap = c.ownSeen // this node publishes too
			for node := range c.lastSeq {
				if node != s.floorNode {
					s.floorGap = true
					break
				}
			}
		}
	case sinkFunc:
		c.funcSubs++
	}
	if s.internal {
		c.wakeSubs++
	}
	s.idx = len(c.subs)
	c.subs = append(c.subs, s)
	c.nsubs.Store(int64(len(c.subs) - c.wakeSubs))
	return nil
}

func (c *topicCore) remove(s *Subscription) {
	c.mu.Lock()
	c.removeLocked(s)
	c.mu.Unlock()
}

func (c *topicCore) removeLocked(s *Subscription) {
	i := s.idx
	if i < 0 || i >= len(c.subs) || c.subs[i] != s {
		return
	}
	last := len(c.subs) - 1
	c.subs[i] = c.subs[last]
	c.subs[i].idx = i
	c.subs[last] = nil
	c.subs = c.subs[:last]
	if s.internal {
		c.wakeSubs--
	}
	c.nsubs.Store(int64(last - c.wakeSubs))
	if len(c.subs) == 0 && cap(c.subs) > 1024 {
		c.subs = nil // give a large set's memory back
	}
	s.idx = -1
	switch s.kind {
	case sinkWebSocket:
		c.codecs[s.codecIdx].n--
	case sinkSSE:
		c.sseSubs--
	case sinkFunc:
		c.funcSubs--
	}
}

// SubscribeWebSocket subscribes conn to the topic: every message is
// written to it with WritePrepared, encoded by cd. A nil cd means the codec
// of the negotiated subprotocol (codec.BySubprotocol, e.g. "wsrpc.json");
// without one it fails with ErrNoCodec. Text codecs ride text frames,
// binary codecs binary frames.
//
// A non-nil cd wins over the negotiated subprotocol (WebSocketHandler does
// the opposite: there the subprotocol wins). Beware: a cd other than the
// negotiated subprotocol's codec sends the client frames in an encoding
// it did not ask for; pass nil unless the connection negotiated none.
//
// The caller keeps reading conn (that is what answers pings and notices a
// close) and calls Close on the subscription when it stops; a failed write
// ends the subscription by itself. Writes are bounded by the connection's
// WriteTimeout (websocket.AcceptOptions), which is what finally removes a
// peer that stopped reading under DropOldest.
//
// Cost per idle subscriber: a few hundred bytes (the Subscription, its
// done channel, up to 4 queue slots once used) and no goroutine.
func (t *Topic[M]) SubscribeWebSocket(conn *websocket.Conn, cd codec.Codec) (*Subscription, error) {
	return t.subscribeWebSocket(conn, cd, false)
}

// subscribeWebSocket is SubscribeWebSocket; ownsConn marks conn as the
// topic's to close when the topic closes (WebSocketHandler's). It is set
// before the subscription joins the set, where Topic.Close finds it.
func (t *Topic[M]) subscribeWebSocket(conn *websocket.Conn, cd codec.Codec, ownsConn bool) (*Subscription, error) {
	if conn == nil {
		return nil, fmt.Errorf("hub: subscribe to %q: nil connection", t.core.name)
	}
	if cd == nil {
		var ok bool
		if cd, ok = codec.BySubprotocol(conn.Subprotocol()); !ok {
			return nil, fmt.Errorf("%w: subprotocol %q", ErrNoCodec, conn.Subprotocol())
		}
	}
	s := t.core.newSub(sinkWebSocket)
	s.conn = conn
	s.ownsConn = ownsConn
	if err := t.core.add(s, cd); err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeFunc subscribes fn, called with each message in order from one
// goroutine at a time (queued like any subscriber, under the topic's
// policy). The message is shared with other function subscribers and
// must not be modified. For in-process consumers: bridges, projections,
// tests.
//
// fn must not call Close on its subscription or its topic: Close waits
// for the call of fn in progress, so it would wait for itself. To end the
// subscription from fn, return an error: the subscription ends with it
// (Done is closed, Err returns it) and fn is not called again.
func (t *Topic[M]) SubscribeFunc(fn func(M) error) (*Subscription, error) {
	return t.subscribeFunc(fn, t.core.policy, t.core.queueSize, false)
}

// subscribeFunc is SubscribeFunc with the topic's policy and queue size
// overridden, and the subscription marked internal (left out of Stats),
// before it joins the set.
func (t *Topic[M]) subscribeFunc(fn func(M) error, policy Policy, limit int, internal bool) (*Subscription, error) {
	if fn == nil {
		return nil, fmt.Errorf("hub: subscribe to %q: nil function", t.core.name)
	}
	s := t.core.newSub(sinkFunc)
	s.policy, s.limit, s.internal = policy, limit, internal
	s.fn = func(m proto.Message) error { return fn(m.(M)) }
	if err := t.core.add(s, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultSSEWriteTimeout bounds each SSE write when the StreamOptions
// passed to ServeSSE set no WriteTimeout: a client that stops reading
// fails the write (and ends its subscription) instead of holding its
// writer goroutine. Like sse's default, it applies where the
// ResponseWriter supports write deadlines and is skipped where it does
// not (a middleware wrapper without Unwrap, say).
const DefaultSSEWriteTimeout = 10 * time.Second

// SSEOptions configures ServeSSE. A nil *SSEOptions means all defaults.
type SSEOptions struct {
	// Stream configures the stream (heartbeat, retry, write timeout).
	// Its Replay is replaced by the topic's replay store. Default: a
	// WriteTimeout of DefaultSSEWriteTimeout, everything else off.
	Stream *sse.StreamOptions

	// OnOpen, when set, runs after the stream has opened and replayed and
	// before any live message is written; messages published meanwhile
	// wait in the queue. Use it to send a snapshot when s.Gap() reports
	// that the client's Last-Event-ID could not be resumed from. An error
	// ends the subscription and is returned by ServeSSE.
	OnOpen func(s *sse.Stream) error
}

// ServeSSE answers r with an event stream subscribed to the topic. If the
// request carries Last-Event-ID and the topic's replay store still holds
// that id, every message recorded after it is sent first, and live
// messages follow with none lost or repeated: the subscriber is registered
// before the store is read, and the stream drops live events it has just
// replayed. Each message is one event: id "<node>-<seq>", type from
// TopicOptions.EventType, data encoded by TopicOptions.SSECodec.
//
// A client that read a message on another node and moves here at once
// may come before that message does (the broker is still delivering it).
// When the id names another node and a sequence number this topic has
// not received from it yet (or a node it never heard from), the message
// is on its way, not missed: nothing is replayed, and this subscription
// skips that node's messages up to and including that number as they
// arrive (the client has them); other nodes' messages come as usual.
// Stream.Gap then reports false if that node is the only publisher this
// one has heard from (the single-publisher topic: the resume is exact),
// and true otherwise: ids order one publisher's messages, not the
// topic's, so other publishers' messages around the client's position
// cannot be placed and some may have been missed. An id this node has
// passed but no longer holds (the store evicted it) is a gap, as is one
// of this node's own ids the store does not hold, and any id the store
// does not hold on a MemoryBroker where no other hub has the topic (a
// single-node server resuming a client of its previous process): no
// message can be on its way there.
//
// The handler must stay until the subscription ends (Done) or the client
// leaves (r.Context()), then call Close, which also closes the stream:
//
//	sub, err := topic.ServeSSE(w, r, nil)
//	if err != nil {
//		http.Error(w, err.Error(), http.StatusInternalServerError)
//		return
//	}
//	defer sub.Close()
//	select {
//	case <-sub.Done():
//	case <-r.Context().Done():
//	}
//
// SSEHandler is that, except that it answers an error only while nothing
// has been written: a replay store's failure with a stream that ends at
// once, which every client reconnects on, any other with 500. Errors are
// those of sse.NewStream or of OnOpen. NewStream checks what it can
// before it writes the 200 (a writer that cannot flush, a replay store
// that fails), but the 200 and the
// replayed events may still fail to go out — with an error wrapping
// sse.ErrClientGone when the client left while the stream opened, or a
// write error — and OnOpen runs after the 200. For those, the status is
// out: net/http drops a status written then (and logs a superfluous
// WriteHeader call).
func (t *Topic[M]) ServeSSE(w http.ResponseWriter, r *http.Request, opts *SSEOptions) (*Subscription, error) {
	var o SSEOptions
	if opts != nil {
		o = *opts
	}
	var so sse.StreamOptions
	if o.Stream != nil {
		so = *o.Stream
	}
	if so.WriteTimeout == 0 {
		// The default is the hub's, shorter than sse's, and optional as
		// sse's is: an explicit timeout must apply, and NewStream fails
		// where the writer cannot take deadlines.
		so.WriteTimeout = DefaultSSEWriteTimeout
		if errors.Is(http.NewResponseController(w).SetWriteDeadline(time.Time{}), http.ErrNotSupported) {
			so.WriteTimeout = -1
		}
	}
	so.Replay = t.replay
	if so.Replay == nil {
		// Without recording, every resuming client has a gap: Stream.Gap
		// must say so, for OnOpen to send a snapshot.
		so.Replay = noReplay{}
	}
	s := t.core.newSub(sinkSSE)
	s.paused = true
	if node, seq, ok := parseEventID(sse.RequestLastEventID(r)); ok && node != t.core.h.node && t.core.othersMayDeliver() {
		// This node's own ids are not on their way: it numbered them.
		// Nor are another node's when no other node can deliver here:
		// the id is then a passed one (a process before a restart),
		// which the store answers for, with a gap if it lacks it.
		s.floorNode, s.floorSeq = node, seq
	}
	if err := t.core.add(s, nil); err != nil {
		return nil, err
	}
	if s.floorNode != "" {
		// The client's last message had not reached this node when s
		// joined the set, so s is queued everything after it: there is
		// nothing to replay, and no gap. The store may hold the id by
		// now (it arrived meanwhile), but replaying what follows it would
		// send those events twice should a message of another node come
		// first in the queue (the stream drops a replayed id only until
		// a new one comes).
		so.Replay = nil
		if s.floorGap {
			// Other publishers' messages cannot be placed around the
			// client's position: report the gap (noReplay knows no id).
			so.Replay = noReplay{}
		}
	}
	// Counted before the replay goes out, so that a client that has
	// read it finds itself in Stats.
	resuming := sse.RequestLastEventID(r) != ""
	if resuming {
		t.core.resumed.Add(1)
	}
	st, err := sse.NewStream(w, r, &so)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("hub: serve SSE on %q: %w", t.core.name, err)
	}
	s.mu.Lock()
	s.stream = st
	s.mu.Unlock()
	if resuming && st.Gap() {
		t.core.resumeGaps.Add(1)
	}
	if o.OnOpen != nil {
		if err := o.OnOpen(st); err != nil {
			s.Close()
			return nil, fmt.Errorf("hub: serve SSE on %q: on open: %w", t.core.name, err)
		}
	}
	s.resume()
	return s, nil
}

// othersMayDeliver reports whether a message of another node may still
// be on its way to this topic, so that a client's id of that node which
// this node has not received (yet) can be taken for one on its way
// (ServeSSE). With a MemoryBroker it can be told: the broker delivers
// inside the publisher's Publish, which the publisher's topic does not
// outlive (Close takes its publish mutex), so when no subscription on
// the subject is left but this topic's own, no other hub has the topic
// and every message another hub published on it has arrived or never
// will (it came before this topic subscribed). That is the single-node
// server (hub.New with a nil broker) resuming a client of its previous
// process, which must see a gap (sse.Stream.Gap) for what that process
// published and the client missed, not a message on its way that never
// comes. Any other broker cannot tell: true.
func (c *topicCore) othersMayDeliver() bool {
	mb, ok := c.h.broker.(*MemoryBroker)
	return !ok || mb.subscriptions(c.subject) > 1
}

// noReplay is the store a topic without recording (DisableReplay) resumes
// from: it holds nothing, so a client resuming from any id has a gap.
type noReplay struct{}

func (noReplay) Append(e sse.Event) (sse.Event, error) { return e, nil }

func (noReplay) Since(id string) ([]sse.Event, error) {
	return nil, fmt.Errorf("%w: %q (the topic records nothing)", sse.ErrUnknownID, id)
}

// parseEventID splits an SSE event id of the topic's, "<node>-<seq>",
// into its node and sequence number. A node id may itself hold '-'
// (Options.NodeID), so the sequence number is what follows the last one.
func parseEventID(id string) (node string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || seq == 0 || !validNodeID(id[:i]) {
		return "", 0, false
	}
	return id[:i], seq, true
}

// SSEHandler returns an http.Handler that serves the topic as an event
// stream (see ServeSSE) until the client leaves or the subscription ends.
// A client that comes to a closed topic, or resumes while the replay
// store fails (Since with an error other than sse.ErrUnknownID: a
// database out for a moment), gets an event stream that ends at once
// (with StreamOptions.Retry when set), so it reconnects later with its
// Last-Event-ID, as a WebSocket one is told 1013 (try again later): a
// browser's EventSource gives up for good on any other answer (WHATWG
// HTML §9.2.3), 503 included, and sse.Client on a first request's 503.
// Any other error before the stream's 200 went out is answered with
// 500, final (a ResponseWriter that cannot stream, say); one after the
// 200 (the client left while the stream opened, or OnOpen failed) ends
// the stream, since no other status can follow.
func (t *Topic[M]) SSEHandler(opts *SSEOptions) http.Handler {
	var o SSEOptions
	if opts != nil {
		o = *opts
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &headerWatch{ResponseWriter: w}
		sub, err := t.ServeSSE(hw, r, &o)
		if err != nil && !hw.wrote && (errors.Is(err, ErrClosed) || errors.Is(err, sse.ErrReplayStore)) {
			// Come back later: a stream that ends at once, which every
			// client reconnects on with its Last-Event-ID (WHATWG HTML
			// §9.2.3), where EventSource fails for good on any status
			// but 200 — 503 included.
			var retry sse.StreamOptions
			if o.Stream != nil {
				retry.Retry = o.Stream.Retry
			}
			if st, err := sse.NewStream(w, r, &retry); err == nil {
				st.Close()
				return
			}
		}
		if err != nil {
			if !hw.wrote {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
			return
		}
		defer sub.Close()
		select {
		case <-sub.Done():
		case <-r.Context().Done():
		}
	})
}

// headerWatch is the ResponseWriter SSEHandler serves a stream through:
// it notes whether the status went out, so that an error ServeSSE returns
// after it is not answered with a second status, which net/http drops and
// logs ("superfluous response.WriteHeader call"). The error alone cannot
// tell: sse.NewStream checks what it can before the 200, but a write or
// flush may still fail after it. Flush and write deadlines are reached
// through Unwrap, as http.ResponseController and sse look for them.
//
// Concurrency: wrote is set by WriteHeader, which sse.NewStream calls
// once, before it writes anything, in ServeSSE on the handler's
// goroutine; the handler reads it there.
type headerWatch struct {
	http.ResponseWriter
	wrote bool
}

func (w *headerWatch) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// DefaultSubscriberMaxMessageSize is the MaxMessageSize of WebSocketHandler's
// connections when its AcceptOptions set none. Their clients send no
// application messages (what they send is discarded), so a few KiB leave
// room for a page's keep-alive text and bound what one client can make
// the server buffer; set AcceptOptions.MaxMessageSize to allow more.
const DefaultSubscriberMaxMessageSize = 4 << 10

// WebSocketHandler returns an http.Handler that accepts a WebSocket with
// opts, subscribes it with the codec of its subprotocol, and discards what
// the client sends until it closes. The negotiated subprotocol wins
// (SubscribeWebSocket does the opposite: there a non-nil codec wins):
// fallback is used only when the client negotiated none, and a nil fallback
// then refuses the connection with 1003. For subscribe-only endpoints; a
// handler that also reads requests calls SubscribeWebSocket itself.
//
// With opts nil or its Subprotocols nil, the handler offers the
// subprotocols of every codec registered when it is made ("wsrpc.proto",
// "wsrpc.json", "wsrpc.msgpack", then codec.Register's), as the typed
// layer's handlers do: a page that opens new WebSocket(url, "wsrpc.json")
// must get that subprotocol back, or the browser fails the connection
// (WHATWG WebSockets: a response that selects none of the offered
// subprotocols fails it; RFC 6455 §4.1 leaves that to the client). An
// empty, non-nil Subprotocols offers none.
//
// What the client sends is read only to be discarded, so a MaxMessageSize
// left at 0 (or negative) means DefaultSubscriberMaxMessageSize here, not
// websocket's DefaultMaxMessageSize: a larger message fails the
// connection with 1009 (RFC 6455 §7.4.1) instead of making the server
// read and buffer up to 4 MiB per connection for nothing.
//
// The handler returns once the connection is subscribed: the hub's
// websocket.Poller reads it from then on, so an idle subscriber holds
// neither a goroutine nor a buffer. The topic owns these connections:
// Topic.Close closes them with 1013 "topic closed", Hub.Close without a
// closing handshake, Hub.Shutdown with 1001.
func (t *Topic[M]) WebSocketHandler(opts *websocket.AcceptOptions, fallback codec.Codec) http.Handler {
	var o websocket.AcceptOptions
	if opts != nil {
		o = *opts
	}
	if o.Subprotocols == nil {
		for _, name := range codec.Names() {
			o.Subprotocols = append(o.Subprotocols, codec.SubprotocolPrefix+name)
		}
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultSubscriberMaxMessageSize
	}
	opts = &o
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		c := fallback
		if sc, ok := codec.BySubprotocol(conn.Subprotocol()); ok {
			c = sc
		}
		if c == nil {
			conn.Close(websocket.StatusUnsupportedData, "no codec")
			return
		}
		sub, err := t.subscribeWebSocket(conn, c, true)
		if err != nil {
			t.refuse(conn)
			return
		}
		// Messages from the client are discarded (Message is nil).
		h := websocket.HandlerFuncs{Close: func(*websocket.Conn, error) { sub.Close() }}
		p, err := t.core.h.wsPoller()
		if err == nil {
			err = p.Serve(conn, h) // fails only once the hub is closed
		}
		if err != nil {
			sub.Close()
			if errors.Is(err, ErrClosed) || errors.Is(err, websocket.ErrPollerClosed) {
				t.refuse(conn) // the hub closed between Subscribe and Serve
				return
			}
			t.core.h.report(t.core.name, err)
			conn.Close(websocket.StatusInternalError, "no poller")
		}
	})
}

// enqueue queues d; called under the topic's mutex. It returns false when
// the queue is full under the Disconnect policy.
func (s *Subscription) enqueue(d *delivery) bool {
	if s.floorNode != "" && d.node == s.floorNode && d.seq <= s.floorSeq {
		return true // the client has it (ServeSSE)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return true
	}
	if s.n == s.limit {
		if s.policy == Disconnect {
			return false
		}
		s.q[s.head] = nil
		s.head = (s.head + 1) % len(s.q)
		s.n--
		s.dropped++
		if !s.internal {
			s.t.dropped.Add(1)
		}
	}
	if s.n == len(s.q) {
		s.grow()
	}
	s.q[(s.head+s.n)%len(s.q)] = d
	s.n++
	if !s.running && !s.paused {
		s.running = true
		s.wg.Add(1)
		go s.drain()
	}
	return true
}

func (s *Subscription) grow() {
	size := min(s.limit, max(4, 2*len(s.q)))
	q := make([]*delivery, size)
	for i := range s.n {
		q[i] = s.q[(s.head+i)%len(s.q)]
	}
	s.q, s.head = q, 0
}

func (s *Subscription) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = false
	if !s.ended && !s.running && s.n > 0 {
		s.running = true
		s.wg.Add(1)
		go s.drain()
	}
}

// drain writes queued messages until the queue is empty.
func (s *Subscription) drain() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if s.ended || s.n == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		d := s.q[s.head]
		s.q[s.head] = nil
		s.head = (s.head + 1) % len(s.q)
		s.n--
		s.mu.Unlock()
		if err := s.write(d); err != nil {
			// Out of the set first: once Done is closed, Stats no longer
			// counts it.
			s.t.remove(s)
			s.writeEnded(err)
			return
		}
	}
}

// writeEnded ends s after a write to it failed with err, and counts it in
// Stats.Failed if the write failed by itself (writeFailed) — unless
// Disconnect or the topic's close, which close the connection under a
// write in progress, ended s first. A Close during the write does not
// keep it from counting: Close leaves the connection alone, so it did
// not fail the write, and an SSE handler calls it as soon as net/http,
// finding the write failed, cancels the request's context. Only the
// drain goroutine calls it, once, so s counts at most once.
func (s *Subscription) writeEnded(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Counted before Done is closed, so that Stats shows it by then
	// (unless Close closed Done during the write).
	if (!s.ended || s.err == nil) && s.writeFailed(err) {
		s.t.failed.Add(1)
	}
	s.endLocked(err)
}

// writeFailed reports whether err, from a write to s, is a failed write
// (Stats.Failed): one that timed out or met a broken connection. A
// SubscribeFunc function's error is how it ends its subscription, and a
// write that finds the connection already closed meets a subscriber
// leaving, whose owner calls Close next: after the peer's close frame
// (RFC 6455 §5.5.1), after the server's own Close (the bare ErrClosed; a
// connection closed because it broke wraps the cause), or after an SSE
// client went away, which is how an EventSource leaves (WHATWG HTML
// §9.2.2 close()): the stream says sse.ErrClientGone whether the
// request's context was done before the write (wrapping the context's
// error) or ended while the write failed (wrapping the write's error,
// as when the client's close reset the connection under it). A write
// that timed out is sse.ErrWriteTimeout, never ErrClientGone, so a
// client that stopped reading still counts.
// Called on the failure path only.
func (s *Subscription) writeFailed(err error) bool {
	switch s.kind {
	case sinkWebSocket:
		_, peerClosed := errors.AsType[*websocket.CloseError](err)
		return !peerClosed && err != websocket.ErrClosed
	case sinkSSE:
		return !errors.Is(err, sse.ErrClientGone) && !errors.Is(err, sse.ErrStreamClosed)
	}
	return false
}

func (s *Subscription) write(d *delivery) error {
	switch s.kind {
	case sinkWebSocket:
		if s.codecIdx < len(d.ws) && d.ws[s.codecIdx] != nil {
			// Background: the connection's write timeout bounds the write,
			// and a context per write would cost allocations.
			if err := s.conn.WritePrepared(context.Background(), d.ws[s.codecIdx]); err != nil {
				return err
			}
			s.t.delivered.Add(1)
		}
	case sinkSSE:
		if d.sse != nil {
			if err := s.stream.SendPrepared(d.sse); err != nil {
				return err
			}
			s.t.delivered.Add(1)
		}
	case sinkFunc:
		if d.msg != nil {
			if err := s.fn(d.msg); err != nil {
				return err
			}
			if !s.internal {
				s.t.delivered.Add(1)
			}
		}
	}
	return nil
}

// end marks s ended with err (nil for Close) and releases its queue. It
// reports whether this call ended it.
func (s *Subscription) end(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endLocked(err)
}

func (s *Subscription) endLocked(err error) bool {
	if s.ended {
		return false
	}
	s.ended, s.err = true, err
	clear(s.q)
	s.q, s.head, s.n = nil, 0, 0
	close(s.done)
	return true
}

// disconnect applies the Disconnect policy; s is already out of the set.
func (s *Subscription) disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.endLocked(ErrSlowConsumer) || s.kind != sinkWebSocket {
		return // an SSE handler sees Done and returns; Close ends the stream
	}
	s.closeConnLocked(s.closeCode, s.closeReason)
}

// closeConnLocked closes s's connection with code and reason on a
// goroutine tracked by wg: Close waits for a write in progress and for the
// peer's close frame, which must not happen under the topic's mutex, and
// Topic.Close then waits for all its connections at once, not one by one.
// Called under s.mu.
func (s *Subscription) closeConnLocked(code websocket.StatusCode, reason string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.conn.Close(code, reason)
	}()
}

// topicClosed ends s because its topic closed; s is already out of the
// set. A connection s owns (WebSocketHandler's) has no handler left to
// close it, so it gets what refuse tells a client arriving after: 1013,
// try again later (RFC 6455 §7.4.1; IANA WebSocket Close Code registry).
// When the hub is closing, its Poller closes them (with 1001 from
// Shutdown), and a 1013 sent first would contradict that.
func (s *Subscription) topicClosed(hubClosing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.endLocked(ErrClosed) || !s.ownsConn || hubClosing {
		return
	}
	s.closeConnLocked(websocket.StatusTryAgainLater, topicClosedReason)
}

// Close ends the subscription: nothing more is queued, queued messages are
// released, and Close returns once no write for it is in progress (a
// write in progress is bounded by the connection's write timeout). It
// closes the SSE stream of ServeSSE but not a WebSocket connection, which
// belongs to its handler. Idempotent; returns nil (but on a zero
// Subscription: see Subscription).
//
// A SubscribeFunc function must not call Close on its own subscription:
// Close would wait for the function to return, that is for itself. It
// returns an error instead, which ends the subscription.
func (s *Subscription) Close() error {
	if s.t == nil {
		return errZeroSub
	}
	s.t.remove(s)
	s.end(nil)
	s.wg.Wait()
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st != nil {
		st.Close()
	}
	return nil
}

// Done is closed when the subscription ends, for any reason.
func (s *Subscription) Done() <-chan struct{} {
	if s.done == nil {
		return closedDone // a zero Subscription: a nil channel would block for ever
	}
	return s.done
}

// Err returns why the subscription ended: nil while it is active or after
// Close, ErrSlowConsumer (Disconnect policy), ErrClosed (topic or hub
// closed), or the write error (for SubscribeFunc, the function's error)
// that ended it.
func (s *Subscription) Err() error {
	if s.t == nil {
		return errZeroSub
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Dropped returns how many messages the DropOldest policy discarded from
// this subscription's queue.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Queued returns how many messages wait in the queue.
func (s *Subscription) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Stream returns the SSE stream of a ServeSSE subscription, nil otherwise.
func (s *Subscription) Stream() *sse.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}

// refuse closes conn, which its topic could not take because the topic or
// the whole hub closed. A connection that arrives while the hub shuts down
// gets the 1001 that Hub.Shutdown sends the connections it served (RFC
// 6455 §7.4.1: the server is going away), whichever step found the hub
// closed; one that finds only its topic closed gets 1013, try again later.
func (t *Topic[M]) refuse(conn *websocket.Conn) {
	if t.core.h.isClosed() {
		conn.Close(websocket.StatusGoingAway, websocket.ShutdownReason)
		return
	}
	conn.Close(websocket.StatusTryAgainLater, topicClosedReason)
}

// topicClosedReason goes with 1013 to the WebSocketHandler clients of a
// topic that closed while the hub stays open.
const topicClosedReason = "topic closed"
