package browsertest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc/internal/browsertest"
)

func TestNew(t *testing.T) {
	ctx := browsertest.New(t)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[int](`6 * 7`))
	if err != nil {
		t.Fatal(err)
	}
	if got != 42 {
		t.Fatalf("6 * 7 = %d in the browser", got)
	}
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("user agent: %s", ua)
}

// TestConsoleLoggedOnFailure: when a test fails, New's cleanup logs the
// page's console, as its doc says: console API calls and uncaught
// exceptions, the last ConsoleLines lines. Before, only chromedp's own
// errors were kept. The test's failure is a recorder's, so this test
// passes.
func TestConsoleLoggedOnFailure(t *testing.T) {
	rec := &recorder{TB: t}
	ctx := browsertest.New(rec)
	// Each event reaches New's listener before the reply to the command
	// that follows it: the second evaluation returns after the timer
	// that throws has run.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`
		for (let i = 0; i < 300; i++) console.log("line " + i);
		console.error("console-marker", 42, {a: 1});
		setTimeout(() => { throw new Error("exception-marker"); });
		true`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise((done) => setTimeout(() => done(true), 20))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatal(err)
	}
	rec.failed = true
	rec.cleanup()
	logged := rec.String()
	for _, want := range []string{"error: console-marker 42 Object", "exception: Uncaught Error: exception-marker", "log: line 299\n", "earlier lines dropped"} {
		if !strings.Contains(logged, want) {
			t.Errorf("a failing test's log has no %q", want)
		}
	}
	if strings.Contains(logged, "log: line 0\n") {
		t.Errorf("a failing test's log has the page's first console line of 300: not bounded")
	}
	if t.Failed() {
		t.Logf("logged:\n%s", logged)
	}
}

// recorder is a testing.TB that keeps what is logged and the cleanups,
// and reports the failure it is told, so that New's failure path can be
// watched from a test that passes.
//
// Concurrency: Logf from any goroutine (chromedp logs from its own); mu
// guards log.
type recorder struct {
	testing.TB
	failed   bool
	cleanups []func()

	mu  sync.Mutex
	log strings.Builder
}

func (r *recorder) Helper()          {}
func (r *recorder) Failed() bool     { return r.failed }
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.log, format+"\n", args...)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// cleanup runs the cleanups, the last registered first, as testing does.
func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
