package sse_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// parseAll parses input read through r and returns every event and the
// error that ended the stream (nil for a clean EOF).
func parseAll(r io.Reader, opts *sse.ParserOptions) ([]sse.Event, *sse.Parser, error) {
	p := sse.NewParser(r, opts)
	var events []sse.Event
	for {
		ev, err := p.Next()
		if errors.Is(err, io.EOF) {
			return events, p, nil
		}
		if err != nil {
			return events, p, err
		}
		events = append(events, ev)
	}
}

// chunkings returns readers delivering input whole, byte by byte, and in
// chunks of 2, 3 and 7 bytes.
func chunkings(input string) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":        func() io.Reader { return strings.NewReader(input) },
		"byte-by-byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(input)) },
		"chunks-2":     func() io.Reader { return &chunkReader{data: []byte(input), n: 2} },
		"chunks-3":     func() io.Reader { return &chunkReader{data: []byte(input), n: 3} },
		"chunks-7":     func() io.Reader { return &chunkReader{data: []byte(input), n: 7} },
		"data-err":     func() io.Reader { return iotest.DataErrReader(strings.NewReader(input)) },
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func msg(id, typ, data string) sse.Event { return sse.Event{ID: id, Type: typ, Data: data} }

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		opts      *sse.ParserOptions
		want      []sse.Event
		wantErr   error
		lastID    string
		reconnect time.Duration
	}{
		{name: "spec example", in: "data: This is the first message.\n\ndata: This is the second message, it\ndata: has two lines.\n\ndata: This is the third message.\n\n",
			want: []sse.Event{msg("", "message", "This is the first message."), msg("", "message", "This is the second message, it\nhas two lines."), msg("", "message", "This is the third message.")}},
		{name: "event types", in: "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
			want: []sse.Event{msg("", "add", "73857293"), msg("", "remove", "2153"), msg("", "add", "113411")}},
		// §9.2.5: a leading BOM is stripped, once.
		{name: "bom stripped", in: "\uFEFFdata: a\n\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "second bom is not stripped", in: "\uFEFF\uFEFFdata: a\n\ndata: b\n\n", want: []sse.Event{msg("", "message", "b")}},
		{name: "bom only at start", in: "data: a\n\n\uFEFFdata: b\n\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "partial bom is data", in: "\xEF\xBBdata: a\n\ndata: b\n\n", want: []sse.Event{msg("", "message", "b")}},
		// §9.2.5: end-of-line is CRLF, LF or CR, mixed.
		{name: "crlf", in: "data: a\r\ndata: b\r\n\r\n", want: []sse.Event{msg("", "message", "a\nb")}},
		{name: "cr", in: "data: a\rdata: b\r\r", want: []sse.Event{msg("", "message", "a\nb")}},
		{name: "mixed line ends", in: "data: a\r\ndata: b\rdata: c\n\r\ndata: d\n\r", want: []sse.Event{msg("", "message", "a\nb\nc"), msg("", "message", "d")}},
		{name: "cr as very last byte ends the line", in: "data: a\n\r", want: []sse.Event{msg("", "message", "a")}},
		{name: "cr cr is two line ends", in: "data: a\r\r", want: []sse.Event{msg("", "message", "a")}},
		{name: "lf cr lf is two line ends", in: "data: a\n\r\ndata: b\n\n", want: []sse.Event{msg("", "message", "a"), msg("", "message", "b")}},
		// §9.2.6: comments.
		{name: "comments ignored", in: ": hello\ndata: a\n:\n\n: only a comment\n\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "comments kept when shown", in: ": hello\ndata: a\n:\n\n: only a comment\n\n", opts: &sse.ParserOptions{ShowCommentEvents: true},
			want: []sse.Event{{Type: "message", Data: "a", Comment: "hello\n"}, {Comment: "only a comment"}}},
		{name: "comment events shown", in: ": hello\n: world\n\n:\n\n", opts: &sse.ParserOptions{ShowCommentEvents: true},
			want: []sse.Event{{Comment: "hello\nworld"}, {Comment: ""}}},
		// §9.2.6: a field with no colon has an empty value.
		{name: "data without colon", in: "data\n\n", want: []sse.Event{msg("", "message", "")}},
		{name: "data without colon twice", in: "data\ndata\n\n", want: []sse.Event{msg("", "message", "\n")}},
		{name: "event without colon resets type", in: "event: x\nevent\ndata: a\n\n", want: []sse.Event{msg("", "message", "a")}},
		// §9.2.6: exactly one space after the colon is stripped.
		{name: "one space stripped", in: "data:  two\ndata:none\ndata: \n\n", want: []sse.Event{msg("", "message", " two\nnone\n")}},
		{name: "tab not stripped", in: "data:\tx\n\n", want: []sse.Event{msg("", "message", "\tx")}},
		{name: "colon in value", in: "data: a: b:c\n\n", want: []sse.Event{msg("", "message", "a: b:c")}},
		// §9.2.6: unknown fields and wrongly-cased names are ignored.
		{name: "unknown fields ignored", in: "foo: bar\nData: X\nEVENT: y\nID: 3\nRetry: 5\ndata: a\n\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "field with trailing space is unknown", in: "data : x\ndata: a\n\n", want: []sse.Event{msg("", "message", "a")}},
		// §9.2.6 dispatch: the final LF removed, empty data not dispatched.
		{name: "final lf removed", in: "data: a\ndata:\n\n", want: []sse.Event{msg("", "message", "a\n")}},
		{name: "no data no dispatch", in: "event: x\n\nid: 1\n\n\n\n", lastID: "1"},
		{name: "type reset after dispatch", in: "event: x\ndata: a\n\ndata: b\n\n", want: []sse.Event{msg("", "x", "a"), msg("", "message", "b")}},
		{name: "type reset by undispatched block", in: "event: x\n\ndata: b\n\n", want: []sse.Event{msg("", "message", "b")}},
		{name: "empty type is message", in: "event:\ndata: a\n\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "last type wins", in: "event: a\nevent: b\ndata: x\n\n", want: []sse.Event{msg("", "b", "x")}},
		// §9.2.6: the last event ID is sticky, reset by an empty id,
		// unchanged by an id containing NUL.
		{name: "id sticky", in: "id: 1\ndata: a\n\ndata: b\n\n", want: []sse.Event{msg("1", "message", "a"), msg("1", "message", "b")}, lastID: "1"},
		{name: "empty id resets", in: "id: 1\ndata: a\n\nid\ndata: b\n\nid:\ndata: c\n\n", want: []sse.Event{msg("1", "message", "a"), msg("", "message", "b"), msg("", "message", "c")}},
		{name: "id with nul ignored", in: "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", want: []sse.Event{msg("1", "message", "a"), msg("1", "message", "b")}, lastID: "1"},
		{name: "id without data updates last id", in: "id: 1\ndata: a\n\nid: 7\n\ndata: b\n\n", want: []sse.Event{msg("1", "message", "a"), msg("7", "message", "b")}, lastID: "7"},
		{name: "id applies at dispatch only", in: "id: 1\ndata: a\n\nid: 2\ndata: b", want: []sse.Event{msg("1", "message", "a")}, lastID: "1"},
		{name: "id set after data in block", in: "data: a\nid: 5\n\n", want: []sse.Event{msg("5", "message", "a")}, lastID: "5"},
		{name: "initial last id", in: "data: a\n\n", opts: &sse.ParserOptions{LastEventID: "41"}, want: []sse.Event{msg("41", "message", "a")}, lastID: "41"},
		{name: "id keeps spaces", in: "id:  x y \ndata: a\n\n", want: []sse.Event{msg(" x y ", "message", "a")}, lastID: " x y "},
		// §9.2.6: retry only when all ASCII digits.
		{name: "retry digits", in: "retry: 1500\ndata: a\n\n", want: []sse.Event{{Type: "message", Data: "a", Retry: 1500 * time.Millisecond, HasRetry: true}}, reconnect: 1500 * time.Millisecond},
		{name: "retry not digits leaves HasRetry unset", in: "retry: 1x\ndata: a\n\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "retry not digits", in: "retry: 15x\n\nretry: -1\n\nretry: 1.5\n\nretry:  10\n\nretry\n\nretry: \n\n", reconnect: 0},
		{name: "retry zero", in: "retry: 100\n\nretry: 0\n\n", reconnect: 0},
		{name: "retry applies without dispatch", in: "retry: 250\ndata: a", reconnect: 250 * time.Millisecond},
		{name: "retry events shown", in: "retry: 250\n\nretry: x\n\n", opts: &sse.ParserOptions{ShowRetryEvents: true},
			want: []sse.Event{{Retry: 250 * time.Millisecond, HasRetry: true}}, reconnect: 250 * time.Millisecond},
		// HasRetry tells "retry: 0" (reconnect at once) from no retry.
		{name: "retry zero shown", in: "retry: 0\n\n: c\n\nretry: 0\ndata: a\n\n", opts: &sse.ParserOptions{ShowRetryEvents: true, ReconnectionTime: time.Second},
			want: []sse.Event{{HasRetry: true}, {Type: "message", Data: "a", HasRetry: true}}, reconnect: 0},
		{name: "retry events hidden", in: "retry: 250\n\n: c\n\n", reconnect: 250 * time.Millisecond},
		{name: "retry huge saturates", in: "retry: 99999999999999999999999\n\n", reconnect: time.Duration(1<<63-1) / time.Millisecond * time.Millisecond},
		// §9.2.6: at the end of the stream an unterminated event is
		// discarded.
		{name: "unterminated event discarded", in: "data: a\n\ndata: b\n", want: []sse.Event{msg("", "message", "a")}},
		{name: "unterminated line discarded", in: "data: a\n\ndata: b", want: []sse.Event{msg("", "message", "a")}},
		{name: "empty stream", in: ""},
		{name: "only blank lines", in: "\n\r\n\r\n"},
		// §9.2.5: UTF-8 decoding with U+FFFD for each maximal ill-formed
		// subsequence.
		{name: "utf8 valid", in: "data: héllo ✓ 🎉\n\n", want: []sse.Event{msg("", "message", "héllo ✓ 🎉")}},
		{name: "utf8 invalid byte", in: "data: a\xFFb\n\n", want: []sse.Event{msg("", "message", "a\uFFFDb")}},
		{name: "utf8 truncated sequence", in: "data: a\xE2\x82b\n\n", want: []sse.Event{msg("", "message", "a\uFFFDb")}},
		{name: "utf8 truncated at line end", in: "data: \xF0\x9F\x8E\n\n", want: []sse.Event{msg("", "message", "\uFFFD")}},
		{name: "utf8 surrogate", in: "data: \xED\xA0\x80\n\n", want: []sse.Event{msg("", "message", "\uFFFD\uFFFD\uFFFD")}},
		{name: "utf8 overlong", in: "data: \xC0\xAF\xE0\x80\xAF\n\n", want: []sse.Event{msg("", "message", "\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD")}},
		{name: "utf8 in id and type", in: "id: \xFF\nevent: \xFE\ndata: a\n\n", want: []sse.Event{msg("\uFFFD", "\uFFFD", "a")}, lastID: "\uFFFD"},
		{name: "nul in data kept", in: "data: a\x00b\n\n", want: []sse.Event{msg("", "message", "a\x00b")}},
		// Limits.
		{name: "long line within limit", in: "data: " + strings.Repeat("x", 200<<10) + "\n\n", want: []sse.Event{msg("", "message", strings.Repeat("x", 200<<10))}},
		{name: "line over limit", in: "data: " + strings.Repeat("x", 100) + "\n\n", opts: &sse.ParserOptions{MaxEventSize: 50}, wantErr: sse.ErrEventTooLarge},
		{name: "unterminated line over limit", in: "data: " + strings.Repeat("x", 100), opts: &sse.ParserOptions{MaxEventSize: 50}, wantErr: sse.ErrEventTooLarge},
		{name: "event over limit", in: strings.Repeat("data: 0123456789\n", 10) + "\n", opts: &sse.ParserOptions{MaxEventSize: 64}, wantErr: sse.ErrEventTooLarge},
		{name: "comments over limit when shown", in: strings.Repeat(": 0123456789\n", 10), opts: &sse.ParserOptions{MaxEventSize: 64, ShowCommentEvents: true}, wantErr: sse.ErrEventTooLarge},
		// Hidden comments are ignored (WHATWG HTML §9.2.6) and nothing is
		// kept of them, so they do not count toward the limit: heartbeats
		// used to fail the stream with ErrEventTooLarge. A single line is
		// still bounded, a comment line too.
		{name: "hidden comments not counted", in: strings.Repeat(": ping\n", 20) + "data: x\n\n", opts: &sse.ParserOptions{MaxEventSize: 64},
			want: []sse.Event{msg("", "message", "x")}},
		{name: "hidden comment line over limit", in: ": " + strings.Repeat("x", 100) + "\ndata: a\n\n", opts: &sse.ParserOptions{MaxEventSize: 50}, wantErr: sse.ErrEventTooLarge},
		{name: "events under limit each", in: strings.Repeat("data: 0123456789\n\n", 10), opts: &sse.ParserOptions{MaxEventSize: 16},
			want: repeat(msg("", "message", "0123456789"), 10)},
	}
	for _, tt := range tests {
		for chunking, reader := range chunkings(tt.in) {
			t.Run(tt.name+"/"+chunking, func(t *testing.T) {
				got, p, err := parseAll(reader(), tt.opts)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("error = %v, want %v", err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
					t.Fatalf("events:\n got %#v\nwant %#v", got, tt.want)
				}
				if p.LastEventID() != tt.lastID {
					t.Errorf("LastEventID = %q, want %q", p.LastEventID(), tt.lastID)
				}
				if p.ReconnectionTime() != tt.reconnect {
					t.Errorf("ReconnectionTime = %v, want %v", p.ReconnectionTime(), tt.reconnect)
				}
			})
		}
	}
}

func repeat(e sse.Event, n int) []sse.Event {
	out := make([]sse.Event, n)
	for i := range out {
		out[i] = e
	}
	return out
}

// TestParseReadError: a read error other than EOF is returned, and the
// event in progress is not dispatched.
func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, _, err := parseAll(r, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want %v", err, boom)
	}
	if want := []sse.Event{msg("", "message", "a")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %#v, want %#v", got, want)
	}
	p := sse.NewParser(iotest.ErrReader(boom), nil)
	for range 2 {
		if _, err := p.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next = %v, want sticky %v", err, boom)
		}
	}
}

// TestParseBoundedMemory: a stream that never ends a line fails once the
// limit is passed instead of reading on.
func TestParseBoundedMemory(t *testing.T) {
	endless := &repeatReader{b: []byte("xxxxxxxxxxxxxxxx")}
	p := sse.NewParser(endless, &sse.ParserOptions{MaxEventSize: 1 << 20})
	if _, err := p.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
		t.Fatalf("Next = %v, want ErrEventTooLarge", err)
	}
	if endless.n > 2<<20 {
		t.Fatalf("read %d bytes for a 1 MiB limit", endless.n)
	}
}

type repeatReader struct {
	b []byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.b)
	}
	r.n += n
	return n, nil
}

// TestParseEveryCRLFSplit parses a stream with every possible split into
// two reads, including between CR and LF.
func TestParseEveryCRLFSplit(t *testing.T) {
	in := "\uFEFFid: 1\r\nevent: e\r\ndata: a\r\rdata: b\r\n\r\n: c\rdata: c\n\n"
	want, _, err := parseAll(strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= len(in); i++ {
		got, _, err := parseAll(io.MultiReader(strings.NewReader(in[:i]), strings.NewReader(in[i:])), nil)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d: got %#v, %v; want %#v", i, got, err, want)
		}
	}
	if len(want) != 3 {
		t.Fatalf("want 3 events, got %#v", want)
	}
}

// TestEncodeRoundTrip: what the encoder writes, the parser reads back.
func TestEncodeRoundTrip(t *testing.T) {
	events := []sse.Event{
		{Data: "plain"},
		{ID: "42", Type: "tick", Data: "multi\nline\r\ndata\rhere"},
		{Type: "empty"},
		{Data: " leading space", Comment: "note\nsecond"},
		{Data: "\n\ntrailing\n"},
		{ID: "é✓", Data: "unicode 🎉"},
		{Data: "x", Retry: 1500 * time.Millisecond},
		{Data: "y", HasRetry: true}, // "retry: 0"
	}
	var wire []byte
	for _, e := range events {
		var err error
		if wire, err = sse.AppendEvent(wire, e); err != nil {
			t.Fatalf("AppendEvent(%+v): %v", e, err)
		}
	}
	got, _, err := parseAll(bytes.NewReader(wire), &sse.ParserOptions{ShowCommentEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	lastID := ""
	for i, e := range events {
		if e.ID != "" {
			lastID = e.ID
		}
		want := sse.Event{ID: lastID, Type: e.Type, Data: strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(e.Data), Retry: e.Retry, HasRetry: e.Retry > 0 || e.HasRetry, Comment: e.Comment}
		if want.Type == "" {
			want.Type = "message"
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want)
		}
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name    string
		e       sse.Event
		want    string
		wantErr error
	}{
		{name: "data", e: sse.Event{Data: "a"}, want: "data: a\n\n"},
		{name: "all fields", e: sse.Event{ID: "1", Type: "t", Data: "a\nb", Retry: time.Second, Comment: "c"}, want: ": c\nid: 1\nevent: t\nretry: 1000\ndata: a\ndata: b\n\n"},
		{name: "empty data with type", e: sse.Event{Type: "t"}, want: "event: t\ndata:\n\n"},
		{name: "empty lines", e: sse.Event{Data: "\n"}, want: "data:\ndata:\n\n"},
		{name: "crlf data", e: sse.Event{Data: "a\r\nb\rc"}, want: "data: a\ndata: b\ndata: c\n\n"},
		{name: "id only", e: sse.Event{ID: "9"}, want: "id: 9\n\n"},
		{name: "retry only rounds up", e: sse.Event{Retry: 1500 * time.Microsecond}, want: "retry: 2\n\n"},
		{name: "retry of 1ns rounds up", e: sse.Event{Retry: 1}, want: "retry: 1\n\n"},
		// HasRetry sends "retry: 0", which makes a client reconnect at
		// once (WHATWG HTML §9.2.6: any run of ASCII digits).
		{name: "retry zero", e: sse.Event{HasRetry: true}, want: "retry: 0\n\n"},
		{name: "retry zero with data", e: sse.Event{Data: "a", HasRetry: true}, want: "retry: 0\ndata: a\n\n"},
		{name: "retry with HasRetry", e: sse.Event{Retry: time.Second, HasRetry: true}, want: "retry: 1000\n\n"},
		// Rounding up must not overflow into a negative number, which a
		// client ignores (not all digits, §9.2.6).
		{name: "retry max rounds up without overflow", e: sse.Event{Retry: math.MaxInt64}, want: "retry: 9223372036855\n\n"},
		{name: "retry huge whole ms", e: sse.Event{Retry: math.MaxInt64 / time.Millisecond * time.Millisecond}, want: "retry: 9223372036854\n\n"},
		{name: "comment only", e: sse.Event{Comment: "ping"}, want: ": ping\n\n"},
		{name: "empty", e: sse.Event{}, wantErr: sse.ErrEmptyEvent},
		{name: "id with lf", e: sse.Event{ID: "1\n2", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id with cr", e: sse.Event{ID: "1\r", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id with nul", e: sse.Event{ID: "1\x00", Data: "a"}, wantErr: sse.ErrInvalidID},
		// What a Last-Event-ID header could not bring back unchanged.
		{name: "id with control", e: sse.Event{ID: "a\x01b", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id with del", e: sse.Event{ID: "a\x7f", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id with trailing space", e: sse.Event{ID: "7 ", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id with leading tab", e: sse.Event{ID: "\t7", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id not utf-8", e: sse.Event{ID: "\xff", Data: "a"}, wantErr: sse.ErrInvalidID},
		{name: "id with inner space and tab", e: sse.Event{ID: "a b\tc", Data: "x"}, want: "id: a b\tc\ndata: x\n\n"},
		{name: "id not ascii", e: sse.Event{ID: "é-1", Data: "x"}, want: "id: é-1\ndata: x\n\n"},
		{name: "type with lf", e: sse.Event{Type: "a\nb", Data: "a"}, wantErr: sse.ErrInvalidType},
		{name: "type with nul", e: sse.Event{Type: "a\x00", Data: "a"}, wantErr: sse.ErrInvalidType},
		{name: "negative retry", e: sse.Event{Retry: -time.Second, Data: "a"}, wantErr: sse.ErrInvalidRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sse.AppendEvent(nil, tt.e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			p, err := sse.Prepare(tt.e)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Prepare error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (string(p.AppendTo(nil)) != tt.want || p.ID() != tt.e.ID || p.Len() != len(tt.want)) {
				t.Fatalf("Prepare: %q id %q", p.AppendTo(nil), p.ID())
			}
		})
	}
}

// TestParseReleasesLargeBuffers: once a large event is dispatched (or
// fails), the buffers it grew are released, as the Parser's doc states,
// so an idle parser holds at most 64 KiB per buffer; the input already
// read past the event survives the move to a small buffer. After one
// event near MaxEventSize a parser used to keep about three times that
// for good (1 MiB by default, per Session).
func TestParseReleasesLargeBuffers(t *testing.T) {
	const max = 256 << 10
	const keep = 64 << 10
	big := strings.Repeat("x", max-10)
	smalls := strings.Repeat("data: "+strings.Repeat("s", 1000)+"\n\n", 40) // 40 KiB read along with big
	tests := []struct {
		name string
		in   string
		opts sse.ParserOptions
		want []sse.Event // then io.EOF, or wantErr
		err  error
	}{
		{name: "one long line", in: "data: " + big + "\n\ndata: after\n\n", want: []sse.Event{msg("", "message", big), msg("", "message", "after")}},
		{name: "many lines", in: strings.Repeat("data: "+big[:1000]+"\n", 200) + "\ndata: after\n\n",
			want: []sse.Event{msg("", "message", strings.Repeat(big[:1000]+"\n", 199)+big[:1000]), msg("", "message", "after")}},
		{name: "input left after the event", in: "data: " + big + "\n\n" + smalls + "data: after\n\n",
			want: append(append([]sse.Event{msg("", "message", big)}, repeat(msg("", "message", strings.Repeat("s", 1000)), 40)...), msg("", "message", "after"))},
		{name: "shown comment", in: ": " + big + "\ndata: a\n\n", opts: sse.ParserOptions{ShowCommentEvents: true},
			want: []sse.Event{{Type: "message", Data: "a", Comment: big}}},
		{name: "event too large", in: strings.Repeat("data: "+big[:1000]+"\n", 300) + "\n", err: sse.ErrEventTooLarge},
		{name: "line too large", in: "data: " + big + big + "\n\n", err: sse.ErrEventTooLarge},
	}
	for _, tt := range tests {
		for _, n := range []int{len(tt.in), 32 << 10, 7 << 10} {
			t.Run(fmt.Sprintf("%s/chunks-%d", tt.name, n), func(t *testing.T) {
				opts := tt.opts
				opts.MaxEventSize = max
				p := sse.NewParser(&chunkReader{data: []byte(tt.in), n: n}, &opts)
				for i, want := range tt.want {
					ev, err := p.Next()
					if err != nil || !reflect.DeepEqual(ev, want) {
						t.Fatalf("event %d: %.60q…, %v; want %.60q…", i, ev.Data, err, want.Data)
					}
				}
				if read, data, comment := sse.ParserBufferCaps(p); read > keep || data > keep || comment > keep {
					t.Errorf("after the events: buffers of %d, %d and %d bytes held (read, data, comment), want at most %d each", read, data, comment, keep)
				}
				wantErr := tt.err
				if wantErr == nil {
					wantErr = io.EOF
				}
				if _, err := p.Next(); !errors.Is(err, wantErr) {
					t.Fatalf("Next = %v, want %v", err, wantErr)
				}
				if read, data, comment := sse.ParserBufferCaps(p); read+data+comment != 0 {
					t.Errorf("after %v: buffers of %d, %d and %d bytes held (read, data, comment), want none", wantErr, read, data, comment)
				}
			})
		}
	}
}
