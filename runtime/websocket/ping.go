package websocket

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// pingState is what Ping, the keepalive and LastRTT keep: the pings'
// numbers, the Pings waiting for their pongs, the keepalive's timer. Most
// connections never send a ping, so it is allocated with the first one
// (pings), or by newConn when PingInterval is set, and never freed: an
// idle connection does not carry it (TestConnSize).
//
// Concurrency: seq is an atomic, taken by Ping and the keepalive from any
// goroutine; everything else is under mu, which is taken after frameMu
// where both are held (pingWriting, pingHelperRun). The pointer to it
// (Conn.ping) is published with a compare-and-swap, so every goroutine
// sees the same one; closeConn loads it after closing c.closed, so a Ping
// that publishes it later finds the connection closed under mu.
type pingState struct {
	seq     atomic.Uint64
	mu      sync.Mutex
	waiters map[uint64]chan struct{} // Pings waiting for a pong, by number
	help    *pingHelper              // waits for frameMu on behalf of Pings (writePing)
	kaTimer *time.Timer
	kaSeq   uint64 // keepalive ping awaiting its pong; 0 when none
	// Bytes from the peer when that ping went out (arrived); -1: no count.
	kaArrived int64
	at        pingTimes // when the last pings were written (LastRTT)
}

// pings returns the connection's pingState, allocating it the first time.
func (c *Conn) pings() *pingState {
	if ps := c.ping.Load(); ps != nil {
		return ps
	}
	ps := new(pingState)
	if !c.ping.CompareAndSwap(nil, ps) {
		return c.ping.Load()
	}
	return ps
}

// Ping sends a ping and waits for its pong (RFC 6455 §5.5.2-3). The pong is
// noticed by whichever goroutine reads the connection, so Ping needs a
// concurrent reader. If ctx is done first — while the ping waits to go out
// behind another write (a large one, or one stalled on a peer that stopped
// reading), or while Ping waits for the pong — Ping returns ctx's error and
// the connection stays open. A ping that has begun to go out is finished
// first: a frame cut off half way would end the connection.
func (c *Conn) Ping(ctx context.Context) error {
	if c.closed == nil {
		return errZeroConn
	}
	ps := c.pings()
	seq := ps.seq.Add(1)
	ch := make(chan struct{})
	ps.mu.Lock()
	select {
	case <-c.closed:
		ps.mu.Unlock()
		return c.closedErr()
	default:
	}
	if ps.waiters == nil {
		ps.waiters = make(map[uint64]chan struct{})
	}
	ps.waiters[seq] = ch
	ps.mu.Unlock()
	h, err := c.writePing(ctx, ps, seq, ch)
	defer func() {
		ps.mu.Lock()
		if h == nil {
			delete(ps.waiters, seq)
		} else if h.refs--; h.refs == 0 {
			delete(ps.waiters, h.seq)
		}
		ps.mu.Unlock()
	}()
	if err != nil {
		return err
	}
	if h != nil {
		ch = h.pong
	}
	select {
	case <-ch:
		select {
		case <-c.closed:
			return c.closedErr()
		default:
			return nil
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return c.closedErr()
	}
}

// writePing writes Ping's ping, waiting for the frame lock only as long as
// ctx lets it: a data write stalled behind a peer that stopped reading
// holds that lock until it makes progress again or WriteTimeout ends it.
// A ping already being written is finished, whatever ctx does meanwhile:
// a frame cut off half way would end the connection, and Ping promises
// to leave it open. The lock is a sync.Mutex (it is taken for every frame,
// so it stays one), which cannot be waited for under a ctx; when it is
// busy a helper goroutine waits for it instead, and writes a ping only if
// a Ping still wants one when it gets it. One helper per connection at
// most waits so: a Ping that finds one waiting joins it, and its ping is
// the helper's, numbered after the Ping that started it, whose pong
// answers every Ping that joined (§5.5.3: a pong answers a ping, and any
// of them proves the peer alive). Pings that give up leave no goroutine
// behind but that one (a heartbeat retrying Ping behind a write stalled
// for good, WriteTimeout < 0, would otherwise leave one per try). A lock
// free at once, or a ctx that is never done, costs no goroutine.
//
// It returns the helper the Ping joined, if it did: the Ping waits for
// that helper's pong, and leaves it when it returns (Ping's refs).
func (c *Conn) writePing(ctx context.Context, ps *pingState, seq uint64, ch chan struct{}) (*pingHelper, error) {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], seq)
	if ctx.Done() == nil {
		return nil, c.writeControl(OpPing, p[:])
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.frameMu.TryLock() {
		defer c.frameMu.Unlock()
		return nil, c.writeFrameLocked(true, OpPing, 0, p[:], true)
	}
	ps.mu.Lock()
	h := ps.help
	if h == nil {
		h = &pingHelper{seq: seq, pong: ch, done: make(chan struct{})}
		ps.help = h
		go c.pingHelperRun(ps, h)
	} else {
		// Never sent: this Ping waits for h's pong, whose entry the
		// Pings that gave up before removed if none was left. A pong
		// closed already (gotPong, closeConn) is not put back: it would
		// be closed again.
		delete(ps.waiters, seq)
		select {
		case <-h.pong:
		default:
			ps.waiters[h.seq] = h.pong
		}
	}
	h.want++
	h.refs++
	ps.mu.Unlock()
	select {
	case <-h.done:
		return h, h.err
	case <-ctx.Done():
		ps.mu.Lock()
		writing := h.writing
		if !writing {
			h.want--
		}
		ps.mu.Unlock()
		if writing {
			<-h.done // being written: see above
		}
		return h, ctx.Err()
	}
}

// pingHelper waits for the frame lock on behalf of the Pings that found it
// busy (writePing). Its fields are under the connection's pingState.mu,
// but for err, set before done is closed.
type pingHelper struct {
	seq     uint64        // its ping's number, the first Ping's
	pong    chan struct{} // pingState.waiters[seq], shared by the Pings that joined
	want    int           // Pings still waiting for the ping to be written
	refs    int           // Pings still waiting on pong; the last one removes it
	writing bool          // it took the lock with want > 0: the ping is written
	done    chan struct{} // closed once it let the lock go
	err     error         // the write's result
}

// pingHelperRun takes the frame lock for h, writes h's ping if a Ping still
// wants it, and lets the lock go. From the moment it holds the lock, Pings
// try the lock themselves again (or start the next helper).
func (c *Conn) pingHelperRun(ps *pingState, h *pingHelper) {
	c.frameMu.Lock()
	ps.mu.Lock()
	ps.help = nil
	h.writing = h.want > 0
	ps.mu.Unlock()
	if h.writing {
		var p [8]byte
		binary.BigEndian.PutUint64(p[:], h.seq)
		h.err = c.writeFrameLocked(true, OpPing, 0, p[:], true)
	}
	c.frameMu.Unlock()
	close(h.done)
}

// ControlSeen reports whether the connection has read a ping or a pong.
// On a connection that has delivered no message it is the proof that the
// peer is alive and the path carries its frames: a reconnecting client
// (wsrpc's WithReconnect) counts such a connection as a success, so that
// a quiet stream cut now and then does not run out of attempts.
func (c *Conn) ControlSeen() bool { return c.controlSeen.Load() }

// gotPong matches a pong to the Ping or keepalive ping that asked for it,
// and to the ping whose round-trip time it ends (LastRTT, pongRTT).
// Unsolicited pongs (§5.5.3 allows them) are counted, and otherwise
// ignored.
//
// A Ping is answered only by its own pong. The keepalive ping is answered
// by the pong of any ping of ours numbered at or after it: §5.5.3 lets a
// peer with several pings waiting answer only the most recent one, so an
// application Ping sent right after the keepalive ping may take its pong,
// and that pong proves the peer alive just as well. Numbers are taken in
// the order pings are made, and one above pingState.seq was never sent.
// On a connection that never sent a ping (no pingState) every pong is
// unsolicited.
func (c *Conn) gotPong(p []byte) {
	c.stats.pongsReceived.Add(1)
	ps := c.ping.Load()
	if len(p) != 8 || ps == nil {
		return
	}
	seq := binary.BigEndian.Uint64(p)
	ps.mu.Lock()
	c.pongRTT(ps, seq)
	if ch, ok := ps.waiters[seq]; ok {
		close(ch)
		delete(ps.waiters, seq)
	}
	if ps.kaSeq != 0 && seq >= ps.kaSeq && seq <= ps.seq.Load() {
		ps.kaSeq = 0
		if ps.kaTimer != nil {
			ps.kaTimer.Reset(c.cfg.pingInterval)
		}
	}
	ps.mu.Unlock()
}

// keepalive runs on a timer, never on a goroutine of its own: every
// PingInterval it sends a ping; if the pong has not come PongTimeout later,
// the peer is gone and the TCP connection is closed at once, without a
// close frame, every call failing with ErrPongTimeout. A close frame (RFC
// 6455 §7.1.7 has a failing endpoint send one only as a SHOULD) is left
// out on purpose: the path that lost the pong would not carry it either,
// and writing it would wait behind a data write stalled on that path —
// up to the write timeout, during which a Send and the Receive beside it
// stay blocked on a connection known dead. Where one direction still
// works, the peer sees the connection lost (1006), which clients retry,
// rather than a 1011 (internal error), which says its own side failed.
// npm ws's heartbeat recipe ends a silent peer the same way (terminate).
//
// A pong is seen only by a read (gotPong), so an application that only
// writes would lose a live peer that answered every ping. Before closing,
// the keepalive asks whether bytes from the peer have arrived since its
// ping went out while no reader waits to see a pong (unreadProvesAlive):
// if so the peer is alive — its pong most likely among them, unread or
// unparsed — and the late pong counts as come (KeepaliveUnread).
// §5.5.2-3 make the pong the answer to a ping, but any bytes prove the
// peer alive; ws and gorilla users get this from a read deadline that any
// read moves. Bytes that arrived before the ping are in the count it
// starts from, so a peer that sent some and then went silent is still
// closed at the timeout; where a reader waits for input, the pong is what
// counts, as before, so a path dark towards the peer is found though the
// peer keeps sending. Where the socket gives no count the pong must have
// been read, as before.
func (c *Conn) keepalive() {
	select {
	case <-c.closed:
		return
	default:
	}
	ps := c.ping.Load() // made by newConn, before the timer
	ps.mu.Lock()
	// Taken under ps.mu, as kaSeq is set: the count is the one of the
	// ping sent below, whatever a pong read just before changed. The
	// ioctl does not block.
	arrived := c.arrived()
	if ps.kaSeq != 0 {
		// The timer was armed for the pong timeout and the pong is late.
		if !c.unreadProvesAlive(ps, arrived) {
			ps.mu.Unlock()
			c.closeWith(ErrPongTimeout)
			return
		}
		ps.kaSeq = 0
		ps.kaTimer.Reset(c.cfg.pingInterval)
		ps.mu.Unlock()
		c.stats.kaUnread.Add(1)
		return
	}
	seq := ps.seq.Add(1)
	ps.kaSeq = seq
	ps.kaArrived = arrived
	ps.kaTimer.Reset(c.cfg.pongTimeout)
	ps.mu.Unlock()
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], seq)
	if err := c.writeControl(OpPing, p[:]); err != nil && c.writable() {
		// A frame extension refused the ping (OutgoingFrame): no pong
		// can come. A write that failed has closed the connection, or
		// left it to its reader (writeErrLocked), and one after our
		// close frame has its close under way; only a refusal leaves the
		// connection open. Waiting out PongTimeout would end it, its
		// peer alive, with ErrPongTimeout, which blames the path: it
		// fails now with the extension's error (1011), as a message
		// whose fragment an extension refused does.
		c.fail(&failure{StatusInternalError, err})
	}
}

// unreadProvesAlive reports whether a late pong counts as come: bytes
// from the peer have arrived since the ping (arrived has grown: read
// from the socket, or waiting in it), and no reader is there to see a
// pong — none waits in a socket read, and no Poller has the connection
// parked in its interest list (pollParked). A reader that waits would
// have read a pong that came, so where one waits the pong's absence
// means the ping or the pong was lost, and a peer that keeps sending
// must not hide a path dark towards it. Bytes read by a reader that has
// since stopped (a message read, then only writes; a Poller's worker
// held up in its Handler) count: the pong may be among them, unparsed,
// or behind them. Caller holds ps.mu.
func (c *Conn) unreadProvesAlive(ps *pingState, arrived int64) bool {
	return arrived >= 0 && ps.kaArrived >= 0 && arrived > ps.kaArrived &&
		!c.readWaiting.Load() && !c.pollParked()
}

// arrived returns how many bytes from the peer have reached this side
// since the handshake: those read from the socket (WireBytesRead) and
// those waiting in its receive queue (unreadBytes), or -1 where the
// socket gives no count. The sum only grows, whether or not a reader
// takes input meanwhile, and needs nothing the reader owns: the counter
// is an atomic.
func (c *Conn) arrived() int64 {
	if c.pollParked() {
		// A Poller's worker reads input as it comes, so none waits
		// unread: no system call for its idle connections. One whose
		// worker is held up in its Handler is asked as any other.
		return int64(c.stats.wireRead.Load())
	}
	n, ok := c.unreadBytes()
	if !ok {
		return -1
	}
	return int64(c.stats.wireRead.Load()) + int64(n)
}
