package websocket_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestFailureReasonText pins the close reason a failure sends (RFC 6455
// §7.1.7, the reason is the error's text): the sentinel's text once, then
// what broke the rule. It read "websocket: text message: websocket:
// invalid UTF-8", the package prefix twice, on every 1002, 1007 and 1009
// built by failWith and protocolErr. The engine's error still wraps the
// sentinel and reads as the reason does.
func TestFailureReasonText(t *testing.T) {
	cases := []struct {
		name   string
		opts   engOpts
		send   func(p *wirePeer)
		code   int
		reason string
	}{
		{name: "invalid UTF-8 text", send: func(p *wirePeer) { p.send(opText, []byte("caf\xff")) },
			code: 1007, reason: "websocket: invalid UTF-8: text message"},
		{name: "text ends inside a code point", send: func(p *wirePeer) { p.send(opText, []byte("caf\xc3")) },
			code: 1007, reason: "websocket: invalid UTF-8: text message ends inside a code point"},
		{name: "invalid UTF-8 close reason", send: func(p *wirePeer) { p.sendClose(1000, "bad\xce") },
			code: 1007, reason: "websocket: invalid UTF-8: close reason"},
		{name: "reserved opcode", send: func(p *wirePeer) { p.send(0x3, nil) },
			code: 1002, reason: "websocket: protocol error: reserved opcode 0x3"},
		{name: "message over MaxMessageSize", opts: engOpts{MaxMessageSize: 8, MaxFrameSize: 64}, send: func(p *wirePeer) {
			p.frame(false, 0, opBinary, make([]byte, 6))
			p.frame(true, 0, opCont, make([]byte, 6))
		}, code: 1009, reason: "websocket: message too big: message exceeds the 8-byte limit"},
	}
	for _, r := range roles {
		for _, tc := range cases {
			t.Run(r.String()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := start(t, r, quickLinger(tc.opts), echo)
				tc.send(s.wirePeer)
				f := s.expectClose(tc.code)
				reason := string(f.payload[2:])
				if reason != tc.reason || strings.Count(reason, "websocket:") != 1 {
					t.Errorf("close reason %q, want %q", reason, tc.reason)
				}
				err := s.result()
				sentinel := failSentinel(tc.code)
				if !errors.Is(err, sentinel) || err.Error() != tc.reason || websocket.FailureStatus(err) != websocket.StatusCode(tc.code) {
					t.Errorf("engine error %q (failure status %d), want %q wrapping %v with %d", err, websocket.FailureStatus(err), tc.reason, sentinel, tc.code)
				}
			})
		}
	}
}
