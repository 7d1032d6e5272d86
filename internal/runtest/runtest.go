// Package runtest starts an example's run function the way its main does,
// on a free port, for the example's tests: run prints "listening on URL"
// when it serves, and returns when its context is cancelled.
package runtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a run function started by Start.
//
// Concurrency: Cancel, Wait and Stop may be called from any goroutine.
type Server struct {
	// URL is what run printed after "listening on ".
	URL    string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start runs run(ctx, out) in a goroutine and reads the first line it
// writes to out, which must match listening; its first submatch is the
// URL. The rest of out is discarded, so run never blocks on it. The test's
// cleanup stops the server and reports an error run returned.
func Start(t testing.TB, listening *regexp.Regexp, run func(ctx context.Context, out io.Writer) error) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		s.err = run(ctx, pw)
		pw.CloseWithError(s.err)
		close(s.done)
	}()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	m := listening.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("listening line %q, want one matching %s", line, listening)
	}
	s.URL = m[1]
	return s
}

// Cancel cancels run's context.
func (s *Server) Cancel() { s.cancel() }

// Wait waits for run to return (bounded: a hang becomes an error) and
// returns its result.
func (s *Server) Wait() error {
	select {
	case <-s.done:
		return s.err
	case <-time.After(15 * time.Second):
		return errors.New("run did not return after cancel")
	}
}

// Stop cancels run and waits for its result.
func (s *Server) Stop() error {
	s.Cancel()
	return s.Wait()
}

// Buffer keeps what a server logs, for a test to read while the server's
// goroutines may still write.
//
// Concurrency: Write and String from any goroutine; mu guards b.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
