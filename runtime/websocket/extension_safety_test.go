package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// ownerExt is an extension owning the RSV bits rsv whose session s is a
// MessageTransformer, a FrameTransformer, or both (ownerSession). Its
// session is used by one connection's writing goroutine only.
type ownerExt struct {
	name string
	rsv  byte
	s    *ownerSession
}

func (e ownerExt) Name() string                      { return e.name }
func (e ownerExt) RSV() byte                         { return e.rsv }
func (e ownerExt) ClientOffers() [][]websocket.Param { return [][]websocket.Param{nil} }
func (e ownerExt) ServerNegotiate([][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	return nil, e.session(), true
}
func (e ownerExt) ClientAccept([]websocket.Param) (websocket.ExtensionSession, error) {
	return e.session(), nil
}

func (e ownerExt) session() websocket.ExtensionSession {
	if e.s.frame {
		return frameSession{e.s}
	}
	return messageSession{e.s}
}

type ownerSession struct {
	frame  bool                     // a FrameTransformer, not a MessageTransformer
	rsv    byte                     // what WriteMessage returns
	change func(f *websocket.Frame) // what OutgoingFrame does, if set
}

// messageSession passes messages through, marked with s.rsv.
type messageSession struct{ s *ownerSession }

func (m messageSession) WriteMessage(dst io.WriteCloser, _ websocket.MessageType, _ int) (io.WriteCloser, byte, error) {
	return dst, m.s.rsv, nil
}
func (m messageSession) ReadMessage(src io.Reader, _ byte) io.Reader { return src }

// frameSession applies s.change to outgoing frames.
type frameSession struct{ s *ownerSession }

func (fs frameSession) OutgoingFrame(f *websocket.Frame) error {
	if fs.s.change != nil {
		fs.s.change(f)
	}
	return nil
}
func (fs frameSession) IncomingFrame(*websocket.FrameHeader) error { return nil }

// TestMessageTransformerForeignRSV guards the RSV bits a message
// transformer marks a message with: only its extension's own. One that
// returned RSV1 while permessage-deflate owned it made the peer inflate a
// message that was not compressed (1007), one returning an RSV bit nobody
// owned made it fail with 1002: the bits were OR-ed into the frame
// unchecked. Now Write and Writer refuse such a message, with an error
// naming the extension and the bits, before anything of it is sent, and
// the connection stays usable.
func TestMessageTransformerForeignRSV(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		rsv  byte
		bits string // as the error names them
	}{
		{"another extension's", websocket.RSV1, "RSV1"},
		{"nobody's", websocket.RSV3, "RSV3"},
		{"own and nobody's", websocket.RSV2 | websocket.RSV3, "RSV3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own := &ownerSession{}
			set := websocket.MustExtensionSet(ownerExt{"x-other", websocket.RSV1, &ownerSession{}}, ownerExt{"x-own", websocket.RSV2, own})
			s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second},
				"Sec-WebSocket-Extensions: x-other, x-own\r\n", func(c *websocket.Conn) error {
					own.rsv = tc.rsv
					werr := refused("Write", c.Write(ctx, websocket.MessageText, []byte("lost")), "x-own", tc.bits)
					w, err := c.Writer(ctx, websocket.MessageText)
					if err == nil {
						_ = w.Close()
					}
					own.rsv = websocket.RSV2
					return errors.Join(werr, refused("Writer", err, "x-own", tc.bits),
						c.Write(ctx, websocket.MessageText, []byte("kept")))
				})
			// run's result first: it is over before the test ends, whatever
			// the peer sees.
			if err := s.result(); err != nil {
				t.Error(err)
			}
			f := s.mustRead()
			if f.op != opText || !f.fin || f.rsv != websocket.RSV2 || string(f.payload) != "kept" {
				t.Fatalf("first frame op=%#x fin=%v rsv=%#x payload %q; want the text message \"kept\" marked RSV2 alone",
					f.op, f.fin, f.rsv, trunc(f.payload))
			}
		})
	}
}

// refused checks that err is a refusal naming the extension name and
// holding want.
func refused(call string, err error, name, want string) error {
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), want) {
		return fmt.Errorf("%s: %v, want an error naming %s and %q", call, err, name, want)
	}
	return nil
}

// TestFrameTransformerBrokenFrame guards the frames a frame transformer
// hands back: OutgoingFrame runs after the callers' checks, so one that
// grew a close frame to 135 bytes had it written (the peer failed with
// 1002, and our Close returned nil), and one could clear FIN, turn a data
// frame into a control frame or set RSV bits it did not own. Now such a
// frame is not written: the call fails with an error naming the
// extension. What it may do (its own RSV bits, a new payload, text for
// binary) still goes out.
func TestFrameTransformerBrokenFrame(t *testing.T) {
	ctx := context.Background()
	const header = "Sec-WebSocket-Extensions: x-frame\r\n"
	start := func(t *testing.T, run func(c *websocket.Conn, fs *ownerSession) error) *session {
		fs := &ownerSession{frame: true}
		set := websocket.MustExtensionSet(ownerExt{"x-frame", websocket.RSV3, fs})
		s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second}, header,
			func(c *websocket.Conn) error { return run(c, fs) })
		return s
	}
	for _, tc := range []struct {
		name   string
		change func(f *websocket.Frame)
		want   string // in the error
	}{
		{"FIN cleared", func(f *websocket.Frame) { f.Fin = false }, "FIN"},
		{"made a ping", func(f *websocket.Frame) { f.Opcode = websocket.OpPing }, "into a ping frame"},
		{"made a continuation", func(f *websocket.Frame) { f.Opcode = websocket.OpContinuation }, "into a continuation frame"},
		{"made reserved", func(f *websocket.Frame) { f.Opcode = 0x3 }, "into a"},
		{"RSV not its own", func(f *websocket.Frame) { f.RSV |= websocket.RSV1 | websocket.RSV3 }, "RSV1"},
	} {
		t.Run("data/"+tc.name, func(t *testing.T) {
			s := start(t, func(c *websocket.Conn, fs *ownerSession) error {
				fs.change = tc.change
				err := refused("Write", c.Write(ctx, websocket.MessageBinary, []byte("lost")), "x-frame", tc.want)
				fs.change = nil
				return errors.Join(err, c.Write(ctx, websocket.MessageBinary, []byte("kept")))
			})
			if err := s.result(); err != nil {
				t.Error(err)
			}
			s.expect(opBinary, []byte("kept"))
		})
	}
	for _, tc := range []struct {
		name   string
		change func(f *websocket.Frame)
		want   string
	}{
		{"grown past 125 bytes", func(f *websocket.Frame) {
			f.Payload = append(slices.Clip(f.Payload), make([]byte, 130)...)
		}, "135 bytes"},
		{"FIN cleared", func(f *websocket.Frame) { f.Fin = false }, "FIN"},
		{"made a data frame", func(f *websocket.Frame) { f.Opcode = websocket.OpText }, "into a text frame"},
	} {
		t.Run("close/"+tc.name, func(t *testing.T) {
			s := start(t, func(c *websocket.Conn, fs *ownerSession) error {
				fs.change = func(f *websocket.Frame) {
					if f.Opcode == websocket.OpClose {
						tc.change(f)
					}
				}
				return refused("Close", c.Close(websocket.StatusNormalClosure, "bye"), "x-frame", tc.want)
			})
			if err := s.result(); err != nil {
				t.Error(err)
			}
			// Nothing went out: Close closed the connection on its error.
			s.expectEOF()
		})
	}
	t.Run("allowed", func(t *testing.T) {
		s := start(t, func(c *websocket.Conn, fs *ownerSession) error {
			fs.change = func(f *websocket.Frame) {
				f.RSV |= websocket.RSV3
				f.Opcode = websocket.OpBinary
				f.Payload = append([]byte("x:"), f.Payload...)
			}
			return c.Write(ctx, websocket.MessageText, []byte("kept"))
		})
		if f := s.mustRead(); f.op != opBinary || !f.fin || f.rsv != websocket.RSV3 || string(f.payload) != "x:kept" {
			t.Fatalf("frame op=%#x fin=%v rsv=%#x payload %q; want binary \"x:kept\" marked RSV3", f.op, f.fin, f.rsv, trunc(f.payload))
		}
		if err := s.result(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("raw frame keeps the caller's bits", func(t *testing.T) {
		// The check is on what the transformer changed: a raw connection
		// writes the RSV bits it is given, which need not be the frame
		// extension's.
		fs := &ownerSession{frame: true}
		set := websocket.MustExtensionSet(ownerExt{"x-frame", websocket.RSV3, fs})
		s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second, Raw: true}, header,
			func(c *websocket.Conn) error {
				return c.WriteFrame(ctx, websocket.Frame{
					FrameHeader: websocket.FrameHeader{Fin: true, RSV: websocket.RSV1, Opcode: websocket.OpBinary},
					Payload:     []byte("raw"),
				})
			})
		if f := s.mustRead(); f.op != opBinary || !f.fin || f.rsv != websocket.RSV1 || string(f.payload) != "raw" {
			t.Fatalf("frame op=%#x fin=%v rsv=%#x payload %q; want binary \"raw\" marked RSV1", f.op, f.fin, f.rsv, trunc(f.payload))
		}
		if err := s.result(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriterRefusedFragmentEndsMessage: a Writer whose fragment is refused
// (here by a frame transformer; an I/O error is the same) cannot complete
// its message. Its Close used to send the final fragment anyway, so the
// peer read a message missing the refused bytes as a whole one. Now the
// refusal is sticky: Write and Close return it, and if fragments went
// out Close fails the connection with 1011; if none did, nothing of the
// message was sent and the connection stays usable.
func TestWriterRefusedFragmentEndsMessage(t *testing.T) {
	ctx := context.Background()
	const header = "Sec-WebSocket-Extensions: x-frame\r\n"
	refuseNth := func(fs *ownerSession, n int) {
		seen := 0
		fs.change = func(f *websocket.Frame) {
			if f.Opcode.IsControl() {
				return
			}
			if seen++; seen == n {
				f.Fin = !f.Fin // broken: the write is refused (checkOutgoing)
			}
		}
	}
	start := func(t *testing.T, run func(c *websocket.Conn, fs *ownerSession) error) *session {
		fs := &ownerSession{frame: true}
		set := websocket.MustExtensionSet(ownerExt{"x-frame", websocket.RSV3, fs})
		s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second}, header,
			func(c *websocket.Conn) error { return run(c, fs) })
		return s
	}
	big := make([]byte, 200<<10) // several fragments
	t.Run("after fragments went out", func(t *testing.T) {
		s := start(t, func(c *websocket.Conn, fs *ownerSession) error {
			refuseNth(fs, 2)
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return err
			}
			_, werr := w.Write(big)
			if werr == nil {
				return errors.New("Write: no error after a refused fragment")
			}
			if _, err := w.Write([]byte("more")); err == nil {
				return errors.New("a Write after the refusal succeeded")
			}
			if err := w.Close(); err == nil {
				return errors.New("Close: nil after a refused fragment")
			}
			return nil
		})
		if err := s.result(); err != nil {
			t.Error(err)
		}
		f := s.mustRead()
		if f.op != opBinary || f.fin {
			t.Fatalf("first frame op=%#x fin=%v, want the message's first fragment", f.op, f.fin)
		}
		s.expectClose(1011)
	})
	// The final fragment, sent by Close, refused after the others went
	// out: Close returned the refusal but left the connection as it was,
	// the peer inside a message that never ended, and the next message's
	// first frame reached it as a protocol error (RFC 6455 §5.4) instead
	// of our 1011. Through Writer, and through Write when a message
	// extension cuts the message in fragments.
	refuseFinal := func(fs *ownerSession) {
		fs.change = func(f *websocket.Frame) {
			if !f.Opcode.IsControl() && f.Fin {
				f.Fin = false // broken: the write is refused (checkOutgoing)
			}
		}
	}
	expectCutShort := func(t *testing.T, s *session) {
		t.Helper()
		f := s.mustRead()
		if f.op != opBinary || f.fin {
			t.Fatalf("first frame op=%#x fin=%v, want the message's first fragment", f.op, f.fin)
		}
		for f = s.mustRead(); f.op == opCont && !f.fin; f = s.mustRead() {
		}
		if f.op != opClose {
			t.Fatalf("after the fragments: op=%#x fin=%v payload %q, want our close frame (1011)", f.op, f.fin, trunc(f.payload))
		}
		if code := int(f.payload[0])<<8 | int(f.payload[1]); code != 1011 {
			t.Fatalf("close code %d (%q), want 1011", code, f.payload[2:])
		}
	}
	// nextWriteFails: with the extension accepting again, a message after
	// the cut one finds the connection failed.
	nextWriteFails := func(c *websocket.Conn, fs *ownerSession) error {
		fs.change = nil
		if err := c.Write(ctx, websocket.MessageBinary, []byte("next")); !errors.Is(err, websocket.ErrClosed) {
			return fmt.Errorf("Write after the cut message: %v, want ErrClosed", err)
		}
		return nil
	}
	t.Run("final fragment", func(t *testing.T) {
		s := start(t, func(c *websocket.Conn, fs *ownerSession) error {
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return err
			}
			if _, err := w.Write(big); err != nil {
				return fmt.Errorf("Write before the refusal: %v", err)
			}
			refuseFinal(fs)
			if err := w.Close(); err == nil {
				return errors.New("Close: nil after a refused final fragment")
			}
			return nextWriteFails(c, fs)
		})
		if err := s.result(); err != nil {
			t.Error(err)
		}
		expectCutShort(t, s)
	})
	t.Run("final fragment of a Write through a message extension", func(t *testing.T) {
		fs := &ownerSession{frame: true}
		set := websocket.MustExtensionSet(ownerExt{"x-msg", websocket.RSV2, &ownerSession{}}, ownerExt{"x-frame", websocket.RSV3, fs})
		s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second},
			"Sec-WebSocket-Extensions: x-msg, x-frame\r\n", func(c *websocket.Conn) error {
				refuseFinal(fs)
				if err := c.Write(ctx, websocket.MessageBinary, big); err == nil {
					return errors.New("Write: nil after a refused final fragment")
				}
				return nextWriteFails(c, fs)
			})
		if err := s.result(); err != nil {
			t.Error(err)
		}
		expectCutShort(t, s)
	})
	t.Run("before any fragment", func(t *testing.T) {
		s := start(t, func(c *websocket.Conn, fs *ownerSession) error {
			refuseNth(fs, 1)
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return err
			}
			_, werr := w.Write(big)
			cerr := w.Close()
			if werr == nil || cerr == nil {
				return fmt.Errorf("Write %v, Close %v; want the refusal from both", werr, cerr)
			}
			fs.change = nil
			return c.Write(ctx, websocket.MessageBinary, []byte("kept"))
		})
		if err := s.result(); err != nil {
			t.Error(err)
		}
		s.expect(opBinary, []byte("kept"))
	})
}

// TestKeepalivePingRefusedFails: a frame extension that refuses the
// keepalive's ping (its OutgoingFrame breaks it, or returns an error)
// leaves no pong to wait for. The refusal was dropped, and the
// connection, its peer alive, ended PongTimeout later with
// ErrPongTimeout, which blames the path and names nothing of the cause.
// Now the keepalive fails the connection at once with the extension's
// error and 1011, as a Write whose fragment was refused does. The pong
// timeout is longer than the test's bound, so a connection left to it
// fails the test.
func TestKeepalivePingRefusedFails(t *testing.T) {
	fs := &ownerSession{frame: true, change: func(f *websocket.Frame) {
		if f.Opcode == websocket.OpPing {
			f.Fin = false // broken: the write is refused (checkOutgoing)
		}
	}}
	set := websocket.MustExtensionSet(ownerExt{"x-frame", websocket.RSV3, fs})
	s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, PingInterval: 10 * time.Millisecond,
		PongTimeout: time.Minute, CloseTimeout: time.Second}, "Sec-WebSocket-Extensions: x-frame\r\n",
		func(c *websocket.Conn) error {
			_, _, err := c.Read(context.Background())
			if errors.Is(err, websocket.ErrPongTimeout) || !errors.Is(err, websocket.ErrClosed) || !strings.Contains(err.Error(), "x-frame") {
				return fmt.Errorf("Read: %v, want ErrClosed naming the extension", err)
			}
			if n := c.Stats().PingsSent; n != 0 {
				return fmt.Errorf("PingsSent %d, want 0: the ping was refused", n)
			}
			return nil
		})
	s.expectClose(1011)
	if err := s.result(); err != nil {
		t.Fatal(err)
	}
}
