package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// wsServer runs handle on each accepted WebSocket (offering the "chat"
// subprotocol) and returns the ws:// URL.
func wsServer(t *testing.T, handle func(ctx context.Context, c *websocket.Conn, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/forbidden" {
			http.Error(w, "go away", http.StatusForbidden)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols: []string{"chat"},
			Extensions:   websocket.MustExtensionSet(websocket.PerMessageDeflate(nil)),
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		handle(ctx, c, r)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// echoHandler echoes every message until the connection ends.
func echoHandler(ctx context.Context, c *websocket.Conn, _ *http.Request) {
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return
		}
	}
}

// runWSCmd runs the ws command with stdin, bounded by a deadline.
func runWSCmd(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut runtest.Buffer
	done := make(chan int, 1)
	go func() { done <- runWS(ctx, args, stdin, &out, &errOut) }()
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("wsrpc ws did not return; stderr: %s", errOut.String())
	}
	return code, out.String(), errOut.String()
}

// TestWSEchoUntilStdinEnds: every stdin line (CRLF or LF, the last one
// without a newline, an empty one) goes out as a text message; every reply
// is printed on its own line, in order; at the end of stdin the client
// closes with 1000 and exits 0 once the server answered.
func TestWSEchoUntilStdinEnds(t *testing.T) {
	url := wsServer(t, echoHandler)
	stdin := "hello\r\nwörld ✓\n\n" + strings.Repeat("x", 100_000) + "\nlast"
	code, stdout, stderr := runWSCmd(t, strings.NewReader(stdin), url)
	if code != 0 {
		t.Errorf("exit %d, want 0; stderr: %s", code, stderr)
	}
	want := "hello\nwörld ✓\n\n" + strings.Repeat("x", 100_000) + "\nlast\n"
	if stdout != want {
		t.Errorf("stdout %.80q…, want %.80q…", stdout, want)
	}
	if !strings.Contains(stderr, "closed: 1000 (normal closure)") {
		t.Errorf("stderr %q: want the close code", stderr)
	}
}

// TestWSManyLines: many lines sent back to back are all printed before the
// client closes (the close waits for replies already on their way).
func TestWSManyLines(t *testing.T) {
	url := wsServer(t, echoHandler)
	var in, want strings.Builder
	for i := range 500 {
		line := strings.Repeat(string(rune('a'+i%26)), i%40)
		in.WriteString(line + "\n")
		want.WriteString(line + "\n")
	}
	code, stdout, stderr := runWSCmd(t, strings.NewReader(in.String()), url)
	if code != 0 || stdout != want.String() {
		t.Errorf("exit %d, %d bytes of output, want 0 and %d bytes; stderr: %s", code, len(stdout), want.Len(), stderr)
	}
}

// TestWSHeadersAndSubprotocol: -H headers reach the server (flags after the
// URL too), --subprotocol offers are sent in order and the chosen one is
// reported.
func TestWSHeadersAndSubprotocol(t *testing.T) {
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		msg := r.Header.Get("Authorization") + "|" + r.Header.Get("X-Trace") + "|" +
			strings.Join(r.Header.Values("Sec-WebSocket-Protocol"), ",") + "|" + c.Subprotocol()
		c.Write(ctx, websocket.MessageText, []byte(msg))
		c.Close(websocket.StatusNormalClosure, "")
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	code, stdout, stderr := runWSCmd(t, pr, "-H", "Authorization: Bearer t0k", url,
		"--subprotocol", "wsrpc.json", "--subprotocol=chat", "-H", "X-Trace:abc")
	if code != 0 {
		t.Errorf("exit %d; stderr: %s", code, stderr)
	}
	if want := "Bearer t0k|abc|wsrpc.json, chat|chat\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr, "subprotocol chat") || !strings.Contains(stderr, "closed by server: 1000") {
		t.Errorf("stderr %q: want the subprotocol and the close", stderr)
	}
}

// TestWSDeflate: --deflate offers permessage-deflate, the negotiated
// extension is reported on stderr, and compressed echoes print intact;
// without the flag nothing is offered.
func TestWSDeflate(t *testing.T) {
	url := wsServer(t, echoHandler)
	long := strings.Repeat("squeeze me ", 5000)
	for _, offer := range []bool{true, false} {
		args := []string{url}
		if offer {
			args = append([]string{"--deflate"}, args...)
		}
		code, stdout, stderr := runWSCmd(t, strings.NewReader("small\n"+long+"\n"), args...)
		if code != 0 {
			t.Fatalf("deflate=%v: exit %d; stderr: %s", offer, code, stderr)
		}
		if stdout != "small\n"+long+"\n" {
			t.Fatalf("deflate=%v: stdout differs (%d bytes)", offer, len(stdout))
		}
		if got := strings.Contains(stderr, "extension permessage-deflate"); got != offer {
			t.Fatalf("deflate=%v: stderr %q", offer, stderr)
		}
	}
}

// TestWSBinary: binary messages print as base64 by default, or hex or raw.
func TestWSBinary(t *testing.T) {
	data := []byte{0, 1, 2, 0xff, '\n'}
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		c.Write(ctx, websocket.MessageBinary, data)
		c.Close(websocket.StatusGoingAway, "restart")
	})
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "AAEC/wo=\n"},
		{[]string{"--binary", "hex"}, "000102ff0a\n"},
		{[]string{"-binary=raw"}, string(data) + "\n"},
	} {
		pr, pw := io.Pipe()
		code, stdout, stderr := runWSCmd(t, pr, append(tc.flags, url)...)
		pw.Close()
		if code != 0 || stdout != tc.want {
			t.Errorf("%v: exit %d stdout %q, want 0 and %q; stderr: %s", tc.flags, code, stdout, tc.want, stderr)
		}
		if !strings.Contains(stderr, "closed by server: 1001 (going away): restart") {
			t.Errorf("%v: stderr %q: want the close code and reason", tc.flags, stderr)
		}
	}
}

// TestWSExitStatus: the server's close code decides the exit status, and a
// connection lost without a close frame or a refused handshake is a
// failure.
func TestWSExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		path       string
		handle     func(ctx context.Context, c *websocket.Conn)
		code       int
		wantStderr string
	}{
		{"server closes 1000", "/", func(ctx context.Context, c *websocket.Conn) {
			c.Close(websocket.StatusNormalClosure, "bye")
		}, 0, "closed by server: 1000 (normal closure): bye"},
		{"server closes 4001", "/", func(ctx context.Context, c *websocket.Conn) {
			c.Close(4001, "kicked")
		}, 1, "closed by server: 4001 (canceled): kicked"},
		{"server closes 4100", "/", func(ctx context.Context, c *websocket.Conn) {
			c.Close(4100, "kicked")
		}, 1, "closed by server: 4100 (status 4100): kicked"},
		{"server closes 1011", "/", func(ctx context.Context, c *websocket.Conn) {
			c.Close(websocket.StatusInternalError, "")
		}, 1, "closed by server: 1011 (internal error)"},
		{"connection dropped", "/", func(ctx context.Context, c *websocket.Conn) {
			c.Write(ctx, websocket.MessageText, []byte("one"))
			c.CloseNow()
		}, 1, "connection lost"},
		{"handshake refused", "/forbidden", nil, 1, "403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) { tc.handle(ctx, c) })
			pr, pw := io.Pipe()
			defer pw.Close()
			code, _, stderr := runWSCmd(t, pr, url+tc.path)
			if code != tc.code || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, stderr, tc.code, tc.wantStderr)
			}
		})
	}
}

// TestWSServerCloseWithoutCode guards that a server closing with an
// empty close frame (read as 1005, RFC 6455 §7.1.5: what a browser's or
// Node ws's close() with no argument sends) is a normal end, exit 0, as
// 1000 and 1001 are; the client's reply completes the handshake with an
// empty close frame too (§5.5.1).
func TestWSServerCloseWithoutCode(t *testing.T) {
	reply := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Raw: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		if err := c.WriteFrame(ctx, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpClose}}); err != nil {
			t.Error(err)
			return
		}
		for {
			f, err := c.ReadFrame(ctx, nil)
			if err != nil {
				return
			}
			if f.Opcode == websocket.OpClose {
				reply <- f.Payload
				return
			}
		}
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	code, _, stderr := runWSCmd(t, pr, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if code != 0 || !strings.Contains(stderr, "closed by server: 1005") {
		t.Errorf("exit %d, stderr %q; want 0 and the 1005 reported", code, stderr)
	}
	select {
	case p := <-reply:
		if len(p) != 0 {
			t.Errorf("client replied with close payload %x, want none", p)
		}
	case <-time.After(10 * time.Second):
		t.Error("the server never got the client's close reply")
	}
}

// TestWSInterrupt: cancelling the context (SIGINT) closes with 1001 and
// exits 130.
func TestWSInterrupt(t *testing.T) {
	first := make(chan string, 1)
	closed := make(chan error, 1)
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		_, p, _ := c.Read(ctx)
		first <- string(p)
		_, _, err := c.Read(ctx)
		closed <- err
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	var out, errOut runtest.Buffer
	done := make(chan int, 1)
	go func() { done <- runWS(ctx, []string{url}, pr, &out, &errOut) }()
	if _, err := pw.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the server has the line, so the session is surely up.
	select {
	case p := <-first:
		if p != "hi" {
			t.Fatalf("server read %q, want hi", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server got no message")
	}
	cancel()
	select {
	case code := <-done:
		if code != 130 {
			t.Errorf("exit %d, want 130; stderr: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not return after cancel")
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("server saw %v, want close 1001", err)
	}
}

// TestWSUsage: bad invocations exit 2 with usage on stderr.
func TestWSUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"ws://a", "ws://b"},
		{"--binary", "octal", "ws://a"},
		{"--max-size", "0", "ws://a"},
		{"-H", "no colon", "ws://a"},
		{"--nope", "ws://a"},
		{"127.0.0.1:1/"},
		{"ftp://127.0.0.1:1/"},
		{"ws://[::1"},
		{"ws://:8080/"}, // a port alone: no host
	} {
		code, stdout, stderr := runWSCmd(t, strings.NewReader(""), args...)
		if code != 2 || stdout != "" || stderr == "" {
			t.Errorf("%q: exit %d stdout %q stderr %q, want 2 and a message", args, code, stdout, stderr)
		}
	}
	if code, _, stderr := runWSCmd(t, strings.NewReader(""), "-h"); code != 0 || !strings.Contains(stderr, "usage: wsrpc ws") {
		t.Errorf("-h: exit %d stderr %q", code, stderr)
	}
}

// TestWSMaxSizeStdinLine: --max-size bounds stdin lines too (a longer one
// ends the session with an error instead of being sent), and the largest
// value does not overflow the line limit.
func TestWSMaxSizeStdinLine(t *testing.T) {
	url, got := lengthServer(t, true)
	code, _, stderr := runWSCmd(t, strings.NewReader("short\n"+strings.Repeat("x", 1000)+"\n"), "--max-size", "10", url)
	if code != 1 || !strings.Contains(stderr, "stdin line 2 is longer than --max-size (10 bytes)") {
		t.Errorf("--max-size 10 and a 1000-byte line: exit %d stderr %q", code, stderr)
	}
	if n := <-got; n != 5 {
		t.Errorf("first message %d bytes, want 5", n)
	}
	select {
	case n := <-got:
		t.Errorf("a %d-byte message was sent past --max-size 10", n)
	default:
	}

	line := strings.Repeat("y", 100_000)
	code, stdout, stderr := runWSCmd(t, strings.NewReader(line+"\n"), "--max-size", "9223372036854775807", url)
	if code != 0 || stdout != line+"\n" {
		t.Errorf("--max-size MaxInt64 and a 100 kB line: exit %d, %d bytes out, stderr %q; want 0 and the echo", code, len(stdout), stderr)
	}
}

// TestWSInterruptDuringFinalPing: once stdin has ended the client pings
// before closing; an interrupt while it waits for the pong (the server
// reads nothing) ends it as any interrupt does: a 1001 close, whose
// handshake is bounded by the close timeout, and exit 130 — not a 1000
// close reported as a failure.
func TestWSInterruptDuringFinalPing(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		select { // never reads: no pong, no reply to a close
		case <-release:
		case <-ctx.Done():
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut runtest.Buffer
	done := make(chan int, 1)
	go func() { done <- runWS(ctx, []string{url}, strings.NewReader(""), &out, &errOut) }()
	time.Sleep(200 * time.Millisecond) // stdin is empty: runWS is in its final Ping
	cancel()
	select {
	case code := <-done:
		if code != 130 {
			t.Errorf("interrupted during the final ping: exit %d, want 130; stderr %q", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not return after the interrupt")
	}
}

// TestWSHeaderUsageErrors guards that a -H no handshake can carry is a
// usage error before anything is dialed: a name that is not a token or a
// value with a control character (RFC 9110 §5.1, §5.5), and the
// handshake's own headers (RFC 6455 §4.1), which websocket.Dial refuses
// rather than drop in silence, pointing at the flag that sends them.
func TestWSHeaderUsageErrors(t *testing.T) {
	var hits atomic.Int64
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		hits.Add(1)
		c.Close(websocket.StatusNormalClosure, "")
	})
	for _, tc := range []struct{ header, want string }{
		{"Bad Name: x", "must be a token"},
		{"X-Trace: a\x01b", "X-Trace: the value has a control character"},
		{"X-Trace: a\x7f", "control character"},
		{"Sec-WebSocket-Protocol: chat", "-H Sec-WebSocket-Protocol: offer subprotocols with --subprotocol"},
		{"sec-websocket-extensions: permessage-deflate", "-H Sec-WebSocket-Extensions: offer compression with --deflate"},
		{"Upgrade: websocket", "-H Upgrade: the handshake sets it"},
		{"Connection: Upgrade", "-H Connection: the handshake sets it"},
		{"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==", "-H Sec-WebSocket-Key: the handshake sets it"},
		{"Sec-WebSocket-Version: 13", "-H Sec-WebSocket-Version: the handshake sets it"},
	} {
		code, stdout, stderr := runWSCmd(t, strings.NewReader(""), "-H", tc.header, url)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("-H %q: exit %d stdout %q stderr %q; want 2 and %q", tc.header, code, stdout, stderr, tc.want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d handshakes reached the server, want none", n)
	}
	// A tab and obs-text are valid in a value.
	code, _, stderr := runWSCmd(t, strings.NewReader(""), "-H", "X-Ok: a\tb \xe9", url)
	if code != 0 {
		t.Errorf("-H with a tab and obs-text: exit %d stderr %q, want 0", code, stderr)
	}
}

// TestWSSubprotocolUsageErrors guards that a --subprotocol no handshake
// can offer (not a token, or given twice: RFC 6455 §4.1) is a usage
// error, exit 2, before anything is dialed: websocket.Dial refuses it
// with ErrInvalidDial, which was once reported as a failed connection
// (exit 1) — and before that, sent as given, a comma splitting it.
func TestWSSubprotocolUsageErrors(t *testing.T) {
	var hits atomic.Int64
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		hits.Add(1)
		c.Close(websocket.StatusNormalClosure, "")
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--subprotocol", "a, b"}, `subprotocol "a, b" is not a token`},
		{[]string{"--subprotocol", ""}, `subprotocol "" is not a token`},
		{[]string{"--subprotocol", "chat", "--subprotocol", "chat"}, `subprotocol "chat" offered twice`},
	} {
		code, stdout, stderr := runWSCmd(t, strings.NewReader(""), append(tc.args, url)...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d stdout %q stderr %q; want 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d handshakes reached the server, want none", n)
	}
}

// TestWSServerNormalCloseWhileSending guards that a server closing with
// 1000 while stdin still has lines to send is a normal end (exit 0, as
// the usage says): the failed send of the next line and the reader's
// close are noticed in either order, and the reader's account decides.
// One run shows the race only by chance, so it runs many times.
func TestWSServerNormalCloseWhileSending(t *testing.T) {
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		c.Read(ctx)
		c.Close(websocket.StatusNormalClosure, "enough")
	})
	stdin := strings.Repeat("line\n", 200_000)
	for i := range 40 {
		code, _, stderr := runWSCmd(t, strings.NewReader(stdin), url)
		if code != 0 || strings.Contains(stderr, "sending stdin line") || !strings.Contains(stderr, "closed by server: 1000 (normal closure): enough") {
			t.Fatalf("run %d: exit %d stderr %q; want 0 and only the server's close reported", i, code, stderr)
		}
	}
}

// lengthServer is a WebSocket server that reports the length of each
// message it reads on got, and echoes it when echo is set.
func lengthServer(t *testing.T, echo bool) (url string, got <-chan int) {
	lengths := make(chan int, 8)
	url = wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			lengths <- len(p)
			if echo {
				c.Write(ctx, websocket.MessageText, p)
			}
		}
	})
	return url, lengths
}

// TestWSMaxSizeStdinLineBoundary guards that --max-size bounds a stdin
// line exactly: the scanner's limit leaves room for "\r\n", so lines one
// or two bytes longer than --max-size got through it and were sent.
func TestWSMaxSizeStdinLineBoundary(t *testing.T) {
	url, got := lengthServer(t, false)
	for _, tc := range []struct {
		stdin string
		sent  int // length of the one message sent, or -1 for none
	}{
		{strings.Repeat("a", 10) + "\n", 10},
		{strings.Repeat("a", 10) + "\r\n", 10},
		{strings.Repeat("a", 10), 10},
		{strings.Repeat("x", 11) + "\n", -1},
		{strings.Repeat("x", 11) + "\r\n", -1},
		{strings.Repeat("x", 11), -1},
		{strings.Repeat("x", 12), -1},
	} {
		code, _, stderr := runWSCmd(t, strings.NewReader(tc.stdin), "--max-size", "10", url)
		n := -1
		select {
		case n = <-got:
		default:
		}
		if tc.sent >= 0 && (code != 0 || n != tc.sent) {
			t.Errorf("stdin %q, --max-size 10: exit %d, sent %d bytes, stderr %q; want 0 and %d bytes sent", tc.stdin, code, n, stderr, tc.sent)
		}
		if tc.sent < 0 && (code != 1 || n >= 0 || !strings.Contains(stderr, "stdin line 1 is longer than --max-size (10 bytes)")) {
			t.Errorf("stdin %q, --max-size 10: exit %d, sent %d bytes, stderr %q; want 1, nothing sent and the line refused", tc.stdin, code, n, stderr)
		}
	}
}

// TestWSURLCredentials guards that credentials in the URL reach the
// server as Basic authorization (RFC 7617), as they do with wsrpc sse,
// and that -H Authorization takes precedence.
func TestWSURLCredentials(t *testing.T) {
	auth := make(chan []string, 1)
	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		auth <- r.Header.Values("Authorization")
		c.Close(websocket.StatusNormalClosure, "")
	})
	withCreds := strings.Replace(url, "ws://", "ws://user:pass@", 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{withCreds}, "Basic dXNlcjpwYXNz"}, // user:pass
		{[]string{"-H", "Authorization: Bearer t0k", withCreds}, "Bearer t0k"},
	} {
		pr, pw := io.Pipe()
		code, _, stderr := runWSCmd(t, pr, tc.args...)
		pw.Close()
		select {
		case a := <-auth:
			if code != 0 || len(a) != 1 || a[0] != tc.want {
				t.Errorf("%q: exit %d, Authorization %q, stderr %q; want 0 and %q", tc.args, code, a, stderr, tc.want)
			}
		default:
			t.Errorf("%q: no handshake; exit %d stderr %q", tc.args, code, stderr)
		}
	}
}

// TestWSInsecure guards --insecure: without it a certificate that does
// not verify fails the handshake (its error naming TLS once, not "tls:
// tls:"); with it the connection is made.
func TestWSInsecure(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Close(websocket.StatusNormalClosure, "")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificate
	srv.StartTLS()
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	code, _, stderr := runWSCmd(t, strings.NewReader(""), url)
	if code != 1 || !strings.Contains(stderr, "certificate") || strings.Count(stderr, "tls: ") != 1 {
		t.Errorf("unverified certificate: exit %d stderr %q; want 1 and the TLS error, named once", code, stderr)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	code, _, stderr = runWSCmd(t, pr, "--insecure", url)
	if code != 0 || !strings.Contains(stderr, "closed by server: 1000") {
		t.Errorf("--insecure: exit %d stderr %q; want 0", code, stderr)
	}
}

// TestWSWsrpcCloseCodeName guards that a wsrpc close code, 4000+N for a
// wsrpc Code N (RFC 6455 §7.4.2's application range), is printed with
// the code's name: a failed wsrpc handler's 4009 was "4009 (status
// 4009)". Other codes keep the websocket package's names.
func TestWSWsrpcCloseCodeName(t *testing.T) {
	h := wsrpc.NewBidiHandler("/t/Chat", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.WatchRequest, testingv1.WatchResponse]) error {
		return wsrpc.Errorf(wsrpc.CodeFailedPrecondition, "lot sold")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	code, _, stderr := runWSCmd(t, pr, "ws"+strings.TrimPrefix(srv.URL, "http")+"/t/Chat")
	if want := "wsrpc ws: closed by server: 4009 (failed_precondition): lot sold\n"; code != 1 || !strings.HasSuffix(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}

	for _, tt := range []struct {
		code websocket.StatusCode
		want string
	}{
		{4001, "canceled"},
		{4002, "unknown"},
		{4016, "unauthenticated"},
		// Not wsrpc codes: 4000 and 4017 are outside its table, and
		// CodeFromCloseCode maps 1011 and 4100 too, to other codes.
		{4000, "status 4000"},
		{4017, "status 4017"},
		{4100, "status 4100"},
		{3000, "status 3000"},
		{websocket.StatusInternalError, "internal error"},
		{websocket.StatusNormalClosure, "normal closure"},
		{websocket.StatusNoStatusRcvd, "no status"},
	} {
		if got := closeCodeName(tt.code); got != tt.want {
			t.Errorf("closeCodeName(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

// TestWSRefusalCode: a wsrpc server's refusal of the handshake names its
// code (Wsrpc-Code), which leads the line as it does for wsrpc sse; a
// server that is not wsrpc's gets the plain line. The code was not shown,
// so a shell test could not tell invalid_argument from any other 400.
func TestWSRefusalCode(t *testing.T) {
	h := wsrpc.NewBidiHandler("/t/Chat", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.WatchRequest, testingv1.WatchResponse]) error {
		return nil
	}, wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			return ctx, wsrpc.Errorf(wsrpc.CodeInvalidArgument, "room is required")
		}
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	code, _, stderr := runWSCmd(t, pr, "ws"+strings.TrimPrefix(srv.URL, "http")+"/t/Chat")
	if want := "wsrpc ws: invalid_argument: websocket: server answered 400 Bad Request: room is required: "; code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and a line starting %q", code, stderr, want)
	}

	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {})
	code, _, stderr = runWSCmd(t, pr, url+"/forbidden")
	if want := "wsrpc ws: websocket: server answered 403 Forbidden: go away: "; code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and a line starting %q", code, stderr, want)
	}
}

// TestWSHostileTextOneLine: what a hostile server writes reaches stderr
// on one line, escaped: a refusal's status line and body, a close reason.
// stderr's escaping let CR and LF through, so a reason or body forged
// lines of its own ("wsrpc sse: fake line").
func TestWSHostileTextOneLine(t *testing.T) {
	addr := rawserver.Start(t, func(c net.Conn, _ *http.Request) {
		rawserver.Refuse(c, wsrpc.CodeHeader+": invalid_argument\r\n")
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	code, _, stderr := runWSCmd(t, pr, "ws://"+addr+"/t/Chat")
	want := "wsrpc ws: invalid_argument: websocket: server answered " + rawserver.EscapedStatus + ": " + rawserver.EscapedBody + ": websocket: bad handshake\n"
	if code != 1 || stderr != want {
		t.Errorf("refusal: exit %d, stderr %q\nwant 1 and %q", code, stderr, want)
	}

	url := wsServer(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		c.Close(websocket.StatusPolicyViolation, rawserver.Body)
	})
	code, _, stderr = runWSCmd(t, pr, url)
	want = "wsrpc ws: closed by server: 1008 (policy violation): " + rawserver.EscapedBody + "\n"
	if code != 1 || !strings.HasSuffix(stderr, want) || strings.Count(stderr, "\n") != strings.Count(stderr, "wsrpc ws: ") {
		t.Errorf("close reason: exit %d, stderr %q\nwant 1 and a last line %q", code, stderr, want)
	}
}
