//go:build linux

package wsrpc_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// userTimeoutTest is the test that runs beside docs/reliability.md's
// TCP_USER_TIMEOUT recipe: the listener has the option, and a connection
// the wsrpc server accepts through it has it too, inherited from the
// listening socket (Go sets no such option itself, so a kernel that did
// not copy it would show 0).
const userTimeoutTest = `package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
)

func userTimeout(c syscall.Conn) (time.Duration, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ms int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		ms, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout)
	}); err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, gerr
}

func TestUserTimeoutInherited(t *testing.T) {
	const d = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := listenUserTimeout(ctx, "127.0.0.1:0", d)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := userTimeout(ln.(*net.TCPListener)); err != nil || got != d {
		t.Fatalf("listener: TCP_USER_TIMEOUT %v, %v; want %v", got, err, d)
	}
	type result struct {
		d   time.Duration
		err error
	}
	accepted := make(chan result, 1)
	srv := wsrpc.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		got, err := userTimeout(c.(*net.TCPConn))
		select {
		case accepted <- result{got, err}:
		default:
		}
		return ctx
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	select {
	case r := <-accepted:
		if r.err != nil || r.d != d {
			t.Errorf("accepted connection: TCP_USER_TIMEOUT %v, %v; want %v, inherited from the listener", r.d, r.err, d)
		}
	case <-time.After(10 * time.Second):
		t.Error("no connection accepted")
	}
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}
`

// TestReliabilityDocUserTimeout runs docs/reliability.md's recipe for a
// server whose SSE clients' paths go dark, the Go file as it stands: it
// builds against wsrpc, and the TCP_USER_TIMEOUT it sets on the listening
// socket is on the connections the server accepts (the doc says they
// inherit it; were they not to, the recipe would have to set it per
// connection).
func TestReliabilityDocUserTimeout(t *testing.T) {
	const doc = "docs/reliability.md"
	var recipe []string
	for _, b := range fencedBlocks(t, doc, "go") {
		if strings.Contains(b, "TCP_USER_TIMEOUT") {
			recipe = append(recipe, b)
		}
	}
	if len(recipe) != 1 {
		t.Fatalf("%s has %d go blocks on TCP_USER_TIMEOUT, want 1", doc, len(recipe))
	}
	// Inside the module so the imports resolve; "_" keeps it out of ./...
	dir, err := os.MkdirTemp(".", "_doctest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, src := range map[string]string{"recipe_linux.go": recipe[0], "recipe_linux_test.go": userTimeoutTest} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "./"+filepath.ToSlash(dir)).CombinedOutput(); err != nil {
		t.Fatalf("the documented recipe: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "--- PASS: TestUserTimeoutInherited") {
		t.Fatalf("the recipe's test did not run:\n%s", out)
	}
}
