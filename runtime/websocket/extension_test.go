package websocket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// tagExt is a message-level extension owning no RSV bit: it prefixes every
// outgoing message with "<tag>:" and strips (and checks) the prefix of
// every incoming one. Two of them with different tags do not commute, so
// they show in which order a chain of message transformers runs. Its
// reader's error quotes the bytes it found as they are, which need not be
// UTF-8.
type tagExt struct{ tag string }

func (e tagExt) Name() string                      { return "x-" + e.tag }
func (e tagExt) RSV() byte                         { return 0 }
func (e tagExt) ClientOffers() [][]websocket.Param { return [][]websocket.Param{nil} }
func (e tagExt) ServerNegotiate([][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	return nil, tagSession{tag: e.tag + ":"}, true
}
func (e tagExt) ClientAccept([]websocket.Param) (websocket.ExtensionSession, error) {
	return tagSession{tag: e.tag + ":"}, nil
}

type tagSession struct{ tag string }

func (s tagSession) WriteMessage(dst io.WriteCloser, _ websocket.MessageType, _ int) (io.WriteCloser, byte, error) {
	return &tagWriter{dst: dst, tag: s.tag}, 0, nil
}

func (s tagSession) ReadMessage(src io.Reader, _ byte) io.Reader {
	return &tagReader{src: src, tag: s.tag}
}

type tagWriter struct {
	dst  io.WriteCloser
	tag  string
	sent bool
}

func (w *tagWriter) writeTag() error {
	if w.sent {
		return nil
	}
	w.sent = true
	_, err := io.WriteString(w.dst, w.tag)
	return err
}

func (w *tagWriter) Write(p []byte) (int, error) {
	if err := w.writeTag(); err != nil {
		return 0, err
	}
	return w.dst.Write(p)
}

func (w *tagWriter) Close() error {
	if err := w.writeTag(); err != nil {
		return err
	}
	return w.dst.Close()
}

type tagReader struct {
	src     io.Reader
	tag     string
	checked bool
}

func (r *tagReader) Read(p []byte) (int, error) {
	if !r.checked {
		r.checked = true
		got := make([]byte, len(r.tag))
		if n, err := io.ReadFull(r.src, got); err != nil || string(got) != r.tag {
			return 0, fmt.Errorf("x-%s: message starts with %s, not its tag: %w", r.tag[:len(r.tag)-1], got[:n], websocket.ErrProtocol)
		}
	}
	return r.src.Read(p)
}

// TestMessageExtensionsRoundTrip guards the order of a chain of message
// extensions: outgoing data passes through them in order, incoming data in
// reverse (ExtensionSet, RFC 6455 §9.1), so two of our own endpoints with
// the same two extensions understand each other. The write chain once
// applied them in reverse, and no message got through.
func TestMessageExtensionsRoundTrip(t *testing.T) {
	set := websocket.MustExtensionSet(tagExt{"a"}, tagExt{"b"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Extensions: set})
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = echo(c)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Extensions: set})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if exts := c.Extensions(); len(exts) != 2 || exts[0].Name != "x-a" || exts[1].Name != "x-b" {
		t.Fatalf("Extensions() = %+v", exts)
	}
	for _, msg := range []string{"hello", ""} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	// A streamed message goes through the same chain.
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "str")
	io.WriteString(w, "eamed")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "streamed" {
		t.Fatalf("echo of a streamed message: %q, %v", got, err)
	}
}

// TestMessageExtensionOrderOnTheWire guards the order against a peer that
// is not us: with x-a then x-b in the server's response, x-a operates on
// the data first (RFC 6455 §9.1), so the wire carries "b:a:" + data in both
// directions, in both roles.
func TestMessageExtensionOrderOnTheWire(t *testing.T) {
	set := websocket.MustExtensionSet(tagExt{"a"}, tagExt{"b"})
	t.Run("server", func(t *testing.T) {
		s, resp := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second},
			"Sec-WebSocket-Extensions: x-a, x-b\r\n", echo)
		if got := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", "); got != "x-a, x-b" {
			t.Fatalf("answer %q", got)
		}
		s.send(opText, []byte("b:a:hello"))
		s.expect(opText, []byte("b:a:hello"))
	})
	t.Run("client", func(t *testing.T) {
		// The client follows the order of the server's answer, not its own
		// installation order.
		url, peers := fakeServer(t, func(w io.Writer, req *http.Request) {
			fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: x-b, x-a\r\n\r\n",
				wsAccept(req.Header.Get("Sec-WebSocket-Key")))
		})
		ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: set, CloseTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		// Conn.Extensions reports them in that order too: it said
		// "installation order", which only a server keeps.
		var names []string
		for _, e := range c.Extensions() {
			names = append(names, e.Name)
		}
		if got := strings.Join(names, ", "); got != "x-b, x-a" {
			t.Errorf("Extensions() %q, want the answer's order x-b, x-a", got)
		}
		p := <-peers
		go echo(c)
		p.send(opText, []byte("a:b:hello"))
		p.expect(opText, []byte("a:b:hello"))
	})
}

// TestMessageExtensionProtocolError guards the close code of an
// extension's decoding error: one wrapping ErrProtocol fails the
// connection with 1002 as MessageTransformer documents (it was 1007).
func TestMessageExtensionProtocolError(t *testing.T) {
	set := websocket.MustExtensionSet(tagExt{"b"})
	s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second},
		"Sec-WebSocket-Extensions: x-b\r\n", echo)
	s.send(opText, []byte("no tag here"))
	s.expectClose(1002)
	err := s.result()
	wantErr(t, err, websocket.ErrProtocol)
	if websocket.FailureStatus(err) != websocket.StatusProtocolError {
		t.Fatalf("engine error %v: FailureStatus %d, want 1002", err, websocket.FailureStatus(err))
	}
}

// TestCloseReasonValidUTF8 guards the reason of the close frame we fail a
// connection with: RFC 6455 §5.5.1 wants it UTF-8, and an extension's
// error may quote the peer's bytes. An invalid byte once went out as is,
// so the peer failed our close frame with 1007.
func TestCloseReasonValidUTF8(t *testing.T) {
	// A short reason, and one cut at 123 bytes.
	for _, tag := range []string{"b", strings.Repeat("b", 40)} {
		t.Run(fmt.Sprint(len(tag)), func(t *testing.T) {
			set := websocket.MustExtensionSet(tagExt{tag})
			s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second},
				"Sec-WebSocket-Extensions: x-"+tag+"\r\n", echo)
			s.send(opBinary, bytes.Repeat([]byte{0xff}, len(tag)+1))
			f := s.expectClose(1002)
			if reason := f.payload[2:]; !utf8.Valid(reason) || !strings.Contains(string(reason), ": message starts with \ufffd") {
				t.Fatalf("close reason %q: not valid UTF-8, or not the extension's error", reason)
			}
		})
	}
}

// faultExt is a message extension that fails when told to: WriteMessage,
// or a writer once it has passed failAfter bytes. It counts the writers it
// made that are still open. Its session is used by one connection's writing
// goroutine only.
type faultExt struct {
	name string
	s    *faultSession
}

func (e faultExt) Name() string                      { return e.name }
func (e faultExt) RSV() byte                         { return 0 }
func (e faultExt) ClientOffers() [][]websocket.Param { return [][]websocket.Param{nil} }
func (e faultExt) ServerNegotiate([][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	return nil, e.s, true
}
func (e faultExt) ClientAccept([]websocket.Param) (websocket.ExtensionSession, error) {
	return e.s, nil
}

var errFault = errors.New("fault injected")

type faultSession struct {
	failStart bool // WriteMessage fails
	failAfter int  // > 0: a writer fails once past this many bytes
	open      int  // writers made and not closed
}

func (s *faultSession) WriteMessage(dst io.WriteCloser, _ websocket.MessageType, _ int) (io.WriteCloser, byte, error) {
	if s.failStart {
		return nil, 0, errFault
	}
	s.open++
	return &faultWriter{s: s, dst: dst}, 0, nil
}

func (s *faultSession) ReadMessage(src io.Reader, _ byte) io.Reader { return src }

type faultWriter struct {
	s   *faultSession
	dst io.WriteCloser
	n   int
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if lim := w.s.failAfter; lim > 0 && w.n+len(p) > lim {
		n, _ := w.dst.Write(p[:lim-w.n])
		w.n += n
		return n, errFault
	}
	n, err := w.dst.Write(p)
	w.n += n
	return n, err
}

func (w *faultWriter) Close() error {
	w.s.open--
	return w.dst.Close()
}

// TestMessageExtensionFailure guards what a failing message extension
// leaves behind. One that fails to start a message, or to take its data
// before a fragment went out, sends nothing (not an empty or truncated
// message), the writers of the others are closed (they were left open),
// and the connection stays usable. One that fails after a fragment went
// out fails the connection with 1011: closing the Writer used to send the
// final fragment, so the peer took a truncated message for a whole one.
func TestMessageExtensionFailure(t *testing.T) {
	const header = "Sec-WebSocket-Extensions: x-outer, x-inner\r\n"
	ctx := context.Background()
	// start serves run on a connection with two fault extensions of its
	// own; check wants the extension's error and every writer closed.
	start := func(t *testing.T, run func(c *websocket.Conn, outer, inner *faultSession, check func(string, error) error) error) *session {
		outer, inner := &faultSession{}, &faultSession{}
		set := websocket.MustExtensionSet(faultExt{"x-outer", outer}, faultExt{"x-inner", inner})
		check := func(step string, err error) error {
			if !errors.Is(err, errFault) {
				return fmt.Errorf("%s: %v, want the extension's error", step, err)
			}
			if outer.open != 0 || inner.open != 0 {
				return fmt.Errorf("%s: writers left open: outer %d, inner %d", step, outer.open, inner.open)
			}
			return nil
		}
		s, _ := startServerWith(t, &websocket.AcceptOptions{Extensions: set, CloseTimeout: time.Second}, header,
			func(c *websocket.Conn) error { return run(c, outer, inner, check) })
		return s
	}
	t.Run("nothing sent", func(t *testing.T) {
		s := start(t, func(c *websocket.Conn, outer, inner *faultSession, check func(string, error) error) error {
			outer.failStart = true
			if err := check("Write", c.Write(ctx, websocket.MessageText, []byte("lost"))); err != nil {
				return err
			}
			_, err := c.Writer(ctx, websocket.MessageText)
			if err := check("Writer", err); err != nil {
				return err
			}
			outer.failStart, inner.failAfter = false, 3
			if err := check("Write's data", c.Write(ctx, websocket.MessageText, []byte("lost too"))); err != nil {
				return err
			}
			inner.failAfter = 0
			return c.Write(ctx, websocket.MessageText, []byte("kept"))
		})
		if err := s.result(); err != nil {
			t.Fatal(err)
		}
		s.expect(opText, []byte("kept"))
	})
	t.Run("after a fragment", func(t *testing.T) {
		s := start(t, func(c *websocket.Conn, outer, _ *faultSession, check func(string, error) error) error {
			outer.failAfter = 100 << 10
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				return err
			}
			_, werr := w.Write(make([]byte, 200<<10))
			return check("Writer's data", errors.Join(werr, w.Close()))
		})
		f := s.mustRead()
		if f.op != opBinary || f.fin {
			t.Fatalf("first frame op=%#x fin=%v, want a first fragment", f.op, f.fin)
		}
		for f = s.mustRead(); f.op == opCont && !f.fin; f = s.mustRead() {
		}
		if f.op != opClose || len(f.payload) < 2 || int(f.payload[0])<<8|int(f.payload[1]) != 1011 {
			t.Fatalf("after the fragments: op=%#x fin=%v payload %q, want a 1011 close frame", f.op, f.fin, trunc(f.payload))
		}
		if err := s.result(); err != nil {
			t.Fatal(err)
		}
	})
}
