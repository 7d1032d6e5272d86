// Command chat is the wsrpc demo: a chat with rooms, served from one
// generated service (examples.chat.v1.ChatService) and a page that talks
// to it with the browser's own WebSocket and EventSource.
//
//	go run ./examples/chat                 # http://localhost:8080
//	go run ./examples/chat -addr :9000 -nats nats://127.0.0.1:4222
//
// Each member's session is a WebSocket (ChatService.Chat, protojson over
// "wsrpc.json" from the page; protobuf or msgpack from the Go client in
// ./client); each room's activity feed is Server-Sent Events
// (ChatService.Watch) with ids, so a reconnecting EventSource resumes
// where it stopped. Both are fed by one runtime/hub topic per room, on an
// in-process broker, or on NATS with -nats so that several processes
// share the rooms.
//
// It prints "listening on http://ADDR" once the port is bound and exits
// cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsrpc/wsrpc"
	"github.com/wsrpc/wsrpc/examples/chat/chatserver"
	"github.com/wsrpc/wsrpc/runtime/hub"
)

// static is the page: HTML, one script, one stylesheet; nothing loaded
// from elsewhere.
//
//go:embed static
var static embed.FS

// config is what the flags set.
type config struct {
	Addr    string // host:port to listen on
	NATSURL string // NATS server URL; "" for the in-process broker
	NodeID  string // hub node id; "" for a random one
}

func main() {
	var cfg config
	flag.StringVar(&cfg.Addr, "addr", "localhost:8080", "`host:port` to listen on")
	flag.StringVar(&cfg.NATSURL, "nats", "", "NATS server `URL`: share rooms with other chat processes on it (default: in-process only)")
	flag.StringVar(&cfg.NodeID, "node", "", "this process's node `id` in event ids (default: random)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the page and the chat service on cfg.Addr until ctx is done,
// then shuts down: chat sessions are closed with CodeUnavailable, SSE
// feeds end without an end event (so browsers reconnect, to this server
// once it is back or to another node), and the broker is left. It writes
// "listening on http://ADDR" to out once the port is bound, so a caller
// using port 0 learns the address; failures with no caller to return to
// are logged to out.
func run(ctx context.Context, cfg config, out io.Writer) error {
	logger := log.New(out, "chat: ", log.LstdFlags)
	var broker hub.Broker // nil: hub.New makes an in-process one
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("wsrpc-chat"), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("connect to NATS: %w", err)
		}
		defer nc.Close()
		nb, err := hub.NewNATSBroker(nc, &hub.NATSOptions{OnStatus: func(s hub.BrokerStatus) {
			logger.Printf("NATS connected=%v %v", s.Connected, s.Err)
		}})
		if err != nil {
			return err
		}
		defer nb.Close()
		broker = nb
	}
	h, err := hub.New(broker, &hub.Options{
		NodeID:  cfg.NodeID,
		OnError: func(topic string, err error) { logger.Printf("%s: %v", topic, err) },
	})
	if err != nil {
		return err
	}
	defer h.Close()
	svc := chatserver.New(h, &chatserver.Options{Logger: logger})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	page, _ := fs.Sub(static, "static") // the directory is embedded: cannot fail
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(page))
	mux.Handle(svc.Handler())

	// Requests' contexts derive from base: cancelling it ends the SSE
	// feeds, which Shutdown would otherwise wait for.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	// Header limits and idle timeout as docs/security.md recommends.
	srv := wsrpc.NewHTTPServer(mux)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.ErrorLog = logger
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		svc.Close()
		return err
	case <-ctx.Done():
	}
	svc.Close() // chat sessions: close handshakes, bounded by the close timeout
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
