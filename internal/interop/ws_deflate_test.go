package interop_test

// permessage-deflate (RFC 7692) interop with npm ws, both directions, with
// and without context takeover. Besides the messages arriving intact on
// both sides, the byte counts of ws's TCP socket show that compressed
// frames really crossed in each direction (the messages are very
// compressible), so a silently declined extension cannot pass.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// deflateMessages are compressible messages of both types: repeated small
// ones (where context takeover pays), fragmented ones (ws compresses each
// fragment into one stream; RSV1 marks the first frame only), an empty one
// and 1 MiB ones.
var deflateMessages = func() []struct {
	step step
	msg  message
} {
	out := []struct {
		step step
		msg  message
	}{}
	add := func(s step, typ websocket.MessageType, p []byte) {
		out = append(out, struct {
			step step
			msg  message
		}{s, message{typ, p}})
	}
	for i := 0; i < 3; i++ {
		s := fmt.Sprintf(`{"event":"tick","seq":%d,"room":"lobby","text":"hello, deflate ✓"}`, i)
		add(sendText(s), websocket.MessageText, []byte(s))
	}
	add(sendText(""), websocket.MessageText, nil)
	add(step{Op: "send", Type: "text", Fragments: []byteSpec{text(strings.Repeat("abc ", 300)), text(strings.Repeat("✓ ", 300))}},
		websocket.MessageText, []byte(strings.Repeat("abc ", 300)+strings.Repeat("✓ ", 300)))
	add(sendSpec("binary", byteSpec{Pattern: 1 << 20}), websocket.MessageBinary, pattern(1<<20))
	add(sendSpec("text", byteSpec{Repeat: "héllo wörld ✓ 🚀 ", Count: (1 << 20) / 24}),
		websocket.MessageText, []byte(strings.Repeat("héllo wörld ✓ 🚀 ", (1<<20)/24)))
	return out
}()

// deflateCase is one negotiation: what each side is configured with and
// what both must agree was negotiated.
type deflateCase struct {
	name string
	ours *websocket.DeflateOptions
	ws   map[string]any // ws's perMessageDeflate option object
	// wantNoCtx: [server_no_context_takeover, client_no_context_takeover]
	// in the answer ws reports.
	wantServerNoCtx, wantClientNoCtx bool
}

var deflateCases = []deflateCase{
	{
		name: "context takeover",
		ours: &websocket.DeflateOptions{Threshold: -1},
		ws:   map[string]any{"threshold": 0},
	},
	{
		name:            "no context takeover asked by ws",
		ours:            &websocket.DeflateOptions{Threshold: -1},
		ws:              map[string]any{"threshold": 0, "serverNoContextTakeover": true, "clientNoContextTakeover": true},
		wantServerNoCtx: true, wantClientNoCtx: true,
	},
	{
		name:            "no context takeover asked by us",
		ours:            &websocket.DeflateOptions{Threshold: -1, ServerNoContextTakeover: true, ClientNoContextTakeover: true},
		ws:              map[string]any{"threshold": 0},
		wantServerNoCtx: true, wantClientNoCtx: true,
	},
}

// checkDeflate checks the negotiation on both sides and that both
// directions were compressed: wireIn and wireOut are the bytes ws read and
// wrote on its socket.
func checkDeflate(t *testing.T, tc deflateCase, c *websocket.Conn, server bool, extensions string, closeEv nodeEvent) {
	t.Helper()
	if !strings.HasPrefix(extensions, "permessage-deflate") ||
		strings.Contains(extensions, "server_no_context_takeover") != tc.wantServerNoCtx ||
		strings.Contains(extensions, "client_no_context_takeover") != tc.wantClientNoCtx {
		t.Errorf("ws negotiated %q; want permessage-deflate, server_no_context_takeover %v, client_no_context_takeover %v",
			extensions, tc.wantServerNoCtx, tc.wantClientNoCtx)
	}
	ext, ok := c.Extension("permessage-deflate")
	if !ok {
		t.Fatalf("our side did not negotiate permessage-deflate")
	}
	s, ok := ext.Session.(*websocket.DeflateSession)
	if !ok {
		t.Fatalf("session %T, want *websocket.DeflateSession", ext.Session)
	}
	p := s.Params()
	writeNoCtx, readNoCtx := tc.wantClientNoCtx, tc.wantServerNoCtx
	if server {
		writeNoCtx, readNoCtx = readNoCtx, writeNoCtx
	}
	if p.WriteContextTakeover == writeNoCtx || p.ReadContextTakeover == readNoCtx {
		t.Errorf("our params %+v; want write context takeover %v, read %v", p, !writeNoCtx, !readNoCtx)
	}
	var total int64
	for _, m := range deflateMessages {
		total += int64(len(m.msg.data))
	}
	in, out := closeEv.BytesRead, closeEv.BytesWritten
	// Each direction carried total bytes of messages; compressed they are
	// a few percent of that. A quarter leaves room for any framing.
	if in <= 0 || in > total/4 || out <= 0 || out > total/4 {
		t.Errorf("ws socket read %v and wrote %v bytes for %d bytes of messages each way: not compressed", in, out, total)
	}
}

// TestWSClientDeflate: ws as client with perMessageDeflate against our
// server with PerMessageDeflate, echoing by streaming Reader into Writer.
func TestWSClientDeflate(t *testing.T) {
	for _, tc := range deflateCases {
		t.Run(tc.name, func(t *testing.T) {
			exts := websocket.MustExtensionSet(websocket.PerMessageDeflate(tc.ours))
			var got []message
			conns := make(chan *websocket.Conn, 1)
			url, result := wsServe(t, &websocket.AcceptOptions{Extensions: exts}, func(ctx context.Context, c *websocket.Conn) error {
				conns <- c
				var err error
				got, err = echoStream(ctx, c)
				return err
			})
			cfg := nodeConfig{URL: url, PerMessageDeflate: tc.ws}
			var want []message
			for _, m := range deflateMessages {
				cfg.Steps = append(cfg.Steps, m.step, recv(1))
				want = append(want, m.msg)
			}
			cfg.Steps = append(cfg.Steps, step{Op: "close", Code: code(1000), Reason: "done"})
			events := startNode(t, "ws-client.mjs", cfg).finish(t)
			c := acceptedConn(t, conns, result)
			checkMessages(t, "our server", got, want)
			checkNodeMessages(t, events, want)
			checkDeflate(t, tc, c, true, one(t, events, "open").Extensions, one(t, events, "close"))
		})
	}
}

// acceptedConn returns the connection a handler of wsServe sent on conns
// once it had accepted it, and waits for the handler's result as
// waitResult does. When Accept failed, nothing is ever sent on conns:
// the test fails with the accept error (before, it waited on conns until
// the go test timeout).
func acceptedConn(t *testing.T, conns <-chan *websocket.Conn, result <-chan error) *websocket.Conn {
	t.Helper()
	select {
	case c := <-conns:
		waitResult(t, result)
		return c
	case err := <-result:
		// The handler sends on conns before it returns its result: if
		// it accepted, conns is ready now.
		select {
		case c := <-conns:
			if err != nil {
				t.Errorf("go side: %v", err)
			}
			return c
		default:
			t.Fatalf("our server accepted no connection: %v", err)
		}
	case <-time.After(wsTestTimeout):
		t.Fatal("our server accepted no connection")
	}
	return nil
}

// TestWSServerDeflate: our client with PerMessageDeflate against a ws echo
// server with perMessageDeflate; the 1 MiB messages go once through Write
// and once through Writer.
func TestWSServerDeflate(t *testing.T) {
	for _, tc := range deflateCases {
		t.Run(tc.name, func(t *testing.T) {
			p := startNode(t, "ws-server.mjs", nodeConfig{Echo: true, PerMessageDeflate: tc.ws})
			ctx, cancel := context.WithTimeout(context.Background(), wsTestTimeout)
			defer cancel()
			exts := websocket.MustExtensionSet(websocket.PerMessageDeflate(tc.ours))
			c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/", p.port(t)), &websocket.DialOptions{Extensions: exts})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			var want, got []message
			for i, m := range deflateMessages {
				want = append(want, m.msg)
				if i%2 == 0 {
					err = c.Write(ctx, m.msg.typ, m.msg.data)
				} else {
					err = writeStreamed(ctx, c, m.msg)
				}
				if err != nil {
					t.Fatal(err)
				}
				typ, data, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, message{typ, data})
			}
			if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
				t.Errorf("close: %v", err)
			}
			events := p.finish(t)
			checkMessages(t, "our client", got, want)
			checkNodeMessages(t, events, want)
			checkDeflate(t, tc, c, false, one(t, events, "connection").Extensions, one(t, events, "close"))
		})
	}
}
