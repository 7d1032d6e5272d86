package sse_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// FuzzParse checks, for any input, that the parser does not panic, that
// every chunking yields the same events as one read, that what it yields
// is well-formed (valid UTF-8, a type for every dispatched event, no NUL,
// CR or LF in ids), and that re-encoding the events and parsing them
// again gives them back.
func FuzzParse(f *testing.F) {
	f.Add([]byte("data: a\n\n"), uint8(1))
	f.Add([]byte("\uFEFFid: 1\r\nevent: e\r\ndata: a\r\rdata: b\r\n\r\n"), uint8(3))
	f.Add([]byte(": c\nretry: 10\n\nid\ndata\n\n"), uint8(2))
	f.Add([]byte("data: \xff\xe2\x82\n\n"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		opts := &sse.ParserOptions{MaxEventSize: 4096, ShowCommentEvents: true, ShowRetryEvents: true}
		whole, wp, werr := parseAll(bytes.NewReader(in), opts)
		n := int(chunk%16) + 1
		chunked, cp, cerr := parseAll(&chunkReader{data: in, n: n}, opts)
		if !errors.Is(cerr, werr) && (werr == nil || cerr == nil || werr.Error() != cerr.Error()) {
			t.Fatalf("errors differ: whole %v, chunks of %d %v", werr, n, cerr)
		}
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("events differ:\nwhole %#v\nchunks of %d %#v", whole, n, chunked)
		}
		if wp.LastEventID() != cp.LastEventID() || wp.ReconnectionTime() != cp.ReconnectionTime() {
			t.Fatalf("state differs")
		}
		var wire []byte
		var dispatched []sse.Event
		for _, e := range whole {
			for _, s := range []string{e.ID, e.Type, e.Data, e.Comment} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 in %+v", e)
				}
			}
			if strings.ContainsAny(e.ID, "\r\n\x00") {
				t.Fatalf("bad id in %+v", e)
			}
			if e.Type == "" {
				if e.Data != "" {
					t.Fatalf("comment or retry event with data: %+v", e)
				}
				continue
			}
			if strings.ContainsAny(e.Type, "\x00") {
				continue // legal on the wire, refused by our encoder
			}
			w, err := sse.AppendEvent(wire, sse.Event{ID: e.ID, Type: e.Type, Data: e.Data})
			if errors.Is(err, sse.ErrInvalidID) {
				continue // likewise: an id no Last-Event-ID header brings back
			}
			if err != nil {
				t.Fatalf("re-encode %+v: %v", e, err)
			}
			wire = w
			dispatched = append(dispatched, e)
		}
		again, _, err := parseAll(bytes.NewReader(wire), &sse.ParserOptions{MaxEventSize: 1 << 20})
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(dispatched) {
			t.Fatalf("re-parse gave %d events, want %d", len(again), len(dispatched))
		}
		for i := range again {
			d := dispatched[i]
			if again[i].Type != d.Type || again[i].Data != d.Data || (d.ID != "" && again[i].ID != d.ID) {
				t.Fatalf("round trip %d: got %+v want %+v", i, again[i], d)
			}
		}
	})
}
