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
// Event ids are "<node>-<seq>". The node id is random, or with -node the
// name given plus a short random suffix drawn at each start ("-node a"
// gives "a.3f9c2e"): a restarted process numbers its events from 1 again,
// so it must be a new node, or the other nodes would drop its events as
// repeats of the old process's.
//
// It prints "listening on http://ADDR" once the port is bound and exits
// cleanly on SIGINT or SIGTERM, the way docs/reliability.md describes
// (wsrpc.WithTracker, wsrpc.Shutdown with the hub): members are told
// 1001 (going away), which a client with wsrpc.WithReconnect takes for a
// reason to reconnect — in a deployment of several nodes behind one
// address, to another node — and feeds end without an end event, so
// browsers reconnect and resume. The connection of a client that stopped
// reading is cut after 5 s rather than waited for.
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
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
	NodeID  string // hub node id before its per-start suffix; "" for a random one
}

// shutdownGrace bounds the shutdown (wsrpc.Shutdown's deadline). A
// healthy client's session or request (a member's closing handshake, a
// page asset, a feed's last write) ends in milliseconds; one still
// running after 5 s belongs to a client that stopped reading, which would
// hold an SSE write for its whole 10 s write timeout. Waiting that out
// would only delay the exit, so run closes such connections instead.
const shutdownGrace = 5 * time.Second

// nodeSuffixLen is the length of the random suffix startNodeID adds: a
// dot and 6 hex digits, short enough to keep ids readable, with a chance
// of 1 in 16 million that a restart draws the previous start's suffix.
const nodeSuffixLen = 7

// startNodeID returns the hub node id for this start: "" (a random id,
// chosen by the hub) or name with a random suffix, "a" becoming
// "a.3f9c2e". Every start must be a new node (docs/hub.md): a restarted
// process numbers its messages from 1 again, and the other nodes would
// drop them as repeats of the previous process's for up to an hour.
func startNodeID(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if limit := 64 - nodeSuffixLen; len(name) > limit { // hub node ids: at most 64 bytes
		return "", fmt.Errorf("node id %q: at most %d bytes (a random suffix is added)", name, limit)
	}
	var b [(nodeSuffixLen - 1) / 2]byte
	rand.Read(b[:]) // crypto/rand: never fails
	return name + "." + hex.EncodeToString(b[:]), nil
}

func main() {
	var cfg config
	flag.StringVar(&cfg.Addr, "addr", "localhost:8080", "`host:port` to listen on")
	flag.StringVar(&cfg.NATSURL, "nats", "", "NATS server `URL`: share rooms with other chat processes on it (default: in-process only)")
	flag.StringVar(&cfg.NodeID, "node", "", "this process's node `id` in event ids, with a random suffix new at each start (\"a\" becomes \"a.3f9c2e\"; default: random)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the page and the chat service on cfg.Addr until ctx is done,
// then shuts down with wsrpc.Shutdown, the service's handlers tracked and
// the hub given: chat sessions are closed with 1001 (going away), SSE
// feeds end without an end event (so browsers reconnect, to this server
// once it is back or to another node), the hub's rooms close alongside,
// connections still open after shutdownGrace (clients that stopped
// reading) are closed, which is no error, and the broker is left. The
// departures of the members it closes are not published once the rooms
// have closed; other nodes see those members join again as they
// reconnect there. It writes
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
	node, err := startNodeID(cfg.NodeID)
	if err != nil {
		return err
	}
	h, err := hub.New(broker, &hub.Options{
		NodeID:  node,
		OnError: func(topic string, err error) { logger.Printf("%s: %v", topic, err) },
	})
	if err != nil {
		return err
	}
	defer h.Close()
	svc := chatserver.New(h, &chatserver.Options{Logger: logger})
	tracker := wsrpc.NewTracker()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	page, _ := fs.Sub(static, "static") // the directory is embedded: cannot fail
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(page))
	mux.Handle(svc.Handler(wsrpc.WithTracker(tracker)))

	// Header limits and idle timeout as docs/security.md recommends.
	srv := wsrpc.NewHTTPServer(mux)
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = wsrpc.Shutdown(shutdownCtx, srv, tracker, h)
	svc.Close() // no session is left; stops the rooms' idle timers
	if errors.Is(err, context.DeadlineExceeded) {
		// What was left is a client that stopped reading, now cut; the
		// shutdown was asked for, so that is no failure.
		logger.Printf("shutdown: cut the connections still open after %v (clients that stopped reading)", shutdownGrace)
		err = nil
	}
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
