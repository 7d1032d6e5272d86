package websocket_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// An echo server whose handler accepts, starts the connection's read loop
// on a goroutine of its own and returns, and a client that dials it. The
// loop reads with a context of its own: net/http cancels r.Context() once
// the handler returns, which would fail the read and close the connection.
func ExampleAccept() {
	ctx := context.Background() // a real server's base context
	done := make(chan websocket.StatusCode, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept answered with 4xx and a short reason
		}
		go func() {
			defer c.CloseNow()
			for {
				typ, msg, err := c.Read(ctx)
				if err != nil {
					done <- websocket.CloseStatus(err) // 1000: the client closed
					return
				}
				if err := c.Write(ctx, typ, msg); err != nil {
					return
				}
			}
		}()
	}))
	defer srv.Close()

	c, _, err := websocket.Dial(ctx, srv.URL, nil) // http:// is ws:// here
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	typ, msg, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(typ, string(msg))
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		log.Fatal(err)
	}
	code := <-done
	fmt.Printf("server saw %d (%v)\n", code, code)
	// Output:
	// text hello
	// server saw 1000 (normal closure)
}

// A server with many connections hands each one to a Poller, which reads
// it only when input arrives: an idle connection holds no goroutine.
func ExamplePoller() {
	p, err := websocket.NewPoller(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	closed := make(chan error, 1)
	h := websocket.HandlerFuncs{
		Message: func(c *websocket.Conn, typ websocket.MessageType, msg []byte) {
			_ = c.Write(context.Background(), typ, msg) // msg is valid until Message returns
		},
		Close: func(c *websocket.Conn, err error) { closed <- err },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		if err := p.Serve(c, h); err != nil {
			c.CloseNow() // the poller is closed
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		log.Fatal(err)
	}
	typ, msg, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(typ, msg)
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("OnClose:", websocket.CloseStatus(<-closed))
	// Output:
	// binary [1 2 3]
	// OnClose: normal closure
}
