//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/internal/sockbuf"
)

// TestShutdownStalledWatcher: a watcher that stopped reading keeps its
// Watch handler blocked in a write (up to the 10 s SSE write timeout);
// once the shutdown's grace period has passed, run closes that
// connection, says so in one log line and returns nil, so that main exits
// cleanly on SIGINT/SIGTERM (before, run returned "context deadline
// exceeded" and main exited 1).
//
// An event a millisecond: the few KiB the two small socket buffers below
// hold fill within a fraction of a second, and the journal's 10,000
// events span 10 s, so a handler slowed by load on its way to the block
// does not fall out of the journal and end instead (at an event every
// 20 µs the journal spanned 0.2 s; the stream then ended with
// resource_exhausted before it blocked, and nothing was left to cut).
func TestShutdownStalledWatcher(t *testing.T) {
	logs := &runtest.Buffer{}
	s := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, config{Addr: "127.0.0.1:0", NodeID: "n1", Interval: time.Millisecond}, io.MultiWriter(out, logs))
	})
	// A receive buffer of 2 KiB: little of the stream fits on this side.
	d := sockbuf.Dialer(2048, 0)
	c, err := d.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /examples.ticker.v1.TickerService/Watch HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("watch: %q %v", line, err)
	}
	// Never read again. The server's socket gets a small send buffer (it
	// would grow to 4 MiB, which under load the handler may take longer
	// to fill than the journal's 10,000 events last: it would then stop,
	// fallen behind, instead of blocking); once the socket's send queue
	// has stopped growing for half a second while events are published
	// every millisecond, the handler is blocked in a write.
	server := c.RemoteAddr().(*net.TCPAddr).Port
	client := c.LocalAddr().(*net.TCPAddr).Port
	_, inode := sendQueue(t, server, client)
	shrinkSendBuffer(t, inode)
	deadline := time.Now().Add(60 * time.Second)
	for prev, same := -1, 0; same < 5; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server's send queue still grows after 60 s")
		}
		q, _ := sendQueue(t, server, client)
		if q > 0 && q == prev {
			same++
		} else {
			same = 0
		}
		prev = q
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("run with one stalled watcher: %v (main would exit 1)", err)
	}
	if !strings.Contains(logs.String(), "shutdown: cut 1 connection(s) still open after 5s") {
		t.Fatalf("run's log has no line about the cut connection:\n%s", logs.String())
	}
}

// sendQueue reads from /proc/net/tcp how many bytes the loopback socket
// from port local to port remote holds unacknowledged or unsent, and the
// socket's inode.
func sendQueue(t *testing.T, local, remote int) (queue int, inode string) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("0100007F:%04X 0100007F:%04X", local, remote)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 9 && f[1]+" "+f[2] == want {
			tx, _, _ := strings.Cut(f[4], ":")
			n, err := strconv.ParseInt(tx, 16, 64)
			if err != nil {
				t.Fatalf("/proc/net/tcp: %q", l)
			}
			return int(n), f[9]
		}
	}
	t.Fatalf("no socket %s in /proc/net/tcp", want)
	return 0, ""
}

// shrinkSendBuffer sets a 4 KiB send buffer on this process's socket
// with the given inode (the server's end of a test connection).
func shrinkSendBuffer(t *testing.T, inode string) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); l == "socket:["+inode+"]" {
			n, _ := strconv.Atoi(fd.Name())
			if err := syscall.SetsockoptInt(n, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no descriptor for socket %s", inode)
}
