package wsrpc

import (
	"context"
	"fmt"
	"slices"

	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// An Option configures a handler or a client. The same options serve both
// sides; each one's comment says where it applies, and an option that does
// not apply to a side is ignored there.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is what the options build; handlers and clients copy it once at
// construction, so it is never shared mutably.
type config struct {
	codecs       []codec.Codec
	preferred    codec.Codec
	interceptors []Interceptor
	onConnect    []func(context.Context, *ConnInfo)
	onClose      []func(context.Context, *ConnInfo, CloseInfo)
	accept       websocket.AcceptOptions
	dial         websocket.DialOptions
	compression  *websocket.DeflateOptions
	sseStream    sse.StreamOptions
	sseReplay    sse.Store // WithSSEReplay's, kept apart so that a later WithSSEOptions does not drop it
	sseClient    sse.ClientOptions
	tracker      *Tracker
	reconnect    *ReconnectPolicy
	// detachSessions: WithDetachedSessions.
	detachSessions bool
}

// newConfig applies opts. It panics on a nil codec given to WithCodecs,
// a configuration mistake, when the handler or client is built, as
// WithCompression's out-of-range options do: otherwise every call would
// fail (a handler's negotiation would panic on each request, and its
// client see only a cut connection).
func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	for i, k := range c.codecs {
		if k == nil {
			panic(fmt.Sprintf("wsrpc: WithCodecs: codec %d is nil", i))
		}
	}
	if len(c.codecs) == 0 {
		c.codecs = []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack}
	}
	if c.sseReplay != nil {
		c.sseStream.Replay = c.sseReplay
	}
	return c
}

// checkHandler panics on what is a configuration mistake on a handler
// only: a preferred codec (WithPreferredCodec) that the handler does not
// accept. The handler would serve it to clients that offer no
// subprotocol while refusing those that offer it. Codecs are matched by
// name, as negotiation matches subprotocols.
func (c *config) checkHandler() {
	if c.preferred == nil {
		return
	}
	for _, k := range c.codecs {
		if k.Name() == c.preferred.Name() {
			// The accepted instance, with its options (a JSON codec's
			// RejectUnknown…), as clients that name it get.
			c.preferred = k
			return
		}
	}
	panic(fmt.Sprintf("wsrpc: WithPreferredCodec(%s): the handler does not accept it (WithCodecs)", c.preferred.Name()))
}

// offered is the client's subprotocol offer: the preferred codec first,
// then the others in the order given.
func (c *config) offered() []codec.Codec {
	out := make([]codec.Codec, 0, len(c.codecs)+1)
	if c.preferred != nil {
		out = append(out, c.preferred)
	}
	// Each codec once, in order of preference: a subprotocol offered
	// twice breaks RFC 6455 §4.1, and websocket.Dial refuses it
	// (WithCodecs(codec.JSON, codec.JSON) would fail every call).
	for _, k := range c.codecs {
		if !slices.ContainsFunc(out, func(o codec.Codec) bool { return o.Name() == k.Name() }) {
			out = append(out, k)
		}
	}
	return out
}

// extensions builds the extension set for WithCompression, or returns the
// one given in the pass-through options.
func (c *config) extensions(given *websocket.ExtensionSet) (*websocket.ExtensionSet, error) {
	if c.compression == nil || given != nil {
		return given, nil
	}
	return websocket.NewExtensionSet(websocket.PerMessageDeflate(c.compression))
}

// WithCodecs sets the codecs. On a handler they are the codecs accepted
// (any of their subprotocols may be selected); on a client, the codecs
// offered, most preferred first. Default: codec.Proto, codec.JSON,
// codec.Msgpack, in that order; WithCodecs() with no codec keeps the
// default. A nil codec among them is a configuration mistake: building
// the handler or client panics. Each codec is identified on the wire by the
// subprotocol "wsrpc.<name>" (codec.Subprotocol). The JSON codec among
// them (the first named "json"; on a client, WithPreferredCodec's if it
// is one) also reads and writes SSE requests and event data, so that its
// codec.JSONOptions hold on SSE as on WebSocket; without one, SSE uses
// codec.JSON.
func WithCodecs(codecs ...codec.Codec) Option {
	return optionFunc(func(c *config) { c.codecs = append([]codec.Codec(nil), codecs...) })
}

// WithPreferredCodec puts codec first. On a client it is offered first (and
// so chosen by a wsrpc server that accepts it), whether or not WithCodecs
// names it. On a handler it is the codec used when the client offers no
// subprotocol at all (default: JSON if the handler accepts it, else its
// first codec, so a plain WebSocket client without a subprotocol talks
// JSON); it must be one the handler accepts (a codec of the same name in
// WithCodecs, or the default list): the option does not add it, and
// building a handler whose preferred codec it does not accept panics, a
// configuration mistake that would serve the codec to clients that offer
// nothing while refusing those that offer it. A nil codec is no
// preference.
func WithPreferredCodec(codec codec.Codec) Option {
	return optionFunc(func(c *config) { c.preferred = codec })
}

// WithInterceptors adds interceptors; the first given is the outermost.
// Handler and client.
func WithInterceptors(ics ...Interceptor) Option {
	return optionFunc(func(c *config) { c.interceptors = append(c.interceptors, ics...) })
}

// WithOnConnect adds a hook called once a stream is open (after the
// upgrade, before the handler runs; on a client, after the dial), like
// Ktor's onConnect. Hooks run in the order added, on the stream's
// goroutine, and should return quickly. Handler and client.
func WithOnConnect(fn func(ctx context.Context, info *ConnInfo)) Option {
	return optionFunc(func(c *config) { c.onConnect = append(c.onConnect, fn) })
}

// WithOnClose adds a hook called once when a stream that was open has
// ended, with the close code, reason and error (Ktor's onClose and onError
// in one: CloseInfo.Err is nil for a clean end). On a handler it runs
// after the handler returned and the close handshake is done; on a client,
// when the stream is closed or a receive returns the end, and also when
// the call's context ends (then on a goroutine of its own, with
// canceled's or deadline_exceeded's close code unless the call had ended
// otherwise before), whichever comes first, over WebSocket and SSE alike:
// never before the same connection's OnConnect hooks have returned, even
// for a call whose context had ended as it connected. Handler and
// client.
func WithOnClose(fn func(ctx context.Context, info *ConnInfo, ci CloseInfo)) Option {
	return optionFunc(func(c *config) { c.onClose = append(c.onClose, fn) })
}

// WithAcceptOptions passes options to websocket.Accept: origin patterns,
// limits (MaxMessageSize…), ping interval and timeouts, extensions.
// Subprotocols is ignored: the codecs decide it; so is Raw: a typed call
// reads and writes whole messages, which a raw connection refuses. The
// struct is copied. Handler only. Default: the runtime's defaults.
func WithAcceptOptions(opts *websocket.AcceptOptions) Option {
	return optionFunc(func(c *config) {
		if opts != nil {
			c.accept = *opts
			c.accept.Raw = false
		}
	})
}

// WithDialOptions passes options to websocket.Dial: header, limits, ping
// interval, timeouts, extensions, TLS and proxy. Subprotocols is ignored:
// the codecs decide it; so is Raw (see WithAcceptOptions). HTTPClient
// defaults to the client's *http.Client. The struct is copied. Client
// only. Default: the runtime's defaults.
func WithDialOptions(opts *websocket.DialOptions) Option {
	return optionFunc(func(c *config) {
		if opts != nil {
			c.dial = *opts
			c.dial.Raw = false
		}
	})
}

// WithCompression negotiates permessage-deflate (RFC 7692) with opts (nil
// for its defaults), unless the accept or dial options already set
// Extensions. It costs CPU and, with context takeover, a compressor's
// window per connection; it pays off for large or repetitive messages.
// Handler and client. Default: no compression.
func WithCompression(opts *websocket.DeflateOptions) Option {
	if opts == nil {
		// Here, not in the closure: an Option may be applied by many
		// goroutines at once (one shared options slice, clients made
		// concurrently), and the closure must not write what it captured.
		opts = &websocket.DeflateOptions{}
	}
	return optionFunc(func(c *config) { c.compression = opts })
}

// WithDetachedSessions runs each WebSocket session on a goroutine of its
// own once the handshake has succeeded, and returns from ServeHTTP then,
// rather than running the session within ServeHTTP. net/http's
// goroutine, with its 8 KiB stack that ServeHTTP's frames keep from
// shrinking, and the per-request state it keeps reachable go; the
// session's goroutine starts small and the runtime shrinks its stack
// while the session is idle. Idle cost per session, 5,000 sessions
// (BenchmarkIdleSession, server RSS): bidirectional 16.7–16.8 KiB →
// 11.4–11.6 KiB, server-streaming 19.6 → 14.0–14.2, client-streaming
// 16.5 → 11.2–11.5. Worth it for many long, mostly idle sessions (devices,
// notifications). It changes what the server sees of a session:
//
//   - After the upgrade the session no longer ends when r.Context()
//     does, so not when the http.Server's BaseContext is cancelled: end
//     sessions with Shutdown (WithTracker), or an interceptor's
//     context.WithCancelCause. Until the upgrade r.Context() still ends
//     the handshake (a client gone while an interceptor checks it).
//   - HTTP middleware around the Handler sees only the handshake:
//     ServeHTTP returns before the session has run, so a middleware
//     that limits concurrent requests, times them or counts them in
//     progress no longer covers the session. Use OnConnect and OnClose
//     or a stream interceptor for those.
//   - An interceptor that builds on hs.Request.Context() rather than
//     the ctx it is given gets a context net/http cancels as ServeHTTP
//     returns, right after the upgrade. The ctx it is given, which
//     carries r.Context()'s values, is the session's.
//   - A panic in the session, after ending it with internal (4013) and
//     running OnClose, is recovered and logged by the Handler as
//     net/http logs a handler's ("http: panic serving …" and the stack,
//     to the http.Server's ErrorLog if it has one, else the log
//     package; not http.ErrAbortHandler), and never reaches net/http
//     or a recovering middleware around the Handler.
//
// SSE methods are not affected: a response is served within ServeHTTP.
// Handler only. Default: off; a session runs within ServeHTTP, ends
// with r.Context() at any time, and its panic goes on to net/http.
func WithDetachedSessions() Option {
	return optionFunc(func(c *config) { c.detachSessions = true })
}

// WithSSEOptions passes options to sse.NewStream for SSE handlers:
// heartbeat, retry, write timeout, replay store. The struct is copied.
// A WithSSEReplay store takes the place of its Replay, whichever option
// comes first. Handler only.
func WithSSEOptions(opts *sse.StreamOptions) Option {
	return optionFunc(func(c *config) {
		if opts != nil {
			c.sseStream = *opts
		}
	})
}

// WithSSEReplay sets the store an SSE handler replays from when a client
// reconnects with Last-Event-ID (see sse.StreamOptions.Replay and
// ServerStream.SendEvent). It holds in any order with WithSSEOptions,
// whose Replay it replaces. A call whose store fails as the client
// resumes (Since with an error other than sse.ErrUnknownID) gets a stream
// that ends at once with CodeUnavailable (a wsrpc.error event, no id),
// which typed clients and browsers reconnect after with their
// Last-Event-ID, where a 503 would end a browser's EventSource for good;
// the handler does not run, and the handshake interceptors' next returns
// that error, wrapping sse.ErrReplayStore. This holds for a store set
// with WithSSEOptions too. Handler only. Default: no replay.
func WithSSEReplay(store sse.Store) Option {
	return optionFunc(func(c *config) { c.sseReplay = store })
}

// WithSSEClientOptions passes options to the SSE client: reconnection
// time and attempts, Last-Event-ID, header, event size bound, and the
// wait for each response header (HandshakeTimeout, 30 s by default: a
// server that never answers is CodeUnavailable, which ends a call's
// first request and is retried on a reconnection). HTTPClient defaults
// to the client's *http.Client. The struct is copied. Its
// OnReconnect is runtime/sse's own and gets runtime/sse's errors (a
// network error, an *sse.StatusError, io.EOF for a 204), not the
// *Error that ReconnectPolicy.OnReconnect gets; Receive's error, once
// the stream ends, is translated. Its RetryRefusal is replaced by the
// typed client's rule (a reconnection's refusal is retried when its code,
// Wsrpc-Code's or the status's, is unavailable or deadline_exceeded), on
// which the call's codes depend. Client only. Default: the runtime's
// defaults (reconnect like a browser).
func WithSSEClientOptions(opts *sse.ClientOptions) Option {
	return optionFunc(func(c *config) {
		if opts != nil {
			c.sseClient = *opts
		}
	})
}
