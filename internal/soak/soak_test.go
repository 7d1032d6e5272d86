package soak_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/internal/soak"
)

// TestSoakShort is the CI version of `make soak`: 500 WebSocket clients
// and 100 SSE subscribers in one process for 20 s. Every message comes
// back in order, every subscriber gets every event exactly once, nothing
// fails, the goroutine count stays flat after warm-up, and nothing is
// left running afterwards. (Memory is reported, not asserted: one
// process holding both ends under the race detector is too noisy for a
// bound; `make soak` checks it with the server in its own process.)
func TestSoakShort(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := soak.Config{WS: 500, SSE: 100, Duration: 20 * time.Second, MsgEvery: time.Second, PingEvery: 2 * time.Second, SampleEvery: 2 * time.Second}
	rep, stats := runSoak(t, cfg)
	t.Log("\n" + soak.Summary(cfg, rep, stats))
	if !rep.OK() || stats.Failures != 0 {
		t.Fatal("the soak lost, reordered, corrupted or failed something (see the summary)")
	}
	if rep.Sent < int64(cfg.WS)*int64(cfg.Duration/cfg.MsgEvery)/2 {
		t.Errorf("only %d messages sent", rep.Sent)
	}
	if stats.Echoed != rep.Echoed {
		t.Errorf("server echoed %d, clients received %d", stats.Echoed, rep.Echoed)
	}
	// Both ends share this process: its goroutine count after warm-up
	// must not grow (a leak per message or per ping would).
	if d := soak.DriftOf(rep.Samples, rep.WarmMark); !d.GoroutinesFlat(cfg.SSE) {
		t.Errorf("goroutines grew after warm-up: %v", d)
	}
}

// runSoak runs cfg's clients against a soak server in this process, as
// cmd/soak does across two, and shuts the server down.
func runSoak(t *testing.T, cfg soak.Config) (*soak.Report, soak.ServerStats) {
	t.Helper()
	srv, err := soak.StartServer("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := soak.RunClients(ctx, srv.Addr, cfg, srv.Warm,
		func() (int64, error) { return srv.Published(), nil },
		func() (int64, error) { return srv.FinishPublishing(), nil })
	if err != nil {
		t.Fatal(err)
	}
	stats := srv.Stats()
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if err := srv.Close(cctx); err != nil {
		t.Errorf("server shutdown: %v", err)
	}
	return rep, stats
}
