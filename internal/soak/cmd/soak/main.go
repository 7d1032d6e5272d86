// Command soak runs the soak test of docs/reliability.md: a server
// process and a client process on loopback (one process's descriptor
// limit is about 20,000 here, and each side needs one per connection).
//
//	soak -ws 10000 -sse 1000 -duration 10m       # both processes
//	soak -mode server -addr 127.0.0.1:0 ...       # the server alone
//
// It prints a summary and exits 1 when anything was lost, reordered,
// corrupted or failed, or when memory or goroutines grew after warm-up.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/internal/fdlimit"
	"github.com/wsrpc/wsrpc/internal/soak"
)

func main() {
	var cfg soak.Config
	mode := flag.String("mode", "run", "run (server child + clients), server, or clients")
	addr := flag.String("addr", "127.0.0.1:0", "server address (server mode), or the server to load (clients mode)")
	flag.IntVar(&cfg.WS, "ws", 10000, "WebSocket clients")
	flag.IntVar(&cfg.SSE, "sse", 1000, "SSE subscribers")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "steady state after all clients are connected")
	flag.DurationVar(&cfg.MsgEvery, "msg-every", 2*time.Second, "each WebSocket client sends a message this often")
	flag.DurationVar(&cfg.PingEvery, "ping-every", 5*time.Second, "keepalive ping interval, both sides")
	flag.DurationVar(&cfg.TickEvery, "tick-every", 100*time.Millisecond, "the server publishes an SSE event this often")
	flag.DurationVar(&cfg.SampleEvery, "sample-every", 10*time.Second, "memory and goroutine samples")
	flag.Parse()
	cfg.Defaults()
	fdlimit.Raise()

	switch *mode {
	case "server":
		serve(*addr, cfg)
	case "clients":
		os.Exit(clients(*addr, cfg))
	case "run":
		os.Exit(run(cfg))
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

// serve runs the server until SIGTERM or SIGINT, printing its address
// first ("listening <addr>"), then shuts down gracefully.
func serve(addr string, cfg soak.Config) {
	srv, err := soak.StartServer(addr, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", srv.Addr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		log.Printf("shutdown: %v", err)
	}
}

func run(cfg soak.Config) int {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	args := []string{"-mode", "server", "-addr", "127.0.0.1:0",
		"-ping-every", cfg.PingEvery.String(), "-tick-every", cfg.TickEvery.String(), "-sample-every", cfg.SampleEvery.String()}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		log.Fatalf("server did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	code := clients(addr, cfg)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		log.Printf("server: %v", err)
		code = 1
	}
	return code
}

func clients(addr string, cfg soak.Config) int {
	base := "http://" + addr
	post := func(path string) (string, error) {
		resp, err := http.Post(base+path, "text/plain", nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	number := func(path string) (int64, error) {
		s, err := post(path)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	log.Printf("soak: connecting %d WebSocket clients and %d SSE subscribers to %s", cfg.WS, cfg.SSE, addr)
	rep, err := soak.RunClients(ctx, addr, cfg,
		func() {
			log.Printf("soak: all connected; steady state for %v", cfg.Duration)
			if _, err := post("/soak/warm"); err != nil {
				log.Printf("warm: %v", err)
			}
		},
		func() (int64, error) { return number("/soak/published") },
		func() (int64, error) { return number("/soak/finish") })
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Get(base + "/soak/stats")
	if err != nil {
		log.Fatal(err)
	}
	var stats soak.ServerStats
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(soak.Summary(cfg, rep, stats))
	fmt.Println("server samples (at, RSS MiB, goroutines):")
	for _, s := range stats.Samples {
		fmt.Printf("  %v %.1f %d\n", s.At.Round(time.Second), float64(s.RSS)/(1<<20), s.Goroutines)
	}
	sd := soak.DriftOf(stats.Samples, stats.WarmMark)
	cd := soak.DriftOf(rep.Samples, rep.WarmMark)
	if !rep.OK() || stats.Failures != 0 {
		fmt.Println("FAIL: something was lost, reordered, corrupted or failed")
		return 1
	}
	if !sd.Flat(cfg.SSE) || !cd.Flat(0) {
		fmt.Println("FAIL: memory or goroutines grew after warm-up")
		return 1
	}
	fmt.Println("PASS")
	return 0
}
