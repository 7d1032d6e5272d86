// Command echo is a WebSocket echo server: every text and binary message
// sent to ws://ADDR/echo comes back unchanged, as the same type.
//
//	go run ./examples/echo -addr 127.0.0.1:8080
//
// It prints "listening on ws://ADDR/echo" once the port is bound and exits
// cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// maxMessageSize bounds one echoed message. Messages are streamed, not
// buffered, so the limit is about what a client may send, not memory.
const maxMessageSize = 64 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "`host:port` to listen on")
	deflate := flag.Bool("deflate", true, "accept permessage-deflate when a client offers it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *deflate, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the echo endpoint on addr until ctx is done, then shuts down
// gracefully: open sessions get a 1001 close frame and a few seconds to
// finish their closing handshake. It writes the listening line to out once
// the port is bound, so a caller using port 0 learns the address. With
// deflate, sessions accept permessage-deflate (RFC 7692) when offered, as
// every browser does.
func run(ctx context.Context, addr string, deflate bool, out io.Writer) error {
	opts := &websocket.AcceptOptions{
		// Any web page may connect: the echo server holds no user data and
		// acts on no cookies, so cross-site WebSocket hijacking gains an
		// attacker nothing here. A real service uses OriginPatterns.
		InsecureSkipOriginCheck: true,
		MaxMessageSize:          maxMessageSize,
		// Drop peers that vanish without closing.
		PingInterval: 30 * time.Second,
	}
	if deflate {
		opts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// sessions counts echo handlers: Shutdown does not wait for hijacked
	// connections, so run does.
	var sessions sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		sessions.Add(1)
		defer sessions.Done()
		echo(ctx, w, r, opts)
	})
	srv := &http.Server{
		Handler: mux,
		// The WebSocket handshake is one small GET: bound how long and how
		// much a client may take to send it. Hijacked connections are not
		// subject to these.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	fmt.Fprintf(out, "listening on ws://%s/echo\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	// Each session closes itself once ctx is done (bounded by the close
	// timeout); wait for them so the process exits with its sessions closed.
	sessions.Wait()
	return err
}

// shutdownTimeout bounds waiting for plain HTTP requests on shutdown.
const shutdownTimeout = 5 * time.Second

// echo accepts a WebSocket and sends every message back, streaming it from
// the Reader into a Writer so a large message is never held in memory.
// When stop is done it closes the session with 1001 (going away).
func echo(stop context.Context, w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) {
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		return // Accept has written the HTTP error
	}
	defer c.CloseNow()
	// Close from another goroutine: the loop below is blocked reading, and
	// it ends when the client's close reply arrives.
	unregister := context.AfterFunc(stop, func() {
		c.Close(websocket.StatusGoingAway, "server shutting down")
	})
	defer unregister()
	// Reads are not tied to stop: cancelling a read would drop the
	// connection without the closing handshake.
	ctx := context.Background()
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return
		}
		wr, err := c.Writer(ctx, typ)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}
