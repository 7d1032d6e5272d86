package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/internal/peertext"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

func init() {
	register("ws", command{
		summary: "send stdin lines as text messages, print every message received",
		run:     runWS,
	})
}

const wsUsage = `usage: wsrpc ws [flags] URL

Opens a WebSocket to URL (ws://, wss://). Each line read from stdin is sent
as one text message (without its line ending); each message received is
printed on its own line: text as is, binary encoded as --binary says
(base64 by default, so the output stays one line per message).

When stdin ends, the client closes with 1000 and waits for the server's
reply. With a wsrpc subprotocol negotiated (--subprotocol wsrpc.json,
wsrpc.proto or wsrpc.msgpack) the session is a wsrpc call instead: the
end of stdin sends the end-of-stream marker (an empty text message, as
an empty line does) and the client waits for the server to end the call,
printing its responses, as a client-streaming or server-streaming method
needs (closing would cancel the call).

The close code and reason are printed on stderr, the code with its
name: a wsrpc handler's error code for 4000+N (4009 (failed_precondition)),
else the RFC 6455 one (1000 (normal closure), 4100 (status 4100)). A
refused handshake is printed as
  wsrpc ws: [<code>: ]websocket: server answered <status>: <message>: …
where <code> is the response's Wsrpc-Code (a wsrpc server's refusal)
and <message> the start of its body.
Control characters in what the server wrote are escaped on stderr.

A wss:// server's certificate is verified against the system's CAs
(SSL_CERT_FILE and SSL_CERT_DIR select others); --insecure skips that,
for testing only. Credentials in the URL (wss://user:pass@host/) are
sent as Basic authorization unless -H gives an Authorization. A -H that
no handshake can carry is a usage error: a name that is not a token, a
control character in the value, or one of the handshake's own headers
(Sec-WebSocket-Protocol: use --subprotocol; Sec-WebSocket-Extensions:
use --deflate). So is a --subprotocol that is not a token or is given
twice (RFC 6455 §4.1).

Exit status: 0 on a normal close (ours after stdin ended, or the server's
with 1000, 1001 or no status code, printed as 1005: what close() with no
argument sends), 1 on any other close code, a lost connection or a
failed handshake, 2 on a usage error, 130 when interrupted (the client
then closes with 1001 and waits for the server's reply; a second interrupt
ends it at once).

Flags:
`

// refusalCode is the Wsrpc-Code of a refused handshake's response, "" for
// none (no response, or a server that is not wsrpc's).
func refusalCode(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return resp.Header.Get(wsrpc.CodeHeader)
}

// wsCloseWait bounds how long the client waits for the reader to see the
// end of the connection once the closing handshake is done or failed.
const wsCloseWait = 10 * time.Second

// stringsFlag collects a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ", ") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// runWS is the ws subcommand; it returns the exit status. stdin is read on
// a goroutine that may outlive the call (a blocked read cannot be
// interrupted); stdout is written only before runWS returns.
func runWS(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	stderr = diagnostics(stderr)
	fs := flag.NewFlagSet("ws", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, wsUsage)
		fs.PrintDefaults()
	}
	var headers headerFlag
	var protocols stringsFlag
	fs.Var(&headers, "H", "request header `\"Name: value\"` (repeatable)")
	fs.Var(&protocols, "subprotocol", "offer subprotocol `NAME` (repeatable; most preferred first)")
	binaryFormat := fs.String("binary", "base64", "print binary messages as `FORMAT`: base64, hex or raw (raw bytes, no encoding)")
	deflate := fs.Bool("deflate", false, "offer permessage-deflate (RFC 7692) compression")
	maxSize := fs.Int64("max-size", 64<<20, "largest message to receive, and longest stdin line, in `BYTES`")
	insecure := fs.Bool("insecure", false, insecureUsage)

	url, code, ok := parseURLAndFlags(fs, args, "ws", "wss", "http", "https")
	if !ok {
		return code
	}
	var encode func([]byte) []byte
	switch *binaryFormat {
	case "base64":
		encode = func(p []byte) []byte { return base64.StdEncoding.AppendEncode(nil, p) }
	case "hex":
		encode = func(p []byte) []byte { return hex.AppendEncode(nil, p) }
	case "raw":
		encode = func(p []byte) []byte { return p }
	default:
		fmt.Fprintf(stderr, "wsrpc ws: --binary must be base64, hex or raw, not %q\n", *binaryFormat)
		return 2
	}
	if *maxSize <= 0 {
		fmt.Fprintln(stderr, "wsrpc ws: --max-size must be positive")
		return 2
	}
	header := headers.header()
	// websocket.Dial refuses the handshake's own headers (RFC 6455 §4.1):
	// a usage error here, pointing at the flag that sends them.
	for name := range header {
		switch name { // canonical: header() adds with Add
		case "Sec-Websocket-Protocol":
			fmt.Fprintln(stderr, "wsrpc ws: -H Sec-WebSocket-Protocol: offer subprotocols with --subprotocol")
			return 2
		case "Sec-Websocket-Extensions":
			fmt.Fprintln(stderr, "wsrpc ws: -H Sec-WebSocket-Extensions: offer compression with --deflate")
			return 2
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version":
			fmt.Fprintf(stderr, "wsrpc ws: -H %s: the handshake sets it\n", strings.Replace(name, "Websocket", "WebSocket", 1))
			return 2
		}
	}

	// Both goroutines and this one report on stderr.
	errOut := &lockedWriter{w: stderr}
	opts := &websocket.DialOptions{
		Header:         header,
		Subprotocols:   protocols,
		MaxMessageSize: *maxSize,
	}
	if *insecure {
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	if *deflate {
		opts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if ctx.Err() != nil {
			return 130
		}
		// A wsrpc server's refusal names its code (Wsrpc-Code), which
		// leads, as on wsrpc sse's line for the same refusal.
		if code := refusalCode(resp); code != "" {
			fmt.Fprintf(errOut, "wsrpc ws: %s: %v\n", code, err)
		} else {
			fmt.Fprintf(errOut, "wsrpc ws: %v\n", err)
		}
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if errors.Is(err, websocket.ErrInvalidDial) {
			// Nothing was sent and no attempt can succeed: the flags are
			// wrong (a --subprotocol that is not a token, or given twice).
			return 2
		}
		return 1
	}
	defer c.CloseNow()
	for _, e := range c.Extensions() {
		fmt.Fprintf(errOut, "wsrpc ws: extension %s\n", websocket.FormatExtension(e.Name, e.Params))
	}
	if p := c.Subprotocol(); p != "" {
		fmt.Fprintf(errOut, "wsrpc ws: subprotocol %s\n", p)
	}
	// A wsrpc codec's subprotocol (wsrpc.json, wsrpc.proto,
	// wsrpc.msgpack) makes the session a wsrpc call: see the end of stdin
	// below.
	wsrpcCall := strings.HasPrefix(c.Subprotocol(), codec.SubprotocolPrefix)

	// Reads use their own context: cancelling a read drops the connection
	// without the closing handshake, and an interrupt should close cleanly.
	bg := context.Background()
	readDone := make(chan error, 1)
	go func() {
		out := bufio.NewWriter(stdout)
		var buf []byte
		for {
			typ, p, err := c.ReadAppend(bg, buf[:0])
			if err != nil {
				out.Flush()
				readDone <- err
				return
			}
			buf = p
			if typ == websocket.MessageBinary {
				p = encode(p)
			}
			out.Write(p)
			out.WriteByte('\n')
			out.Flush() // interactive: each message as it arrives
		}
	}()

	stdinDone := make(chan error, 1)
	// On 32-bit systems a line cannot be longer than MaxInt bytes anyway.
	maxLine := int(min(*maxSize, math.MaxInt))
	go func() { stdinDone <- sendLines(c, stdin, maxLine, errOut) }()

	select {
	case err := <-readDone:
		// The server closed first, or the connection broke.
		return reportEnd(errOut, err, false)
	case err := <-stdinDone:
		if errors.Is(err, websocket.ErrClosed) || websocket.CloseStatus(err) >= 0 {
			// A line could not be sent because the connection was
			// closing or closed: the server closed (or it broke) while
			// stdin had lines left. The reader sees that end too, and
			// which of the two is noticed first is chance, so the
			// reader's account decides, as when stdin is idle.
			return reportEnd(errOut, awaitReader(c, readDone), false)
		}
		if err != nil {
			fmt.Fprintf(errOut, "wsrpc ws: %v\n", err)
		}
		if err == nil && wsrpcCall {
			// A wsrpc call (docs/protocol.md §3.4): the end of stdin is
			// the end of the client's half, the end-of-stream marker,
			// and the call ends when the server closes, after its
			// responses. Closing here instead cancelled it: a
			// client-streaming handler's Receive returned canceled, a
			// server stream's responses were lost, and the exit status
			// was 0 all the same.
			if err := c.Write(context.Background(), websocket.MessageText, nil); err != nil {
				return reportEnd(errOut, awaitReader(c, readDone), false)
			}
			select {
			case err := <-readDone:
				return reportEnd(errOut, err, false)
			case <-ctx.Done():
				closeAndWait(c, websocket.StatusGoingAway, readDone, errOut)
				return 130
			}
		}
		// A ping round trip first: the pong comes after the server's replies
		// to every line sent, and is noticed by the reader's next Read, so
		// by the time Ping returns the reader has printed them all. Close
		// alone could drop a reply arriving while the reader is between two
		// reads (Close then reads, and discards, until the close frame).
		pctx, cancel := context.WithTimeout(ctx, wsCloseWait)
		_ = c.Ping(pctx) // best effort: a failure shows in what Close reports
		cancel()
		if ctx.Err() != nil { // interrupted while waiting for the pong
			closeAndWait(c, websocket.StatusGoingAway, readDone, errOut)
			return 130
		}
		status := closeAndWait(c, websocket.StatusNormalClosure, readDone, errOut)
		if err != nil && status == 0 {
			status = 1
		}
		return status
	case <-ctx.Done():
		closeAndWait(c, websocket.StatusGoingAway, readDone, errOut)
		return 130
	}
}

// sendLines sends each line of stdin as a text message until EOF (nil) or
// an error. Lines that are not valid UTF-8 cannot be text messages (the
// server would fail the connection with 1007): they are reported and
// skipped.
func sendLines(c *websocket.Conn, stdin io.Reader, maxLine int, errOut io.Writer) error {
	sc := bufio.NewScanner(stdin)
	// The scanner's limit is the larger of its buffer's capacity and max:
	// a buffer no larger than the limit, and the limit (line + "\r\n")
	// without overflowing.
	limit := maxLine
	if limit <= math.MaxInt-2 {
		limit += 2
	}
	sc.Buffer(make([]byte, 0, min(4<<10, limit)), limit)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if len(line) > maxLine {
			// The scanner's limit leaves room for "\r\n", so a line
			// up to two bytes longer gets here.
			return fmt.Errorf("stdin line %d is longer than --max-size (%d bytes)", n, maxLine)
		}
		if !utf8.ValidString(line) {
			fmt.Fprintf(errOut, "wsrpc ws: stdin line %d is not valid UTF-8; not sent\n", n)
			continue
		}
		if err := c.Write(context.Background(), websocket.MessageText, []byte(line)); err != nil {
			return fmt.Errorf("sending stdin line %d: %w", n, err)
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("stdin line %d is longer than --max-size (%d bytes)", n, maxLine)
	} else if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	return nil
}

// closeAndWait runs our closing handshake and waits (bounded) for the
// reader to finish printing. It returns the exit status: 0 when the server
// answered our close.
func closeAndWait(c *websocket.Conn, code websocket.StatusCode, readDone <-chan error, errOut io.Writer) int {
	cerr := c.Close(code, "")
	rerr := awaitReader(c, readDone)
	if cerr != nil {
		if errors.Is(cerr, websocket.ErrClosed) {
			// The connection ended before our close went out (the server
			// closed at the same moment, or it broke): report that instead.
			return reportEnd(errOut, rerr, false)
		}
		fmt.Fprintf(errOut, "wsrpc ws: closing: %v\n", cerr)
		return 1
	}
	return reportEnd(errOut, rerr, true)
}

// awaitReader waits, up to wsCloseWait, for the reader to see the end of
// the connection (then drops it), and returns the reader's error.
func awaitReader(c *websocket.Conn, readDone <-chan error) error {
	select {
	case err := <-readDone:
		return err
	case <-time.After(wsCloseWait):
		c.CloseNow()
		return <-readDone
	}
}

// reportEnd prints how the connection ended and returns the exit status.
// ours says whether we started the closing handshake, in which case any
// answer from the server completes it normally.
func reportEnd(errOut io.Writer, err error, ours bool) int {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		fmt.Fprintf(errOut, "wsrpc ws: connection lost: %v\n", err)
		return 1
	}
	who := "closed by server"
	if ours {
		who = "closed"
	}
	// On one line (peertext's rule): stderr's escaping lets line breaks
	// through, with which a reason would forge lines of its own.
	if reason := peertext.OneLine(ce.Reason); reason != "" {
		fmt.Fprintf(errOut, "wsrpc ws: %s: %d (%s): %s\n", who, int(ce.Code), closeCodeName(ce.Code), reason)
	} else {
		fmt.Fprintf(errOut, "wsrpc ws: %s: %d (%s)\n", who, int(ce.Code), closeCodeName(ce.Code))
	}
	switch {
	case ours, ce.Code == websocket.StatusNormalClosure, ce.Code == websocket.StatusGoingAway,
		// A close frame without a body (RFC 6455 §7.1.5, §7.4.1: read as
		// 1005) completes the closing handshake as cleanly as 1000: it
		// is what a browser's or Node ws's close() with no argument sends.
		ce.Code == websocket.StatusNoStatusRcvd:
		return 0
	}
	return 1
}

// closeCodeName names a close code: for 4000+N where N is a wsrpc Code
// (the application range, RFC 6455 §7.4.2, as wsrpc.Code.CloseCode maps
// it) the code's name, so 4009 is "failed_precondition"; otherwise the
// websocket package's ("normal closure", "status 4100").
func closeCodeName(sc websocket.StatusCode) string {
	// CodeFromCloseCode maps other codes too (1011 to internal, 4100 to
	// unknown): only a code that maps back to sc is wsrpc's.
	if c := wsrpc.CodeFromCloseCode(sc); sc >= wsrpc.CloseCodeBase && c.CloseCode() == sc {
		return c.String()
	}
	return sc.String()
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
