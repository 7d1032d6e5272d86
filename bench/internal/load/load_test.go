package load_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/bench/internal/echo"
	"github.com/wsrpc/wsrpc/bench/internal/load"
)

// scenarios is a very short version of every cell of bench/run.sh: a smoke
// check that each server echoes every byte, not a measurement.
var scenarios = []struct {
	name string
	cfg  load.Config
}{
	{"rr-1-16", load.Config{Scenario: "echo", Conns: 1, Size: 16}},
	{"rr-4-64k", load.Config{Scenario: "echo", Conns: 4, Size: 64 << 10}},
	{"pipe-8-1k", load.Config{Scenario: "echo", Conns: 8, Size: 1024, InFlight: 16}},
	{"deflate-8-1k", load.Config{Scenario: "deflate", Conns: 8, InFlight: 4}},
	{"idle-50", load.Config{Scenario: "idle", Conns: 50}},
}

func short(cfg load.Config) load.Config {
	cfg.Warmup = 20 * time.Millisecond
	cfg.Duration = 80 * time.Millisecond
	return cfg
}

func TestEveryGoServer(t *testing.T) {
	for _, lib := range echo.Libs {
		for _, sc := range scenarios {
			deflate := sc.cfg.Scenario == "deflate"
			if !echo.Supports(lib, deflate) {
				continue
			}
			t.Run(lib+"/"+sc.name, func(t *testing.T) {
				if lib == "tcp-uring" {
					if err := echo.URingSupported(); err != nil {
						t.Skipf("no io_uring here: %v", err)
					}
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go echo.Serve(lib, ln, echo.Options{Deflate: deflate, Handoff: sc.name == "idle-50"})
				cfg := short(sc.cfg)
				cfg.Addr = ln.Addr().String()
				cfg.Raw = strings.HasPrefix(lib, "tcp")
				cfg.PID = os.Getpid()
				res, err := load.Run(cfg)
				if err != nil {
					t.Fatal(err)
				}
				check(t, cfg, res)
			})
		}
	}
}

func check(t *testing.T, cfg load.Config, res load.Result) {
	t.Helper()
	switch cfg.Scenario {
	case "idle":
		if res.RSSAfter == 0 {
			t.Fatalf("no RSS reading: %+v", res)
		}
	default:
		if res.Msgs == 0 {
			t.Fatalf("no message echoed: %+v", res)
		}
	}
	if cfg.Scenario == "deflate" && (res.WireRatio <= 0 || res.WireRatio >= 1) {
		t.Fatalf("wire ratio %.3f: the echo was not compressed", res.WireRatio)
	}
}

// TestNodeWS runs the same scenarios against npm ws when bench/node has
// been installed (bench/run.sh runs npm ci there).
func TestNodeWS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := filepath.Join("..", "..", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		t.Skip("bench/node not installed (cd bench/node && npm ci)")
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			args := []string{"echoserver.js"}
			if sc.cfg.Scenario == "deflate" {
				args = append(args, "--deflate")
			}
			cmd := exec.Command(node, args...)
			cmd.Dir = dir
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			lines := make(chan string, 1)
			go func() {
				s := bufio.NewScanner(out)
				if s.Scan() {
					lines <- s.Text()
				}
				close(lines)
			}()
			var line string
			select {
			case line = <-lines:
			case <-time.After(10 * time.Second):
				t.Fatal("node server did not start")
			}
			m := regexp.MustCompile(`^ready pid=(\d+) addr=(\S+)`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("unexpected first line %q", line)
			}
			cfg := short(sc.cfg)
			cfg.Addr = m[2]
			cfg.PID = cmd.Process.Pid
			res, err := load.Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			check(t, cfg, res)
		})
	}
}

// TestInterleave takes three servers in turns: every server gets one
// measured turn per round, the order rotates by one each round, and the
// compressed scenario keeps each connection's context across turns.
func TestInterleave(t *testing.T) {
	for _, sc := range scenarios[:4] {
		t.Run(sc.name, func(t *testing.T) {
			deflate := sc.cfg.Scenario == "deflate"
			var servers []load.Server
			for _, lib := range []string{"wsrpc", "gws", "tcp"} {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go echo.Serve(lib, ln, echo.Options{Deflate: deflate})
				servers = append(servers, load.Server{Name: lib, Addr: ln.Addr().String(), Raw: lib == "tcp", PID: os.Getpid()})
			}
			cfg := sc.cfg
			cfg.Warmup, cfg.Settle, cfg.Duration = 20*time.Millisecond, 5*time.Millisecond, 30*time.Millisecond
			const rounds = 3
			slices, err := load.Interleave(cfg, servers, rounds)
			if err != nil {
				t.Fatal(err)
			}
			if len(slices) != rounds*len(servers) {
				t.Fatalf("%d turns, want %d", len(slices), rounds*len(servers))
			}
			for i, s := range slices {
				r, k := i/len(servers), i%len(servers)
				if want := servers[(k+r)%len(servers)].Name; s.Server != want || s.Round != r {
					t.Fatalf("turn %d: %s in round %d, want %s in round %d", i, s.Server, s.Round, want, r)
				}
				check(t, cfg, s.Result)
			}
		})
	}
}

// TestCorruptEchoFails makes sure the client notices a wrong byte: a TCP
// echo that flips one bit in every read must fail the run.
func TestCorruptEchoFails(t *testing.T) {
	for _, sc := range scenarios[:4] {
		t.Run(sc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						buf := make([]byte, 32<<10)
						for {
							n, err := c.Read(buf)
							if n > 0 {
								buf[n-1] ^= 0x01 // the last payload byte read
								if _, err := c.Write(buf[:n]); err != nil {
									return
								}
							}
							if err != nil {
								return
							}
						}
					}()
				}
			}()
			cfg := short(sc.cfg)
			cfg.Addr = ln.Addr().String()
			cfg.Raw = true
			_, err = load.Run(cfg)
			if err == nil || !strings.Contains(err.Error(), "differ") && !strings.Contains(err.Error(), "inflate") {
				t.Fatalf("corrupt echo: err = %v, want a verification failure", err)
			}
		})
	}
}
