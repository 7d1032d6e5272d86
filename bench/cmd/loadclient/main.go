// Command loadclient drives one echo server (see ../echoserver) with one
// scenario and prints one line:
//
//	result msgs=… secs=… msgs_per_s=… mb_per_s=… wire_ratio=… takeover=…
//	result conns=… rss_before=… rss_after=… bytes_per_conn=…   (idle)
//
// or, given -server once per server (echo and deflate), takes the servers
// in turns for -rounds rounds (load.Interleave) and prints a line per turn:
//
//	result server=… round=… msgs=… secs=… msgs_per_s=… …
//
// Every echoed byte is checked; a mismatch exits with status 1.
package main

import (
	"flag"
	"fmt"
	"log"
	"strconv"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/bench/internal/load"
	"github.com/wsrpc/wsrpc/internal/fdlimit"
)

func main() {
	var cfg load.Config
	flag.StringVar(&cfg.Addr, "addr", "", "server address (host:port)")
	raw := flag.Bool("tcp", false, "the server is the raw TCP echo (no handshake)")
	flag.StringVar(&cfg.Scenario, "scenario", "echo", "echo | deflate | idle")
	flag.IntVar(&cfg.Conns, "conns", 1, "connections")
	flag.IntVar(&cfg.Size, "size", 16, "payload bytes (echo)")
	flag.IntVar(&cfg.InFlight, "inflight", 1, "messages in flight per connection")
	flag.DurationVar(&cfg.Warmup, "warmup", 300*time.Millisecond, "time before measuring")
	flag.DurationVar(&cfg.Duration, "duration", 2*time.Second, "measured time (idle: settle time)")
	flag.IntVar(&cfg.PID, "pid", 0, "server process id: CPU time; idle: VmRSS")
	flag.DurationVar(&cfg.Settle, "settle", 50*time.Millisecond, "with -server: time before measuring a server's later turns")
	rounds := flag.Int("rounds", 1, "with -server: rounds of turns")
	var servers []load.Server
	flag.Func("server", "name=addr[,pid=N][,tcp]: one of the servers to take turns on (repeat)", func(v string) error {
		s, err := parseServer(v)
		servers = append(servers, s)
		return err
	})
	flag.Parse()
	cfg.Raw = *raw
	fdlimit.Raise()
	if len(servers) > 0 {
		slices, err := load.Interleave(cfg, servers, *rounds)
		if err != nil {
			log.Fatalf("loadclient: %v", err)
		}
		for _, s := range slices {
			fmt.Printf("result server=%s round=%d %s\n", s.Server, s.Round, strings.TrimPrefix(s.Result.String(), "result "))
		}
		return
	}
	res, err := load.Run(cfg)
	if err != nil {
		log.Fatalf("loadclient: %v", err)
	}
	fmt.Println(res)
}

// parseServer parses -server's name=addr[,pid=N][,tcp].
func parseServer(v string) (load.Server, error) {
	var s load.Server
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return s, fmt.Errorf("want name=addr[,pid=N][,tcp], got %q", v)
	}
	s.Name = name
	parts := strings.Split(rest, ",")
	s.Addr = parts[0]
	for _, p := range parts[1:] {
		switch {
		case p == "tcp":
			s.Raw = true
		case strings.HasPrefix(p, "pid="):
			pid, err := strconv.Atoi(p[len("pid="):])
			if err != nil {
				return s, fmt.Errorf("bad pid in %q", v)
			}
			s.PID = pid
		default:
			return s, fmt.Errorf("unknown option %q in %q", p, v)
		}
	}
	return s, nil
}
