package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/sockbuf"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// rawClient opens a TCP connection to srvURL's host (with small socket
// buffers, so that backpressure shows early), performs the opening
// handshake by hand, and returns the connection and a reader positioned
// after the 101 response.
func rawClient(t *testing.T, srvURL string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := sockbuf.Dialer(16<<10, 16<<10)
	host := strings.TrimPrefix(srvURL, "http://")
	nc, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			return nc, br
		}
	}
}

// pingFrame is a masked ping (zero mask key) carrying payload.
func pingFrame(payload []byte) []byte {
	f := append([]byte{0x89, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	return f
}

// TestHostilePingFloodAnswered: 100,000 pings from a client that reads
// its pongs are all answered, in order, each with its own payload.
func TestHostilePingFloodAnswered(t *testing.T) {
	noLeaks(t)
	const n = 100_000
	srv := acceptServer(t, &websocket.AcceptOptions{CloseTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	})
	nc, br := rawClient(t, srv.URL)
	done := make(chan error, 1)
	go func() {
		var hdr [2]byte
		payload := make([]byte, 125)
		for i := range n {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				done <- fmt.Errorf("pong %d: %w", i, err)
				return
			}
			if hdr[0] != 0x8A || int(hdr[1]) != 8 {
				done <- fmt.Errorf("pong %d: header % x, want a pong of 8 bytes", i, hdr)
				return
			}
			if _, err := io.ReadFull(br, payload[:8]); err != nil {
				done <- err
				return
			}
			if got := string(payload[:8]); got != fmt.Sprintf("%08d", i) {
				done <- fmt.Errorf("pong %d carries %q", i, got)
				return
			}
		}
		done <- nil
	}()
	bw := bufio.NewWriterSize(nc, 64<<10)
	for i := range n {
		if _, err := bw.Write(pingFrame(fmt.Appendf(nil, "%08d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := within(t, 60*time.Second, done, "pongs"); err != nil {
		t.Fatal(err)
	}
}

// TestHostilePingFloodNotReading: a client floods pings (52 MB) and never
// reads a pong. The server answers each ping from its read loop, so when
// the pongs back up it stops reading, no queue grows, and WriteTimeout
// closes the connection: the flood is throttled by TCP, the server's
// heap and goroutine count stay flat, and the read loop ends with an
// error.
func TestHostilePingFloodNotReading(t *testing.T) {
	noLeaks(t)
	const n = 400_000
	readErr := make(chan error, 1)
	srv := acceptServer(t, &websocket.AcceptOptions{WriteTimeout: 300 * time.Millisecond, CloseTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				readErr <- err
				return
			}
		}
	})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	baseG := runtime.NumGoroutine()

	nc, _ := rawClient(t, srv.URL)
	var written atomic.Int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		frame := pingFrame(bytes.Repeat([]byte{'p'}, 125))
		batch := bytes.Repeat(frame, 256)
		for i := 0; i < n; i += 256 {
			if _, err := nc.Write(batch); err != nil {
				return
			}
			written.Add(256)
		}
	}()

	var peakHeap uint64
	peakG := 0
	var mu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peakHeap = max(peakHeap, ms.HeapAlloc)
			peakG = max(peakG, runtime.NumGoroutine())
			mu.Unlock()
		}
	}()
	err := within(t, 60*time.Second, readErr, "server read loop")
	close(stop)
	<-sampled
	nc.Close()
	<-floodDone
	if err == nil {
		t.Fatal("no error")
	}
	t.Logf("server read loop ended after %d of %d pings were written: %v", written.Load(), n, err)
	if written.Load() >= n {
		t.Errorf("all %d pings were written: nothing pushed back", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if grew := int64(peakHeap) - int64(base.HeapAlloc); grew > 16<<20 {
		t.Errorf("heap grew by %d MiB during the flood", grew>>20)
	}
	if peakG > baseG+8 {
		t.Errorf("goroutines peaked at %d (from %d)", peakG, baseG)
	}
	if errors.Is(err, io.EOF) {
		t.Errorf("read loop: %v, want the write timeout's failure", err)
	}
}

// TestHostileHeaderWithoutPayload guards memory against peers that each
// send a frame header claiming MaxFrameSize and then nothing: the reader
// must not allocate the claimed length before the payload arrives
// (Read and raw ReadFrame once did, 4 MiB or more per connection for 15
// bytes). Once the payload does arrive, it is read whole.
func TestHostileHeaderWithoutPayload(t *testing.T) {
	const (
		conns   = 8
		claimed = websocket.DefaultMaxMessageSize
	)
	payload := bytes.Repeat([]byte("0123456789abcdef"), claimed/16)
	frame := encodeFrame(true, 0, opBinary, true, [4]byte{1, 2, 3, 4}, payload)
	head := len(frame) - claimed + 1 // the header and one payload byte
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			got := make(chan []byte, conns)
			var ss []*session
			for range conns {
				ss = append(ss, startServer(t, &websocket.AcceptOptions{Raw: raw, CloseTimeout: time.Second}, func(c *websocket.Conn) error {
					ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
					defer cancel()
					var p []byte
					var err error
					if raw {
						var f websocket.Frame
						f, err = c.ReadFrame(ctx, nil)
						p = f.Payload
					} else {
						_, p, err = c.Read(ctx)
					}
					got <- p
					return err
				}))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for _, s := range ss {
				s.writeRaw(frame[:head])
			}
			// Give the readers time to take the headers (and, wrongly,
			// allocate).
			time.Sleep(300 * time.Millisecond)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > conns<<20 {
				t.Errorf("%d connections that each sent a %d-byte header and one payload byte made the server allocate %d KiB", conns, head-1, alloc>>10)
			}
			ss[0].writeRaw(frame[head:])
			if err := ss[0].result(); err != nil {
				t.Fatal(err)
			}
			if p := <-got; !bytes.Equal(p, payload) {
				t.Fatalf("read %d bytes, want the %d sent", len(p), len(payload))
			}
			for _, s := range ss[1:] {
				s.conn.CloseNow()
			}
		})
	}
}
