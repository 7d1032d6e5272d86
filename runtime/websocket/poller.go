package websocket

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Handler receives what a Poller reads from a connection.
//
// A panic in OnMessage is not recovered. On its way out the connection
// is failed with 1011 (internal error) and OnClose is called with an
// error saying the Handler panicked; then the panic goes on. On a
// worker's goroutine it ends the program like any goroutine's panic.
// During Serve (messages that came with the handshake) it reaches Serve's
// caller, and a caller that recovers it (net/http does, for an HTTP
// handler) leaves the Poller serving its other connections.
type Handler interface {
	// OnMessage is called with each data message, in the order they
	// arrived and never concurrently for one connection. msg is valid
	// only until OnMessage returns. Writing to c (Write, WritePrepared,
	// Close) is fine from here and from anywhere else.
	OnMessage(c *Conn, typ MessageType, msg []byte)
	// OnClose is called once, when reading has ended: err is a
	// *CloseError when the peer closed (see CloseStatus), otherwise why
	// the connection failed or was closed. The connection is closed, or
	// closing, by the time it is called.
	OnClose(c *Conn, err error)
}

// HandlerFuncs adapts two functions to a Handler. A nil Message discards
// messages (a subscribe-only endpoint); a nil Close is skipped.
type HandlerFuncs struct {
	Message func(c *Conn, typ MessageType, msg []byte)
	Close   func(c *Conn, err error)
}

func (h HandlerFuncs) OnMessage(c *Conn, typ MessageType, msg []byte) {
	if h.Message != nil {
		h.Message(c, typ, msg)
	}
}

func (h HandlerFuncs) OnClose(c *Conn, err error) {
	if h.Close != nil {
		h.Close(c, err)
	}
}

// Poller reads many connections without a goroutine for each idle one.
// A connection handed to Serve is watched by the poller (epoll on Linux);
// when input arrives, a worker goroutine reads the messages that are there,
// calls the Handler for each, and returns the connection to the poller as
// soon as the socket is drained. An idle connection then costs its state
// and socket only — no goroutine stack, no read buffer — which is what a
// server with many mostly silent connections (notifications, presence,
// a hub's subscribers) wants.
//
// It also saves a system call per message: a goroutine blocked in Read
// learns that a socket is drained from a read that fails with EAGAIN; the
// poller's edge-triggered registration tells the worker that a short read
// emptied the socket, so it stops there.
//
// A worker lingers on a busy connection: when a worker takes a
// connection up again within a millisecond of handing it back (its next
// message came, and the poller passed it on, that soon), the worker
// reads that message and stays, waiting for the one after in the Go
// runtime's poller, as a read loop would, until Linger passes without
// input. Such a connection is out of the poller's own interest list
// meanwhile. A request/response exchange on a few connections then costs
// one goroutine wake-up per message instead of two (the poller's, then
// the worker's), and its socket one epoll wake-up callback instead of
// two (docs/benchmarks.md, "Lingering on a busy connection"). At most
// GOMAXPROCS connections (as NewPoller found it) linger at once: with
// more busy connections than that, batching their events serves them
// better.
//
// Writes are unchanged: any goroutine may write to a polled connection,
// and the Handler's OnMessage usually does. Reads are the poller's: do not
// call Read, ReadAppend or Reader on a connection after Serve. Close may
// be called from anywhere; its closing handshake reads the peer's close
// frame itself when no worker is reading.
//
// Where there is no poller (other systems, TLS connections and other
// net.Conns that are not sockets) Serve reads the connection from a
// goroutine of its own with the same Handler calls.
//
// Create one with NewPoller. The zero Poller is not usable: its Serve,
// Close and Shutdown return at once an error wrapping ErrPollerClosed.
//
// Concurrency: Serve, Close and Shutdown may be called from any
// goroutine. A connection's Handler calls come from one worker at a time;
// different connections' calls may run concurrently on different workers.
// A Handler may block (a slow peer, a database): that holds up its own
// connection only, as the poller calls another worker for the rest.
type Poller struct {
	mu      sync.Mutex
	closed  bool
	entries []*pollEntry // by slot; nil where free
	gens    []int32      // by slot: bumped each time the slot is taken
	free    []int32      // free slots
	live    sync.WaitGroup
	stopped chan struct{} // closed when stop has finished; nil in a zero Poller

	// Workers: goroutines that run the entries on the run queue. A worker
	// takes one entry after another until the queue is empty, so a batch
	// of events costs one goroutine handoff, not one per connection, and
	// the batch is read into one worker's buffer, warm in cache. A worker
	// that leaves entries behind the one it takes makes sure another
	// worker has been called, so that a Handler that blocks does not hold
	// up the connections queued after it: on one core the called worker
	// usually finds the queue drained and waits again; on several it
	// takes a share and calls the next, as the Go scheduler's spinning
	// threads do. An idle worker waits on work; at most maxIdle wait, the
	// others exit.
	qmu         sync.Mutex
	runq        entryQueue    // woken entries no worker has taken yet
	called      bool          // a worker was called and has not taken from runq yet
	work        chan struct{} // calls an idle worker; closed by stop once every entry finished
	idleWorkers atomic.Int32
	maxIdle     int32

	sys pollSys // the system's readiness mechanism

	// Lingering (see above): how long a worker stays with a busy
	// connection without input (0: never), lingerGap (busyGap, a field so
	// that tests can make every connection busy), how many connections
	// have a worker staying, and the most that may.
	linger    time.Duration
	busyGap   time.Duration
	lingering atomic.Int32
	maxLinger int32
}

// maxIdleWorkers is how many workers may wait for work. Handlers that
// block make the poller call more workers, one per connection still
// queued; a worker that exits is started again when needed and regrows its
// stack, so the pool keeps up to this many (a few KiB each).
const maxIdleWorkers = 256

// errZeroPoller is what a zero Poller's methods return: it has no system
// poller and no workers, and its Close would wait for a dispatcher that
// never started.
var errZeroPoller = fmt.Errorf("websocket: Poller not created with NewPoller: %w", ErrPollerClosed)

// PollerOptions configure a Poller. A nil *PollerOptions is the zero
// value: every field at its default.
type PollerOptions struct {
	// BusyPoll is how long the poller keeps looking for input after the
	// last it found before it sleeps. Zero, the default, sleeps as soon as
	// every ready connection has been handed to a worker.
	//
	// A sleeping poller is woken by the kernel when input comes, and a
	// core with nothing else to do has gone idle meanwhile: waking it is
	// an interrupt, and on a virtual machine an exit to the host, which
	// schedules the virtual CPU again. That is paid on every message of a
	// connection that waits for a reply before it sends again. Polling
	// spares it: on this project's 2-core KVM guest a BusyPoll of 300µs
	// took a single connection's 16 B echo from 6.1k to 15.4k round trips
	// a second, at less CPU per message (docs/benchmarks.md, "Busy
	// polling").
	//
	// The price is CPU: while input keeps coming less than BusyPoll apart,
	// the poller's dispatcher never sleeps, which is one core busy however
	// little the traffic needs. It yields to other goroutines on every
	// turn, and passes through the runtime's poller at least once a
	// millisecond so that what waits there (Accept, a Write held up by a
	// slow reader) runs on a single P too. Set it on servers whose latency
	// matters more than an idle core, a little longer than the usual gap
	// between a busy connection's messages. Linux only (the epoll poller);
	// it is ignored elsewhere.
	BusyPoll time.Duration

	// Linger is how long a busy connection must go without input for the
	// worker staying with it to leave (see Poller): 0 means DefaultLinger,
	// negative never. The worker's read deadline is moved on only when it
	// passes, so it leaves between one and two Lingers after the last
	// input (a message, or a control frame such as a keepalive's pong).
	// A connection counts as busy when a worker takes it up again within
	// a millisecond of handing it back: its next input came, and the
	// poller passed it on, that soon. Lingering is off with BusyPoll,
	// whose dispatcher already polls for the next input. Linux only, as
	// BusyPoll.
	Linger time.Duration
}

// DefaultLinger is PollerOptions.Linger's default. A lingering worker's
// wait is bounded by a read deadline, moved on each time it passes after
// input came; a longer Linger moves it less often, and keeps a worker
// and one of the GOMAXPROCS places a little longer after the traffic
// stops.
const DefaultLinger = 50 * time.Millisecond

// lingerGap is how soon after a worker handed a connection back its next
// input must come for the connection to count as busy: well above a round
// trip on a LAN, well below the pauses of a connection that is mostly
// idle, which lingering would only cost (a system call each way and a
// timer).
const lingerGap = time.Millisecond

// NewPoller starts a poller; opts may be nil. Close stops it.
func NewPoller(opts *PollerOptions) (*Poller, error) {
	var o PollerOptions
	if opts != nil {
		o = *opts
	}
	p := &Poller{
		work:    make(chan struct{}),
		stopped: make(chan struct{}),
		maxIdle: int32(max(maxIdleWorkers, 4*runtime.GOMAXPROCS(0))),
	}
	p.sys.busyPoll = max(o.BusyPoll, 0)
	if p.sys.busyPoll == 0 && o.Linger >= 0 {
		p.linger = o.Linger
		if p.linger == 0 {
			p.linger = DefaultLinger
		}
	}
	p.busyGap = lingerGap
	p.maxLinger = int32(runtime.GOMAXPROCS(0))
	if err := p.sys.init(p); err != nil {
		return nil, err
	}
	return p, nil
}

// Serve hands c's reading to p: h gets c's messages until reading ends, then
// OnClose. Messages that are already there (sent with the handshake) are
// handled before Serve returns, on the calling goroutine. It returns an error
// only if c cannot be served (p is closed or a zero Poller, c is a zero Conn
// or in raw mode, or another Poller serves it); then h is never called and c
// is left as it was.
func (p *Poller) Serve(c *Conn, h Handler) error {
	if p.stopped == nil {
		return errZeroPoller
	}
	if c.closed == nil {
		// A zero Conn: its first read fails, and failing it closed its
		// nil channel on the worker's goroutine, a crash no caller of
		// Serve could recover.
		return errZeroConn
	}
	if c.cfg.raw {
		return ErrRawMode
	}
	e := &pollEntry{p: p, c: c, h: h, polled: c.rawConn != nil && p.sys.ok()}
	// The state is set before e is published: a close that wakes e
	// meanwhile must find it running (the first run will see the close),
	// not idle (which would start a second run).
	if e.polled {
		e.state.Store(entryRunning)
	} else {
		e.state.Store(entryLoop)
	}
	if !c.poll.CompareAndSwap(nil, e) {
		return errors.New("websocket: connection is already served by a Poller")
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.poll.Store(nil)
		return ErrPollerClosed
	}
	p.live.Add(1)
	p.allocSlot(e)
	p.mu.Unlock()
	if !e.polled {
		go e.loop()
		return nil
	}
	if err := p.sys.add(e); err != nil {
		// A connection closed meanwhile, or a system out of room for
		// another watch (epoll_ctl's ENOSPC past max_user_watches, or
		// ENOMEM): the connection cannot be served, so it is closed
		// with that error, which the run below hands to OnClose.
		e.c.closeWith(err)
	}
	// A first run, on the caller's goroutine (about to return, typically
	// an HTTP handler's): it handles what the handshake left buffered or
	// what arrived before the registration, and hands the connection to
	// the poller once the socket is drained, so accepting a connection
	// starts no worker.
	e.run(nil)
	return nil
}

// Close stops the poller: every connection it serves is closed without a
// closing handshake, each Handler's OnClose is called with an error
// wrapping ErrPollerClosed, and Close returns when all have been.
// Shutdown closes them with a handshake first. Close waits for Handler
// calls in progress, so it must not be called from one. A Close after or
// during another Close or a Shutdown waits for that one to finish (every
// OnClose called) and returns ErrPollerClosed.
func (p *Poller) Close() error {
	if p.stopped == nil {
		return errZeroPoller
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.stopped
		return ErrPollerClosed
	}
	p.closed = true
	p.mu.Unlock()
	return p.stop()
}

// ShutdownReason is the close reason Shutdown sends with 1001 (going
// away).
const ShutdownReason = "server shutting down"

// shutdownClosers is how many closing handshakes Shutdown runs at once;
// each waits about a round trip for the peer's close frame.
const shutdownClosers = 64

// Shutdown stops the poller gracefully: it closes every connection it
// serves with the closing handshake — 1001 (going away), reason "server
// shutting down" — so that a client learns the server left on purpose
// rather than seeing the connection drop, and then closes the poller.
// Serve fails with ErrPollerClosed from the moment Shutdown starts. Each
// Handler's OnClose is called as its connection ends, with the peer's
// close frame when it answered. Shutdown returns once every connection
// has closed, or when ctx is done: those left are then closed without a
// handshake and Shutdown returns ctx's error. Like Close, it must not be
// called from a Handler. A Shutdown after or during a Close or another
// Shutdown waits for that one to finish, or for ctx, and returns
// ErrPollerClosed (ctx's error if ctx ended first).
func (p *Poller) Shutdown(ctx context.Context) error {
	if p.stopped == nil {
		return errZeroPoller
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		select {
		case <-p.stopped:
			return ErrPollerClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.closed = true
	entries := p.servedLocked()
	p.mu.Unlock()

	work := make(chan *Conn)
	var closers sync.WaitGroup
	var left atomic.Int64 // handshakes not yet over
	left.Store(int64(len(entries)))
	for range min(len(entries), shutdownClosers) {
		closers.Go(func() {
			for c := range work {
				_ = c.Close(StatusGoingAway, ShutdownReason)
				left.Add(-1)
			}
		})
	}
feed:
	for _, e := range entries {
		select {
		case work <- e.c:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	handshakes := make(chan struct{})
	go func() {
		closers.Wait()
		close(handshakes)
	}()
	var err error
	select {
	case <-handshakes:
	case <-ctx.Done():
		// Handshakes that had all ended when ctx did (or that there
		// were none) are a clean shutdown. They are counted rather
		// than read from handshakes, which closes a moment after the
		// last one, and select picks either ready case at random.
		if left.Load() > 0 {
			err = ctx.Err()
		}
	}
	// What is still open is closed now; the closers waiting on those
	// connections return with them.
	if serr := p.stop(); err == nil {
		err = serr
	}
	<-handshakes
	return err
}

// stop closes every connection still served, waits until all have
// finished, and releases the system's poller. Caller has set p.closed.
func (p *Poller) stop() error {
	p.mu.Lock()
	entries := p.servedLocked()
	p.mu.Unlock()
	for _, e := range entries {
		e.c.closeWith(ErrPollerClosed)
	}
	// Every entry has finished: nothing is registered with the system's
	// poller any more, and nothing starts a worker.
	p.live.Wait()
	err := p.sys.close()
	close(p.work)
	close(p.stopped)
	return err
}

// servedLocked returns the entries p serves now. Caller holds p.mu.
func (p *Poller) servedLocked() []*pollEntry {
	entries := make([]*pollEntry, 0, len(p.entries))
	for _, e := range p.entries {
		if e != nil {
			entries = append(entries, e)
		}
	}
	return entries
}

// allocSlot gives e a slot and the slot's next generation. Caller holds
// p.mu.
func (p *Poller) allocSlot(e *pollEntry) {
	if n := len(p.free); n > 0 {
		e.slot = p.free[n-1]
		p.free = p.free[:n-1]
		p.entries[e.slot] = e
	} else {
		e.slot = int32(len(p.entries))
		p.entries = append(p.entries, e)
		p.gens = append(p.gens, 0)
	}
	p.gens[e.slot]++
	e.gen = p.gens[e.slot]
}

// lookup returns the entry in slot if its generation is gen: an event
// for a connection that has since left the slot is dropped.
func (p *Poller) lookup(slot, gen int32) *pollEntry {
	if slot < 0 || int(slot) >= len(p.entries) {
		return nil
	}
	e := p.entries[slot]
	if e == nil || e.gen != gen {
		return nil
	}
	return e
}

// remove takes e out of the poller once its reading has ended.
func (p *Poller) remove(e *pollEntry) {
	if e.polled {
		p.sys.del(e)
	}
	p.mu.Lock()
	p.entries[e.slot] = nil
	p.free = append(p.free, e.slot)
	p.mu.Unlock()
}

// enqueue puts woken entries on the run queue and calls a worker, unless
// one is already on its way.
func (p *Poller) enqueue(es ...*pollEntry) {
	if len(es) == 0 {
		return
	}
	p.qmu.Lock()
	for _, e := range es {
		p.runq.push(e)
	}
	p.callLocked()
	p.qmu.Unlock()
}

// next takes the entry at the head of the run queue, or returns nil when
// the queue is empty. wasCalled is true for a called worker's first take,
// which answers the call. When entries remain behind the one taken, next
// makes sure a worker is on its way: the entry taken may block.
func (p *Poller) next(wasCalled bool) *pollEntry {
	p.qmu.Lock()
	if wasCalled {
		p.called = false
	}
	e := p.runq.pop()
	if e != nil && p.runq.n > 0 {
		p.callLocked()
	}
	p.qmu.Unlock()
	return e
}

// callLocked calls a worker unless one is on its way: it wakes an idle
// worker or starts a new one. The caller holds p.qmu until the call is
// made, so no entry on the queue can be taken, finish, and let stop close
// p.work before the call has used it. The send never blocks.
func (p *Poller) callLocked() {
	if p.called {
		return
	}
	p.called = true
	select {
	case p.work <- struct{}{}:
	default:
		go p.worker()
	}
}

// worker runs entries from the run queue until too many workers are idle.
// The message buffer stays with the worker between runs, so steady
// traffic does not allocate.
func (p *Poller) worker() {
	var buf []byte
	for {
		for e := p.next(true); e != nil; e = p.next(false) {
			buf = keptBuf(e.run(buf))
		}
		if p.idleWorkers.Add(1) > p.maxIdle {
			p.idleWorkers.Add(-1)
			return
		}
		_, ok := <-p.work
		p.idleWorkers.Add(-1)
		if !ok {
			return // stop: every entry has finished
		}
	}
}

// entryQueue is a FIFO of entries: a ring of a power-of-two size that
// doubles when full, so a steady flow of events does not allocate.
type entryQueue struct {
	ring    []*pollEntry
	head, n int
}

func (q *entryQueue) push(e *pollEntry) {
	if q.n == len(q.ring) {
		ring := make([]*pollEntry, max(16, 2*len(q.ring)))
		for i := range q.n {
			ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = e
	q.n++
}

func (q *entryQueue) pop() *pollEntry {
	if q.n == 0 {
		return nil
	}
	e := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.n--
	return e
}

// Entry states. A worker runs an entry from running until it finds the
// socket drained and moves it back to idle; input that arrives during the
// run moves it to pending, so the worker reads again instead of leaving.
const (
	entryIdle int32 = iota
	entryRunning
	entryPending
	entryDone
	entryLoop // served by loop: wake has nothing to do
)

// pollEntry is one connection served by a Poller.
//
// Concurrency: state is changed with atomics by the poller (wake) and the
// worker running the entry; hangUp is set by the poller's dispatcher
// before it wakes the entry and read by the worker; everything else is
// set before the entry is published or owned by that worker.
type pollEntry struct {
	p     *Poller
	c     *Conn
	h     Handler
	slot  int32 // index in p.entries, set under p.mu
	gen   int32 // generation of the slot, set under p.mu
	state atomic.Int32
	// The system's poller reported the peer's end of stream or an error
	// on the socket (EPOLLRDHUP, EPOLLHUP, EPOLLERR). Never cleared:
	// nothing more will be reported for the socket, so from now on the
	// worker reads until it sees the end (Conn.fillNoWait).
	hangUp atomic.Bool
	polled bool // watched by p.sys; otherwise served by loop

	// Lingering, owned by the worker running the entry: whether this run
	// may linger, the linger itself (lingerFill), and when the entry was
	// last handed back (since pollEpoch; 0: never). In this order, an
	// entry fits in 64 bytes.
	linger bool
	ling   lingerState
	idleAt time.Duration
}

// lingerState is a lingering worker's hold on its connection.
type lingerState struct {
	held  bool // one of the poller's places, the socket out of its interest list
	armed bool // the read deadline is set
	edge  bool // the read in progress waits between messages
	input bool // input came since the deadline was set
}

// pollEpoch is where pollEntry.idleAt and Conn.wdead count from: a
// monotonic clock in 8 bytes, where a time.Time takes 24.
var pollEpoch = time.Now()

// pollHangUp reports whether the poller serving c saw the peer's end of
// stream or an error on its socket.
func (c *Conn) pollHangUp() bool {
	e := c.poll.Load()
	return e != nil && e.hangUp.Load()
}

// pollParked reports whether c waits in a Poller's interest list with no
// worker on it: input wakes a worker that reads it at once, a pong with
// it, so no pong waits there unread (keepalive, unreadProvesAlive).
func (c *Conn) pollParked() bool {
	e := c.poll.Load()
	return e != nil && e.state.Load() == entryIdle
}

// wake reports that input arrived or the connection closed.
func (e *pollEntry) wake() {
	if e.rouse() {
		e.p.enqueue(e)
	}
}

// rouse is wake without the queueing: it reports whether e was idle, and
// the caller must now put it on the run queue.
func (e *pollEntry) rouse() bool {
	for {
		switch s := e.state.Load(); s {
		case entryIdle:
			if e.state.CompareAndSwap(s, entryRunning) {
				return true
			}
		case entryRunning:
			if e.state.CompareAndSwap(s, entryPending) {
				return false
			}
		default: // already pending, or done
			return false
		}
	}
}

// run reads and handles messages until the socket is drained (the entry
// goes back to idle) or reading ends (OnClose). It returns buf, grown.
func (e *pollEntry) run(buf []byte) []byte {
	ready := true
	if e.p.linger > 0 {
		e.linger = e.idleAt != 0 && time.Since(pollEpoch)-e.idleAt < e.p.busyGap
	}
	for {
		typ, msg, err := e.c.readPolled(buf[:0], ready)
		ready = false
		if err == errWouldBlock {
			if e.p.linger > 0 {
				e.idleAt = time.Since(pollEpoch)
			}
			if e.state.CompareAndSwap(entryRunning, entryIdle) {
				return buf
			}
			// Input arrived during the run: read again.
			e.state.Store(entryRunning)
			ready = true
			continue
		}
		if err != nil {
			e.finish(err)
			return buf
		}
		buf = msg
		e.handle(typ, msg)
	}
}

// loop serves a connection the poller cannot watch, from a goroutine.
func (e *pollEntry) loop() {
	ctx := context.Background()
	var buf []byte
	for {
		typ, msg, err := e.c.ReadAppend(ctx, buf[:0])
		if err != nil {
			e.finish(err)
			return
		}
		e.handle(typ, msg)
		buf = keptBuf(msg)
	}
}

// keptBuf is the message buffer a worker or a connection's own goroutine
// keeps for the next message: buf, or nil once a large message grew it
// past largeBufSize. Such a buffer is not kept for the rest of the
// connection's life, most of which a subscriber may spend idle: a peer
// could otherwise pin MaxMessageSize per connection with one message.
func keptBuf(buf []byte) []byte {
	if cap(buf) > largeBufSize {
		return nil
	}
	return buf
}

// handle calls OnMessage. If it panics, the panic is not recovered: it
// goes on (a worker's crashes the process like any goroutine's), but on
// its way out e is ended (handlerPanicked), since the caller of Serve may
// recover it, as net/http does for an HTTP handler's goroutine, and the
// entry must not be left running — nothing would read the connection
// again, OnClose would never be called, and Close would wait for it
// forever.
func (e *pollEntry) handle(typ MessageType, msg []byte) {
	returned := false
	defer func() {
		if !returned {
			e.handlerPanicked()
		}
	}()
	e.h.OnMessage(e.c, typ, msg)
	returned = true
}

// errHandlerPanicked is what OnClose gets after OnMessage panicked.
var errHandlerPanicked = errors.New("websocket: Handler panicked")

// handlerPanicked ends e while OnMessage's panic unwinds. The peer is told
// with 1011 (RFC 6455 §7.4.1); the reason says no more.
func (e *pollEntry) handlerPanicked() {
	e.c.fail(&failure{StatusInternalError, errors.New("websocket: internal error")})
	e.finish(errHandlerPanicked)
}

func (e *pollEntry) finish(err error) {
	e.state.Store(entryDone)
	if e.ling.held {
		e.ling.held = false
		e.p.lingering.Add(-1)
	}
	e.c.closeWith(err)
	e.p.remove(e)
	// Counted done even if OnClose panics, so that Close does not wait
	// for an entry that is gone.
	defer e.p.live.Done()
	e.h.OnClose(e.c, err)
}

// errLingerOver: a lingering worker waited Linger without input.
var errLingerOver = errors.New("websocket: linger over")

// lingerFill is fillNoWait's wait for a worker lingering on its
// connection (see Poller): it waits in the runtime's poller for the next
// input, under a read deadline Linger away that moves on if input came
// meanwhile. It returns nil when input is buffered, errWouldBlock once
// Linger passed without any (the socket is back in the poller's interest
// list: the worker hands the connection back), or the read's error. It
// returns errWouldBlock at once if GOMAXPROCS connections linger already.
// Caller holds readSem, as the worker reading the connection.
func (e *pollEntry) lingerFill() error {
	c, l := e.c, &e.ling
	if !l.held {
		if !e.p.lingerPlace() {
			e.linger = false
			return errWouldBlock
		}
		// Out of the interest list, the socket's input wakes only this
		// worker, in the runtime's poller. EPOLL_CTL_DEL makes the socket
		// run one wake-up callback per arriving segment instead of two
		// (docs/benchmarks.md).
		e.p.sys.del(e)
		l.held = true
	}
	if !l.armed {
		_ = c.nc.SetReadDeadline(time.Now().Add(e.p.linger))
		l.armed, l.input = true, false
	}
	for {
		l.edge = true
		err := c.fillIdle()
		l.edge = false
		if err == nil {
			l.input = true
			return nil
		}
		if err != errLingerOver {
			return err
		}
		if l.input {
			_ = c.nc.SetReadDeadline(time.Now().Add(e.p.linger))
			l.input = false
			continue
		}
		// Input that came since the deadline is reported by the
		// registration itself (epoll reports a ready socket when it is
		// added), and rouses the entry before or after the worker hands
		// it back.
		if err := e.p.sys.add(e); err != nil {
			select {
			case <-c.closed: // the socket is gone
				return c.closedErr()
			default:
			}
			// No room in the interest list (ENOSPC past the system's
			// max_user_watches, ENOMEM), which Serve found and which
			// others may have taken since: a healthy connection is not
			// failed for it. The worker stays, and tries again at the
			// next deadline.
			_ = c.nc.SetReadDeadline(time.Now().Add(e.p.linger))
			continue
		}
		_ = c.nc.SetReadDeadline(time.Time{})
		*l = lingerState{}
		e.linger = false
		e.p.lingering.Add(-1)
		return errWouldBlock
	}
}

// lingerDeadline sorts out the error of a raw read on a polled
// connection. If it is the deadline of a lingering worker (lingerFill)
// that passed between messages, it returns errLingerOver; between a
// message's frames, or inside one, it clears the deadline and reports
// waitOn: the read waits on, since a message begun is read to its end.
// Any other error, and a deadline set by another reader (Close's drain,
// which reads without noWait), pass through.
func (c *Conn) lingerDeadline(err error) (waitOn bool, _ error) {
	if err == nil || !c.noWait {
		return false, err
	}
	e := c.poll.Load()
	if e == nil || !e.ling.armed || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, err
	}
	if e.ling.edge {
		return false, errLingerOver
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	e.ling.armed = false
	return true, err
}

// lingerPlace takes one of the places for a lingering worker, if one is
// free.
func (p *Poller) lingerPlace() bool {
	for {
		n := p.lingering.Load()
		if n >= p.maxLinger {
			return false
		}
		if p.lingering.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
