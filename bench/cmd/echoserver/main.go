// Command echoserver runs one library's echo server (see internal/echo) on
// 127.0.0.1, prints one line
//
//	ready pid=<pid> addr=<host:port> lib=<lib>
//
// and echoes until it is killed. bench/run.sh starts a fresh one per run.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/wsrpc/wsrpc/bench/internal/echo"
	"github.com/wsrpc/wsrpc/internal/fdlimit"
)

func main() {
	lib := flag.String("lib", "wsrpc", strings.Join(echo.Libs, "|"))
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	var o echo.Options
	flag.BoolVar(&o.Deflate, "deflate", false, "permessage-deflate with context takeover where the library has it")
	flag.BoolVar(&o.Handoff, "handoff", false, "serve each connection from a new goroutine; the HTTP handler returns")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here, stopped on SIGTERM or SIGINT")
	memprofile := flag.String("memprofile", "", "write a heap profile here on SIGTERM or SIGINT")
	flag.Parse()
	fdlimit.Raise()
	if *memprofile != "" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sig
			f, err := os.Create(*memprofile)
			if err == nil {
				runtime.GC()
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "heap_inuse=%d stack_inuse=%d heap_sys=%d heap_released=%d goroutines=%d next_gc=%d\n",
				m.HeapInuse, m.StackInuse, m.HeapSys, m.HeapReleased, runtime.NumGoroutine(), m.NextGC)
			os.Exit(0)
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	if !echo.Supports(*lib, o.Deflate) {
		log.Fatalf("%s: no compressed server in the comparison", *lib)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ready pid=%d addr=%s lib=%s\n", os.Getpid(), ln.Addr(), *lib)
	log.Fatal(echo.Serve(*lib, ln, o))
}
