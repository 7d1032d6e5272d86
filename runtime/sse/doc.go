// Package sse implements Server-Sent Events as specified by the WHATWG HTML
// standard, section 9.2 "Server-sent events"
// (https://html.spec.whatwg.org/multipage/server-sent-events.html): the
// text/event-stream format, a server stream with replay for clients that
// resume with Last-Event-ID, and a client that reconnects like a browser's
// EventSource and offers the options of Ktor's SSE client.
//
// It moves bytes and strings only: typed messages are the business of the
// layers above (see Decode for the hook they use).
//
// # Server
//
// NewStream turns an http.ResponseWriter into a Stream. Send writes and
// flushes one Event at once; Comment writes a comment; StreamOptions adds
// heartbeats, an initial retry and a write timeout. A handler returns when
// the client goes away (Stream.Context is done, sends fail with
// ErrClientGone) or stops reading for the write timeout (sends fail with
// ErrWriteTimeout). CloseWith sends a last event and closes the stream at
// once, so that no other goroutine's event follows it.
//
// To send one event to many streams, encode it once with Prepare and write
// it to each with SendPrepared. AppendEvent exposes the encoder itself.
//
// # Resuming
//
// A Store records events with ids; Ring is a bounded in-memory one. With
// StreamOptions.Replay set, NewStream sends a reconnecting client every
// event after its Last-Event-ID, and reports through Stream.Gap an id the
// store no longer holds, so the handler can send a reset. A request
// without the header may carry the id as the lastEventId query parameter
// instead, as a page that re-creates its EventSource must (see
// Stream.LastEventID). The publisher
// appends each event to the store once and sends the returned event to
// the live streams; a handler subscribes to the live events before
// NewStream, and Send drops the events the replay already delivered, so
// every event arrives exactly once.
//
// # Client
//
// Events(ctx, url, opts) yields events as an iter.Seq2; Connect returns a
// Session with Next and Events. The client reconnects after a dropped stream
// or network error, waiting ReconnectionTime (or the server's "retry:") plus
// a random extra of up to a quarter of it, with a growing backoff when
// reconnections keep failing, sends Last-Event-ID, and stops after
// MaxReconnectionAttempts reconnections in a row without a delivery: an
// event, or a connection that stayed open a second or more with blocks after
// its first (heartbeat comments, shown or hidden). Comment or retry blocks
// alone on a connection that ends sooner are no delivery. HTTP 204 ends the
// stream without error; another status or a content type other than
// text/event-stream (its parameters, even malformed, are ignored) fails it
// without reconnecting, with one exception: a reconnection (a stream was open
// before) answered 502, 503 or 504 (RFC 9110 §15.6.3-5), as a restarting
// server or its proxy answers, is retried like a network failure, within
// MaxReconnectionAttempts (see StatusError). Typed SSE clients of the
// wsrpc package also retry a reconnection refused with any status
// carrying Wsrpc-Code: unavailable. With IdleTimeout set, a
// connection on which nothing arrives for that long (a path gone dark,
// which TCP may not notice for minutes) is closed and reconnected too;
// it needs a server that sends heartbeats. Comment and retry-only
// blocks are hidden unless ShowCommentEvents or ShowRetryEvents ask for
// them. Decode turns events into typed events with a decode function.
//
// # Parsing
//
// Parser implements the parsing and interpretation rules of WHATWG HTML
// §9.2.5–9.2.6 incrementally over any chunking, with a bound on line and
// event size (ParserOptions.MaxEventSize) instead of unbounded memory.
//
// # Concurrency
//
// A server Stream may be written from several goroutines; its writes are
// serialised. A client Session is read by one goroutine and closed from
// any. A Parser belongs to one goroutine. Ring and Prepared are safe for
// concurrent use.
package sse
