package websocket

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/internal/httpfield"
)

// AcceptOptions configures Accept. A nil *AcceptOptions means defaults.
type AcceptOptions struct {
	// Subprotocols the server supports. The first subprotocol in the
	// client's offer that appears here is chosen; none is chosen if there
	// is no match (the client then decides whether to go on).
	Subprotocols []string

	// OriginPatterns lists the cross-origin hosts allowed to connect, as
	// path.Match patterns on the Origin's host ("*.example.com",
	// "example.com:8080"; without the port when it is the default of the
	// Origin's scheme), or on the whole origin, as sent, when the pattern
	// contains "://". A same-origin request (Origin host and port equal to
	// Host's, a default port counting as none) and a request without
	// Origin (not from a browser) are always allowed; one with more than
	// one Origin header is refused.
	OriginPatterns []string

	// InsecureSkipOriginCheck turns the origin check off: any web page may
	// then open a session with the user's cookies (cross-site WebSocket
	// hijacking). Prefer OriginPatterns.
	InsecureSkipOriginCheck bool

	// Extensions offered to negotiate (for example permessage-deflate).
	Extensions *ExtensionSet

	// MaxMessageSize bounds a message after reassembly and decompression:
	// larger ones fail the connection with 1009. 0 or negative means
	// DefaultMaxMessageSize; there is no unlimited setting. A compressed
	// message may take up to MaxMessageSize/64 + 1 KiB more on the wire, as
	// data that does not compress grows a little.
	MaxMessageSize int64
	// MaxFrameSize bounds one frame's payload (1009), with the same room
	// for compressed frames. 0 or negative means MaxMessageSize, as does a
	// value above it.
	MaxFrameSize int64

	// PingInterval, if positive, sends a ping this often; when its pong
	// does not come back within PongTimeout (0 or negative:
	// DefaultPongTimeout), the TCP connection is closed at once, without a
	// close frame (the path that lost the pong would not carry it): calls
	// fail with ErrPongTimeout, and the peer, if it hears of it, sees 1006.
	// Pongs are noticed by the reader; on Linux a late pong also counts as
	// come when bytes from the peer have arrived unread since the ping
	// (ConnStats.KeepaliveUnread), elsewhere keepalive needs a goroutine
	// reading the connection (or a Poller).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds how long a write may make no progress, the 101
	// response included (0: DefaultWriteTimeout; negative: none): a write
	// that could send nothing for WriteTimeout fails and closes the
	// connection, while a large message to a slow peer that keeps reading
	// takes as long as it needs. (The deadline is moved lazily, so a stall
	// may end up to an eighth of WriteTimeout sooner.) Progress is what the
	// runtime's poller sees when it wakes a blocked write, and Linux wakes
	// one only once about a third of the send buffer (autotuned up to
	// 4 MiB) has drained; so on Linux a socket's write whose deadline
	// fires also asks the kernel whether the peer took bytes meanwhile
	// (SIOCOUTQ), and waits on if it did. Through TLS, and on other
	// systems, there is no such check: a write is cut unless the poller
	// wakes it with progress within WriteTimeout (through TLS on Linux,
	// that third of the buffer drained; with kqueue, its low-water mark,
	// 2 KiB by default, free). Bound a whole call with its ctx.
	WriteTimeout time.Duration
	// CloseTimeout bounds the closing handshake, and how long the socket
	// of a connection failed on the peer's input lingers so that the peer
	// reads the close frame (see Conn). 0 or negative means
	// DefaultCloseTimeout: unlike WriteTimeout, there is no "none", since a
	// peer that never answers would hold the socket for ever.
	CloseTimeout time.Duration

	// Raw selects the frame API (ReadFrame, WriteFrame): control frames and
	// fragments are visible and pings are not answered automatically.
	Raw bool
}

func (o *AcceptOptions) config() config {
	return resolveConfig(o.MaxFrameSize, o.MaxMessageSize, o.PingInterval, o.PongTimeout, o.WriteTimeout, o.CloseTimeout, o.Raw)
}

// handshakeError is written as the HTTP response to a refused handshake,
// msg as its body; but for a 5xx, the server's own fault, msg is the
// error's only (see Accept).
type handshakeError struct {
	status int
	msg    string
	hdr    [][2]string
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("websocket: bad handshake: %d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

func (e *handshakeError) Unwrap() error { return ErrBadHandshake }

// Accept upgrades an HTTP request to a WebSocket connection (RFC 6455 §4.2).
// On a bad handshake it writes a 4xx response with a short reason and
// returns an error wrapping ErrBadHandshake; the handler should then return.
// A request that is not an upgrade to WebSocket gets 426 Upgrade Required
// with Upgrade: websocket, as does one for another Sec-WebSocket-Version
// (with Sec-WebSocket-Version: 13; RFC 9110 §15.5.22, RFC 6455 §4.4); an
// HTTP/2 or HTTP/3 request gets 400 instead, since a 426 there could not
// carry Upgrade (RFC 9113 §8.2.2; WebSocket over HTTP/2, RFC 8441, is not
// supported). A method other than GET gets 405, an HTTP/1.0 request or
// one with a body 400 (RFC 9110 §7.8: the body's bytes would come before
// the frames), a bad key 400 and a refused origin 403. An extension whose
// ServerNegotiate accepts with a nil session, or answers with names or
// values that are not tokens (RFC 6455 §9.1; FormatExtension), is the
// server's bug: Accept answers 500, sending nothing of that answer, and
// returns an error naming the extension and the parameter.
//
// Headers already set on w (cookies, for example) are sent with the 101
// response, except those the 101 itself writes: Sec-WebSocket-Protocol and
// Sec-WebSocket-Extensions set on w are not sent, as the subprotocol is
// chosen with AcceptOptions.Subprotocols and extensions by negotiation
// with AcceptOptions.Extensions. Header names that are not tokens are
// dropped, as net/http drops them, and CR and LF are removed from values.
//
// Accept needs an HTTP/1.1 connection that can be hijacked; the request's
// header size and read time are bounded by the http.Server (set
// ReadHeaderTimeout and MaxHeaderBytes: see docs/security.md). The
// bufio.ReadWriter that Hijack returned is the Conn's: the bytes its
// reader held are read as frames, and its reader and writer are then
// swapped for 16-byte ones on the same connection, so that net/http's
// 4 KiB buffers, which its connection points at until ServeHTTP returns,
// do not stay with a handler that serves the WebSocket inside it.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	accept, proto, exts, herr := verifyClientHandshake(r, opts)
	if herr != nil {
		for _, kv := range herr.hdr {
			w.Header().Set(kv[0], kv[1])
		}
		msg := herr.msg
		if herr.status >= 500 {
			// The server's own fault (an extension's answer it cannot
			// send, see negotiateServer), not the client's: the details,
			// which quote what made the answer unsendable, are for the
			// server's log, through the error, and not sent.
			msg = "websocket: server error during the handshake"
		}
		http.Error(w, msg, herr.status)
		return nil, herr
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			// A wrapper's Hijack that failed with an error of its own
			// (chi's Compress: "http.Hijacker is unavailable on the
			// writer"): the same fault as below for the client, whose
			// response does not quote the server's error.
			http.Error(w, "websocket: connection cannot be upgraded: the server's ResponseWriter cannot be hijacked", http.StatusInternalServerError)
			return nil, fmt.Errorf("websocket: hijack: %w", err)
		}
		// The usual cause, and a hard one to find from a bare 500: a
		// middleware's ResponseWriter wrapper (a status or size recorder,
		// http.TimeoutHandler) with neither a Hijack method nor an Unwrap
		// method returning the writer it wraps. The error names the
		// wrapper's type; the response, which the client reads, does not.
		// w itself may be a wrapper that unwraps fine (the typed layer's
		// own), so the name is that of the writer where the unwrapping
		// stopped, with w's as well when they differ.
		stop, unwrapped := hijackStop(w)
		via := ""
		if unwrapped {
			via = fmt.Sprintf(" (reached through %T)", w)
		}
		http.Error(w, "websocket: connection cannot be upgraded: the server's ResponseWriter cannot be hijacked (a middleware wrapper without Hijack or Unwrap)", http.StatusInternalServerError)
		return nil, fmt.Errorf("websocket: hijack: the ResponseWriter %T%s cannot be hijacked: a middleware that wraps it must implement Hijack or Unwrap (http.ResponseController): %w", stop, via, err)
	}
	// The server may have armed read/write deadlines for the request.
	_ = nc.SetDeadline(time.Time{})

	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(accept)
	b.WriteString("\r\n")
	if proto != "" {
		b.WriteString("Sec-WebSocket-Protocol: " + proto + "\r\n")
	}
	for _, e := range exts {
		b.WriteString("Sec-WebSocket-Extensions: " + FormatExtension(e.name, e.params) + "\r\n")
	}
	for k, vs := range w.Header() {
		if !httpfield.IsToken(k) {
			// As net/http drops it: a name with a CR, LF or colon would
			// inject header lines of its own (RFC 9110 §5.1).
			continue
		}
		switch http.CanonicalHeaderKey(k) {
		// A 101 has no content (RFC 9110 §15.2.2), so none of the
		// content's fields: a gzip middleware's Content-Encoding, say,
		// set before the handler upgraded, would describe frames that
		// are not gzip.
		case "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding":
			continue
		}
		for _, v := range vs {
			b.WriteString(k + ": " + strings.NewReplacer("\r", "", "\n", "").Replace(v) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	cfg := opts.config()
	if cfg.writeTimeout > 0 { // negative: no deadline, as for frame writes
		_ = nc.SetWriteDeadline(time.Now().Add(cfg.writeTimeout))
	}
	if _, err := nc.Write([]byte(b.String())); err != nil {
		nc.Close()
		return nil, fmt.Errorf("websocket: writing handshake response: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	c := newConn(nc, false, cfg, proto, exts, buffered(brw.Reader))
	releaseHijacked(brw, nc)
	return c, nil
}

// releaseHijacked gives back the buffers of the bufio.ReadWriter that
// Hijack returned, once newConn has copied the bytes read past the
// request. net/http hands over its connection's own reader and writer
// (4 KiB each), and its connection, which the goroutine running
// ServeHTTP keeps reachable, still points at them: a handler that serves
// the WebSocket inside ServeHTTP (every typed session) kept 8 KiB per
// connection that nothing reads or writes. After Hijack the ReadWriter
// is the caller's (net/http does nothing more with the connection, and
// checks for it before every use of those two), so each is replaced by a
// minimal one on the same connection: a reader with nothing buffered (the
// bytes it held are the Conn's now) and an empty writer, as usable as
// before, only without the 4 KiB. A wrapper's own Hijack may return a
// ReadWriter without a reader or writer: what is missing stays so.
func releaseHijacked(brw *bufio.ReadWriter, nc net.Conn) {
	const small = 16 // bufio's minimum
	if brw.Reader != nil {
		*brw.Reader = *bufio.NewReaderSize(nc, small)
	}
	if brw.Writer != nil {
		*brw.Writer = *bufio.NewWriterSize(nc, small)
	}
}

// hijackStop returns the writer at which http.ResponseController's search
// for a Hijack method ends, and whether it is another than w: it follows
// Unwrap() http.ResponseWriter from w while the writer has no Hijack, as
// the controller does, and stops at one with neither (or whose Unwrap
// returns nil). The controller has already walked this chain to its end,
// so it has no cycle. (Writers are not compared: a writer's type need not
// be comparable.)
func hijackStop(w http.ResponseWriter) (stop http.ResponseWriter, unwrapped bool) {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return w, unwrapped
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w, unwrapped
		}
		next := u.Unwrap()
		if next == nil {
			return w, unwrapped
		}
		w, unwrapped = next, true
	}
}

// buffered returns the bytes the HTTP server read past the request.
func buffered(br *bufio.Reader) []byte {
	if br == nil || br.Buffered() == 0 {
		return nil
	}
	b, _ := br.Peek(br.Buffered())
	return b
}

// IsUpgradeRequest reports whether r asks to upgrade to WebSocket: its
// Connection header holds the token "upgrade" and its Upgrade header the
// token "websocket", compared case-insensitively over every line of each
// (RFC 6455 §4.2.1; RFC 9110 §7.6.1, §7.8: both are comma-separated lists,
// which may be split over several lines). Accept answers a request that
// is not one with 426 Upgrade Required, and upgrades one that is and
// passes its other checks; a handler serving both plain HTTP and
// WebSocket on one path tells them apart with this same rule.
func IsUpgradeRequest(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// verifyClientHandshake checks an opening handshake (§4.2.1) and picks the
// subprotocol and extensions.
func verifyClientHandshake(r *http.Request, opts *AcceptOptions) (accept, proto string, exts []*negotiated, herr *handshakeError) {
	if r.ProtoMajor >= 2 {
		// Before the 426 below: Upgrade and Connection are connection-specific
		// fields, and an HTTP/2 (or HTTP/3) message carrying them is malformed
		// (RFC 9113 §8.2.2): clients reset the stream instead of showing the
		// refusal. WebSocket over HTTP/2 is RFC 8441's Extended CONNECT,
		// which Accept does not support.
		return "", "", nil, &handshakeError{http.StatusBadRequest, "WebSocket handshake needs HTTP/1.1 (WebSocket over HTTP/2, RFC 8441, is not supported)", nil}
	}
	// RFC 9110 §15.5.22: a 426 names the protocol to switch to in Upgrade
	// (and §7.8: with the "upgrade" connection option); RFC 6455 §4.4: and
	// the versions the server supports.
	upgradeHdr := [][2]string{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}}
	if !IsUpgradeRequest(r) {
		return "", "", nil, &handshakeError{http.StatusUpgradeRequired, "this endpoint speaks WebSocket: Upgrade: websocket and Connection: Upgrade required", upgradeHdr}
	}
	if r.Method != http.MethodGet {
		return "", "", nil, &handshakeError{http.StatusMethodNotAllowed, "WebSocket handshake must use GET", [][2]string{{"Allow", "GET"}}}
	}
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return "", "", nil, &handshakeError{http.StatusBadRequest, "WebSocket handshake needs HTTP/1.1", nil}
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// RFC 9110 §7.8: the new protocol starts after the request's body.
		// Accept does not read one, so its bytes would be taken for frames,
		// and a proxy that forwards the body as HTTP would disagree with us
		// on where the frames start. ContentLength -1 is a body of unknown
		// length.
		return "", "", nil, &handshakeError{http.StatusBadRequest, "WebSocket handshake request must not have a body", nil}
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		// §4.4: answer with the versions we support.
		return "", "", nil, &handshakeError{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version: want 13", upgradeHdr}
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 || !validKey(strings.TrimSpace(keys[0])) {
		return "", "", nil, &handshakeError{http.StatusBadRequest, "Sec-WebSocket-Key must be the base64 encoding of 16 bytes", nil}
	}
	if !opts.InsecureSkipOriginCheck {
		if err := checkOrigin(r, opts.OriginPatterns); err != nil {
			return "", "", nil, &handshakeError{http.StatusForbidden, err.Error(), nil}
		}
	}
	proto = selectSubprotocol(headerTokens(r.Header, "Sec-WebSocket-Protocol"), opts.Subprotocols)
	if opts.Extensions != nil && len(opts.Extensions.list) > 0 {
		offered, err := ParseExtensions(r.Header.Values("Sec-WebSocket-Extensions"))
		if err != nil {
			return "", "", nil, &handshakeError{http.StatusBadRequest, "malformed Sec-WebSocket-Extensions", nil}
		}
		if exts, err = negotiateServer(opts.Extensions, offered); err != nil {
			return "", "", nil, &handshakeError{http.StatusInternalServerError, err.Error(), nil}
		}
	}
	return acceptKey(strings.TrimSpace(keys[0])), proto, exts, nil
}

func selectSubprotocol(offered, supported []string) string {
	for _, p := range offered {
		for _, s := range supported {
			if p == s {
				return p
			}
		}
	}
	return ""
}

// negotiateServer asks each installed extension, in installation order, to
// choose among the client's offers of its token. An answer FormatExtension
// cannot write as given (checkExtensionElement: with a CR LF it would add
// header lines of its own to the 101) or an acceptance without a session
// is the extension's bug, not the client's: an error, which Accept answers
// with 500.
func negotiateServer(set *ExtensionSet, offered []ExtensionElement) ([]*negotiated, error) {
	var out []*negotiated
	for _, e := range set.list {
		var offers [][]Param
		for _, el := range offered {
			if strings.EqualFold(el.Name, e.Name()) {
				offers = append(offers, el.Params)
			}
		}
		if len(offers) == 0 {
			continue
		}
		answer, s, ok := e.ServerNegotiate(offers)
		if !ok {
			continue
		}
		if s == nil {
			return nil, fmt.Errorf("extension %q: ServerNegotiate accepted with a nil session", e.Name())
		}
		if err := checkExtensionElement(e.Name(), answer); err != nil {
			return nil, fmt.Errorf("extension %q: ServerNegotiate's answer: %w", e.Name(), err)
		}
		out = append(out, newNegotiated(e, answer, s))
	}
	return out, nil
}

// checkOrigin implements the origin policy (RFC 6455 §10.2): same-origin
// when the Origin's host and port equal Host's, case-insensitively, a port
// that is the default of the Origin's scheme counting as absent on both
// sides (RFC 6454 §4: an origin's port defaults from its scheme; a load
// balancer may forward Host with it, a browser leaves it out). The scheme
// is not compared: Host does not say whether TLS was used.
func checkOrigin(r *http.Request, patterns []string) error {
	origins := r.Header.Values("Origin")
	if len(origins) > 1 {
		// A browser sends one, its page's serialized origin (RFC 6455
		// §4.1, RFC 6454 §6.2). Judging only the first would let a
		// request through whose other Origin a proxy or a log takes
		// for the real one.
		return errors.New("more than one Origin header")
	}
	if len(origins) == 0 || origins[0] == "" {
		return nil
	}
	origin := origins[0]
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q not allowed", origin)
	}
	host := trimDefaultPort(strings.ToLower(u.Host), u.Scheme)
	if host == trimDefaultPort(strings.ToLower(r.Host), u.Scheme) {
		return nil
	}
	lorigin := strings.ToLower(origin)
	for _, p := range patterns {
		target := host
		if strings.Contains(p, "://") {
			target = lorigin
		}
		if ok, err := path.Match(strings.ToLower(p), target); err == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q not allowed (cross-origin request; see AcceptOptions.OriginPatterns)", origin)
}

// trimDefaultPort drops the port from host ("example.com:443",
// "[::1]:80") when it is the default of scheme (RFC 6454 §4; RFC 6455
// §3: ws 80, wss 443), so that an explicit default port and none compare
// equal. Other ports, and hosts of other schemes, are left as they are.
func trimDefaultPort(host, scheme string) string {
	var port string
	switch scheme {
	case "http", "ws":
		port = ":80"
	case "https", "wss":
		port = ":443"
	default:
		return host
	}
	h, ok := strings.CutSuffix(host, port)
	if !ok || (strings.Contains(h, ":") && !strings.HasSuffix(h, "]")) {
		// No such port, or h is not a host on its own (an unbracketed
		// IPv6 address ending in that number).
		return host
	}
	return h
}
