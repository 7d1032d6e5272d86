// Package echo holds one echo server per WebSocket library, each written
// the way that library's documentation recommends, and a raw TCP echo of the
// same bytes (the ceiling of what any WebSocket server can do).
package echo

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	wsrpc "github.com/wsrpc/wsrpc/runtime/websocket"
)

// Libs are the Go servers Serve knows, the ceilings last. wsrpc is the
// server its documentation recommends (a Poller reads the connections);
// wsrpc-busy is the same with PollerOptions.BusyPoll on, a setting that
// trades a core for latency and is shown beside the default, never as it.
// wsrpc-loop is the other way to use it, a read loop per connection.
// wsrpc-nolinger is wsrpc with PollerOptions.Linger off, the Poller as it
// was before its workers lingered on busy connections, run when asked
// for (bench/run.sh's LIBS) to measure what lingering does. tcp
// is raw TCP over the Go runtime's poller, the ceiling of a
// readiness-based server and the yardstick of every run; tcp-uring is raw
// TCP over io_uring (Linux), the ceiling of a completion-based one, run
// when asked for (bench/run.sh's LIBS).
var Libs = []string{"wsrpc", "wsrpc-busy", "wsrpc-loop", "wsrpc-nolinger", "gorilla", "coder", "gws", "gobwas", "tcp", "tcp-uring"}

// BusyPoll is wsrpc-busy's PollerOptions.BusyPoll: a little longer than
// a one-connection round trip on the reference machine (60–250µs), so a
// connection waiting for its next message finds the poller awake.
const BusyPoll = 300 * time.Microsecond

// maxMessage is the read limit every server gets: the scenarios send at
// most 64 KiB, and some libraries default to less (coder: 32 KiB).
const maxMessage = 1 << 20

// Options select the server's variant.
type Options struct {
	// Deflate negotiates permessage-deflate, with context takeover where
	// the library has it.
	Deflate bool
	// Handoff serves each connection from a new goroutine and returns from
	// the HTTP handler, so net/http frees what it holds for the request
	// (buffers, request, response writer, a stack grown by the handshake).
	// gws always works this way; the others loop inside the handler by
	// default, as their examples do.
	Handoff bool
}

// Supports reports whether lib has a server for the compressed scenario.
func Supports(lib string, deflate bool) bool {
	return !deflate || lib != "gobwas"
}

// upgrader upgrades a request and returns the echo loop for the new
// connection, or nil if the upgrade failed (the library answered).
type upgrader func(w http.ResponseWriter, r *http.Request) (loop func())

// Serve echoes on ln with lib's server until ln is closed.
func Serve(lib string, ln net.Listener, o Options) error {
	var up upgrader
	switch lib {
	case "tcp":
		return serveTCP(ln)
	case "tcp-uring":
		return serveTCPUring(ln)
	case "wsrpc":
		return serveWsrpcPoller(ln, o.Deflate, nil)
	case "wsrpc-busy":
		return serveWsrpcPoller(ln, o.Deflate, &wsrpc.PollerOptions{BusyPoll: BusyPoll})
	case "wsrpc-nolinger":
		return serveWsrpcPoller(ln, o.Deflate, &wsrpc.PollerOptions{Linger: -1})
	case "wsrpc-loop":
		up = wsrpcUpgrader(o.Deflate)
	case "gorilla":
		up = gorillaUpgrader(o.Deflate)
	case "coder":
		up = coderUpgrader(o.Deflate)
	case "gws":
		up = gwsUpgrader(o.Deflate)
	case "gobwas":
		if o.Deflate {
			return fmt.Errorf("gobwas: the comparison does not set up wsflate")
		}
		up = gobwasUpgrader()
	default:
		return fmt.Errorf("unknown lib %q", lib)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loop := up(w, r)
		if loop == nil {
			return
		}
		if o.Handoff {
			go loop()
			return
		}
		loop()
	})
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	return srv.Serve(ln)
}

// echoBufSize is the raw TCP echoes' buffer: io.Copy's size.
const echoBufSize = 32 << 10

// serveTCP echoes bytes as they come, one goroutine per connection: the
// least any WebSocket server can do with the same framed bytes.
func serveTCP(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, echoBufSize)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// wsrpc-loop: Accept, then ReadAppend into a reused buffer and Write, in
// the handler or (Handoff) in a goroutine of its own (doc.go).
func wsrpcUpgrader(deflate bool) upgrader {
	opts := wsrpcAcceptOptions(deflate)
	return func(w http.ResponseWriter, r *http.Request) func() {
		c, err := wsrpc.Accept(w, r, opts)
		if err != nil {
			return nil
		}
		return func() {
			defer c.CloseNow()
			ctx := context.Background()
			var buf []byte
			for {
				typ, msg, err := c.ReadAppend(ctx, buf[:0])
				if err != nil {
					return
				}
				buf = msg
				if err := c.Write(ctx, typ, msg); err != nil {
					return
				}
			}
		}
	}
}

// wsrpcAcceptOptions: the read limit every server gets and, for the
// compressed scenario, permessage-deflate with context takeover.
func wsrpcAcceptOptions(deflate bool) *wsrpc.AcceptOptions {
	opts := &wsrpc.AcceptOptions{MaxMessageSize: maxMessage}
	if deflate {
		opts.Extensions = wsrpc.MustExtensionSet(wsrpc.PerMessageDeflate(&wsrpc.DeflateOptions{}))
	}
	return opts
}

// wsrpc: the handler accepts, hands the connection to a Poller and
// returns; the poller reads each connection only when it has input and
// calls OnMessage, which writes the echo (docs/websocket.md, "Many
// connections"). Handoff changes nothing here: the handler always returns.
func serveWsrpcPoller(ln net.Listener, deflate bool, popts *wsrpc.PollerOptions) error {
	p, err := wsrpc.NewPoller(popts)
	if err != nil {
		return err
	}
	defer p.Close()
	opts := wsrpcAcceptOptions(deflate)
	h := wsrpc.HandlerFuncs{Message: func(c *wsrpc.Conn, typ wsrpc.MessageType, msg []byte) {
		_ = c.Write(context.Background(), typ, msg)
	}}
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsrpc.Accept(w, r, opts)
		if err != nil {
			return
		}
		if err := p.Serve(c, h); err != nil {
			c.CloseNow()
		}
	})}
	return srv.Serve(ln)
}

// gorilla: NextReader/NextWriter with io.Copy, as in its autobahn server.
func gorillaUpgrader(deflate bool) upgrader {
	up := gorilla.Upgrader{EnableCompression: deflate}
	return func(w http.ResponseWriter, r *http.Request) func() {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return nil
		}
		return func() {
			defer c.Close()
			c.SetReadLimit(maxMessage)
			for {
				typ, rd, err := c.NextReader()
				if err != nil {
					return
				}
				wr, err := c.NextWriter(typ)
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
	}
}

// coder: Reader/Writer with io.Copy, as in its echo example.
func coderUpgrader(deflate bool) upgrader {
	opts := &coder.AcceptOptions{CompressionMode: coder.CompressionDisabled}
	if deflate {
		opts.CompressionMode = coder.CompressionContextTakeover
	}
	return func(w http.ResponseWriter, r *http.Request) func() {
		c, err := coder.Accept(w, r, opts)
		if err != nil {
			return nil
		}
		return func() {
			defer c.CloseNow()
			c.SetReadLimit(maxMessage)
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
	}
}

// gws: event-driven, an Upgrader in a net/http handler and ReadLoop in a
// goroutine (its README's "best practice"; the handler always returns).
type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}

func gwsUpgrader(deflate bool) upgrader {
	up := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{
		ReadMaxPayloadSize: maxMessage,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               deflate,
			ServerContextTakeover: true,
			ClientContextTakeover: true,
		},
	})
	return func(w http.ResponseWriter, r *http.Request) func() {
		socket, err := up.Upgrade(w, r)
		if err != nil {
			return nil
		}
		go socket.ReadLoop()
		return nil
	}
}

// gobwas: UpgradeHTTP, then the README's middle-level loop (wsutil.Reader
// NextFrame, wsutil.Writer Reset, io.Copy, Flush), reading through the
// hijacked bufio.Reader rather than one system call per header field.
func gobwasUpgrader() upgrader {
	return func(w http.ResponseWriter, r *http.Request) func() {
		conn, rw, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return nil
		}
		return func() {
			defer conn.Close()
			var src io.Reader = conn
			if rw != nil && rw.Reader != nil {
				src = rw.Reader
			}
			state := ws.StateServerSide
			reader := &wsutil.Reader{
				Source:         src,
				State:          state,
				MaxFrameSize:   maxMessage,
				OnIntermediate: wsutil.ControlFrameHandler(conn, state),
			}
			writer := wsutil.NewWriter(conn, state, ws.OpBinary)
			for {
				hdr, err := reader.NextFrame()
				if err != nil {
					return
				}
				if hdr.OpCode.IsControl() {
					if hdr.OpCode == ws.OpClose {
						return
					}
					if err := wsutil.ControlFrameHandler(conn, state)(hdr, reader); err != nil {
						return
					}
					continue
				}
				writer.Reset(conn, state, hdr.OpCode)
				if _, err := io.Copy(writer, reader); err != nil {
					return
				}
				if err := writer.Flush(); err != nil {
					return
				}
			}
		}
	}
}
