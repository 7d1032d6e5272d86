package sse_test

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/sse"
)

// specParse is a literal transcription of WHATWG HTML §9.2.5-9.2.6 for
// ASCII input (plus a BOM), as unlike the Parser as can be: it splits the
// whole stream into lines first, then interprets them. It returns the
// dispatched events, the last event ID string and the reconnection time
// (-1 for a retry value too long for it to compute).
func specParse(in string, lastID string) ([]sse.Event, string, time.Duration) {
	in = strings.TrimPrefix(in, "\uFEFF")
	var lines []string
	for {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			break // an unterminated final line is not a line
		}
		lines = append(lines, in[:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		in = in[i+1:]
	}
	var events []sse.Event
	var data, typ strings.Builder
	idBuf := lastID
	var reconnect, retry time.Duration
	hasRetry := false
	for _, line := range lines {
		if line == "" {
			// Dispatch the event.
			lastID = idBuf
			if data.Len() > 0 {
				t := typ.String()
				if t == "" {
					t = "message"
				}
				events = append(events, sse.Event{ID: lastID, Type: t, Data: strings.TrimSuffix(data.String(), "\n"), Retry: retry, HasRetry: hasRetry})
			}
			data.Reset()
			typ.Reset()
			retry, hasRetry = 0, false
			continue
		}
		if line[0] == ':' {
			continue // a comment: ignore the line
		}
		name, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "event":
			typ.Reset()
			typ.WriteString(value)
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			ok := value != ""
			for _, c := range []byte(value) {
				if c < '0' || c > '9' {
					ok = false
				}
			}
			switch {
			case ok && len(value) < 12:
				var ms int64
				for _, c := range []byte(value) {
					ms = ms*10 + int64(c-'0')
				}
				reconnect = time.Duration(ms) * time.Millisecond
				retry, hasRetry = reconnect, true
			case ok:
				reconnect, retry, hasRetry = -1, -1, true // beyond the model
			}
		}
	}
	return events, lastID, reconnect
}

// specTokens are the pieces random streams are made of: field names,
// separators, line ends of every kind, NUL, a BOM, digits.
var specTokens = []string{"data", "id", "event", "retry", ":", " ", "\r", "\n", "\r\n", "\x00", "0", "7", "a", "\uFEFF", "x", "  ", "\n\n", "data: ", "id: ", "retry: 1", "event: e"}

// TestParseMatchesSpecModel compares the Parser, with default options
// (comments hidden, as in browsers), with specParse over 5,000 random
// token streams, read whole and in random small chunks, events and final
// state alike. A seeded loop rather than a fuzz target: it runs in every
// go test, and writes nothing to testdata.
func TestParseMatchesSpecModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 5000 {
		var sb strings.Builder
		for range rng.IntN(40) {
			sb.WriteString(specTokens[rng.IntN(len(specTokens))])
		}
		in := sb.String()
		lastID := ""
		if iter%3 == 0 {
			lastID = "L"
		}
		want, wantID, wantRe := specParse(in, lastID)
		for _, n := range []int{len(in) + 1, rng.IntN(7) + 1} {
			got, p, err := parseAll(&chunkReader{data: []byte(in), n: n}, &sse.ParserOptions{LastEventID: lastID})
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if wantRe < 0 {
				continue
			}
			if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q in chunks of %d:\n got %#v\nwant %#v", in, n, got, want)
			}
			if p.LastEventID() != wantID || p.ReconnectionTime() != wantRe {
				t.Fatalf("%q in chunks of %d: last event ID %q, reconnection time %v; want %q, %v", in, n, p.LastEventID(), p.ReconnectionTime(), wantID, wantRe)
			}
		}
	}
}
