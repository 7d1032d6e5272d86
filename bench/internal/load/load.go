package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/wsrpc/wsrpc/internal/testmsg"
)

// Config is one run of the load client against one server.
type Config struct {
	Addr     string
	Raw      bool   // the server is the raw TCP echo: no handshake
	Scenario string // "echo" (InFlight 1 is request/response), "deflate", "idle"
	Conns    int
	Size     int           // payload bytes per message (echo)
	InFlight int           // messages in flight per connection (echo, deflate)
	Warmup   time.Duration // before measuring; Interleave: a server's first turn
	Settle   time.Duration // Interleave: before measuring a server's later turns
	Duration time.Duration
	PID      int // the server process: its CPU time, and (idle) its VmRSS
}

// Result is what one run measured.
type Result struct {
	Msgs       int64
	Secs       float64
	MsgsPerSec float64
	MBPerSec   float64 // payload MB (10^6 bytes) echoed per second, one way
	// WireRatio (deflate): bytes of frames from the server per payload byte.
	WireRatio float64
	// Takeover (deflate): the server kept its compression context.
	Takeover bool
	// CPUPerMsg: server CPU time (user+system, from /proc) per message in
	// the measured window, in microseconds; 0 without PID. Unlike
	// throughput it hardly moves when other work shares the machine.
	CPUPerMsg float64
	// UserPerMsg: the user-space part of CPUPerMsg — the library and the
	// Go runtime; the rest is the kernel's (system calls, TCP, wake-ups).
	UserPerMsg float64
	// Idle: server VmRSS before and after opening Conns connections.
	Conns               int
	RSSBefore, RSSAfter int64
	BytesPerConn        float64
}

func (r Result) String() string {
	if r.RSSAfter > 0 {
		return fmt.Sprintf("result conns=%d rss_before=%d rss_after=%d bytes_per_conn=%.0f",
			r.Conns, r.RSSBefore, r.RSSAfter, r.BytesPerConn)
	}
	return fmt.Sprintf("result msgs=%d secs=%.3f msgs_per_s=%.0f mb_per_s=%.2f wire_ratio=%.4f takeover=%v cpu_us_per_msg=%.2f user_us_per_msg=%.2f",
		r.Msgs, r.Secs, r.MsgsPerSec, r.MBPerSec, r.WireRatio, r.Takeover, r.CPUPerMsg, r.UserPerMsg)
}

// Run runs cfg and verifies every echo: its opcode, its length and every
// byte. A mismatch is an error that matches ErrVerify.
func Run(cfg Config) (Result, error) {
	cfg.defaults()
	switch cfg.Scenario {
	case "echo", "deflate":
		return runEcho(cfg)
	case "idle":
		return runIdle(cfg)
	}
	return Result{}, fmt.Errorf("unknown scenario %q", cfg.Scenario)
}

func (cfg *Config) defaults() {
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 1
	}
}

// messages is what a connection sends: message i is body(i), and for
// deflate its compressed form comp(i).
type messages struct {
	text  bool
	mu    sync.Mutex
	pat   []byte           // echo: the payload, with i in its first 8 bytes
	jsons [][]byte         // deflate: distinct JSON-like texts, sent in a cycle
	comp  map[int][][]byte // by client window bits; 0: no context takeover
}

// compressed returns the compressed messages for a connection's terms.
func (m *messages) compressed(c *conn) ([][]byte, error) {
	bits := c.clientBits
	if c.clientNoCtx {
		bits = 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if comp, ok := m.comp[bits]; ok {
		return comp, nil
	}
	comp, err := compressAll(m.jsons, bits)
	if err != nil {
		return nil, err
	}
	m.comp[bits] = comp
	return comp, nil
}

func newMessages(cfg Config) (*messages, error) {
	m := &messages{}
	if cfg.Scenario == "deflate" {
		m.text = true
		m.jsons = testmsg.Orders(256, 1024)
		m.comp = map[int][][]byte{}
		return m, nil
	}
	m.pat = make([]byte, cfg.Size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range m.pat {
		m.pat[i] = byte(r.Uint32())
	}
	return m, nil
}

// compressAll compresses msgs in order at level 1, the level every library
// uses by default. With windowBits > 0 (context takeover) message i may
// refer back to earlier messages, but never more than 1<<windowBits bytes
// (the window the server allowed, RFC 7692 §7.1.2.2). Replayed in the same
// cycle, every back-reference of message i points at the same bytes, and
// message 0 (compressed with an empty window) refers only to itself, so
// the cycle can repeat on one stream. windowBits 0 compresses each message
// on its own (no context takeover).
func compressAll(msgs [][]byte, windowBits int) ([][]byte, error) {
	var buf bytes.Buffer
	var hist []byte
	out := make([][]byte, len(msgs))
	for i, p := range msgs {
		var dict []byte
		if windowBits > 0 {
			keep := 1<<windowBits - len(p)
			if keep < 0 {
				keep = 0
			}
			if len(hist) > keep {
				dict = hist[len(hist)-keep:]
			} else {
				dict = hist
			}
		}
		buf.Reset()
		fw, err := flate.NewWriterDict(&buf, flate.BestSpeed, dict)
		if err != nil {
			return nil, err
		}
		if _, err := fw.Write(p); err != nil {
			return nil, err
		}
		if err := fw.Flush(); err != nil {
			return nil, err
		}
		b := buf.Bytes()
		if !bytes.HasSuffix(b, deflateTail) {
			return nil, errors.New("flush did not end with 00 00 ff ff")
		}
		out[i] = bytes.Clone(b[:len(b)-4])
		hist = append(hist, p...)
		if len(hist) > 64<<10 {
			hist = append(hist[:0], hist[len(hist)-32<<10:]...)
		}
	}
	return out, nil
}

// stream is one connection's loop: keep InFlight messages outstanding,
// write refills in one system call, verify each echo in order.
type stream struct {
	c        *conn
	m        *messages
	inFlight int
	sent     uint64
	recv     uint64
	count    atomic.Int64
	seqBuf   [8]byte  // the number receive expects
	comp     [][]byte // deflate: what this connection sends
	payload  int64
}

func (s *stream) send(n int) {
	for range n {
		i := s.sent
		s.sent++
		if s.m.jsons != nil {
			k := int(i % uint64(len(s.m.jsons)))
			s.c.appendFrame(opText, true, s.comp[k], nil)
			continue
		}
		// The first 8 bytes carry the message's number.
		var head [8]byte
		binary.LittleEndian.PutUint64(head[:], i)
		s.c.appendFrame(opBinary, false, s.m.pat, head[:])
	}
}

// receive reads and checks the echo of message s.recv. Each chunk is
// checked as it comes (a prefix of what was sent), and the whole message's
// length once it has come: a message that ends early passes every chunk.
func (s *stream) receive() error {
	i := s.recv
	if s.m.jsons != nil {
		want := s.m.jsons[int(i%uint64(len(s.m.jsons)))]
		compressed := false
		n, err := s.c.readMessage(func(op byte, rsv1 bool, off int, p []byte) error {
			if op != opText {
				return verifyf("message %d: opcode %d, want text", i, op)
			}
			if off == 0 && rsv1 {
				compressed = true
				if s.c.serverNoCtx {
					s.c.resetInflater()
				}
			}
			if compressed {
				s.c.feed.add(p)
				return nil
			}
			if end := off + len(p); end > len(want) {
				return verifyf("message %d: echo of at least %d bytes, want %d", i, end, len(want))
			}
			if !bytes.Equal(p, want[off:off+len(p)]) {
				return verifyf("message %d: echo differs at %d", i, off)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if compressed {
			// n is the compressed length; inflate checks the text's.
			if err := s.c.inflate(want); err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
		} else if n != len(want) {
			return verifyf("message %d: echo of %d bytes, want %d", i, n, len(want))
		}
		s.payload += int64(len(want))
	} else {
		binary.LittleEndian.PutUint64(s.seqBuf[:], i)
		n, err := s.c.readMessage(func(op byte, _ bool, off int, p []byte) error {
			if op != opBinary {
				return verifyf("message %d: opcode %d, want binary", i, op)
			}
			if end := off + len(p); end > len(s.m.pat) {
				return verifyf("message %d: echo of at least %d bytes, want %d", i, end, len(s.m.pat))
			}
			want := s.m.pat[off : off+len(p)]
			// The first 8 bytes carry the sequence number.
			for j := off; j < 8 && j < off+len(p); j++ {
				if p[j-off] != s.seqBuf[j] {
					return verifyf("message %d: sequence byte %d differs (out of order or corrupt)", i, j)
				}
			}
			if k := 8 - off; k > 0 {
				if k > len(p) {
					k = len(p)
				}
				p, want = p[k:], want[k:]
			}
			if !bytes.Equal(p, want) {
				return verifyf("message %d: echo differs from what was sent", i)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n != len(s.m.pat) {
			return verifyf("message %d: echo of %d bytes, want %d", i, n, len(s.m.pat))
		}
		s.payload += int64(len(s.m.pat))
	}
	s.recv++
	s.count.Add(1)
	return nil
}

func (s *stream) run(stop *atomic.Bool) error {
	_ = s.c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	s.send(s.inFlight)
	if err := s.c.flush(); err != nil {
		return err
	}
	for s.recv < s.sent {
		if err := s.receive(); err != nil {
			return err
		}
		// Everything already buffered is taken before refilling, so one
		// write carries all the refills.
		if s.c.buffered() && s.recv < s.sent {
			continue
		}
		if !stop.Load() {
			s.send(s.inFlight - int(s.sent-s.recv))
			if err := s.c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func runEcho(cfg Config) (Result, error) {
	slices, err := Interleave(cfg, []Server{{Addr: cfg.Addr, Raw: cfg.Raw, PID: cfg.PID}}, 1)
	if err != nil {
		return Result{}, err
	}
	return slices[0].Result, nil
}

// Server is one echo server of an interleaved run.
type Server struct {
	Name string
	Addr string
	Raw  bool // the raw TCP echo: no handshake
	PID  int  // whose CPU time is read; 0: none
}

// Slice is one server's share of one round.
type Slice struct {
	Server string
	Round  int
	Result
}

// Interleave measures cfg's echo or deflate scenario on every server,
// with all of them running and connected, in rounds: in round r the
// servers take turns starting with servers[r%n], each measured for
// cfg.Duration after cfg.Warmup (its first turn) or cfg.Settle (the
// others). Between turns a server's connections are quiet, with nothing
// in flight.
//
// Why turns rather than a run per server one after the other: this
// machine's speed drifts by 20-30% over a few seconds (other guests on the
// host), and a comparison of runs made seconds apart measures the drift as
// much as the servers. Turns of a fraction of a second spread every
// server's samples over the same stretch of time, so a slow spell lands
// on all of them alike.
//
// cfg.Addr, cfg.Raw and cfg.PID are not used; every echoed byte of every
// server is checked.
func Interleave(cfg Config, servers []Server, rounds int) ([]Slice, error) {
	if cfg.Scenario != "echo" && cfg.Scenario != "deflate" {
		return nil, fmt.Errorf("scenario %q cannot be interleaved", cfg.Scenario)
	}
	if rounds < 1 || len(servers) == 0 {
		// Nothing would be measured: an empty result is not a measurement.
		return nil, fmt.Errorf("%d rounds of %d servers: nothing to measure", rounds, len(servers))
	}
	cfg.defaults()
	m, err := newMessages(cfg)
	if err != nil {
		return nil, err
	}
	deflate := cfg.Scenario == "deflate"
	targets := make([][]*stream, len(servers))
	defer func() {
		for _, streams := range targets {
			for _, s := range streams {
				s.c.nc.Close()
			}
		}
	}()
	for k, srv := range servers {
		// A partial set is kept in targets: the deferred close ends it.
		if targets[k], err = connect(cfg, srv, m); err != nil {
			return nil, err
		}
	}
	var out []Slice
	var of []int // of[i]: the index in servers of out[i]
	for r := range rounds {
		for i := range servers {
			k := (i + r) % len(servers)
			warm := cfg.Settle
			if r == 0 {
				warm = cfg.Warmup
			}
			res, err := measure(targets[k], servers[k].PID, warm, cfg.Duration)
			if err != nil {
				return nil, servers[k].wrap(err)
			}
			out = append(out, Slice{Server: servers[k].Name, Round: r, Result: res})
			of = append(of, k)
		}
	}
	// Bytes on the wire per payload byte (deflate): over all of a
	// server's turns, once per server.
	perMsg := float64(cfg.Size)
	ratio := make([]float64, len(servers))
	if deflate {
		perMsg = float64(len(m.jsons[0]))
		for k, streams := range targets {
			var payload, wire int64
			for _, s := range streams {
				payload += s.payload
				wire += s.c.wireIn
			}
			ratio[k] = float64(wire) / float64(payload)
		}
	}
	for i := range out {
		out[i].MBPerSec = out[i].MsgsPerSec * perMsg / 1e6
		if deflate {
			out[i].WireRatio = ratio[of[i]]
			out[i].Takeover = !targets[of[i]][0].c.serverNoCtx
		}
	}
	return out, nil
}

// wrap names the server in err, when it has a name.
func (s Server) wrap(err error) error {
	if s.Name == "" {
		return err
	}
	return fmt.Errorf("%s: %w", s.Name, err)
}

// connect opens cfg.Conns connections to srv, ready to stream. On an
// error it returns the streams opened so far with it, for the caller to
// close with the rest.
func connect(cfg Config, srv Server, m *messages) ([]*stream, error) {
	deflate := cfg.Scenario == "deflate"
	rbuf := 64 << 10
	if cfg.Size+14 > rbuf {
		rbuf = cfg.Size + 14
	}
	// The largest frame an echo can need: the largest message, with room
	// for a compressor that makes it longer (9 bits a byte with fixed
	// Huffman codes, RFC 1951 §3.2.6, and block headers) and for control
	// frames (125 bytes at most, RFC 6455 §5.5).
	largest := cfg.Size
	for _, p := range m.jsons {
		largest = max(largest, len(p))
	}
	maxFrame := largest + largest/8 + 1024
	streams := make([]*stream, 0, cfg.Conns)
	for i := range cfg.Conns {
		c, err := dial(srv.Addr, srv.Raw, deflate, rbuf)
		if err != nil {
			return streams, srv.wrap(fmt.Errorf("connection %d: %w", i, err))
		}
		c.maxFrame = maxFrame
		if srv.Raw && deflate {
			// The TCP echo returns our own stream: context takeover both ways.
			c.serverNoCtx, c.clientNoCtx, c.clientBits = false, false, 15
		}
		s := &stream{c: c, m: m, inFlight: cfg.InFlight}
		streams = append(streams, s)
		if deflate {
			if s.comp, err = m.compressed(c); err != nil {
				return streams, err
			}
		}
	}
	return streams, nil
}

// measure runs streams for warm, counts what they echo in the next d, and
// stops them: it returns once every message sent has come back.
func measure(streams []*stream, pid int, warm, d time.Duration) (Result, error) {
	var stop atomic.Bool
	errs := make(chan error, len(streams))
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Go(func() { errs <- s.run(&stop) })
	}
	sum := func() (n int64) {
		for _, s := range streams {
			n += s.count.Load()
		}
		return n
	}
	time.Sleep(warm)
	n0, t0, c0 := sum(), time.Now(), readCPU(pid)
	time.Sleep(d)
	n1, t1, c1 := sum(), time.Now(), readCPU(pid)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return Result{}, err
		}
	}
	res := Result{Msgs: n1 - n0, Secs: t1.Sub(t0).Seconds()}
	res.MsgsPerSec = float64(res.Msgs) / res.Secs
	if c0.ok && c1.ok && res.Msgs > 0 {
		perMsg := func(ticks int64) float64 { return float64(ticks) * 1e6 / clockTicks / float64(res.Msgs) }
		res.CPUPerMsg = perMsg(c1.user + c1.sys - c0.user - c0.sys)
		res.UserPerMsg = perMsg(c1.user - c0.user)
	}
	return res, nil
}

// runIdle opens cfg.Conns WebSocket connections that then stay silent, and
// reads the server's resident memory before and after.
func runIdle(cfg Config) (Result, error) {
	before, err := rss(cfg.PID)
	if err != nil {
		return Result{}, err
	}
	conns := make([]*conn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) || firstErr.Load() != nil {
					return
				}
				c, err := dial(cfg.Addr, cfg.Raw, false, 512)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
					return
				}
				c.rbuf = nil // an idle client keeps nothing but the socket
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return Result{}, err
	}
	if cfg.Raw {
		// No handshake to wait for: give the server time to accept all.
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(cfg.Duration) // let the server settle (GC, pools)
	after, err := rss(cfg.PID)
	if err != nil {
		return Result{}, err
	}
	return Result{Conns: cfg.Conns, RSSBefore: before, RSSAfter: after, BytesPerConn: float64(after-before) / float64(cfg.Conns)}, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuTime is a process's CPU time so far, in clock ticks.
type cpuTime struct {
	user, sys int64
	ok        bool
}

// readCPU reads pid's user and system time from /proc/<pid>/stat.
func readCPU(pid int) cpuTime {
	if pid <= 0 {
		return cpuTime{}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTime{}
	}
	// Fields after the command (which may hold spaces) start after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuTime{}
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return cpuTime{}
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuTime{}
	}
	return cpuTime{user: ut, sys: st, ok: true}
}

// rss returns VmRSS of pid in bytes (Linux /proc).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}
