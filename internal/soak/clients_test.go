package soak_test

// RunClients's verdict on servers that get things wrong on purpose: each
// fault must fail the run, under its own label. Small and bounded: a few
// seconds each, 127.0.0.1 only.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/internal/soak"
)

// faultyEcho echoes with a fault: "blank" sends every text back empty,
// "drop" never echoes message 2, "swap" echoes message 2 after message 3;
// "" is a faithful echo.
type faultyEcho struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	fault string
}

func (f faultyEcho) Echo(ctx context.Context, st *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	var held *testingv1.EchoResponse
	for req, err := range st.All() {
		if err != nil {
			return err
		}
		res := &testingv1.EchoResponse{Text: req.GetText(), Seq: req.GetSeq()}
		switch {
		case f.fault == "blank":
			res.Text = ""
		case f.fault == "drop" && req.GetSeq() == 2:
			continue
		case f.fault == "swap" && req.GetSeq() == 2:
			held = res
			continue
		}
		if err := st.Send(res); err != nil {
			return err
		}
		if held != nil {
			if err := st.Send(held); err != nil {
				return err
			}
			held = nil
		}
	}
	return nil
}

// faultyServer serves faultyEcho, holding each WebSocket upgrade 30 ms
// and recording how many were held at once, and an SSE topic on which a
// subscriber gets every event published after it subscribed except the
// first skip. It subscribes a client before it answers, as the hub does.
type faultyServer struct {
	addr        string
	seq         atomic.Int64 // the last event published
	stop        chan struct{}
	stopped     chan struct{}
	stopOnce    sync.Once
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
}

func startFaulty(t *testing.T, echo faultyEcho, skip int64) *faultyServer {
	t.Helper()
	s := &faultyServer{stop: make(chan struct{}), stopped: make(chan struct{})}
	path, h := testingv1wsrpc.NewStreamServiceHandler(echo)
	mux := http.NewServeMux()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		s.inFlight.Add(-1)
		h.ServeHTTP(w, r)
	}))
	mux.HandleFunc(soak.TicksPath, func(w http.ResponseWriter, r *http.Request) {
		next := s.seq.Load() + 1 + skip // subscribed; events seq+1 … seq+skip are never sent
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			for ; next <= s.seq.Load(); next++ {
				fmt.Fprintf(w, "id: soak-%d\ndata: {\"seq\":%d,\"room\":\"soak\"}\n\n", next, next)
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tk.C:
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() {
		s.finish()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		srv.Close()
	})
	s.addr = ln.Addr().String()
	go func() {
		defer close(s.stopped)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
				s.seq.Add(1)
			}
		}
	}()
	return s
}

func (s *faultyServer) finish() int64 {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	return s.seq.Load()
}

var smallRun = soak.Config{WS: 8, SSE: 2, Duration: 1500 * time.Millisecond, MsgEvery: 100 * time.Millisecond,
	PingEvery: time.Second, TickEvery: 20 * time.Millisecond, SampleEvery: 500 * time.Millisecond}

func (s *faultyServer) run(t *testing.T) *soak.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := soak.RunClients(ctx, s.addr, smallRun, nil,
		func() (int64, error) { return s.seq.Load(), nil },
		func() (int64, error) { return s.finish(), nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d echoed %d lost %d reordered %d corrupt %d; events %d lost %d dup %d; errors %d %v",
		rep.Sent, rep.Echoed, rep.Lost, rep.Reordered, rep.Corrupt, rep.Events, rep.EventsLost, rep.Duplicates, rep.Errors, rep.FirstErrors)
	return rep
}

// TestRunClientsCountsCorruptEchoes: every echo comes back with its
// sequence number right and its text gone. The soak compared only the
// numbers and passed this server.
func TestRunClientsCountsCorruptEchoes(t *testing.T) {
	rep := startFaulty(t, faultyEcho{fault: "blank"}, 0).run(t)
	if rep.Echoed == 0 || rep.Corrupt != rep.Echoed {
		t.Errorf("%d of %d echoes counted as corrupt, want all", rep.Corrupt, rep.Echoed)
	}
	if rep.OK() {
		t.Error("OK() although every echoed text was empty")
	}
}

// TestRunClientsLabelsEchoFaults: a message never echoed mid-stream is
// lost, not reordered (it was counted as reordered); one echoed late is
// reordered, not lost.
func TestRunClientsLabelsEchoFaults(t *testing.T) {
	t.Run("drop", func(t *testing.T) {
		rep := startFaulty(t, faultyEcho{fault: "drop"}, 0).run(t)
		if rep.Lost != int64(smallRun.WS) || rep.Reordered != 0 {
			t.Errorf("lost %d, reordered %d; want %d lost (message 2 of each client), 0 reordered", rep.Lost, rep.Reordered, smallRun.WS)
		}
	})
	t.Run("swap", func(t *testing.T) {
		rep := startFaulty(t, faultyEcho{fault: "swap"}, 0).run(t)
		if rep.Reordered != int64(smallRun.WS) || rep.Lost != 0 {
			t.Errorf("reordered %d, lost %d; want %d reordered (message 2 of each client), 0 lost", rep.Reordered, rep.Lost, smallRun.WS)
		}
	})
}

// TestRunClientsCountsLostFirstEvents: a subscriber that misses the first
// 50 events published after it subscribed has lost them. The soak took
// any first event as the start of the sequence and passed this server.
// With none skipped, as the hub does, nothing is counted: the rule for
// the first event raises no false alarm.
func TestRunClientsCountsLostFirstEvents(t *testing.T) {
	t.Run("skip 50", func(t *testing.T) {
		rep := startFaulty(t, faultyEcho{}, 50).run(t)
		if rep.EventsLost == 0 || rep.OK() {
			t.Errorf("events lost %d, OK %v; want the events each subscriber missed counted", rep.EventsLost, rep.OK())
		}
	})
	t.Run("skip none", func(t *testing.T) {
		if rep := startFaulty(t, faultyEcho{}, 0).run(t); !rep.OK() {
			t.Error("a faithful server failed the run")
		}
	})
}

// TestRunClientsAcceptsTheSoakServer runs the rules against the real
// server with events every 5 ms, so that events are often published while
// a subscription is being made: no false alarm.
func TestRunClientsAcceptsTheSoakServer(t *testing.T) {
	cfg := smallRun
	cfg.SSE, cfg.TickEvery = 16, 5*time.Millisecond
	rep, stats := runSoak(t, cfg)
	if !rep.OK() {
		t.Fatal("\n" + soak.Summary(cfg, rep, stats))
	}
}

// TestRunClientsDialsConcurrently: docs/reliability.md says the soak
// connects its clients 64 dials at a time; it dialled one at a time (the
// slot was taken around a synchronous dial in a sequential loop).
func TestRunClientsDialsConcurrently(t *testing.T) {
	s := startFaulty(t, faultyEcho{}, 0)
	s.run(t)
	if m := s.maxInFlight.Load(); m <= 1 {
		t.Fatalf("at most %d WebSocket handshake(s) in flight at once, want up to 64", m)
	}
}
