package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/httpfield"
	"github.com/wsrpc/wsrpc/internal/peertext"
)

// DialOptions configures Dial. A nil *DialOptions means defaults.
type DialOptions struct {
	// HTTPClient, when its Transport is an *http.Transport, supplies the
	// dialer, TLS configuration and proxy function (a nil Proxy there
	// means no proxy, as for its HTTP requests), and its Jar, if any, the
	// cookies sent with the handshake and keeps those the server sets in
	// its answer, so one configured client serves HTTP and WebSocket
	// calls alike. Fields below override it. Any other RoundTripper (one
	// that wraps a transport to trace, authenticate or speak HTTP/2) is
	// not used: the handshake is written on a connection of Dial's own,
	// which a RoundTripper cannot hand over; put what such a wrapper adds
	// in Header.
	HTTPClient *http.Client
	// NetDialContext dials TCP; default a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig for wss:// (ServerName defaults to the URL's host).
	TLSConfig *tls.Config
	// Proxy picks an HTTP proxy for the request; the default is
	// HTTPClient's, else http.ProxyFromEnvironment. The connection is
	// tunnelled with CONNECT; only http:// and https:// proxies are
	// supported (others fail with an error naming the scheme).
	Proxy func(*http.Request) (*url.URL, error)

	// Header is sent with the handshake request (Origin, Authorization,
	// cookies, or Host to override the host). Names must be tokens and
	// values free of control characters other than tab (RFC 9110 §5.1,
	// §5.5), and the headers the handshake itself sends (Upgrade,
	// Connection, Sec-WebSocket-Key, -Version, -Protocol, -Extensions;
	// RFC 6455 §4.1) are refused: use Subprotocols and Extensions. Dial
	// fails before dialing on any of these rather than send a mangled or
	// ignored header.
	Header http.Header
	// Subprotocols to offer, most preferred first: each a token, none
	// twice (RFC 6455 §4.1), else Dial fails before dialing with an error
	// wrapping ErrInvalidDial. A server answer that names a subprotocol
	// not offered fails the handshake.
	Subprotocols []string
	// Extensions to offer (for example permessage-deflate). An offer
	// (ClientOffers) whose names or values are not tokens (RFC 6455 §9.1)
	// fails Dial before dialing, with an error wrapping ErrInvalidDial.
	Extensions *ExtensionSet
	// MaxResponseHeaderBytes bounds the handshake response (default 64 KiB).
	MaxResponseHeaderBytes int

	// Limits and keepalive, as in AcceptOptions: PongTimeout 0 or
	// negative means DefaultPongTimeout; WriteTimeout 0 means
	// DefaultWriteTimeout, negative none; CloseTimeout 0 or negative
	// means DefaultCloseTimeout (there is no "none").
	MaxMessageSize int64
	MaxFrameSize   int64
	PingInterval   time.Duration
	PongTimeout    time.Duration
	WriteTimeout   time.Duration
	CloseTimeout   time.Duration
	// Raw selects the frame API (see AcceptOptions.Raw).
	Raw bool
}

const defaultMaxResponseHeaderBytes = 64 << 10

// handshakeTimeout is DefaultHandshakeTimeout, a variable for tests.
var handshakeTimeout = DefaultHandshakeTimeout

// Dial opens a WebSocket connection to a ws:// or wss:// URL (http:// and
// https:// are accepted as aliases). The handshake (TCP, proxy, TLS and the
// upgrade) is bounded by ctx, and by DefaultHandshakeTimeout when ctx has
// no deadline, whose expiry fails Dial with "websocket: no handshake
// within 30s", wrapping os.ErrDeadlineExceeded (a net.Error whose Timeout
// is true), not context.DeadlineExceeded: that one is the caller's own
// deadline. On a refused handshake the *http.Response is returned with
// the error (its body holds up to 1 KiB of the server's reason, read
// within that bound and at most a second after the header, so that a
// server that stalls or trickles its body holds up no failure for long:
// what came by then is kept; nothing for a text/event-stream answer, a
// path served as Server-Sent Events, whose body may not end for a long
// time). The error's text shows the status and the body on one line
// (control characters, line breaks and bidirectional overrides escaped);
// the response keeps them raw.
//
// The *http.Response, returned with the connection or with a refused
// handshake's error (nil when no response was read), is the handshake's
// status and header; its body has already been read — empty after a 101,
// the kept start of a refusal's reason otherwise — so it need not be
// closed (closing it does nothing): the network connection belongs to the
// returned *Conn, or Dial closed it with its error.
//
// Credentials in the URL (ws://user:pass@host/) are sent as
// "Authorization: Basic …" (RFC 7617), as net/http's client does, unless
// opts.Header has an Authorization of its own; they never appear in the
// request line or the Host header.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidDial, err)
	}
	secure := false
	switch u.Scheme {
	case "ws", "http":
	case "wss", "https":
		secure = true
	default:
		return nil, nil, fmt.Errorf("%w: unsupported scheme %q", ErrInvalidDial, u.Scheme)
	}
	if u.Hostname() == "" {
		// A port alone ("ws://:8080/") is no host either: net.Dial would
		// take ":8080" for this machine, a server the URL never named
		// (browsers' URL parser refuses it, and the WebSocket constructor
		// throws).
		return nil, nil, fmt.Errorf("%w: URL %q has no host", ErrInvalidDial, u.Redacted())
	}
	if err := asciiHost(u); err != nil {
		return nil, nil, err
	}
	if err := checkHeader(opts.Header); err != nil {
		return nil, nil, err
	}
	if err := checkSubprotocols(opts.Subprotocols); err != nil {
		return nil, nil, err
	}
	offers, err := extensionOffers(opts.Extensions)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		// Dial's own bound, not the caller's: its expiry is a peer that
		// did not answer in time, a network timeout (os.ErrDeadlineExceeded,
		// a net.Error whose Timeout is true), not a context.DeadlineExceeded
		// that says the caller's deadline passed when it set none.
		bounded, cancel := context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
		c, resp, err := dial(bounded, u, secure, opts, offers)
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("websocket: no handshake within %v: %w", handshakeTimeout, os.ErrDeadlineExceeded)
		}
		return c, resp, err
	}
	return dial(ctx, u, secure, opts, offers)
}

// dial is Dial for a request checked already, under a ctx with a deadline;
// offers is the request's extension offers (extensionOffers).
func dial(ctx context.Context, u *url.URL, secure bool, opts *DialOptions, offers extOffers) (*Conn, *http.Response, error) {
	var jar http.CookieJar
	var jarURL *url.URL
	if opts.HTTPClient != nil && opts.HTTPClient.Jar != nil {
		jar, jarURL = opts.HTTPClient.Jar, httpURL(u, secure)
		o := *opts
		o.Header = withJarCookies(opts.Header, jar, jarURL)
		opts = &o
	}
	addr := u.Host
	if u.Port() == "" {
		if secure {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}

	dialFn, tlsCfg, proxyFn := opts.transport()
	// Everything after the TCP dial (the proxy's CONNECT exchange, TLS and
	// the upgrade) is bounded by ctx: a deadline, and closing the
	// connection if ctx is cancelled first. The AfterFunc is registered as
	// soon as there is a connection, so that a proxy that never answers
	// CONNECT is cut by a cancel too, not only by the deadline. The dial
	// function runs once per Dial.
	stop := func() bool { return true }
	dialTCP := func(ctx context.Context, network, a string) (net.Conn, error) {
		raw, err := dialFn(ctx, network, a)
		if err == nil {
			stop = context.AfterFunc(ctx, func() { raw.Close() })
		}
		return raw, err
	}
	nc, err := dialThroughProxy(ctx, dialTCP, proxyFn, u, secure, addr, tlsCfg)
	if err != nil {
		// !stop(): ctx ended and closed the connection under the exchange.
		if (!stop() || deadlinePassed(ctx, err)) && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, nil, fmt.Errorf("websocket: dial %s: %w", addr, err)
	}
	d, _ := ctx.Deadline() // there is one: set above if ctx had none
	_ = nc.SetDeadline(d)
	c, resp, err := clientHandshake(nc, u, secure, opts, offers, d)
	if jar != nil && resp != nil {
		// As net/http's client does with every response, the refusals
		// included (a login redirect, a session renewed on a 401).
		if cs := resp.Cookies(); len(cs) > 0 {
			jar.SetCookies(jarURL, cs)
		}
	}
	deadlinePassed(ctx, err)
	if !stop() || ctx.Err() != nil {
		if c != nil {
			c.CloseNow()
		}
		nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, resp, fmt.Errorf("websocket: handshake: %w", ctxErr(ctx, err))
	}
	if err != nil {
		nc.Close()
		return nil, resp, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, resp, nil
}

// httpURL is u with the http:// or https:// scheme that proxy functions
// (http.ProxyFromEnvironment) and cookie jars know: cookies are scoped to
// those (RFC 6265 §5.4 has no ws:// scheme; a Secure cookie goes with
// wss://, as with https://). The userinfo is left out.
func httpURL(u *url.URL, secure bool) *url.URL {
	h := *u
	h.Scheme = "http"
	if secure {
		h.Scheme = "https"
	}
	h.User = nil
	return &h
}

// withJarCookies returns h with the jar's cookies for u added to its
// Cookie field, after any cookies h already has, as net/http's client
// adds them (RFC 6265 §5.4: one Cookie header, pairs joined by "; ").
func withJarCookies(h http.Header, jar http.CookieJar, u *url.URL) http.Header {
	cs := jar.Cookies(u)
	if len(cs) == 0 {
		return h
	}
	r := &http.Request{Header: h.Clone()}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	for _, c := range cs {
		r.AddCookie(c)
	}
	return r.Header
}

// checkHeader refuses a DialOptions.Header that Dial cannot send as
// given. A name that is not a token or a value with a control character
// (RFC 9110 §5.1, §5.5) would be rejected by the server, or, with a CR or
// LF, inject headers of its own; a header the handshake writes itself
// (RFC 6455 §4.1) would be sent twice or not at all.
func checkHeader(h http.Header) error {
	for name, values := range h {
		if !httpfield.IsToken(name) {
			return fmt.Errorf("%w: header name %q is not a token (RFC 9110 §5.1)", ErrInvalidDial, name)
		}
		switch http.CanonicalHeaderKey(name) {
		case "Sec-Websocket-Protocol":
			return fmt.Errorf("%w: header %s: offer subprotocols with DialOptions.Subprotocols", ErrInvalidDial, name)
		case "Sec-Websocket-Extensions":
			return fmt.Errorf("%w: header %s: offer extensions with DialOptions.Extensions", ErrInvalidDial, name)
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version":
			return fmt.Errorf("%w: header %s is the handshake's own (RFC 6455 §4.1): Dial sets it", ErrInvalidDial, name)
		}
		for _, v := range values {
			if !httpfield.ValidValue(v) {
				// The value is not quoted: it may be a credential.
				return fmt.Errorf("%w: header %s: value has a control character (RFC 9110 §5.5)", ErrInvalidDial, name)
			}
		}
	}
	return nil
}

// checkSubprotocols refuses DialOptions.Subprotocols that Dial cannot
// offer as given: each must be a non-empty token and unique (RFC 6455
// §4.1, item 10; §11.3.4). A comma would split one name into two offers,
// a space or separator make the header one the server refuses, and a CR
// or LF would inject headers of its own.
func checkSubprotocols(ps []string) error {
	for i, p := range ps {
		if !isToken(p) {
			return fmt.Errorf("%w: subprotocol %q is not a token (RFC 6455 §4.1)", ErrInvalidDial, p)
		}
		for _, q := range ps[:i] {
			if q == p {
				return fmt.Errorf("%w: subprotocol %q offered twice (RFC 6455 §4.1)", ErrInvalidDial, p)
			}
		}
	}
	return nil
}

// extOffers is what a Dial offers of its extensions.
type extOffers struct {
	header  string      // the request's Sec-WebSocket-Extensions lines
	offered []Extension // the extensions with at least one offer
}

// extensionOffers renders the request's Sec-WebSocket-Extensions lines,
// one per offer of each extension, checked first: FormatExtension writes
// what it is given, and an offer whose names or values are not tokens
// (RFC 6455 §9.1) would break the header's grammar, or with a CR LF
// inject header lines of its own. Such an offer fails Dial before
// anything is dialed or sent. ClientOffers is called once per Dial, here,
// so what was checked is what is sent, and what the answer may use: an
// installed extension with no offer was not in the request (§4.1).
func extensionOffers(set *ExtensionSet) (extOffers, error) {
	var o extOffers
	if set == nil {
		return o, nil
	}
	var b strings.Builder
	for _, e := range set.list {
		name := e.Name()
		offers := e.ClientOffers()
		for _, offer := range offers {
			if err := checkExtensionElement(name, offer); err != nil {
				return extOffers{}, fmt.Errorf("%w: extension %q: ClientOffers: %w", ErrInvalidDial, name, err)
			}
			b.WriteString("Sec-WebSocket-Extensions: " + FormatExtension(name, offer) + "\r\n")
		}
		if len(offers) > 0 {
			o.offered = append(o.offered, e)
		}
	}
	o.header = b.String()
	return o, nil
}

// asciiHost refuses a host name that is not ASCII. DNS resolves, the
// Host header carries (RFC 9110 §7.2: a reg-name is ASCII) and TLS sends
// as SNI (RFC 6066 §3) only a name's IDNA form (RFC 5891: "bücher.example"
// is "xn--bcher-kva.example"); sent as UTF-8 it failed further on, as a
// lookup error or a server's 400. net/http converts it with IDNA tables
// this module does not carry (golang.org/x/net/idna), so the caller is
// told to give the ASCII form, before anything is sent.
func asciiHost(u *url.URL) error {
	host := u.Hostname()
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			return fmt.Errorf("%w: host %q is not ASCII: give its IDNA (punycode) form, as in xn--bcher-kva.example for bücher.example", ErrInvalidDial, host)
		}
	}
	return nil
}

// removeZone strips an IPv6 zone from a host[:port] ("[fe80::1%eth0]:80"
// becomes "[fe80::1]:80"): the zone names an interface of this machine, is
// meaningless to the server and is not sent (RFC 6874 §4), as net/http's
// client does not send it. The dial keeps it.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// tlsError names the TLS handshake in err once: crypto/tls's own errors
// already start with "tls: ", an I/O error during the handshake does not.
func tlsError(err error) error {
	if strings.HasPrefix(err.Error(), "tls: ") {
		return err
	}
	return fmt.Errorf("tls: %w", err)
}

// deadlinePassed reports whether err is the I/O timeout of a deadline taken
// from ctx. The connection's deadline and ctx's timer expire at the same
// instant and the deadline may win the race; it then waits for ctx to be
// done, so the caller reports ctx's error (context.DeadlineExceeded) rather
// than a bare i/o timeout.
func deadlinePassed(ctx context.Context, err error) bool {
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	if d, ok := ctx.Deadline(); !ok || time.Now().Before(d) {
		return false
	}
	<-ctx.Done()
	return true
}

func (o *DialOptions) transport() (func(context.Context, string, string) (net.Conn, error), *tls.Config, func(*http.Request) (*url.URL, error)) {
	dial := o.NetDialContext
	tlsCfg := o.TLSConfig
	proxy := o.Proxy
	fromClient := false // proxy is the client's own choice, nil meaning none
	if o.HTTPClient != nil {
		if t, ok := o.HTTPClient.Transport.(*http.Transport); ok {
			// A Transport's first request sets up HTTP/2, writing
			// TLSClientConfig; Clone runs that setup first, under the
			// Transport's own once, so reading the fields cannot race
			// with a request on the same client.
			t = t.Clone()
			if dial == nil && t.DialContext != nil {
				dial = t.DialContext
			}
			if tlsCfg == nil && t.TLSClientConfig != nil {
				tlsCfg = t.TLSClientConfig
			}
			if proxy == nil {
				proxy, fromClient = t.Proxy, true
			}
		}
	}
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	if proxy == nil && !fromClient {
		proxy = http.ProxyFromEnvironment
	}
	return dial, tlsCfg, proxy
}

// dialThroughProxy connects to addr, through an HTTP CONNECT tunnel when
// the proxy function (nil: none) names a proxy, then runs TLS for wss://.
func dialThroughProxy(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), proxyFn func(*http.Request) (*url.URL, error), u *url.URL, secure bool, addr string, tlsCfg *tls.Config) (net.Conn, error) {
	// http.ProxyFromEnvironment looks at http/https schemes.
	var proxyURL *url.URL
	var err error
	if proxyFn != nil {
		if proxyURL, err = proxyFn(&http.Request{URL: httpURL(u, secure), Header: http.Header{}}); err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
	}
	var nc net.Conn
	if proxyURL == nil {
		nc, err = dial(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
	} else {
		nc, err = connectProxy(ctx, dial, proxyURL, addr, tlsCfg)
		if err != nil {
			return nil, err
		}
	}
	if !secure {
		return nc, nil
	}
	cfg := &tls.Config{}
	if tlsCfg != nil {
		cfg = tlsCfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	// HTTP/1.1 only: a WebSocket upgrade cannot ride ALPN-negotiated h2.
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, tlsError(err)
	}
	return tc, nil
}

// connectProxy opens a CONNECT tunnel to addr through an HTTP(S) proxy.
// An https:// proxy is verified with tlsCfg (nil: defaults), the client's
// TLS configuration, as net/http's Transport verifies it with its
// TLSClientConfig.
func connectProxy(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), proxyURL *url.URL, addr string, tlsCfg *tls.Config) (net.Conn, error) {
	if s := proxyURL.Scheme; s != "http" && s != "https" {
		// ALL_PROXY=socks5://… for one: speaking CONNECT to it would fail
		// with a confusing parse error.
		return nil, fmt.Errorf("proxy %s: unsupported scheme %q: only http and https proxies (CONNECT) are supported", proxyURL.Redacted(), s)
	}
	paddr := proxyURL.Host
	if proxyURL.Port() == "" {
		port := "80"
		if proxyURL.Scheme == "https" {
			port = "443"
		}
		paddr = net.JoinHostPort(proxyURL.Hostname(), port)
	}
	nc, err := dial(ctx, "tcp", paddr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", paddr, err)
	}
	if proxyURL.Scheme == "https" {
		cfg := &tls.Config{}
		if tlsCfg != nil {
			cfg = tlsCfg.Clone()
		}
		// The name and protocol are the proxy's: its certificate is for its
		// own host, and CONNECT is HTTP/1.1, whatever ALPN the config
		// offers for the target (h2 from an http.Transport's setup).
		cfg.ServerName = proxyURL.Hostname()
		cfg.NextProtos = nil
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("proxy %w", tlsError(err))
		}
		nc = tc
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if proxyURL.User != nil {
		pass, _ := proxyURL.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(proxyURL.User.Username() + ":" + pass))
		req += "Proxy-Authorization: Basic " + cred + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	// br may read past the response (its buffer is at least 16 bytes), and
	// such bytes would belong to the tunnel; there are none: neither a
	// WebSocket server nor a TLS one speaks before the client (net/http's
	// Transport relies on the same).
	br := bufio.NewReader(&io.LimitedReader{R: nc, N: defaultMaxResponseHeaderBytes})
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("proxy: CONNECT %s: %s", addr, peertext.OneLine(resp.Status))
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// clientHandshake sends the opening handshake and checks the answer
// (RFC 6455 §4.1). offers is the extension offers (extensionOffers);
// deadline is nc's, the handshake's.
func clientHandshake(nc net.Conn, u *url.URL, secure bool, opts *DialOptions, offers extOffers, deadline time.Time) (*Conn, *http.Response, error) {
	var keyBytes [16]byte
	if _, err := rand.Read(keyBytes[:]); err != nil {
		return nil, nil, err
	}
	key := base64.StdEncoding.EncodeToString(keyBytes[:])

	host := u.Host
	for k, vs := range opts.Header {
		// Any spelling of the key: a map literal can hold "host", which
		// Header.Get, canonicalizing only its argument, does not find.
		if http.CanonicalHeaderKey(k) == "Host" && len(vs) > 0 && vs[0] != "" {
			host = vs[0]
		}
	}
	host = removeZone(host)
	var b bytes.Buffer
	b.WriteString("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n")
	if len(opts.Subprotocols) > 0 {
		b.WriteString("Sec-WebSocket-Protocol: " + strings.Join(opts.Subprotocols, ", ") + "\r\n")
	}
	b.WriteString(offers.header)
	// Dial's checkHeader refused invalid names and values and the
	// handshake's own headers; Host was written above.
	hasAuth := false
	for k, vs := range opts.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Host":
			continue
		case "Authorization":
			hasAuth = hasAuth || len(vs) > 0
		}
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	if u.User != nil && !hasAuth {
		// As net/http's client and gorilla/websocket do: the userinfo is
		// Basic credentials (RFC 7617 §2), never part of Host or the
		// request line (RFC 9110 §4.2.4 deprecates it there).
		pass, _ := u.User.Password()
		b.WriteString("Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)) + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := nc.Write(b.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("websocket: writing handshake: %w", err)
	}

	limit := opts.MaxResponseHeaderBytes
	if limit <= 0 {
		limit = defaultMaxResponseHeaderBytes
	}
	lr := &io.LimitedReader{R: nc, N: int64(limit)}
	br := bufio.NewReaderSize(lr, 4096)
	req := &http.Request{Method: http.MethodGet, URL: u}
	var resp *http.Response
	for interim := 0; ; interim++ {
		var err error
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			if lr.N <= 0 {
				return nil, nil, fmt.Errorf("websocket: handshake response exceeds %d bytes: %w", limit, ErrBadHandshake)
			}
			return nil, nil, fmt.Errorf("websocket: reading handshake response: %w", err)
		}
		// RFC 9110 §15.2: a client must accept 1xx responses it did not
		// ask for (103 Early Hints from a CDN, 100 Continue) before the
		// final one; 101 is the one that ends the handshake. Bounded as
		// net/http's client bounds them, and by the header byte limit.
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if interim == maxInterimResponses {
			return nil, nil, fmt.Errorf("websocket: more than %d interim (1xx) responses: %w", maxInterimResponses, ErrBadHandshake)
		}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The server's text, in the error string, by peertext's rule: a
		// reason phrase may hold control characters that net/http's
		// header parser refuses elsewhere.
		status := peertext.OneLine(resp.Status)
		if isEventStream(resp.Header.Get("Content-Type")) {
			// A path served as Server-Sent Events: its body is a stream
			// that ends when the server is done, and a quiet one sends
			// nothing for a long time, so reading it would wait out the
			// handshake's deadline. The status and headers say enough.
			resp.Body = http.NoBody
			return nil, resp, fmt.Errorf("websocket: server answered %s with an event stream (text/event-stream), not a WebSocket: %w", status, ErrBadHandshake)
		}
		// The read is bounded by the connection's deadline, the
		// handshake's (see Dial), and by a cancel, which closes the
		// connection; its error goes in the chain so that Dial reports
		// the deadline or cancel, not a refusal cut short. It is bounded
		// by refusalBodyWait too: a reason comes with the header or just
		// after it, and the status already decides the failure, so a
		// body that stalls or trickles ends there, with what came, as a
		// refusal (a timeout of that bound is not the handshake's). With
		// less than twice that left before the handshake's deadline, the
		// bound is half of what is left, so that a short deadline does not
		// turn a refusal already received into the deadline's error.
		wait := min(refusalBodyWait, time.Until(deadline)/2)
		own := time.Now().Add(wait)
		_ = nc.SetReadDeadline(own)
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			rerr = nil
		}
		// The body's segment only when it has text, as sse.StatusError's:
		// a bare refusal read "server answered 400 Bad Request: :
		// websocket: bad handshake".
		text := peertext.OneLine(string(body))
		if text != "" {
			text = ": " + text
		}
		if rerr != nil {
			return nil, resp, fmt.Errorf("websocket: server answered %s%s: %w (reading its body: %w)", status, text, ErrBadHandshake, rerr)
		}
		return nil, resp, fmt.Errorf("websocket: server answered %s%s: %w", status, text, ErrBadHandshake)
	}
	resp.Body = http.NoBody
	bad := func(format string, args ...any) (*Conn, *http.Response, error) {
		return nil, resp, fmt.Errorf("websocket: "+format+": %w", append(args, ErrBadHandshake)...)
	}
	if !headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
		return bad("response lacks Upgrade: websocket / Connection: Upgrade")
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		return bad("wrong Sec-WebSocket-Accept %q", got)
	}
	proto := ""
	if ps := resp.Header.Values("Sec-WebSocket-Protocol"); len(ps) > 0 {
		proto = strings.TrimSpace(ps[0])
		offered := false
		for _, p := range opts.Subprotocols {
			offered = offered || p == proto
		}
		if len(ps) > 1 || !offered {
			// §4.1: the client must Fail the WebSocket Connection. It is
			// not established yet, so that is closing TCP (dial does)
			// without a close frame, which §7.1.7 asks for only on an
			// established connection.
			return bad("server chose subprotocol %q, which was not offered", proto)
		}
	}
	exts, err := negotiateClient(offers.offered, resp.Header.Values("Sec-WebSocket-Extensions"))
	if err != nil {
		return nil, resp, err
	}
	cfg := resolveConfig(opts.MaxFrameSize, opts.MaxMessageSize, opts.PingInterval, opts.PongTimeout, opts.WriteTimeout, opts.CloseTimeout, opts.Raw)
	var rest []byte
	if n := br.Buffered(); n > 0 {
		rest, _ = br.Peek(n)
	}
	return newConn(nc, true, cfg, proto, exts, rest), resp, nil
}

// isEventStream reports whether a Content-Type is text/event-stream
// (WHATWG HTML §9.2), whatever its case and parameters (RFC 9110 §8.3.1).
func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// refusalBodyWait bounds the wait for a refused handshake's body, as
// runtime/sse bounds a refusal's (StatusError.Body).
const refusalBodyWait = time.Second

// maxInterimResponses is how many 1xx responses other than 101 Dial
// skips before giving up on the server (net/http's client allows 5).
const maxInterimResponses = 5

// negotiateClient checks the server's extension answer: every extension
// must be one we offered, at most once (§9.1), and accepted by its
// ClientAccept with a session.
func negotiateClient(offered []Extension, values []string) ([]*negotiated, error) {
	answers, err := ParseExtensions(values)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrBadHandshake)
	}
	var out []*negotiated
	seen := map[string]bool{}
	for _, a := range answers {
		name := strings.ToLower(a.Name)
		var ext Extension
		for _, e := range offered {
			if strings.EqualFold(e.Name(), a.Name) {
				ext = e
			}
		}
		if ext == nil {
			return nil, fmt.Errorf("websocket: server answered extension %q, which was not offered: %w", a.Name, ErrBadHandshake)
		}
		if seen[name] {
			return nil, fmt.Errorf("websocket: server answered extension %q twice: %w", a.Name, ErrBadHandshake)
		}
		seen[name] = true
		s, err := ext.ClientAccept(a.Params)
		if err != nil {
			return nil, fmt.Errorf("websocket: extension %q: %w: %w", a.Name, err, ErrBadHandshake)
		}
		if s == nil {
			// An extension's bug, caught here rather than as a nil
			// session handed to the application (Conn.Extension).
			return nil, fmt.Errorf("websocket: extension %q: ClientAccept returned a nil session and no error: %w", a.Name, ErrBadHandshake)
		}
		out = append(out, newNegotiated(ext, a.Params, s))
	}
	return out, nil
}
