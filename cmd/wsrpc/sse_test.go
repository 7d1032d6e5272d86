package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/internal/rawserver"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// script serves connection n with bodies[n] (the last repeats): a raw
// event stream, or a status code when it starts with "status ".
func script(t *testing.T, bodies ...string) (url string, requests func() []*http.Request) {
	var mu sync.Mutex
	var reqs []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(reqs)
		reqs = append(reqs, r)
		mu.Unlock()
		body := bodies[min(n, len(bodies)-1)]
		if code, ok := strings.CutPrefix(body, "status "); ok {
			switch code {
			case "204":
				w.WriteHeader(204)
			default:
				http.Error(w, "nope", 500)
			}
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []*http.Request {
		mu.Lock()
		defer mu.Unlock()
		return append([]*http.Request(nil), reqs...)
	}
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = runSSE(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const stream1 = ": hi\nretry: 1\nid: 1\nevent: greet\ndata: hello\ndata: \"world\" <&>\n\ndata: no type\n\nid: 2\ndata: partial"

func TestSSEJSON(t *testing.T) {
	url, requests := script(t, stream1, "data: resumed\n\n", "status 204")
	code, out, errOut := run(t, "--json", "-H", "Authorization: Bearer t0k", url, "--reconnect-time", "1ms")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `{"event":"greet","data":"hello\n\"world\" <&>","id":"1"}
{"event":"message","data":"no type","id":"1"}
{"event":"message","data":"resumed","id":"1"}
`
	if out != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
	reqs := requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	if got := reqs[0].Header.Get("Authorization"); got != "Bearer t0k" {
		t.Errorf("Authorization = %q", got)
	}
	if got := reqs[1].Header.Get("Last-Event-ID"); got != "1" {
		t.Errorf("reconnect Last-Event-ID = %q, want 1", got)
	}
}

func TestSSEText(t *testing.T) {
	url, _ := script(t, stream1, "status 204")
	code, out, errOut := run(t, "--show-comments", "--show-retry", "--reconnect-time=1ms", url)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := "event: greet\nid: 1\ndata: hello\ndata: \"world\" <&>\n\nevent: message\nid: 1\ndata: no type\n\n"
	if out != want {
		t.Fatalf("stdout:\n%q\nwant:\n%q", out, want)
	}
}

func TestSSEShowCommentsAndRetry(t *testing.T) {
	const separate = ": ping\n\nretry: 5\n\ndata: x\n\n"
	for _, tt := range []struct {
		body string
		args []string
		want string
	}{
		{separate, []string{"--json"}, `{"event":"message","data":"x","id":""}` + "\n"},
		{separate, []string{"--json", "--show-comments"}, `{"comment":"ping"}` + "\n" + `{"event":"message","data":"x","id":""}` + "\n"},
		{separate, []string{"--json", "--show-retry"}, `{"retry":5}` + "\n" + `{"event":"message","data":"x","id":""}` + "\n"},
		{separate, []string{"--show-comments", "--show-retry"}, ": ping\n\nretry: 5\n\nevent: message\ndata: x\n\n"},
		// "retry: 0" is a retry (reconnect at once, WHATWG HTML §9.2.6),
		// not an empty comment.
		{"retry: 0\n\n", []string{"--json", "--show-retry"}, `{"retry":0}` + "\n"},
		{"retry: 0\n\n", []string{"--show-retry"}, "retry: 0\n\n"},
		{"retry: 0\n\n", []string{"--json", "--show-retry", "--show-comments"}, `{"retry":0}` + "\n"},
		// A block with a comment and a retry shows each part only with
		// its own flag: the comment stays hidden without --show-comments.
		{": secret\nretry: 5\n\n", []string{"--json", "--show-retry"}, `{"retry":5}` + "\n"},
		{": secret\nretry: 5\n\n", []string{"--show-retry"}, "retry: 5\n\n"},
		{": note\nretry: 5\n\n", []string{"--json", "--show-comments"}, `{"comment":"note"}` + "\n"},
		{": note\nretry: 0\n\n", []string{"--json", "--show-comments", "--show-retry"}, `{"comment":"note","retry":0}` + "\n"},
		{":\nretry: 5\n\n", []string{"--show-comments"}, ": \n\n"},
	} {
		url, _ := script(t, tt.body, "status 204")
		code, out, errOut := run(t, append(tt.args, url)...)
		if code != 0 || out != tt.want {
			t.Errorf("%q %v: exit %d, stdout %q, stderr %q; want %q", tt.body, tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestSSEExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		bodies   []string
		args     []string
		code     int
		requests int
		stderr   string
	}{
		{name: "204", bodies: []string{"status 204"}, code: 0, requests: 1},
		{name: "fatal status", bodies: []string{"data: a\n\n", "status 500"}, code: 1, requests: 2, stderr: "wsrpc sse: sse: unexpected status 500"},
		{name: "event over --max-event-size", bodies: []string{"data: 0123456789abcdef\n\n"}, args: []string{"--max-event-size", "8"}, code: 1, requests: 1, stderr: "too large"},
		{name: "event within --max-event-size", bodies: []string{"data: 0123456789abcdef\n\n"}, args: []string{"--max-event-size", "64", "--max-reconnects", "0"}, code: 0, requests: 1},
		{name: "no reconnect, clean end", bodies: []string{"data: a\n\n"}, args: []string{"--max-reconnects", "0"}, code: 0, requests: 1},
		{name: "reconnects exhausted", bodies: []string{""}, args: []string{"--max-reconnects", "2"}, code: 1, requests: 3, stderr: "exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, requests := script(t, tt.bodies...)
			code, _, errOut := run(t, append(append([]string{"--reconnect-time", "1ms"}, tt.args...), url)...)
			if code != tt.code || len(requests()) != tt.requests || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d after %d requests, stderr %q; want exit %d after %d, stderr with %q",
					code, len(requests()), errOut, tt.code, tt.requests, tt.stderr)
			}
		})
	}
	t.Run("connection refused, no reconnect", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		if code, _, errOut := run(t, "--max-reconnects", "0", url); code != 1 || errOut == "" {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
	})
}

func TestSSEUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"--bogus", "http://x"}, {"-H", "no colon", "http://x"}, {"--reconnect-time", "0s", "http://x"}, {"--max-event-size", "0", "http://x"},
		// URLs no attempt could use: refused at once, not retried forever.
		{"127.0.0.1:1/events"}, {"ws://127.0.0.1:1/events"}, {"http://[::1"}, {""}, {"http:///events"}, {"http://:8080/events"}} {
		if code, _, errOut := run(t, args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 with a message", args, code, errOut)
		}
	}
	if _, ok := commands["sse"]; !ok {
		t.Fatal("sse is not registered")
	}
}

// TestSSEAgainstServer runs the command against the package's own
// server, interrupted by the context once the events are out.
func TestSSEAgainstServer(t *testing.T) {
	sent := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		s.Send(sse.Event{ID: "7", Type: "t", Data: "a\nb"})
		close(sent)
		<-s.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sent
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	var out, errOut bytes.Buffer
	code := runSSE(ctx, []string{"--json", srv.URL}, &out, &errOut)
	if code != 130 || out.String() != `{"event":"t","data":"a\nb","id":"7"}`+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// TestSSEInvalidHeader guards that a -H no request can carry (a name that
// is not a token, a value with a control character: RFC 9110 §5.1,
// §5.5) is a usage error: net/http refuses such a request before sending
// it, and the client retried that refusal for ever in silence.
func TestSSEInvalidHeader(t *testing.T) {
	url, requests := script(t, "status 204")
	for _, h := range []string{"Bad Name: x", "X-Trace: a\x01b", "X-Trace: a\rb", "X(: x"} {
		// Bounded well below run's deadline: the bug was a silent hang.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var out, errOut bytes.Buffer
		code := runSSE(ctx, []string{"--reconnect-time", "10ms", "-H", h, url}, &out, &errOut)
		cancel()
		if code != 2 || !strings.Contains(errOut.String(), "header") {
			t.Errorf("-H %q: exit %d, stderr %q; want a usage error (2)", h, code, errOut.String())
		}
	}
	if n := len(requests()); n != 0 {
		t.Errorf("%d requests reached the server, want none", n)
	}
}

// TestSSEReportsReconnections guards that each failed reconnection is
// reported on stderr, numbered as --max-reconnects counts: a dead host
// was retried for ever without a word. Reconnections that open a stream
// or end it (204) are not reported.
func TestSSEReportsReconnections(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	code, _, errOut := run(t, "--reconnect-time", "1ms", "--max-reconnects", "3", dead)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if code != 1 || len(lines) != 4 {
		t.Fatalf("exit %d, stderr %q; want 1, three failed attempts and the final error", code, errOut)
	}
	for i, line := range lines[:3] {
		if want := fmt.Sprintf("wsrpc sse: reconnection attempt %d failed: sse: connect: ", i+1); !strings.HasPrefix(line, want) || !strings.Contains(line, "refused") {
			t.Errorf("stderr line %q, want %q… with the error", line, want)
		}
	}

	url, _ := script(t, "data: a\n\n", "data: b\n\n", "status 204")
	if code, _, errOut := run(t, "--reconnect-time", "1ms", url); code != 0 || errOut != "" {
		t.Errorf("reconnections that succeed, then a 204: exit %d, stderr %q; want 0 and nothing", code, errOut)
	}
}

// TestSSELastEventID guards --last-event-id and that a -H Last-Event-ID
// is taken as it: the client then owns the header, so once the server
// resets the id with an empty id field no Last-Event-ID is sent (WHATWG
// HTML §9.2.6), where a fixed header asked to resume from the old id on
// every reconnection.
func TestSSELastEventID(t *testing.T) {
	for _, args := range [][]string{{"--last-event-id", "5"}, {"-H", "Last-Event-ID: 5"}, {"-H", "last-event-id:5"}} {
		url, requests := script(t, "id: 7\ndata: a\n\nid\ndata: b\n\n", "status 204")
		code, out, errOut := run(t, append(args, "--json", "--reconnect-time", "1ms", url)...)
		reqs := requests()
		if code != 0 || len(reqs) != 2 {
			t.Fatalf("%q: exit %d, %d requests, stdout %q stderr %q", args, code, len(reqs), out, errOut)
		}
		if got := reqs[0].Header.Values("Last-Event-ID"); len(got) != 1 || got[0] != "5" {
			t.Errorf("%q: first request's Last-Event-ID %q, want 5", args, got)
		}
		if got := reqs[1].Header.Values("Last-Event-ID"); len(got) != 0 {
			t.Errorf("%q: after the server reset the id, the reconnection sent Last-Event-ID %q, want none", args, got)
		}
	}
	for _, args := range [][]string{
		{"--last-event-id", "5", "-H", "Last-Event-ID: 6"},
		{"-H", "Last-Event-ID: 5", "-H", "Last-Event-ID: 6"},
		{"--last-event-id", "a\x00b"},
	} {
		if code, _, errOut := run(t, append(args, "--max-reconnects", "0", "http://127.0.0.1:1/")...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d, stderr %q; want a usage error (2)", args, code, errOut)
		}
	}
}

// TestSSEInsecure guards --insecure: without it a certificate that does
// not verify fails the connection; with it the stream is read.
func TestSSEInsecure(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: secret\n\n"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificate
	srv.StartTLS()
	defer srv.Close()
	if code, out, errOut := run(t, "--max-reconnects", "0", srv.URL); code != 1 || out != "" || !strings.Contains(errOut, "certificate") {
		t.Errorf("unverified certificate: exit %d stdout %q stderr %q; want 1 and the TLS error", code, out, errOut)
	}
	if code, out, errOut := run(t, "--insecure", "--max-reconnects", "0", "--json", srv.URL); code != 0 || !strings.Contains(out, `"data":"secret"`) {
		t.Errorf("--insecure: exit %d stdout %q stderr %q; want 0 and the event", code, out, errOut)
	}
}

// wsrpcSSEServer serves fn as a wsrpc SSE method, with the root package's
// handler (what generated code builds), and returns the method's URL and
// the number of calls so far.
func wsrpcSSEServer(t *testing.T, fn func(context.Context, *testingv1.WatchRequest, *wsrpc.ServerStream[testingv1.WatchResponse]) error) (url string, calls func() int32) {
	var n atomic.Int32
	h := wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		n.Add(1)
		return fn(ctx, req, s)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/t/Watch", n.Load
}

// clip shortens a command's output for a failure message: a command that
// re-runs a call prints the same events thousands of times.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// sendNotes sends a note event for each of notes.
func sendNotes(s *wsrpc.ServerStream[testingv1.WatchResponse], notes ...string) error {
	for _, note := range notes {
		if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: note}}); err != nil {
			return err
		}
	}
	return nil
}

// TestSSEWsrpcEnd guards that the wsrpc.end event a wsrpc SSE handler
// ends its stream with (the root package's SSEEventEnd) ends the command:
// exit 0, nothing printed for it, no reconnection. The command printed
// it as an event and reconnected, running the finished call again every
// few seconds for ever.
func TestSSEWsrpcEnd(t *testing.T) {
	url, calls := wsrpcSSEServer(t, func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		return sendNotes(s, "a", "b")
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--json"}, `{"event":"note","data":"\"a\"","id":""}` + "\n" + `{"event":"note","data":"\"b\"","id":""}` + "\n"},
		{nil, "event: note\ndata: \"a\"\n\nevent: note\ndata: \"b\"\n\n"},
	} {
		before := calls()
		code, out, errOut := run(t, append(tt.args, "--reconnect-time", "1ms", url)...)
		if n := calls() - before; code != 0 || out != tt.want || errOut != "" || n != 1 {
			t.Errorf("%q: exit %d after %d calls, stdout %q, stderr %q; want 0 after 1 call, stdout %q", tt.args, code, n, clip(out), errOut, tt.want)
		}
	}

	// Events after wsrpc.end are not read: it is the end.
	surl, requests := script(t, "data: a\n\nevent: wsrpc.end\ndata: {}\n\ndata: after\n\n", "data: again\n\n")
	code, out, errOut := run(t, "--json", "--reconnect-time", "1ms", surl)
	if want := `{"event":"message","data":"a","id":""}` + "\n"; code != 0 || out != want || errOut != "" || len(requests()) != 1 {
		t.Errorf("scripted: exit %d after %d requests, stdout %q, stderr %q; want 0 after 1, stdout %q", code, len(requests()), clip(out), errOut, want)
	}
}

// TestSSEWsrpcError guards that the wsrpc.error event a failed wsrpc SSE
// handler ends its stream with (the root package's SSEEventError, data
// {"code":…,"message":…}) is reported on stderr as "<code>: <message>"
// and exits 1 without reconnecting. The command printed it as an event
// and re-ran the failing call every 3 s, or exited 0 with
// --max-reconnects 0.
func TestSSEWsrpcError(t *testing.T) {
	url, calls := wsrpcSSEServer(t, func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		if err := sendNotes(s, "a"); err != nil {
			return err
		}
		return wsrpc.Errorf(wsrpc.CodeNotFound, "no lot %q", "missing")
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--json"}, `{"event":"note","data":"\"a\"","id":""}` + "\n"},
		{nil, "event: note\ndata: \"a\"\n\n"},
		{[]string{"--max-reconnects", "0"}, "event: note\ndata: \"a\"\n\n"},
	} {
		before := calls()
		code, out, errOut := run(t, append(tt.args, "--reconnect-time", "1ms", url)...)
		if n := calls() - before; code != 1 || out != tt.want || errOut != `wsrpc sse: not_found: no lot "missing"`+"\n" || n != 1 {
			t.Errorf("%q: exit %d after %d calls, stdout %q, stderr %q; want 1 after 1 call, stdout %q and the error", tt.args, code, n, clip(out), errOut, tt.want)
		}
	}

	for _, tt := range []struct{ data, stderr string }{
		{`{"code":"permission_denied"}`, "wsrpc sse: permission_denied\n"},
		// A code this build does not know (a newer server's), and a field
		// it does not know, are no reason to hide the error.
		{`{"code":"teapot","message":"short and stout","details":[]}`, "wsrpc sse: teapot: short and stout\n"},
		{`oops`, "wsrpc sse: malformed wsrpc.error event: oops\n"},
		{`{"message":"no code"}`, "wsrpc sse: malformed wsrpc.error event: {\"message\":\"no code\"}\n"},
		{"", "wsrpc sse: malformed wsrpc.error event: \n"},
		// A server's text cannot drive the terminal: an ESC sequence that
		// would retitle the window and a bidi override are escaped.
		{`{"code":"internal","message":"\u001b]0;pwned\u0007 \u202e!"}`, "wsrpc sse: internal: \\u001b]0;pwned\\u0007 \\u202e!\n"},
		// Nor forge lines of its own: line breaks, in the message, the
		// code or a malformed event's data, are spaces.
		{`{"code":"internal","message":"ok\r\nwsrpc sse: all good"}`, "wsrpc sse: internal: ok  wsrpc sse: all good\n"},
		{`{"code":"internal\nwsrpc sse: all good"}`, "wsrpc sse: internal wsrpc sse: all good\n"},
		{"oops\ndata: wsrpc sse: all good", "wsrpc sse: malformed wsrpc.error event: oops wsrpc sse: all good\n"},
	} {
		surl, requests := script(t, "event: wsrpc.error\ndata: "+tt.data+"\n\ndata: after\n\n", "data: again\n\n")
		code, out, errOut := run(t, "--reconnect-time", "1ms", surl)
		if code != 1 || out != "" || errOut != tt.stderr || len(requests()) != 1 {
			t.Errorf("data %q: exit %d after %d requests, stdout %q, stderr %q; want 1 after 1, stderr %q", tt.data, code, len(requests()), clip(out), errOut, tt.stderr)
		}
	}
}

// TestSSERefusal guards how a refused request is reported: with the
// server's message (the start of the body) and, from a wsrpc server, the
// code it names in Wsrpc-Code, as `wsrpc ws` shows a refused handshake's
// body and a wsrpc.error line its code. The command used to print only
// "sse: unexpected status 400 Bad Request", the reason lost. What the
// server wrote cannot drive the terminal.
func TestSSERefusal(t *testing.T) {
	h := wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		return nil
	}, wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if hs.Request.URL.Query().Get("room") == "" {
				return ctx, wsrpc.Errorf(wsrpc.CodeInvalidArgument, "room is required")
			}
			return next(ctx, hs)
		}
	})))
	wsrpcSrv := httptest.NewServer(h)
	t.Cleanup(wsrpcSrv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such feed \x1b]0;pwned\x07", http.StatusNotFound)
	}))
	t.Cleanup(plain.Close)
	hostile := "http://" + rawserver.Start(t, func(c net.Conn, _ *http.Request) {
		rawserver.Refuse(c, wsrpc.CodeHeader+": invalid_argument\r\n")
	})

	for _, tt := range []struct{ url, stderr string }{
		{wsrpcSrv.URL + "/t/Watch", "wsrpc sse: invalid_argument: sse: unexpected status 400 Bad Request: room is required\n"},
		{plain.URL, "wsrpc sse: sse: unexpected status 404 Not Found: no such feed \\u001b]0;pwned\\u0007\n"},
		{hostile, "wsrpc sse: invalid_argument: sse: unexpected status " + rawserver.EscapedStatus + ": " + rawserver.EscapedBody + "\n"},
	} {
		code, out, errOut := run(t, "--reconnect-time", "1ms", tt.url)
		if code != 1 || out != "" || errOut != tt.stderr {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1, nothing, %q", tt.url, code, clip(out), errOut, tt.stderr)
		}
	}
}

// TestSSERaw guards --raw: wsrpc.end and wsrpc.error are then events like
// any other, printed, and the stream goes on (a plain SSE server may use
// those names).
func TestSSERaw(t *testing.T) {
	surl, requests := script(t, "event: wsrpc.error\ndata: {\"code\":\"internal\"}\n\nevent: wsrpc.end\ndata: {}\n\ndata: after\n\n", "status 204")
	code, out, errOut := run(t, "--raw", "--json", "--reconnect-time", "1ms", surl)
	want := `{"event":"wsrpc.error","data":"{\"code\":\"internal\"}","id":""}
{"event":"wsrpc.end","data":"{}","id":""}
{"event":"message","data":"after","id":""}
`
	if code != 0 || out != want || errOut != "" || len(requests()) != 2 {
		t.Errorf("scripted: exit %d after %d requests, stdout %q, stderr %q; want 0 after 2, stdout %q", code, len(requests()), clip(out), errOut, want)
	}

	url, calls := wsrpcSSEServer(t, func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		return sendNotes(s, "a")
	})
	code, out, errOut = run(t, "--raw", "--max-reconnects", "0", url)
	if want := "event: note\ndata: \"a\"\n\nevent: wsrpc.end\nid: wsrpc.end\ndata: {}\n\n"; code != 0 || out != want || errOut != "" || calls() != 1 {
		t.Errorf("wsrpc server: exit %d after %d calls, stdout %q, stderr %q; want 0 after 1, stdout %q", code, calls(), clip(out), errOut, want)
	}
	// Reconnecting after wsrpc.end, the command says it saw the end (its
	// reserved id, Last-Event-ID: wsrpc.end), and a wsrpc server answers
	// 204 without running the call again: the stream is over. Before, each
	// reconnection ran the call again, for ever.
	code, out, errOut = run(t, "--raw", "--reconnect-time", "1ms", url)
	if want := "event: note\ndata: \"a\"\n\nevent: wsrpc.end\nid: wsrpc.end\ndata: {}\n\n"; code != 0 || out != want || errOut != "" || calls() != 2 {
		t.Errorf("wsrpc server, reconnecting: exit %d after %d calls in all, stdout %q, stderr %q; want 0 after 2 (1 more), stdout %q", code, calls(), clip(out), errOut, want)
	}
}

// TestSSEIdleTimeout guards --idle-timeout: a stream on which nothing
// arrives for that long is taken for lost and resumed with Last-Event-ID.
func TestSSEIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 1\ndata: a\n\n")
			w.(http.Flusher).Flush()
			select { // silent, the connection kept open: a path gone dark
			case <-release:
			case <-r.Context().Done():
			}
		case 2:
			if got := r.Header.Get("Last-Event-ID"); got != "1" {
				http.Error(w, "Last-Event-ID "+got, http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 2\ndata: b\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	code, out, errOut := run(t, "--idle-timeout", "200ms", "--reconnect-time", "1ms", srv.URL)
	if want := "event: message\nid: 1\ndata: a\n\nevent: message\nid: 2\ndata: b\n\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and both events", code, out, errOut)
	}
	if code, _, _ := run(t, "--idle-timeout", "-1s", srv.URL); code != 2 {
		t.Errorf("negative --idle-timeout: exit %d, want 2", code)
	}
}
