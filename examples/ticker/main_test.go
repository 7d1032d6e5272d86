package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/runtest"
)

// startTicker runs the server with cfg (cfg.Addr "" for a free port of
// 127.0.0.1) and returns its base URL and stop, which cancels run and
// returns its result (bounded); the test's cleanup stops it too.
func startTicker(t *testing.T, cfg config) (url string, stop func() error) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, cfg, out)
	})
	return s.URL, s.Stop
}

// lineWriter sends each line written to it on a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w <- l
	}
	return len(p), nil
}

// startWatch runs the watch client and returns the ids of the events it
// prints, in order, as they come.
func startWatch(t *testing.T, cfg watchConfig) (ids <-chan string, lines <-chan string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(lineWriter, 1<<16)
	idc := make(chan string, 1<<16)
	done := make(chan error, 1)
	go func() { done <- watch(ctx, cfg, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("watch: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("watch did not return after cancel")
		}
	})
	linec := make(chan string, 1<<16)
	go func() {
		for l := range out {
			idc <- strings.Fields(l)[0]
			linec <- l
		}
	}()
	return idc, linec
}

func next(t *testing.T, ids <-chan string) string {
	t.Helper()
	select {
	case id := <-ids:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("no event for 20 s")
		return ""
	}
}

// TestResumeAcrossRestart: the watch client (the generated SSE client)
// reads events from a server, the server stops, and a new server process
// (a fresh run on the same port and journal file) takes over, under a
// new node id or, with -node, the same one. The client is kept off the
// network until the new server has published 20 events, so those can
// reach it only by resumption: it must then print exactly the journal's
// events from its first one on — every event of both servers, none
// twice, none missing, in order. Under the same node id the new server
// numbers on after the journal's last event (the journal renumbers what
// the hub numbers from 1 again), and nothing is refused: before, its
// first events were refused as duplicates of the previous run's ids,
// which the server logs, and lost.
func TestResumeAcrossRestart(t *testing.T) {
	for _, second := range []string{"two", "one"} {
		t.Run("second node "+second, func(t *testing.T) { testResumeAcrossRestart(t, "one", second) })
	}
}

func testResumeAcrossRestart(t *testing.T, first, second string) {
	path := filepath.Join(t.TempDir(), "ticker.journal")
	url, stop1 := startTicker(t, config{Journal: path, NodeID: first, Interval: 2 * time.Millisecond})

	var down atomic.Bool // the client's network is cut
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("test: network down")
		}
		return dialer.DialContext(ctx, network, addr)
	}}}
	ids, _ := startWatch(t, watchConfig{URL: url, Reconnect: 20 * time.Millisecond, HTTPClient: hc})

	var got []string
	for len(got) < 20 {
		got = append(got, next(t, ids))
	}
	down.Store(true)
	if err := stop1(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	evs, err := loadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	firstN, last := len(evs), evs[len(evs)-1].ID // the first server's last event

	logs := &runtest.Buffer{}
	s2 := runtest.Start(t, regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`), func(ctx context.Context, out io.Writer) error {
		return run(ctx, config{Addr: strings.TrimPrefix(url, "http://"), Journal: path, NodeID: second, Interval: 2 * time.Millisecond}, io.MultiWriter(out, logs))
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := loadJournal(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= firstN+20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second server did not publish 20 events")
		}
		time.Sleep(10 * time.Millisecond)
	}
	down.Store(false)
	after := contains(got, last) // events of the second server seen
	for seen := 0; seen < 40; {
		id := next(t, ids)
		got = append(got, id)
		if after {
			seen++
		}
		after = after || id == last
	}
	if err := s2.Stop(); err != nil {
		t.Fatalf("second server: %v", err)
	}
	// The server logs what the hub could not record (OnError): nothing
	// may have been refused.
	if _, l, _ := strings.Cut(logs.String(), "\n"); l != "" {
		t.Fatalf("the second server logged:\n%s", l)
	}

	evs, err = loadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	start := -1
	for i, e := range evs {
		if e.ID == got[0] {
			start = i
		}
	}
	if start < 0 {
		t.Fatalf("first id %s not in the journal", got[0])
	}
	for i, id := range got {
		if start+i >= len(evs) || evs[start+i].ID != id {
			want := "end of journal"
			if start+i < len(evs) {
				want = evs[start+i].ID
			}
			t.Fatalf("event %d: got %s, journal has %s (ids so far %v)", i, id, want, got[max(0, i-3):i+1])
		}
	}
	// The second server's first event: "two-1" under a new node id, the
	// next number after the first server's last under the same one.
	want := second + "-1"
	if second == first {
		_, n, _ := splitID(last)
		want = first + "-" + strconv.FormatUint(n+1, 10)
	}
	if !strings.HasPrefix(got[0], first+"-") || !contains(got, last) || evs[firstN].ID != want {
		t.Fatalf("ids %v (second server from %s): want both servers' events, the second's from %s on", got, evs[firstN].ID, want)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestWatchFilter: the typed stream carries both event types, decoded
// into their oneof cases, and the symbols filter travels in the query.
func TestWatchFilter(t *testing.T) {
	url, _ := startTicker(t, config{Interval: time.Millisecond})
	_, lines := startWatch(t, watchConfig{URL: url, Symbols: []string{"goph", "NATS"}})
	kinds := map[string]int{}
	for range 60 {
		var l string
		select {
		case l = <-lines:
		case <-time.After(20 * time.Second):
			t.Fatal("no event for 20 s")
		}
		f := strings.Fields(l)
		if len(f) < 3 || f[2] != "GOPH" && f[2] != "NATS" {
			t.Fatalf("line %q: want only GOPH and NATS", l)
		}
		kinds[f[1]]++
	}
	if kinds["quote"] == 0 || kinds["trade"] == 0 || len(kinds) != 2 {
		t.Fatalf("event kinds %v, want quotes and trades", kinds)
	}
}
