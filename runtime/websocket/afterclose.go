package websocket

// AfterClose arranges for f to run, once and on a goroutine of its own,
// after the connection has closed — whoever closed it: a closing
// handshake, CloseNow, a missed pong (ErrPongTimeout), a write that
// failed or timed out, a failure over what the peer sent, a context's
// watch — or at once, on its goroutine, if it is closed already. err is
// what a call on the connection would now return: the peer's *CloseError
// if its close frame came, else ErrClosed, wrapping why the connection
// was closed when that was not a plain close of ours (ErrClosed wrapping
// ErrPongTimeout, say). It is shaped like context.AfterFunc: stop
// unregisters f, and reports whether it did so before f started (false
// once f has started, or when stop was called before).
//
// It is how a layer that does not read the connection all the time (a
// handler that only sends, between its reads) learns that the runtime
// ended it: nothing else tells it until its next call fails.
//
// Cost: two allocations (the registration and its stop function), a few
// words held until the close or stop; no goroutine until the connection
// closes, then one per callback; a connection without registrations pays
// a pointer.
//
// Concurrency: safe from any goroutine, before or after the close, also
// from f itself; stop likewise, any number of times. f runs after the
// connection is closed, never under one of its locks, so it may call
// anything on it.
func (c *Conn) AfterClose(f func(err error)) (stop func() bool) {
	if c.closed == nil {
		// A zero Conn never closes: f runs at once, as for a closed one.
		go f(errZeroConn)
		return func() bool { return false }
	}
	a := &afterClose{c: c, f: f}
	c.closeMu.Lock()
	select {
	case <-c.closed:
		c.closeMu.Unlock()
		go f(c.closedErr())
		return func() bool { return false }
	default:
	}
	// closeConn takes the list under closeMu after it has closed
	// c.closed (runAfterClose): a registration made before that is in the
	// list it takes, one made after it saw closed above.
	if head := c.afterClose; head != nil {
		a.next, head.prev = head, a
	}
	c.afterClose = a
	a.linked = true
	c.closeMu.Unlock()
	return a.stop
}

// afterClose is one AfterClose registration, a node of its connection's
// list.
//
// Concurrency: prev, next and linked are under the connection's closeMu;
// once runAfterClose has unlinked the list (linked false) only it reads
// next.
type afterClose struct {
	c          *Conn
	f          func(error)
	prev, next *afterClose
	linked     bool // in the connection's list: neither run nor stopped yet
}

// stop is AfterClose's stop.
func (a *afterClose) stop() bool {
	c := a.c
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if !a.linked {
		return false
	}
	a.linked = false
	if a.next != nil {
		a.next.prev = a.prev
	}
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		c.afterClose = a.next
	}
	a.prev, a.next = nil, nil
	return true
}

// runAfterClose starts the AfterClose callbacks of a connection closeConn
// has just closed (c.closed is closed: no callback registers after this).
func (c *Conn) runAfterClose() {
	c.closeMu.Lock()
	list := c.afterClose
	c.afterClose = nil
	for a := list; a != nil; a = a.next {
		a.linked = false // stop reports false from now on
	}
	c.closeMu.Unlock()
	if list == nil {
		return
	}
	err := c.closedErr()
	for a := list; a != nil; a = a.next {
		go a.f(err)
	}
}
