package websocket

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for the limits every connection has. Each can be changed in
// AcceptOptions or DialOptions; docs/security.md lists them.
const (
	// DefaultMaxMessageSize bounds a reassembled (and decompressed) message.
	DefaultMaxMessageSize = 4 << 20
	// DefaultPongTimeout is how long a ping may go unanswered when
	// PingInterval is set.
	DefaultPongTimeout = 15 * time.Second
	// DefaultWriteTimeout bounds how long a write may make no progress, so
	// a peer that stops reading cannot block a writer forever (a slow one
	// that keeps reading is given the time it needs).
	DefaultWriteTimeout = 30 * time.Second
	// DefaultCloseTimeout bounds the closing handshake, the lingering
	// close of a connection failed on the peer's input, and how long a
	// client's socket waits for the server to close TCP after the
	// handshake (in the background: Close and Read do not wait for it).
	DefaultCloseTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds Dial's handshake when ctx has no
	// deadline. Its expiry fails Dial with "websocket: no handshake within
	// 30s", an error wrapping os.ErrDeadlineExceeded (a net.Error whose
	// Timeout is true: a peer that did not answer in time), not
	// context.DeadlineExceeded, which would say the caller's deadline
	// passed when it set none.
	DefaultHandshakeTimeout = 30 * time.Second
)

// MessageType is the type of a data message (RFC 6455 §5.6).
type MessageType int

const (
	MessageText   MessageType = MessageType(OpText)
	MessageBinary MessageType = MessageType(OpBinary)
)

func (t MessageType) String() string {
	switch t {
	case MessageText:
		return "text"
	case MessageBinary:
		return "binary"
	}
	return Opcode(t).String()
}

// config is what Accept and Dial share, resolved with defaults.
type config struct {
	maxFrameSize   int64
	maxMessageSize int64
	pingInterval   time.Duration
	pongTimeout    time.Duration
	writeTimeout   time.Duration
	closeTimeout   time.Duration
	raw            bool
}

func resolveConfig(maxFrame, maxMsg int64, ping, pong, write, closeT time.Duration, raw bool) config {
	c := config{maxFrameSize: maxFrame, maxMessageSize: maxMsg, pingInterval: ping,
		pongTimeout: pong, writeTimeout: write, closeTimeout: closeT, raw: raw}
	if c.maxMessageSize <= 0 {
		// There is no "no limit": a negative size is the default too, never
		// a limit every frame exceeds.
		c.maxMessageSize = DefaultMaxMessageSize
	}
	if c.maxFrameSize <= 0 || c.maxFrameSize > c.maxMessageSize {
		c.maxFrameSize = c.maxMessageSize
	}
	if c.pongTimeout <= 0 {
		// A negative one is the default too, not "no timeout": the
		// keepalive timer armed with it would fire at once and fail the
		// connection after every ping.
		c.pongTimeout = DefaultPongTimeout
	}
	if c.writeTimeout == 0 { // negative: no write deadline (see deadline)
		c.writeTimeout = DefaultWriteTimeout
	}
	if c.closeTimeout <= 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	return c
}

// Conn is a WebSocket connection, from Accept or Dial.
//
// Concurrency: any number of goroutines may write at once (Write, Writer,
// Ping, Close); whole messages never interleave, and control frames may go
// out between the fragments of a streaming Writer. Reading (Read, Reader,
// ReadFrame) is for one goroutine at a time; a second concurrent reader
// waits. Close and CloseNow are safe from any goroutine at any time.
// Pongs, close replies and keepalive pings are written by whichever
// goroutine is reading, or by a timer, under the same frame lock as writes.
// When the reader fails the connection on what the peer sent (1002, 1007,
// 1009; RFC 6455 §7.1.7), the connection is closed at once, but its socket is
// closed by a goroutine of its own once the peer has had the chance to read
// the close frame: it reads and drops the frames that still arrive, without a
// half-close (a proxy would end the tunnel at our FIN), until the peer's
// close frame, EOF, CloseTimeout, or 2×MaxMessageSize + 1 MiB read. Likewise
// a client's socket after the closing handshake: the calls return at once,
// and a goroutine of its own waits for the server to close TCP first
// (RFC 6455 §7.1.1) until the server's EOF or CloseTimeout. Nothing else
// touches the socket by then. Stats is safe from any goroutine at any time: the
// counters are atomics, added to by the reading and writing goroutines under
// the locks they hold anyway.
//
// The zero Conn is not usable: its methods return at once an error
// wrapping ErrClosed that names Accept and Dial, or a zero result
// (AfterClose runs f at once, as on a closed Conn), and Poller.Serve
// refuses it with that error.
type Conn struct {
	nc         net.Conn
	client     bool
	cfg        config
	neg        *negotiation // nil: no subprotocol, no extension
	rsvAllowed byte         // RSV bits owned by negotiated extensions
	rsvMessage byte         // of those, the bits of message-level extensions
	frameExts  bool         // some extension transforms frames
	// Close's drain took readSem (set under it before the peer's close
	// frame closes the connection, never cleared): a Reader's handle that
	// finds the connection closed and readSem busy waits for it, as the
	// drain lets it go right after, to answer from its message's state.
	// Here, not beside closeKept, to sit in padding (TestConnSize).
	closeDrain atomic.Bool

	// Read side: owned by whoever holds readSem.
	readSem  chan struct{}
	rbuf     *[]byte // pooled; nil while nothing is buffered
	rpos     int     // next unread byte in *rbuf
	rend     int     // end of buffered bytes in *rbuf
	rawConn  syscall.RawConn
	rawRead  func(fd uintptr) bool // method value, allocated once
	rdst     []byte                // where readRaw reads; nil: a pooled buffer
	rawN     int
	rawErr   error
	rh       header // header of the frame being read
	rleft    int64  // payload bytes of rh not yet read
	rmaskPos int
	rbig     bool // the last read filled its buffer: more input is waiting
	rfull    bool // the last read from the socket returned all it was asked for
	// A Poller's worker is reading (noWait): between messages it hands the
	// connection back rather than wait. pollReady: the poller saw input
	// arrive. rawNoWait: the raw read in progress reports EAGAIN.
	noWait    bool
	pollReady bool
	rawNoWait bool
	msgOpen   bool   // a fragmented data message awaits continuations
	msgOp     Opcode // opcode of the open message
	msgRSV    byte   // RSV bits of the open message's first frame
	msgSize   int64  // payload bytes of the open message so far (on the wire)
	utf8      utf8Validator
	mr        messageReader
	readErr   error      // sticky: once reading failed, it keeps failing
	rx        *readSpare // control payloads, messages Close kept; on first use
	readCtx   *ctxWatch  // allocated for the first context that can be done
	// Close kept messages in rx.pending (set under readSem before the
	// connection is closed, never cleared): a reader that finds the
	// connection closed still takes readSem to return them.
	closeKept atomic.Bool
	// readWaiting: a reader waits in a socket read for input, so a pong
	// that came would have been read (keepalive, unreadProvesAlive).
	readWaiting atomic.Bool

	// Write side.
	msgSem  chan struct{} // held for a whole data message (lockMessage)
	frameMu sync.Mutex    // held for one frame or one flush
	wbuf    *[]byte       // pooled; frames waiting to be flushed
	wlen    int
	writers atomic.Int32 // writers waiting for or holding msgSem
	// Our close frame is written (message mode), under frameMu: RFC 6455
	// §5.5.1, no data frame may follow it, even while Close still waits
	// for the peer's.
	closeFrameSent bool
	wdead          time.Duration // last write deadline set, since pollEpoch
	writeErr       error         // sticky, under frameMu
	msgw           *msgWriters   // Writer and extension state; on first use, under msgSem
	writeCtx       *ctxWatch     // allocated for the first context that can be done
	tx             *writeSpare   // writev of large frames; on first use, under frameMu

	// Replies to pipelined input (see deferFlush): the reader publishes
	// whether input is still buffered and counts its reads; a writer that
	// finishes while input is buffered leaves its frames for the next
	// reply's system call. flushPending says frames wait that way.
	inputBuffered atomic.Bool
	flushPending  atomic.Bool
	reads         atomic.Uint64 // read calls ended (unlockRead); keptReader's validity too
	deferReads    uint64        // reads at the last Write's end, under frameMu
	flushTimer    *time.Timer   // flushes what waits too long, under frameMu
	// flushTimer is set and has not fired yet, under frameMu. Kept apart
	// from flushPending: frames may still wait after the timer fired
	// and skipped for a busy writer, and the next deferral must arm it.
	flushArmed bool

	// Keepalive and Ping.
	controlSeen atomic.Bool               // a ping or a pong was read (ControlSeen)
	ping        atomic.Pointer[pingState] // with the first ping, or PingInterval (pings)

	stats connStats // Stats' counters: atomics (see connStats)

	// Closing.
	closeMu    sync.Mutex
	cs         *closeState   // allocated by the close (closingLocked), under closeMu
	closed     chan struct{} // closed when the connection is closed (its socket may linger: lingerClose)
	closeOnce  sync.Once
	closeSent  bool        // a close frame is on its way (see closeState.own), under closeMu
	afterClose *afterClose // AfterClose's registrations, a list; under closeMu

	// The Poller serving this connection's reads, if any.
	poll atomic.Pointer[pollEntry]
}

// errZeroConn is what a zero Conn's methods return: it has no socket, and
// none of the channels and semaphores newConn makes. The reads and writes
// check on lockRead's and lockMessage's slow path, where a nil semaphore
// lands, and ReadFrame and WriteFrame on their ErrRawMode path: nothing
// on a working connection's way. Close, CloseNow, Ping and AfterClose,
// no hot paths, check first.
var errZeroConn = fmt.Errorf("websocket: Conn not created with Accept or Dial: %w", ErrClosed)

// readSpare is reader state most connections never need, allocated on
// first use so that an idle connection does not carry it. Owned by the
// holder of readSem.
type readSpare struct {
	ctrl [maxControlPayload]byte // payload of the control frame being read
	// Messages Close read while waiting for the peer's close frame, for
	// the reads that follow (bounded by MaxMessageSize in all).
	pending     []pendingMessage
	pendingSize int64
}

func (c *Conn) readSpare() *readSpare {
	if c.rx == nil {
		c.rx = new(readSpare)
	}
	return c.rx
}

// hasPending reports whether Close kept messages for the reads to come.
func (c *Conn) hasPending() bool { return c.rx != nil && len(c.rx.pending) > 0 }

// msgWriters is the state of a message written through Writer or through
// message-level extensions, allocated the first time one is. Owned by the
// holder of msgSem, except gen, which a stale Writer handle may load from
// any goroutine.
type msgWriters struct {
	mw messageWriter
	ew extWriter
	tw textWriter
	// Counts the messages Writer's handles have closed: a handle is valid
	// while gen is what it was when Writer gave it (streamWriter).
	gen atomic.Uint64
}

// writeSpare is what socket writes and a large server frame's writev
// need, allocated on the first write. Owned by the holder of frameMu.
type writeSpare struct {
	c    *Conn // whose write deadline a waiting write sets (sockWrite.wait)
	hdr  [maxHeaderSize]byte
	bufs [2][]byte
	wv   net.Buffers // writev of bufs, without a socket
	sockWrite
}

func (c *Conn) writeSpare() *writeSpare {
	if c.tx == nil {
		c.tx = newWriteSpare()
		c.tx.c = c
	}
	return c.tx
}

// readSock reads into p: at least one byte, or an error (io.EOF at the
// end of the stream). Caller holds readSem.
func (c *Conn) readSock(p []byte) (n int, err error) {
	if c.rawConn != nil {
		n, err = c.readRaw(p)
	} else {
		c.readWaiting.Store(true)
		n, err = c.nc.Read(p)
		c.readWaiting.Store(false)
	}
	c.stats.wireRead.Add(uint64(n))
	return n, err
}

// writeSock writes b whole. Caller holds frameMu.
func (c *Conn) writeSock(b []byte) error {
	var err error
	if c.rawConn != nil {
		err = c.writeRaw(c.writeSpare(), b)
	} else {
		err = c.writeNet(b)
	}
	if err == nil {
		c.stats.wireWritten.Add(uint64(len(b)))
	}
	return err
}

// netChunk is how much writeNet hands net.Conn's Write at a time. Write
// returns only when all it was given is written, so a large write is cut
// into pieces to see it make progress, and the write deadline is moved
// between them (armWriteDeadline): WriteTimeout then bounds a piece, not
// the whole message. 64 KiB is what a client frame is flushed in anyway;
// through TLS, which writes a record (at most 16 KiB) at a time, the cut
// costs no system call.
const netChunk = 64 << 10

// writeNet writes b through net.Conn's Write, in netChunk pieces. Caller
// holds frameMu.
func (c *Conn) writeNet(b []byte) error {
	for len(b) > netChunk {
		if _, err := c.nc.Write(b[:netChunk]); err != nil {
			return err
		}
		b = b[netChunk:]
		c.armWriteDeadline()
	}
	_, err := c.nc.Write(b)
	return err
}

// writeSock2 writes a then b, with one writev(2) where the socket takes
// them at once. Caller holds frameMu.
func (c *Conn) writeSock2(a, b []byte) error {
	err := c.writevSock(a, b)
	if err == nil {
		c.stats.wireWritten.Add(uint64(len(a) + len(b)))
	}
	return err
}

// writevSock is writeSock2's write, which counts what it wrote.
func (c *Conn) writevSock(a, b []byte) error {
	tx := c.writeSpare()
	if c.rawConn != nil {
		return c.writevRaw(tx, a, b)
	}
	n := min(len(b), netChunk) // the rest in pieces, as writeNet's
	tx.bufs[0], tx.bufs[1] = a, b[:n]
	// tx.wv, not a local: WriteTo's pointer receiver would move a local
	// net.Buffers to the heap, one allocation per large frame.
	tx.wv = tx.bufs[:]
	_, err := tx.wv.WriteTo(c.nc)
	tx.bufs[0], tx.bufs[1], tx.wv = nil, nil, nil // do not keep the caller's payload
	if err != nil || n == len(b) {
		return err
	}
	c.armWriteDeadline()
	return c.writeNet(b[n:])
}

// newConn wraps nc after a successful handshake. buffered holds bytes read
// past the handshake (the start of the first frames), if any.
func newConn(nc net.Conn, client bool, cfg config, subprotocol string, exts []*negotiated, buffered []byte) *Conn {
	c := &Conn{
		nc:      nc,
		client:  client,
		cfg:     cfg,
		readSem: make(chan struct{}, 1),
		msgSem:  make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	if subprotocol != "" || len(exts) > 0 {
		c.neg = &negotiation{subprotocol: subprotocol, exts: exts}
	}
	for _, e := range exts {
		c.rsvAllowed |= e.rsv
		if e.message != nil {
			c.rsvMessage |= e.rsv
		}
		if e.frame != nil {
			c.frameExts = true
		}
	}
	c.mr.c = c
	if len(buffered) > 0 {
		c.rbuf = getBuf(len(buffered))
		if len(buffered) > cap(*c.rbuf) {
			b := make([]byte, len(buffered))
			c.rbuf = &b
		}
		c.rend = copy(*c.rbuf, buffered)
		// Frames the handshake's read took along: after the handshake.
		c.stats.wireRead.Add(uint64(len(buffered)))
	}
	c.setupSocketIO()
	if cfg.pingInterval > 0 {
		// Under the state's mu, which keepalive takes before touching
		// kaTimer: the timer may fire before AfterFunc's result is stored.
		ps := c.pings()
		ps.mu.Lock()
		ps.kaTimer = time.AfterFunc(cfg.pingInterval, c.keepalive)
		ps.mu.Unlock()
	}
	return c
}

// Subprotocol returns the negotiated subprotocol, or "" if none.
func (c *Conn) Subprotocol() string {
	if c.neg == nil {
		return ""
	}
	return c.neg.subprotocol
}

// negotiation is what the handshake agreed on beyond the protocol itself,
// apart from the Conn: most connections negotiate neither, and an idle
// connection's live heap is mostly its Conn (TestConnSize). Set by
// newConn, never changed.
type negotiation struct {
	subprotocol string
	exts        []*negotiated // in the order of the server's answer (RFC 6455 §9.1)
}

// negExts returns the negotiated extensions, in the order of the server's
// answer (RFC 6455 §9.1).
func (c *Conn) negExts() []*negotiated {
	if c.neg == nil {
		return nil
	}
	return c.neg.exts
}

// LocalAddr returns the local network address (nil for a zero Conn).
func (c *Conn) LocalAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.LocalAddr()
}

// RemoteAddr returns the remote network address (nil for a zero Conn).
func (c *Conn) RemoteAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.RemoteAddr()
}

// NetConn returns the underlying connection, for its addresses and socket
// options. Reading or writing it directly corrupts the WebSocket stream.
//
// Its deadlines are the runtime's, not the caller's: the write deadline
// is WriteTimeout's, set before writes and moved as they make progress,
// and the read deadline bounds the closing of the connection. A deadline
// set here is overridden whenever the runtime next sets its own, and if
// it passes first it fails the read or write in progress, which closes
// the connection (a frame cut off half way cannot be resumed). To bound a
// call, give it a ctx (a Write's ctx ends it, closing the connection
// likewise); to bound how long writes may stall, set WriteTimeout.
//
// Its descriptor must stay non-blocking: a socket is read and written with
// raw system calls that are only short because they cannot block (calling
// Fd on an *os.File from its File method switches the shared descriptor
// to blocking mode).
func (c *Conn) NetConn() net.Conn { return c.nc }

// ctxWatch ties a call's context to the connection: if the context is done
// while a call using it is in progress, the connection is closed (a frame
// cut off half way cannot be resumed). For Reader and Writer the call
// lasts as long as their message: until its reader has read the last
// frame (or the next read call starts), or until the Writer's Close. The AfterFunc
// registration is kept while the same context is used again, so a loop of
// calls with one context costs nothing per call. Closing the connection
// removes it (stopWatches): a long-lived context must not keep every
// connection it was used with reachable, nor run a callback for each when
// it ends.
//
// Concurrency: used only by the holder of the matching lock (readSem, or
// msgSem/frameMu for writes); the AfterFunc goroutine reads only active
// and gen. arm bumps gen before it sets active, and the callback loads
// them in the opposite order, so a stale callback never sees its own gen
// with a later call's active. The watch's allocation and stop are also
// under the connection's closeMu, for stopWatches.
type ctxWatch struct {
	ctx    context.Context
	stop   func() bool
	gen    atomic.Uint64 // bumped for each new context
	active atomic.Bool
}

// arm watches ctx for the call starting now; *pw is allocated the first
// time a context that can be done is used, so connections used with
// context.Background carry no watch.
func arm(pw **ctxWatch, c *Conn, ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() == nil {
		return nil
	}
	w := *pw
	if w == nil || ctx != w.ctx {
		c.closeMu.Lock()
		if w == nil {
			w = new(ctxWatch)
			*pw = w
		}
		if w.stop != nil {
			w.stop()
			w.stop = nil
		}
		w.ctx = ctx
		// The callback of a context canceled after its call returned may
		// run while a later call, with another context, is active: only
		// the current context's may close.
		gen := w.gen.Add(1)
		select {
		case <-c.closed:
			// stopWatches has run: a registration now would never be
			// removed. The call fails on the closed connection anyway.
		default:
			w.stop = context.AfterFunc(ctx, func() {
				if w.active.Load() && w.gen.Load() == gen {
					c.closeWith(context.Cause(ctx))
				}
			})
		}
		c.closeMu.Unlock()
	}
	w.active.Store(true)
	// A context done since the check above may have run its callback
	// already, while the watch was inactive, and that callback closed
	// nothing: without a second look the call would block with its
	// context done and nothing left to end it. Either the callback sees
	// active (it loads it after the context is done) or this check sees
	// the context done (it runs after active is set).
	if err := ctx.Err(); err != nil {
		w.active.Store(false)
		return err
	}
	return nil
}

// stopWatches removes the contexts' registrations of a closed connection.
// stop is safe from the callback itself (closeWith called by it).
func (c *Conn) stopWatches() {
	c.closeMu.Lock()
	for _, w := range [2]*ctxWatch{c.readCtx, c.writeCtx} {
		if w != nil && w.stop != nil {
			w.stop()
			w.stop = nil
		}
	}
	c.closeMu.Unlock()
}

func (w *ctxWatch) disarm() {
	if w != nil {
		w.active.Store(false)
	}
}

// ctxErr prefers the context's error over the I/O error it caused. A
// call that succeeded returns nil though ctx ended as it returned: it
// did all it was asked, and the context's error would have the caller
// drop a message read whole, or send again one written whole, on a
// connection its watch may have left open (the watch closes it only if
// it fires while the call is still in progress).
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}
