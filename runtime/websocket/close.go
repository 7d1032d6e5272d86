package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxCloseReason: a close payload is at most 125 bytes, 2 of them the code.
const maxCloseReason = maxControlPayload - 2

// Close runs the closing handshake (RFC 6455 §7.1.2): it sends a close
// frame with code and reason, waits up to the close timeout for the peer's
// close frame, and returns once it arrived. A server closes the TCP
// connection then; a client leaves the server to close it first (§7.1.1):
// its socket waits for the server's FIN in the background, up to the close
// timeout, and is closed after it (a CloseNow does not cut that short). A
// write in progress that cannot let the close frame out within the close
// timeout (its peer has stopped reading) is ended by closing the TCP
// connection at once. It returns nil when the peer answered, or why it
// could not; an error that also wraps ErrCloseNotSent says the close
// frame never went out (that write, or the connection closed before it),
// so the peer saw the connection drop (1006), not code. Safe from any
// goroutine. A second call, or one after the connection sent or answered
// a close frame on its own (a failure, §7.1.7; the peer's close, §5.5.1),
// sends nothing and returns ErrClosed once that closing handshake is
// over: its close frame written or refused, then the connection closed,
// each waited for up to the close timeout, as the first call waits.
// CloseSent says which close frame went out. Once the close frame is sent, data
// messages are refused with ErrClosed (§5.5.1: no data frame may follow
// it), while Close still waits.
//
// The peer's close frame is read by the goroutine reading the connection
// if there is one; otherwise Close reads frames itself. Data messages it
// reads on the way are kept (up to MaxMessageSize in all) and returned by
// the reads that follow, before the *CloseError: a read loop that was
// between two reads, or already waiting in the next one, loses nothing
// the peer sent before its close frame.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !code.Sendable() {
		return fmt.Errorf("websocket: close code %d may not be sent", int(code))
	}
	if len(reason) > maxCloseReason {
		return fmt.Errorf("websocket: close reason of %d bytes exceeds %d", len(reason), maxCloseReason)
	}
	if !utf8.ValidString(reason) {
		return fmt.Errorf("%w: close reason", ErrInvalidUTF8)
	}
	if c.closed == nil {
		return errZeroConn
	}
	c.closeMu.Lock()
	if c.closeSent {
		own := c.ownCloseLocked()
		c.closeMu.Unlock()
		c.awaitClosing(own)
		return ErrClosed
	}
	c.closeSent = true
	own := c.claimCloseWrite(code, reason)
	c.closeMu.Unlock()

	var buf [maxControlPayload]byte
	binary.BigEndian.PutUint16(buf[:], uint16(code))
	n := 2 + copy(buf[2:], reason)
	// A write in progress holds the frame lock until its bytes are out,
	// which a peer that has stopped reading stretches to the write
	// timeout: the close timeout bounds the wait for it too. Closing the
	// TCP connection then ends that write, and ours fails. The close is
	// graceful, a FIN after what is queued: a peer that reads slowly gets
	// the messages whose Write returned nil (a reset drops them; a peer
	// that stopped reading and one that reads slowly cannot be told
	// apart here, as the write goes on filling the queue).
	stuck := time.AfterFunc(c.cfg.closeTimeout, func() { c.closeWith(ErrClosed) })
	err := c.writeControl(OpClose, buf[:n])
	c.closeWritten(own, err) // a reader in gotClose may end the connection now
	if !stuck.Stop() {
		held := fmt.Errorf("websocket: closing handshake: a write held the connection for the close timeout: %w", ErrClosed)
		if err == nil {
			// The frame reached the socket just before the timer closed
			// it, and leaves ahead of the FIN: the peer may read it.
			return held
		}
		return closeNotSent{held}
	}
	if err != nil {
		c.closeWith(ErrClosed)
		return closeNotSent{err}
	}
	return c.awaitPeerClose()
}

// awaitClosing is Close for a connection whose close frame is on its way
// already: it waits until the closing handshake that frame began is over,
// as the Close that began it does. A caller that goes on once Close has
// returned (wsrpc runs OnClose then) would otherwise run
// while the first Close still writes or waits for the peer: it waited for
// the connection's close for one close timeout from its own start, which
// a first close frame stuck behind a write for most of its close timeout
// outlasted, its handshake and counters finishing after this call had
// returned. own is the close frame Close or a failure began (nil when the
// frame is the answer to the peer's, whose reader closes the connection
// once it is written, or a raw WriteFrame's).
func (c *Conn) awaitClosing(own *ownClose) {
	t := time.NewTimer(c.cfg.closeTimeout)
	defer t.Stop()
	if own != nil {
		select {
		case <-own.wrote:
		case <-t.C:
			return
		}
		// The first Close waits as long again for the peer's close frame
		// once its own is written (awaitPeerClose).
		t.Reset(c.cfg.closeTimeout)
	}
	select {
	case <-c.closed:
	case <-t.C:
	}
}

// awaitPeerClose waits for the peer's close frame after ours went out.
func (c *Conn) awaitPeerClose() error {
	timer := time.NewTimer(c.cfg.closeTimeout)
	defer timer.Stop()
	select {
	case <-c.peerClosed():
	case <-c.closed:
		// Closed by the reader or another goroutine: the handshake only
		// completed if the peer's close frame came first.
		if c.peerCloseFrame() == nil {
			return fmt.Errorf("websocket: closing handshake: %w", c.closedErr())
		}
	case c.readSem <- struct{}{}:
		// Nobody is reading: read until the close frame arrives, unless
		// it came already. A raw connection's ReadFrame returns it
		// without ending the connection, so Close, answering it, finds
		// the read lock free: a drain would wait for a second close
		// frame until the close timeout.
		var err error
		if c.peerCloseFrame() == nil {
			deadline := time.Now().Add(c.cfg.closeTimeout)
			_ = c.nc.SetReadDeadline(deadline)
			err = c.drainUntilClose()
		}
		<-c.readSem
		if c.peerCloseFrame() == nil {
			c.closeWith(ErrClosed)
			return fmt.Errorf("websocket: closing handshake: %w", err)
		}
	case <-timer.C:
		c.closeWith(ErrClosed)
		return errors.New("websocket: closing handshake timed out")
	}
	if c.cfg.raw {
		// Raw mode's reads hand the peer's close frame to the caller and
		// end nothing (ReadFrame): here Close ran the handshake, and both
		// close frames have crossed, so it ends the connection itself
		// (RFC 6455 §7.1.1: a server closes TCP now, a client waits for
		// the server's FIN) rather than wait out the close timeout.
		c.finishClose()
	}
	// The reader that saw the close frame closes the connection once it
	// has answered; wait for that (bounded) so Close returns with the
	// connection closed (a client's socket may still wait for the server's
	// FIN: finishClose).
	select {
	case <-c.closed:
	case <-timer.C:
		c.closeWith(ErrClosed)
	}
	return nil
}

// drainUntilClose reads until the peer's close frame. Caller holds
// readSem. Data messages are kept for the reads that follow, up to
// MaxMessageSize in all: a read loop that was between two reads when Close
// took over still gets what the peer sent before its close frame. Beyond
// that bound they are dropped.
func (c *Conn) drainUntilClose() error {
	c.closeDrain.Store(true)
	if c.readErr != nil {
		return c.readErr
	}
	if !c.cfg.raw {
		if c.mr.active {
			// A message a reader left half read cannot be handed back whole.
			if err := c.mr.discard(); err != nil {
				return err
			}
		}
		for {
			typ, data, err := c.readWhole(nil)
			if err != nil {
				return err
			}
			if rx := c.readSpare(); rx.pendingSize+int64(len(data)) <= c.cfg.maxMessageSize {
				rx.pending = append(rx.pending, pendingMessage{typ, data})
				rx.pendingSize += int64(len(data))
				c.closeKept.Store(true)
			}
		}
	}
	for {
		if c.mr.active {
			if err := c.mr.discard(); err != nil {
				return err
			}
		}
		if err := c.readHeader(); err != nil {
			return err
		}
		if c.rh.opcode.IsControl() {
			if c.rh.opcode == OpClose {
				p := c.readSpare().ctrl[:c.rh.length]
				if err := c.readFull(p); err != nil {
					return err
				}
				err := c.gotClose(p) // in raw mode awaitPeerClose ends the connection
				c.readErr = err
				return err
			}
			if err := c.handleControl(); err != nil {
				return err
			}
			continue
		}
		if err := c.skipPayload(); err != nil {
			return err
		}
	}
}

// peerClosed returns a channel closed when the peer's close frame has
// arrived. It is made on demand: only a Close waiting for the peer needs
// it.
func (c *Conn) peerClosed() <-chan struct{} {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	cs := c.closingLocked()
	if cs.rcvd == nil {
		cs.rcvd = make(chan struct{})
		if cs.peer != nil {
			close(cs.rcvd)
		}
	}
	return cs.rcvd
}

func (c *Conn) peerCloseFrame() *CloseError {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.cs == nil {
		return nil
	}
	return c.cs.peer
}

// closeState is what the close of a connection leaves for the calls
// after it, apart from the Conn: an open connection has none of it, and
// an idle connection's live heap is mostly its Conn (TestConnSize). It is
// allocated once, by the first of the close's steps to need it, and under
// the connection's closeMu, like its fields.
type closeState struct {
	own   *ownClose     // the close frame this side began the handshake with, if it did (claimCloseWrite)
	peer  *CloseError   // the peer's close frame
	rcvd  chan struct{} // closed when the peer's close frame arrived; made by peerClosed
	cause error         // why the connection was closed (closeConn)
}

// closingLocked returns the close state, allocating it the first time.
// Caller holds closeMu.
func (c *Conn) closingLocked() *closeState {
	if c.cs == nil {
		c.cs = new(closeState)
	}
	return c.cs
}

// CloseNow closes the TCP connection without a closing handshake.
func (c *Conn) CloseNow() error {
	if c.closed == nil {
		return errZeroConn
	}
	c.closeWith(ErrClosed)
	return nil
}

// fail sends a close frame with the failure's code (best effort, bounded
// by the write timeout) and closes the connection (RFC 6455 §7.1.7). It is
// for failures found elsewhere than in what the peer sent (a message we
// could not finish writing, a Handler's panic; a missed pong sends no
// close frame at all, see keepalive): the TCP
// connection is closed at once. failReading is for the others.
func (c *Conn) fail(f *failure) {
	c.sendFailure(f)
	c.closeWith(f)
}

// failReading is fail for a failure the reader found in the peer's input
// (a message over MaxMessageSize, 1009; a protocol error, 1002; invalid
// UTF-8, 1007): the connection is closed at once, but its socket lingers
// (lingerClose) so that the close frame reaches the peer. Caller holds
// readSem and has set readErr, so nothing else reads the socket again.
func (c *Conn) failReading(f *failure) {
	c.sendFailure(f)
	c.closeConn(f, drainInput, c.drainStart())
}

// drainFrom is where the drain of a failed connection picks up the
// peer's input (lingerClose): the reader stopped inside a frame, with
// bytes it had read from the socket and not parsed yet.
type drainFrom struct {
	left    int64   // payload bytes of the frame in progress still to come
	closing bool    // that frame is the peer's close frame
	buf     *[]byte // pooled, largeBufSize; buf[pos:end] was read, not parsed
	pos     int
	end     int
}

// drainStart records where the reader stopped, for the drain. Caller
// holds readSem. The buffered bytes are copied: the reader still returns
// its buffer after failRead. A header that failed to parse (framing lost)
// is still unread at rpos, and fails the drain's parse again.
func (c *Conn) drainStart() *drainFrom {
	d := &drainFrom{left: c.rleft, closing: c.rh.opcode == OpClose, buf: getBuf(largeBufSize)}
	if c.rbuf != nil {
		// Read buffers are pooled, at most largeBufSize: it fits.
		d.end = copy(*d.buf, (*c.rbuf)[c.rpos:c.rend])
	}
	return d
}

// sendFailure writes the close frame of a failure unless a close frame
// went out already.
func (c *Conn) sendFailure(f *failure) {
	c.closeMu.Lock()
	send := !c.closeSent
	c.closeSent = true
	var own *ownClose
	reason := ""
	if send {
		reason = CloseReason(f.err.Error())
		own = c.claimCloseWrite(f.code, reason)
	}
	c.closeMu.Unlock()
	if send {
		var buf [maxControlPayload]byte
		binary.BigEndian.PutUint16(buf[:], uint16(f.code))
		n := 2 + copy(buf[2:], reason)
		c.closeWritten(own, c.writeControl(OpClose, buf[:n]))
	}
}

// ownClose is the close frame with which this side began the closing
// handshake (RFC 6455 §7.1.2), by Close or a failure (sendFailure).
//
// Concurrency: made once per connection by claimCloseWrite, under
// closeMu, and kept in its closeState; code and reason are not changed after; sent is under closeMu,
// set before wrote is closed (closeWritten).
type ownClose struct {
	wrote  chan struct{} // closed once the write returned, written or refused
	code   StatusCode
	reason string
	sent   bool // the write returned nil: the frame reached the socket
}

// claimCloseWrite is for a caller that has just set closeSent and will
// write the close frame of code and reason itself, right after (Close,
// sendFailure): it returns the record the caller passes to closeWritten
// once that write returned, written or refused. Between the two a reader
// may get the peer's close frame; gotClose must not echo it (RFC 6455
// §5.5.1: one close frame each way), nor end the connection before ours
// is out, or ours would be refused and the peer, never getting a close
// frame, would wait out its close timeout and see 1006: it waits on
// wrote (awaitCloseWrite). One per connection, made once: closeSent is
// set once. Caller holds closeMu.
func (c *Conn) claimCloseWrite(code StatusCode, reason string) *ownClose {
	cs := c.closingLocked()
	cs.own = &ownClose{wrote: make(chan struct{}), code: code, reason: reason}
	return cs.own
}

// ownCloseLocked is the close frame this side began the handshake with,
// or nil (none yet, or the peer began it). Caller holds closeMu.
func (c *Conn) ownCloseLocked() *ownClose {
	if c.cs == nil {
		return nil
	}
	return c.cs.own
}

// closeWritten records how the write of own's frame ended (err nil: it
// went out) and wakes whoever waits for it.
func (c *Conn) closeWritten(own *ownClose, err error) {
	c.closeMu.Lock()
	own.sent = err == nil
	c.closeMu.Unlock()
	close(own.wrote)
}

// CloseSent returns the close frame with which this side began the
// closing handshake (RFC 6455 §7.1.2): the code and reason of Close, or
// of a failure of the connection (§7.1.7: a protocol error, a message
// over MaxMessageSize…); nil if it began none (none yet, or the peer
// began it: the answer that echoes the peer's code, §5.5.1, is not
// reported, nor a close frame a raw connection wrote with WriteFrame).
// sent reports whether that frame went out: false when its write failed
// or the connection was closed before it (the peer then saw the TCP
// connection drop, 1006; Close's error wraps ErrCloseNotSent). A write
// still in progress is waited for, up to the close timeout (sent false
// if it lasts longer).
//
// It is how a layer above learns what this side sent when someone else
// closed the connection beneath it — a hub's Close of a slow consumer
// (1013 "slow consumer"), a failure the reader found — since the peer's
// answer carries the code alone, never the reason.
//
// Cost: a lock, and an allocation when a close frame was begun; none on
// the data path. Safe from any goroutine, at any time.
func (c *Conn) CloseSent() (ce *CloseError, sent bool) {
	if c.closed == nil {
		return nil, false
	}
	c.closeMu.Lock()
	own := c.ownCloseLocked()
	c.closeMu.Unlock()
	if own == nil {
		return nil, false
	}
	select {
	case <-own.wrote:
	default:
		t := time.NewTimer(c.cfg.closeTimeout)
		select {
		case <-own.wrote:
		case <-t.C:
		}
		t.Stop()
	}
	c.closeMu.Lock()
	sent = own.sent
	c.closeMu.Unlock()
	return &CloseError{Code: own.code, Reason: own.reason}, sent
}

// awaitCloseWrite waits until the close frame another goroutine claimed
// (claimCloseWrite) is written or refused, for gotClose before it ends the
// connection. A connection closed meanwhile (CloseNow, a missed pong, a
// Poller's close, Close's own close timeout) will write nothing more, so
// the wait ends there too; the close timeout bounds it in any case (the
// write can wait behind a stalled one that long, then Close closes the
// connection). The caller holds readSem, which no writer needs.
func (c *Conn) awaitCloseWrite(wrote <-chan struct{}) {
	select {
	case <-wrote:
		return
	case <-c.closed:
		return
	default:
	}
	t := time.NewTimer(c.cfg.closeTimeout)
	defer t.Stop()
	select {
	case <-wrote:
	case <-c.closed:
	case <-t.C:
	}
}

// CloseReason makes any text, an error's message say, a reason Close
// accepts: valid UTF-8, as RFC 6455 §5.5.1 requires of the reason (a peer
// fails an invalid one with 1007), each invalid sequence replaced by
// U+FFFD, and at most 123 bytes long, cut between characters. Error
// messages quote headers, paths and peers' bytes, so they cannot be trusted
// to be either.
func CloseReason(s string) string {
	if len(s) <= maxCloseReason && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxCloseReason {
		return s
	}
	i := maxCloseReason
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// closeWith closes the TCP connection once, remembering why, and releases
// everything the connection holds.
func (c *Conn) closeWith(cause error) { c.closeConn(cause, closeNow, nil) }

// sockEnd is how closeConn ends the socket itself.
type sockEnd int

const (
	closeNow   sockEnd = iota // close it at once
	drainInput                // drain the peer's frames up to its close frame (lingerClose)
	awaitFIN                  // a client after the closing handshake: wait for the server's FIN (lingerClose)
)

// closeConn is closeWith; with drainInput (from says where the peer's
// input stands) or awaitFIN the socket's own close is left to lingerClose,
// on a goroutine of its own, and everything else happens at once. Only the
// first close counts: a CloseNow after a failure or a closing handshake
// does not cut the lingering short (wsrpc's layer calls it on every failed
// call; a client that closed first would carry TIME_WAIT, §7.1.1).
func (c *Conn) closeConn(cause error, end sockEnd, from *drainFrom) {
	lingering := false
	c.closeOnce.Do(func() {
		c.closeMu.Lock()
		c.closingLocked().cause = cause
		c.closeMu.Unlock()
		close(c.closed)
		c.runAfterClose()
		c.stopWatches()
		if end == closeNow {
			_ = c.nc.Close()
		} else {
			lingering = true
			go c.lingerClose(end, from)
		}
		if e := c.poll.Load(); e != nil {
			// An idle polled connection has no reader to notice: wake one,
			// so the handler hears of the close.
			e.wake()
		}
		// Loaded after c.closed is closed: a Ping that publishes the
		// state later finds the connection closed (pingState).
		if ps := c.ping.Load(); ps != nil {
			if ps.kaTimer != nil {
				ps.kaTimer.Stop()
			}
			ps.mu.Lock()
			for k, ch := range ps.waiters {
				close(ch)
				delete(ps.waiters, k)
			}
			ps.mu.Unlock()
		}
	})
	if !lingering && from != nil {
		putBuf(from.buf) // closed already: no drain
	}
}

// lingerClose closes the socket of a connection that failed on something
// the peer sent, once the peer has had the chance to read the close frame
// that says why (RFC 6455 §7.1.7: fail, sending the close frame first).
// The peer is typically still sending when we fail: the rest of the message
// over MaxMessageSize, the messages behind it, an end-of-stream marker. A
// socket closed with received data unread, or that receives more after
// its close, makes the kernel answer with a TCP reset. The reset fails the
// peer's next write, and may erase what the peer had not read yet (RFC
// 9112 §9.6), our close frame with it: the peer sees "connection reset by
// peer" (1006, a lost connection that a client may retry) instead of the
// 1009 or 1002 we sent; a Conn, for one, closes when a write fails, never
// reading the close frame that may be waiting. So we keep reading and
// dropping what comes, frame by frame (drainFrames), and close when the
// peer's close frame arrives (it read ours and answered: the closing
// handshake is complete, and §7.1.1 has the server close TCP now; a
// client then waits for the server's FIN, as below), at EOF, after the
// close timeout, or after lingerLimit bytes.
//
// We do not half-close first, as an HTTP server with a request unread
// does: a proxy that sees our FIN ends the whole tunnel (nginx finalizes
// an upgraded request as soon as either side reaches EOF; HAProxy behaved
// alike), resetting a peer that is still writing before it reads our close
// frame (through nginx, 10 of 10 messages of 8 MB over a 4 MiB limit got
// a reset instead of 1009). And without our FIN the drain cannot wait for
// EOF alone: a peer that answers our close frame and waits for the server
// to close TCP (§7.1.1; browsers do) would hold it until the close
// timeout. Hence the frame-aware drain, which needs no CloseWrite: any
// net.Conn with deadlines drains so.
//
// With awaitFIN it is a client's socket after a complete closing handshake
// (finishClose): §7.1.1 has the client wait for the server to close the
// TCP connection first, so that TIME_WAIT falls on the server. It does not
// half-close (a FIN of ours first would make the client the closing side),
// and reads until the server's EOF, the close timeout, or awaitFINLimit
// bytes (the server may send nothing after its close frame, §5.5.1). Any
// net.Conn with deadlines can wait so; one without is closed at once.
//
// The deadline covers writes too: a control frame write that slipped in
// after the close frame and is blocked behind a peer that reads nothing
// ends with it (for TLS, crypto/tls then bounds its close_notify write by
// itself, as it does in any Close). Runs on a goroutine of its own, one per
// such failure or client close, for as long as the wait (detecting the
// peer's FIN takes a read parked in the runtime's poller, which the
// connection's timers cannot do); nothing else uses the socket any more
// (the reader set readErr or saw the close frame, writes are refused once
// the connection is closed). It reads
// through net.Conn's Read, which waits in the runtime's poller with the
// deadline, also for a socket a Poller serves: that one stays in the
// Poller's epoll set (unless its worker was lingering, which took it out)
// until the worker that failed it removes it (pollEntry.finish, which can
// now always find it open), and the events the drain's input raises
// meanwhile find the entry running or done, so no worker reads it again.
func (c *Conn) lingerClose(end sockEnd, from *drainFrom) {
	defer c.nc.Close()
	var buf *[]byte
	if from != nil {
		buf = from.buf
	} else {
		buf = getBuf(largeBufSize)
	}
	defer putBuf(buf)
	if c.nc.SetDeadline(time.Now().Add(c.cfg.closeTimeout)) != nil {
		return // the drain could not be bounded
	}
	if end == drainInput && (!c.drainFrames(from) || !c.client) {
		return
	}
	for left := int64(awaitFINLimit); left > 0; {
		n, err := c.nc.Read(*buf)
		if err != nil {
			return
		}
		left -= int64(n)
	}
}

// drainFrames reads and drops the peer's input from where the reader
// stopped: the rest of the frame in progress (part of it may be in d's
// buffer already), then each frame after it, its header parsed (RFC 6455
// §5.2) and its payload skipped unread (masked or not), until the peer's
// close frame, whose payload it skips too (closing a socket with input
// unread would reset the connection after all). It reports whether that
// close frame came; it stops without it at EOF, a read error (the
// deadline), a header that does not parse (the framing is lost) or after
// lingerLimit bytes from the socket.
func (c *Conn) drainFrames(d *drainFrom) bool {
	b := *d.buf
	budget := lingerLimit(c.cfg.maxMessageSize)
	// more reads at least one byte more into b[d.end:], moving the
	// unparsed tail to the front when b is full.
	more := func() bool {
		if budget <= 0 {
			return false
		}
		if d.pos == d.end {
			d.pos, d.end = 0, 0
		} else if d.end == len(b) {
			d.end = copy(b, b[d.pos:d.end])
			d.pos = 0
		}
		n, _ := c.nc.Read(b[d.end:])
		d.end += n
		budget -= int64(n)
		return n > 0
	}
	left, closing := d.left, d.closing
	for {
		for left > 0 {
			if d.pos == d.end && !more() {
				return false
			}
			k := int(min(left, int64(d.end-d.pos)))
			d.pos += k
			left -= int64(k)
		}
		if closing {
			return true
		}
		var h header
		for {
			n, err := parseHeader(b[d.pos:d.end], &h)
			if err != nil {
				return false
			}
			if n > 0 {
				d.pos += n
				break
			}
			if !more() {
				return false
			}
		}
		left, closing = h.length, h.opcode == OpClose
	}
}

// lingerLimit is how much drainFrames reads before it gives up: the rest
// of a message up to twice the limit (a peer that writes a message whole
// reads our close frame only after its last byte; the message that failed
// can exceed the limit by any amount, this covers the usual ones), and
// 1 MiB more for what the peer queued behind it. It bounds the reads a
// peer that never stops sending can cost us, though not the memory
// (the bytes are dropped) or the time (the close timeout does).
func lingerLimit(maxMessageSize int64) int64 {
	const more = 1 << 20
	return more + min(maxMessageSize, 1<<40)*2
}

// awaitFINLimit is how much a client reads while it waits for the
// server's FIN after the closing handshake: nothing should come, and a
// server streaming bytes instead is cut off.
const awaitFINLimit = 64 << 10

// closedErr is what calls on a closed connection return: the peer's close
// frame if there was one, else why the connection was closed.
func (c *Conn) closedErr() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	cs := c.cs
	if cs == nil {
		return ErrClosed
	}
	if cs.peer != nil {
		return cs.peer
	}
	if cs.cause != nil && cs.cause != ErrClosed {
		return fmt.Errorf("%w: %w", ErrClosed, cs.cause)
	}
	return ErrClosed
}
