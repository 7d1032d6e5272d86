// Command loadclient drives one echo server (see ../echoserver) with one
// scenario and prints one line:
//
//	result msgs=… secs=… msgs_per_s=… mb_per_s=… wire_ratio=… takeover=…
//	result conns=… rss_before=… rss_after=… bytes_per_conn=…   (idle)
//
// Every echoed byte is checked; a mismatch exits with status 1.
package main

import (
	"flag"
	"fmt"
	"log"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/bench/internal/load"
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
	flag.IntVar(&cfg.PID, "pid", 0, "idle: server process id for VmRSS")
	flag.Parse()
	cfg.Raw = *raw
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	res, err := load.Run(cfg)
	if err != nil {
		log.Fatalf("loadclient: %v", err)
	}
	fmt.Println(res)
}
