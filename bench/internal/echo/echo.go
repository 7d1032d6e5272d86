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

	coder "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	wsrpc "github.com/wsrpc/wsrpc/runtime/websocket"
)

// Libs are the Go servers Serve knows, the ceiling last.
var Libs = []string{"wsrpc", "gorilla", "coder", "gws", "gobwas", "tcp"}

// maxMessage is the read limit every server gets: the scenarios send at
// most 64 KiB, and some libraries default to less (coder: 32 KiB).
const maxMessage = 1 << 20

// Supports reports whether lib has a server for the compressed scenario.
func Supports(lib string, deflate bool) bool {
	return !deflate || lib != "gobwas"
}

// Serve echoes on ln with lib's server until ln is closed.
func Serve(lib string, ln net.Listener, deflate bool) error {
	var h http.Handler
	switch lib {
	case "tcp":
		return serveTCP(ln)
	case "wsrpc":
		h = wsrpcHandler(deflate)
	case "gorilla":
		h = gorillaHandler(deflate)
	case "coder":
		h = coderHandler(deflate)
	case "gws":
		h = gwsHandler(deflate)
	case "gobwas":
		if deflate {
			return fmt.Errorf("gobwas: the comparison does not set up wsflate")
		}
		h = gobwasHandler()
	default:
		return fmt.Errorf("unknown lib %q", lib)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	return srv.Serve(ln)
}

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
			buf := make([]byte, 32<<10) // io.Copy's buffer size
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

// wsrpc: Accept, then ReadAppend into a reused buffer and Write (doc.go).
func wsrpcHandler(deflate bool) http.Handler {
	opts := &wsrpc.AcceptOptions{MaxMessageSize: maxMessage}
	if deflate {
		opts.Extensions = wsrpc.MustExtensionSet(wsrpc.PerMessageDeflate(&wsrpc.DeflateOptions{}))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsrpc.Accept(w, r, opts)
		if err != nil {
			return
		}
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
	})
}

// gorilla: NextReader/NextWriter with io.Copy, as in its autobahn server.
func gorillaHandler(deflate bool) http.Handler {
	up := gorilla.Upgrader{EnableCompression: deflate}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
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
	})
}

// coder: Reader/Writer with io.Copy, as in its echo example.
func coderHandler(deflate bool) http.Handler {
	opts := &coder.AcceptOptions{CompressionMode: coder.CompressionDisabled}
	if deflate {
		opts.CompressionMode = coder.CompressionContextTakeover
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := coder.Accept(w, r, opts)
		if err != nil {
			return
		}
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
	})
}

// gws: event-driven, an Upgrader in a net/http handler and ReadLoop in a
// goroutine (its README's "best practice").
type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}

func gwsHandler(deflate bool) http.Handler {
	up := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{
		ReadMaxPayloadSize: maxMessage,
		PermessageDeflate: gws.PermessageDeflate{
			Enabled:               deflate,
			ServerContextTakeover: true,
			ClientContextTakeover: true,
		},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go socket.ReadLoop()
	})
}

// gobwas: UpgradeHTTP, then the README's middle-level loop (wsutil.Reader
// NextFrame, wsutil.Writer Reset, io.Copy, Flush), reading through the
// hijacked bufio.Reader rather than one system call per header field.
func gobwasHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
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
	})
}
