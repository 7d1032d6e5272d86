package wsrpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/fdlimit"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Idle typed sessions: what a server keeps per session of a generated
// handler while the client sends nothing (an IoT device between
// readings). Each kind is measured in a server process of its own (this
// test binary again: TestIdleServerHelper), whose clients are a third
// process (TestIdleClientHelper), so that the figures are the server's
// alone and do not depend on what ran before in the process (a
// goroutine's g is never freed, only reused). Each figure is the server's
// state after collections and debug.FreeOSMemory with n sessions open,
// minus the same before them, divided by n.
//
//	go test -run '^$' -bench IdleSession -benchtime 1x .
//	WSRPC_IDLE_N=5000 WSRPC_IDLE_PROFILE=/tmp/idle go test -run '^$' -bench IdleSession -benchtime 1x .
//	go tool pprof -sample_index=inuse_space -diff_base /tmp/idle/bidi-before.pprof -top /tmp/idle/bidi-after.pprof
//
// WSRPC_IDLE_MSG=1024 has each bidirectional client exchange one message
// of that many bytes of text first (each client-streaming one sends one
// addend), so that what a message leaves behind is counted too.

const (
	idleServerEnv  = "WSRPC_IDLE_SERVER" // kind,n,msg (kind may end in detachedSuffix): run as the server process
	idleClientEnv  = "WSRPC_IDLE_CLIENT" // addr,kind,n,msg: run as the client process
	idleNEnv       = "WSRPC_IDLE_N"
	idleMsgEnv     = "WSRPC_IDLE_MSG"
	idleProfileEnv = "WSRPC_IDLE_PROFILE" // a directory for heap profiles and goroutine dumps
)

// idleKinds are the typed session kinds measured, by the generated
// StreamService method that serves each; a WebSocket kind with
// detachedSuffix is served WithDetachedSessions.
var idleKinds = []string{"bidi", "bidi" + detachedSuffix, "server", "server" + detachedSuffix,
	"client", "client" + detachedSuffix, "sse"}

const detachedSuffix = "-detached"

// idleService parks every call until the client leaves, counting the
// calls in progress.
type idleService struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	live atomic.Int64
}

func (s *idleService) Echo(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	s.live.Add(1)
	defer s.live.Add(-1)
	res := &testingv1.EchoResponse{}
	for {
		m, err := st.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Text = m.Text
		if err := st.Send(res); err != nil {
			return err
		}
	}
}

func (s *idleService) Count(ctx context.Context, _ *testingv1.CountRequest, _ *wsrpc.ServerStream[testingv1.CountResponse]) error {
	s.live.Add(1)
	defer s.live.Add(-1)
	<-ctx.Done()
	return nil
}

func (s *idleService) Sum(ctx context.Context, st *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
	s.live.Add(1)
	defer s.live.Add(-1)
	var total int64
	for {
		m, err := st.Receive()
		if errors.Is(err, io.EOF) {
			return &testingv1.SumResponse{Total: total}, nil
		}
		if err != nil {
			return nil, err
		}
		total += m.N
	}
}

func (s *idleService) Watch(ctx context.Context, _ *testingv1.WatchRequest, _ *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	s.live.Add(1)
	defer s.live.Add(-1)
	<-ctx.Done()
	return nil
}

// idleSample is one process measurement.
type idleSample struct {
	rss, heapAlloc, heapInuse, stackInuse int64
	goroutines                            int
}

func takeIdleSample() idleSample {
	// Each collection halves a stack at most once, and only one using a
	// quarter of it or less: a server's periodic collections take an
	// idle goroutine's stack down to that floor in time, so the sample
	// does too.
	for range 4 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return idleSample{rss: readRSS(), heapAlloc: int64(ms.HeapAlloc), heapInuse: int64(ms.HeapInuse),
		stackInuse: int64(ms.StackInuse), goroutines: runtime.NumGoroutine()}
}

func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// idleCost is the per-session difference of two samples.
type idleCost struct {
	rss, heapAlloc, heapInuse, stack, goroutines float64
}

func (c idleCost) String() string {
	return fmt.Sprintf("RSS %.0f B, live heap %.0f B, heap in use %.0f B, stacks %.0f B, goroutines %.2f",
		c.rss, c.heapAlloc, c.heapInuse, c.stack, c.goroutines)
}

// idleServer serves StreamService with idleService.
type idleServer struct {
	svc  *idleService
	srv  *http.Server
	addr string
}

func startIdleServer(tb testing.TB, detach bool) *idleServer {
	tb.Helper()
	s := &idleServer{svc: &idleService{}}
	var opts []wsrpc.Option
	if detach {
		opts = append(opts, wsrpc.WithDetachedSessions())
	}
	path, h := testingv1wsrpc.NewStreamServiceHandler(s.svc, opts...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	tb.Cleanup(func() { s.srv.Close() })
	return s
}

// waitLive waits until n calls are in progress and the goroutine count
// has settled (the handlers parked).
func (s *idleServer) waitLive(tb testing.TB, n int64) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for s.svc.live.Load() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d calls in progress, want %d", s.svc.live.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// run opens n sessions of kind from a child process and measures them;
// name (kind, or kind with detachedSuffix) names the profiles.
func (s *idleServer) run(tb testing.TB, name, kind string, n, msg int, profile string) idleCost {
	tb.Helper()
	// Pools, caches and the code paths' first allocations.
	warm := s.connect(tb, kind, 4, msg)
	warm.close(tb)
	s.waitLive(tb, 0)
	if profile != "" {
		writeHeapProfile(tb, filepath.Join(profile, name+"-before.pprof"))
	}
	before := takeIdleSample()
	cl := s.connect(tb, kind, n, msg)
	s.waitLive(tb, int64(n))
	after := takeIdleSample()
	if profile != "" {
		writeHeapProfile(tb, filepath.Join(profile, name+"-after.pprof"))
		writeGoroutines(tb, filepath.Join(profile, name+"-goroutines.txt"))
	}
	cl.close(tb)
	s.waitLive(tb, 0)
	d := float64(n)
	return idleCost{
		rss:        float64(after.rss-before.rss) / d,
		heapAlloc:  float64(after.heapAlloc-before.heapAlloc) / d,
		heapInuse:  float64(after.heapInuse-before.heapInuse) / d,
		stack:      float64(after.stackInuse-before.stackInuse) / d,
		goroutines: float64(after.goroutines-before.goroutines) / d,
	}
}

func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

func writeGoroutines(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 1); err != nil {
		tb.Fatal(err)
	}
}

type idleChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (s *idleServer) connect(tb testing.TB, kind string, n, msg int) *idleChild {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d,%d", idleClientEnv, s.addr, kind, n, msg))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &idleChild{cmd: cmd, stdin: stdin}
	br := bufio.NewReader(stdout)
	line, err := br.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "READY") {
		line, err = br.ReadString('\n')
	}
	if err != nil {
		c.close(tb)
		tb.Fatalf("idle client: %v", err)
	}
	go io.Copy(io.Discard, br)
	return c
}

func (c *idleChild) close(tb testing.TB) {
	tb.Helper()
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		tb.Fatalf("idle client: %v", err)
	}
}

func idleN(def int) int {
	if n, err := strconv.Atoi(os.Getenv(idleNEnv)); err == nil && n > 0 {
		return n
	}
	return def
}

// measureIdle measures n idle sessions of kind in a server process of
// their own.
func measureIdle(tb testing.TB, kind string, n, msg int) idleCost {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleServerHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", idleServerEnv, kind, n, msg))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("idle server: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		var c idleCost
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "IDLE %g %g %g %g %g", &c.rss, &c.heapAlloc, &c.heapInuse, &c.stack, &c.goroutines); err == nil {
			return c
		}
	}
	tb.Fatalf("idle server printed no measurement:\n%s", out)
	return idleCost{}
}

// TestIdleServerHelper is the server process of the idle measurements.
// Skipped unless started by one.
func TestIdleServerHelper(t *testing.T) {
	spec := os.Getenv(idleServerEnv)
	if spec == "" {
		t.Skip("the server process of the idle session measurements")
	}
	fdlimit.Raise()
	f := strings.Split(spec, ",")
	kind := f[0]
	n, _ := strconv.Atoi(f[1])
	msg, _ := strconv.Atoi(f[2])
	profile := os.Getenv(idleProfileEnv)
	if profile != "" {
		runtime.MemProfileRate = 512
		if err := os.MkdirAll(profile, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base, detach := strings.CutSuffix(kind, detachedSuffix)
	c := startIdleServer(t, detach).run(t, kind, base, n, msg, profile)
	fmt.Printf("IDLE %g %g %g %g %g\n", c.rss, c.heapAlloc, c.heapInuse, c.stack, c.goroutines)
}

// BenchmarkIdleSession reports what an idle typed session of each kind
// costs the server: bytes per session of RSS, live heap, heap in use and
// goroutine stacks, and goroutines per session. One measurement per
// kind, whatever b.N; WSRPC_IDLE_N sessions (default 2000). Each
// WebSocket kind is measured twice: by default, its session within
// ServeHTTP, and as kind-detached, WithDetachedSessions.
func BenchmarkIdleSession(b *testing.B) {
	n := idleN(2000)
	msg, _ := strconv.Atoi(os.Getenv(idleMsgEnv))
	for _, kind := range idleKinds {
		b.Run(kind, func(b *testing.B) {
			c := measureIdle(b, kind, n, msg)
			for range b.N {
			}
			b.ReportMetric(c.rss, "RSS-B/session")
			b.ReportMetric(c.heapAlloc, "heap-B/session")
			b.ReportMetric(c.heapInuse, "heapinuse-B/session")
			b.ReportMetric(c.stack, "stack-B/session")
			b.ReportMetric(c.goroutines, "goroutines/session")
		})
	}
}

// TestIdleSessionMemory bounds what an idle typed session of each kind
// keeps on the server, measured as BenchmarkIdleSession does with 200
// sessions: its goroutines, its live heap and, without the race
// detector, its goroutine stacks. The heap and stack bounds are about
// 15% over what is measured (the figures in the comments, bytes per
// session), and each guards a cut of 4–8 KiB: net/http's 4 KiB reader
// and writer, which Hijack hands over and the ServeHTTP goroutine kept
// reachable (websocket.Accept releases them); with WithDetachedSessions
// (the -detached kinds, whose bounds the default mode exceeds, and the
// other way round), a WebSocket session's leaving ServeHTTP for a
// goroutine of its own (wsSession), which lets net/http's per-request
// state go (about 1.3 KiB of heap) and its 8 KiB stack, which
// ServeHTTP's frames keep from shrinking, for one of 4 KiB; and the SSE
// goroutine's 16 KiB stack, which the runtime halves only while less
// than a quarter of it is in use (serveSSE's frame, on the stack for the
// whole session, keeps the request decoding's temporaries out).
//
// The default kinds have lower bounds too, below the detached kinds'
// figures: the detached bounds alone would pass a default that had
// become detached, and the option would then make no difference.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes and 200 sessions per kind")
	}
	for _, tc := range []struct {
		kind              string
		goroutines        int
		minStack          float64 // 0: no lower bound
		maxHeap, maxStack float64
	}{
		{"bidi", 1, 7000, 8500, 9500},                 // 7,350 heap; 8,300 stack: the handler's 8 KiB
		{"server", 2, 9000, 9000, 12000},              // 7,900; 10,550: the handler's 8 KiB, the peer watcher's 2 KiB
		{"client", 1, 7000, 8500, 9500},               // 7,170; 8,300
		{"sse", 2, 0, 19500, 12000},                   // 16,870 (10,470 of it net/http's buffers); 10,160: 8 KiB, net/http's background read 2 KiB
		{"bidi" + detachedSuffix, 1, 0, 7000, 5000},   // 6,050 heap; 3,770–4,420 stack: the session's goroutine, 4 KiB
		{"server" + detachedSuffix, 2, 0, 7700, 7500}, // 6,670; 6,550: the session's 4 KiB, the peer watcher's 2 KiB
		{"client" + detachedSuffix, 1, 0, 6800, 5000}, // 5,910; 4,100–4,260
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c := measureIdle(t, tc.kind, 200, 0)
			t.Logf("per session: %v", c)
			if g := int(c.goroutines + 0.5); g != tc.goroutines {
				t.Errorf("%.2f goroutines per session, want %d", c.goroutines, tc.goroutines)
			}
			if c.heapAlloc > tc.maxHeap {
				t.Errorf("%.0f bytes of live heap per session, want at most %.0f", c.heapAlloc, tc.maxHeap)
			}
			if !raceDetector && c.stack > tc.maxStack {
				t.Errorf("%.0f bytes of goroutine stack per session, want at most %.0f", c.stack, tc.maxStack)
			}
			if !raceDetector && c.stack < tc.minStack {
				t.Errorf("%.0f bytes of goroutine stack per session, want at least %.0f: is the session detached?", c.stack, tc.minStack)
			}
		})
	}
}

// TestIdleClientHelper is the client process of the idle measurements:
// it opens the sessions, says READY, and holds them until its stdin
// closes. Skipped unless started by one.
func TestIdleClientHelper(t *testing.T) {
	spec := os.Getenv(idleClientEnv)
	if spec == "" {
		t.Skip("the client process of the idle session measurements")
	}
	fdlimit.Raise()
	f := strings.Split(spec, ",")
	addr, kind := f[0], f[1]
	n, _ := strconv.Atoi(f[2])
	msg, _ := strconv.Atoi(f[3])
	conns := make([]io.Closer, n)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	sem := make(chan struct{}, 32)
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := openIdle(addr, kind, msg)
			if err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// openIdle opens one session of kind, as a generated client would, and
// leaves it idle.
func openIdle(addr, kind string, msg int) (io.Closer, error) {
	ctx := context.Background()
	text := strings.Repeat("x", msg)
	dial := func(path string) (wsCloser, error) {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+path, &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolMsgpack}})
		return wsCloser{c}, err
	}
	switch kind {
	case "bidi":
		c, err := dial(testingv1wsrpc.StreamServiceEchoPath)
		if err != nil || msg == 0 {
			return c, err
		}
		b, err := codec.Msgpack.Marshal(&testingv1.EchoRequest{Text: text})
		if err == nil {
			err = c.Write(ctx, websocket.MessageBinary, b)
		}
		if err == nil {
			_, _, err = c.Read(ctx)
		}
		return c, err
	case "server":
		c, err := dial(testingv1wsrpc.StreamServiceCountPath)
		if err != nil {
			return nil, err
		}
		b, err := codec.Msgpack.Marshal(&testingv1.CountRequest{Count: 1})
		if err == nil {
			err = c.Write(ctx, websocket.MessageBinary, b)
		}
		return c, err
	case "client":
		c, err := dial(testingv1wsrpc.StreamServiceSumPath)
		if err != nil || msg == 0 {
			return c, err
		}
		b, err := codec.Msgpack.Marshal(&testingv1.SumRequest{N: int64(msg)})
		if err == nil {
			err = c.Write(ctx, websocket.MessageBinary, b)
		}
		return c, err
	case "sse":
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		_, err = io.WriteString(nc, "GET "+testingv1wsrpc.StreamServiceWatchPath+"?room=lobby HTTP/1.1\r\nHost: "+addr+
			"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n")
		if err != nil {
			nc.Close()
			return nil, err
		}
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			nc.Close()
			return nil, fmt.Errorf("sse: %s", resp.Status)
		}
		return nc, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// wsCloser closes a client's connection without a closing handshake.
type wsCloser struct{ *websocket.Conn }

func (c wsCloser) Close() error {
	if c.Conn == nil {
		return nil
	}
	return c.CloseNow()
}
