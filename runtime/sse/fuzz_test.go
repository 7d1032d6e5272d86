package sse_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// FuzzParse checks, for any input, that the parser does not panic, that
// every chunking yields the same events as one read, that what it yields
// is well-formed (valid UTF-8, a type for every dispatched event, no NUL,
// CR or LF in ids), and that re-encoding the events and parsing them
// again gives them back. Under a size limit (ParserOptions.MaxEventSize),
// it yields the events of an unlimited parse, each within the limit, until
// it fails with ErrEventTooLarge.
func FuzzParse(f *testing.F) {
	f.Add([]byte("data: a\n\n"), uint8(1))
	f.Add([]byte("\uFEFFid: 1\r\nevent: e\r\ndata: a\r\rdata: b\r\n\r\n"), uint8(3))
	f.Add([]byte(": c\nretry: 10\n\nid\ndata\n\n"), uint8(2))
	f.Add([]byte("data: \xff\xe2\x82\n\n"), uint8(5))
	f.Add([]byte(": 0123456789\ndata: 01234\ndata: 5\n\ndata: \xff\xff\xff\n\n"), uint8(0x30))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		// The high bits of chunk pick a size limit small enough for the
		// fuzzer's inputs to reach: 4 to 60 bytes, or 4096.
		limit := 4096
		if chunk>>4 != 0 {
			limit = int(chunk>>4) * 4
		}
		opts := &sse.ParserOptions{MaxEventSize: limit, ShowCommentEvents: true, ShowRetryEvents: true}
		whole, wp, werr := parseAll(bytes.NewReader(in), opts)
		if werr != nil && !errors.Is(werr, sse.ErrEventTooLarge) {
			t.Fatalf("error %v from a reader that only ends", werr)
		}
		// The limit ends the stream, and changes nothing before: the
		// events are those of a parser whose limit nothing in the input
		// can reach (a byte decodes to at most 3, U+FFFD), up to the
		// error, each within the limit (data and comment together).
		ref, _, err := parseAll(bytes.NewReader(in), &sse.ParserOptions{MaxEventSize: 3*len(in) + 1, ShowCommentEvents: true, ShowRetryEvents: true})
		if err != nil {
			t.Fatalf("a limit the input cannot reach: %v", err)
		}
		if len(whole) > len(ref) || werr == nil && len(whole) != len(ref) || !slices.Equal(whole, ref[:len(whole)]) {
			t.Fatalf("limit %d: events differ from the unlimited parse:\n%#v (%v)\n%#v", limit, whole, werr, ref)
		}
		for _, e := range whole {
			if len(e.Data)+len(e.Comment) > limit {
				t.Fatalf("limit %d: event of %d bytes of data, %d of comment", limit, len(e.Data), len(e.Comment))
			}
		}
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
