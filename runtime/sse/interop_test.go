package sse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsrpc/wsrpc/internal/browsertest"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// received is one event as a browser-style EventSource reports it.
type received struct {
	Type        string `json:"type"`
	Data        string `json:"data"`
	LastEventID string `json:"lastEventId"`
}

// interopEvents are sent by interopServer: the first connection gets the
// first three and ends, the reconnection gets the rest by replay.
var interopEvents = []sse.Event{
	{ID: "1", Data: "hello"},
	{ID: "2", Type: "tick", Data: "multi\nline"},
	{ID: "3", Data: "unicode ✓ 🎉 é <&>\"'"},
	{ID: "4", Type: "tick"},
	{ID: "5", Data: "  two leading spaces\r\nwith crlf\n", Comment: "a comment\nover two lines"},
	{ID: "6", Data: "last"},
}

var interopWant = []received{
	{"message", "hello", "1"},
	{"tick", "multi\nline", "2"},
	{"message", "unicode ✓ 🎉 é <&>\"'", "3"},
	{"tick", "", "4"},
	{"message", "  two leading spaces\nwith crlf\n", "5"},
	{"message", "last", "6"},
}

const interopPage = `<!doctype html><meta charset="utf-8"><title>sse</title><script>
window.received = [];
const es = new EventSource("/events");
for (const type of ["message", "tick"]) {
  es.addEventListener(type, (ev) => {
    window.received.push({type: ev.type, data: ev.data, lastEventId: ev.lastEventId});
    if (window.received.length === 6) es.close();
  });
}
</script>`

// interopServer serves interopPage at / and the event stream at /events,
// recording the Last-Event-ID of each stream request.
func interopServer(t *testing.T) (url string, lastIDs func() []string) {
	ring := sse.NewRing(16)
	for _, e := range interopEvents {
		if _, err := ring.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var ids []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(interopPage))
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Replay: ring, Retry: 20 * time.Millisecond, Heartbeat: 5 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		if s.LastEventID() == "" {
			for _, e := range interopEvents[:3] {
				if err := s.Send(e); err != nil {
					return
				}
			}
			return // drop the stream: the client must resume from 3
		}
		<-s.Context().Done()
	})
	srv := newServer(t, mux)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}
}

func checkInterop(t *testing.T, got []received, lastIDs []string) {
	t.Helper()
	if !reflect.DeepEqual(got, interopWant) {
		t.Errorf("events:\n got %q\nwant %q", got, interopWant)
	}
	if len(lastIDs) < 2 || lastIDs[0] != "" || lastIDs[1] != "3" {
		t.Errorf("Last-Event-ID per connection = %q, want [\"\" \"3\"]", lastIDs)
	}
}

// repoRoot is found from this file's path, so tests run from any
// directory.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestInteropNodeEventSource: npm eventsource receives our server's
// events, reconnects with Last-Event-ID and gets the rest by replay.
func TestInteropNodeEventSource(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for interop tests (scripts/tools.sh ensure_node_peers)")
	}
	dir := filepath.Join(repoRoot(t), "internal", "interop", "node")
	url, lastIDs := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "eventsource-client.mjs", url+"/events", "6", "tick")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\nstderr:\n%s\nstdout:\n%s\n(run npm ci in %s if eventsource is missing)", err, stderr.String(), stdout.String(), dir)
	}
	var got []received
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r received
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		got = append(got, r)
	}
	checkInterop(t, got, lastIDs())
}

// TestInteropChromium: headless Chromium's EventSource receives our
// server's events, reconnects with Last-Event-ID and gets the rest.
func TestInteropChromium(t *testing.T) {
	ctx := browsertest.New(t)
	url, lastIDs := interopServer(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.received.length >= 6`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.received)`))
		t.Fatalf("waiting for 6 events: %v; received %s", err, got)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.received)`))
	if err != nil {
		t.Fatal(err)
	}
	var got []received
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	checkInterop(t, got, lastIDs())
}

// TestInteropGoClient: our own client sees what the browsers see.
func TestInteropGoClient(t *testing.T) {
	url, lastIDs := interopServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []received
	for ev, err := range sse.Events(ctx, url+"/events", &sse.ClientOptions{ReconnectionTime: time.Hour}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, received{ev.Type, ev.Data, ev.ID})
		if len(got) == len(interopWant) {
			break
		}
	}
	checkInterop(t, got, lastIDs())
}
