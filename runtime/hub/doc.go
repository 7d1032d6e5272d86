// Package hub fans typed messages out to many sessions — WebSocket
// connections, SSE streams, in-process functions — on one node or across
// nodes through a Broker (the analogue of Ktor's SharedFlow broadcast,
// and of gorilla's chat hub, grown up).
//
// # Overview
//
// A Hub owns topics on a broker. A Topic[M] is typed by a protobuf message:
//
//	h, _ := hub.New(nil, nil) // in-process MemoryBroker
//	rooms, _ := hub.NewTopic[*chatv1.Event](h, "rooms.lobby", nil)
//	http.Handle("/lobby/ws", rooms.WebSocketHandler(&websocket.AcceptOptions{
//		Subprotocols: []string{codec.SubprotocolProto, codec.SubprotocolJSON},
//	}, nil))
//	http.Handle("/lobby/sse", rooms.SSEHandler(nil))
//	rooms.Publish(ctx, &chatv1.Event{...})
//
// Subscribers are a *websocket.Conn with a codec (SubscribeWebSocket), an
// SSE stream the topic opens on a request (ServeSSE, SSEHandler) or a
// function (SubscribeFunc). There is no public sink interface: the two
// transports are where the prepared-message fast paths live.
//
// # Encoding Once
//
// Publish encodes the message once in protobuf binary for the broker. Each
// node then encodes it once per codec its WebSocket subscribers use (the
// protobuf bytes are reused as they are) and once for SSE, wraps each
// encoding in a websocket.PreparedMessage or sse.Prepared, and queues a
// pointer to it for every subscriber. A WebSocket server connection writes
// the prepared frame bytes as they are; a connection compressing without
// context takeover shares a frame compressed once per compression setting;
// only one compressing with context takeover compresses for itself.
//
// # Slow Consumers
//
// Each subscriber has a queue bounded by TopicOptions.QueueSize and a
// writer goroutine that exists only while the queue is not empty, so idle
// subscribers cost memory (a few hundred bytes) and no goroutine, and one
// stalled subscriber never delays another: the publisher only appends to
// queues. When a queue is full, the topic's Policy applies: DropOldest
// discards the oldest message (counted), Disconnect removes the subscriber
// and closes its WebSocket with TopicOptions.CloseCode (1013 by default)
// or ends its SSE stream. A write that fails (the peer is gone, or the
// connection's write timeout passed) ends the subscription and frees its
// queue.
//
// # Ordering
//
// The messages one node publishes on a topic reach every subscriber, on
// every node, in publish order: Publish calls on a topic are serialised,
// the broker keeps each publisher's order, and each subscriber's queue is
// first in, first out. Each broker message carries its publisher's node id
// and sequence number, so a receiving node drops duplicates and counts
// gaps (Stats.Missed).
//
// # Brokers
//
// MemoryBroker (the default) connects the hubs of one process. NATSBroker
// uses core NATS: at most once, in order per publisher, outages reported
// (NATSOptions.OnStatus, NATSBroker.Stats) and recovered from by nats.go's
// reconnection and re-subscription. Any Broker with the documented ordering
// contract will do.
//
// # SSE Ids and Replay
//
// Every message gets the SSE id "<node>-<seq>" from its publisher, the
// same on every node. Each node records every message it sees, published
// or received, in the topic's replay store (an sse.Ring by default), in
// arrival order. A client that reconnects with Last-Event-ID then resumes:
//
//   - on the same node: every later message, once, in order, as long as
//     the store still holds its id, or evicted it last (otherwise
//     Stream.Gap reports it);
//   - on another node that received that message: every message that node
//     recorded after it. With a single publishing node this is exact.
//     With several, messages of other publishers that the two nodes saw
//     in a different order around that point (a window as wide as the
//     broker's delivery delay) may be repeated or skipped;
//   - on a node that never saw the id (started later, or evicted), or on
//     a topic that records nothing (DisableReplay): a gap, reported by
//     Stream.Gap for the OnOpen callback to send a snapshot.
//
// When a node dies its replay store dies with it; its clients reconnect to
// another node and resume as above. Messages it published that reached
// the broker are everywhere; core NATS keeps nothing, so messages
// published while a node was cut off from the broker never reach it.
//
// # Concurrency
//
// Hub, Topic, Subscription and the brokers are safe for concurrent use;
// each type's documentation says which mutex guards what. No lock is held
// while writing to a connection or calling Options.OnError.
package hub
