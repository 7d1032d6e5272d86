package websocket

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/wsrpc/wsrpc/runtime/websocket/internal/flatemsg"
)

// DeflateOptions configures permessage-deflate (RFC 7692). The zero value
// (or nil) is context takeover in both directions, 32 KiB windows, level 1,
// and no compression for messages under 128 bytes.
//
// Level 1 compresses with an encoder of our own built for streams of
// messages (runtime/websocket/internal/flatemsg): it keeps only its window
// and a 4 KiB hash table, so the state of many connections stays in
// cache, and it picks per block whichever of dynamic Huffman codes, the
// fixed codes or a stored block is shortest. Levels 2-9 use
// klauspost/compress, which searches harder at several times the memory.
//
// Memory per connection, by mode (BenchmarkDeflateConnMemory; figures in
// docs/websocket.md):
//   - sending with context takeover keeps one compressor for the life of
//     the connection: 52 KiB at level 1 with a 32 KiB window (less with
//     a smaller one), about 850 KiB at levels 2-9; without it,
//     compressors come from a pool for the length of one message and an
//     idle connection keeps none.
//   - receiving with context takeover keeps the peer's window, 2^bits bytes
//     (32 KiB by default, less when server_max_window_bits or
//     client_max_window_bits lowered it), which the decompressor (also
//     flatemsg's, at every level) decodes into in place; the tables for a
//     message's Huffman codes come from a pool for the length of the
//     message. Without it, the window too is pooled.
//
// So a server with many idle connections and little memory to spare per
// connection wants ServerNoContextTakeover (and ClientNoContextTakeover
// for the receive window); a connection carrying streams of similar
// messages compresses far better with context takeover.
type DeflateOptions struct {
	// Level is the compression level, 1 (fastest, and the least memory)
	// to 9 (smallest); 0 means 1.
	Level int
	// Threshold: messages written with Write that are shorter than this go
	// uncompressed (compressing tiny messages costs more than it saves).
	// 0 means 128; a negative value compresses everything.
	Threshold int
	// ServerNoContextTakeover: the server resets its compressor after each
	// message. A server answers with it; a client asks for it.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the client resets its compressor after each
	// message. A server asks for it; a client announces it.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits (8-15, 0 for 15) limits the server's LZ77 window.
	// A server uses it as the most it will use; a client asks for it, and
	// Dial fails unless the answer carries server_max_window_bits no
	// larger (RFC 7692 §7.1.2.1): gorilla/websocket servers leave it out.
	ServerMaxWindowBits int
	// ClientMaxWindowBits (8-15, 0 for 15) limits the client's LZ77 window.
	// A server asks for it when the client allows; a client announces it.
	ClientMaxWindowBits int
}

const (
	deflateName        = "permessage-deflate"
	defaultThreshold   = 128
	minWindowBits      = 8
	maxWindowBits      = 15
	paramServerNoCtx   = "server_no_context_takeover"
	paramClientNoCtx   = "client_no_context_takeover"
	paramServerMaxBits = "server_max_window_bits"
	paramClientMaxBits = "client_max_window_bits"
)

// PerMessageDeflate returns the permessage-deflate extension, which owns
// RSV1. Install it with NewExtensionSet on either side. It panics on
// out-of-range options (a configuration mistake).
func PerMessageDeflate(opts *DeflateOptions) Extension {
	var o DeflateOptions
	if opts != nil {
		o = *opts
	}
	if o.Level == 0 {
		o.Level = 1
	}
	if o.Level < 1 || o.Level > 9 {
		panic(fmt.Sprintf("websocket: deflate level %d outside 1-9", o.Level))
	}
	if o.Threshold == 0 {
		o.Threshold = defaultThreshold
	}
	for _, b := range []int{o.ServerMaxWindowBits, o.ClientMaxWindowBits} {
		if b != 0 && (b < minWindowBits || b > maxWindowBits) {
			panic(fmt.Sprintf("websocket: deflate window bits %d outside 8-15", b))
		}
	}
	return &deflateExt{o: o}
}

type deflateExt struct{ o DeflateOptions }

func (e *deflateExt) Name() string { return deflateName }
func (e *deflateExt) RSV() byte    { return RSV1 }

// deflateParams is a parsed offer or answer. Window bits are 0 when absent
// and -1 for client_max_window_bits without a value.
type deflateParams struct {
	serverNoCtx, clientNoCtx bool
	serverBits, clientBits   int
}

// parseDeflateParams applies RFC 7692 §7: an unknown parameter, a
// duplicate, a value where none is allowed or an out-of-range window size
// makes the whole element invalid.
func parseDeflateParams(ps []Param) (deflateParams, error) {
	var d deflateParams
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name] {
			return d, fmt.Errorf("duplicate parameter %s", p.Name)
		}
		seen[p.Name] = true
		switch p.Name {
		case paramServerNoCtx, paramClientNoCtx:
			if p.Value != "" {
				return d, fmt.Errorf("parameter %s takes no value", p.Name)
			}
			if p.Name == paramServerNoCtx {
				d.serverNoCtx = true
			} else {
				d.clientNoCtx = true
			}
		case paramServerMaxBits, paramClientMaxBits:
			bits := -1
			if p.Value != "" {
				b, err := parseWindowBits(p.Value)
				if err != nil {
					return d, fmt.Errorf("parameter %s: %w", p.Name, err)
				}
				bits = b
			} else if p.Name == paramServerMaxBits {
				// §7.1.2.1: server_max_window_bits always has a value.
				return d, errors.New("parameter server_max_window_bits needs a value")
			}
			if p.Name == paramServerMaxBits {
				d.serverBits = bits
			} else {
				d.clientBits = bits
			}
		default:
			return d, fmt.Errorf("unknown parameter %s", p.Name)
		}
	}
	return d, nil
}

// parseWindowBits accepts "8" to "15" exactly (§7.1.2: no leading zeros).
func parseWindowBits(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < minWindowBits || n > maxWindowBits || strconv.Itoa(n) != v {
		return 0, fmt.Errorf("window bits %q not in 8-15", v)
	}
	return n, nil
}

func (e *deflateExt) ClientOffers() [][]Param {
	o := e.o
	var ps []Param
	if o.ServerNoContextTakeover {
		ps = append(ps, Param{Name: paramServerNoCtx})
	}
	if o.ClientNoContextTakeover {
		ps = append(ps, Param{Name: paramClientNoCtx})
	}
	if o.ServerMaxWindowBits != 0 {
		ps = append(ps, Param{Name: paramServerMaxBits, Value: strconv.Itoa(o.ServerMaxWindowBits)})
	}
	// Always allow the server to limit our window: we can comply.
	cb := Param{Name: paramClientMaxBits}
	if o.ClientMaxWindowBits != 0 {
		cb.Value = strconv.Itoa(o.ClientMaxWindowBits)
	}
	ps = append(ps, cb)
	return [][]Param{ps}
}

// ServerNegotiate accepts the first valid offer (RFC 7692 §7.1).
func (e *deflateExt) ServerNegotiate(offers [][]Param) ([]Param, ExtensionSession, bool) {
	o := e.o
	for _, offer := range offers {
		p, err := parseDeflateParams(offer)
		if err != nil {
			continue // decline this offer; a later one may be acceptable
		}
		var answer []Param
		writeNoCtx := p.serverNoCtx || o.ServerNoContextTakeover
		if writeNoCtx {
			answer = append(answer, Param{Name: paramServerNoCtx})
		}
		// §7.1.1.2: a client offering client_no_context_takeover promises
		// to reset its context even if the answer omits it, but peers do
		// not all keep that promise (npm ws keeps its context unless the
		// answer says so), so reading without the client's context is
		// safe only when the answer says so too.
		readNoCtx := p.clientNoCtx || o.ClientNoContextTakeover
		if readNoCtx {
			answer = append(answer, Param{Name: paramClientNoCtx})
		}
		// §7.1.2.1: our window is at most what the client asked for, and
		// the answer echoes it when the client asked.
		writeBits := maxWindowBits
		if o.ServerMaxWindowBits != 0 {
			writeBits = o.ServerMaxWindowBits
		}
		if p.serverBits > 0 && p.serverBits < writeBits {
			writeBits = p.serverBits
		}
		if p.serverBits > 0 || writeBits < maxWindowBits {
			answer = append(answer, Param{Name: paramServerMaxBits, Value: strconv.Itoa(writeBits)})
		}
		// §7.1.2.2: client_max_window_bits may be answered only if offered,
		// with a value no larger than the offered one.
		readBits := maxWindowBits
		if p.clientBits > 0 {
			readBits = p.clientBits
		}
		if p.clientBits != 0 && o.ClientMaxWindowBits != 0 && o.ClientMaxWindowBits < readBits {
			readBits = o.ClientMaxWindowBits
		}
		if p.clientBits != 0 && (readBits < maxWindowBits || p.clientBits > 0) {
			answer = append(answer, Param{Name: paramClientMaxBits, Value: strconv.Itoa(readBits)})
		}
		return answer, newDeflateSession(o, writeNoCtx, readNoCtx, writeBits, readBits), true
	}
	return nil, nil, false
}

// ClientAccept checks the server's answer against our offer (§7.1).
func (e *deflateExt) ClientAccept(answer []Param) (ExtensionSession, error) {
	o := e.o
	p, err := parseDeflateParams(answer)
	if err != nil {
		return nil, err
	}
	if o.ServerNoContextTakeover && !p.serverNoCtx {
		return nil, errors.New("server ignored server_no_context_takeover")
	}
	// §7.1.2.1: a server accepts the offer's server_max_window_bits by
	// answering it with a value no larger; an answer without it (as
	// gorilla/websocket servers give) leaves the window at 32 KiB.
	if o.ServerMaxWindowBits != 0 && p.serverBits == 0 {
		return nil, fmt.Errorf("the answer leaves out server_max_window_bits, which the offer set to %d (RFC 7692 §7.1.2.1): the server would use a 32 KiB window", o.ServerMaxWindowBits)
	}
	if o.ServerMaxWindowBits != 0 && p.serverBits > o.ServerMaxWindowBits {
		return nil, fmt.Errorf("server_max_window_bits answer %d does not honour the offered %d", p.serverBits, o.ServerMaxWindowBits)
	}
	if p.clientBits == -1 {
		return nil, errors.New("client_max_window_bits answer needs a value")
	}
	writeBits := maxWindowBits
	if o.ClientMaxWindowBits != 0 {
		writeBits = o.ClientMaxWindowBits
	}
	if p.clientBits > 0 {
		if o.ClientMaxWindowBits != 0 && p.clientBits > o.ClientMaxWindowBits {
			return nil, fmt.Errorf("client_max_window_bits answer %d exceeds the offered %d", p.clientBits, o.ClientMaxWindowBits)
		}
		writeBits = p.clientBits
	}
	readBits := maxWindowBits
	if p.serverBits > 0 {
		readBits = p.serverBits
	}
	writeNoCtx := p.clientNoCtx || o.ClientNoContextTakeover
	return newDeflateSession(o, writeNoCtx, p.serverNoCtx, writeBits, readBits), nil
}

// DeflateSession is a connection's permessage-deflate state, returned in
// NegotiatedExtension.Session; its Params report what was negotiated.
//
// Concurrency: the write half is used under the connection's message lock
// and the read half under its read lock; they share no state.
type DeflateSession struct {
	level      int
	threshold  int
	writeNoCtx bool
	readNoCtx  bool
	writeBits  int
	readBits   int

	// Write half: enc at level 1, fw above.
	enc *flatemsg.Encoder
	fw  *flate.Writer
	out tailStripper
	w   deflateWriter

	// Read half: dec holds the peer's window with context takeover.
	dec *flatemsg.Decoder
	in  inflateReader
}

// DeflateParams describes the negotiated permessage-deflate settings.
type DeflateParams struct {
	WriteContextTakeover, ReadContextTakeover bool
	WriteWindowBits, ReadWindowBits           int
}

// Params reports the negotiated settings from this side's point of view.
func (s *DeflateSession) Params() DeflateParams {
	return DeflateParams{!s.writeNoCtx, !s.readNoCtx, s.writeBits, s.readBits}
}

func newDeflateSession(o DeflateOptions, writeNoCtx, readNoCtx bool, writeBits, readBits int) *DeflateSession {
	s := &DeflateSession{level: o.Level, threshold: o.Threshold, writeNoCtx: writeNoCtx,
		readNoCtx: readNoCtx, writeBits: writeBits, readBits: readBits}
	s.w.s = s
	s.in.s = s
	return s
}

// Compressors, pooled by level and window for no-context-takeover use.
var (
	encoders     [maxWindowBits + 1]sync.Pool
	flateWriters [10][maxWindowBits + 1]sync.Pool
)

func getEncoder(bits int) *flatemsg.Encoder {
	if e, ok := encoders[bits].Get().(*flatemsg.Encoder); ok {
		return e
	}
	return flatemsg.NewEncoder(bits)
}

func putEncoder(bits int, e *flatemsg.Encoder) {
	e.Reset()
	encoders[bits].Put(e)
}

func getFlateWriter(level, bits int, dst io.Writer) *flate.Writer {
	if fw, ok := flateWriters[level][bits].Get().(*flate.Writer); ok {
		fw.Reset(dst)
		return fw
	}
	var fw *flate.Writer
	var err error
	if bits < maxWindowBits {
		// A smaller window than deflate's 32 KiB, as the peer asked.
		fw, err = flate.NewWriterWindow(dst, 1<<bits)
	} else {
		fw, err = flate.NewWriter(dst, level)
	}
	if err != nil {
		panic(err) // level and bits were validated when configured
	}
	return fw
}

func putFlateWriter(level, bits int, fw *flate.Writer) {
	fw.Reset(nil)
	flateWriters[level][bits].Put(fw)
}

// WriteMessage implements MessageTransformer.
func (s *DeflateSession) WriteMessage(dst io.WriteCloser, typ MessageType, size int) (io.WriteCloser, byte, error) {
	if size >= 0 && size < s.threshold {
		return dst, 0, nil
	}
	s.w.dst = dst
	if s.level == 1 {
		if s.enc == nil {
			s.enc = getEncoder(s.writeBits)
		}
		// A message known to be small compresses into a small buffer;
		// others are sent on in pieces of at most encFlushAt+encChunk.
		if size >= 0 && size+size/8+64 <= smallBufSize {
			s.w.buf = getBuf(0)
		} else {
			s.w.buf = getBuf(largeBufSize)
		}
		s.w.out = (*s.w.buf)[:0]
		return &s.w, RSV1, nil
	}
	s.out.reset(dst)
	if s.fw == nil {
		s.fw = getFlateWriter(s.level, s.writeBits, &s.out)
	}
	return &s.w, RSV1, nil
}

const (
	encChunk   = 16 << 10 // input handed to the encoder at a time
	encFlushAt = 32 << 10 // compressed bytes held before passing them on
)

// deflateWriter compresses one message.
type deflateWriter struct {
	s   *DeflateSession
	dst io.WriteCloser
	buf *[]byte // level 1: pooled, for the length of one message
	out []byte  // level 1: compressed bytes not yet passed to dst
}

func (w *deflateWriter) Write(p []byte) (int, error) {
	e := w.s.enc
	if e == nil {
		return w.s.fw.Write(p)
	}
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), encChunk)
		w.out = e.Write(w.out, p[:n])
		p = p[n:]
		if len(w.out) >= encFlushAt {
			if _, err := w.dst.Write(w.out); err != nil {
				return total - len(p), err
			}
			w.out = w.out[:0]
		}
	}
	return total, nil
}

// Close ends the message (RFC 7692 §7.2.1: on a byte boundary after an
// empty stored block's header, without its 4-byte tail 00 00 ff ff).
func (w *deflateWriter) Close() error {
	s := w.s
	var err error
	if s.enc != nil {
		w.out = s.enc.Flush(w.out)
		_, err = w.dst.Write(w.out)
		putBuf(w.buf) // its array, even if the output outgrew it
		w.buf, w.out = nil, nil
	} else {
		err = s.fw.Flush()
		if err == nil {
			err = s.out.finish()
		}
	}
	if cerr := w.dst.Close(); err == nil {
		err = cerr
	}
	// A message that failed (an extension further down refused a frame
	// of it before any went out, and the connection stays usable) is in
	// our window but not in the peer's: with context takeover (RFC 7692
	// §7.1.1) the next message would refer to bytes the peer never got
	// (1007, or other bytes than were sent), and klauspost's writer would
	// return the error again for every message. A fresh compressor refers
	// to nothing before the next message, whatever the peer's window holds.
	if s.writeNoCtx || err != nil {
		if s.enc != nil {
			putEncoder(s.writeBits, s.enc)
			s.enc = nil
		} else {
			putFlateWriter(s.level, s.writeBits, s.fw)
			s.fw = nil
		}
	}
	return err
}

// tailStripper passes bytes through to dst, holding back the last four.
type tailStripper struct {
	dst  io.Writer
	tail [4]byte
	n    int
}

func (t *tailStripper) reset(dst io.Writer) { t.dst, t.n = dst, 0 }

func (t *tailStripper) Write(p []byte) (int, error) {
	total := len(p)
	if t.n+len(p) <= len(t.tail) {
		t.n += copy(t.tail[t.n:], p)
		return total, nil
	}
	// Emit everything but the last four bytes of held+p.
	emit := t.n + len(p) - len(t.tail)
	if k := min(t.n, emit); k > 0 {
		if _, err := t.dst.Write(t.tail[:k]); err != nil {
			return 0, err
		}
		t.n = copy(t.tail[:], t.tail[k:t.n])
		emit -= k
	}
	if emit > 0 {
		if _, err := t.dst.Write(p[:emit]); err != nil {
			return 0, err
		}
		p = p[emit:]
	}
	t.n += copy(t.tail[t.n:], p)
	return total, nil
}

func (t *tailStripper) finish() error {
	if t.n != 4 || t.tail != [4]byte{0, 0, 0xff, 0xff} {
		return errors.New("websocket: deflate: flush did not end with an empty stored block")
	}
	t.n = 0
	return nil
}

// Decoders, pooled by window for no-context-takeover use, as encoders are.
var decoders [maxWindowBits + 1]sync.Pool

func getDecoder(bits int) *flatemsg.Decoder {
	if d, ok := decoders[bits].Get().(*flatemsg.Decoder); ok {
		return d
	}
	return flatemsg.NewDecoder(bits)
}

// putDecoder takes a decoder whose message has ended (its tables are back
// in their pool already).
func putDecoder(bits int, d *flatemsg.Decoder) {
	d.Reset()
	decoders[bits].Put(d)
}

// ReadMessage implements MessageTransformer.
func (s *DeflateSession) ReadMessage(src io.Reader, rsv byte) io.Reader {
	if rsv&RSV1 == 0 {
		return src
	}
	r := &s.in
	r.in = inflateSource{src: src, buf: getBuf(0)}
	if s.readNoCtx {
		r.dec = getDecoder(s.readBits)
	} else {
		if s.dec == nil {
			s.dec = flatemsg.NewDecoder(s.readBits)
		}
		r.dec = s.dec
	}
	r.dec.Start(&r.in)
	return r
}

// inflateReader decompresses one message.
type inflateReader struct {
	s   *DeflateSession
	dec *flatemsg.Decoder
	in  inflateSource
}

// inflateSource is the decompressor's input: the message's compressed
// payload, read through a pooled buffer (flatemsg appends the tail the
// sender removed, §7.2.2).
type inflateSource struct {
	src    io.Reader
	buf    *[]byte // pooled, for the length of one message
	srcEOF bool
}

// Read returns decompressed bytes. Corrupt data is an error wrapping
// ErrInvalidPayload (the connection fails with 1007); a failure of the
// connection underneath (cut, timeout, a protocol error in the frames) is
// returned as it is.
func (r *inflateReader) Read(p []byte) (int, error) {
	if r.dec == nil {
		return 0, io.EOF
	}
	n, err := r.dec.Read(p)
	if err == nil {
		return n, nil
	}
	r.release()
	if err == io.EOF {
		return n, err
	}
	var corrupt flatemsg.CorruptError
	if errors.As(err, &corrupt) {
		err = fmt.Errorf("%w: %v", ErrInvalidPayload, err) // the kind first, as failWith
	}
	return n, err
}

func (r *inflateReader) release() {
	if r.s.readNoCtx {
		putDecoder(r.s.readBits, r.dec)
	}
	r.dec = nil
	if r.in.buf != nil {
		putBuf(r.in.buf)
		r.in.buf = nil
	}
	r.in.src = nil
}

// Next implements flatemsg.Source.
func (r *inflateSource) Next() ([]byte, error) {
	for !r.srcEOF {
		n, err := r.src.Read(*r.buf)
		if err == io.EOF {
			r.srcEOF = true
		} else if err != nil {
			return nil, err
		}
		if n > 0 {
			return (*r.buf)[:n], nil
		}
	}
	return nil, io.EOF
}
