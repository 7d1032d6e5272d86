//go:build unix

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// buildCommand builds the wsrpc command into a temporary directory.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wsrpc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestHelp: asking for help is not a usage error — the command list goes
// to stdout with status 0; no command or an unknown one is (status 2).
func TestHelp(t *testing.T) {
	bin := buildCommand(t)
	for _, arg := range []string{"--help", "-h", "help"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || !strings.Contains(string(out), "usage: wsrpc") || !strings.Contains(string(out), "  ws ") {
			t.Errorf("wsrpc %s: %v, stdout %q", arg, err, out)
		}
	}
	for _, args := range [][]string{nil, {"bogus"}} {
		err := exec.Command(bin, args...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("wsrpc %q: %v, want exit status 2", args, err)
		}
	}
}

// TestWSSecondInterrupt runs the built command against a server that never
// answers the close frame: the first SIGINT starts the closing handshake
// (which would wait for the server up to its timeout), the second ends the
// process at once.
func TestWSSecondInterrupt(t *testing.T) {
	bin := buildCommand(t)
	up, closeSeen, release := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Raw: a close frame is not replied to.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Raw: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for {
			f, err := c.ReadFrame(ctx, nil)
			if err != nil {
				return
			}
			switch f.Opcode {
			case websocket.OpText:
				up <- struct{}{}
			case websocket.OpClose:
				closeSeen <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
				return
			}
		}
	}))
	defer srv.Close()

	cmd := exec.Command(bin, "ws", "ws"+strings.TrimPrefix(srv.URL, "http"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill() // only if a check below failed first

	if _, err := stdin.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case err := <-exited:
			t.Fatalf("exited (%v) before %s", err, what)
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s", what)
		}
	}
	wait(up, "message")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	wait(closeSeen, "close frame after the first interrupt")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// The unanswered handshake would hold the process for the close
	// timeout (websocket.DefaultCloseTimeout); well before that it must be
	// gone, ended by the signal.
	select {
	case err := <-exited:
		if cmd.ProcessState.Success() {
			t.Fatalf("exit %v, want the end of an interrupted process", err)
		}
	case <-time.After(websocket.DefaultCloseTimeout / 2):
		t.Fatal("still running after the second interrupt")
	}
}
