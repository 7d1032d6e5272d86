package websocket_test

// The wire peer: a test-only WebSocket endpoint that speaks raw bytes over a
// net.Conn. It does the opening handshake by hand and reads and writes any
// frame (masked or not, any RSV bits, any opcode, any length encoding), so a
// test can play a misbehaving peer against our server (Accept) or against
// our client (Dial to a listener that answers the handshake by hand).

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// wireTimeout bounds every wait of a wire peer; no test waits longer.
const wireTimeout = 5 * time.Second

// Opcodes as raw bytes, so a test can send reserved ones too.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// wireFrame is a frame as it was (or will be) on the wire.
type wireFrame struct {
	fin     bool
	rsv     byte // in place: 0x40 RSV1, 0x20 RSV2, 0x10 RSV3
	op      byte
	masked  bool
	key     [4]byte
	lenCode byte  // the 7-bit length field (≤125, 126 or 127)
	length  int64 // payload length from the header
	payload []byte
}

// encodeHeader writes a frame header with the minimal length encoding.
func encodeHeader(fin bool, rsv, op byte, masked bool, key [4]byte, length int64) []byte {
	b0 := rsv | op&0x0F
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	h := []byte{b0, 0}
	switch {
	case length > 0xFFFF:
		h[1] = m | 127
		h = binary.BigEndian.AppendUint64(h, uint64(length))
	case length > 125:
		h[1] = m | 126
		h = binary.BigEndian.AppendUint16(h, uint16(length))
	default:
		h[1] = m | byte(length)
	}
	if masked {
		h = append(h, key[:]...)
	}
	return h
}

// encodeFrame encodes a whole frame, masking a copy of the payload.
func encodeFrame(fin bool, rsv, op byte, masked bool, key [4]byte, payload []byte) []byte {
	b := encodeHeader(fin, rsv, op, masked, key, int64(len(payload)))
	start := len(b)
	b = append(b, payload...)
	if masked {
		for i := range payload {
			b[start+i] ^= key[i&3]
		}
	}
	return b
}

type wirePeer struct {
	t      testing.TB
	nc     net.Conn
	br     *bufio.Reader
	client bool // the peer plays the client: its frames are masked
	keyN   uint32
	// The peer sent a close frame (frame, sendWrongMask): expectClose
	// does not answer the engine's.
	closeSent bool
}

func (p *wirePeer) nextKey() [4]byte {
	p.keyN++
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], 0x9e3779b9*p.keyN)
	return k
}

// writeRaw sends bytes as they are.
func (p *wirePeer) writeRaw(b []byte) {
	p.t.Helper()
	_ = p.nc.SetWriteDeadline(time.Now().Add(wireTimeout))
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("wire peer: write: %v", err)
	}
}

// frame sends one frame, masked as the peer's role requires.
func (p *wirePeer) frame(fin bool, rsv, op byte, payload []byte) {
	p.t.Helper()
	p.closeSent = p.closeSent || op == opClose
	p.writeRaw(encodeFrame(fin, rsv, op, p.client, p.nextKey(), payload))
}

// send sends one unfragmented frame.
func (p *wirePeer) send(op byte, payload []byte) {
	p.t.Helper()
	p.frame(true, 0, op, payload)
}

// sendWrongMask sends a frame masked the wrong way for the peer's role.
func (p *wirePeer) sendWrongMask(op byte, payload []byte) {
	p.t.Helper()
	p.closeSent = p.closeSent || op == opClose
	p.writeRaw(encodeFrame(true, 0, op, !p.client, p.nextKey(), payload))
}

// sendClose sends a close frame with code and reason (code < 0: empty).
func (p *wirePeer) sendClose(code int, reason string) {
	p.t.Helper()
	p.send(opClose, closePayload(code, reason))
}

func closePayload(code int, reason string) []byte {
	if code < 0 {
		return nil
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// read reads the next frame, unmasking its payload.
func (p *wirePeer) read() (wireFrame, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(wireTimeout))
	var f wireFrame
	var h [2]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		return f, err
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = h[0] & 0x70
	f.op = h[0] & 0x0F
	f.masked = h[1]&0x80 != 0
	f.lenCode = h[1] & 0x7F
	switch f.lenCode {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(p.br, b[:]); err != nil {
			return f, err
		}
		f.length = int64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(p.br, b[:]); err != nil {
			return f, err
		}
		f.length = int64(binary.BigEndian.Uint64(b[:]))
	default:
		f.length = int64(f.lenCode)
	}
	if f.masked {
		if _, err := io.ReadFull(p.br, f.key[:]); err != nil {
			return f, err
		}
	}
	if f.length < 0 || f.length > 64<<20 {
		return f, fmt.Errorf("wire peer: frame length %d", f.length)
	}
	f.payload = make([]byte, f.length)
	if _, err := io.ReadFull(p.br, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= f.key[i&3]
		}
	}
	return f, nil
}

// mustRead reads the next frame and checks the masking rule for its sender.
func (p *wirePeer) mustRead() wireFrame {
	p.t.Helper()
	f, err := p.read()
	if err != nil {
		p.t.Fatalf("wire peer: read: %v", err)
	}
	if f.masked == p.client {
		p.t.Fatalf("wire peer: frame from the engine has masked=%v (engine is client: %v)", f.masked, !p.client)
	}
	return f
}

// expect reads the next frame and checks its opcode, FIN and payload.
func (p *wirePeer) expect(op byte, payload []byte) wireFrame {
	p.t.Helper()
	f := p.mustRead()
	if f.op != op || !f.fin || f.rsv != 0 || string(f.payload) != string(payload) {
		p.t.Fatalf("wire peer: got frame op=%#x fin=%v rsv=%#x payload %q; want op=%#x fin payload %q",
			f.op, f.fin, f.rsv, trunc(f.payload), op, trunc(payload))
	}
	return f
}

// expectMessage reads one data message, fragmented or not, skipping nothing.
func (p *wirePeer) expectMessage(op byte, payload []byte) {
	p.t.Helper()
	f := p.mustRead()
	if f.op != op {
		p.t.Fatalf("wire peer: got op=%#x (payload %q), want %#x", f.op, trunc(f.payload), op)
	}
	got := f.payload
	for !f.fin {
		f = p.mustRead()
		if f.op != opCont {
			p.t.Fatalf("wire peer: got op=%#x inside a fragmented message", f.op)
		}
		got = append(got, f.payload...)
	}
	if string(got) != string(payload) {
		p.t.Fatalf("wire peer: got message %q, want %q", trunc(got), trunc(payload))
	}
}

// expectClose reads the next frame, which must be a close frame with code
// (-1: empty payload), answers a failure's close frame as a client, and
// then checks that the engine closed TCP.
func (p *wirePeer) expectClose(code int) wireFrame {
	p.t.Helper()
	f := p.expectCloseFrame(code)
	if p.client && !p.closeSent && (code == 1002 || code == 1007 || code == 1009) {
		// The engine failed the connection on our input and drains it
		// until our close frame (lingerClose): playing the client, the
		// peer answers (§5.5.1) and waits for the server to close TCP
		// (§7.1.1). Other close frames it leaves unanswered, as tests of
		// the engine's own bounds want (TestCloseBoundedWait). Best
		// effort: the engine may be gone already.
		_ = p.nc.SetWriteDeadline(time.Now().Add(wireTimeout))
		_, _ = p.nc.Write(encodeFrame(true, 0, opClose, true, p.nextKey(), f.payload[:min(len(f.payload), 2)]))
		p.closeSent = true
	}
	if !p.client {
		// Playing the server, the peer closes TCP first (§7.1.1): a FIN,
		// which our client waits for before it closes its side.
		if tc, ok := p.nc.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	p.expectEOF()
	return f
}

// expectCloseFrame reads the next frame, which must be a close frame with
// code (-1: empty payload), and nothing more: the peer neither answers nor
// closes.
func (p *wirePeer) expectCloseFrame(code int) wireFrame {
	p.t.Helper()
	f := p.mustRead()
	if f.op != opClose {
		p.t.Fatalf("wire peer: got op=%#x payload %q, want a close frame with %d", f.op, trunc(f.payload), code)
	}
	got := -1
	if len(f.payload) >= 2 {
		got = int(binary.BigEndian.Uint16(f.payload))
	}
	if got != code || len(f.payload) == 1 {
		p.t.Fatalf("wire peer: close payload %q (code %d), want code %d", f.payload, got, code)
	}
	return f
}

// expectEOF checks that the engine closed the TCP connection, within
// wireTimeout, without sending anything more.
func (p *wirePeer) expectEOF() {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(wireTimeout))
	var b [1]byte
	n, err := p.br.Read(b[:])
	if n > 0 {
		p.t.Fatalf("wire peer: byte %#x after the close frame, want EOF", b[0])
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		p.t.Fatalf("wire peer: after the close frame: %v, want EOF (TCP closed by the engine)", err)
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s…(%d bytes)", b[:40], len(b))
	}
	return string(b)
}

// wsAccept is Sec-WebSocket-Accept for key, computed here independently.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3

// role is which side of the connection our engine plays.
type role int

const (
	roleServer role = iota // engine Accepts, the wire peer is a client
	roleClient             // engine Dials, the wire peer is a server
)

func (r role) String() string {
	if r == roleServer {
		return "server"
	}
	return "client"
}

var roles = []role{roleServer, roleClient}

// engOpts are the options both roles share.
type engOpts struct {
	MaxMessageSize int64
	MaxFrameSize   int64
	PingInterval   time.Duration
	PongTimeout    time.Duration
	CloseTimeout   time.Duration
	Raw            bool
}

func (o engOpts) accept() *websocket.AcceptOptions {
	return &websocket.AcceptOptions{MaxMessageSize: o.MaxMessageSize, MaxFrameSize: o.MaxFrameSize,
		PingInterval: o.PingInterval, PongTimeout: o.PongTimeout, CloseTimeout: o.closeTimeout(), Raw: o.Raw}
}

func (o engOpts) dial() *websocket.DialOptions {
	return &websocket.DialOptions{MaxMessageSize: o.MaxMessageSize, MaxFrameSize: o.MaxFrameSize,
		PingInterval: o.PingInterval, PongTimeout: o.PongTimeout, CloseTimeout: o.closeTimeout(), Raw: o.Raw}
}

func (o engOpts) closeTimeout() time.Duration {
	if o.CloseTimeout == 0 {
		return 2 * time.Second
	}
	return o.CloseTimeout
}

// session is an engine connection under test and the wire peer facing it.
type session struct {
	*wirePeer
	conn *websocket.Conn
	done chan error // what run returned
}

// result waits for run to return and gives its error.
func (s *session) result() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(wireTimeout):
		s.t.Fatal("engine did not return")
		return nil
	}
}

// start connects an engine in role r, with a wire peer on the other side,
// and runs run on the engine's connection in its own goroutine.
func start(t testing.TB, r role, o engOpts, run func(c *websocket.Conn) error) *session {
	t.Helper()
	if r == roleServer {
		return startServer(t, o.accept(), run)
	}
	return startClient(t, o.dial(), run)
}

// startServer runs Accept behind an httptest server and connects a wire
// peer that does the client handshake by hand.
func startServer(t testing.TB, opts *websocket.AcceptOptions, run func(c *websocket.Conn) error) *session {
	t.Helper()
	s, _ := startServerWith(t, opts, "", run)
	return s
}

// startServerWith is startServer with extra request header lines (each
// ending in CRLF) in the wire peer's handshake; it also returns the
// server's 101 response.
func startServerWith(t testing.TB, opts *websocket.AcceptOptions, extraHeaders string, run func(c *websocket.Conn) error) (*session, *http.Response) {
	t.Helper()
	s := &session{done: make(chan error, 1)}
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			s.done <- err
			return
		}
		conns <- c
		err = run(c)
		c.CloseNow()
		s.done <- err
	}))
	t.Cleanup(srv.Close)
	p, resp := dialWirePeer(t, srv.Listener.Addr().String(), extraHeaders)
	s.wirePeer = p
	select {
	case s.conn = <-conns:
	case err := <-s.done:
		select {
		case s.conn = <-conns:
			// Accept succeeded and run has already returned: keep its
			// result for result().
			s.done <- err
		default:
			t.Fatalf("Accept: %v", err)
		}
	}
	return s, resp
}

// dialWirePeer connects a wire peer playing the client to addr and does
// the opening handshake by hand, with extra request header lines (each
// ending in CRLF); it returns the server's 101 response.
func dialWirePeer(t testing.TB, addr, extraHeaders string) (*wirePeer, *http.Response) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return handshakeWirePeer(t, nc, addr, extraHeaders)
}

// handshakeWirePeer is dialWirePeer on a connection made already (a TLS
// one, say).
func handshakeWirePeer(t testing.TB, nc net.Conn, addr, extraHeaders string) (*wirePeer, *http.Response) {
	t.Helper()
	p := &wirePeer{t: t, nc: nc, br: bufio.NewReader(nc), client: true}
	p.writeRaw([]byte("GET /ws HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + testKey +
		"\r\nSec-WebSocket-Version: 13\r\n" + extraHeaders + "\r\n"))
	_ = nc.SetReadDeadline(time.Now().Add(wireTimeout))
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(testKey) {
		t.Fatalf("handshake: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return p, resp
}

// fakeServer listens on 127.0.0.1 and answers one handshake by hand with
// respond, which gets the request and writes the response.
func fakeServer(t testing.TB, respond func(w io.Writer, req *http.Request)) (url string, peer <-chan *wirePeer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *wirePeer, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		t.Cleanup(func() { nc.Close() })
		br := bufio.NewReader(nc)
		_ = nc.SetReadDeadline(time.Now().Add(wireTimeout))
		req, err := http.ReadRequest(br)
		if err != nil {
			nc.Close()
			close(ch)
			return
		}
		respond(nc, req)
		ch <- &wirePeer{t: t, nc: nc, br: br}
	}()
	return "ws://" + ln.Addr().String() + "/ws", ch
}

// acceptHandshake is the normal answer to a client handshake.
func acceptHandshake(w io.Writer, req *http.Request) {
	fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		wsAccept(req.Header.Get("Sec-WebSocket-Key")))
}

// startClient dials our client to a fake server whose wire peer answers
// the handshake by hand.
func startClient(t testing.TB, opts *websocket.DialOptions, run func(c *websocket.Conn) error) *session {
	t.Helper()
	url, peers := fakeServer(t, acceptHandshake)
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	p := <-peers
	if p == nil {
		t.Fatal("fake server: no connection")
	}
	p.t = t
	s := &session{wirePeer: p, conn: c, done: make(chan error, 1)}
	go func() {
		err := run(c)
		c.CloseNow()
		s.done <- err
	}()
	return s
}

// echo reads messages and writes them back until reading fails.
func echo(c *websocket.Conn) error {
	ctx := context.Background()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return err
		}
	}
}

// forRoles runs f as a subtest for each role.
func forRoles(t *testing.T, f func(t *testing.T, r role)) {
	for _, r := range roles {
		t.Run(r.String(), func(t *testing.T) {
			t.Parallel()
			f(t, r)
		})
	}
}

// wantErr checks that the engine's error wraps sentinel.
func wantErr(t testing.TB, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("engine error %v, want one wrapping %v", err, sentinel)
	}
}

// failCode maps the close code of a local failure to its sentinel.
func failSentinel(code int) error {
	switch code {
	case 1002:
		return websocket.ErrProtocol
	case 1007:
		return websocket.ErrInvalidUTF8
	case 1009:
		return websocket.ErrMessageTooBig
	}
	panic(fmt.Sprintf("no sentinel for %d", code))
}

// hostOf strips the scheme from an httptest URL.
func hostOf(u string) string { return u[strings.Index(u, "://")+3:] }
