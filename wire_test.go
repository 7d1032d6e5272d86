package wsrpc_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// rawClient drives a WebSocket by hand over TCP, to send what the runtime's
// client never would (split headers, bare close frames, broken frames) and
// to see exactly what the server puts on the wire.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

// dialRaw sends a handshake for path on addr with the given header lines
// (each ending in \r\n) after Host, and returns the client and the status
// line of the response, whose header it consumes.
func dialRaw(t *testing.T, addr, path, headers string) (*rawClient, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n"+headers+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return &rawClient{nc: nc, br: br}, strings.TrimSpace(status)
}

// wsHeaders is a valid handshake's header, but for Connection and
// Upgrade, offering the JSON codec.
const wsHeaders = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wsrpc.json\r\n"

// send writes one final frame, masked with a zero key (RFC 6455 §5.3) so
// the payload goes as is.
func (r *rawClient) send(opcode byte, payload []byte) error {
	b := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("rawClient: frame too long")
	}
	b = append(b, 0, 0, 0, 0)
	_, err := r.nc.Write(append(b, payload...))
	return err
}

// read reads one frame (short and 16-bit lengths) within d.
func (r *rawClient) read(d time.Duration) (opcode byte, payload []byte, err error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(r.br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	} else if n == 127 {
		return 0, nil, errors.New("rawClient: 64-bit length")
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// TestUpgradeHeaderLists: Connection and Upgrade are comma-separated token
// lists, case-insensitive, that may come on several lines (RFC 7230 §6.1,
// §6.7; RFC 6455 §4.2.1). Every form is a handshake that reaches the
// handler. Before, "Connection: keep-alive" and "Connection: Upgrade" on
// two lines were taken for a plain GET whose 426 the runtime was asked
// for, and it upgraded instead: 101, then nothing, on a socket nobody
// owned.
func TestUpgradeHeaderLists(t *testing.T) {
	addr := strings.TrimPrefix(serve(t), "http://")
	for _, hdr := range []string{
		"Connection: Upgrade\r\nUpgrade: websocket\r\n",
		"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n",
		"Connection: keep-alive\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n",
		"Connection: upgrade\r\nUpgrade: WebSocket\r\n",
		"Connection: Upgrade\r\nUpgrade: foo/1\r\nUpgrade: websocket\r\n",
	} {
		name := strings.TrimSuffix(strings.ReplaceAll(hdr, "\r\n", "; "), "; ")
		raw, status := dialRaw(t, addr, testingv1wsrpc.StreamServiceEchoPath, hdr+wsHeaders)
		if !strings.Contains(status, " 101 ") {
			t.Errorf("%s: %s, want 101", name, status)
			continue
		}
		if err := raw.send(0x1, []byte(`{"text":"hi"}`)); err != nil {
			t.Fatal(err)
		}
		op, payload, err := raw.read(2 * time.Second)
		if err != nil || op != 0x1 || !strings.Contains(string(payload), `"hi"`) {
			t.Errorf("%s: after 101, frame %d %q %v, want the echo", name, op, payload, err)
		}
	}
}

// TestPlainGETUpgradeRequired: a request that is not a handshake is
// answered 426 by the handler itself, with the Upgrade header RFC 7231
// §6.5.15 requires and the version RFC 6455 §4.4 asks for, and the
// connection is never upgraded.
func TestPlainGETUpgradeRequired(t *testing.T) {
	srv := serve(t)
	addr := strings.TrimPrefix(srv, "http://")
	for _, hdr := range []string{
		"",
		"Connection: keep-alive\r\nUpgrade: websocket\r\n" + wsHeaders,
		"Connection: Upgrade\r\n" + wsHeaders,
		"Connection: Upgrade\r\nUpgrade: websocketx\r\n" + wsHeaders,
	} {
		name := strings.TrimSuffix(strings.ReplaceAll(hdr, "\r\n", "; "), "; ")
		_, status := dialRaw(t, addr, testingv1wsrpc.StreamServiceEchoPath, hdr)
		if !strings.Contains(status, " 426 ") {
			t.Errorf("%q: %s, want 426", name, status)
		}
	}
	resp, err := http.Get(srv + testingv1wsrpc.StreamServiceEchoPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("plain GET: %d, Upgrade %q, Sec-WebSocket-Version %q; want 426, websocket, 13",
			resp.StatusCode, resp.Header.Get("Upgrade"), resp.Header.Get("Sec-WebSocket-Version"))
	}
}

// TestNoStatusCloseIsNormal: a close frame without a status code (1005,
// RFC 6455 §7.1.5) is what a browser's plain ws.close() sends: the
// handler's Receive reads it as io.EOF, and OnClose reports a clean end.
func TestNoStatusCloseIsNormal(t *testing.T) {
	got := make(chan error, 1)
	closed := make(chan wsrpc.CloseInfo, 1)
	h := wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure,
		func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			_, err := s.Receive()
			got <- err
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		},
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
	raw, status := dialRaw(t, strings.TrimPrefix(newServer(t, h), "http://"), "/", "Connection: Upgrade\r\nUpgrade: websocket\r\n"+wsHeaders)
	if !strings.Contains(status, " 101 ") {
		t.Fatalf("handshake: %s", status)
	}
	if err := raw.send(0x8, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Receive after a close without status: %v (code %v), want io.EOF", err, wsrpc.CodeOf(err))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the handler's Receive did not return")
	}
	select {
	case ci := <-closed:
		if ci.Err != nil || ci.Code != websocket.StatusNoStatusRcvd {
			t.Fatalf("OnClose: code %d, err %v; want 1005 and no error", ci.Code, ci.Err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no OnClose")
	}
}

// TestAbandonedUploadIsCanceled guards the promise that a client-streaming
// handler that reads to io.EOF and then commits never commits part of the
// input: a page that gives up on an upload closes the way browsers do by
// default, ws.close() (a close frame without a status code, 1005, RFC 6455
// §7.1.5) or ws.close(1000), before the end-of-stream marker (the empty
// text message). Receive must report canceled for that, not io.EOF, and
// OnClose the code that came with the same error; an upload finished with
// the marker still commits, even when the client closes right after it.
// Before, both closes read as io.EOF and the handler committed 2 of the
// parts.
func TestAbandonedUploadIsCanceled(t *testing.T) {
	type ended struct {
		err   error
		total int64
	}
	got := make(chan ended, 1)
	closed := make(chan wsrpc.CloseInfo, 1)
	h := wsrpc.NewClientStreamHandler(testingv1wsrpc.StreamServiceSumProcedure,
		func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
			res := &testingv1.SumResponse{}
			for {
				req, err := s.Receive()
				if err != nil {
					got <- ended{err, res.Total}
					if errors.Is(err, io.EOF) {
						return res, nil // the commit
					}
					return nil, err
				}
				res.Total += req.GetN()
				res.Count++
			}
		},
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
	url := "ws" + strings.TrimPrefix(newServer(t, h), "http")
	closeFrame := func(code websocket.StatusCode) []byte {
		if code == websocket.StatusNoStatusRcvd {
			return nil // 1005 is never sent: it is the absence of a code
		}
		return binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	for _, tc := range []struct {
		name      string
		marker    bool                 // send the end-of-stream marker first
		close     websocket.StatusCode // the client's close frame; 0 for none
		wantErr   wsrpc.Code           // 0: io.EOF, the upload committed
		wantClose websocket.StatusCode // OnClose's code; 0: not checked
	}{
		{"ws.close() before the marker", false, websocket.StatusNoStatusRcvd, wsrpc.CodeCanceled, websocket.StatusNoStatusRcvd},
		{"ws.close(1000) before the marker", false, websocket.StatusNormalClosure, wsrpc.CodeCanceled, websocket.StatusNormalClosure},
		{"marker, then ws.close(1000)", true, websocket.StatusNormalClosure, 0, 0},
		{"marker, then the response", true, 0, 0, websocket.StatusNormalClosure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"wsrpc.json"}, Raw: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			text := func(s string) websocket.Frame {
				return websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpText}, Payload: []byte(s)}
			}
			frames := []websocket.Frame{text(`{"n":5}`), text(`{"n":6}`)}
			if tc.marker {
				frames = append(frames, text(""))
			}
			if tc.close != 0 {
				frames = append(frames, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpClose}, Payload: closeFrame(tc.close)})
			}
			for _, f := range frames {
				if err := c.WriteFrame(ctx, f); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case e := <-got:
				if tc.wantErr == 0 {
					if !errors.Is(e.err, io.EOF) || e.total != 11 {
						t.Fatalf("Receive: %v (code %v) after a total of %d; want io.EOF after 11", e.err, wsrpc.CodeOf(e.err), e.total)
					}
				} else if errors.Is(e.err, io.EOF) || wsrpc.CodeOf(e.err) != tc.wantErr {
					t.Fatalf("Receive: %v (code %v); want %v: the upload was abandoned after 2 parts, and io.EOF commits them", e.err, wsrpc.CodeOf(e.err), tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's Receive did not return")
			}
			if tc.close == 0 {
				f, err := c.ReadFrame(ctx, nil)
				var res testingv1.SumResponse
				if err == nil {
					err = protojson.Unmarshal(f.Payload, &res)
				}
				if err != nil || f.Opcode != websocket.OpText || res.GetTotal() != 11 || res.GetCount() != 2 {
					t.Fatalf("response: %v %q, %v; want the committed sum", f.Opcode, f.Payload, err)
				}
				// The raw API does not answer the server's close: echo it,
				// or OnClose would wait out the close timeout.
				if f, err = c.ReadFrame(ctx, nil); err != nil || f.Opcode != websocket.OpClose {
					t.Fatalf("after the response: %v %q, %v; want the server's close", f.Opcode, f.Payload, err)
				}
				if err := c.WriteFrame(ctx, f); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case ci := <-closed:
				if tc.wantClose == 0 {
					break // the response may or may not have gone out before the close
				}
				if ci.Code != tc.wantClose {
					t.Fatalf("OnClose code %d, want %d", ci.Code, tc.wantClose)
				}
				if tc.wantErr == 0 {
					if ci.Err != nil {
						t.Fatalf("OnClose: code %d, err %v; want a clean end", ci.Code, ci.Err)
					}
				} else if wsrpc.CodeOf(ci.Err) != tc.wantErr {
					t.Fatalf("OnClose: code %d, err %v; want %v, as Receive said", ci.Code, ci.Err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no OnClose")
			}
		})
	}
}

// TestOnCloseMatchesRuntimeFailure: when the runtime fails a connection
// over what the client sent (RFC 6455 §7.1.7), its close frame carries
// 1009, 1002 or 1007, and OnClose must report that frame, not the code of
// the error the handler then returns (4008, 4014…). The error Receive
// returns has the Code the same close frame from the peer would give: a
// broken peer is not a lost connection to be retried (CodeUnavailable).
func TestOnCloseMatchesRuntimeFailure(t *testing.T) {
	cases := []struct {
		name    string
		opcode  byte
		payload []byte
		want    websocket.StatusCode
		code    wsrpc.Code
	}{
		{"message too big", 0x1, []byte(`{"text":"` + strings.Repeat("x", 200) + `"}`), websocket.StatusMessageTooBig, wsrpc.CodeResourceExhausted},
		{"reserved opcode", 0x3, nil, websocket.StatusProtocolError, wsrpc.CodeInternal},
		{"invalid UTF-8 text", 0x1, []byte("\"\xff\""), websocket.StatusInvalidFramePayload, wsrpc.CodeInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan wsrpc.CloseInfo, 1)
			received := make(chan error, 1)
			h := wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure,
				func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
					_, err := s.Receive()
					received <- err
					return err
				},
				wsrpc.WithAcceptOptions(&websocket.AcceptOptions{MaxMessageSize: 64}),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
			raw, status := dialRaw(t, strings.TrimPrefix(newServer(t, h), "http://"), "/", "Connection: Upgrade\r\nUpgrade: websocket\r\n"+wsHeaders)
			if !strings.Contains(status, " 101 ") {
				t.Fatalf("handshake: %s", status)
			}
			if err := raw.send(tc.opcode, tc.payload); err != nil {
				t.Fatal(err)
			}
			op, payload, err := raw.read(3 * time.Second)
			if err != nil || op != 0x8 || len(payload) < 2 {
				t.Fatalf("frame %d %q %v, want a close frame", op, payload, err)
			}
			code, reason := websocket.StatusCode(binary.BigEndian.Uint16(payload)), string(payload[2:])
			if code != tc.want {
				t.Fatalf("close frame %d %q, want %d", code, reason, tc.want)
			}
			select {
			case ci := <-closed:
				if ci.Code != code || ci.Reason != reason || ci.Err == nil {
					t.Fatalf("OnClose: %d %q (err %v); the wire said %d %q", ci.Code, ci.Reason, ci.Err, code, reason)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("no OnClose")
			}
			if err := <-received; wsrpc.CodeOf(err) != tc.code {
				t.Fatalf("Receive: %v (code %v), want code %v", err, wsrpc.CodeOf(err), tc.code)
			}
		})
	}
}
