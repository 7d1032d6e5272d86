package websocket

// Regression tests for the write side that need its internals: who holds
// the frame lock, and the socket under a connection.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// stallWrite starts a Write of a message far larger than the socket
// buffers on c, whose peer reads nothing, and returns once that Write
// holds the frame lock, stuck in the socket write. Its result comes on
// the channel.
func stallWrite(t *testing.T, c *Conn, peer net.Conn, size int) <-chan error {
	t.Helper()
	_ = c.nc.(*net.TCPConn).SetWriteBuffer(32 << 10)
	_ = peer.(*net.TCPConn).SetReadBuffer(32 << 10)
	done := make(chan error, 1)
	go func() { done <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()
	deadline := time.Now().Add(ioBound)
	for {
		// Nobody else writes on c: a busy frame lock while the Write is
		// under way is the Write's, and it cannot finish.
		if c.writers.Load() == 1 {
			if !c.frameMu.TryLock() {
				return done
			}
			c.frameMu.Unlock()
		}
		if time.Now().After(deadline) {
			t.Fatal("the Write never took the frame lock")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPingCtxBoundsWaitBehindStalledWrite guards Ping's promise that its
// ctx bounds it and leaves the connection open (RFC 6455 §5.5.2). A data
// write stalled on a peer that stopped reading holds the frame lock until
// WriteTimeout (30 s by default), and Ping waited for that lock without
// looking at ctx: a 200 ms ctx returned after seconds. It must now return
// ctx's error at once, and the ping it gave up must never be written: once
// the peer reads again, the stalled message and the next one arrive, and
// no ping.
func TestPingCtxBoundsWaitBehindStalledWrite(t *testing.T) {
	c, peer, br := serverPair(t, 0)
	c.cfg.writeTimeout = 2 * time.Minute // the bug's wait: far past the test's bound
	const size = 16 << 20
	wrote := stallWrite(t, c, peer, size)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	pinged := make(chan error, 1)
	go func() { pinged <- c.Ping(ctx) }()
	if err := waitFor(t, 10*time.Second, pinged, "Ping behind a stalled write"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping: %v, want context.DeadlineExceeded", err)
	}

	// The connection is open: the peer reads again, and gets the stalled
	// message, then the next one, and nothing else.
	f, err := readWireFrame(peer, br, ioBound)
	if err != nil || f.op != OpBinary || len(f.payload) != size {
		t.Fatalf("stalled message: op %v, %d bytes, %v", f.op, len(f.payload), err)
	}
	if err := waitFor(t, ioBound, wrote, "the stalled Write"); err != nil {
		t.Fatalf("stalled Write: %v", err)
	}
	if err := c.Write(context.Background(), MessageText, []byte("after")); err != nil {
		t.Fatalf("Write after the Ping gave up: %v", err)
	}
	if f, err := readWireFrame(peer, br, ioBound); err != nil || f.op != OpText || string(f.payload) != "after" {
		t.Fatalf("after the stalled message: op %v %q, %v; want the text message (and no ping)", f.op, f.payload, err)
	}
	// Give a wrongly written ping its chance to arrive.
	time.Sleep(50 * time.Millisecond)
	if f, err := readWireFrame(peer, br, 100*time.Millisecond); err == nil {
		t.Fatalf("unexpected frame op %v %q: the ping Ping gave up went out", f.op, f.payload)
	}
}

// netOnly hides a connection's syscall.Conn, so writes go through
// net.Conn's Write as they do through TLS.
type netOnly struct{ net.Conn }

// TestWriteTimeoutAllowsProgress guards WriteTimeout's meaning: it bounds
// a write that makes no progress, not a large message to a peer that
// keeps reading slowly. The deadline used to be set once per frame, so a
// 4 MiB Write to a peer reading 1.3 MiB/s failed when the timeout (here
// 1 s) ran out, though the same bytes through Writer, a deadline per
// fragment, went through. Through the socket's own write loop, through
// net.Conn's Write (TLS; cut into pieces), and from a client (masked,
// flushed from its buffer).
func TestWriteTimeoutAllowsProgress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		client   bool
		hideSock bool
	}{
		{"server/socket", false, false},
		{"server/net.Conn", false, true},
		{"client/socket", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			local, peer := tcpPair(t)
			_ = local.(*net.TCPConn).SetWriteBuffer(32 << 10)
			_ = peer.(*net.TCPConn).SetReadBuffer(32 << 10)
			var nc net.Conn = local
			if tc.hideSock {
				nc = netOnly{local}
			}
			c := newConn(nc, tc.client, resolveConfig(0, 0, 0, 0, time.Second, 0, false), "", nil, nil)
			t.Cleanup(func() { c.CloseNow(); peer.Close() })
			if (c.rawConn != nil) == tc.hideSock {
				t.Fatalf("raw socket I/O: %v, want %v", c.rawConn != nil, !tc.hideSock)
			}

			const size = 4 << 20 // about 3 s at the peer's pace
			go func() {
				br := bufio.NewReaderSize(peer, 32<<10)
				buf := make([]byte, 32<<10)
				left := headerLen(size, tc.client) + size
				for left > 0 {
					_ = peer.SetReadDeadline(time.Now().Add(ioBound))
					n, err := io.ReadFull(br, buf[:min(left, len(buf))])
					if err != nil {
						return
					}
					left -= n
					time.Sleep(25 * time.Millisecond) // ~1.3 MiB/s
				}
			}()
			wrote := make(chan error, 1)
			go func() { wrote <- c.Write(context.Background(), MessageBinary, make([]byte, size)) }()
			if err := waitFor(t, 60*time.Second, wrote, "the Write"); err != nil {
				t.Fatalf("Write to a slow peer that keeps reading: %v", err)
			}
		})
	}
}

// TestWriteTimeoutEndsStalledWrite: what WriteTimeout is for still holds
// with the deadline moving as bytes go out. A Write to a peer that stopped
// reading fails once nothing has gone out for the timeout, and closes the
// connection.
func TestWriteTimeoutEndsStalledWrite(t *testing.T) {
	c, peer, _ := serverPair(t, 0)
	c.cfg.writeTimeout = 200 * time.Millisecond
	wrote := stallWrite(t, c, peer, 16<<20)
	if err := waitFor(t, 10*time.Second, wrote, "the stalled Write"); !isTimeoutErr(err) {
		t.Fatalf("stalled Write: %v, want a timeout", err)
	}
	select {
	case <-c.closed:
	default:
		t.Fatal("the connection is still open after a write timed out")
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ioBound bounds each wait on the wire in these tests.
const ioBound = 5 * time.Second

// waitFor fails t if ch yields nothing within d.
func waitFor[T any](t *testing.T, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %v", what, d)
		var zero T
		return zero
	}
}
