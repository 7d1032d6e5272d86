package websocket_test

import (
	"bytes"
	"context"
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
			if reason := f.payload[2:]; !utf8.Valid(reason) || !strings.Contains(string(reason), ": message starts with \ufffd\ufffd") {
				t.Fatalf("close reason %q: not valid UTF-8, or not the extension's error", reason)
			}
		})
	}
}
