package hub_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wsrpc/wsrpc/internal/fdlimit"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// The broadcast benchmark needs 10,000 WebSocket connections, that is
// 20,000 sockets, more than one process may open here (RLIMIT_NOFILE
// 20,000, hard). So the clients run in a second process: the test binary
// itself, started with benchClientEnv set. It dials the connections, reads
// every message, and writes one byte on a control connection each time
// all its connections have received a message. The allocation figures are
// thus the server's alone.
const (
	benchClientEnv = "WSRPC_HUB_BENCH_CLIENT" // the server's ws:// URL
	benchCtrlEnv   = "WSRPC_HUB_BENCH_CTRL"   // the control address
	benchConnsEnv  = "WSRPC_HUB_BENCH_CONNS"
	benchConns     = 10000
)

type benchFixture struct {
	h     *hub.Hub
	topic *hub.Topic[msg]
	srv   *httptest.Server
	ctrl  net.Conn
	ack   *bufio.Reader
	child *exec.Cmd

	mu    sync.Mutex
	conns []*websocket.Conn // server side
}

var (
	benchOnce sync.Once
	bench     *benchFixture
	benchErr  error
)

func startBenchFixture() (*benchFixture, error) {
	fdlimit.Raise()
	f := &benchFixture{}
	var err error
	if f.h, err = hub.New(nil, nil); err != nil {
		return nil, err
	}
	if f.topic, err = hub.NewTopic[msg](f.h, "bench", &hub.TopicOptions[msg]{DisableReplay: true}); err != nil {
		return nil, err
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{codec.SubprotocolProto}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		sub, err := f.topic.SubscribeWebSocket(c, nil)
		if err != nil {
			return
		}
		defer sub.Close()
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	f.child = exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	f.child.Env = append(os.Environ(),
		benchClientEnv+"=ws"+strings.TrimPrefix(f.srv.URL, "http"),
		benchCtrlEnv+"="+ln.Addr().String(),
		benchConnsEnv+"="+strconv.Itoa(benchConns))
	f.child.Stdout, f.child.Stderr = os.Stderr, os.Stderr
	if err := f.child.Start(); err != nil {
		return nil, err
	}
	if f.ctrl, err = ln.Accept(); err != nil {
		return nil, err
	}
	f.ack = bufio.NewReader(f.ctrl)
	if b, err := f.ack.ReadByte(); err != nil || b != 'R' {
		return nil, fmt.Errorf("bench client not ready: %q %v", b, err)
	}
	for deadline := time.Now().Add(time.Minute); f.topic.Stats().Subscribers < benchConns; {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d subscribers", f.topic.Stats().Subscribers)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return f, nil
}

func stopBenchFixture() {
	f := bench
	if f == nil {
		return
	}
	f.ctrl.Close() // the client exits, closing its connections
	f.child.Wait()
	f.srv.Close()
	f.h.Close()
}

// runBenchClient is the client process.
func runBenchClient() int {
	fdlimit.Raise()
	n, _ := strconv.Atoi(os.Getenv(benchConnsEnv))
	ctrl, err := net.Dial("tcp", os.Getenv(benchCtrlEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var remaining atomic.Int64
	remaining.Store(int64(n))
	var ctrlMu sync.Mutex
	url := os.Getenv(benchClientEnv)
	conns := make([]*websocket.Conn, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
			if err != nil {
				failed.Store(err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		fmt.Fprintln(os.Stderr, "bench client:", err)
		return 1
	}
	for _, c := range conns {
		go func() {
			buf := make([]byte, 0, 2048)
			for {
				var err error
				if _, buf, err = c.ReadAppend(context.Background(), buf[:0]); err != nil {
					return
				}
				if remaining.Add(-1) == 0 {
					remaining.Store(int64(n))
					ctrlMu.Lock()
					ctrl.Write([]byte{'A'})
					ctrlMu.Unlock()
				}
			}
		}()
	}
	ctrl.Write([]byte{'R'})
	var b [1]byte
	ctrl.Read(b[:]) // until the server closes it
	for _, c := range conns {
		c.CloseNow()
	}
	return 0
}

// BenchmarkBroadcast1KiB10kWebSocket: one 1 KiB message (protobuf) to
// 10,000 WebSocket subscribers over loopback; an op is the time until all
// of them have it. "hub" publishes on a topic (encode once, frame once,
// one writer goroutine per subscriber while its queue is non-empty);
// "loop" writes the same payload to each connection in turn with
// Conn.Write. B/delivery and allocs/delivery are the server process's
// allocations divided by the messages delivered.
//
//	go test -run '^$' -bench Broadcast -benchtime 50x ./runtime/hub
func BenchmarkBroadcast1KiB10kWebSocket(b *testing.B) {
	benchOnce.Do(func() { bench, benchErr = startBenchFixture() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	f := bench
	m := wrapperspb.String(strings.Repeat("x", 1024))
	payload, _ := proto.Marshal(m)
	run := func(b *testing.B, broadcast func()) {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		b.ResetTimer()
		for b.Loop() {
			broadcast()
			if _, err := f.ack.ReadByte(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.ReadMemStats(&ms1)
		d := float64(b.N) * benchConns
		b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/d, "B/delivery")
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/d, "allocs/delivery")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/broadcast")
	}
	b.Run("hub", func(b *testing.B) {
		run(b, func() {
			if err := f.topic.Publish(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("loop", func(b *testing.B) {
		f.mu.Lock()
		conns := f.conns
		f.mu.Unlock()
		run(b, func() {
			for _, c := range conns {
				if err := c.Write(context.Background(), websocket.MessageBinary, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
