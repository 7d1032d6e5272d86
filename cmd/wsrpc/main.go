// Command wsrpc is a command-line client for WebSocket and Server-Sent
// Events endpoints, in the spirit of websocat and wscat.
//
//	wsrpc ws  [flags] URL   read stdin lines as text messages, print every message received
//	wsrpc sse [flags] URL   print events as they arrive
//
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/httpfield"
	"github.com/wsrpc/wsrpc/internal/peertext"
)

// command is one subcommand: run gets a context cancelled on SIGINT or
// SIGTERM, the arguments after its name and the standard streams, and
// returns the process exit status.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// insecureUsage is the --insecure flag's help, for ws and sse alike.
const insecureUsage = "skip TLS certificate verification (like curl -k): for testing only, since anyone on the path can then read and change the traffic"

// headerFlag collects repeated -H "Name: value" flags.
type headerFlag []string

func (h *headerFlag) String() string { return strings.Join(*h, ", ") }

// Set refuses a header no request can carry, so that it is a usage error:
// net/http refuses such a request before sending it (which the sse
// client would retry for ever), and websocket.Dial refuses it too.
func (h *headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	if !httpfield.IsToken(name) {
		return fmt.Errorf("header %q: the name must be a token: letters, digits and !#$%%&'*+-.^_`|~ (RFC 9110 §5.1)", v)
	}
	if !httpfield.ValidValue(value) {
		return fmt.Errorf("header %s: the value has a control character (RFC 9110 §5.5)", name)
	}
	*h = append(*h, v)
	return nil
}

// header turns the collected flags into an http.Header.
func (h headerFlag) header() http.Header {
	out := http.Header{}
	for _, kv := range h {
		name, value, _ := strings.Cut(kv, ":")
		out.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return out
}

// parseURLAndFlags parses args, whose flags may come before or after the
// one URL, which must have a host and one of schemes. When ok is false the
// command should exit with code (0 for -h, 2 for a usage error, which has
// been reported on fs's output).
func parseURLAndFlags(fs *flag.FlagSet, args []string, schemes ...string) (rawURL string, code int, ok bool) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", 0, false
			}
			return "", 2, false
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fs.Usage()
		return "", 2, false
	}
	rawURL = positional[0]
	// Checked here, so that a URL no attempt can use is a usage error
	// rather than a reconnection loop.
	u, err := url.Parse(rawURL)
	if err != nil {
		fmt.Fprintf(fs.Output(), "wsrpc %s: %v\n", fs.Name(), err)
		return "", 2, false
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) || u.Hostname() == "" { // ":8080" alone is no host
		fmt.Fprintf(fs.Output(), "wsrpc %s: URL %q: want %s:// and a host\n", fs.Name(), rawURL, strings.Join(schemes, "://, "))
		return "", 2, false
	}
	return rawURL, 0, true
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wsrpc <command> [flags] URL")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-4s %s\n", name, commands[name].summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout) // asked for: not a usage error
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		usage(os.Stderr)
		os.Exit(2)
	}
	// The first interrupt cancels ctx: the command closes cleanly, which
	// waits for the server's reply (up to the closing handshake's timeout).
	// The signals' default action is back before ctx is cancelled, so a
	// second interrupt, however soon, ends the process at once.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sig
		signal.Stop(sig)
		cancel()
	}()
	os.Exit(c.run(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
}

// diagnostics wraps a command's stderr so that what a server sent —
// a close reason, a wsrpc.error message, an HTTP error body quoted in a
// handshake error — cannot drive the terminal: control characters other
// than newline and tab (an ESC starts a terminal escape sequence that can
// retitle the window, move the cursor or rewrite earlier lines), C1
// controls, bidirectional formatting characters (which reorder what is
// shown), U+2028/U+2029 (peertext.Hidden's set) and bytes that are not
// UTF-8 are written as \x.. or \u.... escapes. What a command
// prints on stdout is the data asked for and is written as received.
func diagnostics(w io.Writer) io.Writer { return &escapingWriter{w: w} }

type escapingWriter struct{ w io.Writer }

func (e *escapingWriter) Write(p []byte) (int, error) {
	var out []byte
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		esc := ""
		switch {
		case r == utf8.RuneError && size <= 1:
			esc = fmt.Sprintf(`\x%02x`, p[i])
		case r != '\n' && r != '\t' && peertext.Hidden(r):
			esc = fmt.Sprintf(`\u%04x`, r)
		}
		if esc != "" && out == nil {
			out = append(make([]byte, 0, len(p)+16), p[:i]...)
		}
		switch {
		case esc != "":
			out = append(out, esc...)
		case out != nil:
			out = append(out, p[i:i+size]...)
		}
		i += size
	}
	if out == nil {
		return e.w.Write(p)
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
