package wsrpc

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// FuzzErrorWire sends a handler's error the two ways it reaches a client
// — a close frame (closeFor) and a wsrpc.error event, encoded and parsed
// as an event stream — and reads what a peer may send instead. A sent
// error must come back with its code (unknown for one outside the table)
// and its message: whole in the event (each invalid UTF-8 byte as
// U+FFFD), in the close reason cut to 123 bytes between characters and
// otherwise unchanged. Any close code and reason, and any event data, a
// peer sends must read as a code of the table, or a clean end only for
// 1000 and 1005.
func FuzzErrorWire(f *testing.F) {
	f.Add(uint8(CodeNotFound), "no such room", uint16(4005), "peer's reason", `{"code":"internal","message":"x"}`)
	f.Add(uint8(0), "", uint16(1000), "", `{}`)
	f.Add(uint8(99), "\xff\xfe"+strings.Repeat("é", 70), uint16(4099), "\xed\xa0\x80", `{"code":"ok"}`)
	f.Add(uint8(CodeUnavailable), "line\nbreak\r\u2028", uint16(1001), "bye", `{"code":"unavailable","message":"\ud800"}`)
	f.Add(uint8(CodeInternal), strings.Repeat("x", 122)+"€", uint16(3000), "", `not json`)
	f.Fuzz(func(t *testing.T, code uint8, msg string, peerCode uint16, peerReason, peerData string) {
		sent := &Error{code: Code(code), msg: msg}
		want := Code(code).onWire()

		// As a close frame.
		sc, reason, _ := closeFor(sent)
		if !sc.Sendable() || len(reason) > 123 || !utf8.ValidString(reason) {
			t.Fatalf("closeFor(%v, %q) = %d %q: not a close frame Close sends", Code(code), msg, sc, reason)
		}
		if full := strings.ToValidUTF8(msg, "\uFFFD"); len(full) <= 123 && reason != full ||
			!strings.HasPrefix(full, reason) || len(reason) < min(len(full), 120) {
			t.Fatalf("closeFor(%q) reason %q: more lost than the cut", msg, reason)
		}
		got := asError(fromClose(&websocket.CloseError{Code: sc, Reason: reason}))
		if got.Code() != want || got.Message() != reason {
			t.Fatalf("close %d %q read as %v %q, want %v", sc, reason, got.Code(), got.Message(), want)
		}

		// As a wsrpc.error event, through the wire format.
		ev := sseErrorEvent(sent)
		b, err := sse.AppendEvent(nil, ev)
		if err != nil {
			t.Fatalf("the error event for %q does not encode: %v", msg, err)
		}
		p := sse.NewParser(bytes.NewReader(b), nil)
		read, err := p.Next()
		if err != nil || read.Type != SSEEventError {
			t.Fatalf("the error event %q reads as %+v, %v", b, read, err)
		}
		if _, err := p.Next(); err != io.EOF {
			t.Fatalf("the error event %q reads as more than one event: %v", b, err)
		}
		e := parseSSEError(read.Data)
		if e.Code() != want || e.Message() != string([]rune(msg)) {
			t.Fatalf("event %q read as %v %q, want %v %q", b, e.Code(), e.Message(), want, string([]rune(msg)))
		}

		// What a peer sends.
		ce := &websocket.CloseError{Code: websocket.StatusCode(peerCode), Reason: peerReason}
		switch err := fromClose(ce); {
		case err == io.EOF:
			if peerCode != 1000 && peerCode != 1005 {
				t.Fatalf("close code %d reads as a clean end", peerCode)
			}
		case !asError(err).Code().valid():
			t.Fatalf("close code %d reads as code %v", peerCode, asError(err).Code())
		}
		if c := parseSSEError(peerData).Code(); !c.valid() {
			t.Fatalf("event data %q reads as code %v", peerData, c)
		}
	})
}

// timeoutValue is the TimeoutHeader value a server takes: 1 to 10 ASCII
// digits, not all zeros.
var timeoutValue = regexp.MustCompile(`^[0-9]{1,10}$`)

// FuzzTimeoutHeader: the server takes a TimeoutHeader (sent as one or
// two lines) exactly when it is 1 to 10 digits and not 0, as that many
// milliseconds, and refuses anything else with invalid_argument; and
// for any time left before a client's deadline (synctest's clock, so
// exact), the header the client sets is one the server takes, rounded
// up to the millisecond, or absent when no such header can say it.
func FuzzTimeoutHeader(f *testing.F) {
	for _, s := range []string{"1", "0", "0000000001", "9999999999", "10000000000", "+5", " 5", "5ms", "", "١"} {
		f.Add(s, "", int64(1500*time.Microsecond))
	}
	f.Add("7", "8", int64(0))
	f.Add("7", "", int64(-1))
	f.Add("7", "", int64(9_999_999_999*time.Millisecond))
	f.Add("7", "", int64(9_999_999_999*time.Millisecond+1))
	f.Fuzz(func(t *testing.T, v, second string, left int64) {
		r := &http.Request{Header: http.Header{}}
		r.Header[TimeoutHeader] = []string{v}
		value := v
		if second != "" {
			r.Header[TimeoutHeader] = append(r.Header[TimeoutHeader], second)
			value = v + ", " + second
		}
		d, has, err := requestTimeout(r)
		ok := timeoutValue.MatchString(value) && strings.Trim(value, "0") != ""
		switch {
		case !has:
			t.Fatalf("%q: no header", value)
		case ok && err != nil:
			t.Fatalf("%q refused: %v", value, err)
		case !ok && (err == nil || err.Code() != CodeInvalidArgument):
			t.Fatalf("%q taken as %v (%v)", value, d, err)
		case ok && d.Milliseconds() != parseDigits(value) || ok && d%time.Millisecond != 0:
			t.Fatalf("%q read as %v", value, d)
		}

		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Duration(left)))
			defer cancel()
			h := http.Header{TimeoutHeader: {"stale"}}
			setTimeoutHeader(ctx, h)
			if left <= 0 || time.Duration(left) > maxTimeoutMs*time.Millisecond {
				if _, set := h[TimeoutHeader]; set {
					t.Fatalf("%v left: header %q, want none", time.Duration(left), h.Get(TimeoutHeader))
				}
				return
			}
			got, has, err := requestTimeout(&http.Request{Header: h})
			if !has || err != nil || got < time.Duration(left) || got-time.Duration(left) >= time.Millisecond {
				t.Fatalf("%v left: header %q read as %v, %v", time.Duration(left), h.Get(TimeoutHeader), got, err)
			}
		})
	})
}

func parseDigits(s string) int64 {
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return n
}
