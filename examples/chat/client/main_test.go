package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/examples/chat/chatserver"
	chatv1 "github.com/wsrpc/wsrpc/gen/examples/chat/v1"
	"github.com/wsrpc/wsrpc/runtime/hub"
)

// startServer serves the chat service in-process on 127.0.0.1.
func startServer(t *testing.T) string {
	t.Helper()
	h, err := hub.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := chatserver.New(h, nil)
	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { svc.Close(); srv.Close(); h.Close() })
	return srv.URL
}

// output collects what run prints, line by line.
type output struct {
	mu    sync.Mutex
	lines []string
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	return len(p), nil
}

// wait waits until a line contains want.
func (o *output) wait(t *testing.T, who, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		for _, l := range o.lines {
			if strings.Contains(l, want) {
				o.mu.Unlock()
				return
			}
		}
		o.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t.Fatalf("%s never printed %q; printed:\n%s", who, want, strings.Join(o.lines, "\n"))
}

// member is one run of the client with its input and output.
type member struct {
	in   *io.PipeWriter
	out  *output
	done chan error
}

func join(t *testing.T, url, name, cd string) *member {
	t.Helper()
	pr, pw := io.Pipe()
	m := &member{in: pw, out: &output{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { m.done <- run(ctx, config{URL: url, Name: name, Room: "lobby", Codec: cd}, pr, m.out) }()
	t.Cleanup(func() { cancel(); pw.Close() })
	return m
}

func (m *member) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(m.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// leave ends the input and waits for run to return.
func (m *member) leave(t *testing.T) {
	t.Helper()
	m.in.Close()
	select {
	case err := <-m.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its input ended")
	}
}

// TestClientChat: two terminal clients, one on msgpack and one on
// protobuf, join the same room through the generated client; each line
// one types reaches both, joins and departures are shown, and ending the
// input leaves the room cleanly (run returns nil).
func TestClientChat(t *testing.T) {
	url := startServer(t)
	ada := join(t, url, "ada", "msgpack")
	ada.out.wait(t, "ada", "joined #lobby as ada (node ")
	ada.out.wait(t, "ada", "codec msgpack)")
	bob := join(t, url, "bob", "proto")
	bob.out.wait(t, "bob", "codec proto)")
	ada.out.wait(t, "ada", "* bob joined")

	ada.say(t, "hello from ada")
	bob.say(t, "hi ada, bob here")
	for _, m := range []struct {
		who string
		o   *output
	}{{"ada", ada.out}, {"bob", bob.out}} {
		m.o.wait(t, m.who, "<ada> hello from ada")
		m.o.wait(t, m.who, "<bob> hi ada, bob here")
	}
	ada.leave(t)
	bob.out.wait(t, "bob", "* ada left")
	bob.leave(t)
}

// TestClientRefused: a bad flag value and a join the server refuses are
// errors from run, the latter with the server's code.
func TestClientRefused(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	if err := run(ctx, config{URL: url, Name: "ada", Codec: "xml"}, strings.NewReader(""), io.Discard); err == nil || !strings.Contains(err.Error(), "unknown codec") {
		t.Fatalf("codec xml: %v", err)
	}
	err := run(ctx, config{URL: url, Name: "   ", Room: "lobby", Codec: "proto"}, strings.NewReader(""), io.Discard)
	if wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
		t.Fatalf("blank name: %v, want invalid_argument", err)
	}
	err = run(ctx, config{URL: url, Name: "ada", Room: "No Spaces", Codec: "msgpack"}, strings.NewReader(""), io.Discard)
	if wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
		t.Fatalf("bad room: %v, want invalid_argument", err)
	}
}

// TestClientSkipsBlankLines: a line of only spaces or tabs is not sent.
// The server trims a message and refuses an empty one with
// invalid_argument, which ends the session; the page skips such input
// too, and the member stays in the room.
func TestClientSkipsBlankLines(t *testing.T) {
	url := startServer(t)
	ada := join(t, url, "ada", "proto")
	ada.out.wait(t, "ada", "joined #lobby as ada")
	// One write, which the client's scanner takes in one read: were the
	// session to end, a later write would find no reader and block.
	ada.say(t, "   \n\t \nstill here")
	ada.out.wait(t, "ada", "<ada> still here")
	ada.leave(t)
}

// TestInterruptLeaves: Ctrl-C leaves the room, as the package doc says,
// and is not a failure: the command (run as a child process) exits 0
// with nothing on stderr, and the room sees the member leave.
func TestInterruptLeaves(t *testing.T) {
	if url := os.Getenv("WSRPC_TEST_CLIENT_MAIN"); url != "" {
		// The child: the command itself, its input left open.
		os.Args = []string{"client", "-url", url, "-name", "ada", "-codec", "proto"}
		main()
		return
	}
	url := startServer(t)
	bob := join(t, url, "bob", "msgpack")
	bob.out.wait(t, "bob", "joined #lobby as bob")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestInterruptLeaves$")
	cmd.Env = append(os.Environ(), "WSRPC_TEST_CLIENT_MAIN="+url)
	stdin, err := cmd.StdinPipe() // held open: only the signal ends the session
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Ada's join reaches Bob once the child runs its session, after main
	// installed its signal handler.
	bob.out.wait(t, "bob", "* ada joined")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("after Ctrl-C: %v, stderr %q (stdout %q); want exit status 0, no error", err, stderr.String(), stdout.String())
	}
	bob.out.wait(t, "bob", "* ada left")
}

// TestFormatMultilineMessage guards the terminal against forged lines:
// the server lets a message carry '\n' and '\t', and format printed the
// text as it was, so one member's message could print lines such as
// "12:00:00 <Ada> …" or "12:00:01 * Ada left" in everyone's terminal.
// Each further line of a message now starts behind "    | ", which no
// event line starts with; tabs are kept.
func TestFormatMultilineMessage(t *testing.T) {
	at := timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	clock := at.AsTime().Local().Format("15:04:05")
	for _, tc := range []struct{ text, want string }{
		{"one line", clock + " <Mallory> one line"},
		{"a\tb", clock + " <Mallory> a\tb"},
		{
			"brb\n12:00:00 <Ada> my password is hunter2\n12:00:01 * Ada left",
			clock + " <Mallory> brb\n    | 12:00:00 <Ada> my password is hunter2\n    | 12:00:01 * Ada left",
		},
		{"x\n\n\ty", clock + " <Mallory> x\n    | \n    | \ty"},
	} {
		ev := &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Message{Message: &chatv1.Message{
			Room: "lobby", From: "Mallory", Text: tc.text, Time: at,
		}}}
		if got := format(ev); got != tc.want {
			t.Errorf("format(%q) =\n%s\nwant\n%s", tc.text, got, tc.want)
		}
	}
}

// TestClientToken: a run joins with its config's client token, so that a
// later join with the same token under the same name replaces the
// earlier session, which ends with aborted, while a run with another
// token is refused as ever.
func TestClientToken(t *testing.T) {
	url := startServer(t)
	start := func(token string, out io.Writer) (*io.PipeWriter, chan error) {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			done <- run(ctx, config{URL: url, Name: "ada", Room: "lobby", Codec: "proto", Token: token}, pr, out)
		}()
		t.Cleanup(func() { cancel(); pw.Close() })
		return pw, done
	}
	first := &output{}
	_, firstDone := start("process-1", first)
	first.wait(t, "the first run", "* ada joined")
	if _, done := start("process-2", io.Discard); wsrpc.CodeOf(<-done) != wsrpc.CodeAlreadyExists {
		t.Error("a run with another token was not refused with already_exists")
	}
	second := &output{}
	in, _ := start("process-1", second)
	second.wait(t, "the second run", "joined #lobby as ada")
	select {
	case err := <-firstDone:
		if wsrpc.CodeOf(err) != wsrpc.CodeAborted {
			t.Errorf("the replaced run returned %v, want aborted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced run did not return")
	}
	io.WriteString(in, "still here\n")
	second.wait(t, "the second run", "<ada> still here")
}

// TestClientLongInputLineIsAnError: a line longer than the scanner holds
// (64 KiB) ended the input there, silently: the client left the room and
// run returned nil, as if the input had ended, the line and every line
// after it never sent. run now reports it, after leaving.
func TestClientLongInputLineIsAnError(t *testing.T) {
	url := startServer(t)
	out := &output{}
	in := "before\n" + strings.Repeat("x", 70<<10) + "\nafter\n"
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		done <- run(ctx, config{URL: url, Name: "ada", Room: "lobby", Codec: "proto"}, strings.NewReader(in), out)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "reading input") {
			t.Errorf("run: %v, want an error reading the input", err)
		}
	case <-ctx.Done():
		t.Fatal("run did not return")
	}
	out.wait(t, "ada", "<ada> before")
}

// TestClientKeepsBackUnsendableLines: a line the server would refuse is
// not sent, the client says so, and the member stays in the room; a line
// that is not UTF-8 is sent with U+FFFD in place of its bad bytes. Before,
// a line with an arrow key's escape sequence or of more than 1,000
// characters ended the session (invalid_argument) and the lines after it
// were lost, and a line that was not UTF-8 failed to marshal, after which
// the client read no more input and never left: run waited for the room
// until interrupted.
func TestClientKeepsBackUnsendableLines(t *testing.T) {
	url := startServer(t)
	for _, cd := range []string{"proto", "msgpack"} {
		t.Run(cd, func(t *testing.T) {
			out := &output{}
			in := "caf\xe9\n" + "ab\x1b[Dc\n" + strings.Repeat("é", 1001) + "\n" + strings.Repeat("é", 1000) + "\nafter\n"
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := run(ctx, config{URL: url, Name: "ada", Room: "lobby", Codec: cd}, strings.NewReader(in), out); err != nil {
				t.Fatalf("run: %v; printed:\n%s", err, strings.Join(out.lines, "\n"))
			}
			for _, want := range []string{
				"<ada> caf\uFFFD",
				"! not sent: it has control characters",
				"! not sent: 1001 characters, a message has at most 1000",
				"<ada> " + strings.Repeat("é", 1000),
				"<ada> after",
				"* ada left",
			} {
				out.wait(t, "ada", want)
			}
		})
	}
}
