package sse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// rawGet requests url with the given headers and returns the response;
// the caller reads the raw body.
func rawGet(t *testing.T, url string, header http.Header) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// newServer starts a test server closed at cleanup, after the cleanups
// registered later (such as response bodies) have run.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// readExactly reads len(want) bytes from r and compares them.
func readExactly(t *testing.T, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestStreamHeadersAndFlush(t *testing.T) {
	next := make(chan sse.Event)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Retry: 250 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		for e := range next {
			if err := s.Send(e); err != nil {
				t.Error(err)
				return
			}
		}
		if err := s.Comment("bye\nnow"); err != nil {
			t.Error(err)
		}
	}))

	resp := rawGet(t, srv.URL, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// Each event must arrive before the next is sent: the server blocks
	// on the unbuffered channel, so a missing flush would hang here.
	readExactly(t, resp.Body, "retry: 250\n\n")
	next <- sse.Event{ID: "1", Type: "greet", Data: "hello\nworld"}
	readExactly(t, resp.Body, "id: 1\nevent: greet\ndata: hello\ndata: world\n\n")
	next <- sse.Event{Data: "two"}
	readExactly(t, resp.Body, "data: two\n\n")
	close(next)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != ": bye\n: now\n\n" {
		t.Fatalf("rest = %q", rest)
	}
}

func TestStreamRejectsBadEvents(t *testing.T) {
	rec := httptest.NewRecorder()
	s, err := sse.NewStream(rec, httptest.NewRequest("GET", "/", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		e    sse.Event
		want error
	}{
		{sse.Event{ID: "a\nb", Data: "x"}, sse.ErrInvalidID},
		{sse.Event{ID: "a\x00", Data: "x"}, sse.ErrInvalidID},
		{sse.Event{Type: "a\rb", Data: "x"}, sse.ErrInvalidType},
		{sse.Event{Type: "\x00", Data: "x"}, sse.ErrInvalidType},
		{sse.Event{}, sse.ErrEmptyEvent},
	} {
		if err := s.Send(tt.e); !errors.Is(err, tt.want) {
			t.Errorf("Send(%#v) = %v, want %v", tt.e, err, tt.want)
		}
	}
	// A rejected event writes nothing and does not break the stream:
	// only the opening comment (see TestStreamOpensWithBodyByte) and ok.
	if err := s.Send(sse.Event{Data: "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != ": open\n\ndata: ok\n\n" {
		t.Fatalf("body = %q", got)
	}
	s.Close()
	if err := s.Send(sse.Event{Data: "late"}); !errors.Is(err, sse.ErrStreamClosed) {
		t.Fatalf("Send after Close = %v, want ErrStreamClosed", err)
	}
}

// noFlushWriter hides the recorder's Flush.
type noFlushWriter struct{ h http.Header }

func (w noFlushWriter) Header() http.Header         { return w.h }
func (w noFlushWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w noFlushWriter) WriteHeader(int)             {}

func TestStreamNeedsFlusher(t *testing.T) {
	_, err := sse.NewStream(noFlushWriter{http.Header{}}, httptest.NewRequest("GET", "/", nil), nil)
	if !errors.Is(err, sse.ErrFlushUnsupported) {
		t.Fatalf("NewStream = %v, want ErrFlushUnsupported", err)
	}
}

// hideFlush wraps a ResponseWriter as a minimal logging middleware does:
// no Flush, no Unwrap.
type hideFlush struct{ http.ResponseWriter }

// flushOnly has Flush but neither Unwrap nor SetWriteDeadline, as many
// hand-written middleware wrappers.
type flushOnly struct{ http.ResponseWriter }

func (w flushOnly) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// unwrapOnly has no Flush of its own but unwraps to a writer that has.
type unwrapOnly struct{ http.ResponseWriter }

func (w unwrapOnly) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestStreamFailsBeforeStatus guards that NewStream decides whether it can
// stream before it writes the 200: a handler that gets its error can then
// answer 500 (as docs/sse.md shows), which a client takes as final (WHATWG
// HTML §9.2.3), instead of an empty event stream it would reconnect to
// forever.
func TestStreamFailsBeforeStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wrap    func(http.ResponseWriter) http.ResponseWriter
		opts    sse.StreamOptions
		wantErr error
	}{
		{"no flusher", func(w http.ResponseWriter) http.ResponseWriter { return hideFlush{w} },
			sse.StreamOptions{Retry: time.Second}, sse.ErrFlushUnsupported},
		{"explicit WriteTimeout without deadlines", func(w http.ResponseWriter) http.ResponseWriter { return flushOnly{w} },
			sse.StreamOptions{Retry: time.Second, WriteTimeout: 5 * time.Second}, http.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nerr := make(chan error, 1)
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := sse.NewStream(tc.wrap(w), r, &tc.opts)
				nerr <- err
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				s.Close()
			}))
			resp := rawGet(t, srv.URL, nil)
			body, _ := io.ReadAll(resp.Body)
			err := <-nerr
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("NewStream = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != sse.ErrFlushUnsupported && errors.Is(err, sse.ErrFlushUnsupported) {
				t.Errorf("NewStream = %v: the writer can flush", err)
			}
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") == "text/event-stream" ||
				strings.Contains(string(body), "retry:") {
				t.Errorf("client got status %d, Content-Type %q, body %q; want the handler's 500 and nothing of the stream",
					resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}

	// A wrapper that unwraps to a flusher streams, as with
	// http.ResponseController.
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(unwrapOnly{w}, r, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer s.Close()
		s.Send(sse.Event{Data: "ok"})
	}))
	resp := rawGet(t, srv.URL, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("behind an Unwrap-only wrapper: status %d", resp.StatusCode)
	}
	readExactly(t, resp.Body, ": open\n\ndata: ok\n\n")
}

func TestStreamHeartbeat(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: 20 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		<-s.Context().Done()
	}))
	resp := rawGet(t, srv.URL, nil)
	br := bufio.NewReader(resp.Body)
	readExactly(t, br, ": open\n\n")
	for range 3 {
		readExactly(t, br, ": heartbeat\n\n")
	}
}

// TestStreamEndsWhenClientGoes: sends fail with ErrClientGone once the
// client has disconnected, and the heartbeat goroutine stops.
func TestStreamEndsWhenClientGoes(t *testing.T) {
	result := make(chan error, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: time.Millisecond})
		if err != nil {
			result <- err
			return
		}
		defer s.Close()
		<-s.Context().Done()
		result <- s.Send(sse.Event{Data: "after"})
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case err := <-result:
		if !errors.Is(err, sse.ErrClientGone) {
			t.Fatalf("Send after disconnect = %v, want ErrClientGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not notice the client going away")
	}
}

// TestStreamConcurrentSends: events sent from many goroutines never
// interleave on the wire.
func TestStreamConcurrentSends(t *testing.T) {
	const senders, each = 8, 50
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Heartbeat: time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					s.Send(sse.Event{Type: "t", Data: strings.Repeat(string(rune('a'+g)), 100) + "\n" + strings.Repeat("z", i)})
				}
			})
		}
		wg.Wait()
	}))
	resp := rawGet(t, srv.URL, nil)
	events, _, err := parseAll(resp.Body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != senders*each {
		t.Fatalf("got %d events, want %d", len(events), senders*each)
	}
	for _, e := range events {
		first, _, _ := strings.Cut(e.Data, "\n")
		if e.Type != "t" || len(first) != 100 || strings.Trim(first, first[:1]) != "" {
			t.Fatalf("interleaved event %q", e.Data)
		}
	}
}

// lingerWriter records a stream's bytes and lingers in the Write of the
// event of type last, holding the stream's lock, so that the goroutines
// sending meanwhile queue on it (and Go's mutex, after 1 ms, hands it
// to a waiter rather than to whoever locks next).
type lingerWriter struct {
	*httptest.ResponseRecorder
	last string
}

func (w lingerWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(b)
	if strings.Contains(string(b), "event: "+w.last+"\n") {
		time.Sleep(3 * time.Millisecond)
	}
	return n, err
}

// TestStreamCloseWithIsLast guards CloseWith against sends from other
// goroutines: its event is the last on the wire, and every Send that
// returned nil went out before it (later ones fail with ErrStreamClosed).
// Send followed by Close let a concurrent Send slip in between, after an
// "end" event that tells the client the stream is over (wsrpc.end).
func TestStreamCloseWithIsLast(t *testing.T) {
	const rounds, senders = 20, 4
	for round := range rounds {
		rec := lingerWriter{httptest.NewRecorder(), "end"}
		s, err := sse.NewStream(rec, httptest.NewRequest(http.MethodGet, "/", nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		delivered := map[string]bool{} // data of the sends that returned nil
		started := make(chan struct{}, senders)
		for g := range senders {
			wg.Go(func() {
				for i := 0; ; i++ {
					data := fmt.Sprintf("%d-%d", g, i)
					err := s.Send(sse.Event{Type: "note", Data: data})
					if i == 0 {
						started <- struct{}{}
					}
					if err != nil {
						if !errors.Is(err, sse.ErrStreamClosed) {
							t.Errorf("Send after CloseWith = %v, want ErrStreamClosed", err)
						}
						return
					}
					mu.Lock()
					delivered[data] = true
					mu.Unlock()
				}
			})
		}
		for range senders {
			<-started
		}
		if err := s.CloseWith(sse.Event{Type: "end", Data: "{}"}); err != nil {
			t.Fatalf("CloseWith = %v", err)
		}
		wg.Wait()
		events, _, err := parseAll(rec.Body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(events); n == 0 || events[n-1].Type != "end" {
			for i, e := range events {
				if e.Type == "end" {
					t.Fatalf("round %d: %d events after the one CloseWith sent, the first %q", round, n-1-i, events[i+1].Data)
				}
			}
			t.Fatalf("round %d: no end event among %d", round, n)
		}
		for _, e := range events[:len(events)-1] {
			delete(delivered, e.Data)
		}
		if len(delivered) > 0 {
			t.Fatalf("round %d: %d Sends returned nil but their events are not before the end", round, len(delivered))
		}
	}
}

func TestRing(t *testing.T) {
	r := sse.NewRing(3)
	var ids []string
	for i := range 5 {
		e, err := r.Append(sse.Event{Data: strings.Repeat("x", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	// Assigned ids: the ring's epoch and 1, 2, … (see
	// TestRingIDsUniquePerRing).
	epoch := ringEpoch(t, r)
	for i, id := range ids {
		if want := epoch + strconv.Itoa(i+1); id != want {
			t.Fatalf("ids = %v, want %s1 to %s5", ids, epoch, epoch)
		}
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d", r.Len())
	}
	got, err := r.Since(ids[2])
	if err != nil || len(got) != 2 || got[0].ID != ids[3] || got[1].ID != ids[4] || got[1].Data != "xxxxx" {
		t.Fatalf("Since(3) = %v, %v", got, err)
	}
	if got, err := r.Since(ids[4]); err != nil || len(got) != 0 {
		t.Fatalf("Since(5) = %v, %v", got, err)
	}
	// 2 was evicted last: all that came after it is held (see
	// TestRingResumeFromLastEvicted); 1 was evicted before.
	if got, err := r.Since(ids[1]); err != nil || len(got) != 3 || got[0].ID != ids[2] {
		t.Fatalf("Since(2) = %v, %v", got, err)
	}
	// A bare number is no id of this ring.
	for _, id := range []string{ids[0], epoch + "6", "", "x", "3"} {
		if _, err := r.Since(id); !errors.Is(err, sse.ErrUnknownID) {
			t.Errorf("Since(%q) = %v, want ErrUnknownID", id, err)
		}
	}
	if _, err := r.Append(sse.Event{ID: ids[4], Data: "dup"}); !errors.Is(err, sse.ErrDuplicateID) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := r.Append(sse.Event{ID: "a\nb", Data: "x"}); !errors.Is(err, sse.ErrInvalidID) {
		t.Fatalf("bad id: %v", err)
	}
	e, err := r.Append(sse.Event{ID: "custom", Data: "c"})
	if err != nil || e.ID != "custom" {
		t.Fatalf("custom id: %v %v", e, err)
	}
	// A caller-given id that takes the next assigned one (custom was 6,
	// this is 7, the next is 8) does not produce a duplicate.
	if _, err := r.Append(sse.Event{ID: epoch + "8", Data: "c"}); err != nil {
		t.Fatal(err)
	}
	e, err = r.Append(sse.Event{Data: "d"})
	if err != nil || e.ID != epoch+"8'" {
		t.Fatalf("generated id %q, %v; want %q", e.ID, err, epoch+"8'")
	}
	if got, err := r.Since("custom"); err != nil || len(got) != 2 {
		t.Fatalf("Since(custom) = %v, %v", got, err)
	}
}

// TestStreamReplay: a client with Last-Event-ID gets the later events
// from the store; live events it already got from the replay are not
// sent twice; an unknown id is reported as a gap.
func TestStreamReplay(t *testing.T) {
	ring := sse.NewRing(4)
	for i := range 6 { // ids given, so that live events can repeat them
		ring.Append(sse.Event{ID: string(rune('1' + i)), Data: "e" + string(rune('1'+i))})
	}
	type result struct {
		lastID string
		gap    bool
	}
	results := make(chan result, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, &sse.StreamOptions{Replay: ring})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		results <- result{s.LastEventID(), s.Gap()}
		if s.Gap() {
			s.Send(sse.Event{Type: "reset", Data: "snapshot"})
		}
		// Live events queued since the handler subscribed, which was
		// when 4 was the newest event; a client can only have seen
		// events older than its subscription, so a client resuming from
		// 6 subscribed later and gets 6 and 7 live at most: 6 when the
		// publisher's store showed it (to another stream's replay)
		// before the publisher handed it on, which is the client's last
		// event and must not go out again. Events both replayed and
		// queued must go out once.
		live := []string{"5", "6", "7"}
		if s.LastEventID() == "6" {
			live = live[1:]
		}
		for _, id := range live {
			if err := s.Send(sse.Event{ID: id, Data: "live" + id}); err != nil {
				t.Error(err)
			}
		}
		// Once a new event went out, an old id is sent again as given.
		s.Send(sse.Event{ID: "5", Data: "again"})
	}))

	tests := []struct {
		lastID string
		want   []string
		gap    bool
	}{
		{lastID: "", want: []string{"5:live5", "6:live6", "7:live7", "5:again"}},
		{lastID: "4", want: []string{"5:e5", "6:e6", "7:live7", "5:again"}},
		{lastID: "6", want: []string{"7:live7", "5:again"}},
		// 2 was evicted last: the client missed exactly 3 to 6, all held.
		{lastID: "2", want: []string{"3:e3", "4:e4", "5:e5", "6:e6", "7:live7", "5:again"}},
		{lastID: "1", gap: true, want: []string{"1:snapshot", "5:live5", "6:live6", "7:live7", "5:again"}},
		{lastID: "nope", gap: true, want: []string{"nope:snapshot", "5:live5", "6:live6", "7:live7", "5:again"}},
	}
	for _, tt := range tests {
		t.Run("last="+tt.lastID, func(t *testing.T) {
			h := http.Header{}
			if tt.lastID != "" {
				h.Set("Last-Event-ID", tt.lastID)
			}
			resp := rawGet(t, srv.URL, h)
			events, _, err := parseAll(resp.Body, &sse.ParserOptions{LastEventID: tt.lastID})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range events {
				got = append(got, e.ID+":"+e.Data)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events = %q, want %q", got, tt.want)
			}
			if r := <-results; r.lastID != tt.lastID || r.gap != tt.gap {
				t.Errorf("LastEventID, Gap = %q, %v; want %q, %v", r.lastID, r.gap, tt.lastID, tt.gap)
			}
		})
	}
}

// failingStore fails every lookup.
type failingStore struct{ sse.Store }

func (failingStore) Since(string) ([]sse.Event, error) { return nil, errors.New("store down") }

func TestStreamReplayStoreError(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Last-Event-ID", "3")
	_, err := sse.NewStream(httptest.NewRecorder(), req, &sse.StreamOptions{Replay: failingStore{}})
	if err == nil || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("NewStream = %v, want the store's error", err)
	}
}

// TestStreamLastEventIDQuery: a page that re-creates its EventSource
// (the browser gives up for good on a proxy's 502 while the server
// restarts, WHATWG HTML §9.2.3) cannot set Last-Event-ID, so it resumes
// with ?lastEventId=, the name EventSource polyfills use. The stream
// takes the id from there when the request has no Last-Event-ID header;
// the header, which the browser's own reconnections send with the newer
// id, wins when both are present. The parameter is held to what a header
// can carry (RFC 9110 §5.5): trimmed of spaces and tabs, and ignored with
// a control character other than tab. Before, the parameter was ignored
// and such a page lost every event published while it was away.
func TestStreamLastEventIDQuery(t *testing.T) {
	ring := sse.NewRing(8)
	for i, d := range []string{"a", "b", "c", "d"} { // ids 1 to 4
		if _, err := ring.Append(sse.Event{ID: strconv.Itoa(i + 1), Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, query string
		header      []string // Last-Event-ID values; nil: no header
		wantID      string
		wantGap     bool
		wantReplay  string // what NewStream writes: the replay, or the opening comment
	}{
		{"no id", "", nil, "", false, ": open\n\n"},
		{"query", "?lastEventId=2", nil, "2", false, "id: 3\ndata: c\n\nid: 4\ndata: d\n\n"},
		{"query among others", "?room=x&lastEventId=3&n=1", nil, "3", false, "id: 4\ndata: d\n\n"},
		{"header wins", "?lastEventId=1", []string{"3"}, "3", false, "id: 4\ndata: d\n\n"},
		{"empty header", "?lastEventId=3", []string{""}, "3", false, "id: 4\ndata: d\n\n"},
		{"trimmed as a header", "?lastEventId=%20%093%20", nil, "3", false, "id: 4\ndata: d\n\n"},
		{"tab inside", "?lastEventId=a%09b", nil, "a\tb", true, ": open\n\n"},
		{"unknown", "?lastEventId=9", nil, "9", true, ": open\n\n"},
		{"empty query", "?lastEventId=", nil, "", false, ": open\n\n"},
		{"LF: no header could carry it", "?lastEventId=3%0A", nil, "", false, ": open\n\n"},
		{"NUL", "?lastEventId=3%00", nil, "", false, ": open\n\n"},
		{"control character", "?lastEventId=3%01", nil, "", false, ": open\n\n"},
		{"other name", "?last-event-id=3&lastEventID=3", nil, "", false, ": open\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/"+tt.query, nil)
			if tt.header != nil {
				req.Header["Last-Event-Id"] = tt.header
			}
			rec := httptest.NewRecorder()
			s, err := sse.NewStream(rec, req, &sse.StreamOptions{Replay: ring})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.LastEventID() != tt.wantID || s.Gap() != tt.wantGap {
				t.Errorf("LastEventID, Gap = %q, %v; want %q, %v", s.LastEventID(), s.Gap(), tt.wantID, tt.wantGap)
			}
			if got := rec.Body.String(); got != tt.wantReplay {
				t.Errorf("replay wrote %q, want %q", got, tt.wantReplay)
			}
		})
	}
}

// TestStreamSendReplayedAfterEnd: once the stream has ended (Close, or
// the client gone), Send and SendPrepared of an event the replay just
// delivered report it like any other send (ErrStreamClosed,
// ErrClientGone) instead of returning nil as if it had gone out. The
// duplicate check used to come before the check for the end.
func TestStreamSendReplayedAfterEnd(t *testing.T) {
	ring := sse.NewRing(8)
	for i := range 3 { // ids 1 to 3
		if _, err := ring.Append(sse.Event{ID: strconv.Itoa(i + 1), Data: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		end  func(s *sse.Stream, cancel context.CancelFunc)
		want error
	}{
		{"closed", func(s *sse.Stream, _ context.CancelFunc) { s.Close() }, sse.ErrStreamClosed},
		{"client gone", func(_ *sse.Stream, cancel context.CancelFunc) { cancel() }, sse.ErrClientGone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
			req.Header.Set("Last-Event-ID", "1")
			rec := httptest.NewRecorder()
			s, err := sse.NewStream(rec, req, &sse.StreamOptions{Replay: ring})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if want := "id: 2\ndata: b\n\nid: 3\ndata: c\n\n"; rec.Body.String() != want {
				t.Fatalf("replay wrote %q, want %q", rec.Body.String(), want)
			}
			tt.end(s, cancel)
			if err := s.Send(sse.Event{ID: "3", Data: "c"}); !errors.Is(err, tt.want) {
				t.Errorf("Send(replayed id) after the end = %v, want %v", err, tt.want)
			}
			p, err := sse.Prepare(sse.Event{ID: "2", Data: "b"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SendPrepared(p); !errors.Is(err, tt.want) {
				t.Errorf("SendPrepared(replayed id) after the end = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestStreamHTTP10: a Stream answering an HTTP/1.0 request, which has no
// chunked encoding (RFC 9112 §6.3: the body ends when the connection
// closes), delivers each event as it is sent, and the stream ends when
// the handler returns.
func TestStreamHTTP10(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		if err := s.Send(sse.Event{ID: "1", Data: "a"}); err != nil {
			t.Error(err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // ends the handler too, should the test fail early
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 {
		t.Fatalf("status %d, Content-Type %q, Transfer-Encoding %q", resp.StatusCode, ct, resp.TransferEncoding)
	}
	p := sse.NewParser(resp.Body, nil)
	ev, err := p.Next() // before the handler returns: flushed as sent
	close(release)
	if err != nil || ev.Data != "a" || ev.ID != "1" {
		t.Fatalf("Next = %+v, %v", ev, err)
	}
	if ev, err := p.Next(); err != io.EOF {
		t.Fatalf("Next after the handler returned = %+v, %v; want io.EOF (the connection closed)", ev, err)
	}
}

// TestStreamKeepsNoLargeBuffer guards what a stream holds after a large
// replay or a large event: the replay is written in chunks and no buffer
// past 64 KiB is kept for the stream's lifetime. A resumed stream kept
// its whole backlog encoded (2.27 MB for 1,023 events of 2 KiB, against
// 16.6 KB for a fresh one), so an attacker resuming from an old id on
// many connections that read nothing held that much memory per request.
// The replay still arrives whole and in order.
func TestStreamKeepsNoLargeBuffer(t *testing.T) {
	ring := sse.NewRing(1024)
	data := strings.Repeat("x", 2048)
	for range 1100 {
		if _, err := ring.Append(sse.Event{Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Last-Event-ID", ringEpoch(t, ring)+"77") // the oldest id the ring still holds (77..1100)
	rec := httptest.NewRecorder()
	s, err := sse.NewStream(rec, req, &sse.StreamOptions{Replay: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := strings.Count(rec.Body.String(), "data: "+data+"\n\n"); got != 1100-77 {
		t.Fatalf("replayed %d events, want %d", got, 1100-77)
	}
	if c := sse.BufCap(s); c > 64<<10 {
		t.Errorf("after the replay the stream keeps a %d-byte buffer", c)
	}
	if err := s.Send(sse.Event{Data: strings.Repeat("y", 1<<20)}); err != nil {
		t.Fatal(err)
	}
	if c := sse.BufCap(s); c > 64<<10 {
		t.Errorf("after a 1 MiB event the stream keeps a %d-byte buffer", c)
	}
}

// TestStreamMaxReplayBytes guards StreamOptions.MaxReplayBytes: a
// resumption whose backlog holds more data than the bound replays nothing
// and reports a gap (the handler sends a snapshot instead); one within
// the bound replays as usual.
func TestStreamMaxReplayBytes(t *testing.T) {
	ring := sse.NewRing(16)
	for range 10 {
		if _, err := ring.Append(sse.Event{Data: strings.Repeat("x", 100)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		from    string
		replays int
		gap     bool
	}{
		{"8", 2, false}, // 2 events, about 200 bytes: within 500
		{"2", 0, true},  // 8 events, about 800 bytes: over
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Last-Event-ID", ringEpoch(t, ring)+tt.from)
		rec := httptest.NewRecorder()
		s, err := sse.NewStream(rec, req, &sse.StreamOptions{Replay: ring, MaxReplayBytes: 500})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(rec.Body.String(), "data: "); got != tt.replays || s.Gap() != tt.gap {
			t.Errorf("from %s: replayed %d, gap %v; want %d, %v", tt.from, got, s.Gap(), tt.replays, tt.gap)
		}
		s.Close()
	}
}

// TestStreamOpensWithBodyByte guards that a stream reaches the client
// before it has anything to send: the status line, the headers and a body
// byte (the ": open" comment, unless a retry field or a replay is written
// instead) arrive without any Send. NewStream flushed only the headers,
// and a proxy that holds the response until the first body byte (nginx
// towards an HTTP/2 client) sent the client nothing, not even the 200,
// until the first event or heartbeat: 8 s, then a reset, for a quiet
// typed call. The rest of the body, once the handler returns, is empty:
// there is one opening block and no more.
func TestStreamOpensWithBodyByte(t *testing.T) {
	ring := sse.NewRing(8)
	for i, d := range []string{"a", "b"} { // ids 1 and 2
		if _, err := ring.Append(sse.Event{ID: strconv.Itoa(i + 1), Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		opts   *sse.StreamOptions
		lastID string
		want   string
	}{
		{"no options", nil, "", ": open\n\n"},
		{"heartbeat not due", &sse.StreamOptions{Heartbeat: time.Hour}, "", ": open\n\n"},
		{"resumed, nothing missed", &sse.StreamOptions{Replay: ring}, "2", ": open\n\n"},
		{"resumed with a gap", &sse.StreamOptions{Replay: ring}, "9", ": open\n\n"},
		{"gap over MaxReplayBytes", &sse.StreamOptions{Replay: ring, MaxReplayBytes: 1}, "0", ": open\n\n"},
		{"retry instead", &sse.StreamOptions{Retry: 250 * time.Millisecond}, "", "retry: 250\n\n"},
		{"replay instead", &sse.StreamOptions{Replay: ring}, "1", "id: 2\ndata: b\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := sse.NewStream(w, r, tt.opts)
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close() // ends the handler too, should the test fail early
			c.SetDeadline(time.Now().Add(10 * time.Second))
			req := "GET / HTTP/1.1\r\nHost: x\r\n"
			if tt.lastID != "" {
				req += "Last-Event-ID: " + tt.lastID + "\r\n"
			}
			io.WriteString(c, req+"\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no response before any Send: %v", err)
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			readExactly(t, resp.Body, tt.want) // the handler is still waiting
			close(release)
			if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
				t.Fatalf("after %q the body went on with %q, %v; want its end", tt.want, rest, err)
			}
		})
	}
}

// TestStreamOpenComment: the opening comment is invisible to a client
// that hides comments, as browsers do, and reaches one that shows them
// (ShowCommentEvents) as one comment event with the text "open", before
// the first event. It counts as a write for the heartbeat's idle clock.
func TestStreamOpenComment(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		s.Send(sse.Event{Data: "first"})
	}))
	for _, show := range []bool{false, true} {
		events, err := collect(t, srv.URL, &sse.ClientOptions{ShowCommentEvents: show, MaxReconnectionAttempts: -1})
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		want := []sse.Event{{Type: "message", Data: "first"}}
		if show {
			want = append([]sse.Event{{Comment: "open"}}, want...)
		}
		if !reflect.DeepEqual(events, want) {
			t.Errorf("ShowCommentEvents %v: events %+v, want %+v", show, events, want)
		}
	}

	before := time.Now()
	s, err := sse.NewStream(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), &sse.StreamOptions{Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if lw := sse.LastWriteOf(s); lw.Before(before) {
		t.Errorf("the heartbeat's idle clock starts at %v, before the stream opened (%v)", lw, before)
	}
}
