package websocket_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// statsPair returns both ends of a fresh connection over 127.0.0.1,
// negotiated with sopts and dopts (nil: defaults). Nothing has been sent
// on it after the handshake.
func statsPair(t *testing.T, sopts *websocket.AcceptOptions, dopts *websocket.DialOptions) (srv, cli *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, sopts)
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(accepted)
			return
		}
		accepted <- c
	}))
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), dopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.CloseNow() })
	select {
	case srv = <-accepted:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	if srv == nil {
		t.FailNow()
	}
	t.Cleanup(func() { srv.CloseNow() })
	return srv, cli
}

func side(server bool) string {
	if server {
		return "server"
	}
	return "client"
}

// frameLen is a frame's size on the wire (RFC 6455 §5.2): 2 header bytes,
// 2 or 8 more for a payload over 125 or 65,535 bytes, 4 for the mask
// key of a client's frame, and the payload.
func frameLen(payload int, masked bool) uint64 {
	n := 2 + payload
	switch {
	case payload > 0xFFFF:
		n += 8
	case payload > 125:
		n += 2
	}
	if masked {
		n += 4
	}
	return uint64(n)
}

// TestConnStatsPaths checks Stats' exact figures on both ends for every
// way a message is written (Write, WritePrepared, a streaming Writer of
// several fragments; plain and permessage-deflate, with and without
// context takeover) and read (ReadAppend, Reader, a Poller), with the
// server or the client writing: whole messages, application bytes before
// compression and after decompression, and the wire bytes a frame's
// header, mask and payload take.
func TestConnStatsPaths(t *testing.T) {
	const n = 1000
	r := rand.New(rand.NewPCG(3, 4))
	msg := jsonLike(r, n) // compresses well
	big := jsonLike(r, 120_000)
	prepared, err := websocket.NewPreparedMessage(websocket.MessageText, msg)
	if err != nil {
		t.Fatal(err)
	}
	// write sends the messages and returns how many there were, their
	// payload, and the sizes of the frames they took (for an exact wire
	// figure when uncompressed).
	type writeFn func(ctx context.Context, c *websocket.Conn) (msgs int, payload int, frames []int, err error)
	writes := []struct {
		name  string
		write writeFn
	}{
		{"Write", func(ctx context.Context, c *websocket.Conn) (int, int, []int, error) {
			for range 3 {
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					return 0, 0, nil, err
				}
			}
			return 3, 3 * n, []int{n, n, n}, nil
		}},
		{"WritePrepared", func(ctx context.Context, c *websocket.Conn) (int, int, []int, error) {
			for range 3 {
				if err := c.WritePrepared(ctx, prepared); err != nil {
					return 0, 0, nil, err
				}
			}
			return 3, 3 * n, []int{n, n, n}, nil
		}},
		{"Writer", func(ctx context.Context, c *websocket.Conn) (int, int, []int, error) {
			// One message of 120,000 bytes in three writes: two fragments,
			// one message.
			w, err := c.Writer(ctx, websocket.MessageText)
			if err != nil {
				return 0, 0, nil, err
			}
			for i := range 3 {
				if _, err := w.Write(big[i*40_000 : (i+1)*40_000]); err != nil {
					return 0, 0, nil, err
				}
			}
			if err := w.Close(); err != nil {
				return 0, 0, nil, err
			}
			return 1, len(big), []int{websocket.WriterFragment, len(big) - websocket.WriterFragment}, nil
		}},
	}
	noCtx := &websocket.DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	compressions := []struct {
		name string
		opts *websocket.DeflateOptions // nil: none
	}{
		{"plain", nil},
		{"deflate", &websocket.DeflateOptions{}},
		{"deflate-no-takeover", noCtx},
	}
	reads := []string{"ReadAppend", "Reader", "Poller"}

	for _, comp := range compressions {
		for _, wr := range writes {
			for _, serverWrites := range []bool{true, false} {
				for _, rd := range reads {
					if rd == "Poller" && serverWrites {
						continue // a Poller serves the accepted (server) end
					}
					name := comp.name + "/" + wr.name + "/" + side(serverWrites) + "-writes/" + rd
					t.Run(name, func(t *testing.T) {
						var sopts websocket.AcceptOptions
						var dopts websocket.DialOptions
						if comp.opts != nil {
							set := websocket.MustExtensionSet(websocket.PerMessageDeflate(comp.opts))
							sopts.Extensions, dopts.Extensions = set, set
						}
						srv, cli := statsPair(t, &sopts, &dopts)
						if comp.opts != nil {
							if _, ok := cli.Extension("permessage-deflate"); !ok {
								t.Fatal("permessage-deflate not negotiated")
							}
						}
						writer, reader := srv, cli
						if !serverWrites {
							writer, reader = cli, srv
						}
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()

						got := make(chan int, 8) // sizes of the messages read
						readErr := make(chan error, 1)
						switch rd {
						case "Poller":
							p, err := websocket.NewPoller(nil)
							if err != nil {
								t.Fatal(err)
							}
							defer p.Close()
							if err := p.Serve(reader, websocket.HandlerFuncs{
								Message: func(_ *websocket.Conn, _ websocket.MessageType, m []byte) { got <- len(m) },
							}); err != nil {
								t.Fatal(err)
							}
						default:
							go func() {
								for {
									var m int
									if rd == "Reader" {
										_, rr, err := reader.Reader(ctx)
										if err != nil {
											readErr <- err
											return
										}
										k, err := io.Copy(io.Discard, rr)
										if err != nil {
											readErr <- err
											return
										}
										m = int(k)
									} else {
										_, b, err := reader.ReadAppend(ctx, nil)
										if err != nil {
											readErr <- err
											return
										}
										m = len(b)
									}
									got <- m
								}
							}()
						}

						msgs, payload, frames, err := wr.write(ctx, writer)
						if err != nil {
							t.Fatal(err)
						}
						total := 0
						for range msgs {
							select {
							case m := <-got:
								total += m
							case err := <-readErr:
								t.Fatal(err)
							case <-ctx.Done():
								t.Fatal("messages not read")
							}
						}
						if total != payload {
							t.Fatalf("read %d bytes, wrote %d", total, payload)
						}

						ws, rs := writer.Stats(), reader.Stats()
						if ws.MessagesWritten != uint64(msgs) || ws.PayloadBytesWritten != uint64(payload) {
							t.Errorf("writer: %d messages, %d payload bytes written; want %d, %d", ws.MessagesWritten, ws.PayloadBytesWritten, msgs, payload)
						}
						if rs.MessagesRead != uint64(msgs) || rs.PayloadBytesRead != uint64(payload) {
							t.Errorf("reader: %d messages, %d payload bytes read; want %d, %d", rs.MessagesRead, rs.PayloadBytesRead, msgs, payload)
						}
						// Nothing went the other way.
						if ws.MessagesRead != 0 || ws.PayloadBytesRead != 0 || ws.WireBytesRead != 0 ||
							rs.MessagesWritten != 0 || rs.PayloadBytesWritten != 0 || rs.WireBytesWritten != 0 {
							t.Errorf("counts in the direction nothing was sent: writer %+v, reader %+v", ws, rs)
						}
						// What one end wrote is what the other read.
						if ws.WireBytesWritten != rs.WireBytesRead {
							t.Errorf("writer wrote %d wire bytes, reader read %d", ws.WireBytesWritten, rs.WireBytesRead)
						}
						if comp.opts == nil {
							var want uint64
							for _, f := range frames {
								want += frameLen(f, writer == cli)
							}
							if ws.WireBytesWritten != want {
								t.Errorf("wire bytes written = %d, want %d (payload %d + headers)", ws.WireBytesWritten, want, payload)
							}
						} else if ws.WireBytesWritten*2 > ws.PayloadBytesWritten {
							// JSON-like text compresses to about 0.2-0.3 of
							// its size (docs/websocket.md): the wire figure
							// must be the compressed one.
							t.Errorf("compressed: %d wire bytes for %d payload bytes", ws.WireBytesWritten, ws.PayloadBytesWritten)
						}
						if ws.PingsSent+ws.PongsReceived+rs.PingsSent+rs.PongsReceived != 0 || ws.LastRTT != 0 || rs.LastRTT != 0 {
							t.Errorf("ping counters without pings: writer %+v, reader %+v", ws, rs)
						}
					})
				}
			}
		}
	}
}

// TestConnStatsCloseAndAfter: the close frames count on the wire (none as
// messages), and Stats after the connection closed returns what it
// counted until then.
func TestConnStatsCloseAndAfter(t *testing.T) {
	srv, cli := statsPair(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Write(ctx, websocket.MessageBinary, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli.Read(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := srv.Read(ctx) // answers the client's close
		done <- err
	}()
	if err := cli.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("server read: %v", err)
	}
	// Client: the message (2+10) in, its close frame (2+4+2+3) out and
	// the server's echo of the code (2+2) in.
	want := websocket.ConnStats{
		MessagesRead: 1, PayloadBytesRead: 10,
		WireBytesRead:    frameLen(10, false) + frameLen(2, false),
		WireBytesWritten: frameLen(5, true),
	}
	for range 2 {
		if got := cli.Stats(); got != want {
			t.Errorf("client after close: %+v, want %+v", got, want)
		}
	}
	wantSrv := websocket.ConnStats{
		MessagesWritten: 1, PayloadBytesWritten: 10,
		WireBytesWritten: frameLen(10, false) + frameLen(2, false),
		WireBytesRead:    frameLen(5, true),
	}
	if got := srv.Stats(); got != wantSrv {
		t.Errorf("server after close: %+v, want %+v", got, wantSrv)
	}
}

// readLoop reads c until it fails, sending what it read to msgs.
func readLoop(ctx context.Context, c *websocket.Conn, msgs chan<- []byte) {
	for {
		_, m, err := c.Read(ctx)
		if err != nil {
			close(msgs)
			return
		}
		msgs <- m
	}
}

// TestConnStatsPingRTT: Ping counts a ping on its side and, with the pong,
// sets LastRTT to the time from the ping's write to the pong's arrival
// (at least the peer's delay in answering); the side answering counts
// neither. A pong that answers no ping of ours — unsolicited, or a second
// pong for a ping answered already — counts in PongsReceived and leaves
// LastRTT as it was; so does the pong of a ping that a later ping's pong
// answered first (RFC 6455 §5.5.3), as the keepalive matches them.
func TestConnStatsPingRTT(t *testing.T) {
	srv, raw := statsPair(t, nil, &websocket.DialOptions{Raw: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs := make(chan []byte, 4)
	go readLoop(ctx, srv, msgs)

	readPing := func() []byte {
		t.Helper()
		f, err := raw.ReadFrame(ctx, nil)
		if err != nil || f.Opcode != websocket.OpPing {
			t.Fatalf("got %v frame, %v; want a ping", f.Opcode, err)
		}
		return f.Payload
	}
	pong := func(p []byte) {
		t.Helper()
		if err := raw.WriteFrame(ctx, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpPong}, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	// barrier sends a message behind the frames before it: once the server
	// read it, it has read them.
	barrier := func() {
		t.Helper()
		if err := raw.WriteFrame(ctx, websocket.Frame{FrameHeader: websocket.FrameHeader{Fin: true, Opcode: websocket.OpText}, Payload: []byte("sync")}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-msgs:
		case <-ctx.Done():
			t.Fatal("sync message not read")
		}
	}

	// One Ping, answered after 50ms.
	const delay = 50 * time.Millisecond
	pinged := make(chan error, 1)
	go func() { pinged <- srv.Ping(ctx) }()
	p1 := readPing()
	time.Sleep(delay)
	pong(p1)
	if err := <-pinged; err != nil {
		t.Fatal(err)
	}
	s := srv.Stats()
	if s.PingsSent != 1 || s.PongsReceived != 1 || s.LastRTT < delay {
		t.Fatalf("after one Ping answered after %v: %+v", delay, s)
	}
	rtt := s.LastRTT
	if rs := raw.Stats(); rs.PingsSent != 0 || rs.PongsReceived != 0 || rs.LastRTT != 0 {
		t.Errorf("answering side: %+v", rs)
	}

	// Unsolicited pongs: a repeat of the answered one, a number never
	// sent, a payload of another length.
	var never [8]byte
	binary.BigEndian.PutUint64(never[:], 1<<40)
	pong(p1)
	pong(never[:])
	pong([]byte("hi"))
	barrier()
	s = srv.Stats()
	if s.PongsReceived != 4 || s.LastRTT != rtt {
		t.Fatalf("after 3 unsolicited pongs: %+v, want PongsReceived 4 and LastRTT %v", s, rtt)
	}

	// Two Pings; the peer answers the later one first, after 50ms, and
	// then the earlier one: the first pong sets LastRTT, the second does
	// not (its ping counts as answered by the later pong).
	pinged2 := make(chan error, 2)
	go func() { pinged2 <- srv.Ping(ctx) }()
	a := readPing()
	go func() { pinged2 <- srv.Ping(ctx) }()
	b := readPing()
	time.Sleep(delay)
	pong(b)
	barrier()
	s = srv.Stats()
	if s.PingsSent != 3 || s.PongsReceived != 5 || s.LastRTT < delay || s.LastRTT == rtt {
		t.Fatalf("after the later ping's pong: %+v (previous RTT %v)", s, rtt)
	}
	rtt = s.LastRTT
	pong(a)
	for range 2 {
		if err := <-pinged2; err != nil {
			t.Fatal(err)
		}
	}
	barrier()
	if s = srv.Stats(); s.PongsReceived != 6 || s.LastRTT != rtt {
		t.Fatalf("after the earlier ping's late pong: %+v, want LastRTT %v", s, rtt)
	}
}

// TestConnStatsKeepalive: keepalive pings count and set LastRTT like
// Ping's, on a server and on a client.
func TestConnStatsKeepalive(t *testing.T) {
	for _, serverPings := range []bool{true, false} {
		t.Run(side(serverPings), func(t *testing.T) {
			ka := 10 * time.Millisecond
			var sopts websocket.AcceptOptions
			var dopts websocket.DialOptions
			if serverPings {
				sopts.PingInterval = ka
			} else {
				dopts.PingInterval = ka
			}
			srv, cli := statsPair(t, &sopts, &dopts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go readLoop(ctx, srv, make(chan []byte, 1))
			go readLoop(ctx, cli, make(chan []byte, 1))
			pinger, answerer := srv, cli
			if !serverPings {
				pinger, answerer = cli, srv
			}
			for {
				s := pinger.Stats()
				if s.PongsReceived >= 3 && s.LastRTT > 0 {
					if s.PingsSent < s.PongsReceived {
						t.Fatalf("%+v: more pongs than pings", s)
					}
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("keepalive pongs never counted: %+v", s)
				case <-time.After(time.Millisecond):
				}
			}
			if s := answerer.Stats(); s.PingsSent != 0 || s.PongsReceived != 0 || s.LastRTT != 0 {
				t.Errorf("answering side: %+v", s)
			}
		})
	}
}

// TestConnStatsConcurrent reads Stats from other goroutines while both
// ends write, read and ping, for the race detector; the final figures
// add up.
func TestConnStatsConcurrent(t *testing.T) {
	set := websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))
	srv, cli := statsPair(t, &websocket.AcceptOptions{Extensions: set, PingInterval: 5 * time.Millisecond},
		&websocket.DialOptions{Extensions: set})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const writers, each = 4, 50
	srvMsgs, cliMsgs := make(chan []byte, writers*each), make(chan []byte, writers*each)
	go readLoop(ctx, srv, srvMsgs)
	go readLoop(ctx, cli, cliMsgs)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range []*websocket.Conn{srv, cli} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = c.Stats()
			}
		})
	}
	var writes sync.WaitGroup
	for i := range writers {
		for _, c := range []*websocket.Conn{srv, cli} {
			writes.Go(func() {
				msg := bytes.Repeat([]byte{byte('a' + i)}, 200+i)
				for range each {
					if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	writes.Go(func() {
		if err := cli.Ping(ctx); err != nil {
			t.Error(err)
		}
	})
	writes.Wait()
	for _, ch := range []chan []byte{srvMsgs, cliMsgs} {
		for range writers * each {
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatal("messages not read")
			}
		}
	}
	close(stop)
	wg.Wait()
	var payload uint64
	for i := range writers {
		payload += uint64(each * (200 + i))
	}
	for _, s := range []websocket.ConnStats{srv.Stats(), cli.Stats()} {
		if s.MessagesWritten != writers*each || s.MessagesRead != writers*each ||
			s.PayloadBytesWritten != payload || s.PayloadBytesRead != payload {
			t.Errorf("%+v: want %d messages, %d payload bytes each way", s, writers*each, payload)
		}
	}
	if s := cli.Stats(); s.PingsSent != 1 || s.PongsReceived != 1 || s.LastRTT == 0 {
		t.Errorf("client after one Ping: %+v", s)
	}
}

// TestConnStatsFramesWithHandshake: frames that arrive with the handshake
// (a client that sends its first message without waiting for the 101, so
// the HTTP server reads them with the request) count as wire bytes read.
func TestConnStatsFramesWithHandshake(t *testing.T) {
	accepted := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(accepted)
			return
		}
		accepted <- c
	}))
	defer hs.Close()
	nc, err := net.DialTimeout("tcp", hs.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	// One write: the request and a masked text frame "hello" (key 0, so
	// the payload goes as is).
	req := "GET / HTTP/1.1\r\nHost: " + hs.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	frame := append([]byte{0x81, 0x80 | 5, 0, 0, 0, 0}, "hello"...)
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	var srv *websocket.Conn
	select {
	case srv = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
	if srv == nil {
		t.FailNow()
	}
	defer srv.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, m, err := srv.Read(ctx); err != nil || string(m) != "hello" {
		t.Fatalf("Read: %q, %v", m, err)
	}
	if s := srv.Stats(); s.WireBytesRead != uint64(len(frame)) || s.MessagesRead != 1 || s.PayloadBytesRead != 5 {
		t.Errorf("%+v: want 1 message, 5 payload bytes, %d wire bytes read", s, len(frame))
	}
}

// TestConnStatsSkippedMessage: a message a Reader left half read counts
// whole once the next read discards the rest, as it was read off the
// connection.
func TestConnStatsSkippedMessage(t *testing.T) {
	srv, cli := statsPair(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []int{3000, 10} {
		if err := srv.Write(ctx, websocket.MessageBinary, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	_, r, err := cli.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if s := cli.Stats(); s.MessagesRead != 0 || s.PayloadBytesRead != 0 {
		t.Errorf("message half read: %+v, want none counted yet", s)
	}
	if _, m, err := cli.Read(ctx); err != nil || len(m) != 10 {
		t.Fatalf("Read: %d bytes, %v", len(m), err)
	}
	want := websocket.ConnStats{MessagesRead: 2, PayloadBytesRead: 3010,
		WireBytesRead: frameLen(3000, false) + frameLen(10, false)}
	if s := cli.Stats(); s != want {
		t.Errorf("%+v, want %+v", s, want)
	}
}
