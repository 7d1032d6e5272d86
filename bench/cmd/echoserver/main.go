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
	"syscall"

	"github.com/wsrpc/wsrpc/bench/internal/echo"
)

func main() {
	lib := flag.String("lib", "wsrpc", "wsrpc|gorilla|coder|gws|gobwas|tcp")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	deflate := flag.Bool("deflate", false, "permessage-deflate with context takeover where the library has it")
	flag.Parse()
	raiseNoFile()
	if !echo.Supports(*lib, *deflate) {
		log.Fatalf("%s: no compressed server in the comparison", *lib)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ready pid=%d addr=%s lib=%s\n", os.Getpid(), ln.Addr(), *lib)
	log.Fatal(echo.Serve(*lib, ln, *deflate))
}

// raiseNoFile lifts the soft open-files limit to the hard one (Go does this
// at start-up too; done here so it does not depend on the Go version).
func raiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
