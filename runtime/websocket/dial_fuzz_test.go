package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dialFuzzClients are the clients FuzzDialResponse dials with: what they
// offer decides what an answer may select.
var dialFuzzClients = []func() *DialOptions{
	func() *DialOptions { return &DialOptions{} },
	func() *DialOptions { return &DialOptions{Subprotocols: []string{"a", "b"}} },
	func() *DialOptions {
		return &DialOptions{Subprotocols: []string{"b"}, Extensions: MustExtensionSet(PerMessageDeflate(nil))}
	},
	func() *DialOptions {
		return &DialOptions{Extensions: MustExtensionSet(PerMessageDeflate(&DeflateOptions{
			ServerNoContextTakeover: true, ServerMaxWindowBits: 10, ClientMaxWindowBits: 12}))}
	},
}

// FuzzDialResponse answers Dial's handshake with arbitrary bytes, in
// which "ACCEPT" stands for the right Sec-WebSocket-Accept. Dial must not
// panic or hang; a refusal wraps ErrBadHandshake unless the bytes are no
// HTTP response net/http can read; and it connects exactly when the
// final response (after any 1xx) is a 101 with Upgrade: websocket,
// Connection: Upgrade and the right accept key, that selects at most one
// subprotocol, among those offered, and answers extensions only among
// those offered, once each, with parameters the offer allows (RFC 6455
// §4.1, RFC 7692 §7.1). What it connects with is what the answer says.
func FuzzDialResponse(f *testing.F) {
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\n"
	for _, s := range []string{
		ok + "\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok + "Sec-WebSocket-Protocol: b\r\n\r\n",
		ok + "Sec-WebSocket-Protocol: a, b\r\n\r\n",
		ok + "Sec-WebSocket-Protocol: b\r\nSec-WebSocket-Protocol: b\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n\x81\x02hi",
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope",
		"HTTP/1.0 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: ACCEPT\r\n\r\n",
	} {
		for which := range dialFuzzClients {
			f.Add([]byte(s), uint8(which))
		}
	}
	f.Fuzz(func(t *testing.T, answer []byte, which uint8) {
		opts := dialFuzzClients[int(which)%len(dialFuzzClients)]()
		client, server := net.Pipe()
		opts.NetDialContext = func(context.Context, string, string) (net.Conn, error) { return client, nil }
		var accept string
		var sent []byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer server.Close()
			req, err := http.ReadRequest(bufio.NewReader(server))
			if err != nil {
				return
			}
			accept = acceptKey(req.Header.Get("Sec-WebSocket-Key"))
			sent = bytes.ReplaceAll(answer, []byte("ACCEPT"), []byte(accept))
			_, _ = server.Write(sent)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := Dial(ctx, "ws://fuzz.test/ws", opts)
		if c != nil {
			c.CloseNow()
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the server side of the pipe is stuck")
		}
		if ctx.Err() != nil {
			t.Fatalf("Dial hung: %v", err)
		}
		final, perr := finalResponse(sent)
		want := perr == nil && acceptable(final, accept, opts)
		switch {
		case err == nil && !want:
			t.Fatalf("Dial accepted %q (parse %v)", sent, perr)
		case err != nil && want:
			t.Fatalf("Dial refused %q: %v", sent, err)
		case err != nil && !errors.Is(err, ErrBadHandshake) && perr == nil:
			t.Fatalf("Dial's error for a response net/http reads does not wrap ErrBadHandshake: %v", err)
		case err != nil && resp != nil && !errors.Is(err, ErrBadHandshake):
			t.Fatalf("a refusal with a response does not wrap ErrBadHandshake: %v", err)
		}
		if err != nil {
			return
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("connected on a %d", resp.StatusCode)
		}
		if got, want := c.Subprotocol(), strings.TrimSpace(final.Header.Get("Sec-WebSocket-Protocol")); got != want {
			t.Fatalf("subprotocol %q, answer %q", got, want)
		}
		els, _ := ParseExtensions(final.Header.Values("Sec-WebSocket-Extensions"))
		if len(c.Extensions()) != len(els) {
			t.Fatalf("%d extensions in use, %d answered", len(c.Extensions()), len(els))
		}
		for _, e := range c.Extensions() {
			d, ok := e.Session.(*DeflateSession)
			if !ok {
				t.Fatalf("extension %q has session %T", e.Name, e.Session)
			}
			checkDeflateAnswer(t, d.Params(), e.Params, opts)
		}
	})
}

// finalResponse reads the response Dial acts on: the first that is not
// an interim one (1xx other than 101), as net/http parses it.
func finalResponse(b []byte) (*http.Response, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if i == maxInterimResponses {
			return nil, errors.New("too many interim responses")
		}
	}
}

// acceptable is the model of RFC 6455 §4.1's checks of the final answer.
func acceptable(resp *http.Response, accept string, opts *DialOptions) bool {
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") ||
		resp.Header.Get("Sec-WebSocket-Accept") != accept {
		return false
	}
	if ps := resp.Header.Values("Sec-WebSocket-Protocol"); len(ps) > 0 {
		if len(ps) > 1 || !contains(opts.Subprotocols, strings.TrimSpace(ps[0])) {
			return false
		}
	}
	els, err := ParseExtensions(resp.Header.Values("Sec-WebSocket-Extensions"))
	if err != nil {
		return false
	}
	if len(els) > 1 {
		return false // the clients offer one extension
	}
	for _, el := range els {
		if opts.Extensions == nil || !strings.EqualFold(el.Name, "permessage-deflate") {
			return false
		}
		if !deflateAnswerAllowed(el.Params, opts.Extensions.list[0].(*deflateExt).o) {
			return false
		}
	}
	return true
}

// deflateAnswerAllowed is RFC 7692 §7.1 for a client that offered o:
// known parameters, once each, values where they belong and in range;
// server_no_context_takeover kept if asked for; server_max_window_bits
// present and no larger if asked for; client_max_window_bits with a
// value, no larger than offered.
func deflateAnswerAllowed(ps []Param, o DeflateOptions) bool {
	seen := map[string]string{}
	for _, p := range ps {
		if _, dup := seen[p.Name]; dup {
			return false
		}
		seen[p.Name] = p.Value
		switch p.Name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.Value != "" {
				return false
			}
		case "server_max_window_bits", "client_max_window_bits":
			n := windowBitsValue(p.Value)
			if n == 0 {
				return false
			}
			if p.Name == "server_max_window_bits" && o.ServerMaxWindowBits != 0 && n > o.ServerMaxWindowBits {
				return false
			}
			if p.Name == "client_max_window_bits" && o.ClientMaxWindowBits != 0 && n > o.ClientMaxWindowBits {
				return false
			}
		default:
			return false
		}
	}
	if _, ok := seen["server_no_context_takeover"]; o.ServerNoContextTakeover && !ok {
		return false
	}
	if _, ok := seen["server_max_window_bits"]; o.ServerMaxWindowBits != 0 && !ok {
		return false
	}
	return true
}

// windowBitsValue is "8" to "15" as a number, else 0.
func windowBitsValue(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 || strconv.Itoa(n) != v {
		return 0
	}
	return n
}

// checkDeflateAnswer checks a client's session against the answer it
// accepted: it reads with a window no smaller than the server may use
// and without the server's context only if the server drops it; it
// writes with a window no larger than the server reads with and drops
// its context if the server asked.
func checkDeflateAnswer(t *testing.T, p DeflateParams, answer []Param, opts *DialOptions) {
	t.Helper()
	a := map[string]string{}
	for _, x := range answer {
		a[x.Name] = x.Value
	}
	serverBits, clientBits := 15, 15
	if v, ok := a["server_max_window_bits"]; ok {
		serverBits = windowBitsValue(v)
	}
	if v, ok := a["client_max_window_bits"]; ok {
		clientBits = windowBitsValue(v)
	} else if o := opts.Extensions.list[0].(*deflateExt).o; o.ClientMaxWindowBits != 0 {
		clientBits = o.ClientMaxWindowBits
	}
	_, serverNoCtx := a["server_no_context_takeover"]
	_, clientNoCtx := a["client_no_context_takeover"]
	if p.ReadWindowBits < serverBits || p.WriteWindowBits > clientBits ||
		!p.ReadContextTakeover && !serverNoCtx || p.WriteContextTakeover && clientNoCtx {
		t.Fatalf("answer %+v made session %+v", answer, p)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
