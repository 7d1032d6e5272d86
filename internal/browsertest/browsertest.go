// Package browsertest starts Debian's headless Chromium for tests through
// github.com/chromedp/chromedp.
//
// Browser tests never skip: when Chromium is missing the test fails with
// a message saying how to install it (CI runs scripts/tools.sh, whose
// ensure_chromium installs Debian's chromium package).
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds everything a test does with the browser returned
// by New, startup included.
const DefaultTimeout = 60 * time.Second

// ExecPath returns the Chromium binary to use: $WSRPC_CHROMIUM when set,
// else chromium (or chromium-browser) from $PATH, else /usr/bin/chromium.
// It returns "" when none exists.
func ExecPath() string {
	if p := os.Getenv("WSRPC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// New starts a fresh headless Chromium (its own temporary profile, no
// network features of its own: no QUIC, sync, component updates or
// background networking) and returns a chromedp context for one tab,
// ready for chromedp.Run. The browser is started before New returns; it
// is shut down when the test ends. The context expires after
// DefaultTimeout. If the test fails, the browser's output and the page's
// console messages are logged.
//
// Concurrency: the context may be used by one chromedp.Run at a time,
// as chromedp requires; call New again for another browser.
func New(t testing.TB) context.Context {
	t.Helper()
	path := ExecPath()
	if path == "" {
		t.Fatal("browsertest: chromium not found: install Debian's chromium (apt-get install chromium, " +
			"or source scripts/tools.sh && ensure_chromium), or set WSRPC_CHROMIUM to its path")
	}
	var out syncBuffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&out),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), DefaultTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	var console syncBuffer
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf), chromedp.WithErrorf(console.Printf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
		if t.Failed() {
			if s := out.String(); s != "" {
				t.Logf("chromium output:\n%s", s)
			}
			if s := console.String(); s != "" {
				t.Logf("chromedp errors:\n%s", s)
			}
		}
	})
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("browsertest: start %s: %v\n%s", path, err, out.String())
	}
	return tabCtx
}

// syncBuffer is a bytes.Buffer safe for the browser's output goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(&b.buf, format+"\n", args...)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
