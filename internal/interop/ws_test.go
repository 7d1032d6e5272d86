package interop_test

// Interop tests against a real peer, npm ws 8.x, in both directions: ws as a
// client of our Accept (node/ws-client.mjs) and ws as a server for our Dial
// (node/ws-server.mjs). The node side plays a list of steps and reports
// everything it sees as JSON lines; the Go side plays its part on a
// *websocket.Conn; the test checks both.
//
// These tests need node and internal/interop/node/node_modules (make test
// runs npm ci first). They fail, never skip, when either is missing: a
// silently skipped interop test is how incompatibilities ship.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/runtest"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// wsTestTimeout bounds one scenario, node process included.
const wsTestTimeout = 30 * time.Second

// big is the size of the large messages: well past 64 KiB (the 64-bit
// length form) and many write buffers.
const big = 16 << 20

// wsNodeDir is internal/interop/node, found next to this file so the tests
// run from any working directory.
func wsNodeDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "node")
	if !ok {
		dir = "node"
	}
	return dir
}

// wsRequireNode fails the test unless node and ws 8.x are installed.
func wsRequireNode(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for interop tests (make test installs the npm peers): %v", err)
	}
	dir = wsNodeDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "ws", "package.json"))
	if err != nil {
		t.Fatalf("npm ws is not installed; run `npm ci` in %s: %v", dir, err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(raw, &pkg); err != nil || !strings.HasPrefix(pkg.Version, "8.") {
		t.Fatalf("want npm ws 8.x in %s, have %q (%v)", dir, pkg.Version, err)
	}
	return node, dir
}

// nodeConfig is the JSON configuration of ws-client.mjs and ws-server.mjs.
type nodeConfig struct {
	URL        string            `json:"url,omitempty"`
	Protocols  []string          `json:"protocols,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	MaxPayload int               `json:"maxPayload,omitempty"`
	// PerMessageDeflate goes to ws as is: false, true or ws's option object
	// (serverNoContextTakeover, clientNoContextTakeover, threshold, …).
	PerMessageDeflate any    `json:"perMessageDeflate,omitempty"`
	Echo              bool   `json:"echo,omitempty"`
	Steps             []step `json:"steps,omitempty"`
	TimeoutMs         int    `json:"timeoutMs,omitempty"`
}

// step is one thing the ws side does (see runSteps in ws-steps.mjs).
type step struct {
	Op        string     `json:"op"`
	Type      string     `json:"type,omitempty"`
	Data      *byteSpec  `json:"data,omitempty"`
	Fragments []byteSpec `json:"fragments,omitempty"`
	Count     int        `json:"count,omitempty"`
	Code      *int       `json:"code,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	ReasonHex *string    `json:"reasonHex,omitempty"`
}

// byteSpec describes a payload: exact bytes, or a large one generated on
// both sides (pattern, repeat) instead of being passed on a command line.
type byteSpec struct {
	Hex     string `json:"hex,omitempty"`
	Pattern int    `json:"pattern,omitempty"`
	Repeat  string `json:"repeat,omitempty"`
	Count   int    `json:"count,omitempty"`
}

func (b byteSpec) bytes() []byte {
	switch {
	case b.Pattern > 0:
		return pattern(b.Pattern)
	case b.Repeat != "":
		return []byte(strings.Repeat(b.Repeat, b.Count))
	}
	p, err := hex.DecodeString(b.Hex)
	if err != nil {
		panic(err)
	}
	return p
}

// pattern is n bytes with byte i = i % 251, as bytes() in ws-steps.mjs:
// 251 is prime, so a shifted or dropped chunk cannot line up by chance.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func raw(p []byte) byteSpec  { return byteSpec{Hex: hex.EncodeToString(p)} }
func text(s string) byteSpec { return raw([]byte(s)) }
func code(c int) *int        { return &c }
func sendText(s string) step { d := text(s); return step{Op: "send", Type: "text", Data: &d} }
func recv(n int) step        { return step{Op: "recv", Count: n} }
func waitClose() step        { return step{Op: "waitClose"} }
func sendSpec(typ string, d byteSpec) step {
	return step{Op: "send", Type: typ, Data: &d}
}

// nodeEvent is one JSON line from a node script.
type nodeEvent struct {
	Ev         string            `json:"ev"`
	Port       int               `json:"port"`
	Path       string            `json:"path"`
	Protocol   string            `json:"protocol"`
	Extensions string            `json:"extensions"`
	Headers    map[string]string `json:"headers"`
	Type       string            `json:"type"`
	Len        int               `json:"len"`
	SHA256     string            `json:"sha256"`
	Hex        string            `json:"hex"`
	Code       any               `json:"code"` // close: a number; error: ws's error code string
	Reason     string            `json:"reason"`
	Message    string            `json:"message"`
	// Bytes ws read and wrote on its socket, in a close event.
	BytesRead    int64 `json:"bytesRead"`
	BytesWritten int64 `json:"bytesWritten"`
}

func (e nodeEvent) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// closeCode is the code of a close event.
func (e nodeEvent) closeCode() int {
	f, _ := e.Code.(float64)
	return int(f)
}

// nodeProc is a running node script.
type nodeProc struct {
	cmd       *exec.Cmd
	cancel    context.CancelFunc
	stdin     io.WriteCloser
	stderr    runtest.Buffer // port reads it while node may still write
	listening chan int       // the port, when a server reports it
	done      chan struct{}  // closed when the process has exited
	err       error          // the exit status, once done is closed

	mu     sync.Mutex
	events []nodeEvent
}

// startNode runs a script with its config. The process is bounded three
// times over: the script's own hard limit, the context, and the cleanup.
func startNode(t *testing.T, script string, cfg nodeConfig) *nodeProc {
	t.Helper()
	node, dir := wsRequireNode(t)
	if cfg.TimeoutMs == 0 {
		cfg.TimeoutMs = int((wsTestTimeout - 5*time.Second) / time.Millisecond)
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsTestTimeout)
	p := &nodeProc{cancel: cancel, listening: make(chan int, 1), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, node, script, string(arg))
	p.cmd.Dir = dir
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting node %s: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev nodeEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = nodeEvent{Ev: "bad-line", Message: sc.Text()}
			}
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.mu.Unlock()
			if ev.Ev == "listening" {
				select {
				case p.listening <- ev.Port:
				default:
				}
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		cancel()
		<-p.done
	})
	return p
}

// port waits for ws-server.mjs to report its port.
func (p *nodeProc) port(t *testing.T) int {
	t.Helper()
	select {
	case port := <-p.listening:
		return port
	case <-p.done:
		t.Fatalf("node exited before listening: %v\nstderr: %s", p.err, p.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("node did not start listening\nstderr: %s", p.stderr.String())
	}
	return 0
}

// finish ends stdin (a server's cue to exit), waits for the process
// (killing it if it outstays the scenario's bound) and returns everything
// it reported. It fails the test if the process did not exit cleanly or
// reported a step error or timeout.
func (p *nodeProc) finish(t *testing.T) []nodeEvent {
	t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(wsTestTimeout):
		p.cancel()
		<-p.done
		t.Errorf("node did not exit; killed")
	}
	p.mu.Lock()
	events := append([]nodeEvent(nil), p.events...)
	p.mu.Unlock()
	if p.err != nil {
		t.Errorf("node: %v\nstderr: %s", p.err, p.stderr.String())
	}
	for _, ev := range events {
		if ev.Ev == "step-error" || ev.Ev == "timeout" || ev.Ev == "bad-line" {
			t.Errorf("node reported %v", ev)
		}
	}
	if t.Failed() {
		t.Logf("node events:\n%s", eventsString(events))
	}
	return events
}

func eventsString(events []nodeEvent) string {
	var b strings.Builder
	for _, ev := range events {
		s := ev.String()
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		b.WriteString("  " + s + "\n")
	}
	return b.String()
}

// only returns the events named ev.
func only(events []nodeEvent, ev string) []nodeEvent {
	var out []nodeEvent
	for _, e := range events {
		if e.Ev == ev {
			out = append(out, e)
		}
	}
	return out
}

// one returns the single event named ev, failing the test otherwise.
func one(t *testing.T, events []nodeEvent, ev string) nodeEvent {
	t.Helper()
	got := only(events, ev)
	if len(got) != 1 {
		t.Fatalf("want one %q event, got %d:\n%s", ev, len(got), eventsString(events))
	}
	return got[0]
}

// message is a data message as both sides should see it.
type message struct {
	typ  websocket.MessageType
	data []byte
}

func (m message) String() string {
	return fmt.Sprintf("%v %d bytes sha256 %.12x", m.typ, len(m.data), sha256.Sum256(m.data))
}

// checkNodeMessages compares what ws received with want.
func checkNodeMessages(t *testing.T, events []nodeEvent, want []message) {
	t.Helper()
	got := only(events, "message")
	if len(got) != len(want) {
		t.Errorf("ws received %d messages, want %d:\n%s", len(got), len(want), eventsString(got))
		return
	}
	for i, w := range want {
		g := got[i]
		sum := sha256.Sum256(w.data)
		if g.Type != w.typ.String() || g.Len != len(w.data) || g.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("ws message %d: got %s %d bytes sha256 %.12s, want %v", i, g.Type, g.Len, g.SHA256, w)
		}
	}
}

func checkMessages(t *testing.T, who string, got, want []message) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s received %d messages, want %d: %v", who, len(got), len(want), got)
		return
	}
	for i := range want {
		if got[i].typ != want[i].typ || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("%s message %d: got %v, want %v", who, i, got[i], want[i])
		}
	}
}

// wsServe runs handle on every connection accepted at an httptest server
// (on 127.0.0.1) and returns its ws:// URL and the handler's result.
func wsServe(t *testing.T, opts *websocket.AcceptOptions, handle func(ctx context.Context, c *websocket.Conn) error) (string, <-chan error) {
	t.Helper()
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			result <- fmt.Errorf("accept: %w", err)
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), wsTestTimeout)
		defer cancel()
		result <- handle(ctx, c)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", result
}

// waitResult waits for the Go side's result, bounded.
func waitResult(t *testing.T, result <-chan error) {
	t.Helper()
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("go side: %v", err)
		}
	case <-time.After(wsTestTimeout):
		t.Errorf("go side did not finish")
	}
}

// wsMessages is the message round trip both directions share: small,
// empty, fragmented by ws (with code points split between fragments) and
// 16 MiB messages of both types.
var wsMessages = []struct {
	step step
	msg  message
}{
	{sendText("hello, ws ✓"), message{websocket.MessageText, []byte("hello, ws ✓")}},
	{sendSpec("binary", raw(pattern(256))), message{websocket.MessageBinary, pattern(256)}},
	{sendText(""), message{websocket.MessageText, nil}},
	{sendSpec("binary", raw(nil)), message{websocket.MessageBinary, nil}},
	// ws sends these as three frames (send with fin:false); "✓" and "🚀" are
	// split between frames, so UTF-8 is validated across fragments.
	{step{Op: "send", Type: "text", Fragments: []byteSpec{text("frag"), raw([]byte("ment ed \xe2")), raw([]byte("\x9c\x93 \xf0\x9f")), raw([]byte("\x9a\x80"))}},
		message{websocket.MessageText, []byte("fragment ed ✓ 🚀")}},
	{step{Op: "send", Type: "binary", Fragments: []byteSpec{raw([]byte{1, 2}), raw(nil), raw([]byte{3})}},
		message{websocket.MessageBinary, []byte{1, 2, 3}}},
	{sendSpec("binary", byteSpec{Pattern: big}), message{websocket.MessageBinary, pattern(big)}},
	{sendSpec("text", byteSpec{Repeat: "héllo wörld ✓ 🚀 ", Count: big / 24}),
		message{websocket.MessageText, []byte(strings.Repeat("héllo wörld ✓ 🚀 ", big/24))}},
}

// echoStream echoes every message by streaming its Reader into a Writer
// (so large replies go out as many fragments) until the peer closes with
// 1000 "done", and returns the messages it echoed.
func echoStream(ctx context.Context, c *websocket.Conn) ([]message, error) {
	var got []message
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return got, wantClose(err, websocket.StatusNormalClosure, "done")
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			return got, err
		}
		var buf bytes.Buffer
		if _, err := io.Copy(io.MultiWriter(w, &buf), r); err != nil {
			return got, err
		}
		if err := w.Close(); err != nil {
			return got, err
		}
		got = append(got, message{typ, buf.Bytes()})
	}
}

// writeStreamed writes m through a Writer in uneven chunks, so fragment
// boundaries fall inside code points.
func writeStreamed(ctx context.Context, c *websocket.Conn, m message) error {
	w, err := c.Writer(ctx, m.typ)
	if err != nil {
		return err
	}
	for p := m.data; len(p) > 0; {
		n := min(len(p), 100_003)
		if _, err := w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return w.Close()
}

// TestWSClientMessages: ws as client sends every kind of message to our
// server, which echoes each one by streaming Reader into Writer (so our
// large replies go out as many 64 KiB fragments). Both sides must see
// exactly the messages sent; the handshake must pick our subprotocol and
// decline ws's permessage-deflate offer (no Extensions configured).
func TestWSClientMessages(t *testing.T) {
	var got []message
	url, result := wsServe(t, &websocket.AcceptOptions{
		Subprotocols:   []string{"chat"},
		MaxMessageSize: 2 * big,
	}, func(ctx context.Context, c *websocket.Conn) error {
		if c.Subprotocol() != "chat" {
			return fmt.Errorf("subprotocol %q, want chat", c.Subprotocol())
		}
		var err error
		got, err = echoStream(ctx, c)
		return err
	})

	cfg := nodeConfig{URL: url, Protocols: []string{"wsrpc.json", "chat"}, PerMessageDeflate: true}
	var want []message
	for _, m := range wsMessages {
		cfg.Steps = append(cfg.Steps, m.step, recv(1))
		want = append(want, m.msg)
	}
	cfg.Steps = append(cfg.Steps, step{Op: "close", Code: code(1000), Reason: "done"})
	events := startNode(t, "ws-client.mjs", cfg).finish(t)
	waitResult(t, result)

	open := one(t, events, "open")
	if open.Protocol != "chat" || open.Extensions != "" {
		t.Errorf("ws open: protocol %q extensions %q, want chat and none", open.Protocol, open.Extensions)
	}
	checkMessages(t, "our server", got, want)
	checkNodeMessages(t, events, want)
	if c := one(t, events, "close"); c.closeCode() != 1000 {
		t.Errorf("ws close: %v, want 1000", c)
	}
}

// TestWSServerMessages: our client sends every kind of message to a ws
// echo server (16 MiB ones through Write as one frame and through Writer as
// fragments) and reads them back; ws must have received exactly them. The
// handshake carries our header and picks our first subprotocol.
func TestWSServerMessages(t *testing.T) {
	p := startNode(t, "ws-server.mjs", nodeConfig{Echo: true})
	url := fmt.Sprintf("ws://127.0.0.1:%d/echo?x=1", p.port(t))
	ctx, cancel := context.WithTimeout(context.Background(), wsTestTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols:   []string{"wsrpc.json", "chat"},
		Header:         http.Header{"X-Wsrpc-Test": {"interop"}},
		MaxMessageSize: 2 * big,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "wsrpc.json" {
		t.Errorf("subprotocol %q, want wsrpc.json", c.Subprotocol())
	}

	var want, got []message
	send := func(m message, streamed bool) {
		t.Helper()
		want = append(want, m)
		write := c.Write
		if streamed {
			write = func(ctx context.Context, typ websocket.MessageType, p []byte) error {
				return writeStreamed(ctx, c, message{typ, p})
			}
		}
		if err := write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, message{typ, data})
	}
	for _, m := range wsMessages {
		send(m.msg, false)
	}
	for _, m := range wsMessages[len(wsMessages)-2:] {
		send(m.msg, true)
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Errorf("close: %v", err)
	}
	events := p.finish(t)

	conn := one(t, events, "connection")
	if conn.Path != "/echo?x=1" || conn.Protocol != "wsrpc.json" || conn.Headers["x-wsrpc-test"] != "interop" || conn.Extensions != "" {
		t.Errorf("ws connection: %v", conn)
	}
	checkMessages(t, "our client", got, want)
	checkNodeMessages(t, events, want)
	if c := one(t, events, "close"); c.closeCode() != 1000 || c.Reason != "done" {
		t.Errorf("ws close: %v, want 1000 done", c)
	}
}

// TestWSServerFragments: ws as server sends fragmented messages
// (send with fin:false), including a 16 MiB one in four frames; our client
// must reassemble each.
func TestWSServerFragments(t *testing.T) {
	quarter := byteSpec{Pattern: big / 4}
	p := startNode(t, "ws-server.mjs", nodeConfig{Steps: []step{
		{Op: "send", Type: "text", Fragments: []byteSpec{text("frag"), raw([]byte("ment \xe2\x9c")), raw([]byte("\x93"))}},
		{Op: "send", Type: "binary", Fragments: []byteSpec{raw(nil), raw([]byte{9}), raw(nil)}},
		{Op: "send", Type: "binary", Fragments: []byteSpec{quarter, quarter, quarter, quarter}},
		waitClose(),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), wsTestTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/", p.port(t)), &websocket.DialOptions{MaxMessageSize: 2 * big})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	q := pattern(big / 4)
	want := []message{
		{websocket.MessageText, []byte("fragment ✓")},
		{websocket.MessageBinary, []byte{9}},
		{websocket.MessageBinary, bytes.Join([][]byte{q, q, q, q}, nil)},
	}
	var got []message
	for range want {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, message{typ, data})
	}
	checkMessages(t, "our client", got, want)
	if err := c.Close(websocket.StatusGoingAway, ""); err != nil {
		t.Errorf("close: %v", err)
	}
	events := p.finish(t)
	if c := one(t, events, "close"); c.closeCode() != 1001 {
		t.Errorf("ws close: %v, want 1001", c)
	}
}

// wsCase is a scenario played the same way in both directions: the ws
// side's steps and limits, what our side does on its Conn, and what ws
// must have seen.
type wsCase struct {
	name string
	node nodeConfig // Steps and MaxPayload; the rest is filled in
	// maxMessage is our MaxMessageSize (0: default).
	maxMessage int64
	// goSide plays our part and says what went wrong, if anything.
	goSide func(ctx context.Context, c *websocket.Conn) error
	// check inspects what ws reported.
	check func(t *testing.T, events []nodeEvent)
}

// readErr reads once and returns the error that ended the read, failing
// if a message arrived instead.
func readErr(ctx context.Context, c *websocket.Conn) error {
	typ, p, err := c.Read(ctx)
	if err == nil {
		return fmt.Errorf("unexpected %v message %q", typ, p)
	}
	return err
}

// wantClose checks that err is the peer's close frame with code and reason.
func wantClose(err error, code websocket.StatusCode, reason string) error {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
		return fmt.Errorf("got %v, want the peer's close %d %q", err, code, reason)
	}
	return nil
}

// wantIs checks that err wraps target.
func wantIs(err, target error) error {
	if !errors.Is(err, target) {
		return fmt.Errorf("got %v, want %v", err, target)
	}
	return nil
}

// closeEvent checks ws's close event.
func closeEvent(code int, reason string) func(t *testing.T, events []nodeEvent) {
	return func(t *testing.T, events []nodeEvent) {
		t.Helper()
		if c := one(t, events, "close"); c.closeCode() != code || c.Reason != reason {
			t.Errorf("ws close: %v, want %d %q", c, code, reason)
		}
	}
}

// errorEvent checks that ws failed the connection with its error code.
func errorEvent(wsCode string) func(t *testing.T, events []nodeEvent) {
	return func(t *testing.T, events []nodeEvent) {
		t.Helper()
		if e := one(t, events, "error"); e.Code != wsCode {
			t.Errorf("ws error: %v, want %s", e, wsCode)
		}
	}
}

var wsCases = []wsCase{
	{
		name:   "close from go 1000",
		node:   nodeConfig{Steps: []step{waitClose()}},
		goSide: func(ctx context.Context, c *websocket.Conn) error { return c.Close(websocket.StatusNormalClosure, "") },
		check:  closeEvent(1000, ""),
	},
	{
		name:   "close from go 4001 with reason",
		node:   nodeConfig{Steps: []step{waitClose()}},
		goSide: func(ctx context.Context, c *websocket.Conn) error { return c.Close(4001, "bye from go ✓") },
		check:  closeEvent(4001, "bye from go ✓"),
	},
	{
		name: "close from ws 1000",
		node: nodeConfig{Steps: []step{{Op: "close", Code: code(1000)}}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantClose(readErr(ctx, c), websocket.StatusNormalClosure, "")
		},
		check: closeEvent(1000, ""), // our reply echoes the code (§5.5.1)
	},
	{
		name: "close from ws 4001 with reason",
		node: nodeConfig{Steps: []step{{Op: "close", Code: code(4001), Reason: "bye from ws ✓"}}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantClose(readErr(ctx, c), 4001, "bye from ws ✓")
		},
		check: closeEvent(4001, ""),
	},
	{
		name: "close from ws without code",
		node: nodeConfig{Steps: []step{{Op: "close"}}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantClose(readErr(ctx, c), websocket.StatusNoStatusRcvd, "")
		},
		check: closeEvent(1005, ""), // an empty close frame answered by one
	},
	{
		name: "ping pong both ways",
		node: nodeConfig{Steps: []step{
			{Op: "ping", Data: &byteSpec{Hex: hex.EncodeToString([]byte("ping from ws"))}},
			sendText("after ping"), recv(1),
			{Op: "close", Code: code(1000), Reason: "done"},
		}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			// Ping needs a concurrent reader to notice the pong.
			type read struct {
				typ websocket.MessageType
				p   []byte
				err error
			}
			reads := make(chan read, 2)
			go func() {
				for {
					typ, p, err := c.Read(ctx)
					reads <- read{typ, p, err}
					if err != nil {
						return
					}
				}
			}()
			if err := c.Ping(ctx); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			if r := <-reads; r.err != nil || string(r.p) != "after ping" {
				return fmt.Errorf("read %q %v, want after ping", r.p, r.err)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte("pong seen")); err != nil {
				return err
			}
			return wantClose((<-reads).err, websocket.StatusNormalClosure, "done")
		},
		check: func(t *testing.T, events []nodeEvent) {
			if p := one(t, events, "pong"); p.Hex != hex.EncodeToString([]byte("ping from ws")) {
				t.Errorf("ws pong %v: want the ping's payload", p)
			}
			if p := one(t, events, "ping"); len(p.Hex) != 16 {
				t.Errorf("ws saw ping %v: want our 8-byte payload", p)
			}
			checkNodeMessages(t, events, []message{{websocket.MessageText, []byte("pong seen")}})
			closeEvent(1000, "")(t, events)
		},
	},
	{
		name: "invalid UTF-8 from ws",
		node: nodeConfig{Steps: []step{sendSpec("text", raw([]byte("hello\xff"))), waitClose()}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantIs(readErr(ctx, c), websocket.ErrInvalidUTF8)
		},
		check: wsFailedWith(1007),
	},
	{
		name: "invalid UTF-8 across fragments from ws",
		node: nodeConfig{Steps: []step{
			{Op: "send", Type: "text", Fragments: []byteSpec{text("ok \xc3"), raw([]byte("("))}},
			waitClose(),
		}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantIs(readErr(ctx, c), websocket.ErrInvalidUTF8)
		},
		check: wsFailedWith(1007),
	},
	{
		name: "invalid UTF-8 close reason from ws",
		node: nodeConfig{Steps: []step{{Op: "close", Code: code(4000), ReasonHex: ptr("ff")}}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantIs(readErr(ctx, c), websocket.ErrInvalidUTF8)
		},
		check: wsFailedWith(1007),
	},
	{
		name:       "message too big from ws",
		maxMessage: 1024,
		node:       nodeConfig{Steps: []step{sendSpec("binary", byteSpec{Pattern: 1025}), waitClose()}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantIs(readErr(ctx, c), websocket.ErrMessageTooBig)
		},
		check: wsFailedWith(1009),
	},
	{
		name:       "fragmented message too big from ws",
		maxMessage: 1024,
		node: nodeConfig{Steps: []step{
			{Op: "send", Type: "binary", Fragments: []byteSpec{{Pattern: 1000}, {Pattern: 1000}}},
			waitClose(),
		}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			return wantIs(readErr(ctx, c), websocket.ErrMessageTooBig)
		},
		check: wsFailedWith(1009),
	},
	{
		name: "message too big for ws maxPayload",
		node: nodeConfig{MaxPayload: 1024, Steps: []step{waitClose()}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			if err := c.Write(ctx, websocket.MessageBinary, pattern(1025)); err != nil {
				return err
			}
			return wantCode(readErr(ctx, c), websocket.StatusMessageTooBig)
		},
		check: errorEvent("WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"),
	},
	{
		name: "invalid UTF-8 never reaches ws",
		node: nodeConfig{Steps: []step{waitClose()}},
		goSide: func(ctx context.Context, c *websocket.Conn) error {
			// Write refuses invalid text before sending it (§5.6), so ws
			// (which would fail the connection with 1007) sees only the
			// valid message after it and a normal close.
			if err := wantIs(c.Write(ctx, websocket.MessageText, []byte("hello\xff")), websocket.ErrInvalidUTF8); err != nil {
				return err
			}
			if err := c.Write(ctx, websocket.MessageText, []byte("hello ✓")); err != nil {
				return err
			}
			return c.Close(websocket.StatusNormalClosure, "")
		},
		check: func(t *testing.T, events []nodeEvent) {
			closeEvent(1000, "")(t, events)
			checkNodeMessages(t, events, []message{{websocket.MessageText, []byte("hello ✓")}})
		},
	},
}

func ptr[T any](v T) *T { return &v }

// wantCode checks that err is the peer's close frame with code.
func wantCode(err error, code websocket.StatusCode) error {
	if got := websocket.CloseStatus(err); got != code {
		return fmt.Errorf("got %v (close status %d), want the peer's close %d", err, got, code)
	}
	return nil
}

// wsFailedWith checks that ws saw our close frame failing the connection
// with code (and a reason saying why).
func wsFailedWith(code int) func(t *testing.T, events []nodeEvent) {
	return func(t *testing.T, events []nodeEvent) {
		t.Helper()
		if c := one(t, events, "close"); c.closeCode() != code || !strings.HasPrefix(c.Reason, "websocket: ") {
			t.Errorf("ws close: %v, want %d with our reason", c, code)
		}
	}
}

// TestWSClientCases plays wsCases with ws as the client of our server.
func TestWSClientCases(t *testing.T) {
	for _, tc := range wsCases {
		t.Run(tc.name, func(t *testing.T) {
			url, result := wsServe(t, &websocket.AcceptOptions{MaxMessageSize: tc.maxMessage}, tc.goSide)
			cfg := tc.node
			cfg.URL = url
			events := startNode(t, "ws-client.mjs", cfg).finish(t)
			waitResult(t, result)
			tc.check(t, events)
		})
	}
}

// TestWSServerCases plays wsCases with ws as the server for our client.
func TestWSServerCases(t *testing.T) {
	for _, tc := range wsCases {
		t.Run(tc.name, func(t *testing.T) {
			p := startNode(t, "ws-server.mjs", tc.node)
			ctx, cancel := context.WithTimeout(context.Background(), wsTestTimeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/", p.port(t)), &websocket.DialOptions{MaxMessageSize: tc.maxMessage})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := tc.goSide(ctx, c); err != nil {
				t.Errorf("go side: %v", err)
			}
			events := p.finish(t)
			tc.check(t, events)
		})
	}
}
