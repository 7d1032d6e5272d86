// Package soak runs wsrpc under sustained load and checks that nothing is
// lost: many WebSocket clients of a generated bidirectional service, each
// pinging and exchanging typed messages, and many SSE subscribers of a hub
// topic whose events carry ids. The server and the clients may run in one
// process (the quick test) or two (cmd/soak, for 10,000 connections and
// more: one process's descriptor limit is about 20,000 here).
//
// Checks: every message sent is echoed, in order, with its text intact
// (no loss, no reordering, no corruption); every SSE subscriber receives
// every event published while it was subscribed exactly once, in order,
// from the first published after it subscribed (a subscriber that falls
// behind is disconnected and resumes with Last-Event-ID); no call fails;
// resident memory and goroutine counts stay flat after warm-up.
package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/hub"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// Config is one soak run.
type Config struct {
	WS          int           // WebSocket clients
	SSE         int           // SSE subscribers
	Duration    time.Duration // steady state, after every client is connected
	MsgEvery    time.Duration // each WebSocket client sends a message this often
	PingEvery   time.Duration // keepalive ping interval, both sides
	TickEvery   time.Duration // the server publishes an SSE event this often
	SampleEvery time.Duration // memory and goroutine samples
	Payload     int           // bytes of text per message
}

// Defaults fills the zero fields.
func (c *Config) Defaults() {
	if c.MsgEvery <= 0 {
		c.MsgEvery = 2 * time.Second
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 5 * time.Second
	}
	if c.TickEvery <= 0 {
		c.TickEvery = 100 * time.Millisecond
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 10 * time.Second
	}
	if c.Payload <= 0 {
		c.Payload = 64
	}
}

// TicksPath serves the SSE topic.
const TicksPath = "/soak/ticks"

// Sample is one measurement of a process.
type Sample struct {
	At         time.Duration `json:"at"` // since the process started sampling
	RSS        int64         `json:"rss"`
	Goroutines int           `json:"goroutines"`
	HeapInuse  uint64        `json:"heap_inuse"`
}

// Take measures the current process: VmRSS from /proc/self/status,
// runtime.NumGoroutine and the heap in use, after a collection that also
// returns free memory to the system (debug.FreeOSMemory), so that what is
// measured is what the process retains, not how far the collector let
// garbage grow before its next cycle.
func Take(since time.Time) Sample {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Sample{At: time.Since(since).Round(time.Millisecond), RSS: rss(), Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse}
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// sampler records samples until stopped.
type sampler struct {
	mu      sync.Mutex
	start   time.Time
	samples []Sample
	mark    int // index of the first sample after warm-up; -1 before
	stop    chan struct{}
	done    chan struct{}
}

func newSampler(every time.Duration) *sampler {
	s := &sampler{start: time.Now(), mark: -1, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.add()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) add() Sample {
	x := Take(s.start)
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
	return x
}

// warm marks the end of warm-up with a fresh sample.
func (s *sampler) warm() {
	s.add()
	s.mu.Lock()
	s.mark = len(s.samples) - 1
	s.mu.Unlock()
}

func (s *sampler) close() []Sample {
	close(s.stop)
	<-s.done
	s.add()
	return s.list()
}

func (s *sampler) list() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

func (s *sampler) warmMark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mark
}

// Server is the soak server: the golden StreamService's Echo over
// WebSocket (tracked for graceful shutdown) and a hub topic over SSE.
type Server struct {
	Addr string
	cfg  Config

	srv     *http.Server
	tracker *wsrpc.Tracker
	hub     *hub.Hub
	topic   *hub.Topic[*testingv1.Tick]
	served  chan error
	sampler *sampler

	stopPub chan struct{}
	pubDone chan struct{}
	lastSeq atomic.Int64

	sessions atomic.Int64
	echoed   atomic.Int64
	failures atomic.Int64
	firstErr atomic.Value
}

// ServerStats is what the server reports.
type ServerStats struct {
	Sessions  int64     `json:"sessions"` // WebSocket sessions served so far
	Echoed    int64     `json:"echoed"`
	Failures  int64     `json:"failures"` // handlers that ended with an error
	FirstErr  string    `json:"first_err,omitempty"`
	Published int64     `json:"published"` // last event sequence number
	Hub       hub.Stats `json:"hub"`
	Samples   []Sample  `json:"samples"`
	WarmMark  int       `json:"warm_mark"`
}

type echoService struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	s *Server
}

func (e echoService) Echo(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	e.s.sessions.Add(1)
	err := func() error {
		for req, err := range st.All() {
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.EchoResponse{Text: req.GetText(), Seq: req.GetSeq()}); err != nil {
				return err
			}
			e.s.echoed.Add(1)
		}
		return nil
	}()
	if err != nil && wsrpc.CodeOf(err) != wsrpc.CodeUnavailable { // shutdown's 1001 is expected
		if e.s.failures.Add(1) == 1 {
			e.s.firstErr.Store(err.Error())
		}
	}
	return err
}

// StartServer listens on addr (such as "127.0.0.1:0") and serves.
func StartServer(addr string, cfg Config) (*Server, error) {
	cfg.Defaults()
	h, err := hub.New(nil, &hub.Options{NodeID: "soak"})
	if err != nil {
		return nil, err
	}
	// A subscriber that falls behind by a whole queue is disconnected and
	// resumes from the replay store with Last-Event-ID: nothing is lost.
	topic, err := hub.NewTopic[*testingv1.Tick](h, "ticks", &hub.TopicOptions[*testingv1.Tick]{
		QueueSize: 256, Policy: hub.Disconnect, Replay: sse.NewRing(16384),
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, tracker: wsrpc.NewTracker(), hub: h, topic: topic, served: make(chan error, 1),
		stopPub: make(chan struct{}), pubDone: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(echoService{s: s},
		wsrpc.WithTracker(s.tracker),
		wsrpc.WithAcceptOptions(&websocket.AcceptOptions{PingInterval: cfg.PingEvery, PongTimeout: 3 * cfg.PingEvery})))
	mux.Handle(TicksPath, topic.SSEHandler(nil))
	mux.HandleFunc("/soak/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	mux.HandleFunc("/soak/warm", func(w http.ResponseWriter, r *http.Request) { s.Warm() })
	mux.HandleFunc("/soak/published", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.Published())
	})
	mux.HandleFunc("/soak/finish", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.FinishPublishing())
	})
	s.srv = wsrpc.NewHTTPServer(mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.Addr = ln.Addr().String()
	s.sampler = newSampler(cfg.SampleEvery)
	go func() { s.served <- s.srv.Serve(ln) }()
	go s.publish()
	return s, nil
}

func (s *Server) publish() {
	defer close(s.pubDone)
	t := time.NewTicker(s.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopPub:
			return
		case <-t.C:
		}
		n := s.lastSeq.Load() + 1
		if err := s.topic.Publish(context.Background(), &testingv1.Tick{Seq: n, Room: "soak"}); err != nil {
			if s.failures.Add(1) == 1 {
				s.firstErr.Store("publish: " + err.Error())
			}
			continue
		}
		s.lastSeq.Store(n)
	}
}

// Warm marks the end of warm-up in the server's samples.
func (s *Server) Warm() { s.sampler.warm() }

// Published returns the sequence number of the last event published: its
// Publish has returned, and the next one's has not begun (one goroutine
// publishes, and stores the number after Publish returns). RunClients
// relies on that order. Safe for concurrent use.
func (s *Server) Published() int64 { return s.lastSeq.Load() }

// FinishPublishing stops the publisher and returns the last sequence
// number published. Safe to call more than once.
func (s *Server) FinishPublishing() int64 {
	select {
	case <-s.stopPub:
	default:
		close(s.stopPub)
	}
	<-s.pubDone
	return s.lastSeq.Load()
}

// Stats reports the counters and the samples so far.
func (s *Server) Stats() ServerStats {
	st := ServerStats{Sessions: s.sessions.Load(), Echoed: s.echoed.Load(), Failures: s.failures.Load(),
		Published: s.lastSeq.Load(), Hub: s.topic.Stats(), Samples: s.sampler.list(), WarmMark: s.sampler.warmMark()}
	if e, ok := s.firstErr.Load().(string); ok {
		st.FirstErr = e
	}
	return st
}

// Close shuts the server down gracefully (1001 to WebSocket sessions)
// within ctx, and stops sampling.
func (s *Server) Close(ctx context.Context) error {
	s.FinishPublishing()
	err := wsrpc.Shutdown(ctx, s.srv, s.tracker)
	<-s.served
	_ = s.hub.Close()
	s.sampler.close()
	return err
}

// Report is the clients' account of a run.
type Report struct {
	WS, SSE      int
	Connect      time.Duration // time to connect every client (warm-up)
	Sent, Echoed int64
	Lost         int64 // messages sent and never echoed (skipped, or missing at the end)
	Reordered    int64 // echoes older than one already received
	Corrupt      int64 // echoes whose text differs from what was sent
	Events       int64 // SSE events received, all subscribers
	EventsLost   int64 // events due to a subscriber that it never received (see RunClients)
	Duplicates   int64 // events a subscriber saw twice
	Errors       int64
	FirstErrors  []string
	Samples      []Sample // the client process
	WarmMark     int
}

// OK reports whether the run lost, reordered, corrupted, duplicated
// nothing and saw no error.
func (r *Report) OK() bool {
	return r.Errors == 0 && r.Lost == 0 && r.Reordered == 0 && r.Corrupt == 0 && r.EventsLost == 0 && r.Duplicates == 0 &&
		r.Sent > 0 && r.Events > 0
}

type errs struct {
	n     atomic.Int64
	mu    sync.Mutex
	first []string
}

func (e *errs) add(format string, args ...any) {
	e.n.Add(1)
	e.mu.Lock()
	if len(e.first) < 10 {
		e.first = append(e.first, fmt.Sprintf(format, args...))
	}
	e.mu.Unlock()
}

// RunClients connects cfg.WS WebSocket clients and cfg.SSE subscribers to
// the server at addr, 64 dials at a time, runs them for cfg.Duration once
// all are connected (calling warm then), stops the senders, lets every
// echo arrive, asks finish for the last event published and waits for
// every subscriber to reach it. published returns the sequence number of
// the last event published, with Server.Published's guarantee: it is
// asked (from many goroutines at once) as each subscription is answered,
// to know which event must be the subscriber's first.
func RunClients(ctx context.Context, addr string, cfg Config, warm func(), published, finish func() (int64, error)) (*Report, error) {
	cfg.Defaults()
	if published == nil || finish == nil {
		return nil, errors.New("soak: RunClients needs published and finish")
	}
	base := "http://" + addr
	rep := &Report{WS: cfg.WS, SSE: cfg.SSE}
	var e errs
	smp := newSampler(cfg.SampleEvery)

	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	client := testingv1wsrpc.NewStreamServiceClient(hc, base,
		wsrpc.WithDialOptions(&websocket.DialOptions{PingInterval: cfg.PingEvery, PongTimeout: 3 * cfg.PingEvery}))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopSend := make(chan struct{})
	var sent, echoed, lost, reordered, corrupt, events, eventsLost, dups atomic.Int64
	var wsDone, sseDone, dialing sync.WaitGroup
	payload := strings.Repeat("m", cfg.Payload)

	start := time.Now()
	// Each client dials in its own goroutine, which holds one of 64 slots
	// until its handshake is done: one at a time, 11,000 handshakes wait
	// on each other's round trips; all at once, they would overrun the
	// server's accept queue. A failed dial is an error of the run.
	sem := make(chan struct{}, 64)
	for i := range cfg.WS {
		sem <- struct{}{}
		dialing.Add(1)
		wsDone.Add(1)
		go func() {
			defer wsDone.Done()
			st, err := client.Echo(runCtx)
			<-sem
			dialing.Done()
			if err != nil {
				e.add("ws %d: connect: %v", i, err)
				return
			}
			recvDone := make(chan int64, 1)
			go func() {
				next := int64(0) // the sequence number due
				skipped := int64(0)
				for {
					res, err := st.Receive()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						e.add("ws %d: receive: %v", i, err)
						break
					}
					switch seq := res.GetSeq(); {
					case seq == next:
						next++
					case seq > next:
						// Those between never came: lost, unless one
						// turns up later.
						skipped += seq - next
						next = seq + 1
					default:
						// Older than one already received: one skipped
						// that came late (not lost after all), or a
						// duplicate.
						reordered.Add(1)
						if skipped > 0 {
							skipped--
						}
					}
					if res.GetText() != payload {
						corrupt.Add(1)
					}
					echoed.Add(1)
				}
				lost.Add(skipped)
				recvDone <- next
			}()
			// A random phase spreads the clients' sends over MsgEvery.
			t := time.NewTimer(rand.N(cfg.MsgEvery))
			n := int64(0)
		loop:
			for {
				select {
				case <-stopSend:
					t.Stop()
					break loop
				case <-t.C:
				}
				if err := st.Send(&testingv1.EchoRequest{Text: payload, Seq: n}); err != nil {
					e.add("ws %d: send %d: %v", i, n, err)
					break
				}
				n++
				sent.Add(1)
				t.Reset(cfg.MsgEvery)
			}
			if err := st.CloseSend(); err != nil {
				e.add("ws %d: close send: %v", i, err)
			}
			got := <-recvDone
			if got < n {
				lost.Add(n - got) // the last ones sent, never echoed
			}
			_ = st.Close()
		}()
	}
	progress := make([]atomic.Int64, cfg.SSE) // each subscriber's last sequence number
	for i := range cfg.SSE {
		progress[i].Store(-1)
		sem <- struct{}{}
		dialing.Add(1)
		sseDone.Add(1)
		go func() {
			defer sseDone.Done()
			sess, err := sse.Connect(runCtx, base+TicksPath, &sse.ClientOptions{HTTPClient: hc, ReconnectionTime: 200 * time.Millisecond})
			var mark int64
			if err == nil {
				if mark, err = published(); err != nil {
					sess.Close()
					err = fmt.Errorf("published: %w", err)
				}
			}
			<-sem
			dialing.Done()
			if err != nil {
				e.add("sse %d: connect: %v", i, err)
				progress[i].Store(math.MaxInt64) // counted already
				return
			}
			defer sess.Close()
			// The first event due. Connect returns once the server has
			// answered, and the hub registers a subscriber before it
			// answers (hub.Topic.ServeSSE), so the subscription existed
			// when mark was read. The publisher stores a number only once
			// its Publish has returned and begins the next Publish after
			// that: Publish(mark+2) began after the subscription existed,
			// and it must be delivered. Publish(mark+1) may have been under
			// way while the subscription was made, so it may be missing;
			// no event can be required earlier than mark+2 without a false
			// alarm.
			due := mark + 2
			prev := int64(-1)
			for {
				ev, err := sess.Next()
				if err != nil {
					if runCtx.Err() == nil {
						e.add("sse %d: %v", i, err)
					}
					return
				}
				var tick testingv1.Tick
				if err := codec.JSON.Unmarshal([]byte(ev.Data), &tick); err != nil {
					e.add("sse %d: event %q: %v", i, ev.Data, err)
					return
				}
				events.Add(1)
				switch seq := tick.GetSeq(); {
				case prev < 0:
					if seq > due {
						eventsLost.Add(seq - due) // published after it subscribed, never received
					}
				case seq == prev+1:
				case seq <= prev:
					dups.Add(1)
				default:
					eventsLost.Add(seq - prev - 1)
				}
				prev = max(prev, tick.GetSeq())
				progress[i].Store(prev)
			}
		}()
	}
	dialing.Wait()
	rep.Connect = time.Since(start)
	if warm != nil {
		warm()
	}
	smp.warm()

	select {
	case <-ctx.Done():
	case <-time.After(cfg.Duration):
	}
	close(stopSend)
	wsDone.Wait()
	final, err := finish()
	if err != nil {
		e.add("finish: %v", err)
	} else {
		// Every subscriber reaches the last event within a bound, or is
		// counted as having lost the rest.
		deadline := time.Now().Add(30 * time.Second)
		for i := range progress {
			for progress[i].Load() < final && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if p := progress[i].Load(); p < final {
				if p >= 0 {
					eventsLost.Add(final - p)
				}
				e.add("sse %d: stopped at event %d of %d", i, p, final)
			}
		}
	}
	cancel() // ends the subscriptions
	sseDone.Wait()
	rep.Sent, rep.Echoed, rep.Lost, rep.Reordered, rep.Corrupt = sent.Load(), echoed.Load(), lost.Load(), reordered.Load(), corrupt.Load()
	rep.Events, rep.EventsLost, rep.Duplicates = events.Load(), eventsLost.Load(), dups.Load()
	rep.Errors = e.n.Load()
	rep.FirstErrors = e.first
	rep.Samples = smp.close()
	rep.WarmMark = smp.warmMark()
	return rep, nil
}

// Drift summarises samples from the warm-up mark on: the first and the
// largest RSS and goroutine count.
type Drift struct {
	RSSWarm, RSSMax, RSSEnd    int64
	GoWarm, GoMax, GoEnd       int
	HeapWarm, HeapMax, HeapEnd uint64
}

// DriftOf computes the drift of samples after mark (the warm-up sample).
func DriftOf(samples []Sample, mark int) Drift {
	var d Drift
	if mark < 0 || mark >= len(samples) {
		return d
	}
	w := samples[mark]
	d.RSSWarm, d.GoWarm, d.HeapWarm = w.RSS, w.Goroutines, w.HeapInuse
	for _, s := range samples[mark:] {
		d.RSSMax, d.GoMax, d.HeapMax = max(d.RSSMax, s.RSS), max(d.GoMax, s.Goroutines), max(d.HeapMax, s.HeapInuse)
	}
	// The last sample is taken after the clients have gone; the one
	// before it closes the steady state.
	end := samples[len(samples)-1]
	if len(samples)-mark > 2 {
		end = samples[len(samples)-2]
	}
	d.RSSEnd, d.GoEnd, d.HeapEnd = end.RSS, end.Goroutines, end.HeapInuse
	return d
}

// GoroutinesFlat reports whether the goroutine count stayed within 10% of
// its warm-up value plus the transient ones (timers firing, and the hub's
// writer per SSE subscriber with queued events: up to sse more). A leak
// per message or per ping would exceed that within seconds.
func (d Drift) GoroutinesFlat(sse int) bool {
	return d.GoMax <= d.GoWarm+d.GoWarm/10+sse
}

// Flat reports whether the steady state stayed flat: GoroutinesFlat, and
// RSS within 25% of its warm-up value.
func (d Drift) Flat(sse int) bool {
	return d.GoroutinesFlat(sse) && d.RSSMax <= d.RSSWarm+d.RSSWarm/4
}

func (d Drift) String() string {
	return fmt.Sprintf("RSS %s → max %s (end %s); goroutines %d → max %d (end %d); heap in use %s → max %s",
		mib(d.RSSWarm), mib(d.RSSMax), mib(d.RSSEnd), d.GoWarm, d.GoMax, d.GoEnd, mib(int64(d.HeapWarm)), mib(int64(d.HeapMax)))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Summary formats a run for people.
func Summary(cfg Config, rep *Report, srv ServerStats) string {
	cfg.Defaults()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, "soak: %d WebSocket clients (a message every %v, pings every %v), %d SSE subscribers (an event every %v), %v steady state\n",
		cfg.WS, cfg.MsgEvery, cfg.PingEvery, cfg.SSE, cfg.TickEvery, cfg.Duration)
	fmt.Fprintf(w, "connect: all clients in %v\n", rep.Connect.Round(time.Millisecond))
	fmt.Fprintf(w, "websocket: sent %d, echoed %d, lost %d, reordered %d, corrupt %d; server sessions %d, echoed %d, handler failures %d\n",
		rep.Sent, rep.Echoed, rep.Lost, rep.Reordered, rep.Corrupt, srv.Sessions, srv.Echoed, srv.Failures)
	fmt.Fprintf(w, "sse: published %d, received %d in all, lost %d, duplicated %d; hub delivered %d, disconnected %d slow subscribers\n",
		srv.Published, rep.Events, rep.EventsLost, rep.Duplicates, srv.Hub.Delivered, srv.Hub.Disconnected)
	fmt.Fprintf(w, "errors: %d client, %d server", rep.Errors, srv.Failures)
	for _, s := range rep.FirstErrors {
		fmt.Fprintf(w, "\n  %s", s)
	}
	if srv.FirstErr != "" {
		fmt.Fprintf(w, "\n  server: %s", srv.FirstErr)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "server after warm-up: %v\n", DriftOf(srv.Samples, srv.WarmMark))
	fmt.Fprintf(w, "clients after warm-up: %v\n", DriftOf(rep.Samples, rep.WarmMark))
	w.Flush()
	return b.String()
}
