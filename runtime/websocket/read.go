package websocket

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Reader returns the next data message. Control frames that arrive first
// (or between its fragments) are handled on the way: pings are answered,
// pongs are matched to Ping calls, a close frame ends the connection with a
// *CloseError. The reader is valid until the next call to Reader, Read or
// ReadAppend, which discards what is left of its message: from then on
// its Read returns io.EOF if it had returned io.EOF already, and
// ErrReaderDiscarded otherwise — never a later message's bytes. Unlike
// ReadAppend, each call allocates (the small reader itself).
//
// If ctx is done before the message has been read, the connection is
// closed: a message cut off half way cannot be resumed. ctx keeps
// mattering after Reader returns, while the message's body still has to
// come from the network: it stops once the reader has read the message's
// last frame (its last byte delivered, or io.EOF or an error returned),
// or when the next Reader, Read or ReadAppend call starts (which discards
// the rest of the message under its own ctx).
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	if c.cfg.raw {
		return 0, nil, ErrRawMode
	}
	if err := c.lockRead(ctx); err != nil {
		return 0, nil, err
	}
	defer c.unlockRead()
	if c.hasPending() {
		m := c.popPending()
		// unlockRead counts this call when Reader returns.
		kr := &keptReader{c: c, reads: c.reads.Load() + 1}
		kr.r.Reset(m.data)
		return m.typ, kr, nil
	}
	if err := c.beginMessage(); err != nil {
		return 0, nil, ctxErr(ctx, err)
	}
	// The body is read after Reader returns, from the network: ctx's
	// watch (armed by lockRead) stays armed until the message ends
	// (messageReader.end) or the next read call takes over (lockRead). A
	// context that is never done armed nothing.
	c.mr.watched = ctx.Done() != nil
	return MessageType(c.msgOp), &streamReader{m: &c.mr, gen: c.mr.gen}, nil
}

// streamReader is what Reader returns: a handle of its own on the
// connection's one message reader, valid for the message it was given
// for. The shared reader cannot tell one message from the next, so a
// handle kept past the next read call would read that call's message
// (or, if the call read it whole, find it over and report a clean
// io.EOF for a message cut short). messageReader.start advances gen, so
// every earlier handle is stale from then on.
type streamReader struct {
	m   *messageReader
	gen uint64
	eof bool // this handle returned io.EOF: its message was read whole
}

func (r *streamReader) Read(p []byte) (int, error) {
	c := r.m.c
	select {
	case c.readSem <- struct{}{}:
	case <-c.closed:
		// A message read to its last byte ends with io.EOF even once
		// the connection is closed (Close's drain may have read the
		// close frame behind it): its state is the read lock's, taken
		// if free. Close's drain holds it until just after the close
		// frame closed the connection: wait for it then, or a whole
		// message would end with the peer's *CloseError.
		select {
		case c.readSem <- struct{}{}:
		default:
			if !c.closeDrain.Load() {
				return 0, c.closedErr()
			}
			c.readSem <- struct{}{}
		}
	}
	defer func() { <-c.readSem }()
	if r.m.gen != r.gen {
		if r.eof {
			return 0, io.EOF
		}
		return 0, ErrReaderDiscarded
	}
	n, err := r.m.read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

// keptReader is what Reader returns for a message Close kept: its bytes
// are in memory, so it takes no lock, but it is stale after the next
// read call as a streamReader is, rather than go on returning them. The
// read calls are counted by unlockRead (c.reads, under readSem).
type keptReader struct {
	r     bytes.Reader
	c     *Conn
	reads uint64 // c.reads while the handle is valid
	eof   bool   // this handle returned io.EOF
}

func (k *keptReader) Read(p []byte) (int, error) {
	if k.c.reads.Load() != k.reads {
		if k.eof || k.r.Len() == 0 {
			return 0, io.EOF // its message was delivered whole
		}
		return 0, ErrReaderDiscarded
	}
	n, err := k.r.Read(p)
	if err == io.EOF {
		k.eof = true
	}
	return n, err
}

// Read reads the next data message whole into a new slice. MaxMessageSize
// bounds it. See ReadAppend to reuse a buffer.
//
// A Read that fails with 1009 (ErrMessageTooBig) partway through a message
// returns, with the error, what it read of the message so far: the
// fragments before the one that passed the limit, or what a compressed
// message inflated to before it did (at most MaxMessageSize bytes). A
// frame over a limit by its header alone fails the read with nothing.
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	return c.ReadAppend(ctx, nil)
}

// ReadAppend reads the next data message whole, appends it to dst and
// returns the extended slice. With a dst of sufficient capacity it does not
// allocate.
func (c *Conn) ReadAppend(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	if c.cfg.raw {
		return 0, dst, ErrRawMode
	}
	if err := c.lockRead(ctx); err != nil {
		return 0, dst, err
	}
	defer c.unlockRead()
	if c.hasPending() {
		m := c.popPending()
		return m.typ, append(dst, m.data...), nil
	}
	if c.rbuf == nil && c.rawConn != nil && c.readErr == nil {
		// Wait for input here rather than five calls deeper: the goroutine
		// of an idle connection then fits in its first 2 KiB of stack,
		// half of what it costs otherwise.
		if err := c.fill(); err != nil {
			return 0, dst, ctxErr(ctx, c.failRead(err))
		}
	}
	typ, dst, err := c.readWhole(dst)
	return typ, dst, ctxErr(ctx, err)
}

// readPolled is ReadAppend for a Poller's worker. Between messages it
// never waits for input: when the socket is drained it returns
// errWouldBlock, having flushed any deferred replies, and the worker hands
// the connection back. ready says the poller saw input arrive. Once a
// message has begun it is read to its end, waiting if it must.
func (c *Conn) readPolled(dst []byte, ready bool) (MessageType, []byte, error) {
	if err := c.lockRead(context.Background()); err != nil {
		return 0, dst, err
	}
	defer c.unlockRead()
	if c.hasPending() {
		m := c.popPending()
		return m.typ, append(dst, m.data...), nil
	}
	c.pollReady = c.pollReady || ready
	c.noWait = true
	typ, dst, err := c.readWhole(dst)
	c.noWait = false
	return typ, dst, err
}

// readWhole reads the next data message whole, appending it to dst. The
// caller holds readSem.
func (c *Conn) readWhole(dst []byte) (MessageType, []byte, error) {
	if err := c.beginMessage(); err != nil {
		return 0, dst, err
	}
	typ := MessageType(c.msgOp)
	for {
		// A dst filled exactly by a complete plain message needs no room:
		// growing it would allocate (and copy the message) for nothing.
		if len(dst) == cap(dst) && !(c.mr.plain && c.rleft == 0 && c.rh.fin) {
			if !c.mr.plain {
				// Likewise an inflated message that ends exactly at cap:
				// a read of nothing reports the end without growing dst.
				if _, err := c.mr.read(dst[len(dst):]); err == io.EOF {
					return typ, dst, nil
				} else if err != nil {
					return typ, dst, err
				}
			}
			dst = growRead(dst, c.rleft)
		}
		n, err := c.mr.read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return typ, dst, nil
		}
		if err != nil {
			return typ, dst, err
		}
	}
}

// readGrowMax caps how far growRead extends a destination beyond what it
// holds: the length a frame header claims costs memory only as its bytes
// arrive.
const readGrowMax = 64 << 10

// growRead gives dst room for more of a payload of which left bytes are
// still to come (the rest of the frame; a guess for compressed data). The
// growth is capped at readGrowMax or len(dst), whichever is more: a header
// claiming MaxFrameSize then costs 64 KiB until the payload arrives, not
// MaxFrameSize (a peer could otherwise pin that much per connection with
// a few bytes each), while a large message still grows by doubling, at an
// amortised copy per byte.
func growRead(dst []byte, left int64) []byte {
	hint := int64(len(dst))
	if hint < readGrowMax {
		hint = readGrowMax
	}
	if left < hint {
		hint = left
	}
	if hint < 512 {
		hint = 512
	}
	return append(dst, make([]byte, hint)...)[:len(dst)]
}

// pendingMessage is a message Close read while waiting for the peer's
// close frame; the next reads return it before the close.
type pendingMessage struct {
	typ  MessageType
	data []byte
}

func (c *Conn) popPending() pendingMessage {
	rx := c.rx
	m := rx.pending[0]
	rx.pending[0] = pendingMessage{}
	rx.pending = rx.pending[1:]
	rx.pendingSize -= int64(len(m.data))
	if len(rx.pending) == 0 {
		rx.pending = nil
	}
	return m
}

func (c *Conn) lockRead(ctx context.Context) error {
	select {
	case c.readSem <- struct{}{}:
	default:
		if c.readSem == nil {
			return errZeroConn // a send to its nil readSem never proceeds
		}
		select {
		case c.readSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			if !c.closeKept.Load() {
				return c.closedErr()
			}
			// Close's drain holds readSem until just after the peer's
			// close frame closed the connection, and kept the messages
			// read on the way: wait for it and return them first, as
			// Close promises (the reads after them get the close).
			select {
			case c.readSem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if c.mr.watched {
		// A Reader's message left unfinished: its ctx stops mattering
		// here, and the rest is discarded under this call's.
		c.mr.watched = false
		c.readCtx.disarm()
	}
	if err := arm(&c.readCtx, c, ctx); err != nil {
		<-c.readSem
		return err
	}
	return nil
}

func (c *Conn) unlockRead() {
	c.inputBuffered.Store(c.rbuf != nil && c.rpos < c.rend)
	c.reads.Add(1)
	if !c.mr.watched {
		c.readCtx.disarm()
	}
	<-c.readSem
}

// beforeBlock runs before every read that may wait for the network: the
// replies a writer left buffered for input already here (deferFlush) go
// out now, so they never wait on the peer. The store comes before the
// load, and deferFlush does the opposite, so one of the two always sees
// the other and nothing is left behind.
func (c *Conn) beforeBlock() {
	c.inputBuffered.Store(false)
	if c.flushPending.Load() {
		c.flushDeferred()
	}
}

// beginMessage skips what is left of the previous message and reads up to
// the first frame of the next data message.
func (c *Conn) beginMessage() error {
	if c.readErr != nil {
		return c.readErr
	}
	if c.mr.active {
		if err := c.mr.discard(); err != nil {
			return err
		}
	}
	if err := c.nextDataFrame(); err != nil {
		return err
	}
	if c.rh.opcode == OpContinuation {
		return c.failRead(protocolErr("continuation frame without a message to continue"))
	}
	c.mr.start()
	return nil
}

// nextDataFrame reads frames until a data frame, handling control frames.
// It leaves the data frame's header in c.rh with c.rleft payload bytes.
func (c *Conn) nextDataFrame() error {
	for {
		if err := c.readHeader(); err != nil {
			return err
		}
		if !c.rh.opcode.IsControl() {
			return nil
		}
		if err := c.handleControl(); err != nil {
			return err
		}
	}
}

// readHeader reads and checks the next frame header (RFC 6455 §5.2). Every
// rule that makes a frame invalid by itself is checked here, for both
// message and raw mode.
func (c *Conn) readHeader() error {
	var n int
	for {
		var err error
		if c.rbuf != nil {
			n, err = parseHeader((*c.rbuf)[c.rpos:c.rend], &c.rh)
			if err != nil {
				return c.failRead(err)
			}
			if n > 0 {
				break
			}
		}
		if c.rbuf == nil && c.noWait && !c.msgOpen {
			// A Poller's worker between messages: nothing is half read, so
			// it may hand the connection back instead of waiting.
			if err := c.fillNoWait(); err != nil {
				if err == errWouldBlock {
					return err
				}
				return c.failRead(err)
			}
			continue
		}
		if err := c.fill(); err != nil {
			return c.failRead(err)
		}
	}
	c.rpos += n
	c.consumed()
	h := &c.rh
	c.rleft = h.length
	if h.length >= smallBufSize {
		// A large payload is read straight into the destination; a large
		// read buffer would only add a copy.
		c.rbig = false
	}
	c.rmaskPos = 0
	if c.frameExts {
		if err := c.transformIncoming(); err != nil {
			return c.failRead(err)
		}
	}
	switch {
	case h.opcode.reserved():
		return c.failRead(protocolErr("reserved opcode %#x", byte(h.opcode)))
	case h.rsv&^c.rsvAllowed != 0:
		// §5.2: a nonzero RSV bit that no negotiated extension defines.
		return c.failRead(protocolErr("RSV bits %s set without an extension that owns them", rsvNames(h.rsv&^c.rsvAllowed)))
	case h.masked == c.client:
		// §5.1: clients mask every frame, servers mask none.
		if c.client {
			return c.failRead(protocolErr("masked frame from server"))
		}
		return c.failRead(protocolErr("unmasked frame from client"))
	}
	if h.opcode.IsControl() {
		// §5.5: control frames are never fragmented and carry ≤125 bytes.
		// A message-level extension's bits mark data messages only (RFC 7692
		// §6.1 for RSV1 of permessage-deflate).
		if h.rsv&c.rsvMessage != 0 {
			return c.failRead(protocolErr("RSV bits %s set on a %v frame", rsvNames(h.rsv&c.rsvMessage), h.opcode))
		}
		if !h.fin {
			return c.failRead(protocolErr("fragmented %v frame", h.opcode))
		}
		if h.length > maxControlPayload {
			return c.failRead(protocolErr("%v frame payload of %d bytes exceeds 125", h.opcode, h.length))
		}
		return nil
	}
	maxFrame, maxMessage := c.cfg.maxFrameSize, c.cfg.maxMessageSize
	rsv := h.rsv
	if h.opcode == OpContinuation {
		rsv = c.msgRSV
	}
	transformed := rsv&c.rsvMessage != 0
	if transformed {
		// A message an extension transformed (compressed): the limits bound
		// what it decodes to, checked as messageReader produces it, and the
		// wire may carry a little more (wireLimit).
		maxFrame, maxMessage = wireLimit(maxFrame), wireLimit(maxMessage)
	}
	if h.length > maxFrame {
		return c.failRead(failWith(StatusMessageTooBig, ErrMessageTooBig, "frame of %d bytes exceeds the %d-byte limit%s", h.length, c.cfg.maxFrameSize, wireNote(transformed, maxFrame)))
	}
	// §5.4: a message is one start frame then continuations until FIN.
	if h.opcode == OpContinuation {
		if !c.msgOpen {
			return c.failRead(protocolErr("continuation frame without a message to continue"))
		}
		if h.rsv&c.rsvMessage != 0 {
			// A message-level extension marks the first frame only
			// (RFC 7692 §6.1).
			return c.failRead(protocolErr("RSV bits %s set on a continuation frame", rsvNames(h.rsv&c.rsvMessage)))
		}
	} else {
		if c.msgOpen {
			return c.failRead(protocolErr("new %v message before the previous one finished", h.opcode))
		}
		c.msgOpen = true
		c.msgOp = h.opcode
		c.msgRSV = h.rsv
		c.msgSize = 0
	}
	c.msgSize += h.length
	if c.msgSize > maxMessage {
		return c.failRead(failWith(StatusMessageTooBig, ErrMessageTooBig, "message exceeds the %d-byte limit%s", c.cfg.maxMessageSize, wireNote(transformed, maxMessage)))
	}
	if h.fin {
		c.msgOpen = false
	}
	return nil
}

// wireNote is what an over-limit error adds for a compressed message: the
// limit is on what it decodes to, and its wire size may pass the limit by
// a little (wireLimit), so a figure larger than the configured one does
// not read as the limit itself.
func wireNote(transformed bool, onWire int64) string {
	if !transformed {
		return ""
	}
	return fmt.Sprintf(" (%d bytes on the wire for a compressed one)", onWire)
}

// wireLimit is the most a frame or message an extension compressed may
// carry on the wire for a limit of n bytes after decoding. Data that does
// not compress grows a little: DEFLATE's stored blocks cost 5 bytes per
// 65,535 (RFC 1951 §3.2.4), zlib's deflateBound allows n/4096 + n/16384 +
// 13, and each fragment of a streamed message may end with a 5-byte sync
// flush (RFC 7692 §7.2.1), so our own Write of a message of exactly n
// bytes, or any compressor that falls back to stored blocks, stays far
// below n + n/64 + 1 KiB. (One that never does, coding random bytes with
// the fixed Huffman codes, could need up to 12.5% more and is refused near
// the limit.) The bound keeps what a peer can make us read within 1.6% of
// the limit; the limit itself is enforced on the decoded output
// (messageReader.read).
func wireLimit(n int64) int64 {
	const maxInt64 = 1<<63 - 1
	room := n/64 + 1<<10
	if n > maxInt64-room {
		return maxInt64
	}
	return n + room
}

// readPayload reads up to len(p) bytes of the current frame's payload,
// unmasked. p must not be longer than c.rleft.
func (c *Conn) readPayload(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	if c.rbuf != nil && c.rpos < c.rend {
		n = copy(p, (*c.rbuf)[c.rpos:c.rend])
		c.rpos += n
		c.consumed()
	} else if len(p) >= smallBufSize {
		// Large reads bypass the buffer and land where they are wanted.
		c.beforeBlock()
		var err error
		n, err = c.readSock(p)
		c.rfull = n == len(p)
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, c.failRead(c.ioErr(err))
		}
	} else {
		if err := c.fill(); err != nil {
			return 0, c.failRead(err)
		}
		n = copy(p, (*c.rbuf)[c.rpos:c.rend])
		c.rpos += n
		c.consumed()
	}
	if c.rh.masked {
		c.rmaskPos = mask(c.rh.key, c.rmaskPos, p[:n])
	}
	c.rleft -= int64(n)
	return n, nil
}

// consumed returns the read buffer to its pool once everything in it has
// been read, so idle connections hold none.
func (c *Conn) consumed() {
	if c.rpos == c.rend && c.rbuf != nil {
		putBuf(c.rbuf)
		c.rbuf = nil
		c.rpos, c.rend = 0, 0
	}
}

// readBuf takes a read buffer: a small one, or a large one when the last
// read filled its buffer (a pipelining peer has more queued), so that the
// replies to all of it can go out together (deferFlush).
func (c *Conn) readBuf() *[]byte {
	if c.rbig {
		return getBuf(largeBufSize)
	}
	return getBuf(0)
}

// fill reads at least one more byte into the read buffer.
func (c *Conn) fill() error {
	c.beforeBlock()
	if c.rbuf == nil && c.rawConn != nil {
		return c.fillIdle()
	}
	if c.rbuf == nil {
		c.rbuf = c.readBuf()
	} else if c.rend == len(*c.rbuf) {
		// Full: move the unread tail (a partial header) to the front.
		c.rend = copy(*c.rbuf, (*c.rbuf)[c.rpos:c.rend])
		c.rpos = 0
	}
	n, err := c.readSock((*c.rbuf)[c.rend:])
	c.rend += n
	if n > 0 {
		c.rbig = c.rend == len(*c.rbuf)
		c.rfull = c.rbig
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	c.consumed()
	return c.ioErr(err)
}

// fillNoWait is fill for a Poller's worker at a frame boundary outside a
// message. It reads only if input may be there — the poller saw the socket
// become readable (pollReady), or the last read filled all it was given —
// and never waits: errWouldBlock means the socket is drained, and the
// worker hands the connection back to the poller. Skipping the read that
// would only return EAGAIN is sound because the poller's registration is
// edge-triggered: bytes that arrive after a short read raise a new event.
// The end of the stream does not: once the poller saw the peer hang up
// (pollHangUp; the same event may have brought its last data), every call
// reads, until the read returns the end (or an error) and the connection
// closes as at any EOF.
func (c *Conn) fillNoWait() error {
	if c.pollReady || c.rfull || c.pollHangUp() {
		c.pollReady = false
		c.rawNoWait = true
		err := c.fillIdle()
		c.rawNoWait = false
		if err != errWouldBlock {
			if err != nil {
				// The end of the stream (a peer that half-closed after
				// its requests) or an error: the replies deferred for
				// the input before it go out before failRead closes
				// the connection.
				c.beforeBlock()
			}
			return err
		}
	}
	c.beforeBlock()
	if e := c.poll.Load(); e != nil && e.linger {
		return e.lingerFill()
	}
	return errWouldBlock
}

// ioErr turns an I/O error into what a reader should see.
func (c *Conn) ioErr(err error) error {
	select {
	case <-c.closed:
		return c.closedErr()
	default:
	}
	// A reset is the peer's end of the stream too: through TLS or another
	// wrapper it arrives as the wrapped socket error (the socket path maps
	// it before here).
	if errors.Is(err, io.EOF) || connReset(err) {
		return errNoCloseFrame
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("websocket: read timed out: %w", err)
	}
	return fmt.Errorf("websocket: read: %w", err)
}

// handleControl reads the payload of the control frame in c.rh and acts on
// it (RFC 6455 §5.5).
func (c *Conn) handleControl() error {
	p := c.readSpare().ctrl[:c.rh.length]
	if err := c.readFull(p); err != nil {
		return err
	}
	if c.rh.opcode != OpClose {
		c.controlSeen.Store(true)
	}
	switch c.rh.opcode {
	case OpPing:
		// §5.5.3: a pong carries the ping's payload. Pongs are written under
		// the frame lock: a ping flood is answered at the pace the peer
		// reads them, never queued without bound.
		// A pong that cannot go out because the peer reset the
		// connection fails nothing: what the peer sent before the reset,
		// its close frame perhaps, is still to be read (writeErrLocked).
		if err := c.writeControl(OpPong, p); err != nil && !errors.Is(err, ErrClosed) && !peerReset(err) {
			return c.failRead(err)
		}
		return nil
	case OpPong:
		c.gotPong(p)
		return nil
	default: // OpClose
		return c.failRead(c.gotClose(p))
	}
}

// skipPayload drops the rest of the current frame's payload.
func (c *Conn) skipPayload() error {
	var buf [512]byte
	for c.rleft > 0 {
		p := buf[:]
		if int64(len(p)) > c.rleft {
			p = p[:c.rleft]
		}
		if _, err := c.readPayload(p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := c.readPayload(p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// parseClose decodes a close frame payload (RFC 6455 §5.5.1, §7.4).
func parseClose(p []byte) (*CloseError, error) {
	switch {
	case len(p) == 0:
		return &CloseError{Code: StatusNoStatusRcvd}, nil
	case len(p) == 1:
		return nil, protocolErr("close frame with a 1-byte payload")
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !code.validReceived() {
		return nil, protocolErr("invalid close code %d", int(code))
	}
	if !validUTF8(p[2:]) {
		return nil, failWith(StatusInvalidFramePayload, ErrInvalidUTF8, "close reason")
	}
	return &CloseError{Code: code, Reason: string(p[2:])}, nil
}

// gotClose handles the peer's close frame and returns the error that ends
// reading: the *CloseError, or a failure if the frame was invalid.
func (c *Conn) gotClose(p []byte) error {
	ce, err := parseClose(p)
	if err != nil {
		return err
	}
	c.closeMu.Lock()
	cs := c.closingLocked()
	first := cs.peer == nil
	if first {
		cs.peer = ce
		if cs.rcvd != nil {
			close(cs.rcvd)
		}
	}
	reply := !c.closeSent && !c.cfg.raw
	if reply {
		c.closeSent = true
	}
	own := cs.own // set when a Close or fail claimed closeSent first
	c.closeMu.Unlock()
	if reply {
		// §5.5.1: echo the status code. 1005 means "no code", sent as an
		// empty payload.
		var buf [2]byte
		var payload []byte
		if ce.Code != StatusNoStatusRcvd {
			binary.BigEndian.PutUint16(buf[:], uint16(ce.Code))
			payload = buf[:]
		}
		_ = c.writeControl(OpClose, payload)
	}
	if !c.cfg.raw {
		if !reply && own != nil {
			// Our close frame was claimed but may not be out yet: ending
			// the connection now would refuse it (claimCloseWrite).
			c.awaitCloseWrite(own.wrote)
		}
		c.finishClose()
	}
	return ce
}

// finishClose ends the connection once both close frames have crossed:
// the handshake is complete, so the calls waiting on it (this read, Close)
// return now. §7.1.1: the server closes the TCP connection first; the
// client waits a bounded time for the server's FIN so that the server, not
// the client, carries TIME_WAIT — on its socket's own time (awaitFIN), not
// the caller's: a server may linger for seconds before it closes
// (gorilla/websocket's examples sleep 10 s).
func (c *Conn) finishClose() {
	if c.client {
		c.closeConn(ErrClosed, awaitFIN, nil)
		return
	}
	c.closeWith(ErrClosed)
}

// failRead makes err sticky for reads. A local failure (protocol error,
// invalid UTF-8, oversized message) fails the connection (§7.1.7): our close
// frame with the failure's code, then the TCP connection closed, lingering
// until the peer has read that frame (failReading).
func (c *Conn) failRead(err error) error {
	if c.readErr != nil {
		return c.readErr
	}
	c.readErr = err
	var f *failure
	if errors.As(err, &f) {
		c.failReading(f)
	} else if _, ok := err.(*CloseError); !ok {
		c.closeWith(err)
	}
	if c.mr.active {
		c.mr.end()
	}
	return err
}

// messageReader is the io.Reader of the current data message.
//
// Concurrency: each Read takes the connection's read lock; its state is
// the lock holder's.
type messageReader struct {
	c      *Conn
	gen    uint64 // advanced by start, and by a discard that cut the message short: which message Reader's handles are for
	active bool
	// The message was read to its end (io.EOF), not failed: its reads
	// keep returning io.EOF, also once a later error (the peer's close
	// frame, read by Close's drain) is the connection's.
	ended bool
	text  bool
	src   io.Reader // payload, or an extension's decoding of it
	pr    payloadReader
	size  int64 // bytes delivered (after extensions): PayloadBytesRead
	plain bool  // no extension transforms this message
	// The message came from Reader with a ctx that can be done: its
	// watch stays armed until end, or until the next read call.
	watched bool
}

// end marks the message finished: read to its end, or failed. A Reader's
// ctx stops mattering from here.
func (m *messageReader) end() {
	m.active = false
	if m.watched {
		m.watched = false
		m.c.readCtx.disarm()
	}
}

func (m *messageReader) start() {
	c := m.c
	m.gen++
	m.active = true
	m.ended = false
	m.text = c.msgOp == OpText
	m.size = 0
	c.utf8.reset()
	m.pr.c = c
	m.src = &m.pr
	m.plain = true
	exts := c.negExts()
	for i := len(exts) - 1; i >= 0; i-- {
		if r := exts[i].wrapReader(m.src, c.msgRSV); r != m.src {
			m.src = r
			m.plain = false
		}
	}
	if c.msgRSV&c.rsvMessage != 0 {
		// readHeader let its wire size exceed the limit (wireLimit), so
		// the limit is checked on what is delivered even if no extension
		// transformed it.
		m.plain = false
	}
}

func (m *messageReader) read(p []byte) (int, error) {
	c := m.c
	if !m.active {
		if c.readErr != nil && !m.ended {
			return 0, c.readErr
		}
		return 0, io.EOF
	}
	n, err := m.src.Read(p)
	if m.watched && c.rleft == 0 && c.rh.fin {
		// The message's last frame is in: what is left of it (the io.EOF,
		// an extension's buffered output) needs nothing from the network,
		// so the Reader's ctx stops mattering even if the caller, knowing
		// the length, never reads to the end.
		m.watched = false
		c.readCtx.disarm()
	}
	if n > 0 {
		m.size += int64(n)
		if !m.plain {
			// The wire size was checked per frame; a transformed (for
			// example inflated) message is checked as it is produced.
			if m.size > c.cfg.maxMessageSize {
				return 0, c.failRead(failWith(StatusMessageTooBig, ErrMessageTooBig, "message exceeds the %d-byte limit", c.cfg.maxMessageSize))
			}
		}
		if m.text && !c.utf8.write(p[:n]) {
			return 0, c.failRead(failWith(StatusInvalidFramePayload, ErrInvalidUTF8, "text message"))
		}
	}
	if err == io.EOF {
		m.end()
		if m.text && !c.utf8.complete() {
			return n, c.failRead(failWith(StatusInvalidFramePayload, ErrInvalidUTF8, "text message ends inside a code point"))
		}
		m.ended = true
		c.stats.messageRead(m.size)
		if n > 0 {
			return n, nil
		}
		return 0, io.EOF
	}
	if err != nil {
		m.end()
		if c.readErr == nil {
			// The frame layer sets readErr itself; an error it did not see
			// comes from an extension's decoding. As MessageTransformer
			// documents, one wrapping ErrProtocol says the peer broke the
			// extension's protocol (1002); any other says the payload is
			// invalid (1007, RFC 6455 §7.4.1).
			var f *failure
			if !errors.As(err, &f) {
				code := StatusInvalidFramePayload
				if errors.Is(err, ErrProtocol) {
					code = StatusProtocolError
				}
				err = &failure{code, err}
			}
			err = c.failRead(err)
		}
		return n, err
	}
	return n, nil
}

// discard reads and drops the rest of the current message. A message
// that had bytes left is cut short for the Reader it was given to: gen
// moves on, and the Reader returns ErrReaderDiscarded, not the io.EOF
// the discard reached (Close's drain discards without starting another
// message).
func (m *messageReader) discard() error {
	var buf [512]byte
	dropped := false
	for m.active {
		n, err := m.read(buf[:])
		dropped = dropped || n > 0
		if err != nil && err != io.EOF {
			return err
		}
	}
	if dropped {
		m.gen++
	}
	return nil
}

// payloadReader reads the payload bytes of one message across its frames,
// stepping over control frames between fragments.
type payloadReader struct{ c *Conn }

func (r *payloadReader) Read(p []byte) (int, error) {
	c := r.c
	for c.rleft == 0 {
		if c.rh.fin {
			return 0, io.EOF
		}
		if err := c.nextDataFrame(); err != nil {
			return 0, err
		}
		if c.rh.opcode != OpContinuation {
			return 0, c.failRead(protocolErr("new %v message before the previous one finished", c.rh.opcode))
		}
	}
	if int64(len(p)) > c.rleft {
		p = p[:c.rleft]
	}
	return c.readPayload(p)
}
