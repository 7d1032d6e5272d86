package websocket

import (
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Linux: an epoll instance of the Poller's own, edge-triggered, nested in
// the Go runtime's poller: the epoll descriptor is itself pollable, so the
// dispatcher goroutine parks like any network reader (no thread blocked in
// epoll_wait) and wakes when a watched socket has input.
//
// The sockets stay in the runtime's poller too (they are still net.Conns
// and their writes and in-message reads use it); epoll allows a file in
// several interest lists.
const (
	epollET    = 1 << 31 // EPOLLET: syscall's constant is negative
	epollBatch = 256     // events per epoll_wait
	// The peer shut down its side, or the socket hung up or failed:
	// what follows the data still buffered is the end of the stream.
	// EPOLLHUP and EPOLLERR are reported without being asked for.
	epollHangUp = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR
)

type pollSys struct {
	epfd     int
	file     *os.File      // epfd, registered with the runtime's poller
	done     chan struct{} // closed when dispatch has returned
	busyPoll time.Duration // PollerOptions.BusyPoll
	closing  atomic.Bool   // close has begun: stop busy polling
	// An eventfd in epfd's interest list, written when busy polling
	// yields (see busyPollYield), or -1 without BusyPoll.
	wakefd int
}

// wakeSlot is the slot in the wake eventfd's events: no entry's.
const wakeSlot = -1

// busyPollYield bounds one stretch of busy polling.
// While the dispatcher polls it is always runnable, and a scheduler with
// runnable goroutines does not look at the runtime's own poller (only
// sysmon does, after 10ms): goroutines waiting there — a Write held up by
// a slow reader, the listener's Accept — would wait that long on a
// server with one P. Sleeping through the runtime's poller now and then
// serves them. The dispatcher writes wakefd before each such sleep, so
// that it is woken at once, and only from the runtime's poller, which
// hands out everything else ready there with it; without the write it
// would sleep until the next input, and a BusyPoll above busyPollYield
// would act as about busyPollYield.
const busyPollYield = time.Millisecond

func (s *pollSys) init(p *Poller) error {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return os.NewSyscallError("fcntl", err)
	}
	s.epfd = fd
	s.wakefd = -1
	if s.busyPoll > 0 {
		efd, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if e != 0 {
			syscall.Close(fd)
			return os.NewSyscallError("eventfd2", e)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: wakeSlot}
		if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, int(efd), &ev); err != nil {
			syscall.Close(int(efd))
			syscall.Close(fd)
			return os.NewSyscallError("epoll_ctl", err)
		}
		s.wakefd = int(efd)
	}
	// NewFile sees O_NONBLOCK and adds the descriptor to the runtime's
	// poller, so RawConn.Read below waits for it without a thread.
	s.file = os.NewFile(uintptr(fd), "websocket-poller")
	rc, err := s.file.SyscallConn()
	if err != nil {
		s.file.Close()
		s.closeWake()
		return err
	}
	s.done = make(chan struct{})
	go s.dispatch(p, rc)
	return nil
}

func (s *pollSys) ok() bool { return true }

// add watches e's socket: readable (EPOLLIN), peer closed its side
// (EPOLLRDHUP), edge-triggered. The event carries e's slot and generation.
// epoll_ctl runs inside RawConn.Control, which holds the descriptor open:
// a concurrent Close cannot hand its number to another socket meanwhile.
func (s *pollSys) add(e *pollEntry) error {
	if epollFull.Load() {
		return os.NewSyscallError("epoll_ctl", syscall.ENOSPC)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: e.slot, Pad: e.gen}
	var cerr error
	err := e.c.rawConn.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	return err
}

// epollFull makes add fail as it does when the system has no room for
// another watch; set by tests only.
var epollFull atomic.Bool

// del stops watching e's socket. A socket already closed left the interest
// list when it was closed (Control then fails, and there is nothing to do).
func (s *pollSys) del(e *pollEntry) {
	_ = e.c.rawConn.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// close stops dispatch and returns once it has.
func (s *pollSys) close() error {
	s.closing.Store(true)
	err := s.file.Close()
	<-s.done
	s.closeWake()
	return err
}

func (s *pollSys) closeWake() {
	if s.wakefd >= 0 {
		syscall.Close(s.wakefd)
	}
}

// wake makes epfd readable. The eventfd's counter is never read: the
// edge-triggered registration reports each write, and it would take
// centuries of writes to fill.
func (s *pollSys) wake() {
	one := uint64(1)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(s.wakefd), uintptr(unsafe.Pointer(&one)), 8)
}

// epollWaitNow is epoll_wait with a zero timeout. It never blocks, so it
// is made as a raw system call: syscall.EpollWait's entersyscall would
// wake the runtime's sysmon thread (a futex and a context switch on a
// quiet server) for a call that returns at once. epoll_pwait with no
// signal mask is epoll_wait, and exists on every Linux architecture.
func epollWaitNow(epfd int, events []syscall.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// dispatch wakes the entries whose sockets have input, until the poller
// closes. An event batch smaller than the buffer emptied epoll's ready
// list, and the edge-triggered registration of the epoll descriptor in the
// runtime's poller reports the next event, so the callback returns false
// (wait) then without another epoll_wait.
//
// With BusyPoll, an emptied ready list is polled again, the processor
// yielded between polls, until BusyPoll has passed since the last event;
// only then does the dispatcher sleep. Every busyPollYield it passes
// through the runtime's poller (wakefd) and polls on.
func (s *pollSys) dispatch(p *Poller, rc syscall.RawConn) {
	defer close(s.done)
	events := make([]syscall.EpollEvent, epollBatch)
	woken := make([]*pollEntry, 0, epollBatch)
	var lastEvent time.Time // busy polling: when the last batch had events
	_ = rc.Read(func(fd uintptr) bool {
		var began time.Time // busy polling: when this callback first emptied the ready list
		// Busy polling: an event other than wakefd's came since lastEvent
		// was set; kept across full batches, whose events count as well.
		input := false
		for {
			n, err := epollWaitNow(int(fd), events)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return !errors.Is(err, syscall.EAGAIN)
			}
			p.mu.Lock()
			for i := range n {
				if events[i].Fd == wakeSlot {
					continue
				}
				input = true
				e := p.lookup(events[i].Fd, events[i].Pad)
				if e == nil {
					continue
				}
				if events[i].Events&epollHangUp != 0 {
					// Before rouse, so the worker it wakes sees it. The
					// peer's last data and its FIN may come in this one
					// event: the worker's short read takes the data
					// only, and no event will follow for the end.
					e.hangUp.Store(true)
				}
				if e.rouse() {
					woken = append(woken, e)
				}
			}
			p.mu.Unlock()
			p.enqueue(woken...)
			clear(woken)
			woken = woken[:0]
			if n == len(events) {
				continue // more may be ready
			}
			if s.busyPoll == 0 || s.closing.Load() {
				return false
			}
			now := time.Now()
			if began.IsZero() {
				began = now
			}
			if input {
				lastEvent, input = now, false
			}
			if now.Sub(lastEvent) >= s.busyPoll {
				return false
			}
			if now.Sub(began) >= busyPollYield {
				s.wake()
				return false
			}
			runtime.Gosched() // the workers just called, and anything else runnable
		}
	})
}
