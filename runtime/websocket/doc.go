// Package websocket is wsrpc's RFC 6455 engine: the opening handshake,
// framing, masking, fragmentation, UTF-8 checks, the closing handshake,
// pings and limits, and an extension API with permessage-deflate
// (RFC 7692). It moves bytes; the typed layer above it knows messages.
//
// # Overview
//
// A server upgrades a request with Accept inside any net/http handler; a
// client connects with Dial. Both return a *Conn. Options are nil-able
// structs (AcceptOptions, DialOptions): nil means the documented defaults.
//
//	c, err := websocket.Accept(w, r, nil)
//	if err != nil {
//		return // Accept already wrote a 4xx response
//	}
//	defer c.CloseNow()
//	for {
//		typ, msg, err := c.Read(ctx)
//		if err != nil {
//			return // a *CloseError if the peer closed; see CloseStatus
//		}
//		if err := c.Write(ctx, typ, msg); err != nil {
//			return
//		}
//	}
//
// # Data Messages
//
// Read and ReadAppend return whole messages; Reader streams one. Write
// sends a whole message as one frame (a compressed one in fragments of
// about 64 KiB, as the compressor's output comes); Writer streams one as
// fragments. Text messages are checked for UTF-8 incrementally as they
// arrive, and an invalid byte fails the connection at once with 1007; text
// we send is checked before it goes out (ErrInvalidUTF8). MaxMessageSize
// (after reassembly and decompression) and MaxFrameSize fail it with 1009.
//
// # Control Messages
//
// Pings are answered with a pong carrying the same payload, by whichever
// goroutine is reading. Ping sends a ping and waits for its pong;
// PingInterval and PongTimeout keep a connection alive and close it
// (without a close frame, ErrPongTimeout) when the peer goes silent.
// Close runs the closing handshake; the peer's close frame surfaces as a
// *CloseError from the read in progress, so a handler can tell a close
// from a failure (a connection lost without one reads as 1006 in
// CloseStatus). Once both close frames have crossed, Close and the read
// return at once; a client's socket then waits for the server to close
// TCP first (RFC 6455 §7.1.1) in the background, up to CloseTimeout. A
// failure found in the peer's input (1002, 1007, 1009) sends its close
// frame and returns at once, while the socket lingers, draining the
// peer's frames, until the peer answers that frame with its own (bounded
// by CloseTimeout): closed with input unread, it would reset the
// connection and lose the frame.
//
// The raw mode (AcceptOptions.Raw, DialOptions.Raw) is the frame API:
// ReadFrame and WriteFrame see control frames and fragments, and nothing is
// answered automatically.
//
// # Extensions
//
// An Extension owns RSV bits, offers and negotiates parameters, and gets a
// fresh ExtensionSession per connection that transforms messages
// (MessageTransformer) or frames (FrameTransformer). NewExtensionSet
// rejects two extensions claiming the same RSV bit when the options are
// built. PerMessageDeflate is the built-in one; Conn.Extension looks up
// what was negotiated. A session may set its own RSV bits only, and a
// frame transformer must leave a valid frame (FIN and the opcode's kind
// unchanged, control frames within 125 bytes): otherwise the write fails
// with an error naming the extension, and the message (a
// MessageTransformer's bits) or the frame (a FrameTransformer's) is not
// sent. Transformers must not modify the caller's bytes, not even
// temporarily (Write's p, a PreparedMessage's data shared by many
// connections): OutgoingFrame sets f.Payload to a new slice instead.
// IncomingFrame sees headers only, so transforming incoming payloads is a
// MessageTransformer's job.
//
// # Concurrency
//
// Any number of goroutines may write at once (Write, Writer, Ping, Close):
// messages never interleave, and small messages queued by concurrent
// writers are written with one system call. One goroutine at a time reads
// (Read, ReadAppend, Reader, ReadFrame); a concurrent reader waits. Close,
// CloseNow and Stats are safe from anywhere. A context passed to a call
// governs that call: if it is done while the call reads or writes, the
// connection is closed, because a frame cut off half way cannot be
// resumed; a call still waiting for its turn (a write behind another
// message, a read behind another read) returns the context's error and
// leaves the connection usable. Reader's context governs its message
// until the message's reader has read its last frame (or the next read
// call starts), Writer's until its Close. An
// open Writer holds the other data messages (Write, WritePrepared, another
// Writer) until its Close; control frames go out between its fragments.
//
// # Origin Considerations
//
// Browsers send cookies with a WebSocket handshake from any page, so Accept
// rejects a cross-origin handshake with 403 unless its Origin matches
// AcceptOptions.OriginPatterns (cross-site WebSocket hijacking). Requests
// without an Origin header are not from browsers and are allowed; those
// with more than one are refused. Same-origin means the Origin's host and
// port equal Host's, a port that is the default of the Origin's scheme
// (80, 443) counting as none. InsecureSkipOriginCheck turns the check off.
//
// # Many Connections
//
// A Poller reads connections only when they have input, calling a Handler
// for each message, so a server can hand it every accepted connection and
// return from the HTTP handler: an idle connection then holds no
// goroutine. On Linux it is an edge-triggered epoll instance nested in the
// Go runtime's poller, which also spares the read(2) that would only
// return EAGAIN after each message.
//
// # Memory
//
// Read and write buffers come from pools and return to them as soon as a
// connection has nothing buffered. On plain TCP connections an idle reader
// waits for readiness without holding a buffer, and state only some
// connections need (control frames, Close's kept messages, Writer) is
// allocated on first use, so an idle connection costs about 2 KiB of state,
// plus its goroutine unless a Poller serves it.
package websocket
