package websocket

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// originRequest is a valid opening handshake for host, with one Origin
// header per element of origins.
func originRequest(host string, origins ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://placeholder.test/", nil)
	r.Host = host
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	for _, o := range origins {
		r.Header.Add("Origin", o)
	}
	return r
}

// TestOriginDefaultPorts guards the origin comparison: a port that is the
// default of the Origin's scheme (RFC 6454 §4) counts as absent on both
// sides, on Host and on host-only OriginPatterns, while other ports and
// full-origin patterns compare as written; and a request with two Origin
// headers is refused, where only the first used to be judged. Before,
// `Host: example.com:443` (as some load balancers forward it) refused
// every same-origin browser.
func TestOriginDefaultPorts(t *testing.T) {
	evil := "https://evil.example"
	tests := []struct {
		name    string
		host    string
		origins []string
		opts    AcceptOptions
		refused bool
		errHas  string
	}{
		{name: "no origin", host: "example.com"},
		{name: "same origin", host: "example.com", origins: []string{"https://example.com"}},
		{name: "host with https default port", host: "example.com:443", origins: []string{"https://example.com"}},
		{name: "origin with https default port", host: "example.com", origins: []string{"https://example.com:443"}},
		{name: "host with http default port", host: "example.com:80", origins: []string{"http://example.com"}},
		{name: "origin with http default port", host: "example.com", origins: []string{"http://example.com:80"}},
		{name: "both with default port", host: "example.com:443", origins: []string{"https://example.com:443"}},
		{name: "default port and case", host: "Example.COM:443", origins: []string{"https://example.com"}},
		{name: "ipv6 default port", host: "[::1]:443", origins: []string{"https://[::1]"}},
		{name: "non-default port same", host: "example.com:8443", origins: []string{"https://example.com:8443"}},
		{name: "non-default port on host", host: "example.com:8443", origins: []string{"https://example.com"}, refused: true},
		{name: "non-default port on origin", host: "example.com", origins: []string{"https://example.com:8443"}, refused: true},
		{name: "https port for http origin", host: "example.com:443", origins: []string{"http://example.com"}, refused: true},
		{name: "http port for https origin", host: "example.com:80", origins: []string{"https://example.com"}, refused: true},
		{name: "http origin on port 443", host: "example.com", origins: []string{"http://example.com:443"}, refused: true},
		{name: "trailing dot left as is", host: "example.com.", origins: []string{"https://example.com"}, refused: true},
		{name: "cross origin", host: "example.com", origins: []string{evil}, refused: true},
		{name: "host pattern, origin with default port", host: "api.test", origins: []string{"https://example.com:443"}, opts: AcceptOptions{OriginPatterns: []string{"example.com"}}},
		{name: "wildcard pattern, origin with default port", host: "api.test", origins: []string{"http://app.example.com:80"}, opts: AcceptOptions{OriginPatterns: []string{"*.example.com"}}},
		{name: "host pattern, other port", host: "api.test", origins: []string{"https://example.com:8443"}, opts: AcceptOptions{OriginPatterns: []string{"example.com"}}, refused: true},
		{name: "host pattern with port", host: "api.test", origins: []string{"https://example.com:8443"}, opts: AcceptOptions{OriginPatterns: []string{"example.com:8443"}}},
		{name: "full-origin pattern unchanged", host: "api.test", origins: []string{"https://example.com:443"}, opts: AcceptOptions{OriginPatterns: []string{"https://example.com"}}, refused: true},
		{name: "full-origin pattern as sent", host: "api.test", origins: []string{"https://example.com:443"}, opts: AcceptOptions{OriginPatterns: []string{"https://example.com:443"}}},
		{name: "two origins, same first", host: "example.com", origins: []string{"https://example.com", evil}, refused: true, errHas: "more than one Origin header"},
		{name: "two origins, evil first", host: "example.com", origins: []string{evil, "https://example.com"}, refused: true, errHas: "more than one Origin header"},
		{name: "two same origins", host: "example.com", origins: []string{"https://example.com", "https://example.com"}, refused: true, errHas: "more than one Origin header"},
		{name: "two origins, allowed by pattern", host: "api.test", origins: []string{"https://example.com", "https://example.com"}, opts: AcceptOptions{OriginPatterns: []string{"*"}}, refused: true},
		{name: "two origins, check off", host: "example.com", origins: []string{"https://example.com", evil}, opts: AcceptOptions{InsecureSkipOriginCheck: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			_, _, _, herr := verifyClientHandshake(originRequest(tc.host, tc.origins...), &opts)
			switch {
			case !tc.refused && herr != nil:
				t.Fatalf("Host %q, Origin %q: %v, want accepted", tc.host, tc.origins, herr)
			case tc.refused && herr == nil:
				t.Fatalf("Host %q, Origin %q: accepted, want 403", tc.host, tc.origins)
			case tc.refused && herr.status != http.StatusForbidden:
				t.Fatalf("Host %q, Origin %q: %v, want 403", tc.host, tc.origins, herr)
			case tc.refused && !strings.Contains(herr.msg, tc.errHas):
				t.Fatalf("Host %q, Origin %q: %v, want it to say %q", tc.host, tc.origins, herr, tc.errHas)
			}
		})
	}
}

// noUnwrapWriter has neither Hijack nor Unwrap: the writer it wraps is out
// of http.ResponseController's reach.
type noUnwrapWriter struct{ http.ResponseWriter }

// unwrapOnlyWriter has Unwrap and no Hijack, as the typed layer's own
// statusWriter.
type unwrapOnlyWriter struct{ http.ResponseWriter }

func (w *unwrapOnlyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ownErrorHijacker fails Hijack with an error of its own, as chi's
// Compress writer does over a writer that is not an http.Hijacker.
type ownErrorHijacker struct{ http.ResponseWriter }

var errOwnHijack = errors.New("chi/middleware: http.Hijacker is unavailable on the writer")

func (w *ownErrorHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errOwnHijack
}

// TestAcceptHijackErrorNamesStop guards the hijack diagnosis: the error
// names the writer where http.ResponseController's unwrapping stopped,
// not the one Accept was given (in the typed layer always wsrpc's own
// statusWriter, which unwraps fine), and that one too when they differ.
func TestAcceptHijackErrorNamesStop(t *testing.T) {
	tests := []struct {
		name    string
		w       func(http.ResponseWriter) http.ResponseWriter
		want    []string
		notWant string
	}{
		{
			name:    "wrapper given",
			w:       func(w http.ResponseWriter) http.ResponseWriter { return &noUnwrapWriter{w} },
			want:    []string{"ResponseWriter *websocket.noUnwrapWriter cannot be hijacked"},
			notWant: "reached through",
		},
		{
			name: "wrapper inside an Unwrap-only writer",
			w: func(w http.ResponseWriter) http.ResponseWriter {
				return &unwrapOnlyWriter{&unwrapOnlyWriter{&noUnwrapWriter{w}}}
			},
			want: []string{"ResponseWriter *websocket.noUnwrapWriter (reached through *websocket.unwrapOnlyWriter) cannot be hijacked"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			_, err := Accept(tc.w(rec), originRequest("example.com"), nil)
			if err == nil || !errors.Is(err, http.ErrNotSupported) {
				t.Fatalf("Accept: %v, want http.ErrNotSupported", err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Accept: %v, want it to say %q", err, s)
				}
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Errorf("Accept: %v, want no %q", err, tc.notWant)
			}
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("response status %d, want 500", rec.Code)
			}
		})
	}
	// An Unwrap returning nil ends the chain, as it does the controller's.
	nilInside := &unwrapOnlyWriter{}
	if stop, unwrapped := hijackStop(nilInside); stop != nilInside || unwrapped {
		t.Errorf("hijackStop: %T (unwrapped %v), want the writer whose Unwrap returns nil", stop, unwrapped)
	}
}

// TestAcceptHijackOwnErrorResponse guards the response to a Hijack that
// fails with an error other than http.ErrNotSupported: the client reads
// that the server's ResponseWriter could not be hijacked (it read a bare
// "connection cannot be upgraded"), and not the server's error text.
func TestAcceptHijackOwnErrorResponse(t *testing.T) {
	rec := httptest.NewRecorder()
	_, err := Accept(&unwrapOnlyWriter{&ownErrorHijacker{rec}}, originRequest("example.com"), nil)
	if !errors.Is(err, errOwnHijack) {
		t.Fatalf("Accept: %v, want it to wrap the Hijack's error", err)
	}
	body := rec.Body.String()
	if rec.Code != http.StatusInternalServerError || !strings.Contains(body, "ResponseWriter cannot be hijacked") {
		t.Errorf("response %d %q, want a 500 saying the server's ResponseWriter cannot be hijacked", rec.Code, body)
	}
	if strings.Contains(body, "chi/middleware") || strings.Contains(body, "unavailable") {
		t.Errorf("response %q quotes the server's error", body)
	}
}
