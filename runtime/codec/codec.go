package codec

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
)

// Codec turns protobuf messages into bytes and back.
//
// Implementations must be safe for concurrent use by many goroutines; the
// built-in codecs are immutable values.
type Codec interface {
	// Name identifies the codec in the registry and, prefixed with
	// SubprotocolPrefix, in the WebSocket subprotocol ("proto" ->
	// "wsrpc.proto"). It must be an RFC 7230 token.
	Name() string

	// Binary reports whether encoded messages are arbitrary bytes, carried in
	// WebSocket binary frames (opcode 0x2, RFC 6455 section 5.6). False means
	// the encoding is always valid UTF-8 without newlines, so it rides text
	// frames (opcode 0x1) and fits one SSE data: line, and never empty: an
	// empty text message is wsrpc's end-of-stream marker, and an SSE event
	// without data is not dispatched (WHATWG HTML section 9.2.6), so the
	// wsrpc layer refuses to send an empty text encoding (CodeInternal).
	// protojson's encoding of an empty message is "{}".
	Binary() bool

	// Marshal returns the encoding of m in a new slice.
	Marshal(m proto.Message) ([]byte, error)

	// MarshalAppend appends the encoding of m to dst and returns the
	// extended slice, so hot paths can reuse one buffer across messages. On
	// error the returned slice is dst (or an extension of it) and must not
	// be sent.
	MarshalAppend(dst []byte, m proto.Message) ([]byte, error)

	// Unmarshal resets m and decodes data into it. data is not retained.
	Unmarshal(data []byte, m proto.Message) error
}

// Names of the built-in codecs.
const (
	NameProto   = "proto"
	NameJSON    = "json"
	NameMsgpack = "msgpack"
)

// SubprotocolPrefix turns a codec name into the WebSocket subprotocol
// (RFC 6455 section 1.9, Sec-WebSocket-Protocol) the wsrpc layer offers and
// accepts for it.
const SubprotocolPrefix = "wsrpc."

// Subprotocols of the built-in codecs, as sent in Sec-WebSocket-Protocol.
// A client offers them in order of preference and the server selects the
// first one it supports; SSE uses JSON unless told otherwise.
const (
	SubprotocolProto   = SubprotocolPrefix + NameProto   // "wsrpc.proto": protobuf binary, binary frames
	SubprotocolJSON    = SubprotocolPrefix + NameJSON    // "wsrpc.json": protojson, text frames
	SubprotocolMsgpack = SubprotocolPrefix + NameMsgpack // "wsrpc.msgpack": MessagePack, binary frames
)

// The built-in codecs with their default options, registered under their
// names at init. Do not reassign them: the wsrpc layer and the runtime
// packages read these variables when they use them (the default codec
// list, the JSON codec of SSE requests and events, a hub's shortcut for
// subscribers whose codec is Proto), while Lookup and BySubprotocol go on
// returning the codec registered at init, so the two would disagree. For
// other options, build a codec (NewJSON, NewProto, NewMsgpack) and pass
// it where codecs are given (wsrpc.WithCodecs).
var (
	Proto   Codec = NewProto(nil)
	JSON    Codec = NewJSON(nil)
	Msgpack Codec = NewMsgpack(nil)
)

// registry maps codec names to codecs. mu guards both fields.
var registry struct {
	mu     sync.RWMutex
	byName map[string]Codec
	order  []string
}

func init() {
	registry.byName = make(map[string]Codec)
	for _, c := range []Codec{Proto, JSON, Msgpack} {
		if err := Register(c); err != nil {
			panic(err) // unreachable: the built-in names are valid and distinct
		}
	}
}

// Register adds c to the registry under c.Name(), so Lookup and
// BySubprotocol find it and Names lists it. It fails with ErrInvalidName for
// a name that is not an RFC 7230 token and with ErrDuplicate for a name
// already taken (the built-ins cannot be replaced; pass a custom codec to
// the wsrpc layer directly instead). Typically called from an init function.
func Register(c Codec) error {
	if c == nil {
		return fmt.Errorf("%w: nil codec", ErrInvalidName)
	}
	name := c.Name()
	if !isToken(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if _, ok := registry.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	registry.byName[name] = c
	registry.order = append(registry.order, name)
	return nil
}

// Lookup returns the codec registered under name ("proto", "json",
// "msgpack", or a name passed to Register).
func Lookup(name string) (Codec, bool) {
	registry.mu.RLock()
	c, ok := registry.byName[name]
	registry.mu.RUnlock()
	return c, ok
}

// BySubprotocol returns the codec for a WebSocket subprotocol such as
// "wsrpc.json". Matching is exact, as RFC 6455 section 4.1 compares
// subprotocols case-sensitively.
func BySubprotocol(subprotocol string) (Codec, bool) {
	name, ok := strings.CutPrefix(subprotocol, SubprotocolPrefix)
	if !ok {
		return nil, false
	}
	return Lookup(name)
}

// Subprotocol returns the WebSocket subprotocol for c: SubprotocolPrefix
// followed by c.Name().
func Subprotocol(c Codec) string { return SubprotocolPrefix + c.Name() }

// Names returns the registered codec names in registration order: the
// built-ins "proto", "json", "msgpack", then any added with Register. The
// slice is a copy.
func Names() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return append([]string(nil), registry.order...)
}

// isToken reports whether s is a non-empty RFC 7230 section 3.2.6 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
