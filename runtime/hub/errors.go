package hub

import "errors"

// Sentinel errors. Functions wrap them with %w and a lowercase phrase, so
// test with errors.Is.
var (
	// ErrClosed is returned by a Hub, Topic or broker used after Close, and
	// is a Subscription's Err when its topic or hub was closed. NewTopic
	// also wraps it for a Hub not created with New, which is never open,
	// and a zero Subscription's Close and Err for it, which belongs to no
	// topic.
	ErrClosed = errors.New("hub: closed")

	// ErrInvalidTopic is returned by NewTopic for a name that is empty,
	// longer than 200 bytes, or not made of letters, digits, '-', '_' and
	// non-adjacent inner '.' (so it is one valid NATS subject, without
	// wildcards).
	ErrInvalidTopic = errors.New("hub: invalid topic name")

	// ErrTopicExists is returned by NewTopic for a name the hub already has.
	ErrTopicExists = errors.New("hub: topic already exists")

	// ErrNoCodec is returned by SubscribeWebSocket when no codec was given
	// and the connection negotiated no wsrpc.* subprotocol.
	ErrNoCodec = errors.New("hub: no codec for subscriber")

	// ErrBinaryCodec is returned by NewTopic when the SSE codec is binary:
	// SSE carries text (one data: line per event).
	ErrBinaryCodec = errors.New("hub: SSE needs a text codec")

	// ErrSlowConsumer is a Subscription's Err when the topic's Disconnect
	// policy removed it because its queue was full.
	ErrSlowConsumer = errors.New("hub: slow consumer")

	// ErrFellBehind is returned by Follow when the store can no longer
	// read from the follower's cursor (it evicted the event): the follower
	// must start over.
	ErrFellBehind = errors.New("hub: follower fell behind the replay store")

	// ErrReplayInUse is returned by NewTopic for a replay store
	// (TopicOptions.Replay) that another topic of the hub, not closed,
	// already uses.
	ErrReplayInUse = errors.New("hub: replay store used by another topic")

	// ErrTooLarge is returned by Topic.Publish for a message whose broker
	// message would exceed the broker's limit (see Broker): nothing is
	// delivered, on this node or any other.
	ErrTooLarge = errors.New("hub: message too large for the broker")

	// ErrBadEnvelope counts (in Stats.DecodeErrors) a broker message that is
	// not a hub envelope or whose payload does not decode. The envelope is
	// always checked; the payload only when this node needs the message
	// decoded: for the replay store, an SSE or SubscribeFunc subscriber, or
	// a WebSocket subscriber whose codec is not codec.Proto. Otherwise —
	// replay disabled and only codec.Proto WebSocket subscribers — the
	// payload is written to them as the protobuf bytes it came as, unchecked
	// (decoding it only to check it would cost every message a decode), so
	// a bad one is neither counted nor reported to Options.OnError: those
	// clients get it as the publisher sent it.
	ErrBadEnvelope = errors.New("hub: bad broker message")
)
