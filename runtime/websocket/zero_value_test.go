package websocket_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestZeroPoller checks that a Poller not created with NewPoller fails at
// once instead of hanging: its Close waited for a dispatcher that never
// started (for ever on Linux), and its Serve took the connection and
// failed it on an epoll descriptor it never opened. Each method now
// returns an error wrapping ErrPollerClosed, and Serve leaves the
// connection as it was.
func TestZeroPoller(t *testing.T) {
	server, client := afterClosePair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var p websocket.Poller
	calls := []struct {
		name string
		call func() error
	}{
		{"Serve", func() error {
			return p.Serve(server, websocket.HandlerFuncs{
				Message: func(*websocket.Conn, websocket.MessageType, []byte) { t.Error("zero Poller called OnMessage") },
				Close:   func(*websocket.Conn, error) { t.Error("zero Poller called OnClose") },
			})
		}},
		{"Close", p.Close},
		{"Shutdown", func() error { return p.Shutdown(ctx) }},
		{"Close again", p.Close},
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, websocket.ErrPollerClosed) || !strings.Contains(err.Error(), "NewPoller") {
				t.Fatalf("zero Poller: %s = %v; want an error wrapping ErrPollerClosed that names NewPoller", c.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("zero Poller: %s did not return", c.name)
		}
	}
	// The connection was left alone: its own reads still work.
	if err := client.Write(ctx, websocket.MessageText, []byte("still mine")); err != nil {
		t.Fatal(err)
	}
	typ, msg, err := server.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(msg) != "still mine" {
		t.Fatalf("server Read after a refused Serve: %v %q %v", typ, msg, err)
	}
}

// TestZeroConn calls each exported method of a Conn not created with
// Accept or Dial: Close panicked on the nil socket (or in its close
// timer's goroutine, which crashes the process), CloseNow closed a nil
// channel, Ping, LocalAddr and RemoteAddr dereferenced nil, the reads and
// writes waited for ever on nil semaphores, AfterClose's f never ran, and
// ReadFrame and WriteFrame blamed the mode. Each now returns at once: an
// error wrapping ErrClosed that names Accept and Dial, or a zero result.
func TestZeroConn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pm, err := websocket.NewPreparedMessage(websocket.MessageText, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	afterClose := make(chan error, 1)
	calls := []struct {
		name   string
		call   func(c *websocket.Conn) error
		result bool // the call returns no error: call checks its zero result
	}{
		{"Read", func(c *websocket.Conn) error { _, _, err := c.Read(ctx); return err }, false},
		{"ReadAppend", func(c *websocket.Conn) error { _, _, err := c.ReadAppend(ctx, nil); return err }, false},
		{"Reader", func(c *websocket.Conn) error { _, _, err := c.Reader(ctx); return err }, false},
		{"ReadFrame", func(c *websocket.Conn) error { _, err := c.ReadFrame(ctx, nil); return err }, false},
		{"Write", func(c *websocket.Conn) error { return c.Write(ctx, websocket.MessageText, []byte("x")) }, false},
		{"Writer", func(c *websocket.Conn) error { _, err := c.Writer(ctx, websocket.MessageText); return err }, false},
		{"WritePrepared", func(c *websocket.Conn) error { return c.WritePrepared(ctx, pm) }, false},
		{"WriteFrame", func(c *websocket.Conn) error {
			return c.WriteFrame(ctx, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpText}})
		}, false},
		{"Ping", func(c *websocket.Conn) error { return c.Ping(ctx) }, false},
		{"AfterClose", func(c *websocket.Conn) error {
			if stop := c.AfterClose(func(err error) { afterClose <- err }); stop() {
				t.Error("AfterClose: stop reported f unregistered before it ran")
			}
			select {
			case err := <-afterClose:
				return err
			case <-ctx.Done():
				return errors.New("AfterClose: f did not run")
			}
		}, false},
		{"Close", func(c *websocket.Conn) error { return c.Close(websocket.StatusNormalClosure, "") }, false},
		{"CloseNow", (*websocket.Conn).CloseNow, false},
		{"Subprotocol", func(c *websocket.Conn) error {
			if p := c.Subprotocol(); p != "" {
				t.Errorf("Subprotocol: %q", p)
			}
			return nil
		}, true},
		{"LocalAddr", func(c *websocket.Conn) error {
			if a := c.LocalAddr(); a != nil {
				t.Errorf("LocalAddr: %v, want nil", a)
			}
			return nil
		}, true},
		{"RemoteAddr", func(c *websocket.Conn) error {
			if a := c.RemoteAddr(); a != nil {
				t.Errorf("RemoteAddr: %v, want nil", a)
			}
			return nil
		}, true},
		{"NetConn", func(c *websocket.Conn) error {
			if nc := c.NetConn(); nc != nil {
				t.Errorf("NetConn: %v, want nil", nc)
			}
			return nil
		}, true},
		{"Extensions", func(c *websocket.Conn) error {
			if e := c.Extensions(); len(e) != 0 {
				t.Errorf("Extensions: %v", e)
			}
			return nil
		}, true},
		{"Extension", func(c *websocket.Conn) error {
			if _, ok := c.Extension("permessage-deflate"); ok {
				t.Error("Extension: found one")
			}
			return nil
		}, true},
		{"ControlSeen", func(c *websocket.Conn) error {
			if c.ControlSeen() {
				t.Error("ControlSeen: true")
			}
			return nil
		}, true},
		{"Stats", func(c *websocket.Conn) error {
			if s := c.Stats(); s != (websocket.ConnStats{}) {
				t.Errorf("Stats: %+v", s)
			}
			return nil
		}, true},
	}
	for _, zero := range []struct {
		name string
		conn func() *websocket.Conn
	}{
		{"new", func() *websocket.Conn { return new(websocket.Conn) }},
		// One zero Conn through every call, so each finds what the calls
		// before it left.
		{"shared", func() func() *websocket.Conn {
			var c websocket.Conn
			return func() *websocket.Conn { return &c }
		}()},
	} {
		for _, c := range calls {
			t.Run(zero.name+"/"+c.name, func(t *testing.T) {
				done := make(chan error, 1)
				go func() { done <- c.call(zero.conn()) }()
				select {
				case err := <-done:
					if c.result {
						return // checked by call
					}
					if !errors.Is(err, websocket.ErrClosed) || !strings.Contains(err.Error(), "Accept or Dial") {
						t.Fatalf("%s = %v; want an error wrapping ErrClosed that names Accept or Dial", c.name, err)
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("%s did not return", c.name)
				}
			})
		}
	}
}

// TestPollerServeZeroConn hands a Conn not created with Accept or Dial to a
// Poller: its worker's first read failed, and failing the connection
// closed its nil channel on the worker's goroutine, which crashed the
// process. Serve now refuses it with the zero Conn's error, calls nothing
// of the Handler's, and leaves nothing for Close to wait for.
func TestPollerServeZeroConn(t *testing.T) {
	p, err := websocket.NewPoller(nil)
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan string, 2)
	err = p.Serve(new(websocket.Conn), websocket.HandlerFuncs{
		Message: func(*websocket.Conn, websocket.MessageType, []byte) { called <- "OnMessage" },
		Close:   func(*websocket.Conn, error) { called <- "OnClose" },
	})
	if !errors.Is(err, websocket.ErrClosed) || !strings.Contains(err.Error(), "Accept or Dial") {
		t.Errorf("Serve(zero Conn) = %v; want an error wrapping ErrClosed that names Accept or Dial", err)
	}
	// Close returns once every served connection's OnClose has run: none
	// was taken, so nothing was called.
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case name := <-called:
		t.Fatalf("Serve(zero Conn) called %s", name)
	default:
	}
}
