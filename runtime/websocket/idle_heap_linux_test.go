package websocket_test

import (
	"bytes"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/fdlimit"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// maxIdlePolledHeap bounds TestIdlePolledHeap's figure, in bytes: about
// 1,390 measured (Go 1.26, also under the race detector, which keeps its
// shadow memory outside the heap), of which the Conn's 640-byte size
// class, its three channels (112 bytes each), the pollEntry (64) and the
// socket's net.netFD, addresses and RawConn (about 320). It was 1,640
// with a Conn in the 896-byte class.
const maxIdlePolledHeap = 1450

// TestIdlePolledHeap bounds the live heap an idle connection served by a
// Poller keeps on the server: its Conn, channels and pollEntry, and the
// socket's own net.netFD and addresses. At 10,000 idle connections each
// live byte costs about two of resident memory (docs/benchmarks.md, "How
// idle memory was brought under 4 KiB"), whose target is 4 KiB a
// connection. The clients are bare sockets made with system calls, so
// that the process's heap holds the server's side alone.
func TestIdlePolledHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 connections")
	}
	fdlimit.Raise()
	const n = 1000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*n+256 {
		t.Skipf("needs %d descriptors (limit %d)", 2*n+256, lim.Cur)
	}
	p, err := websocket.NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var served, closed atomic.Int64
	// One Handler for every connection: a HandlerFuncs converted at each
	// Serve would count 16 bytes of its own per connection.
	var h websocket.Handler = websocket.HandlerFuncs{Close: func(*websocket.Conn, error) { closed.Add(1) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		if err := p.Serve(c, h); err != nil {
			c.CloseNow()
			return
		}
		served.Add(1)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().(*net.TCPAddr)

	wait := func(what string, v *atomic.Int64, want int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for v.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections %s, want %d", v.Load(), what, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	open := func(k int) {
		t.Helper()
		for range k {
			fds = append(fds, bareHandshake(t, addr))
		}
	}
	// Pools, the poller's slices and the code paths' first allocations.
	open(16)
	wait("served", &served, 16)
	for _, fd := range fds {
		syscall.Close(fd)
	}
	fds = fds[:0]
	wait("closed", &closed, 16)
	served.Store(0)

	before := liveHeap()
	open(n)
	wait("served", &served, n)
	settleGoroutines()
	after := liveHeap()
	per := float64(after-before) / n
	t.Logf("live heap per idle polled connection: %.0f bytes", per)
	if per > maxIdlePolledHeap {
		t.Errorf("%.0f bytes of live heap per idle polled connection, want at most %d", per, maxIdlePolledHeap)
	}
}

// bareHandshake opens a WebSocket connection to addr from a bare socket
// and returns its descriptor once the server's 101 has arrived.
func bareHandshake(t *testing.T, addr *net.TCPAddr) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	req := "GET / HTTP/1.1\r\nHost: " + addr.String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := syscall.Write(fd, []byte(req)); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	var buf [512]byte
	got := 0
	for !bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
		k, err := syscall.Read(fd, buf[got:])
		if err != nil || k <= 0 {
			syscall.Close(fd)
			t.Fatalf("handshake read: %d, %v", k, err)
		}
		got += k
	}
	if !bytes.HasPrefix(buf[:got], []byte("HTTP/1.1 101 ")) {
		syscall.Close(fd)
		t.Fatalf("handshake answered %q", buf[:got])
	}
	return fd
}

// liveHeap is HeapAlloc after collections: what is reachable.
func liveHeap() int64 {
	for range 3 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// settleGoroutines waits until the goroutine count stops changing: the
// HTTP connections' goroutines have returned after the handlers.
func settleGoroutines() {
	for last, stable := -1, 0; stable < 5; {
		g := runtime.NumGoroutine()
		if g == last {
			stable++
		} else {
			last, stable = g, 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}
