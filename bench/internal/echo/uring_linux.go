package echo

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// tcp-uring is the raw TCP echo driven by io_uring instead of readiness
// (epoll) and a read and a write per message: the server queues a receive
// on every connection, and one io_uring_enter both submits the sends and
// receives queued since the last and collects what completed meanwhile.
// On a loopback echo that leaves one system call per batch of messages,
// not two or three per message, and it is the ceiling of a completion-based
// server, where tcp is that of a readiness-based one (docs/benchmarks.md).
//
// The ring is set up for one issuer that runs the ring's completion work
// itself when it enters (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, Linux
// 6.1): no interrupts of other work to post completions. So every
// submission comes from one thread, the serving goroutine locked to it;
// another goroutine accepts and hands connections over through an eventfd
// the ring reads.

// io_uring ABI (include/uapi/linux/io_uring.h).
const (
	sysIOURingSetup = 425
	sysIOURingEnter = 426

	opRead = 22
	opSend = 26
	opRecv = 27

	enterGetEvents    = 1 << 0
	setupSingleIssuer = 1 << 12
	setupDeferTaskrun = 1 << 13
	featSingleMmap    = 1 << 0

	offSQRing = 0
	offSQEs   = 0x10000000

	ringEntries = 4096
)

type sqRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqRingOffsets
	cqOff                                                                  cqRingOffsets
}

// sqe is struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off, addr     uint64
	len, opFlags  uint32
	userData      uint64
	bufIndex      uint16
	personality   uint16
	spliceFDIn    int32
	addr3, pad    uint64
}

// cqe is struct io_uring_cqe (16 bytes).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// uring is one io_uring instance, used by one goroutine locked to its
// thread.
type uring struct {
	fd          int
	mem, sqeMem []byte
	sqHead      *uint32 // advanced by the kernel
	sqTail      *uint32
	sqMask      uint32
	sqes        []sqe
	cqHead      *uint32
	cqTail      *uint32 // advanced by the kernel
	cqMask      uint32
	cqes        []cqe
	queued      uint32 // SQEs filled since the last enter
	sqEntries   uint32
	// The eventfd's counter, which a queued read fills: kept here, on
	// the heap, because a goroutine's stack moves under the kernel.
	wake [8]byte
}

// URingSupported reports why tcp-uring cannot run here, or nil.
func URingSupported() error {
	r, err := newURing(8)
	if err != nil {
		return err
	}
	r.close()
	return nil
}

func newURing(entries uint32) (*uring, error) {
	p := uringParams{flags: setupSingleIssuer | setupDeferTaskrun}
	fd, _, e := syscall.Syscall(sysIOURingSetup, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &uring{fd: int(fd)}
	if p.features&featSingleMmap == 0 {
		r.close()
		return nil, errors.New("io_uring: kernel without IORING_FEAT_SINGLE_MMAP (Linux < 5.4)")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	var err error
	if r.mem, err = syscall.Mmap(r.fd, offSQRing, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		r.close()
		return nil, os.NewSyscallError("mmap", err)
	}
	if r.sqeMem, err = syscall.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		r.close()
		return nil, os.NewSyscallError("mmap", err)
	}
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }
	r.sqHead, r.sqTail, r.sqMask = at(p.sqOff.head), at(p.sqOff.tail), *at(p.sqOff.ringMask)
	// SQE i is always slot i of the array: set once, not per submission.
	sqArray := unsafe.Slice(at(p.sqOff.array), p.sqEntries)
	for i := range sqArray {
		sqArray[i] = uint32(i)
	}
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead, r.cqTail, r.cqMask = at(p.cqOff.head), at(p.cqOff.tail), *at(p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&r.mem[p.cqOff.cqes])), p.cqEntries)
	r.sqEntries = p.sqEntries
	return r, nil
}

func (r *uring) close() {
	if r.sqeMem != nil {
		_ = syscall.Munmap(r.sqeMem)
	}
	if r.mem != nil {
		_ = syscall.Munmap(r.mem)
	}
	_ = syscall.Close(r.fd)
}

// next returns a cleared SQE to fill; it is submitted by the next enter.
// A full submission queue is submitted now: each enter takes at least one
// SQE or fails.
func (r *uring) next() (*sqe, error) {
	tail := *r.sqTail + r.queued
	for tail-atomic.LoadUint32(r.sqHead) == r.sqEntries {
		if err := r.enter(0); err != nil {
			return nil, err
		}
		tail = *r.sqTail
	}
	i := tail & r.sqMask
	r.queued++
	s := &r.sqes[i]
	*s = sqe{}
	return s, nil
}

// enter publishes the queued SQEs and submits them, then waits until at
// least wait completions are there.
func (r *uring) enter(wait uint32) error {
	tail := *r.sqTail + r.queued
	atomic.StoreUint32(r.sqTail, tail) // release: the SQEs are written
	r.queued = 0
	var flags uintptr
	if wait > 0 {
		flags = enterGetEvents
	}
	for {
		// Whatever the kernel has not consumed yet: an interrupted or
		// short submission leaves nothing behind.
		n := tail - atomic.LoadUint32(r.sqHead)
		// Syscall, not RawSyscall: waiting blocks the thread, and the
		// scheduler must run the accepting goroutine meanwhile.
		_, _, e := syscall.Syscall6(sysIOURingEnter, uintptr(r.fd), uintptr(n), uintptr(wait), flags, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e == 0 {
			return nil
		}
		return os.NewSyscallError("io_uring_enter", e)
	}
}

// uconn is one echoed connection: a receive or a send of buf is queued
// for it at any time, never both, so each completion names the next step.
type uconn struct {
	fd     int32 // owned: closed when the connection ends
	buf    []byte
	n, off int // bytes received, bytes sent back
}

// blockingDup returns a blocking duplicate of nc's socket for the ring.
// Unlike TCPConn.File's, it is not registered with the Go runtime's
// poller, whose edge-triggered events for it would wake the runtime once
// a message for nothing.
func blockingDup(nc *net.TCPConn) (int, error) {
	rc, err := nc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	err = rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = os.NewSyscallError("fcntl", e)
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return -1, err
	}
	// O_NONBLOCK belongs to the open file, shared with nc's descriptor,
	// which the caller closes next.
	if err := syscall.SetNonblock(fd, false); err != nil {
		_ = syscall.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// userData tags: the low bit tells a send from a receive; id 0 is the
// eventfd.
const wakeID = 0

func serveTCPUring(ln net.Listener) error {
	// The ring's single issuer is this thread: set up, submit and reap
	// from here only.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := newURing(ringEntries)
	if err != nil {
		return err
	}
	defer r.close()
	efd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
	if e != 0 {
		return os.NewSyscallError("eventfd2", e)
	}

	// The acceptor hands connections over under mu and wakes the ring. It
	// writes to efd until it returns, so efd is closed after that; a ring
	// that fails ends it by closing ln.
	var (
		mu       sync.Mutex
		incoming []net.Conn
		acceptEr error
	)
	one := [8]byte{1}
	accepting := make(chan struct{})
	defer func() {
		_ = ln.Close()
		<-accepting
		_ = syscall.Close(int(efd))
	}()
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			mu.Lock()
			if err != nil {
				acceptEr = err
			} else {
				incoming = append(incoming, c)
			}
			mu.Unlock()
			_, _ = syscall.Write(int(efd), one[:])
			if err != nil {
				return
			}
		}
	}()

	// Every receive and send queued points into its connection's buf,
	// kept alive by conns until the operation has completed: once the
	// listener closes, the ring is drained before serveTCPUring returns.
	// (If the ring itself fails, closing it cancels what is queued; the
	// echo server exits on that error.)
	conns := map[uint64]*uconn{}
	var (
		lastID  uint64
		stopped error // the acceptor's error: drain, then return it
	)
	queue := func(op uint8, id uint64, fd int32, b []byte, tag uint64) error {
		s, err := r.next()
		if err != nil {
			return err
		}
		s.opcode, s.fd = op, fd
		s.addr, s.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
		s.userData = id<<1 | tag
		return nil
	}
	if err := queue(opRead, wakeID, int32(efd), r.wake[:], 0); err != nil {
		return err
	}
	for stopped == nil || len(conns) > 0 {
		if err := r.enter(1); err != nil {
			return err // the ring itself failed (see above)
		}
		head, tail := *r.cqHead, atomic.LoadUint32(r.cqTail) // acquire
		for ; head != tail; head++ {
			ev := r.cqes[head&r.cqMask]
			id := ev.userData >> 1
			if id == wakeID {
				mu.Lock()
				in, aerr := incoming, acceptEr
				incoming = nil
				mu.Unlock()
				for _, nc := range in {
					fd, err := blockingDup(nc.(*net.TCPConn))
					_ = nc.Close()
					if err != nil {
						continue
					}
					lastID++
					c := &uconn{fd: int32(fd), buf: make([]byte, echoBufSize)}
					conns[lastID] = c
					if err := queue(opRecv, lastID, c.fd, c.buf, 0); err != nil {
						return err
					}
				}
				if aerr == nil {
					if err := queue(opRead, wakeID, int32(efd), r.wake[:], 0); err != nil {
						return err
					}
					continue
				}
				// The listener closed: end every connection's queued
				// operation (a shut-down socket completes it) and wait.
				stopped = aerr
				for _, c := range conns {
					_ = syscall.Shutdown(int(c.fd), syscall.SHUT_RDWR)
				}
				continue
			}
			c := conns[id]
			if ev.res <= 0 || stopped != nil { // end of stream, an error (-errno), or stopping
				_ = syscall.Close(int(c.fd))
				delete(conns, id)
				continue
			}
			if ev.userData&1 == 0 { // received
				c.n, c.off = int(ev.res), 0
			} else {
				c.off += int(ev.res)
			}
			var err error
			if c.off < c.n {
				err = queue(opSend, id, c.fd, c.buf[c.off:c.n], 1)
			} else {
				err = queue(opRecv, id, c.fd, c.buf, 0)
			}
			if err != nil {
				return err
			}
		}
		atomic.StoreUint32(r.cqHead, head) // release: the CQEs are read
	}
	return stopped
}
