//go:build unix

package websocket

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// Socket I/O for connections whose net.Conn is a socket (TCP, Unix).
//
// Two things are done here rather than through net.Conn's Read and Write:
//
//   - An idle connection waits for data without holding a read buffer:
//     fillIdle asks the runtime's poller for readiness through
//     syscall.RawConn and takes a pooled buffer only when bytes are there.
//   - Every read and write is a raw system call on the non-blocking
//     descriptor (rawRW). net.Conn's calls go through the scheduler's
//     bookkeeping for calls that may block, which on a process that was
//     idle wakes the runtime's sysmon thread: a futex, two context
//     switches and a nanosleep for each message of a quiet connection —
//     measured with perf, 6.3 system calls and 2.7 context switches per
//     echoed message became 4.3 and 0.9 (docs/benchmarks.md). A
//     non-blocking call cannot block, so the bookkeeping buys nothing;
//     when the socket is not ready, RawConn.Read and RawConn.Write park
//     the goroutine in the runtime's poller as net.Conn would, with the
//     connection's deadlines.

// setupSocketIO finds the connection's descriptor, if it has one.
func (c *Conn) setupSocketIO() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.rawConn = rc
	c.rawRead = c.rawReadOnce
}

// unreadBytes returns how many bytes wait in the receive queue of the
// socket under the connection, unread by anyone: ioctl SIOCINQ (Linux's
// FIONREAD). The keepalive asks when a pong is late (keepalive): bytes
// that arrived unread show the peer alive although nobody read its pong.
// The socket is the one read directly (rawConn) or the one under a TLS
// connection, found through NetConn (*tls.Conn has it, Go 1.18): TLS
// records waiting unread prove the peer alive as well. It reports false
// where there is no count: a closed connection (its socket gone, or
// drained by lingerClose), a net.Conn that leads to no socket, an error
// from the socket, and systems other than Linux. The ioctl does not
// block; it costs a system call and two or three small allocations (the
// Control callback's, and SyscallConn's through TLS), once per keepalive
// round.
func (c *Conn) unreadBytes() (int, bool) {
	if inqRequest == 0 {
		return 0, false
	}
	select {
	case <-c.closed:
		return 0, false
	default:
	}
	rc := c.rawConn
	if rc == nil {
		rc = socketUnder(c.nc)
		if rc == nil {
			return 0, false
		}
	}
	n := -1
	if err := rc.Control(func(fd uintptr) { n = queueLen(fd, inqRequest) }); err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// socketUnder returns the socket under a net.Conn that wraps one and
// says so with NetConn, as *tls.Conn does, or nil. A few layers at most:
// a wrapper that leads back to itself must not loop.
func socketUnder(nc net.Conn) syscall.RawConn {
	for range 4 {
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		if nc = u.NetConn(); nc == nil {
			return nil
		}
		if sc, ok := nc.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
	}
	return nil
}

// rawRW is read(2) or write(2) on a non-blocking descriptor, as a raw
// system call (see above).
func rawRW(trap, fd uintptr, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	for {
		r, _, e := syscall.RawSyscall(trap, fd, uintptr(ptr), uintptr(len(p)))
		switch e {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}

// rawReadOnce is the RawConn.Read callback: one non-blocking read, into
// c.rdst when a caller gave one, else into a pooled buffer taken only now.
// On EAGAIN it gives the pooled buffer back and asks to be called again
// when the socket is readable, or, for a Poller's worker between messages
// (rawNoWait), reports errWouldBlock.
func (c *Conn) rawReadOnce(fd uintptr) bool {
	if c.rdst != nil {
		n, err := rawRW(syscall.SYS_READ, fd, c.rdst)
		if err == syscall.EAGAIN {
			c.readWaiting.Store(true) // until the socket is readable
			return false
		}
		c.rawN, c.rawErr = n, err
		return true
	}
	if c.rbuf == nil {
		c.rbuf = c.readBuf()
	}
	n, err := rawRW(syscall.SYS_READ, fd, *c.rbuf)
	if err == syscall.EAGAIN {
		putBuf(c.rbuf)
		c.rbuf = nil
		if c.rawNoWait {
			c.rawErr = errWouldBlock
			return true
		}
		c.readWaiting.Store(true) // until the socket is readable
		return false
	}
	c.rawN, c.rawErr = n, err
	c.rbig = n == len(*c.rbuf)
	c.rfull = c.rbig
	return true
}

// fillIdle is fill with nothing buffered: wait for input without a buffer.
func (c *Conn) fillIdle() error {
	c.rawN, c.rawErr = 0, nil
	err := c.rawWait()
	c.readWaiting.Store(false)
	if err == nil {
		err = c.rawErr
	}
	if c.rawN > 0 {
		c.rpos, c.rend = 0, c.rawN
		c.stats.wireRead.Add(uint64(c.rawN))
		return nil
	}
	if c.rbuf != nil {
		putBuf(c.rbuf)
		c.rbuf = nil
	}
	c.rfull = false
	if err == errWouldBlock || err == errLingerOver {
		return err
	}
	if err == nil {
		err = io.EOF
	}
	if errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF
	}
	return c.ioErr(sysErr("read", err))
}

// rawWait is RawConn.Read with the read callback, for fillIdle and
// readRaw. A Poller's lingering worker reads under a deadline of its own
// (pollEntry.lingerFill), which must not fail a message that has begun
// (lingerDeadline).
func (c *Conn) rawWait() error {
	for {
		waitOn, err := c.lingerDeadline(c.rawConn.Read(c.rawRead))
		if !waitOn {
			return err
		}
	}
}

// readRaw is readSock on a socket.
func (c *Conn) readRaw(p []byte) (int, error) {
	c.rdst, c.rawN, c.rawErr = p, 0, nil
	err := c.rawWait()
	c.readWaiting.Store(false)
	c.rdst = nil
	if err == nil {
		err = c.rawErr
	}
	if c.rawN > 0 {
		return c.rawN, nil
	}
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		// A reset is the peer's end of the stream too, as in fillIdle: a
		// TCP connection cut inside a frame reads as io.ErrUnexpectedEOF
		// (ioErr; docs/security.md), whether it ended with FIN or RST.
		err = io.EOF
	}
	return 0, sysErr("read", err)
}

// writeRaw is writeSock on a socket.
func (c *Conn) writeRaw(tx *writeSpare, b []byte) error {
	tx.out, tx.err = b, nil
	err := c.rawConn.Write(tx.write)
	for err != nil && tx.peerReads(err) {
		err = c.rawConn.Write(tx.write)
	}
	tx.out = nil
	tx.disarm()
	if err == nil {
		err = tx.err
	}
	return sysErr("write", err)
}

// writevRaw is writeSock2 on a socket.
func (c *Conn) writevRaw(tx *writeSpare, a, b []byte) error {
	tx.bufs[0], tx.bufs[1], tx.err = a, b, nil
	err := c.rawConn.Write(tx.writev)
	for err != nil && tx.peerReads(err) {
		err = c.rawConn.Write(tx.writev)
	}
	tx.bufs[0], tx.bufs[1] = nil, nil
	tx.disarm()
	if err == nil {
		err = tx.err
	}
	return sysErr("writev", err)
}

// sockWrite is the state of a raw write, part of writeSpare.
type sockWrite struct {
	out    []byte // what is left to write
	err    error  // the write's error
	armed  bool   // the write deadline is set for this write
	queued int    // the send queue's length when it was set; -1: unknown (peerReads)
	iov    [2]syscall.Iovec
	write  func(fd uintptr) bool // method values, made once
	writev func(fd uintptr) bool
	sample func(fd uintptr) // reads the send queue's length into queued
}

// wait is the callbacks' answer when the socket cannot take more: the
// write will wait in the runtime's poller, so it needs its deadline,
// WriteTimeout from now — set at the first wait, and moved at each later
// one that follows progress (wrote), so WriteTimeout ends only a write
// that makes none. A write the socket takes at once sets no deadline at
// all. SetWriteDeadline from inside the callback is safe: it takes a
// reference on the descriptor, not the write lock RawConn.Write holds.
// With the deadline it records how much the socket's send queue holds,
// for peerReads (one ioctl, on Linux, per wait that sets it).
func (tx *writeSpare) wait(fd uintptr, wrote bool) bool {
	if t := tx.c.cfg.writeTimeout; t > 0 && (wrote || !tx.armed) {
		_ = tx.c.nc.SetWriteDeadline(time.Now().Add(t))
		tx.armed = true
		tx.queued = sendQueued(fd)
	}
	return false
}

// peerReads is asked when a raw write's wait ended in err. If that is the
// write deadline, and the socket's send queue has shrunk since the
// deadline was set, the peer has taken bytes (acknowledged them, having
// read some: its receive window opened) although the poller never woke
// the write: Linux reports a TCP socket writable only once its free space
// is at least half of what it holds queued (sk_stream_min_wspace), so
// with a send buffer autotuned to 4 MiB a third of it must drain first —
// a peer reading 20 KiB/s woke the write less often than every 30 s, and
// WriteTimeout cut a peer that never stopped reading. It then moves the
// deadline WriteTimeout on, records the queue's new length, and reports
// true: the write waits again. A queue that did not shrink fails the
// write as before, as does any other error. The check costs a system
// call when a deadline fires, nothing on the way of a write that does not
// wait. Where the queue's length is not read (systems other than Linux)
// the write fails at the deadline unless the poller woke it with progress
// before.
func (tx *writeSpare) peerReads(err error) bool {
	if !tx.armed || tx.queued < 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	was := tx.queued
	if tx.c.rawConn.Control(tx.sample) != nil || tx.queued < 0 || tx.queued >= was {
		tx.queued = -1
		return false
	}
	_ = tx.c.nc.SetWriteDeadline(time.Now().Add(tx.c.cfg.writeTimeout))
	return true
}

// sampleQueued is the RawConn.Control callback of peerReads.
func (tx *writeSpare) sampleQueued(fd uintptr) { tx.queued = sendQueued(fd) }

// sendQueued returns how many bytes the socket fd holds in its send queue,
// written and not yet acknowledged by the peer (for TCP; for a Unix
// socket, not yet read): ioctl SIOCOUTQ. It returns -1 where there is no
// count (outqRequest is 0) or the ioctl fails.
func sendQueued(fd uintptr) int {
	if outqRequest == 0 {
		return -1
	}
	return queueLen(fd, outqRequest)
}

// queueLen is the ioctl both counts use (SIOCINQ, SIOCOUTQ): the length
// of one of fd's queues, or -1 if the ioctl fails. It does not block.
func queueLen(fd, request uintptr) int {
	var n int32 // the ioctl writes a C int
	_, _, errno := syscall.RawSyscall(syscall.SYS_IOCTL, fd, request, uintptr(unsafe.Pointer(&n)))
	if errno != 0 || n < 0 {
		return -1
	}
	return int(n)
}

// disarm clears the deadline a write that waited set: left in place, it
// would expire while the connection is idle and fail the next write
// before it starts (RawConn.Write checks it first).
func (tx *writeSpare) disarm() {
	if tx.armed {
		_ = tx.c.nc.SetWriteDeadline(time.Time{})
		tx.armed = false
	}
}

func newWriteSpare() *writeSpare {
	tx := new(writeSpare)
	tx.write = tx.rawWriteOnce
	tx.writev = tx.rawWritevOnce
	tx.sample = tx.sampleQueued
	return tx
}

// rawWriteOnce is the RawConn.Write callback of writeSock: it writes what
// is left of tx.out, and asks to be called again when the socket is
// writable if it would block (wait arms the write deadline).
func (tx *writeSpare) rawWriteOnce(fd uintptr) bool {
	wrote := false
	for len(tx.out) > 0 {
		n, err := rawRW(syscall.SYS_WRITE, fd, tx.out)
		if err == syscall.EAGAIN {
			return tx.wait(fd, wrote)
		}
		if err != nil {
			tx.err = err
			return true
		}
		tx.out = tx.out[n:]
		wrote = true
	}
	return true
}

// rawWritevOnce is the RawConn.Write callback of writeSock2; it arms the
// write deadline as rawWriteOnce does.
func (tx *writeSpare) rawWritevOnce(fd uintptr) bool {
	wrote := false
	for len(tx.bufs[0])+len(tx.bufs[1]) > 0 {
		iov := tx.iov[:0]
		for _, b := range tx.bufs {
			if len(b) > 0 {
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				iov = append(iov, v)
			}
		}
		var n uintptr
		var e syscall.Errno
		for {
			n, _, e = syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			if e != syscall.EINTR {
				break
			}
		}
		if e == syscall.EAGAIN {
			return tx.wait(fd, wrote)
		}
		if e != 0 {
			tx.err = e
			return true
		}
		for i := range tx.bufs {
			k := min(int(n), len(tx.bufs[i]))
			tx.bufs[i] = tx.bufs[i][k:]
			n -= uintptr(k)
		}
		wrote = true
	}
	return true
}

// sysErr names the system call a bare errno came from, as net.Conn's
// errors do; other errors (deadlines, a closed connection) pass through.
func sysErr(call string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return os.NewSyscallError(call, errno)
	}
	return err
}

// connReset reports whether err is the peer's reset of the connection.
func connReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
