package websocket_test

// Conformance suite in the spirit of the Autobahn|Testsuite categories. Each
// case plays a wire peer against our engine in both roles (server: Accept;
// client: Dial) and checks what the engine answers on the wire: the exact
// close code for a failure, then the TCP connection closed.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// violation is a misbehaving peer: what it sends, and the close code our
// engine must fail the connection with.
type violation struct {
	name string
	send func(p *wirePeer)
	code int
	opts engOpts
}

// quickLinger gives o a short close timeout unless it sets one. A peer
// that claims a payload and never sends it (a header alone) holds the
// engine's drain of its input (lingerClose) for the whole close timeout:
// the engine waits for the rest of that frame and the peer's close frame
// behind it, and such a test would wait 2 s for nothing.
func quickLinger(o engOpts) engOpts {
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 200 * time.Millisecond
	}
	return o
}

func runViolations(t *testing.T, cases []violation) {
	t.Helper()
	for _, r := range roles {
		for _, v := range cases {
			t.Run(r.String()+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				s := start(t, r, quickLinger(v.opts), echo)
				v.send(s.wirePeer)
				s.expectClose(v.code)
				wantErr(t, s.result(), failSentinel(v.code))
			})
		}
	}
}

// --- 1. Framing -----------------------------------------------------------

func TestFramingLengths(t *testing.T) {
	sizes := []int{0, 1, 124, 125, 126, 127, 1000, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20}
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		for _, op := range []byte{opText, opBinary} {
			for _, n := range sizes {
				msg := bytes.Repeat([]byte("*"), n)
				if n > 0 {
					msg[n-1] = 'z'
				}
				s.send(op, msg)
				f := s.mustRead()
				want := byte(n)
				switch {
				case n > 65535:
					want = 127
				case n > 125:
					want = 126
				}
				if f.op != op || !f.fin || f.length != int64(n) || !bytes.Equal(f.payload, msg) {
					t.Fatalf("op %#x n=%d: echo op=%#x fin=%v len=%d", op, n, f.op, f.fin, f.length)
				}
				// §5.2: the minimal length encoding.
				if f.lenCode != want {
					t.Fatalf("n=%d: length field %d, want %d", n, f.lenCode, want)
				}
			}
		}
		s.sendClose(1000, "")
		s.expectClose(1000)
	})
}

// A 64-bit length with the most significant bit set is invalid (§5.2).
func TestFramingLengthHighBit(t *testing.T) {
	runViolations(t, []violation{{
		name: "64-bit length MSB",
		send: func(p *wirePeer) {
			h := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}
			if p.client {
				h[1] |= 0x80
				h = append(h, 1, 2, 3, 4)
			}
			p.writeRaw(h)
		},
		code: 1002,
	}})
}

// A length not in its shortest form is invalid (§5.2: "the minimal number
// of bytes MUST be used to encode the length"); it was accepted.
func TestFramingLengthNotMinimal(t *testing.T) {
	// nonMinimal sends a binary frame of n bytes with the length in the
	// 16-bit (126) or 64-bit (127) form.
	nonMinimal := func(form byte, n int) func(p *wirePeer) {
		return func(p *wirePeer) {
			h := []byte{0x82, form}
			if form == 126 {
				h = binary.BigEndian.AppendUint16(h, uint16(n))
			} else {
				h = binary.BigEndian.AppendUint64(h, uint64(n))
			}
			payload := make([]byte, n)
			if p.client {
				h[1] |= 0x80
				h = append(h, 0, 0, 0, 0) // a zero key leaves the payload as is
			}
			p.writeRaw(append(h, payload...))
		}
	}
	runViolations(t, []violation{
		{name: "16-bit length 5", send: nonMinimal(126, 5), code: 1002},
		{name: "16-bit length 0", send: nonMinimal(126, 0), code: 1002},
		{name: "16-bit length 125", send: nonMinimal(126, 125), code: 1002},
		{name: "64-bit length 5", send: nonMinimal(127, 5), code: 1002},
		{name: "64-bit length 126", send: nonMinimal(127, 126), code: 1002},
		{name: "64-bit length 65535", send: nonMinimal(127, 65535), code: 1002},
	})
}

// --- 2. Masking -------------------------------------------------------------

func TestMaskingDirection(t *testing.T) {
	runViolations(t, []violation{
		{name: "text", send: func(p *wirePeer) { p.sendWrongMask(opText, []byte("hello")) }, code: 1002},
		{name: "empty binary", send: func(p *wirePeer) { p.sendWrongMask(opBinary, nil) }, code: 1002},
		{name: "ping", send: func(p *wirePeer) { p.sendWrongMask(opPing, []byte("p")) }, code: 1002},
		{name: "close", send: func(p *wirePeer) { p.sendWrongMask(opClose, closePayload(1000, "")) }, code: 1002},
	})
}

// Our client masks every frame with a fresh key (§5.3), verified on the wire.
func TestClientMasksEveryFrameWithFreshKey(t *testing.T) {
	const n = 40
	s := start(t, roleClient, engOpts{}, func(c *websocket.Conn) error {
		ctx := context.Background()
		for i := 0; i < n; i++ {
			if err := c.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte{byte(i)}, 1+i*97)); err != nil {
				return err
			}
		}
		_, _, err := c.Read(ctx)
		return err
	})
	seen := map[[4]byte]bool{}
	for i := 0; i < n; i++ {
		f := s.mustRead() // checks masked
		if !f.masked {
			t.Fatal("client frame not masked")
		}
		if seen[f.key] {
			t.Fatalf("frame %d reuses masking key %x", i, f.key)
		}
		seen[f.key] = true
		if !bytes.Equal(f.payload, bytes.Repeat([]byte{byte(i)}, 1+i*97)) {
			t.Fatalf("frame %d: payload does not unmask to the message", i)
		}
	}
	s.sendClose(1000, "")
	s.expectClose(1000)
	if got := websocket.CloseStatus(s.result()); got != 1000 {
		t.Fatalf("CloseStatus = %d", got)
	}
}

// --- 3. Ping and pong ------------------------------------------------------

func TestPingAnswered(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		for _, n := range []int{0, 1, 8, 124, 125} {
			p := bytes.Repeat([]byte{0xFE}, n) // binary payload, not UTF-8
			s.send(opPing, p)
			s.expect(opPong, p)
		}
		// §5.5.3: an unsolicited pong is ignored.
		s.send(opPong, []byte("unsolicited"))
		s.send(opPong, nil)
		s.send(opText, []byte("after pongs"))
		s.expect(opText, []byte("after pongs"))
		// A ping between the fragments of a message is answered at once.
		s.frame(false, 0, opText, []byte("frag"))
		s.send(opPing, []byte("between"))
		s.expect(opPong, []byte("between"))
		s.frame(true, 0, opCont, []byte("mented"))
		s.expect(opText, []byte("fragmented"))
		// A burst of pings gets a pong each, in order.
		for i := 0; i < 10; i++ {
			s.send(opPing, []byte{byte(i)})
		}
		for i := 0; i < 10; i++ {
			s.expect(opPong, []byte{byte(i)})
		}
		s.sendClose(1000, "")
		s.expectClose(1000)
	})
}

func TestPingViolations(t *testing.T) {
	runViolations(t, []violation{
		{name: "ping 126 bytes", send: func(p *wirePeer) { p.send(opPing, make([]byte, 126)) }, code: 1002},
		{name: "pong 126 bytes", send: func(p *wirePeer) { p.send(opPong, make([]byte, 126)) }, code: 1002},
		{name: "close 126 bytes", send: func(p *wirePeer) { p.send(opClose, closePayload(1000, strings.Repeat("r", 124))) }, code: 1002},
		{name: "ping 64-bit length", send: func(p *wirePeer) { p.writeRaw(encodeHeader(true, 0, opPing, p.client, [4]byte{}, 70000)) }, code: 1002},
	})
}

// Ping(ctx) returns once the pong came back, and only then.
func TestPingWaitsForPong(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		done := make(chan error, 1)
		go func() { done <- s.conn.Ping(context.Background()) }()
		f := s.mustRead()
		if f.op != opPing {
			t.Fatalf("got op %#x, want ping", f.op)
		}
		select {
		case err := <-done:
			t.Fatalf("Ping returned %v before its pong was sent", err)
		default:
		}
		s.send(opPong, []byte("not this one"))
		s.send(opPong, f.payload)
		if err := <-done; err != nil {
			t.Fatalf("Ping: %v", err)
		}

		// Unanswered: Ping gives up with ctx and the connection stays open.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		go func() { done <- s.conn.Ping(ctx) }()
		if f := s.mustRead(); f.op != opPing {
			t.Fatalf("got op %#x, want ping", f.op)
		}
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unanswered Ping: %v, want DeadlineExceeded", err)
		}
		s.send(opText, []byte("still open"))
		s.expect(opText, []byte("still open"))
		s.sendClose(1000, "")
		s.expectClose(1000)
	})
}

// answerPings answers three keepalive pings, then checks the connection
// still echoes (answering the pings that come meanwhile): the peer is
// alive and is kept.
func answerPings(t *testing.T, s *session) {
	t.Helper()
	for i := 0; i < 3; i++ {
		f := s.mustRead()
		if f.op != opPing {
			t.Fatalf("got op %#x %q, want a keepalive ping", f.op, f.payload)
		}
		s.send(opPong, f.payload)
	}
	s.send(opText, []byte("alive"))
	for {
		f := s.mustRead()
		if f.op == opPing {
			s.send(opPong, f.payload)
			continue
		}
		if f.op != opText || string(f.payload) != "alive" {
			t.Fatalf("got op %#x %q, want the echo", f.op, f.payload)
		}
		return
	}
}

// PingInterval with PongTimeout: a silent peer's connection is closed
// with ErrPongTimeout and no close frame (the path that lost the pong
// would not carry one; see keepalive); a peer that answers is kept.
func TestKeepalive(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		o := engOpts{PingInterval: 20 * time.Millisecond, PongTimeout: 60 * time.Millisecond}
		s := start(t, r, o, echo)
		answerPings(t, s)
		// Now go silent: the next ping goes unanswered.
		for {
			f, err := s.read()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("after the pings: %v, want the connection closed", err)
				}
				break
			}
			if f.op != opPing {
				t.Fatalf("got op %#x %q, want pings, then the connection closed without a close frame", f.op, f.payload)
			}
		}
		wantErr(t, s.result(), websocket.ErrPongTimeout)
	})
}

// TestKeepaliveAnsweredByLaterPing guards keepalive against a live peer
// that answers only the most recent of several pings, as RFC 6455 §5.5.3
// allows: an application Ping sent right after the keepalive ping, and
// only its pong. The keepalive ping once kept waiting for its own pong and
// failed the connection with 1011 (ErrPongTimeout).
func TestKeepaliveAnsweredByLaterPing(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		o := engOpts{PingInterval: 100 * time.Millisecond, PongTimeout: time.Second}
		s := start(t, r, o, func(c *websocket.Conn) error {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return err
				}
			}
		})
		if f := s.mustRead(); f.op != opPing {
			t.Fatalf("got op %#x, want a keepalive ping", f.op)
		}
		pingDone := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			pingDone <- s.conn.Ping(ctx)
		}()
		user := s.mustRead()
		if user.op != opPing {
			t.Fatalf("got op %#x, want the application's ping", user.op)
		}
		s.send(opPong, user.payload) // the most recent ping's pong only
		if err := <-pingDone; err != nil {
			t.Fatalf("Ping: %v", err)
		}
		// Answer every ping at once for longer than PongTimeout: the
		// connection must stay open (keepalive pings keep coming meanwhile).
		for deadline := time.Now().Add(o.PongTimeout + 500*time.Millisecond); time.Now().Before(deadline); {
			switch f := s.mustRead(); f.op {
			case opPing:
				s.send(opPong, f.payload)
			case opClose:
				t.Fatalf("live peer failed with close %q", f.payload)
			default:
				t.Fatalf("got op %#x", f.op)
			}
		}
		s.sendClose(1000, "")
		for f := s.mustRead(); f.op != opClose; f = s.mustRead() {
		}
	})
}

// TestKeepaliveNegativePongTimeout guards that a negative PongTimeout
// means DefaultPongTimeout, as 0 does. It once armed the keepalive timer
// with the negative duration, which fires at once: every keepalive ping
// failed the connection with 1011 (ErrPongTimeout) before its pong could
// arrive, however fast the peer answered.
func TestKeepaliveNegativePongTimeout(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		o := engOpts{PingInterval: 20 * time.Millisecond, PongTimeout: -time.Second}
		s := start(t, r, o, echo)
		answerPings(t, s)
		s.sendClose(1000, "")
		for f := s.mustRead(); f.op != opClose; f = s.mustRead() {
		}
	})
}

// --- 4. Reserved bits and opcodes ------------------------------------------

func TestReservedBits(t *testing.T) {
	var cases []violation
	for _, rsv := range []byte{0x40, 0x20, 0x10, 0x60, 0x50, 0x30, 0x70} {
		for _, op := range []byte{opText, opBinary, opPing, opClose} {
			cases = append(cases, violation{
				name: fmt.Sprintf("rsv%#x-op%#x", rsv, op),
				send: func(p *wirePeer) { p.frame(true, rsv, op, closePayload(1000, "")) },
				code: 1002,
			})
		}
	}
	// On a continuation frame, and after a valid message.
	cases = append(cases, violation{name: "rsv on continuation", send: func(p *wirePeer) {
		p.frame(false, 0, opText, []byte("a"))
		p.frame(true, 0x40, opCont, []byte("b"))
	}, code: 1002})
	runViolations(t, cases)
}

func TestReservedOpcodes(t *testing.T) {
	var cases []violation
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, violation{
			name: fmt.Sprintf("op%#x", op),
			send: func(p *wirePeer) { p.send(op, []byte("payload")) },
			code: 1002,
		}, violation{
			name: fmt.Sprintf("op%#x-inside-message", op),
			send: func(p *wirePeer) {
				p.frame(false, 0, opText, []byte("a"))
				p.frame(true, 0, op, nil)
			},
			code: 1002,
		})
	}
	runViolations(t, cases)
}

// --- 5. Fragmentation -------------------------------------------------------

func TestFragmentationReassembled(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		cases := []struct {
			op    byte
			parts []string
		}{
			{opText, []string{"one", "-two", "-three"}},
			{opBinary, []string{"\x00\xff", "\x80", "\x01"}},
			{opText, []string{"", "", "x"}},
			{opText, []string{"x", "", ""}},
			{opText, []string{"", ""}},
			{opBinary, []string{strings.Repeat("a", 70000), strings.Repeat("b", 130), "c"}},
		}
		for _, c := range cases {
			for i, part := range c.parts {
				op := opCont
				if i == 0 {
					op = c.op
				}
				s.frame(i == len(c.parts)-1, 0, op, []byte(part))
				if i == 0 {
					// Control frames between fragments are handled.
					s.send(opPong, []byte("x"))
					s.send(opPing, []byte("y"))
					s.expect(opPong, []byte("y"))
				}
			}
			s.expectMessage(c.op, []byte(strings.Join(c.parts, "")))
		}
		s.sendClose(1000, "")
		s.expectClose(1000)
	})
}

func TestFragmentationViolations(t *testing.T) {
	runViolations(t, []violation{
		{name: "continuation without start", send: func(p *wirePeer) { p.send(opCont, []byte("x")) }, code: 1002},
		{name: "non-final continuation without start", send: func(p *wirePeer) { p.frame(false, 0, opCont, []byte("x")) }, code: 1002},
		{name: "continuation after a whole message", send: func(p *wirePeer) {
			p.send(opText, []byte("whole"))
			if f := p.mustRead(); f.op != opText {
				p.t.Fatalf("got op %#x", f.op)
			}
			p.send(opCont, []byte("x"))
		}, code: 1002},
		{name: "text inside text", send: func(p *wirePeer) {
			p.frame(false, 0, opText, []byte("a"))
			p.send(opText, []byte("b"))
		}, code: 1002},
		{name: "binary inside text", send: func(p *wirePeer) {
			p.frame(false, 0, opText, []byte("a"))
			p.frame(false, 0, opBinary, []byte("b"))
		}, code: 1002},
		{name: "text inside binary after continuation", send: func(p *wirePeer) {
			p.frame(false, 0, opBinary, []byte("a"))
			p.frame(false, 0, opCont, []byte("b"))
			p.send(opText, []byte("c"))
		}, code: 1002},
		{name: "fragmented ping", send: func(p *wirePeer) {
			p.frame(false, 0, opPing, []byte("a"))
			p.frame(true, 0, opCont, []byte("b"))
		}, code: 1002},
		{name: "fragmented pong", send: func(p *wirePeer) { p.frame(false, 0, opPong, []byte("a")) }, code: 1002},
		{name: "fragmented close", send: func(p *wirePeer) { p.frame(false, 0, opClose, closePayload(1000, "")) }, code: 1002},
	})
}

// The streaming Writer sends fragments as it fills; the Reader hands out a
// fragment before the next one has even been sent.
func TestFragmentationStreaming(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		msg := make([]byte, 200000)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		fragRead := make(chan string, 1)
		s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
			ctx := context.Background()
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return err
			}
			for p := msg; len(p) > 0; {
				k := min(len(p), 9999)
				if _, err := w.Write(p[:k]); err != nil {
					return err
				}
				p = p[k:]
			}
			if err := w.Close(); err != nil {
				return err
			}
			typ, rd, err := c.Reader(ctx)
			if err != nil {
				return err
			}
			if typ != websocket.MessageText {
				return fmt.Errorf("Reader type %v", typ)
			}
			first := make([]byte, 5)
			if _, err := io.ReadFull(rd, first); err != nil {
				return err
			}
			fragRead <- string(first)
			rest, err := io.ReadAll(rd)
			if err != nil {
				return err
			}
			if string(first)+string(rest) != "hello, world" {
				return fmt.Errorf("Reader got %q", string(first)+string(rest))
			}
			_, _, err = c.Read(ctx)
			return err
		})
		var frames int
		var got []byte
		for {
			f := s.mustRead()
			want := opCont
			if frames == 0 {
				want = opBinary
			}
			if f.op != want {
				t.Fatalf("fragment %d: op %#x, want %#x", frames, f.op, want)
			}
			frames++
			got = append(got, f.payload...)
			if f.fin {
				break
			}
		}
		if frames < 2 || !bytes.Equal(got, msg) {
			t.Fatalf("Writer: %d frames, %d bytes (equal %v); want ≥2 fragments of the message", frames, len(got), bytes.Equal(got, msg))
		}
		s.frame(false, 0, opText, []byte("hello"))
		select {
		case first := <-fragRead:
			if first != "hello" {
				t.Fatalf("first fragment read as %q", first)
			}
		case <-time.After(wireTimeout):
			t.Fatal("Reader did not hand out the first fragment before the second was sent")
		}
		s.frame(true, 0, opCont, []byte(", world"))
		s.sendClose(1000, "")
		s.expectClose(1000)
		if err := s.result(); websocket.CloseStatus(err) != 1000 {
			t.Fatalf("engine: %v", err)
		}
	})
}

// TestWriterUnusableAfterClose guards the handle Writer returns: once it
// is closed, its Write fails and its Close does nothing, whatever message
// is being written by then. Every Writer used to be the connection's one
// shared message writer, so a Write through a kept handle landed in the
// next Writer's message, and a second Close (a deferred one after an
// explicit one) ended that message early and released the message lock
// its writer still needed, letting another message in between its
// fragments (RFC 6455 §5.4).
func TestWriterUnusableAfterClose(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		for _, typ := range []websocket.MessageType{websocket.MessageBinary, websocket.MessageText} {
			t.Run(typ.String(), func(t *testing.T) {
				s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
					ctx := context.Background()
					var errs []error
					check := func(what string, err error, wantErr bool) {
						if (err != nil) != wantErr {
							errs = append(errs, fmt.Errorf("%s: %v (want an error: %v)", what, err, wantErr))
						}
					}
					w1, err := c.Writer(ctx, typ)
					if err != nil {
						return err
					}
					_, err = w1.Write([]byte("first"))
					check("Write", err, false)
					check("Close", w1.Close(), false)
					check("second Close", w1.Close(), false)
					_, err = w1.Write([]byte("STALE"))
					check("Write after Close", err, true)
					if err != nil && !errors.Is(err, websocket.ErrWriterClosed) {
						errs = append(errs, fmt.Errorf("Write after Close: %v, want ErrWriterClosed", err))
					}

					w2, err := c.Writer(ctx, typ)
					if err != nil {
						return err
					}
					_, err = w2.Write([]byte("second-"))
					check("next Writer's Write", err, false)
					_, err = w1.Write([]byte("STALE"))
					check("closed Writer's Write during the next message", err, true)
					check("closed Writer's Close during the next message", w1.Close(), false)
					// w2 still holds the message lock: a Write waits for it
					// and gives up when its ctx ends, nothing sent.
					wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
					err = c.Write(wctx, typ, []byte("interloper"))
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						errs = append(errs, fmt.Errorf("Write while the next Writer is open: %v, want it to wait until its ctx ends", err))
					}
					_, err = w2.Write([]byte("part2"))
					check("next Writer's Write after the stale Close", err, false)
					check("next Writer's Close", w2.Close(), false)
					check("Write after it", c.Write(ctx, typ, []byte("after")), false)
					if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 1000 {
						errs = append(errs, fmt.Errorf("read: %v", err))
					}
					return errors.Join(errs...)
				})
				op := byte(typ)
				s.expectMessage(op, []byte("first"))
				s.expectMessage(op, []byte("second-part2"))
				s.expectMessage(op, []byte("after"))
				s.sendClose(1000, "")
				s.expectClose(1000)
				if err := s.result(); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// --- 6. UTF-8 ---------------------------------------------------------------

var validUTF8 = []string{
	"",
	"Hello-µ@ßöäüàá-UTF-8!!",
	"κόσμε",
	"\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\ufffd", "\uffff",
	"\U00010000", "\U0010ffff",
	"\x00\x7f",
	"a😀b€c",
}

var invalidUTF8 = []struct{ name, s string }{
	{"overlong NUL 2", "\xc0\x80"},
	{"overlong 2 C1", "\xc1\xbf"},
	{"overlong 3", "\xe0\x80\xaf"},
	{"overlong 3 max", "\xe0\x9f\xbf"},
	{"overlong 4", "\xf0\x80\x80\xaf"},
	{"overlong 4 max", "\xf0\x8f\xbf\xbf"},
	{"surrogate D800", "\xed\xa0\x80"},
	{"surrogate DBFF DC00", "\xed\xaf\xbf\xed\xb0\x80"},
	{"surrogate DFFF", "\xed\xbf\xbf"},
	{"above U+10FFFF", "\xf4\x90\x80\x80"},
	{"F5 lead", "\xf5\x80\x80\x80"},
	{"FE", "\xfe"},
	{"FF", "\xff"},
	{"lone continuation", "\x80"},
	{"continuation after ASCII", "abc\xbf"},
	{"truncated 2", "\xce"},
	{"truncated 3", "\xe2\x82"},
	{"truncated 4", "\xf0\x9f\x98"},
	{"truncated then ASCII", "\xe2\x82a"},
	{"kosme then surrogate", "κόσμε\xed\xa0\x80edited"},
	{"5-byte form", "\xf8\x88\x80\x80\x80"},
}

func TestUTF8Valid(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		for _, v := range validUTF8 {
			s.send(opText, []byte(v))
			s.expect(opText, []byte(v))
		}
		// Split across two fragments at every byte position, and one byte
		// per fragment.
		v := "κόσμε-😀-\u0800\U0010ffff"
		for i := 0; i <= len(v); i++ {
			s.frame(false, 0, opText, []byte(v[:i]))
			s.frame(true, 0, opCont, []byte(v[i:]))
			s.expect(opText, []byte(v))
		}
		for i := 0; i < len(v); i++ {
			op := opCont
			if i == 0 {
				op = opText
			}
			s.frame(i == len(v)-1, 0, op, []byte{v[i]})
		}
		s.expect(opText, []byte(v))
		// Invalid UTF-8 in a binary message is just bytes.
		s.send(opBinary, []byte("\xed\xa0\x80\xff"))
		s.expect(opBinary, []byte("\xed\xa0\x80\xff"))
		// A valid close reason.
		s.sendClose(1000, "κόσμε")
		s.expectClose(1000)
	})
}

func TestUTF8Invalid(t *testing.T) {
	var cases []violation
	for _, v := range invalidUTF8 {
		cases = append(cases, violation{name: v.name, send: func(p *wirePeer) { p.send(opText, []byte(v.s)) }, code: 1007})
	}
	// Split across fragments at every byte position.
	bad := "κό\xf4\x90\x80\x80x"
	for i := 0; i <= len(bad); i++ {
		cases = append(cases, violation{name: fmt.Sprintf("split at %d", i), send: func(p *wirePeer) {
			p.frame(false, 0, opText, []byte(bad[:i]))
			p.frame(true, 0, opCont, []byte(bad[i:]))
		}, code: 1007})
	}
	cases = append(cases,
		// Fail fast: the first fragment is already invalid and no more come.
		violation{name: "fail fast fragment", send: func(p *wirePeer) {
			p.frame(false, 0, opText, []byte("κόσμε\xed\xa0\x80"))
		}, code: 1007},
		// Fail fast inside a frame: the header promises 1000 bytes, the
		// invalid sequence comes first and the rest never does.
		violation{name: "fail fast frame", send: func(p *wirePeer) {
			key := p.nextKey()
			b := encodeHeader(true, 0, opText, p.client, key, 1000)
			payload := []byte("ok\xc0\xaf")
			if p.client {
				for i := range payload {
					payload[i] ^= key[i&3]
				}
			}
			p.writeRaw(append(b, payload...))
		}, code: 1007},
		violation{name: "close reason", send: func(p *wirePeer) { p.sendClose(1000, "bad\xce") }, code: 1007},
		violation{name: "close reason surrogate", send: func(p *wirePeer) { p.sendClose(1001, "\xed\xa0\x80") }, code: 1007},
	)
	runViolations(t, cases)
}

// --- 7. Close codes and reasons --------------------------------------------

func TestCloseInvalidCodes(t *testing.T) {
	var cases []violation
	for _, code := range []int{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, violation{name: fmt.Sprint(code), send: func(p *wirePeer) { p.sendClose(code, "") }, code: 1002})
	}
	cases = append(cases, violation{name: "1-byte payload", send: func(p *wirePeer) { p.send(opClose, []byte{0x03}) }, code: 1002})
	runViolations(t, cases)
}

func TestCloseValidCodesEchoed(t *testing.T) {
	for _, r := range roles {
		for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
			t.Run(fmt.Sprintf("%v/%d", r, code), func(t *testing.T) {
				t.Parallel()
				s := start(t, r, engOpts{}, echo)
				reason := fmt.Sprintf("reason for %d: ✓", code)
				s.sendClose(code, reason)
				s.expectClose(code)
				err := s.result()
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || int(ce.Code) != code || ce.Reason != reason {
					t.Fatalf("engine error %v, want *CloseError{%d, %q}", err, code, reason)
				}
				if got := websocket.CloseStatus(fmt.Errorf("wrapped: %w", err)); int(got) != code {
					t.Fatalf("CloseStatus = %d", got)
				}
			})
		}
	}
	if got := websocket.CloseStatus(errors.New("x")); got != -1 {
		t.Fatalf("CloseStatus(non-close error) = %d, want -1", got)
	}
}

// An empty close frame: we echo an empty close; the application sees 1005.
func TestCloseEmpty(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		s.send(opClose, nil)
		f := s.expectClose(-1)
		if len(f.payload) != 0 {
			t.Fatalf("echo payload %q, want empty", f.payload)
		}
		if got := websocket.CloseStatus(s.result()); got != websocket.StatusNoStatusRcvd {
			t.Fatalf("CloseStatus = %d, want 1005", got)
		}
	})
}

// TestCloseStatusAbnormalClosure: a connection the peer ends without a
// close frame (a FIN or a reset) reads as 1006, the code RFC 6455 §7.1.5
// and §7.4.1 reserve for applications to report exactly that, as
// gorilla/websocket's CloseError does; CloseStatus returned -1, which a
// ported `CloseStatus(err) == 1006` check never matched. Errors that do
// not tell how the connection ended stay -1: nil, a bare
// io.ErrUnexpectedEOF that is not the connection's, a context's error, our
// own CloseNow.
func TestCloseStatusAbnormalClosure(t *testing.T) {
	for _, r := range roles {
		for _, reset := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/reset=%v", r, reset), func(t *testing.T) {
				t.Parallel()
				s := start(t, r, engOpts{}, echo)
				s.send(opText, []byte("before"))
				s.expect(opText, []byte("before"))
				if reset {
					_ = s.nc.(*net.TCPConn).SetLinger(0) // close with a RST
				}
				s.nc.Close()
				err := s.result()
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read: %v, want the connection closed without a close frame", err)
				}
				if got := websocket.CloseStatus(err); got != websocket.StatusAbnormalClosure {
					t.Fatalf("CloseStatus(%v) = %d, want 1006", err, got)
				}
				if got := websocket.CloseStatus(fmt.Errorf("wrapped: %w", err)); got != websocket.StatusAbnormalClosure {
					t.Fatalf("CloseStatus(wrapped) = %d, want 1006", got)
				}
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					t.Fatalf("read: a *CloseError %v, but no close frame came", ce)
				}
			})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := start(t, roleServer, engOpts{}, func(c *websocket.Conn) error {
		_, _, err := c.Read(ctx)
		return err
	})
	if err := s.result(); websocket.CloseStatus(err) != -1 {
		t.Errorf("CloseStatus(%v) = %d, want -1", err, websocket.CloseStatus(err))
	}
	s.conn.CloseNow()
	if _, _, err := s.conn.Read(context.Background()); websocket.CloseStatus(err) != -1 {
		t.Errorf("after CloseNow: CloseStatus(%v) = %d, want -1", err, websocket.CloseStatus(err))
	}
	for _, err := range []error{nil, io.ErrUnexpectedEOF, websocket.ErrClosed} {
		if got := websocket.CloseStatus(err); got != -1 {
			t.Errorf("CloseStatus(%v) = %d, want -1", err, got)
		}
	}
}

// A close with the longest reason (123 bytes) is accepted.
func TestCloseLongestReason(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{}, echo)
		reason := strings.Repeat("é", 61) + "x" // 123 bytes
		s.sendClose(4000, reason)
		s.expectClose(4000)
		var ce *websocket.CloseError
		if err := s.result(); !errors.As(err, &ce) || ce.Reason != reason {
			t.Fatalf("engine: %v", err)
		}
	})
}

// Close(code, reason) runs the closing handshake: our close frame, the
// peer's answer, then TCP closed (by the server first, §7.1.1).
func TestCloseHandshake(t *testing.T) {
	for _, r := range roles {
		for _, reading := range []bool{true, false} {
			t.Run(fmt.Sprintf("%v/reader=%v", r, reading), func(t *testing.T) {
				t.Parallel()
				release := make(chan struct{})
				run := echo
				if !reading {
					run = func(*websocket.Conn) error { <-release; return nil }
				}
				s := start(t, r, engOpts{CloseTimeout: 5 * time.Second}, run)
				defer close(release)
				// Data sent before our close is read and dropped by Close.
				s.send(opText, []byte("in flight"))
				if reading {
					s.expect(opText, []byte("in flight"))
				}
				closed := make(chan error, 1)
				go func() { closed <- s.conn.Close(websocket.StatusGoingAway, "bye ✓") }()
				f := s.mustRead()
				if f.op != opClose || string(f.payload) != string(closePayload(1001, "bye ✓")) {
					t.Fatalf("got op %#x %q, want close 1001 \"bye ✓\"", f.op, f.payload)
				}
				s.sendClose(1001, "")
				if r == roleClient {
					// Close returns with the handshake complete; the
					// client's socket waits for the server to close TCP
					// first, and closes after it (close_fin_test.go).
					if err := within(t, wireTimeout, closed, "Close"); err != nil {
						t.Fatalf("Close: %v", err)
					}
					s.expectOpen("client closed before the server")
					s.sendFIN()
					s.expectEOF()
				} else {
					s.expectEOF()
					if err := <-closed; err != nil {
						t.Fatalf("Close: %v", err)
					}
				}
				if reading {
					if got := websocket.CloseStatus(s.result()); got != 1001 {
						t.Fatalf("reader: CloseStatus %d, want 1001", got)
					}
				}
				if err := s.conn.Write(context.Background(), websocket.MessageText, []byte("x")); err == nil {
					t.Fatal("Write after Close succeeded")
				}
				if err := s.conn.Close(1000, ""); !errors.Is(err, websocket.ErrClosed) {
					t.Fatalf("second Close: %v, want ErrClosed", err)
				}
			})
		}
	}
}

// A peer that never answers our close frame: Close gives up after
// CloseTimeout and the TCP connection is closed.
func TestCloseBoundedWait(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{CloseTimeout: 100 * time.Millisecond}, echo)
		closed := make(chan error, 1)
		go func() { closed <- s.conn.Close(websocket.StatusNormalClosure, "") }()
		s.expectClose(1000) // includes: TCP closed without our answer
		if err := <-closed; err == nil {
			t.Fatal("Close returned nil without the peer's close frame")
		}
		if err := s.result(); err == nil {
			t.Fatal("reader returned nil")
		}
	})
}

func TestCloseArguments(t *testing.T) {
	s := start(t, roleServer, engOpts{}, echo)
	for _, c := range []struct {
		code   websocket.StatusCode
		reason string
	}{
		{1005, ""}, {1006, ""}, {1015, ""}, {999, ""}, {5000, ""}, {1000, strings.Repeat("x", 124)}, {1000, "\xff"},
	} {
		if err := s.conn.Close(c.code, c.reason); err == nil {
			t.Fatalf("Close(%d, %d bytes) accepted", c.code, len(c.reason))
		}
	}
	if err := s.conn.Close(1000, "\xff"); !errors.Is(err, websocket.ErrInvalidUTF8) {
		t.Fatalf("Close with invalid reason: %v", err)
	}
	// Nothing went out: the connection still echoes.
	s.send(opText, []byte("ok"))
	s.expect(opText, []byte("ok"))
	s.sendClose(1000, "")
	s.expectClose(1000)
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// --- 8. Limits --------------------------------------------------------------

func TestLimitsWithinBounds(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		s := start(t, r, engOpts{MaxMessageSize: 1000, MaxFrameSize: 600}, echo)
		s.send(opBinary, make([]byte, 600))
		s.expect(opBinary, make([]byte, 600))
		s.frame(false, 0, opText, bytes.Repeat([]byte("a"), 500))
		s.frame(true, 0, opCont, bytes.Repeat([]byte("b"), 500))
		s.expectMessage(opText, []byte(strings.Repeat("a", 500)+strings.Repeat("b", 500)))
		s.sendClose(1000, "")
		s.expectClose(1000)
	})
}

func TestLimitsExceeded(t *testing.T) {
	header := func(p *wirePeer, fin bool, op byte, n int64) {
		p.writeRaw(encodeHeader(fin, 0, op, p.client, p.nextKey(), n))
	}
	runViolations(t, []violation{
		{name: "frame over MaxFrameSize", opts: engOpts{MaxFrameSize: 600}, send: func(p *wirePeer) { header(p, true, opBinary, 601) }, code: 1009},
		{name: "frame over MaxMessageSize", opts: engOpts{MaxMessageSize: 1000}, send: func(p *wirePeer) { header(p, true, opText, 1001) }, code: 1009},
		{name: "fragmented message over MaxMessageSize", opts: engOpts{MaxMessageSize: 1000}, send: func(p *wirePeer) {
			p.frame(false, 0, opBinary, make([]byte, 600))
			header(p, true, opCont, 401)
		}, code: 1009},
		{name: "many small fragments", opts: engOpts{MaxMessageSize: 1000}, send: func(p *wirePeer) {
			p.frame(false, 0, opBinary, make([]byte, 100))
			for i := 0; i < 9; i++ {
				p.frame(false, 0, opCont, make([]byte, 100))
			}
			header(p, false, opCont, 1)
		}, code: 1009},
		{name: "default limit", send: func(p *wirePeer) { header(p, true, opBinary, websocket.DefaultMaxMessageSize+1) }, code: 1009},
		{name: "64-bit length", send: func(p *wirePeer) { header(p, true, opBinary, 1<<62) }, code: 1009},
	})
}

// TestLimitsNegativeMeanDefault guards a negative MaxMessageSize or
// MaxFrameSize: like zero it means the default (there is no unlimited
// setting). It once became a negative limit that every data frame
// exceeded (1009).
func TestLimitsNegativeMeanDefault(t *testing.T) {
	for _, o := range []engOpts{{MaxMessageSize: -1}, {MaxFrameSize: -1}, {MaxMessageSize: -1, MaxFrameSize: -1}} {
		t.Run(fmt.Sprintf("message=%d/frame=%d", o.MaxMessageSize, o.MaxFrameSize), func(t *testing.T) {
			forRoles(t, func(t *testing.T, r role) {
				s := start(t, r, quickLinger(o), echo)
				s.send(opBinary, make([]byte, 600))
				s.expect(opBinary, make([]byte, 600))
				s.writeRaw(encodeHeader(true, 0, opBinary, s.client, s.nextKey(), websocket.DefaultMaxMessageSize+1))
				s.expectClose(1009)
				wantErr(t, s.result(), websocket.ErrMessageTooBig)
			})
		})
	}
}

// --- 9. Concurrency ---------------------------------------------------------

// Many goroutines write at once; every message arrives whole, unfragmented
// and in each writer's order; a streaming Writer's fragments are never
// interleaved with other data frames.
func TestConcurrentWriters(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		const writers, perWriter = 6, 40
		s := start(t, r, engOpts{}, echo)
		ctx := context.Background()
		errs := make(chan error, writers+1)
		for g := 0; g < writers; g++ {
			go func() {
				for i := 0; i < perWriter; i++ {
					n := 2 + (i*977+g*131)%9000
					if i == 7 {
						n = 70000 // larger than a pooled buffer
					}
					msg := bytes.Repeat([]byte{byte('a' + g)}, n)
					msg[1] = byte(i)
					if err := s.conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		stream := bytes.Repeat([]byte("S"), 150000)
		go func() {
			w, err := s.conn.Writer(ctx, websocket.MessageText)
			if err != nil {
				errs <- err
				return
			}
			for p := stream; len(p) > 0; p = p[min(len(p), 3000):] {
				if _, err := w.Write(p[:min(len(p), 3000)]); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Close()
		}()
		next := make([]int, writers)
		streamed := false
		var open []byte
		inMessage := false
		for got := 0; got < writers*perWriter || !streamed; {
			f := s.mustRead()
			switch {
			case f.op == opCont:
				if !inMessage {
					t.Fatal("continuation without a message")
				}
				open = append(open, f.payload...)
			case inMessage:
				t.Fatalf("data frame op %#x inside a fragmented message", f.op)
			case f.op == opText:
				inMessage, open = true, f.payload
			case f.op == opBinary:
				if !f.fin {
					t.Fatal("Write produced a fragment")
				}
				g := int(f.payload[0] - 'a')
				if g < 0 || g >= writers || int(f.payload[1]) != next[g] {
					t.Fatalf("message from writer %d seq %d, want seq %d", g, f.payload[1], next[g])
				}
				next[g]++
				for j, b := range f.payload {
					if j != 1 && b != f.payload[0] {
						t.Fatalf("writer %d message %d corrupted at byte %d", g, f.payload[1], j)
					}
				}
				got++
				continue
			default:
				t.Fatalf("unexpected op %#x", f.op)
			}
			if f.fin {
				if !bytes.Equal(open, stream) {
					t.Fatalf("streamed message: %d bytes, want %d", len(open), len(stream))
				}
				inMessage, streamed = false, true
			}
		}
		for i := 0; i < writers+1; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		s.sendClose(1000, "")
		s.expectClose(1000)
	})
}

// Close from another goroutine while one is blocked reading.
func TestCloseWhileReading(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		reading := make(chan struct{})
		s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
			close(reading)
			_, _, err := c.Read(context.Background())
			return err
		})
		<-reading
		go func() { _ = s.conn.CloseNow() }()
		s.expectEOF()
		if err := s.result(); !errors.Is(err, websocket.ErrClosed) {
			t.Fatalf("reader: %v, want ErrClosed", err)
		}
	})
}

// Cancelling a read's context closes the connection (a message cut half way
// cannot be resumed), and the reader sees the context's error.
func TestReadContextCancel(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		ctx, cancel := context.WithCancel(context.Background())
		reading := make(chan struct{})
		s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
			close(reading)
			_, _, err := c.Read(ctx)
			return err
		})
		<-reading
		cancel()
		s.expectEOF()
		if err := s.result(); !errors.Is(err, context.Canceled) {
			t.Fatalf("reader: %v, want context.Canceled", err)
		}
	})
}

// TestReadContextCanceledWhileArming guards the moment a read's context
// ends between the call's check of it and its watch becoming active: the
// context's callback then ran while the watch was inactive and closed
// nothing, and the read blocked with its context done until the peer
// sent something (TestReadContextCancel timed out about 1 run in 75 under
// load). The context is the one the first read used, so its watch is
// registered already and only the check stands between.
func TestReadContextCanceledWhileArming(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		ctx := &lateCancelCtx{}
		ctx.Context, ctx.cancel = context.WithCancel(context.Background())
		defer ctx.cancel()
		first := make(chan struct{})
		s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
			if _, _, err := c.Read(ctx); err != nil {
				return fmt.Errorf("first read: %w", err)
			}
			close(first)
			ctx.trap.Store(true)
			_, _, err := c.Read(ctx)
			return err
		})
		s.send(opText, []byte("first"))
		<-first
		if err := s.result(); !errors.Is(err, context.Canceled) {
			t.Fatalf("second read: %v, want context.Canceled", err)
		}
	})
}

// lateCancelCtx is a context that, once trap is set, is cancelled inside
// the next Err call, which still reports nil: as if it ended just after
// the caller looked. Err waits 50 ms before it returns so that the
// context's callbacks, which run on goroutines of their own, have almost
// certainly run by then: that makes the bad interleaving nearly certain,
// not guaranteed. A callback later than that (a loaded machine) makes the
// test pass even without the fix; it cannot make it fail with the fix.
type lateCancelCtx struct {
	context.Context
	cancel context.CancelFunc
	trap   atomic.Bool
}

func (c *lateCancelCtx) Err() error {
	if c.trap.CompareAndSwap(true, false) {
		c.cancel()
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	return c.Context.Err()
}

// TestReaderContextGovernsBody guards Reader's ctx: it governs the message
// until the message's reader reaches the end (or the next read call
// starts), not just until Reader returns. It used to be let go when Reader
// had read the first frame header, so a peer that stalled inside the
// payload blocked the body read forever, past ctx. Once the message is
// read, or a later read call took over, ctx no longer matters.
func TestReaderContextGovernsBody(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		t.Run("canceled mid-body", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bodyNext := make(chan struct{})
			s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
				_, rd, err := c.Reader(ctx)
				if err != nil {
					return err
				}
				close(bodyNext)
				_, err = io.ReadAll(rd)
				return err
			})
			// 10 of the frame's 100 payload bytes, then nothing.
			f := encodeFrame(true, 0, opBinary, s.client, s.nextKey(), make([]byte, 100))
			s.writeRaw(f[:len(f)-90])
			<-bodyNext
			cancel()
			s.expectEOF()
			if err := s.result(); !errors.Is(err, context.Canceled) {
				t.Fatalf("body read: %v, want context.Canceled", err)
			}
		})
		for _, tc := range []struct {
			name string
			read func(c *websocket.Conn, rd io.Reader) error // after Reader
		}{
			{"canceled after the body was read", func(c *websocket.Conn, rd io.Reader) error {
				_, err := io.ReadAll(rd)
				return err
			}},
			// Every byte read but not the io.EOF after them, as a decoder
			// that knows the length does: nothing more comes from the
			// network for this message, so ctx no longer matters.
			{"canceled after the body's last byte", func(c *websocket.Conn, rd io.Reader) error {
				_, err := io.ReadFull(rd, make([]byte, len("first message")))
				return err
			}},
			{"canceled after the next read took over", func(c *websocket.Conn, rd io.Reader) error {
				if _, err := io.ReadFull(rd, make([]byte, 2)); err != nil {
					return err
				}
				_, _, err := c.Read(context.Background()) // discards the rest
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				read, canceled := make(chan struct{}), make(chan struct{})
				s := start(t, r, engOpts{}, func(c *websocket.Conn) error {
					_, rd, err := c.Reader(ctx)
					if err != nil {
						return err
					}
					if err := tc.read(c, rd); err != nil {
						return err
					}
					close(read)
					<-canceled
					if err := c.Write(context.Background(), websocket.MessageText, []byte("still open")); err != nil {
						return err
					}
					for { // "second", if still there, then the close
						if _, _, err := c.Read(context.Background()); err != nil {
							return err
						}
					}
				})
				s.send(opBinary, []byte("first message"))
				s.send(opBinary, []byte("second"))
				<-read
				cancel()
				// Give a wrongly armed watch the time to close the
				// connection.
				time.Sleep(50 * time.Millisecond)
				close(canceled)
				s.expectMessage(opText, []byte("still open"))
				s.sendClose(1000, "")
				s.expectClose(1000)
				if err := s.result(); websocket.CloseStatus(err) != 1000 {
					t.Fatalf("engine: %v", err)
				}
			})
		}
	})
}

// --- 10. Raw mode -----------------------------------------------------------

func TestRawMode(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		frames := make(chan websocket.Frame, 8)
		s := start(t, r, engOpts{Raw: true}, func(c *websocket.Conn) error {
			ctx := context.Background()
			if _, _, err := c.Read(ctx); !errors.Is(err, websocket.ErrRawMode) {
				return fmt.Errorf("Read on a raw conn: %v", err)
			}
			if err := c.Write(ctx, websocket.MessageText, nil); !errors.Is(err, websocket.ErrRawMode) {
				return fmt.Errorf("Write on a raw conn: %v", err)
			}
			for i := 0; i < 4; i++ {
				f, err := c.ReadFrame(ctx, nil)
				if err != nil {
					return err
				}
				f.Payload = bytes.Clone(f.Payload)
				frames <- f
			}
			// Answer by hand: fragments, then the pong, then the close.
			for _, f := range []websocket.Frame{
				{FrameHeader: websocket.FrameHeader{Fin: false, Opcode: websocket.OpText}, Payload: []byte("a")},
				{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpContinuation}, Payload: []byte("b")},
				{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpPong}, Payload: []byte("p")},
				{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpClose}, Payload: closePayload(1000, "")},
			} {
				if err := c.WriteFrame(ctx, f); err != nil {
					return err
				}
			}
			_, err := c.ReadFrame(ctx, nil)
			return err
		})
		s.send(opPing, []byte("p"))
		s.frame(false, 0, opText, []byte("x"))
		s.frame(true, 0, opCont, []byte("y"))
		s.sendClose(4000, "raw")
		want := []websocket.Frame{
			{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpPing, Length: 1}, Payload: []byte("p")},
			{FrameHeader: websocket.FrameHeader{Fin: false, Opcode: websocket.OpText, Length: 1}, Payload: []byte("x")},
			{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpContinuation, Length: 1}, Payload: []byte("y")},
			{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpClose, Length: 5}, Payload: closePayload(4000, "raw")},
		}
		for i, w := range want {
			select {
			case f := <-frames:
				if f.FrameHeader != w.FrameHeader || !bytes.Equal(f.Payload, w.Payload) {
					t.Fatalf("frame %d: %+v %q, want %+v %q", i, f.FrameHeader, f.Payload, w.FrameHeader, w.Payload)
				}
			case err := <-s.done:
				t.Fatalf("engine: %v", err)
			}
		}
		// No automatic pong and no automatic close reply: the first frames
		// are the ones written by hand.
		f := s.mustRead()
		if f.op != opText || f.fin || string(f.payload) != "a" {
			t.Fatalf("first frame op=%#x fin=%v %q, want the hand-written text fragment", f.op, f.fin, f.payload)
		}
		f = s.mustRead()
		if f.op != opCont || !f.fin || string(f.payload) != "b" {
			t.Fatalf("second frame op=%#x fin=%v %q", f.op, f.fin, f.payload)
		}
		s.expect(opPong, []byte("p"))
		s.expect(opClose, closePayload(1000, ""))
		s.nc.Close()
		if err := s.result(); err == nil {
			t.Fatal("ReadFrame after the close returned nil")
		}
	})
}

// Raw mode still enforces the frame-level rules.
func TestRawModeViolations(t *testing.T) {
	raw := engOpts{Raw: true}
	var cases []violation
	for _, v := range []violation{
		{name: "reserved opcode", send: func(p *wirePeer) { p.send(0x3, nil) }, code: 1002},
		{name: "rsv1", send: func(p *wirePeer) { p.frame(true, 0x40, opBinary, nil) }, code: 1002},
		{name: "wrong mask", send: func(p *wirePeer) { p.sendWrongMask(opBinary, nil) }, code: 1002},
		{name: "continuation without start", send: func(p *wirePeer) { p.send(opCont, nil) }, code: 1002},
		{name: "fragmented ping", send: func(p *wirePeer) { p.frame(false, 0, opPing, nil) }, code: 1002},
		{name: "bad close code", send: func(p *wirePeer) { p.sendClose(1005, "") }, code: 1002},
		{name: "frame too big", opts: engOpts{Raw: true, MaxFrameSize: 10}, send: func(p *wirePeer) { p.send(opBinary, make([]byte, 11)) }, code: 1009},
	} {
		if v.opts == (engOpts{}) {
			v.opts = raw
		}
		cases = append(cases, v)
	}
	for _, r := range roles {
		for _, v := range cases {
			t.Run(r.String()+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				s := start(t, r, v.opts, func(c *websocket.Conn) error {
					for {
						if _, err := c.ReadFrame(context.Background(), nil); err != nil {
							return err
						}
					}
				})
				v.send(s.wirePeer)
				s.expectClose(v.code)
				wantErr(t, s.result(), failSentinel(v.code))
			})
		}
	}
}
