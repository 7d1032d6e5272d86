package websocket

import (
	"fmt"
	"io"
	"strings"
)

// Param is one extension parameter (RFC 6455 §9.1). Value is "" for a
// parameter without a value: the grammar allows no empty values.
type Param struct {
	Name  string
	Value string
}

// Extension is an extension factory (RFC 6455 §9): configured once,
// installed in an ExtensionSet, and asked to negotiate on every handshake.
// Each negotiated connection gets a fresh ExtensionSession.
//
// Concurrency: an Extension is shared by all connections and must be safe
// for concurrent use; its sessions are not shared.
type Extension interface {
	// Name is the extension token sent in Sec-WebSocket-Extensions.
	Name() string
	// RSV is the set of RSV bits (RSV1|RSV2|RSV3) the extension owns. Its
	// sessions may set or clear these bits and no others: a message whose
	// WriteMessage returns other bits, and a frame whose OutgoingFrame
	// changes other bits, is refused with an error naming the extension.
	RSV() byte
	// ClientOffers returns what a client offers, most preferred first; each
	// is one element of Sec-WebSocket-Extensions (§9.1 allows a client to
	// offer the same extension several times with different parameters).
	ClientOffers() [][]Param
	// ServerNegotiate is the server's choice among the client's offers of
	// this extension, in the client's order. It returns the parameters to
	// answer with and the session, or ok false to decline all of them.
	ServerNegotiate(offers [][]Param) (answer []Param, s ExtensionSession, ok bool)
	// ClientAccept checks the server's answer against what was offered and
	// returns the session. An error fails the handshake.
	ClientAccept(answer []Param) (ExtensionSession, error)
}

// ExtensionSession is one connection's instance of an extension. It
// implements MessageTransformer, FrameTransformer, or both. It is never
// closed: when the connection ends (a write may still be inside a
// transformer while another goroutine closes it), or when a handshake
// fails after negotiating it, the session is dropped and its memory goes
// with it. A session must therefore hold no resource that needs
// releasing; code that tracks connections does so where it owns the Conn.
type ExtensionSession any

// MessageTransformer transforms data messages as streams (for example
// compression). Control frames never reach it. The RSV bits of a message
// transformer mark the first frame of a message only; they are a protocol
// error on control and continuation frames.
type MessageTransformer interface {
	// WriteMessage starts an outgoing data message. It returns the writer
	// the message is written into, which writes its output to dst and closes
	// dst when it is closed, and the RSV bits for the message's first frame.
	// size is the message size when known, or -1.
	//
	// rsv must be among the bits the extension owns (Extension.RSV): a bit
	// owned by another extension would make the peer decode the message
	// with that one (a deflate stream that is not one: 1007), a bit nobody
	// owns is a protocol error to it (RFC 6455 §5.2: 1002). Other bits fail
	// the message with an error naming the extension and the bits, before
	// anything of it is sent; the connection stays usable.
	//
	// The writer is handed the application's own bytes (Write's p, a
	// PreparedMessage's data shared by every connection it is written to):
	// as io.Writer requires, it must not modify them, not even temporarily,
	// nor keep them after its Write returns.
	WriteMessage(dst io.WriteCloser, typ MessageType, size int) (w io.WriteCloser, rsv byte, err error)
	// ReadMessage wraps the payload of an incoming data message whose first
	// frame carried rsv: that frame's whole RSV set, as the frame
	// transformers (IncomingFrame) left it, bits other extensions own
	// included, so a transformer tests its own bits (rsv&RSV1) rather than
	// compare the set. It returns src itself when the message is not
	// transformed. Errors from the returned reader fail the connection:
	// one wrapping ErrProtocol with 1002 (StatusProtocolError), any other
	// with 1007 (StatusInvalidFramePayload).
	ReadMessage(src io.Reader, rsv byte) io.Reader
}

// FrameTransformer sees every frame, control frames included: outgoing ones
// whole, before they are written, and the headers of incoming ones.
type FrameTransformer interface {
	// OutgoingFrame may change the frame before it is written: its RSV bits
	// among those the extension owns, its payload, and its opcode within
	// its kind (text for binary and back; one control opcode for another;
	// a continuation stays one). FIN is not its to change: fragmentation is
	// the writer's, and a control frame is never fragmented. A control
	// frame's payload must stay within 125 bytes (RFC 6455 §5.5). A frame
	// that breaks these rules is not written: the call that wrote it
	// (Write, Close, Ping, WriteFrame…) fails with an error naming the
	// extension. A refused keepalive ping, which no call waits for,
	// fails the connection with 1011 and that error.
	//
	// OutgoingFrame must not modify the bytes of f.Payload, not even
	// temporarily; to change the payload, set f.Payload to a new slice.
	// They are the caller's: Write's p, or a PreparedMessage's data, which
	// several connections may be writing at once. They are not copied
	// first, as that would cost every write.
	OutgoingFrame(f *Frame) error
	// IncomingFrame sees an incoming frame's header, in the reverse of
	// the order outgoing frames take (Conn.Extensions), before the
	// payload is read. Only its changes to RSV are kept (it clears its
	// own bits, say); FIN, the opcode and the length are as the peer sent
	// them. It cannot see or change the payload, which reaches the
	// application as the peer sent it: an extension that transforms
	// incoming payloads does so as a MessageTransformer (ReadMessage), and
	// control frames' payloads are never transformed on the way in. An
	// error fails the connection with 1002.
	IncomingFrame(h *FrameHeader) error
}

// ExtensionSet is a validated, ordered list of extensions. Outgoing data
// passes through them in order (the first extension sees the application's
// data first), incoming data in reverse order, so each undoes its own
// transformation. The order that counts is the one of the server's response
// (RFC 6455 §9.1): a server answers in installation order; a client follows
// the order of the server's answer.
type ExtensionSet struct {
	list []Extension
	rsv  byte
}

// NewExtensionSet checks that the extensions can be installed together: no
// nil one, a valid token each, no name twice, no RSV bit claimed twice, and
// only RSV bits. These are configuration mistakes, reported here rather
// than when a connection is made.
func NewExtensionSet(exts ...Extension) (*ExtensionSet, error) {
	s := &ExtensionSet{}
	seen := map[string]bool{}
	var owned []byte // owned[i]: the bits s.list[i] claimed
	for i, e := range exts {
		if e == nil {
			return nil, fmt.Errorf("websocket: NewExtensionSet: exts[%d] is nil", i)
		}
		name := e.Name()
		if !isToken(name) {
			return nil, fmt.Errorf("websocket: extension name %q is not a token", name)
		}
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("websocket: extension %q installed twice", name)
		}
		seen[strings.ToLower(name)] = true
		bits := e.RSV()
		if bits&^rsvMask != 0 {
			return nil, fmt.Errorf("websocket: extension %q claims bits %#x outside RSV1-3", name, bits)
		}
		for j, o := range s.list {
			if both := bits & owned[j]; both != 0 {
				return nil, fmt.Errorf("websocket: extension %q claims %s, already owned by extension %q", name, rsvNames(both), o.Name())
			}
		}
		s.rsv |= bits
		s.list = append(s.list, e)
		owned = append(owned, bits)
	}
	return s, nil
}

// MustExtensionSet is NewExtensionSet for package-level variables: it
// panics on a configuration mistake.
func MustExtensionSet(exts ...Extension) *ExtensionSet {
	s, err := NewExtensionSet(exts...)
	if err != nil {
		panic(err)
	}
	return s
}

// NegotiatedExtension is an extension in use on a connection.
type NegotiatedExtension struct {
	Name    string
	Params  []Param
	Session ExtensionSession
}

// negotiated is a connection's view of one extension.
type negotiated struct {
	name    string
	params  []Param
	rsv     byte
	session ExtensionSession
	message MessageTransformer
	frame   FrameTransformer
}

func newNegotiated(e Extension, params []Param, s ExtensionSession) *negotiated {
	n := &negotiated{name: e.Name(), params: params, rsv: e.RSV(), session: s}
	n.message, _ = s.(MessageTransformer)
	n.frame, _ = s.(FrameTransformer)
	return n
}

// checkMessageRSV refuses RSV bits a session's WriteMessage returned that
// its extension does not own (see MessageTransformer).
func (n *negotiated) checkMessageRSV(rsv byte) error {
	if bad := rsv &^ n.rsv; bad != 0 {
		return fmt.Errorf("websocket: extension %s: WriteMessage returned RSV bits %s, which it does not own (it owns %s)", n.name, rsvNames(bad), rsvNames(n.rsv))
	}
	return nil
}

// checkOutgoing checks what n's frame transformer made of an outgoing
// frame, given the header it was handed (see FrameTransformer). The peer
// would fail the connection for most of what it refuses (RFC 6455 §5.2,
// §5.4, §5.5: 1002), and the rest breaks the sequence of frames our
// writer keeps (a FIN cleared leaves its message open).
func (n *negotiated) checkOutgoing(was FrameHeader, f *Frame) error {
	switch {
	case f.Fin != was.Fin:
		return fmt.Errorf("websocket: extension %s: OutgoingFrame changed FIN of a %v frame", n.name, was.Opcode)
	case f.Opcode != was.Opcode && (opKind(f.Opcode) == 0 || opKind(f.Opcode) != opKind(was.Opcode)):
		return fmt.Errorf("websocket: extension %s: OutgoingFrame changed a %v frame into a %v frame", n.name, was.Opcode, f.Opcode)
	case f.Opcode.IsControl() && len(f.Payload) > maxControlPayload:
		// §5.5: a control frame carries at most 125 bytes.
		return fmt.Errorf("websocket: extension %s: OutgoingFrame made a %v frame payload of %d bytes, more than 125", n.name, f.Opcode, len(f.Payload))
	}
	if bad := (f.RSV ^ was.RSV) &^ n.rsv; bad != 0 {
		return fmt.Errorf("websocket: extension %s: OutgoingFrame changed RSV bits %s, which it does not own (it owns %s)", n.name, rsvNames(bad), rsvNames(n.rsv))
	}
	return nil
}

// opKind groups the opcodes a frame transformer may swap for one another:
// 1 a message's first frame, 2 a control frame, 0 none (a continuation,
// a reserved opcode).
func opKind(op Opcode) int {
	switch op {
	case OpText, OpBinary:
		return 1
	case OpClose, OpPing, OpPong:
		return 2
	}
	return 0
}

// rsvNames spells RSV bits out for an error or a close reason
// ("RSV1|RSV3"), as they sit in the frame (RSV1 0x40…); anything outside
// RSV1-3 shows as a number. Every message naming RSV bits uses it.
func rsvNames(b byte) string {
	var names []string
	for _, r := range []struct {
		bit  byte
		name string
	}{{RSV1, "RSV1"}, {RSV2, "RSV2"}, {RSV3, "RSV3"}} {
		if b&r.bit != 0 {
			names = append(names, r.name)
		}
	}
	if other := b &^ rsvMask; other != 0 {
		names = append(names, fmt.Sprintf("%#x", other))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

func (n *negotiated) wrapReader(src io.Reader, rsv byte) io.Reader {
	if n.message == nil {
		return src
	}
	return n.message.ReadMessage(src, rsv)
}

// Extensions returns the negotiated extensions in the order they apply to
// outgoing data, the order of the server's answer (RFC 6455 §9.1): a
// server's installation order, while a client follows the answer, which
// need not be its own installation order.
func (c *Conn) Extensions() []NegotiatedExtension {
	exts := c.negExts()
	out := make([]NegotiatedExtension, len(exts))
	for i, e := range exts {
		out[i] = NegotiatedExtension{Name: e.name, Params: e.params, Session: e.session}
	}
	return out
}

// Extension looks up a negotiated extension by token (case-insensitive).
func (c *Conn) Extension(name string) (NegotiatedExtension, bool) {
	for _, e := range c.negExts() {
		if strings.EqualFold(e.name, name) {
			return NegotiatedExtension{Name: e.name, Params: e.params, Session: e.session}, true
		}
	}
	return NegotiatedExtension{}, false
}

// transformOutgoing runs frame transformers over an outgoing frame, and
// checks what each made of it (checkOutgoing): nothing is written of a
// frame one of them broke.
func (c *Conn) transformOutgoing(fin *bool, op *Opcode, rsv *byte, p *[]byte) error {
	exts := c.negExts()
	if len(exts) == 0 {
		return nil
	}
	var f *Frame
	for _, e := range exts {
		if e.frame == nil {
			continue
		}
		if f == nil {
			f = &Frame{FrameHeader: FrameHeader{Fin: *fin, RSV: *rsv, Opcode: *op}, Payload: *p}
		}
		was := f.FrameHeader
		if err := e.frame.OutgoingFrame(f); err != nil {
			return fmt.Errorf("websocket: extension %s: %w", e.name, err)
		}
		if err := e.checkOutgoing(was, f); err != nil {
			return err
		}
	}
	if f != nil {
		*fin, *op, *rsv, *p = f.Fin, f.Opcode, f.RSV, f.Payload
	}
	return nil
}

// transformIncoming runs frame transformers over an incoming header, in
// the reverse of the answer's order (negExts).
func (c *Conn) transformIncoming() error {
	var fh *FrameHeader
	exts := c.negExts()
	for i := len(exts) - 1; i >= 0; i-- {
		e := exts[i]
		if e.frame == nil {
			continue
		}
		if fh == nil {
			fh = &FrameHeader{Fin: c.rh.fin, RSV: c.rh.rsv, Opcode: c.rh.opcode, Length: c.rh.length}
		}
		if err := e.frame.IncomingFrame(fh); err != nil {
			return protocolErr("extension %s: %v", e.name, err)
		}
	}
	if fh != nil {
		c.rh.rsv = fh.RSV
	}
	return nil
}
