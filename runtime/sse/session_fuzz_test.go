package sse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsrpc/wsrpc/internal/httpfield"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// fuzzResponse is one answer of the scripted server of
// FuzzSessionReconnect.
type fuzzResponse struct {
	kind byte // 0 a stream, 1 204, 2 503, 3 a transport error
	body []byte
}

// fuzzScript splits a fuzz input into at most 5 answers, separated by
// 0xFF (a byte no UTF-8 holds, so bodies keep every other one): each
// answer's first byte picks its kind, the rest is a stream's body.
func fuzzScript(in []byte) []fuzzResponse {
	var out []fuzzResponse
	for _, part := range bytes.SplitN(in, []byte{0xff}, 5) {
		r := fuzzResponse{kind: 1}
		if len(part) > 0 {
			r.kind = []byte{0, 0, 0, 1, 2, 3}[part[0]%6]
			r.body = part[1:]
		}
		out = append(out, r)
	}
	return out
}

// FuzzSessionReconnect runs a client Session against a scripted server
// that answers each request with an event stream, 204, 503 or a transport
// error; once the script is over it answers 204. Time is synctest's, so a
// "retry:" of years costs nothing and no wait depends on the machine.
// The session must, against a model made of one Parser per stream:
//   - yield exactly the events of the streams it was served, in order;
//   - send as Last-Event-ID the last event ID string the streams before
//     left (the option's at first), or, when that cannot be a header
//     value, make no request and fail with ErrInvalidID;
//   - wait before each reconnection at least the reconnection time the
//     streams before left (the option's at first), and at least 100 ms;
//   - make at most MaxReconnectionAttempts requests in a row after one
//     that delivered an event (one more from the start);
//   - end with a bare io.EOF only on a 204 or, reconnection disabled, a
//     stream's end, and otherwise with an error that does not match it.
func FuzzSessionReconnect(f *testing.F) {
	f.Add([]byte("\x00id: 1\ndata: a\n\n\xff\x00retry: 10\ndata: b\n\n\xff\x01"), uint8(0))
	f.Add([]byte("\x00retry: 0\n: hi\n\n\xff\x00retry: 0\n\n\xff\x00\xff\x00"), uint8(1))
	f.Add([]byte("\x00id: a\x01b\ndata: x\n\n\xff\x00data: y\n\n"), uint8(2))
	f.Add([]byte("\x02\xff\x03\xff\x00id\nretry: 99999999999999999999\ndata\n\n\xff\x00"), uint8(7))
	f.Add([]byte("\x04\xff\x00data: \xc3\n\n"), uint8(12))
	f.Add([]byte("\x00data: "+strings.Repeat("z", 300)+"\n\n"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, flags uint8) {
		script := fuzzScript(in)
		opts := &sse.ClientOptions{
			MaxReconnectionAttempts: []int{0, 1, 2, -1}[flags&3],
			ShowRetryEvents:         flags&4 != 0,
			ShowCommentEvents:       flags&8 != 0,
			MaxEventSize:            256,
		}
		if flags&16 != 0 {
			opts.ReconnectionTime = 50 * time.Millisecond
		}
		if flags&32 != 0 {
			opts.LastEventID = "start"
		}
		synctest.Test(t, func(t *testing.T) { runSessionScript(t, script, opts) })
	})
}

func runSessionScript(t *testing.T, script []fuzzResponse, opts *sse.ClientOptions) {
	// The model: what each request must carry and each stream yield.
	lastID := opts.LastEventID
	rt := opts.ReconnectionTime
	if rt <= 0 {
		rt = sse.DefaultReconnectionTime
	}
	var (
		want     []sse.Event
		requests int
		lastAt   time.Time
		bad      []string
		final    error // the model's verdict once a stream ends the session
	)
	rtAt := rt // the reconnection time when the last request was made
	transport := roundTripper(func(req *http.Request) (*http.Response, error) {
		now := time.Now()
		if requests > 0 {
			if wait := now.Sub(lastAt); wait < max(rtAt, 100*time.Millisecond) {
				bad = append(bad, fmt.Sprintf("request %d came %v after the one before, reconnection time %v", requests, wait, rtAt))
			}
		}
		if got := req.Header.Get("Last-Event-ID"); got != lastID || !httpfield.ValidValue(got) {
			bad = append(bad, fmt.Sprintf("request %d: Last-Event-ID %q, want %q (a valid header value)", requests, got, lastID))
		}
		lastAt = now
		r := fuzzResponse{kind: 1}
		if requests < len(script) {
			r = script[requests]
		}
		requests++
		switch r.kind {
		case 1:
			return &http.Response{StatusCode: http.StatusNoContent, Status: "204 No Content", Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		case 2:
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Header: http.Header{}, Body: io.NopCloser(strings.NewReader("busy")), Request: req}, nil
		case 3:
			return nil, errors.New("connection reset by the script")
		}
		p := sse.NewParser(bytes.NewReader(r.body), &sse.ParserOptions{
			MaxEventSize: opts.MaxEventSize, LastEventID: lastID, ReconnectionTime: rt,
			ShowCommentEvents: opts.ShowCommentEvents, ShowRetryEvents: opts.ShowRetryEvents,
		})
		for {
			ev, err := p.Next()
			if err != nil {
				if errors.Is(err, sse.ErrEventTooLarge) {
					final = err
				}
				break
			}
			want = append(want, ev)
		}
		lastID, rt = p.LastEventID(), p.ReconnectionTime()
		rtAt = rt
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK",
			Header: http.Header{"Content-Type": {"text/event-stream"}},
			Body:   io.NopCloser(bytes.NewReader(r.body)), Request: req}, nil
	})
	o := *opts
	o.HTTPClient = &http.Client{Transport: transport}
	// A "retry:" may ask for up to 292 years, past where a timer's end
	// fits an int64 of nanoseconds: the session's life is 50 years.
	ctx, cancel := context.WithTimeout(context.Background(), lifetime)
	defer cancel()
	s := sse.NewSession(ctx, "http://sse.test/events", &o)
	defer s.Close()

	var got []sse.Event
	var err error
	var kinds []byte // what each request got, as the session consumed them
	sinceEvent := 0  // requests since the last one whose stream had an event
	delivered := false
	for i := 0; ; i++ {
		before := requests
		var ev sse.Event
		ev, err = s.Next()
		for k := before; k < requests; k++ {
			kind := byte(1)
			if k < len(script) {
				kind = script[k].kind
			}
			kinds = append(kinds, kind)
			sinceEvent++
			limit := opts.MaxReconnectionAttempts
			if !delivered {
				limit++ // the first request is no reconnection
			}
			if opts.MaxReconnectionAttempts > 0 && sinceEvent > limit {
				t.Fatalf("request %d: %d in a row without an event, MaxReconnectionAttempts %d", k, sinceEvent, opts.MaxReconnectionAttempts)
			}
		}
		if err != nil {
			break
		}
		if ev.Type != "" {
			sinceEvent, delivered = 0, true
		}
		got = append(got, ev)
		if i > 10000 {
			t.Fatal("10000 events from a finite script")
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("events differ from the streams served:\ngot  %#v\nwant %#v", got, want)
	}
	if s.LastEventID() != lastID {
		t.Errorf("LastEventID %q, want %q", s.LastEventID(), lastID)
	}
	if s.ReconnectionTime() != rt {
		t.Errorf("ReconnectionTime %v, want %v", s.ReconnectionTime(), rt)
	}
	if err != io.EOF && errors.Is(err, io.EOF) {
		t.Fatalf("terminal error %v matches io.EOF", err)
	}
	last := byte(255)
	if len(kinds) > 0 {
		last = kinds[len(kinds)-1]
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		if rtAt < lifetime/2 {
			t.Fatalf("the session outlived its %v context with a reconnection time of %v", lifetime, rtAt)
		}
	case final != nil:
		if !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("a stream with an event too large ended the session with %v", err)
		}
	case errors.Is(err, sse.ErrInvalidID):
		if httpfield.ValidValue(lastID) {
			t.Fatalf("last event ID %q ended the session with %v", lastID, err)
		}
	case err == io.EOF:
		if last != 1 && !(last == 0 && opts.MaxReconnectionAttempts < 0) {
			t.Fatalf("io.EOF after a request answered with kind %d (kinds %v, MaxReconnectionAttempts %d)", last, kinds, opts.MaxReconnectionAttempts)
		}
	case last == 1:
		t.Fatalf("a 204 ended the session with %v, want io.EOF", err)
	}
}

// lifetime bounds a session of FuzzSessionReconnect, in synctest's time.
const lifetime = 50 * 365 * 24 * time.Hour

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
