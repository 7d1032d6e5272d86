package websocket_test

// Bytes that arrive with the opening handshake: a first frame written
// with the client's request, or with the server's 101, or while the
// handler runs before Accept, is read as the first message, under the
// connection's limits (RFC 6455 §4.1, §4.2.2: the frames start right
// after the handshake's blank line).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// maskedFrame is a masked client frame (FIN set) with a fixed key.
func maskedFrame(op byte, payload []byte) []byte {
	return encodeFrame(true, 0, op, true, [4]byte{1, 2, 3, 4}, payload)
}

// readFirstServer runs Accept with opts and hands the result of the first Read
// (or of Accept) to the returned channel.
type firstRead struct {
	typ websocket.MessageType
	msg string
	err error
}

func readFirstServer(t *testing.T, opts *websocket.AcceptOptions) (addr string, res <-chan firstRead) {
	t.Helper()
	ch := make(chan firstRead, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			ch <- firstRead{err: fmt.Errorf("Accept: %w", err)}
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		typ, p, err := c.Read(ctx)
		ch <- firstRead{typ, string(p), err}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), ch
}

func waitFirstRead(t *testing.T, ch <-chan firstRead) firstRead {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(wireTimeout):
		t.Fatal("server handler did not finish")
		return firstRead{}
	}
}

// A first frame in the same write as the handshake request is
// not lost (it sits in net/http's bufio.Reader at hijack time).
func TestAcceptFirstFrameWithRequest(t *testing.T) {
	addr, res := readFirstServer(t, nil)
	nc, err := net.DialTimeout("tcp", addr, wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wireTimeout))
	req := request("GET", "HTTP/1.1")(addr)
	if _, err := nc.Write(append([]byte(req), maskedFrame(1, []byte("first"))...)); err != nil {
		t.Fatal(err)
	}
	r := waitFirstRead(t, res)
	if r.err != nil || r.msg != "first" {
		t.Fatalf("first message %q, %v; want \"first\"", r.msg, r.err)
	}
}

// A first frame that arrives with the 101 (one write) is kept.
func TestDialFirstFrameWith101(t *testing.T) {
	u, peers := fakeServer(t, func(w io.Writer, req *http.Request) {
		resp := fmt.Sprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(req.Header.Get("Sec-WebSocket-Key")))
		w.Write(append([]byte(resp), encodeFrame(true, 0, 1, false, [4]byte{}, []byte("hello"))...))
	})
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{MaxMessageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	<-peers
	// The limit is in force from the first frame: 5 bytes > 4.
	_, msg, err := c.Read(ctx)
	if !errors.Is(err, websocket.ErrMessageTooBig) {
		t.Fatalf("first frame with the 101: Read %q, %v; want ErrMessageTooBig", msg, err)
	}
}

// A frame that arrives while the handler runs before Accept (the
// server's background read holds its first byte) is not lost, and the
// read limit applies to a frame pipelined with the request.
func TestAcceptFrameBeforeHijack(t *testing.T) {
	ch := make(chan firstRead, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond) // the frame arrives meanwhile
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			ch <- firstRead{err: err}
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		typ, p, err := c.Read(ctx)
		ch <- firstRead{typ, string(p), err}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	nc, err := net.DialTimeout("tcp", addr, wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(wireTimeout))
	io.WriteString(nc, request("GET", "HTTP/1.1")(addr))
	time.Sleep(50 * time.Millisecond)
	nc.Write(maskedFrame(1, []byte("early")))
	r := waitFirstRead(t, ch)
	if r.err != nil || r.msg != "early" {
		t.Fatalf("frame sent before the hijack: %q, %v", r.msg, r.err)
	}

	addr2, res2 := readFirstServer(t, &websocket.AcceptOptions{MaxMessageSize: 4})
	nc2, err := net.DialTimeout("tcp", addr2, wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	_ = nc2.SetDeadline(time.Now().Add(wireTimeout))
	nc2.Write(append([]byte(request("GET", "HTTP/1.1")(addr2)), maskedFrame(1, []byte("hello"))...))
	if r := waitFirstRead(t, res2); !errors.Is(r.err, websocket.ErrMessageTooBig) {
		t.Fatalf("pipelined 5-byte frame with MaxMessageSize 4: %q, %v", r.msg, r.err)
	}
}
