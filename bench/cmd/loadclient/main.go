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
// Every echo is checked: its opcode, its length and every byte. Exit
// status:
//
//	0  every echo was right
//	1  the run could not be made (a refused or timed-out connection, say):
//	   worth a retry on a quieter machine
//	2  bad flags
//	3  a verification failure (load.ErrVerify): the server echoed a wrong
//	   byte, length or opcode, or sent a frame no conforming server sends;
//	   a retry cannot mend it, and bench/run.sh makes none
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
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
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: loadclient [flags]\n"+
			"exit status: 0 ok, 1 the run failed, 2 bad flags, 3 an echo failed verification (never worth a retry)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	cfg.Raw = *raw
	fdlimit.Raise()
	if len(servers) > 0 {
		slices, err := load.Interleave(cfg, servers, *rounds)
		if err != nil {
			fail(err)
		}
		for _, s := range slices {
			fmt.Printf("result server=%s round=%d %s\n", s.Server, s.Round, strings.TrimPrefix(s.Result.String(), "result "))
		}
		return
	}
	res, err := load.Run(cfg)
	if err != nil {
		fail(err)
	}
	fmt.Println(res)
}

// Exit statuses beyond flag's 2 (see the package comment).
const (
	exitFailed   = 1
	exitMismatch = 3
)

// exitCode is the status a run that ended in err exits with.
func exitCode(err error) int {
	if errors.Is(err, load.ErrVerify) {
		return exitMismatch
	}
	return exitFailed
}

func fail(err error) {
	log.Printf("loadclient: %v", err)
	os.Exit(exitCode(err))
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
