package websocket_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// countingConn counts bytes read from the wire.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingDial dials TCP and counts the bytes read into n.
func countingDial(n *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{nc, n}, nil
	}
}

// deflateEcho starts an echo server with permessage-deflate configured by
// sopts and returns its ws:// URL.
func deflateEcho(t testing.TB, sopts *websocket.DeflateOptions, maxMsg int64) string {
	t.Helper()
	set := websocket.MustExtensionSet(websocket.PerMessageDeflate(sopts))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Extensions: set, MaxMessageSize: maxMsg})
		if err != nil {
			return
		}
		defer c.CloseNow()
		var buf []byte
		for {
			typ, p, err := c.ReadAppend(r.Context(), buf[:0])
			if err != nil {
				return
			}
			buf = p
			if err := c.Write(r.Context(), typ, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func jsonLike(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"user":"user%d","room":"general","text":"message number %d","ts":%d},`, r.IntN(50), r.IntN(1000), 1700000000+r.IntN(100000))
	}
	return b.Bytes()[:n]
}

func TestDeflateEchoModes(t *testing.T) {
	modes := []struct {
		name   string
		server websocket.DeflateOptions
		client websocket.DeflateOptions
		params websocket.DeflateParams // client's view
	}{
		{"context-takeover", websocket.DeflateOptions{}, websocket.DeflateOptions{},
			websocket.DeflateParams{WriteContextTakeover: true, ReadContextTakeover: true, WriteWindowBits: 15, ReadWindowBits: 15}},
		{"server-no-context", websocket.DeflateOptions{ServerNoContextTakeover: true}, websocket.DeflateOptions{},
			websocket.DeflateParams{WriteContextTakeover: true, ReadContextTakeover: false, WriteWindowBits: 15, ReadWindowBits: 15}},
		{"client-asks-no-context", websocket.DeflateOptions{}, websocket.DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true},
			websocket.DeflateParams{WriteContextTakeover: false, ReadContextTakeover: false, WriteWindowBits: 15, ReadWindowBits: 15}},
		{"small-windows", websocket.DeflateOptions{ServerMaxWindowBits: 10}, websocket.DeflateOptions{ClientMaxWindowBits: 9},
			websocket.DeflateParams{WriteContextTakeover: true, ReadContextTakeover: true, WriteWindowBits: 9, ReadWindowBits: 10}},
		{"window-8", websocket.DeflateOptions{}, websocket.DeflateOptions{ServerMaxWindowBits: 8, ClientMaxWindowBits: 8},
			websocket.DeflateParams{WriteContextTakeover: true, ReadContextTakeover: true, WriteWindowBits: 8, ReadWindowBits: 8}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			url := deflateEcho(t, &m.server, 0)
			ctx := context.Background()
			c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
				Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(&m.client)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			t.Logf("answer: %s", resp.Header.Get("Sec-WebSocket-Extensions"))
			ne, ok := c.Extension("permessage-deflate")
			if !ok {
				t.Fatal("permessage-deflate not negotiated")
			}
			if got := ne.Session.(*websocket.DeflateSession).Params(); got != m.params {
				t.Fatalf("params = %+v, want %+v", got, m.params)
			}
			r := rand.New(rand.NewPCG(1, 2))
			for _, n := range []int{0, 1, 100, 127, 128, 129, 1000, 4095, 4096, 40000, 70000, 1 << 20} {
				for _, kind := range []string{"json", "random"} {
					msg := jsonLike(r, n)
					if kind == "random" {
						for i := range msg {
							msg[i] = byte(r.Uint32())
						}
					}
					typ := websocket.MessageBinary
					if kind == "json" {
						typ = websocket.MessageText
					}
					if err := c.Write(ctx, typ, msg); err != nil {
						t.Fatal(err)
					}
					gt, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("%s %d: %v", kind, n, err)
					}
					if gt != typ || !bytes.Equal(got, msg) {
						t.Fatalf("%s %d: echo differs", kind, n)
					}
				}
			}
			// Streaming writer: fragments, RSV1 on the first only.
			w, err := c.Writer(ctx, websocket.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			want := jsonLike(r, 200000)
			for p := want; len(p) > 0; {
				k := min(len(p), 1+r.IntN(9000))
				if _, err := w.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("streamed echo: %v", err)
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDeflateContextTakeoverRatio shows context takeover at work: a stream
// of similar messages costs far fewer bytes on the wire with it.
func TestDeflateContextTakeoverRatio(t *testing.T) {
	ratio := func(opts websocket.DeflateOptions) float64 {
		url := deflateEcho(t, &opts, 0)
		var wire atomic.Int64
		ctx := context.Background()
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
			Extensions:     websocket.MustExtensionSet(websocket.PerMessageDeflate(nil)),
			NetDialContext: countingDial(&wire),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		r := rand.New(rand.NewPCG(3, 4))
		payload := 0
		start := int64(-1)
		for i := 0; i < 200; i++ {
			msg := jsonLike(r, 1024)
			if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
				t.Fatal("echo differs", err)
			}
			if start < 0 {
				start = wire.Load() // skip the handshake response and first message
				continue
			}
			payload += len(msg)
		}
		return float64(wire.Load()-start) / float64(payload)
	}
	with := ratio(websocket.DeflateOptions{})
	without := ratio(websocket.DeflateOptions{ServerNoContextTakeover: true})
	t.Logf("server->client bytes per payload byte: context takeover %.3f, none %.3f", with, without)
	if with >= without*0.85 {
		t.Fatalf("context takeover ratio %.3f not clearly better than %.3f", with, without)
	}
	if with > 0.32 {
		t.Fatalf("context takeover ratio %.3f above 0.32", with)
	}
}

// TestWriterConcurrentWithWriteDeflate guards the release of the message
// lock by Writer's Close on a permessage-deflate connection (RFC 7692)
// that other goroutines write on at the same time, as the Concurrency
// contract allows. Close used to release the lock deep in the chain
// (messageWriter.Close) and the extension writer above it then read and
// closed the shared writer state that the next message had already set
// up: under -race a data race, without it now and then a nil buffer given
// back to the pool (a panic) or a stranger's message ended early. Every
// message must arrive whole and in its writer's order, with and without
// context takeover (the compressor kept, or pooled per message).
func TestWriterConcurrentWithWriteDeflate(t *testing.T) {
	const writers, perWriter = 4, 300
	// Compressible, above the 128-byte threshold, and telling who sent it.
	msg := func(g, i int) []byte {
		return fmt.Appendf(nil, "%d %d %s", g, i, strings.Repeat(fmt.Sprintf("[%d.%d]", g, i), 20+(g*31+i*7)%60))
	}
	for _, noCtx := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-context-takeover=%v", noCtx), func(t *testing.T) {
			set := websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{ServerNoContextTakeover: noCtx}))
			srvErrs := make(chan error, writers)
			srv := acceptServer(t, &websocket.AcceptOptions{Extensions: set}, func(c *websocket.Conn) {
				ctx := context.Background()
				var wg sync.WaitGroup
				for g := range writers {
					wg.Go(func() {
						srvErrs <- func() error {
							for i := range perWriter {
								if g%2 == 1 {
									if err := c.Write(ctx, websocket.MessageBinary, msg(g, i)); err != nil {
										return err
									}
									continue
								}
								typ := websocket.MessageBinary
								if i%2 == 0 {
									typ = websocket.MessageText // through the UTF-8 checking writer too
								}
								w, err := c.Writer(ctx, typ)
								if err != nil {
									return err
								}
								if _, err := w.Write(msg(g, i)); err != nil {
									return err
								}
								if err := w.Close(); err != nil {
									return err
								}
							}
							return nil
						}()
					})
				}
				wg.Wait()
				_ = c.Close(websocket.StatusNormalClosure, "")
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{
				Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			next := make([]int, writers)
			for n := 0; n < writers*perWriter; n++ {
				_, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("after %d messages: %v", n, err)
				}
				var g, i int
				if _, err := fmt.Sscanf(string(got), "%d %d", &g, &i); err != nil || g < 0 || g >= writers {
					t.Fatalf("message %d unreadable: %.40q", n, got)
				}
				if i != next[g] || !bytes.Equal(got, msg(g, i)) {
					t.Fatalf("writer %d: got message %d (%d bytes), want message %d intact", g, i, len(got), next[g])
				}
				next[g]++
			}
			if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("after the messages: %v, want the server's close", err)
			}
			for range writers {
				if err := <-srvErrs; err != nil {
					t.Fatalf("server: %v", err)
				}
			}
		})
	}
}
