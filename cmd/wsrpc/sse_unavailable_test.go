package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestSSEWsrpcErrorUnavailable guards that a wsrpc.error event with code
// unavailable (a handler's transient failure: a server draining, a hub
// topic closed under it) is reported on stderr as any wsrpc.error is and
// then reconnected over with Last-Event-ID, as wsrpc's typed client does,
// within --max-reconnects: the command prints every event once, in order,
// and ends as the stream does. With reconnection disabled, or its
// attempts used up by a handler that fails before any event, it exits 1
// as at any other wsrpc.error; other codes still end the command at
// once. The command used to stop at the unavailable event, exit 1, where
// the typed client goes on.
func TestSSEWsrpcErrorUnavailable(t *testing.T) {
	const failure = "wsrpc sse: unavailable: topic closed\n"
	for _, tt := range []struct {
		name      string
		args      []string
		failCalls int32 // the handler's first failCalls calls fail
		failAt    int   // before this note (1 to 4)
		code      wsrpc.Code
		exit      int
		out       string
		stderr    string
		lastIDs   string // the Last-Event-ID of each call
	}{
		{name: "resumes after the handler's unavailable", failCalls: 1, failAt: 3, code: wsrpc.CodeUnavailable,
			exit: 0, out: "1 2 3 4", stderr: failure, lastIDs: `"" "2"`},
		{name: "reconnection disabled", args: []string{"--max-reconnects", "0"}, failCalls: 1, failAt: 3, code: wsrpc.CodeUnavailable,
			exit: 1, out: "1 2", stderr: failure, lastIDs: `""`},
		{name: "attempts used up by a handler failing at once", args: []string{"--max-reconnects", "2"}, failCalls: 99, failAt: 1, code: wsrpc.CodeUnavailable,
			exit: 1, out: "", stderr: failure + failure + failure, lastIDs: `"" "" ""`},
		{name: "another code ends the command", failCalls: 1, failAt: 3, code: wsrpc.CodeNotFound,
			exit: 1, out: "1 2", stderr: "wsrpc sse: not_found: topic closed\n", lastIDs: `""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var lastIDs []string
			url, calls := wsrpcSSEServer(t, func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
				mu.Lock()
				call := int32(len(lastIDs) + 1)
				lastIDs = append(lastIDs, strconv.Quote(s.LastEventID()))
				mu.Unlock()
				from, _ := strconv.Atoi(s.LastEventID())
				for i := from + 1; i <= 4; i++ {
					if call <= tt.failCalls && i == tt.failAt {
						return wsrpc.Errorf(tt.code, "topic closed")
					}
					ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: strconv.Itoa(i)}}, strconv.Itoa(i))
					if err != nil {
						return err
					}
					if err := s.SendEvent(ev); err != nil {
						return err
					}
				}
				return nil
			})
			code, out, errOut := run(t, append(tt.args, "--json", "--reconnect-time", "1ms", url)...)
			var notes []string
			for line := range strings.Lines(out) {
				// {"event":"note","data":"\"1\"","id":"1"}: the id is the note.
				_, id, _ := strings.Cut(strings.TrimSpace(line), `"id":"`)
				notes = append(notes, strings.TrimSuffix(id, `"}`))
			}
			mu.Lock()
			ids := strings.Join(lastIDs, " ")
			mu.Unlock()
			t.Logf("exit %d after %d calls (Last-Event-ID %s); stdout %q; stderr %q", code, calls(), ids, clip(out), errOut)
			if code != tt.exit || strings.Join(notes, " ") != tt.out || errOut != tt.stderr {
				t.Errorf("exit %d, notes %q, stderr %q; want %d, %q (each once, in order), %q", code, strings.Join(notes, " "), errOut, tt.exit, tt.out, tt.stderr)
			}
			if ids != tt.lastIDs {
				t.Errorf("calls with Last-Event-ID %s, want %s", ids, tt.lastIDs)
			}
		})
	}
}

// A reconnection over a handler's unavailable that is answered 204 is no
// clean end: a wsrpc server answers 204 only after wsrpc.end, so the
// stream was cut short, as wsrpc's typed client reports it. The command
// exits 1 saying so; it exited 0, as for a stream that had ended.
func TestSSEUnavailableThen204(t *testing.T) {
	url, requests := script(t, "id: 1\ndata: x\n\nevent: wsrpc.error\ndata: {\"code\":\"unavailable\",\"message\":\"topic closed\"}\n\n", "status 204")
	code, _, errOut := run(t, "--reconnect-time", "1ms", url)
	if code != 1 || !strings.Contains(errOut, "wsrpc sse: unavailable: topic closed") || !strings.Contains(errOut, "ended without wsrpc.end") {
		t.Fatalf("exit %d, stderr %q; want 1, the unavailable line and the cut-short line", code, errOut)
	}
	if n := len(requests()); n != 2 {
		t.Fatalf("%d requests, want 2 (the stream, the reconnection answered 204)", n)
	}
}
