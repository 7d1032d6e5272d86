package websocket_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// hijackSpy passes Hijack on and keeps what it returned.
type hijackSpy struct {
	http.ResponseWriter
	brw *bufio.ReadWriter
}

func (w *hijackSpy) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.brw = brw
	return nc, brw, err
}

// Accept gives back the 4 KiB buffers of the bufio.ReadWriter Hijack
// returned, which net/http's connection, kept reachable by the goroutine
// running ServeHTTP, still points at: a handler that serves the
// WebSocket inside ServeHTTP kept them for the connection's life. Both
// are replaced by minimal ones with nothing buffered, and a frame that
// came with the request (in that reader at hijack time) is still the
// first message.
func TestAcceptReleasesHijackBuffers(t *testing.T) {
	type result struct {
		rsize, wsize, buffered int
		msg                    string
		err                    error
	}
	ch := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spy := &hijackSpy{ResponseWriter: w}
		c, err := websocket.Accept(spy, r, nil)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer c.CloseNow()
		res := result{rsize: spy.brw.Reader.Size(), wsize: spy.brw.Writer.Size(), buffered: spy.brw.Reader.Buffered()}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, p, err := c.Read(ctx)
		res.msg, res.err = string(p), err
		ch <- res
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
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
	var res result
	select {
	case res = <-ch:
	case <-time.After(wireTimeout):
		t.Fatal("server handler did not finish")
	}
	if res.err != nil || res.msg != "first" {
		t.Fatalf("first message %q, %v; want \"first\"", res.msg, res.err)
	}
	if res.rsize > 16 || res.wsize > 16 || res.buffered != 0 {
		t.Fatalf("after Accept the hijacked reader holds %d bytes (%d buffered) and the writer %d; want at most 16 each, nothing buffered",
			res.rsize, res.buffered, res.wsize)
	}
}
