package websocket_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// rawHandshake sends a hand-written request to a server running Accept with
// opts, and returns the response and what Accept returned.
func rawHandshake(t *testing.T, opts *websocket.AcceptOptions, pre func(http.ResponseWriter), request func(host string) string) (*http.Response, error) {
	t.Helper()
	acceptErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pre != nil {
			pre(w)
		}
		c, err := websocket.Accept(w, r, opts)
		if err == nil {
			c.CloseNow()
		}
		acceptErr <- err
	}))
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wireTimeout))
	if _, err := io.WriteString(nc, request(srv.Listener.Addr().String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	select {
	case err := <-acceptErr:
		return resp, err
	case <-time.After(wireTimeout):
		t.Fatal("Accept did not return")
		return nil, nil
	}
}

// request builds a handshake request; headers override or (with "") drop
// the defaults.
func request(method, proto string, headers ...string) func(host string) string {
	return func(host string) string {
		h := map[string]string{
			"Host":                  host,
			"Upgrade":               "websocket",
			"Connection":            "Upgrade",
			"Sec-WebSocket-Key":     testKey,
			"Sec-WebSocket-Version": "13",
		}
		order := []string{"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"}
		for i := 0; i+1 < len(headers); i += 2 {
			if _, ok := h[headers[i]]; !ok {
				order = append(order, headers[i])
			}
			h[headers[i]] = headers[i+1]
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s /ws %s\r\n", method, proto)
		for _, k := range order {
			if v := h[k]; v != "" {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
		b.WriteString("\r\n")
		return b.String()
	}
}

func TestServerHandshake(t *testing.T) {
	get := func(headers ...string) func(string) string { return request("GET", "HTTP/1.1", headers...) }
	upgradeRequired := [][2]string{{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}}
	cases := []struct {
		name    string
		opts    *websocket.AcceptOptions
		req     func(string) string
		status  int
		header  [][2]string // expected response headers ("" value: absent)
		failErr bool
	}{
		{name: "ok", req: get(), status: 101, header: [][2]string{{"Sec-WebSocket-Accept", wsAccept(testKey)}, {"Sec-WebSocket-Protocol", ""}}},
		{name: "tokens case-insensitive", req: get("Upgrade", "WebSocket", "Connection", "keep-alive, UPGRADE"), status: 101},
		{name: "Connection on two lines", req: get("Connection", "keep-alive\r\nConnection: upgrade"), status: 101},
		{name: "POST", req: request("POST", "HTTP/1.1", "Content-Length", "0"), status: 405, header: [][2]string{{"Allow", "GET"}}},
		{name: "PUT", req: request("PUT", "HTTP/1.1", "Content-Length", "0"), status: 405},
		{name: "HTTP/1.0", req: request("GET", "HTTP/1.0"), status: 400},
		// A 426 names the protocol in Upgrade (RFC 9110 §15.5.22: MUST),
		// and the versions supported (RFC 6455 §4.4); the version refusal
		// once lacked Upgrade.
		{name: "no Upgrade", req: get("Upgrade", ""), status: 426, header: upgradeRequired},
		{name: "Upgrade not websocket", req: get("Upgrade", "h2c"), status: 426, header: upgradeRequired},
		{name: "no Connection upgrade", req: get("Connection", "keep-alive"), status: 426, header: upgradeRequired},
		{name: "version 8", req: get("Sec-WebSocket-Version", "8"), status: 426, header: upgradeRequired},
		{name: "version 14", req: get("Sec-WebSocket-Version", "14"), status: 426, header: upgradeRequired},
		{name: "no version", req: get("Sec-WebSocket-Version", ""), status: 426, header: upgradeRequired},
		{name: "no key", req: get("Sec-WebSocket-Key", ""), status: 400},
		{name: "key not base64", req: get("Sec-WebSocket-Key", "not base64 at all!!!!!!!"), status: 400},
		{name: "key 15 bytes", req: get("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 15))), status: 400},
		{name: "key 17 bytes", req: get("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 17))), status: 400},
		{name: "two keys", req: get("Sec-WebSocket-Key", testKey+"\r\nSec-WebSocket-Key: "+testKey), status: 400},
		{name: "same origin", req: func(host string) string { return get("Origin", "http://"+host)(host) }, status: 101},
		{name: "cross origin", req: get("Origin", "http://evil.example"), status: 403},
		{name: "null origin", req: get("Origin", "null"), status: 403},
		{name: "origin pattern", opts: &websocket.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, req: get("Origin", "https://app.example.com"), status: 101},
		{name: "origin pattern miss", opts: &websocket.AcceptOptions{OriginPatterns: []string{"*.example.com"}}, req: get("Origin", "https://example.org"), status: 403},
		{name: "origin pattern with scheme", opts: &websocket.AcceptOptions{OriginPatterns: []string{"https://app.example.com"}}, req: get("Origin", "https://app.example.com"), status: 101},
		{name: "origin pattern wrong scheme", opts: &websocket.AcceptOptions{OriginPatterns: []string{"https://app.example.com"}}, req: get("Origin", "http://app.example.com"), status: 403},
		{name: "insecure skip origin", opts: &websocket.AcceptOptions{InsecureSkipOriginCheck: true}, req: get("Origin", "http://evil.example"), status: 101},
		{name: "subprotocol client order", opts: &websocket.AcceptOptions{Subprotocols: []string{"b", "a"}}, req: get("Sec-WebSocket-Protocol", "a, b"), status: 101,
			header: [][2]string{{"Sec-WebSocket-Protocol", "a"}}},
		{name: "subprotocol none matches", opts: &websocket.AcceptOptions{Subprotocols: []string{"c"}}, req: get("Sec-WebSocket-Protocol", "a, b"), status: 101,
			header: [][2]string{{"Sec-WebSocket-Protocol", ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			resp, err := rawHandshake(t, c.opts, nil, c.req)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (Accept: %v)", resp.StatusCode, c.status, err)
			}
			if (c.status == 101) != (err == nil) {
				t.Fatalf("Accept error %v with status %d", err, resp.StatusCode)
			}
			if err != nil && !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("Accept error %v does not wrap ErrBadHandshake", err)
			}
			for _, kv := range c.header {
				if got := resp.Header.Get(kv[0]); got != kv[1] {
					t.Fatalf("%s: %q, want %q", kv[0], got, kv[1])
				}
			}
			if c.status == 101 && (!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade")) {
				t.Fatalf("101 without Upgrade/Connection: %v", resp.Header)
			}
		})
	}
}

// Headers set on the ResponseWriter before Accept go out with the 101.
// Neither a CR or LF in a value nor a name that is not a token (RFC 9110
// §5.1; net/http drops such names) injects a header line: names were
// once written as given. The handshake's own headers set on w are not
// sent: the subprotocol comes from AcceptOptions.Subprotocols.
func TestServerHandshakeCustomHeaders(t *testing.T) {
	resp, err := rawHandshake(t, nil, func(w http.ResponseWriter) {
		w.Header().Set("X-Custom", "yes")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Set("X-Injected", "a\r\nEvil: 1")
		w.Header()["X-A: b\r\nEvil2"] = []string{"1"}
		w.Header()["Bad Name"] = []string{"1"}
		w.Header().Set("Sec-WebSocket-Protocol", "chat")
		w.Header().Set("Sec-WebSocket-Extensions", "permessage-deflate")
	}, request("GET", "HTTP/1.1", "Sec-WebSocket-Protocol", "chat"))
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp.Status, err)
	}
	if resp.Header.Get("X-Custom") != "yes" || resp.Header.Get("Set-Cookie") != "a=1" || resp.Header.Get("Evil") != "" {
		t.Fatalf("headers: %v", resp.Header)
	}
	for _, name := range []string{"Evil2", "X-A", "Bad Name", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"} {
		if v := resp.Header.Values(name); len(v) > 0 {
			t.Errorf("101 has %s: %q (all: %v)", name, v, resp.Header)
		}
	}
}

// TestAcceptRefusesRequestBody guards that a handshake request with a
// body is refused with 400 before the hijack. RFC 9110 §7.8: the new
// protocol starts after the request's body; Accept once upgraded such a
// request and read the body's bytes as frames (failing the connection,
// or worse, taking a body a proxy forwarded as HTTP for frames).
func TestAcceptRefusesRequestBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(string) string
	}{
		{"content-length", func(host string) string {
			return request("GET", "HTTP/1.1", "Content-Length", "6")(host) + "abcdef"
		}},
		{"chunked", func(host string) string {
			return request("GET", "HTTP/1.1", "Transfer-Encoding", "chunked")(host) + "6\r\nabcdef\r\n0\r\n\r\n"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := rawHandshake(t, nil, nil, tc.req)
			if resp.StatusCode != http.StatusBadRequest || !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("status %s, Accept: %v; want 400 and ErrBadHandshake", resp.Status, err)
			}
		})
	}
	// An empty body is no body.
	resp, err := rawHandshake(t, nil, nil, request("GET", "HTTP/1.1", "Content-Length", "0"))
	if resp.StatusCode != http.StatusSwitchingProtocols || err != nil {
		t.Fatalf("Content-Length: 0: status %s, Accept: %v; want 101", resp.Status, err)
	}
}

// TestAcceptNegativeWriteTimeout guards that a negative WriteTimeout means
// no write deadline for the 101 as for frames (write.go). Accept once
// armed the 101's write with a deadline in the past: every handshake
// failed after the hijack, with no response for the client.
func TestAcceptNegativeWriteTimeout(t *testing.T) {
	resp, err := rawHandshake(t, &websocket.AcceptOptions{WriteTimeout: -1}, nil, request("GET", "HTTP/1.1"))
	if resp.StatusCode != http.StatusSwitchingProtocols || err != nil {
		t.Fatalf("WriteTimeout -1: status %s, Accept: %v; want 101", resp.Status, err)
	}
}

// TestAcceptHTTP2Refused guards that an HTTP/2 request is refused with 400
// and a reason, without Upgrade or Connection: RFC 9113 §8.2.2 makes a
// message with them malformed, and clients (curl) reset the stream rather
// than show the 426 Accept once sent. WebSocket over HTTP/2 (RFC 8441) is
// not supported.
func TestAcceptHTTP2Refused(t *testing.T) {
	acceptErr := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := websocket.Accept(w, r, nil)
		acceptErr <- err
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Timeout = wireTimeout
	resp, err := client.Get(srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("request went over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP/1.1") {
		t.Errorf("HTTP/2 request: %s %q, want 400 saying HTTP/1.1 is needed", resp.Status, body)
	}
	for _, name := range []string{"Upgrade", "Connection"} {
		if v := resp.Header.Values(name); len(v) > 0 {
			t.Errorf("HTTP/2 response carries %s: %q (RFC 9113 §8.2.2: malformed)", name, v)
		}
	}
	select {
	case err := <-acceptErr:
		if !errors.Is(err, websocket.ErrBadHandshake) {
			t.Errorf("Accept: %v, want ErrBadHandshake", err)
		}
	case <-time.After(wireTimeout):
		t.Fatal("Accept did not return")
	}
}

func TestClientHandshake(t *testing.T) {
	answer := func(extra string, accept func(key string) string) func(io.Writer, *http.Request) {
		return func(w io.Writer, req *http.Request) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
				accept(req.Header.Get("Sec-WebSocket-Key")), extra)
		}
	}
	cases := []struct {
		name    string
		opts    *websocket.DialOptions
		respond func(io.Writer, *http.Request)
		ok      bool
		proto   string
	}{
		{name: "ok", respond: acceptHandshake, ok: true},
		{name: "tokens case-insensitive", ok: true, respond: func(w io.Writer, req *http.Request) {
			fmt.Fprintf(w, "HTTP/1.1 101 OK\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(req.Header.Get("Sec-WebSocket-Key")))
		}},
		{name: "wrong accept", respond: answer("", func(string) string { return wsAccept("x") })},
		{name: "accept of the RFC key", respond: answer("", func(string) string { return wsAccept(testKey) })},
		{name: "no accept", respond: answer("", func(string) string { return "" })},
		{name: "no Upgrade", respond: func(w io.Writer, req *http.Request) {
			fmt.Fprintf(w, "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(req.Header.Get("Sec-WebSocket-Key")))
		}},
		{name: "no Connection", respond: func(w io.Writer, req *http.Request) {
			fmt.Fprintf(w, "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(req.Header.Get("Sec-WebSocket-Key")))
		}},
		{name: "200", respond: func(w io.Writer, _ *http.Request) {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
		}},
		{name: "subprotocol chosen", opts: &websocket.DialOptions{Subprotocols: []string{"a", "b"}},
			respond: answer("Sec-WebSocket-Protocol: b\r\n", wsAccept), ok: true, proto: "b"},
		{name: "subprotocol not offered", opts: &websocket.DialOptions{Subprotocols: []string{"a", "b"}},
			respond: answer("Sec-WebSocket-Protocol: c\r\n", wsAccept)},
		{name: "subprotocol when none offered", respond: answer("Sec-WebSocket-Protocol: a\r\n", wsAccept)},
		{name: "two subprotocols", opts: &websocket.DialOptions{Subprotocols: []string{"a", "b"}},
			respond: answer("Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n", wsAccept)},
		{name: "extension not offered", respond: answer("Sec-WebSocket-Extensions: permessage-deflate\r\n", wsAccept)},
		// RFC 9110 §15.2: interim responses before the 101 are skipped
		// (103 Early Hints from a CDN, say), a bounded number of them.
		{name: "interim responses first", ok: true, respond: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload\r\n\r\n")
			acceptHandshake(w, req)
		}},
		{name: "interim responses without end", respond: func(w io.Writer, req *http.Request) {
			for range 6 {
				io.WriteString(w, "HTTP/1.1 103 Early Hints\r\n\r\n")
			}
			acceptHandshake(w, req)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url, _ := fakeServer(t, c.respond)
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			conn, resp, err := websocket.Dial(ctx, url, c.opts)
			if c.ok {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer conn.CloseNow()
				if conn.Subprotocol() != c.proto {
					t.Fatalf("Subprotocol %q, want %q", conn.Subprotocol(), c.proto)
				}
				if resp.StatusCode != 101 {
					t.Fatalf("resp %v", resp.Status)
				}
				return
			}
			if err == nil {
				conn.CloseNow()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("Dial error %v does not wrap ErrBadHandshake", err)
			}
			if c.name == "200" {
				if resp == nil || resp.StatusCode != 200 {
					t.Fatalf("resp %v", resp)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != "hi" {
					t.Fatalf("body %q", b)
				}
			}
		})
	}
}

// What the client sends: GET with the URL's path and query, the upgrade
// headers, a fresh 16-byte key, the offered subprotocols and custom headers.
func TestClientHandshakeRequest(t *testing.T) {
	reqs := make(chan *http.Request, 2)
	var keys []string
	for i := 0; i < 2; i++ {
		u, peers := fakeServer(t, func(w io.Writer, req *http.Request) {
			reqs <- req
			acceptHandshake(w, req)
		})
		ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
		c, _, err := websocket.Dial(ctx, u+"?room=1", &websocket.DialOptions{
			Subprotocols: []string{"wsrpc.proto", "wsrpc.json"},
			Header:       http.Header{"Authorization": {"Bearer t"}, "Origin": {"https://app.example"}, "Host": {"api.example:8080"}},
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		<-peers
		c.CloseNow()
		r := <-reqs
		checks := [][2]string{
			{r.Method, "GET"}, {r.RequestURI, "/ws?room=1"}, {r.Proto, "HTTP/1.1"}, {r.Host, "api.example:8080"},
			{strings.ToLower(r.Header.Get("Upgrade")), "websocket"}, {strings.ToLower(r.Header.Get("Connection")), "upgrade"},
			{r.Header.Get("Sec-WebSocket-Version"), "13"}, {r.Header.Get("Sec-WebSocket-Protocol"), "wsrpc.proto, wsrpc.json"},
			{r.Header.Get("Authorization"), "Bearer t"}, {r.Header.Get("Origin"), "https://app.example"},
		}
		for _, c := range checks {
			if c[0] != c[1] {
				t.Fatalf("request: %q, want %q", c[0], c[1])
			}
		}
		key := r.Header.Get("Sec-WebSocket-Key")
		if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
			t.Fatalf("Sec-WebSocket-Key %q", key)
		}
		keys = append(keys, key)
	}
	if keys[0] == keys[1] {
		t.Fatal("the same Sec-WebSocket-Key twice")
	}
}

// dialRequest dials a fake server at its URL passed through edit, with
// opts, and returns the handshake request the server read.
func dialRequest(t *testing.T, edit func(url string) string, opts *websocket.DialOptions) *http.Request {
	t.Helper()
	reqs := make(chan *http.Request, 1)
	u, peers := fakeServer(t, func(w io.Writer, req *http.Request) {
		reqs <- req
		acceptHandshake(w, req)
	})
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, edit(u), opts)
	if err != nil {
		t.Fatal(err)
	}
	<-peers
	c.CloseNow()
	return <-reqs
}

// TestDialHostKeyAnySpelling guards that a Host override in
// DialOptions.Header is sent whatever the spelling of its key: a map
// literal can hold "host", which Header.Get does not find.
func TestDialHostKeyAnySpelling(t *testing.T) {
	for _, key := range []string{"Host", "host", "HOST"} {
		r := dialRequest(t, func(u string) string { return u }, &websocket.DialOptions{Header: http.Header{key: {"api.example:8080"}}})
		if r.Host != "api.example:8080" {
			t.Errorf("Header key %q: Host %q, want api.example:8080", key, r.Host)
		}
		if got := r.Header.Values("Host"); len(got) != 0 {
			t.Errorf("Header key %q: Host also sent as a header line: %q", key, got)
		}
	}
}

// TestDialUserinfo guards that credentials in the URL are sent as Basic
// authorization (RFC 7617 §2), as net/http's client sends them, rather
// than dropped, and never in the request line or Host (RFC 9110 §4.2.4);
// an Authorization in DialOptions.Header takes precedence.
func TestDialUserinfo(t *testing.T) {
	withCreds := func(u string) string { return strings.Replace(u, "ws://", "ws://us%65r:p%40ss:w@", 1) }
	r := dialRequest(t, withCreds, nil)
	user, pass, ok := r.BasicAuth()
	if !ok || user != "user" || pass != "p@ss:w" {
		t.Errorf("Authorization %q: basic %v %q %q, want user and p@ss:w", r.Header.Get("Authorization"), ok, user, pass)
	}
	if line := r.RequestURI + " " + r.Host; strings.Contains(line, "@") || strings.Contains(line, "us%65r") || strings.Contains(line, "p%40ss") {
		t.Errorf("request line %q, Host %q: the userinfo leaked", r.RequestURI, r.Host)
	}
	r = dialRequest(t, withCreds, &websocket.DialOptions{Header: http.Header{"Authorization": {"Bearer t"}}})
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer t" {
		t.Errorf("Authorization %q with a Header of its own, want only Bearer t", got)
	}
}

// TestDialHeaderRefused guards that a DialOptions.Header Dial cannot send
// as given fails before anything is dialed, with an error naming the
// header: a name that is not a token or a value with a control character
// (RFC 9110 §5.1, §5.5; a CR or LF would inject headers), or a header of
// the handshake's own (RFC 6455 §4.1), which would be sent twice or
// silently dropped. Tab and obs-text are valid values and are sent.
func TestDialHeaderRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"space in name", http.Header{"Bad Name": {"x"}}, `header name "Bad Name" is not a token`},
		{"CRLF in name", http.Header{"X-A: b\r\nX-Injected": {"x"}}, "is not a token"},
		{"empty name", http.Header{"": {"x"}}, "is not a token"},
		{"CRLF in value", http.Header{"X-Trace": {"a\r\nX-Injected: 1"}}, "header X-Trace: value has a control character"},
		{"control in value", http.Header{"X-Trace": {"ok", "a\x01b"}}, "X-Trace: value has a control character"},
		{"DEL in value", http.Header{"X-Trace": {"a\x7f"}}, "X-Trace: value has a control character"},
		{"subprotocol", http.Header{"Sec-Websocket-Protocol": {"chat"}}, "Sec-Websocket-Protocol: offer subprotocols with DialOptions.Subprotocols"},
		{"extensions", http.Header{"sec-websocket-extensions": {"permessage-deflate"}}, "sec-websocket-extensions: offer extensions with DialOptions.Extensions"},
		{"upgrade", http.Header{"Upgrade": {"websocket"}}, "Upgrade is the handshake's own"},
		{"connection", http.Header{"Connection": {"Upgrade"}}, "Connection is the handshake's own"},
		{"key", http.Header{"Sec-Websocket-Key": {"AAAAAAAAAAAAAAAAAAAAAA=="}}, "Sec-Websocket-Key is the handshake's own"},
		{"version", http.Header{"Sec-Websocket-Version": {"13"}}, "Sec-Websocket-Version is the handshake's own"},
	} {
		dialed := false
		opts := &websocket.DialOptions{
			Header: tc.header,
			NetDialContext: func(context.Context, string, string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("dialed")
			},
		}
		_, _, err := websocket.Dial(context.Background(), "ws://127.0.0.1:1/", opts)
		if err == nil || dialed || !strings.Contains(err.Error(), tc.want) || errors.Is(err, websocket.ErrBadHandshake) || !errors.Is(err, websocket.ErrInvalidDial) {
			t.Errorf("%s: dialed %v, error %v; want no dial and an ErrInvalidDial saying %q", tc.name, dialed, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "a\x01b") {
			t.Errorf("%s: the error %q quotes the value (it may be a credential)", tc.name, err)
		}
	}

	r := dialRequest(t, func(u string) string { return u }, &websocket.DialOptions{Header: http.Header{"X-Ok": {"a\tb \xe9"}}})
	if got := r.Header.Get("X-Ok"); got != "a\tb \xe9" {
		t.Errorf("X-Ok %q, want the tab and obs-text byte sent as given", got)
	}
}

// TestDialSubprotocolsRefused guards that DialOptions.Subprotocols are
// checked before dialing, failing with ErrInvalidDial: each offer must be
// a non-empty token and unique (RFC 6455 §4.1, item 10). They were once
// written as given: a CR LF injected request headers, and a comma split
// one name into two offers.
func TestDialSubprotocolsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto []string
		want  string
	}{
		{"CRLF", []string{"chat\r\nX-Injected: 1"}, "is not a token"},
		{"comma", []string{"a, b"}, `subprotocol "a, b" is not a token`},
		{"empty", []string{"chat", ""}, `subprotocol "" is not a token`},
		{"space", []string{"a b"}, "is not a token"},
		{"separator", []string{"a/b"}, "is not a token"},
		{"non-ASCII", []string{"ch\u00e4t"}, "is not a token"},
		{"duplicate", []string{"a", "b", "a"}, `subprotocol "a" offered twice`},
	} {
		dialed := false
		opts := &websocket.DialOptions{
			Subprotocols: tc.proto,
			NetDialContext: func(context.Context, string, string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("dialed")
			},
		}
		_, _, err := websocket.Dial(context.Background(), "ws://127.0.0.1:1/", opts)
		if err == nil || dialed || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, websocket.ErrInvalidDial) {
			t.Errorf("%s: dialed %v, error %v; want no dial and an ErrInvalidDial saying %q", tc.name, dialed, err, tc.want)
		}
	}
	// Case differs: two offers (names are compared exactly, as Accept does).
	r := dialRequest(t, func(u string) string { return u }, &websocket.DialOptions{Subprotocols: []string{"chat", "Chat", "v1.chat+json"}})
	if got := r.Header.Get("Sec-WebSocket-Protocol"); got != "chat, Chat, v1.chat+json" {
		t.Errorf("Sec-WebSocket-Protocol %q, want the three offers", got)
	}
}

// TestDialIPv6ZoneNotInHost guards that an IPv6 zone is dialed but not
// sent in Host (RFC 6874 §4: it is meaningful only on this machine; net/
// http's client strips it too). Dial once sent "[fe80::1%eth0]:8080".
func TestDialIPv6ZoneNotInHost(t *testing.T) {
	var dialed string
	var real string
	r := dialRequest(t, func(u string) string {
		real = strings.TrimSuffix(strings.TrimPrefix(u, "ws://"), "/ws")
		return "ws://[fe80::1%25eth0]:8080/ws"
	}, &websocket.DialOptions{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed = addr
			return (&net.Dialer{}).DialContext(ctx, network, real)
		},
	})
	if r.Host != "[fe80::1]:8080" {
		t.Errorf("Host %q, want [fe80::1]:8080", r.Host)
	}
	if dialed != "[fe80::1%eth0]:8080" {
		t.Errorf("dialed %q, want the zone kept: [fe80::1%%eth0]:8080", dialed)
	}
}

// TestDialNonASCIIHostRefused: a host name that is not ASCII is
// ErrInvalidDial, before any dial, with the advice to give its IDNA form.
// Dial sent the raw UTF-8 in Host and to DNS, which failed later and
// obscurely (a lookup error, or a Go server's 400 for a malformed Host).
func TestDialNonASCIIHostRefused(t *testing.T) {
	for _, u := range []string{"ws://bücher.example/", "wss://bücher.example:8443/x", "ws://a\u00a0b.example/"} {
		u, _ = strconv.Unquote(`"` + u + `"`)
		dialed := false
		_, _, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("no dial expected")
			},
		})
		if !errors.Is(err, websocket.ErrInvalidDial) || !strings.Contains(err.Error(), "IDNA") || dialed {
			t.Errorf("Dial(%q) = %v (dialed %v), want ErrInvalidDial naming IDNA, no dial", u, err, dialed)
		}
	}
}

// TestDialEmptyHostNameRefused: a URL whose host is a port alone
// ("ws://:8080/", a host name left out of a URL built from
// configuration) has no host, and is ErrInvalidDial before any dial, as
// docs/websocket.md lists it and as a browser's WebSocket constructor
// throws on it. Dial checked only that the authority was not empty, and
// dialed ":8080", which net.Dial takes for this machine: the handshake
// went to a local server the URL never named, with "Host: :8080".
func TestDialEmptyHostNameRefused(t *testing.T) {
	for _, u := range []string{"ws://:8080/", "wss://:443/x", "http://user:pass@:80/"} {
		dialed := false
		_, _, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialed = true
				return nil, errors.New("no dial expected")
			},
		})
		if !errors.Is(err, websocket.ErrInvalidDial) || !strings.Contains(err.Error(), "no host") || dialed {
			t.Errorf("Dial(%q) = %v (dialed %v), want ErrInvalidDial saying no host, no dial", u, err, dialed)
		}
	}
}

// TestDialEventStreamRefusal guards a WebSocket client that dials a path
// served as Server-Sent Events (a method a schema moved to SSE, answered
// by an older server): the answer, 200 with a text/event-stream body that
// does not end while the stream is quiet, is returned as a refusal at
// once, with an empty body. Dial read the body up to 1 KiB, so it waited
// out the handshake's deadline (30 s by default) and reported a timeout.
// Another refusal's body is still read, bounded by the deadline.
func TestDialEventStreamRefusal(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	u, _ := fakeServer(t, func(w io.Writer, _ *http.Request) {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n: hello\n\n\r\n")
		<-hold
	})
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v, want the refusal (ErrBadHandshake), not the deadline", err)
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("resp %v, want the 200", resp)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != 0 {
		t.Fatalf("body %q, want none read", b)
	}

	// A refusal whose body is read (up to 1 KiB) and does not end: the
	// read ends before the handshake's context does (at half the time
	// left, under a second), and the refusal is reported with what came.
	u, _ = fakeServer(t, func(w io.Writer, _ *http.Request) {
		io.WriteString(w, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nno\n\r\n")
		<-hold
	})
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, _, err = websocket.Dial(ctx, u, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "503 Service Unavailable: no") {
		t.Fatalf("Dial: %v, want the refusal with its body, not the handshake's deadline", err)
	}
}

// The handshake is bounded by ctx: a server that never answers.
func TestClientHandshakeContext(t *testing.T) {
	for _, cancelFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("cancel=", cancelFirst), func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			u, _ := fakeServer(t, func(io.Writer, *http.Request) { <-hold })
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			want := context.DeadlineExceeded
			if cancelFirst {
				ctx2, cancel2 := context.WithCancel(ctx)
				ctx = ctx2
				want = context.Canceled
				time.AfterFunc(20*time.Millisecond, cancel2)
			}
			c, _, err := websocket.Dial(ctx, u, nil)
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, want) {
				t.Fatalf("Dial: %v, want %v", err, want)
			}
		})
	}
}

// echoServer is an httptest server whose handler echoes messages.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = echo(c)
	})
}

func roundTrip(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != msg {
		t.Fatalf("Read: %q %v", got, err)
	}
}

// connectProxy is a small HTTP CONNECT proxy; it records the requests.
type connectProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	seen  []*http.Request
	deny  bool
	conns sync.WaitGroup
}

func newConnectProxy(t *testing.T, deny bool) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, deny: deny}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.conns.Wait() })
	return p
}

func (p *connectProxy) serve() {
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			defer nc.Close()
			br := bufio.NewReader(nc)
			_ = nc.SetReadDeadline(time.Now().Add(wireTimeout))
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.seen = append(p.seen, req)
			p.mu.Unlock()
			if p.deny || req.Method != http.MethodConnect {
				io.WriteString(nc, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
				return
			}
			up, err := net.DialTimeout("tcp", req.Host, wireTimeout)
			if err != nil {
				io.WriteString(nc, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				return
			}
			defer up.Close()
			_ = nc.SetReadDeadline(time.Time{})
			io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
			done := make(chan struct{}, 2)
			go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(nc, up); nc.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func TestDialThroughProxy(t *testing.T) {
	srv := httptest.NewServer(echoHandler())
	defer srv.Close()
	proxy := newConnectProxy(t, false)
	pu := &url.URL{Scheme: "http", Host: proxy.ln.Addr().String(), User: url.UserPassword("user", "pw")}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+hostOf(srv.URL)+"/", &websocket.DialOptions{Proxy: http.ProxyURL(pu)})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "through the tunnel")
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if len(proxy.seen) != 1 {
		t.Fatalf("proxy saw %d requests", len(proxy.seen))
	}
	r := proxy.seen[0]
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pw"))
	if r.Method != http.MethodConnect || r.Host != hostOf(srv.URL) || r.Header.Get("Proxy-Authorization") != wantAuth {
		t.Fatalf("proxy request %s %s auth %q", r.Method, r.Host, r.Header.Get("Proxy-Authorization"))
	}
}

func TestDialThroughProxyRefused(t *testing.T) {
	proxy := newConnectProxy(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	pu := &url.URL{Scheme: "http", Host: proxy.ln.Addr().String()}
	c, _, err := websocket.Dial(ctx, "ws://127.0.0.1:1/", &websocket.DialOptions{Proxy: http.ProxyURL(pu)})
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial succeeded through a refusing proxy")
	}
	if !strings.Contains(err.Error(), "403") {
		t.Fatalf("Dial: %v, want the proxy's 403", err)
	}
}

// TestDialProxyConnectCancelled guards that cancelling ctx ends Dial while
// a proxy has not answered CONNECT, as Dial's docs promise for the whole
// handshake. The cancel once took effect only from the WebSocket
// handshake on: a silent proxy held Dial until the deadline (by default
// DefaultHandshakeTimeout, 30 s).
func TestDialProxyConnectCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connectRead := make(chan struct{})
	hold := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(hold); wg.Wait() }()
	wg.Add(1)
	go func() { // a proxy that reads CONNECT and never answers
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = nc.SetReadDeadline(time.Now().Add(wireTimeout))
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err == nil {
			close(connectRead)
		}
		<-hold
	}()
	// No deadline: only the cancel (or the 30 s default) can end Dial.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pu := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	done := make(chan error, 1)
	go func() {
		c, _, err := websocket.Dial(ctx, "ws://127.0.0.1:1/", &websocket.DialOptions{Proxy: http.ProxyURL(pu)})
		if c != nil {
			c.CloseNow()
		}
		done <- err
	}()
	select {
	case <-connectRead:
	case err := <-done:
		t.Fatalf("Dial returned before the proxy read CONNECT: %v", err)
	case <-time.After(wireTimeout):
		t.Fatal("the proxy got no CONNECT")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial: %v, want context.Canceled", err)
		}
	case <-time.After(wireTimeout):
		t.Fatal("Dial did not return after ctx was cancelled during CONNECT")
	}
}

// TestDialHTTPSProxyClientTLS guards that an https:// proxy is verified
// with the client's TLS configuration (DialOptions.TLSConfig, or that of
// HTTPClient's transport), as net/http's Transport verifies it, under the
// proxy's own name and without the ALPN offered to the target (the proxy
// here speaks h2 too; CONNECT is HTTP/1.1). Dial once used an empty
// tls.Config: a proxy net/http trusted failed for WebSocket.
func TestDialHTTPSProxyClientTLS(t *testing.T) {
	target := httptest.NewServer(echoHandler())
	defer target.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.ProtoMajor != 1 {
			http.Error(w, "CONNECT over HTTP/1.1 only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.DialTimeout("tcp", r.Host, wireTimeout)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(up, brw); up.Close() }()
		go func() { defer wg.Done(); io.Copy(nc, up); nc.Close() }()
	}))
	proxy.EnableHTTP2 = true
	proxy.Config.ErrorLog = log.New(io.Discard, "", 0)
	proxy.StartTLS()
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	tr := proxy.Client().Transport.(*http.Transport).Clone() // trusts the proxy's CA
	tr.Proxy = http.ProxyURL(pu)
	pool := x509.NewCertPool()
	pool.AddCert(proxy.Certificate())

	for name, opts := range map[string]*websocket.DialOptions{
		"HTTPClient": {HTTPClient: &http.Client{Transport: tr}},
		"TLSConfig":  {TLSConfig: &tls.Config{RootCAs: pool}, Proxy: http.ProxyURL(pu)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
		c, _, err := websocket.Dial(ctx, "ws://"+hostOf(target.URL)+"/", opts)
		if err != nil {
			cancel()
			t.Fatalf("%s: Dial through the https proxy: %v", name, err)
		}
		roundTrip(t, c, "through the https proxy")
		c.CloseNow()
		cancel()
	}
}

// wss:// against httptest's TLS server: the client verifies the certificate.
func TestDialTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(echoHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused certificates below
	srv.StartTLS()
	defer srv.Close()
	u := "wss://" + hostOf(srv.URL) + "/"
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()

	for name, opts := range map[string]*websocket.DialOptions{
		"TLSConfig":  {TLSConfig: &tls.Config{RootCAs: pool}},
		"HTTPClient": {HTTPClient: srv.Client()},
	} {
		c, _, err := websocket.Dial(ctx, u, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		roundTrip(t, c, "secure "+name)
		if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("%s: Close: %v", name, err)
		}
	}

	// Without the test CA the certificate does not verify.
	c, _, err := websocket.Dial(ctx, u, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial accepted an unverified certificate")
	}
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Fatalf("Dial: %v, want x509.UnknownAuthorityError", err)
	}
	// crypto/tls's errors name TLS already: not "tls: tls: failed to verify".
	if strings.Count(err.Error(), "tls: ") != 1 {
		t.Errorf("Dial: %q, want \"tls: \" once", err)
	}
	// Wrong name: the certificate is for 127.0.0.1 and example.com only.
	c, _, err = websocket.Dial(ctx, u, &websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "other.test"}})
	if err == nil {
		c.CloseNow()
		t.Fatal("Dial accepted a certificate for another name")
	}
}

func TestDialBadURL(t *testing.T) {
	for _, u := range []string{"ftp://127.0.0.1/", "ws:///nohost", "://"} {
		if c, _, err := websocket.Dial(context.Background(), u, nil); err == nil {
			c.CloseNow()
			t.Fatalf("Dial(%q) succeeded", u)
		}
	}
}

// TestIsUpgradeRequest: the token rule Accept applies, exported for
// handlers that serve plain HTTP beside WebSocket.
func TestIsUpgradeRequest(t *testing.T) {
	for _, tc := range []struct {
		header http.Header
		want   bool
	}{
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true},
		{http.Header{"Connection": {"keep-alive, UPGRADE"}, "Upgrade": {"WebSocket"}}, true},
		{http.Header{"Connection": {"keep-alive", "Upgrade"}, "Upgrade": {"h2c", "websocket"}}, true}, // split over lines
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket, x"}}, true},
		{http.Header{"Connection": {"keep-alive"}, "Upgrade": {"websocket"}}, false},
		{http.Header{"Connection": {"Upgraded"}, "Upgrade": {"websocket"}}, false},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websockets"}}, false},
		{http.Header{"Connection": {"Upgrade"}}, false},
		{http.Header{}, false},
	} {
		r := &http.Request{Method: http.MethodGet, Header: tc.header}
		if got := websocket.IsUpgradeRequest(r); got != tc.want {
			t.Errorf("%v: IsUpgradeRequest = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestDialUsesCookieJar guards that DialOptions.HTTPClient's Jar works
// for WebSockets as for the client's HTTP requests: its cookies for the
// URL go with the handshake, after the Header's own (RFC 6265 §5.4: one
// Cookie field), and the cookies the server sets, in the 101 or in a
// refusal, are kept. The Jar was ignored: a client authenticated by a
// session cookie was refused on WebSockets only.
func TestDialUsesCookieJar(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Cookie")
		if r.URL.Path == "/refuse" {
			http.SetCookie(w, &http.Cookie{Name: "refused", Value: "1"})
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "renewed", Value: "2"})
		c, err := websocket.Accept(w, r, nil)
		if err == nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(srv.URL)
	jar.SetCookies(base, []*http.Cookie{{Name: "session", Value: "abc"}})
	opts := &websocket.DialOptions{HTTPClient: &http.Client{Jar: jar}, Header: http.Header{"Cookie": {"pref=x"}}}
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", opts)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if cookie := <-got; cookie != "pref=x; session=abc" {
		t.Errorf("handshake Cookie %q, want pref=x; session=abc", cookie)
	}
	if _, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/refuse", opts); err == nil {
		t.Fatal("refused handshake succeeded")
	}
	<-got
	kept := map[string]string{}
	for _, c := range jar.Cookies(base) {
		kept[c.Name] = c.Value
	}
	if kept["renewed"] != "2" || kept["refused"] != "1" || kept["session"] != "abc" {
		t.Errorf("jar after the handshakes: %v, want session, renewed and refused", kept)
	}
	if got := opts.Header.Values("Cookie"); len(got) != 1 || got[0] != "pref=x" {
		t.Errorf("DialOptions.Header changed: Cookie %q", got)
	}
}

// statusRecorder is the classic middleware wrapper: it records the status
// and forwards nothing else, so the writer it wraps cannot be reached.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// TestAcceptBehindWrapperSaysWhy guards the diagnosis of the commonest
// way a WebSocket breaks behind middleware: a ResponseWriter wrapper with
// neither Hijack nor Unwrap. The 500 says the writer cannot be hijacked,
// and Accept's error names the wrapper's type; both said only
// "connection cannot be upgraded".
func TestAcceptBehindWrapperSaysWhy(t *testing.T) {
	errs := make(chan error, 1)
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := websocket.Accept(w, r, nil)
		errs <- err
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.ServeHTTP(&statusRecorder{ResponseWriter: w}, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError || !strings.Contains(err.Error(), "cannot be hijacked") {
		t.Errorf("Dial: %v (response %v), want a 500 saying the writer cannot be hijacked", err, resp)
	}
	if err := <-errs; !errors.Is(err, http.ErrNotSupported) || !strings.Contains(err.Error(), "*websocket_test.statusRecorder") || !strings.Contains(err.Error(), "Unwrap") {
		t.Errorf("Accept: %v, want the wrapper's type and what it lacks", err)
	}
}
