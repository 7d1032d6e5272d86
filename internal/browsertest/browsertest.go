// Package browsertest starts Debian's headless Chromium for tests through
// github.com/chromedp/chromedp.
//
// Browser tests never skip: when Chromium is missing the test fails with
// a message saying how to install it (CI runs scripts/tools.sh, whose
// ensure_chromium installs Debian's chromium package).
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc/internal/runtest"
)

// DefaultTimeout bounds everything a test does with the browser returned
// by New, startup included.
const DefaultTimeout = 60 * time.Second

// ConsoleLines is how many of the last lines of the page's console New
// keeps for a failing test's log: enough for what led to a failure, while
// a page that logs in a loop cannot flood the log.
const ConsoleLines = 200

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
// DefaultTimeout. If the test fails, the browser's output and the tab's
// console are logged: the page's console API calls (console.log, .error
// …) and uncaught exceptions, as they arrive, with chromedp's own errors;
// the last ConsoleLines lines of them.
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
	// Chromium now and then exits before it has started, under load (its
	// DevTools line never printed: "chrome failed to start", once in
	// several CI runs with other browser tests beside it). That says
	// nothing of the page under test, so a start that fails so is made
	// again, twice at most, in a fresh profile.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var tab context.Context
		if tab, err = start(t, path); err == nil {
			return tab
		}
		if !strings.Contains(err.Error(), "chrome failed to start") {
			break
		}
		t.Logf("browsertest: attempt %d: %v", attempt, err)
	}
	t.Fatalf("browsertest: start %s: %v", path, err)
	return nil
}

// start starts the browser at path and a tab in it (see New). A browser
// that failed to start is shut down, and its error has its output.
func start(t testing.TB, path string) (context.Context, error) {
	var out runtest.Buffer
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
	console := &lineLog{}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf), chromedp.WithErrorf(func(format string, args ...any) {
		console.add("chromedp: " + fmt.Sprintf(format, args...))
	}))
	stop := func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
	}
	// Listen starts the browser and the tab, and calls the function in
	// the tab's reader loop: a message the page logs is kept before the
	// reply to the command that follows it is read.
	if err := chromedp.Listen(tabCtx, func(ev any) {
		if line, ok := consoleLine(ev); ok {
			console.add(line)
		}
	}); err != nil {
		stop()
		return nil, fmt.Errorf("%w\n%s", err, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if s := out.String(); s != "" {
				t.Logf("chromium output:\n%s", s)
			}
			if s := console.String(); s != "" {
				t.Logf("console:\n%s", s)
			}
		}
	})
	return tabCtx, nil
}

// consoleLine is the console's line for a console API call or an
// uncaught exception (Chrome DevTools Protocol, Runtime domain), as
// DevTools shows it, roughly: the call's type and arguments, or the
// exception with its stack.
func consoleLine(ev any) (string, bool) {
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		args := make([]string, len(e.Args))
		for i, a := range e.Args {
			args[i] = remoteText(a)
		}
		return string(e.Type) + ": " + strings.Join(args, " "), true
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		if d == nil {
			return "", false
		}
		line := "exception: " + d.Text
		if d.Exception != nil {
			line += " " + remoteText(d.Exception) // an Error's description has its stack
		} else if d.URL != "" {
			line += fmt.Sprintf(" (%s:%d:%d)", d.URL, d.LineNumber+1, d.ColumnNumber+1)
		}
		return line, true
	}
	return "", false
}

// remoteText is a console argument as text: a string as it is, another
// value by its description or JSON.
func remoteText(o *runtime.RemoteObject) string {
	var s string
	switch {
	case o.Type == runtime.RemoteObjectTypeString && json.Unmarshal(o.Value, &s) == nil:
		return s
	case o.UnserializableValue != "":
		return string(o.UnserializableValue)
	case o.Description != "":
		return o.Description
	case len(o.Value) > 0:
		return string(o.Value)
	}
	return string(o.Type)
}

// lineLog keeps the last ConsoleLines lines added to it.
//
// Concurrency: safe for concurrent use (the tab's reader loop adds,
// chromedp's error callback too, the test's cleanup reads); mu guards
// every field.
type lineLog struct {
	mu      sync.Mutex
	lines   []string // circular once ConsoleLines long: the oldest at next
	next    int
	dropped int
}

func (l *lineLog) add(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.SplitSeq(text, "\n") {
		if len(l.lines) < ConsoleLines {
			l.lines = append(l.lines, line)
			continue
		}
		l.lines[l.next] = line
		l.next = (l.next + 1) % ConsoleLines
		l.dropped++
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	if l.dropped > 0 {
		fmt.Fprintf(&b, "(%d earlier lines dropped)\n", l.dropped)
	}
	for i := range l.lines {
		b.WriteString(l.lines[(l.next+i)%len(l.lines)])
		b.WriteByte('\n')
	}
	return b.String()
}
