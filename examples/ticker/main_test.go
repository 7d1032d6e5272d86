package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/runtest"
)

// startTicker runs the server with cfg (cfg.Addr "" for a free port of
// 127.0.0.1) and returns its base URL and stop, which cancels run and
// returns its result (bounded); the test's cleanup stops it too.
func startTicker(t *testing.T, cfg config) (url string, stop func() error) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, cfg, out)
	})
	return s.URL, s.Stop
}

// lineWriter sends each line written to it on a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w <- l
	}
	return len(p), nil
}

// startWatch runs the watch client and returns the ids of the events it
// prints, in order, as they come.
func startWatch(t *testing.T, cfg watchConfig) (ids <-chan string, lines <-chan string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(lineWriter, 1<<16)
	idc := make(chan string, 1<<16)
	done := make(chan error, 1)
	go func() { done <- watch(ctx, cfg, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("watch: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("watch did not return after cancel")
		}
	})
	linec := make(chan string, 1<<16)
	go func() {
		for l := range out {
			idc <- strings.Fields(l)[0]
			linec <- l
		}
	}()
	return idc, linec
}

func next(t *testing.T, ids <-chan string) string {
	t.Helper()
	select {
	case id := <-ids:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("no event for 20 s")
		return ""
	}
}

// TestResumeAcrossRestart: the watch client (the generated SSE client)
// reads events from a server, the server stops, and a new server process
// (a fresh run on the same port and journal file) takes over, under a
// new node id or, with -node, the same one. The client is kept off the
// network until the new server has published 20 events, so those can
// reach it only by resumption: it must then print exactly the journal's
// events from its first one on — every event of both servers, none
// twice, none missing, in order. Under the same node id the new server
// numbers on after the journal's last event (the journal renumbers what
// the hub numbers from 1 again), and nothing is refused: before, its
// first events were refused as duplicates of the previous run's ids,
// which the server logs, and lost.
func TestResumeAcrossRestart(t *testing.T) {
	for _, second := range []string{"two", "one"} {
		t.Run("second node "+second, func(t *testing.T) { testResumeAcrossRestart(t, "one", second) })
	}
}

func testResumeAcrossRestart(t *testing.T, first, second string) {
	path := filepath.Join(t.TempDir(), "ticker.journal")
	url, stop1 := startTicker(t, config{Journal: path, NodeID: first, Interval: 2 * time.Millisecond})

	var down atomic.Bool // the client's network is cut
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("test: network down")
		}
		return dialer.DialContext(ctx, network, addr)
	}}}
	ids, _ := startWatch(t, watchConfig{URL: url, Reconnect: 20 * time.Millisecond, HTTPClient: hc})

	var got []string
	for len(got) < 20 {
		got = append(got, next(t, ids))
	}
	down.Store(true)
	if err := stop1(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	evs, err := loadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	firstN, last := len(evs), evs[len(evs)-1].ID // the first server's last event

	logs := &runtest.Buffer{}
	s2 := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, config{Addr: strings.TrimPrefix(url, "http://"), Journal: path, NodeID: second, Interval: 2 * time.Millisecond}, io.MultiWriter(out, logs))
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := loadJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= firstN+20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second server did not publish 20 events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	down.Store(false)
	after := contains(got, last) // events of the second server seen
	for seen := 0; seen < 40; {
		id := next(t, ids)
		got = append(got, id)
		if after {
			seen++
		}
		after = after || id == last
	}
	if err := s2.Stop(); err != nil {
		t.Fatalf("second server: %v", err)
	}
	// The server logs what the hub could not record (OnError): nothing
	// may have been refused.
	if _, l, _ := strings.Cut(logs.String(), "\n"); l != "" {
		t.Fatalf("the second server logged:\n%s", l)
	}

	evs, err = loadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	start := -1
	for i, e := range evs {
		if e.ID == got[0] {
			start = i
		}
	}
	if start < 0 {
		t.Fatalf("first id %s not in the journal", got[0])
	}
	for i, id := range got {
		if start+i >= len(evs) || evs[start+i].ID != id {
			want := "end of journal"
			if start+i < len(evs) {
				want = evs[start+i].ID
			}
			t.Fatalf("event %d: got %s, journal has %s (ids so far %v)", i, id, want, got[max(0, i-3):i+1])
		}
	}
	// The second server's first event: "two-1" under a new node id, the
	// next number after the first server's last under the same one.
	want := second + "-1"
	if second == first {
		_, n, _ := splitID(last)
		want = first + "-" + strconv.FormatUint(n+1, 10)
	}
	if !strings.HasPrefix(got[0], first+"-") || !contains(got, last) || evs[firstN].ID != want {
		t.Fatalf("ids %v (second server from %s): want both servers' events, the second's from %s on", got, evs[firstN].ID, want)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestWatchFilter: the typed stream carries both event types, decoded
// into their oneof cases, and the symbols filter travels in the query.
func TestWatchFilter(t *testing.T) {
	url, _ := startTicker(t, config{Interval: time.Millisecond})
	_, lines := startWatch(t, watchConfig{URL: url, Symbols: []string{"goph", "NATS"}})
	kinds := map[string]int{}
	for range 60 {
		var l string
		select {
		case l = <-lines:
		case <-time.After(20 * time.Second):
			t.Fatal("no event for 20 s")
		}
		f := strings.Fields(l)
		if len(f) < 3 || f[2] != "GOPH" && f[2] != "NATS" {
			t.Fatalf("line %q: want only GOPH and NATS", l)
		}
		kinds[f[1]]++
	}
	if kinds["quote"] == 0 || kinds["trade"] == 0 || len(kinds) != 2 {
		t.Fatalf("event kinds %v, want quotes and trades", kinds)
	}
}

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
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		}); err != nil {
			return err
		}
		return serr
	}}
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
