package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/wsrpc/wsrpc/internal/netfail"
)

// Write sends p as one message of type typ. It is safe to call from many
// goroutines at once: messages are written whole, one after another.
//
// Small messages written while other writers wait are coalesced: the last
// writer out flushes them all with one system call. Replies to a peer that
// pipelines are batched too: a Write that follows a read while more input
// is already buffered leaves its frame for the next reply, and everything
// goes out when the reader has to wait for input (after 1ms at the latest).
//
// If ctx is done before Write gets its turn — while it waits for the
// message lock that another message holds (an open Writer, a Write or
// WritePrepared still sending), or before the call — Write returns ctx's
// error, nothing of p is sent, and the connection stays usable. If ctx is
// done while the message is being written, the connection is closed: a
// frame cut off half way cannot be resumed.
func (c *Conn) Write(ctx context.Context, typ MessageType, p []byte) error {
	if c.cfg.raw {
		return ErrRawMode
	}
	if typ != MessageText && typ != MessageBinary {
		return fmt.Errorf("websocket: invalid message type %d", int(typ))
	}
	if typ == MessageText && !validUTF8(p) {
		// §5.6: text is UTF-8. Refused here, nothing is sent and the
		// connection stays usable; sent, the peer would fail it with 1007.
		return fmt.Errorf("%w: text message", ErrInvalidUTF8)
	}
	if err := c.beginWrite(ctx); err != nil {
		return err
	}
	var err error
	if c.neg != nil && c.hasMessageExt() {
		err = c.endWrite(ctx, c.writeExtMessage(typ, p))
	} else {
		// One frame, written and (by the last writer out) flushed under
		// one hold of the frame lock.
		c.frameMu.Lock()
		err = c.endWriteLocked(ctx, c.writeFrameLocked(true, Opcode(typ), 0, p, false))
		c.frameMu.Unlock()
	}
	if err == nil {
		c.stats.messageWritten(len(p))
	}
	return err
}

// writeExtMessage writes p through the message extensions' writers.
func (c *Conn) writeExtMessage(typ MessageType, p []byte) error {
	w, err := c.startMessage(typ, len(p))
	if err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		_ = w.Close() // ends the message without completing it (extWriter)
		return err
	}
	return w.Close()
}

// Writer returns a writer for one message of type typ, sent as fragments
// as it fills (RFC 6455 §5.4). The message ends with Close. Control frames
// (pongs, Ping's ping, Close's close frame) may go out between fragments.
//
// Until its Close the writer holds the connection's message lock: the
// other data messages — Write, WritePrepared, another Writer — wait for
// it, each until its own ctx is done. The goroutine holding an open writer
// must therefore not make those calls itself: it would wait until their
// ctx ends (forever with context.Background). If ctx is done before Close,
// the connection is closed.
//
// A text writer checks its message as UTF-8 as it goes (§5.6; a code
// point may be split between two writes). A Write that would make it
// invalid is refused with ErrInvalidUTF8, nothing of it sent, and the
// refusal is sticky: every later Write returns it, and Close returns it
// too and fails the connection with 1011 rather than finish a message
// missing those bytes (fragments already sent cannot be taken back), as
// it does for a message that would end inside a code point.
//
// The writer is valid for this one message. After its Close, its Write
// fails and a second Close does nothing and returns nil: a writer kept by
// mistake can neither write into nor end a later message. Unlike Write,
// each call allocates (the small writer itself).
func (c *Conn) Writer(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if c.cfg.raw {
		return nil, ErrRawMode
	}
	if typ != MessageText && typ != MessageBinary {
		return nil, fmt.Errorf("websocket: invalid message type %d", int(typ))
	}
	if err := c.lockMessage(ctx); err != nil {
		return nil, err
	}
	// Frames left in the buffer for a writer counted to come after them
	// (leaveWriterLocked) would wait for this writer if it took the lock
	// first, as long as its caller takes to write a fragment or Close:
	// they go out now.
	c.frameMu.Lock()
	var err error
	if c.wlen > 0 {
		err = c.flushLocked()
	}
	c.frameMu.Unlock()
	if err != nil {
		c.writeCtx.disarm()
		<-c.msgSem
		return nil, err
	}
	w, err := c.startMessage(typ, -1)
	if err != nil {
		c.writeCtx.disarm()
		<-c.msgSem
		return nil, err
	}
	m := c.msgw
	if typ == MessageText {
		m.tw = textWriter{WriteCloser: w, c: c}
		w = &m.tw
	}
	return &streamWriter{m: m, w: w, gen: m.gen.Load()}, nil
}

// streamWriter is what Writer returns: a handle of its own on the
// connection's one message writer (the chain in msgWriters), valid for the
// message it was given for. The shared writer itself cannot tell one
// message from the next, so a handle kept after Close would write into
// the next message, and a second Close would end it and release a message
// lock its caller no longer holds. Close advances m.gen before the lock is
// released, so the next message's handle gets a gen of its own and every
// earlier handle is stale from then on.
//
// Close releases the message lock itself, as its very last step, once the
// whole chain is closed: from that moment the next message may reset the
// shared writers (startMessage), so nothing may read or write them after.
// Released deeper in the chain, by the messageWriter, it let the writers
// above (extWriter, abortMessage) act on the next message's state
// (TestWriterConcurrentWithWriteDeflate).
//
// Concurrency: used by the goroutine holding the message lock, as any
// io.Writer is by one goroutine; a stale handle touches only m.gen, an
// atomic, and is harmless from any goroutine.
type streamWriter struct {
	m   *msgWriters
	w   io.WriteCloser // the head of the message's writer chain, in m
	gen uint64         // m.gen while the message is open
	n   int            // payload bytes taken, for PayloadBytesWritten
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.m.gen.Load() != s.gen {
		return 0, ErrWriterClosed
	}
	n, err := s.w.Write(p)
	s.n += n
	return n, err
}

func (s *streamWriter) Close() error {
	// One Close ends the message, even two at once on one handle: the
	// loser must not release the message lock a second time (a receive
	// from the empty channel, which blocks for ever, or another writer's
	// lock).
	if !s.m.gen.CompareAndSwap(s.gen, s.gen+1) {
		return nil // closed already: its message is over
	}
	c := s.m.mw.c
	err := s.w.Close()
	if err == nil {
		c.stats.messageWritten(s.n)
	}
	c.writeCtx.disarm()
	<-c.msgSem // last: see the type's comment
	return err
}

// textWriter checks a text message written through Writer as UTF-8 (§5.6)
// as it goes. A Write whose bytes would make it invalid is refused whole
// (nothing of it is sent), and the refusal is sticky: every later Write
// returns it, and so does Close. The message cannot be finished validly
// either way — without the refused bytes it would reach the peer spliced,
// a truncated text passing for a whole one, and fragments already sent
// cannot be taken back — so Close fails the connection with 1011 instead,
// as it does for a message that ends inside a code point: one rule for
// every text Writer that went wrong.
//
// Concurrency: used by the goroutine holding the message lock.
type textWriter struct {
	io.WriteCloser
	c   *Conn
	v   utf8Validator
	err error // the first refused Write's error: sticky
}

func (w *textWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.v.write(p) {
		w.err = fmt.Errorf("%w: text message", ErrInvalidUTF8)
		return 0, w.err
	}
	return w.WriteCloser.Write(p)
}

func (w *textWriter) Close() error {
	err := w.err
	if err == nil && !w.v.complete() {
		err = fmt.Errorf("%w: text message ends inside a code point", ErrInvalidUTF8)
	}
	if err != nil {
		w.v.reset()
		w.c.fail(&failure{StatusInternalError, err})
		_ = w.WriteCloser.Close() // ends the chain; the connection is closed, nothing goes out
		return err
	}
	return w.WriteCloser.Close()
}

// beginWrite counts the caller as a writer (see leaveWriterLocked) and
// takes the message lock for one whole message.
func (c *Conn) beginWrite(ctx context.Context) error {
	c.writers.Add(1)
	if err := c.lockMessage(ctx); err != nil {
		c.frameMu.Lock()
		c.leaveWriterLocked()
		c.frameMu.Unlock()
		return err
	}
	return nil
}

// endWrite releases what beginWrite took; the last writer out flushes.
// It returns err, or the flush's error, preferring ctx's.
func (c *Conn) endWrite(ctx context.Context, err error) error {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	return c.endWriteLocked(ctx, err)
}

// endWriteLocked is endWrite for a caller that holds frameMu. A writer
// waiting for the message lock counts already (beginWrite), so this one
// leaves first and, if it is the last, flushes for all while ctx is
// still watched: the flush writes its own frame too (a Write leaves it
// in the buffer whenever it counts itself among the writers), and a ctx
// that ends while that write waits on a peer that stopped reading must
// end the call, as Write promises, not leave it to WriteTimeout. The
// watch is disarmed, and the lock released, after: the next holder of
// the lock arms the watch with its own ctx.
func (c *Conn) endWriteLocked(ctx context.Context, err error) error {
	if ferr := c.leaveWriterLocked(); err == nil {
		err = ferr
	}
	c.writeCtx.disarm()
	<-c.msgSem
	return writeCtxErr(ctx, err)
}

// writeCtxErr is ctxErr for a write, except that a write that ran past
// WriteTimeout reports its timeout even if ctx ended meanwhile. ctx's
// watch ends a write by closing the connection, never with a deadline, so
// the timeout is the write's own: a context that ended after it did not
// cause it (a typed stream's peer watcher sees the connection the timeout
// closed and cancels the context the write shares; the stream must still
// learn that its peer stopped reading, not that it was canceled).
func writeCtxErr(ctx context.Context, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return ctxErr(ctx, err)
}

// writableLocked reports why the frame (a data frame if data) may not be
// written, if so: nothing after the close or a failure, and no data frame
// after our close frame (§5.5.1), even while Close waits for the peer's.
// The close is checked first: once the connection is closed every call
// says so (closedErr: the peer's close frame, which a reader may find
// after a write the peer reset), not the write's failure. Caller holds
// frameMu.
func (c *Conn) writableLocked(data bool) error {
	select {
	case <-c.closed:
		return c.closedErr()
	default:
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	if data && c.closeFrameSent {
		return c.closedErr()
	}
	return nil
}

// writable reports whether a data frame may still be written (see
// writableLocked).
func (c *Conn) writable() bool {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	return c.writableLocked(true) == nil
}

// lockMessage takes the message lock, a buffered channel: unlike a
// sync.Mutex its wait can end with ctx or the connection, and the runtime
// hands it to the writers waiting for it in turn, before any newcomer
// (a full channel's receive moves the first waiting send in). A lock that
// let newcomers in first, an atomic compare-and-swap, saved two channel
// operations per message but starved an occasional Write behind a
// writing loop (604 ms against 36 in a review's test) and left a
// coalesced frame unsent behind a Writer that took the lock ahead of the
// writer counted to flush it (leaveWriterLocked).
func (c *Conn) lockMessage(ctx context.Context) error {
	select {
	case c.msgSem <- struct{}{}:
	default:
		if c.msgSem == nil {
			return errZeroConn // a send to its nil msgSem never proceeds
		}
		select {
		case c.msgSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closed:
			return c.closedErr()
		}
	}
	if err := arm(&c.writeCtx, c, ctx); err != nil {
		<-c.msgSem
		return err
	}
	return nil
}

// leaveWriterLocked ends a Write. The last writer to leave flushes what
// the others left in the buffer. Caller holds frameMu.
func (c *Conn) leaveWriterLocked() error {
	if c.writers.Add(-1) == 0 && c.wlen > 0 {
		if c.deferFlush() {
			return c.writeErr
		}
		return c.flushLocked()
	}
	return c.writeErr
}

// flushDelay bounds how long deferred frames may wait when the
// application neither reads nor writes again. A variable for tests.
var flushDelay = time.Millisecond

// deferFlush decides whether the last writer out may leave its frames
// buffered: yes while the reader still holds input (a pipelining peer sent
// several messages), so the replies to all of it go out with one system
// call. They are flushed when the reader is about to wait for more input
// (beforeBlock), when the buffer fills, or after flushDelay at the latest.
// Only a Write that follows a read is a reply: writes with no read between
// them (a server pushing a stream) flush as before. Caller holds frameMu.
func (c *Conn) deferFlush() bool {
	reads := c.reads.Load()
	if reads == c.deferReads {
		return false
	}
	c.deferReads = reads
	c.flushPending.Store(true)
	if !c.inputBuffered.Load() {
		c.flushPending.Store(false)
		return false
	}
	// Armed once for frames already waiting: a deferral never postpones
	// the flush of earlier ones. Armed again if the timer fired meanwhile
	// and skipped for a busy writer, which may have deferred again.
	if !c.flushArmed {
		c.flushArmed = true
		if c.flushTimer == nil {
			c.flushTimer = time.AfterFunc(flushDelay, c.flushDeferred)
		} else {
			c.flushTimer.Reset(flushDelay)
		}
	}
	return true
}

// flushDeferred writes frames deferFlush left buffered, unless a writer is
// busy (it flushes when it leaves, or defers again and arms the timer).
// flushTimer's function, and beforeBlock's: either way the frames waiting
// are now seen to, so the next deferral arms the timer afresh. An error
// stays in writeErr for the next writer.
func (c *Conn) flushDeferred() {
	c.frameMu.Lock()
	c.flushArmed = false
	if c.flushPending.Load() && c.writers.Load() == 0 {
		_ = c.flushLocked()
	}
	c.frameMu.Unlock()
}

func (c *Conn) hasMessageExt() bool {
	for _, e := range c.negExts() {
		if e.message != nil {
			return true
		}
	}
	return false
}

// startMessage begins a data message: the frame writer, wrapped by each
// message-level extension. size is the message size when known (Write),
// or -1 (Writer).
//
// RFC 6455 §9.1: the order of operations on the data is the order of the
// server's response, so the first extension must see the application's
// data first. It is therefore the outermost writer, and the chain is built
// from the last extension inwards; messageReader.start unwraps in the
// opposite order, so each extension undoes its own transformation.
func (c *Conn) startMessage(typ MessageType, size int) (io.WriteCloser, error) {
	if c.msgw == nil {
		c.msgw = &msgWriters{mw: messageWriter{c: c}}
	}
	mw := &c.msgw.mw
	mw.op = Opcode(typ)
	mw.rsv = 0
	mw.n = 0
	mw.started = false
	mw.closed = false
	mw.err = nil
	var w io.WriteCloser = mw
	exts := c.negExts()
	for i := len(exts) - 1; i >= 0; i-- {
		e := exts[i]
		if e.message == nil {
			continue
		}
		ew, rsv, err := e.message.WriteMessage(w, typ, size)
		if err == nil {
			// A bit it does not own would reach the peer as another
			// extension's mark, or as one no extension owns (RFC 6455
			// §5.2; readHeader checks the same of what we read). Refused
			// before anything is written: the connection stays usable.
			if err = e.checkMessageRSV(rsv); err != nil && ew != nil {
				w = ew // its writer is aborted with the rest of the chain
			}
		}
		if err != nil {
			c.abortMessage(w, mw, err)
			return nil, err
		}
		mw.rsv |= rsv
		w = ew
	}
	if w == io.WriteCloser(mw) {
		return mw, nil
	}
	c.msgw.ew = extWriter{WriteCloser: w, mw: mw}
	return &c.msgw.ew, nil
}

// abortMessage ends a message that cannot be completed because an
// extension failed to start it or to take its data. The extensions'
// writers are closed, so that they release what they hold, but what they
// write on closing is discarded: if no fragment went out, the message never
// happened and the connection stays usable; if one did, the peer is in the
// middle of a message that will not end, and the connection fails with
// 1011 rather than let a truncated message pass for a whole one — if it
// can still take frames, as in messageWriter.Close: one that is closing,
// closed or was reset by the peer (a compressed message the peer refused
// with 1009 and then reset) is not this writer's to end, and the reader
// finds the peer's close frame (writeErrLocked).
func (c *Conn) abortMessage(w io.WriteCloser, mw *messageWriter, err error) {
	if mw.started && c.writable() {
		c.fail(&failure{StatusInternalError, err})
	}
	mw.discard = true
	if w != io.WriteCloser(mw) {
		_ = w.Close()
	}
	_ = mw.Close() // if an extension did not close its destination
	mw.discard = false
}

// extWriter makes sure the message is ended once the extension chain is
// closed, even if an extension forgets to close its destination, and that
// a message whose data an extension failed to take is aborted rather than
// completed. It does not release the message lock (streamWriter.Close or
// endWrite does, after it), so its reads of mw after the chain's Close
// still see this message.
type extWriter struct {
	io.WriteCloser
	mw  *messageWriter
	err error // the chain's first Write error
}

func (w *extWriter) Write(p []byte) (int, error) {
	n, err := w.WriteCloser.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (w *extWriter) Close() error {
	if w.err != nil {
		if !w.mw.closed {
			w.mw.c.abortMessage(w.WriteCloser, w.mw, w.err)
		}
		return w.err
	}
	err := w.WriteCloser.Close()
	if !w.mw.closed {
		if cerr := w.mw.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// messageWriter writes one message as frames: it buffers up to a frame's
// worth, then sends a non-final fragment; Close sends the final one.
//
// Concurrency: used by the goroutine holding the message lock.
type messageWriter struct {
	c       *Conn
	op      Opcode
	rsv     byte // RSV bits for the first frame
	buf     *[]byte
	n       int
	started bool // a first fragment went out
	closed  bool
	discard bool  // the message is being aborted: no more frames
	err     error // a fragment failed: the message cannot be completed
}

func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrWriterClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	total := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = getBuf(largeBufSize)
		}
		k := copy((*w.buf)[w.n:], p)
		w.n += k
		p = p[k:]
		if w.n == len(*w.buf) && len(p) > 0 {
			if err := w.flushFragment(false); err != nil {
				w.err = err
				return total - len(p), err
			}
		}
	}
	return total, nil
}

func (w *messageWriter) flushFragment(fin bool) error {
	if w.discard {
		w.n = 0
		return nil
	}
	op, rsv := w.op, w.rsv
	if w.started {
		op, rsv = OpContinuation, 0
	}
	var p []byte
	if w.buf != nil {
		p = (*w.buf)[:w.n]
	}
	err := w.c.writeFrame(fin, op, rsv, p, !fin)
	if err == nil {
		w.started = true
	}
	w.n = 0
	return err
}

// Close sends the final fragment. The message lock stays held: its
// holder (streamWriter.Close, endWrite) releases it once every writer of
// the chain is done with the message.
//
// After a fragment failed (a frame extension refused it, or the write
// did), the final one Close sends included, the message is missing those
// bytes: Close does not send a final
// fragment that would pass it for a whole one. It returns that error.
// If fragments went out on a connection that could still take more (a
// frame extension refused this one), it fails the connection with 1011,
// as abortMessage does; one that is closing, closed or was reset by the
// peer is not this writer's to end: a Close under way finishes its
// handshake, and the reader finds the peer's close frame. If no fragment
// went out, nothing was sent and the connection stays usable.
func (w *messageWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		// The final fragment can be refused too (a frame extension's
		// OutgoingFrame): then it is the same as a fragment refused
		// before it, and the peer, left inside the message, must not
		// take our next message's first frame for a protocol error
		// (RFC 6455 §5.4).
		err = w.flushFragment(true)
	} else {
		w.n = 0 // no final fragment
	}
	if err != nil && !w.discard && w.started && w.c.writable() {
		w.c.fail(&failure{StatusInternalError, err})
	}
	if w.buf != nil {
		putBuf(w.buf)
		w.buf = nil
	}
	return err
}

// writeControl sends a control frame and flushes it at once: a pong or a
// close must not wait behind a streaming Writer.
func (c *Conn) writeControl(op Opcode, payload []byte) error {
	return c.writeFrame(true, op, 0, payload, true)
}

// writeFrame writes one frame under the frame lock. Small frames are copied
// to the write buffer (and masked there, for clients); they are flushed at
// once when flush is set or nobody else is waiting to write. Large server
// frames go out with one writev of header and payload.
func (c *Conn) writeFrame(fin bool, op Opcode, rsv byte, p []byte, flush bool) error {
	c.frameMu.Lock()
	defer c.frameMu.Unlock()
	return c.writeFrameLocked(fin, op, rsv, p, flush)
}

// writeFrameLocked is writeFrame for a caller that holds frameMu (Ping,
// which waits for the lock under its ctx).
func (c *Conn) writeFrameLocked(fin bool, op Opcode, rsv byte, p []byte, flush bool) error {
	if err := c.writableLocked(!op.IsControl()); err != nil {
		return err
	}
	if op == OpClose && !c.cfg.raw {
		// Raw mode writes what it is given: it may play a peer that
		// breaks this rule.
		c.closeFrameSent = true
	}
	// The ping's own number, before an extension rewrites the payload.
	ping, seq := op == OpPing, p
	if err := c.transformOutgoing(&fin, &op, &rsv, &p); err != nil {
		return err
	}
	if ping {
		// Counted once no extension refused it: a refused ping never goes
		// out (ConnStats.PingsSent).
		c.pingWriting(seq)
	}
	h := header{fin: fin, rsv: rsv, opcode: op, masked: c.client, length: int64(len(p))}
	if c.client {
		h.key = rand.Uint32() // §5.3: a fresh, unpredictable key per frame
	}
	hn := headerLen(h.length, h.masked)
	if c.wbuf == nil {
		n := hn + len(p)
		if c.inputBuffered.Load() {
			n = largeBufSize // room for the replies to all the buffered input
		}
		c.wbuf = getBuf(n)
	}
	buf := *c.wbuf
	if c.wlen+hn+len(p) > len(buf) && c.wlen > 0 {
		if err := c.flushLocked(); err != nil {
			return err
		}
		if c.wbuf == nil {
			c.wbuf = getBuf(hn + len(p))
		}
		buf = *c.wbuf
	}
	if !c.client && hn+len(p) > len(buf) {
		// Large server frame: header and payload in one writev, no copy.
		tx := c.writeSpare()
		putHeader(tx.hdr[:], &h)
		putBuf(c.wbuf)
		c.wbuf = nil
		return c.writeErrLocked(c.deadline(func() error { return c.writeSock2(tx.hdr[:hn], p) }))
	}
	c.wlen += putHeader(buf[c.wlen:], &h)
	pos := 0
	for {
		k := copy(buf[c.wlen:], p)
		if c.client {
			pos = mask(h.key, pos, buf[c.wlen:c.wlen+k])
		}
		c.wlen += k
		p = p[k:]
		if len(p) == 0 {
			break
		}
		if err := c.flushLocked(); err != nil {
			return err
		}
		if c.wbuf == nil {
			c.wbuf = getBuf(len(p))
		}
		buf = *c.wbuf
	}
	if flush || c.writers.Load() == 0 {
		return c.flushLocked()
	}
	return nil
}

// flushLocked writes the buffered frames. Caller holds frameMu.
func (c *Conn) flushLocked() error {
	c.flushPending.Store(false)
	if c.wlen == 0 {
		return c.writeErr
	}
	b := (*c.wbuf)[:c.wlen]
	err := c.deadline(func() error { return c.writeSock(b) })
	c.wlen = 0
	putBuf(c.wbuf)
	c.wbuf = nil
	return c.writeErrLocked(err)
}

// deadline runs a write with the write timeout armed. A socket's raw
// write arms it only if the socket cannot take the bytes at once
// (rawWriteOnce): most writes never wait, and reading the clock for each
// was the largest cost of a small Write after the locks.
func (c *Conn) deadline(write func() error) error {
	if c.rawConn == nil {
		c.armWriteDeadline()
	}
	return write()
}

// armWriteDeadline sets the write deadline of a connection written through
// net.Conn's Write (TLS, pipes) WriteTimeout from now: before each write,
// and again as a write in pieces (writeNet) makes progress, so
// WriteTimeout bounds a write that makes no progress, not a large message
// to a slow peer that keeps reading. The deadline is moved only when it
// has drifted by more than an eighth of the timeout, so a busy connection
// does not reset a timer on every frame; a write therefore fails after
// between 7/8 and all of WriteTimeout without progress. Caller holds
// frameMu.
func (c *Conn) armWriteDeadline() {
	// time.Since reads only the monotonic clock: half the cost of
	// time.Now, which was the largest cost of a small Write in a CPU
	// profile. wdead is 0 (long past) until the first deadline.
	if t := c.cfg.writeTimeout; t > 0 {
		if now := time.Since(pollEpoch); c.wdead-now < t-t/8 {
			c.wdead = now + t
			// pollEpoch carries a monotonic reading, and so the deadline.
			_ = c.nc.SetWriteDeadline(pollEpoch.Add(c.wdead))
		}
	}
}

func (c *Conn) writeErrLocked(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-c.closed:
		err = c.closedErr()
	default:
		if _, ok := err.(*os.SyscallError); ok {
			err = fmt.Errorf("websocket: %w", err) // names its call already
		} else {
			err = fmt.Errorf("websocket: write: %w", err)
		}
		if !peerReset(err) {
			// A failed or timed-out write leaves a partial frame on the
			// wire: the connection cannot continue.
			c.closeWith(err)
			break
		}
		// The peer reset the connection. What it sent before is still in
		// the socket, and reading it cannot wait: often its close frame,
		// saying why (1009 from a server that refused a message too big
		// and closed without reading the rest of it, which resets the
		// connection). Closed now, that would be lost and the reader
		// would report only the reset; the reader finds it instead and
		// closes the connection with it, or with 1006 at the end of the
		// input. Writes fail from now on (writeErr); with no reader, the
		// close timeout closes the connection.
		time.AfterFunc(c.cfg.closeTimeout, func() { c.closeWith(err) })
	}
	c.writeErr = err
	return err
}

// peerReset reports whether a write failed because the peer reset the
// connection (a broken pipe is the same, seen by a later write).
func peerReset(err error) bool { return netfail.Reset(err) }
