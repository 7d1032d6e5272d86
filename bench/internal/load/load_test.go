package load_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/wsrpc/wsrpc/bench/internal/echo"
	"github.com/wsrpc/wsrpc/bench/internal/load"
	"github.com/wsrpc/wsrpc/internal/testmsg"
)

// scenarios is a very short version of every cell of bench/run.sh: a smoke
// check that each server echoes every byte, not a measurement.
var scenarios = []struct {
	name string
	cfg  load.Config
}{
	{"rr-1-16", load.Config{Scenario: "echo", Conns: 1, Size: 16}},
	{"rr-4-64k", load.Config{Scenario: "echo", Conns: 4, Size: 64 << 10}},
	{"pipe-8-1k", load.Config{Scenario: "echo", Conns: 8, Size: 1024, InFlight: 16}},
	{"deflate-8-1k", load.Config{Scenario: "deflate", Conns: 8, InFlight: 4}},
	{"idle-50", load.Config{Scenario: "idle", Conns: 50}},
}

// short shortens cfg's run. The window is long enough that a run under
// -race on a busy 2-core machine still completes a message in it (with
// 80 ms, a compressed cell against npm ws came back empty about once in
// six runs): the check is that messages come back right, not how many.
func short(cfg load.Config) load.Config {
	cfg.Warmup = 20 * time.Millisecond
	cfg.Duration = 250 * time.Millisecond
	return cfg
}

func TestEveryGoServer(t *testing.T) {
	for _, lib := range echo.Libs {
		for _, sc := range scenarios {
			deflate := sc.cfg.Scenario == "deflate"
			if !echo.Supports(lib, deflate) {
				continue
			}
			t.Run(lib+"/"+sc.name, func(t *testing.T) {
				if lib == "tcp-uring" {
					if err := echo.URingSupported(); err != nil {
						t.Skipf("no io_uring here: %v", err)
					}
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go echo.Serve(lib, ln, echo.Options{Deflate: deflate, Handoff: sc.name == "idle-50"})
				cfg := short(sc.cfg)
				cfg.Addr = ln.Addr().String()
				cfg.Raw = strings.HasPrefix(lib, "tcp")
				cfg.PID = os.Getpid()
				res, err := load.Run(cfg)
				if err != nil {
					t.Fatal(err)
				}
				check(t, cfg, res)
			})
		}
	}
}

func check(t *testing.T, cfg load.Config, res load.Result) {
	t.Helper()
	switch cfg.Scenario {
	case "idle":
		if res.RSSAfter == 0 {
			t.Fatalf("no RSS reading: %+v", res)
		}
	default:
		if res.Msgs == 0 {
			t.Fatalf("no message echoed: %+v", res)
		}
	}
	if cfg.Scenario == "deflate" && (res.WireRatio <= 0 || res.WireRatio >= 1) {
		t.Fatalf("wire ratio %.3f: the echo was not compressed", res.WireRatio)
	}
}

// TestNodeWS runs the same scenarios against npm ws when bench/node has
// been installed (bench/run.sh runs npm ci there).
func TestNodeWS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := filepath.Join("..", "..", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		t.Skip("bench/node not installed (cd bench/node && npm ci)")
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			args := []string{"echoserver.js"}
			if sc.cfg.Scenario == "deflate" {
				args = append(args, "--deflate")
			}
			cmd := exec.Command(node, args...)
			cmd.Dir = dir
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			lines := make(chan string, 1)
			go func() {
				s := bufio.NewScanner(out)
				if s.Scan() {
					lines <- s.Text()
				}
				close(lines)
			}()
			var line string
			select {
			case line = <-lines:
			case <-time.After(10 * time.Second):
				t.Fatal("node server did not start")
			}
			m := regexp.MustCompile(`^ready pid=(\d+) addr=(\S+)`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("unexpected first line %q", line)
			}
			cfg := short(sc.cfg)
			cfg.Addr = m[2]
			cfg.PID = cmd.Process.Pid
			res, err := load.Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			check(t, cfg, res)
		})
	}
}

// TestInterleave takes three servers in turns: every server gets one
// measured turn per round, the order rotates by one each round, and the
// compressed scenario keeps each connection's context across turns.
func TestInterleave(t *testing.T) {
	for _, sc := range scenarios[:4] {
		t.Run(sc.name, func(t *testing.T) {
			deflate := sc.cfg.Scenario == "deflate"
			var servers []load.Server
			for _, lib := range []string{"wsrpc", "gws", "tcp"} {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go echo.Serve(lib, ln, echo.Options{Deflate: deflate})
				servers = append(servers, load.Server{Name: lib, Addr: ln.Addr().String(), Raw: lib == "tcp", PID: os.Getpid()})
			}
			cfg := sc.cfg
			cfg.Warmup, cfg.Settle, cfg.Duration = 20*time.Millisecond, 5*time.Millisecond, 120*time.Millisecond
			const rounds = 3
			slices, err := load.Interleave(cfg, servers, rounds)
			if err != nil {
				t.Fatal(err)
			}
			if len(slices) != rounds*len(servers) {
				t.Fatalf("%d turns, want %d", len(slices), rounds*len(servers))
			}
			for i, s := range slices {
				r, k := i/len(servers), i%len(servers)
				if want := servers[(k+r)%len(servers)].Name; s.Server != want || s.Round != r {
					t.Fatalf("turn %d: %s in round %d, want %s in round %d", i, s.Server, s.Round, want, r)
				}
				check(t, cfg, s.Result)
			}
		})
	}
}

// TestCorruptEchoFails makes sure the client notices a wrong byte: a TCP
// echo that flips one bit in every read must fail the run.
func TestCorruptEchoFails(t *testing.T) {
	for _, sc := range scenarios[:4] {
		t.Run(sc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						buf := make([]byte, 32<<10)
						for {
							n, err := c.Read(buf)
							if n > 0 {
								buf[n-1] ^= 0x01 // the last payload byte read
								if _, err := c.Write(buf[:n]); err != nil {
									return
								}
							}
							if err != nil {
								return
							}
						}
					}()
				}
			}()
			cfg := short(sc.cfg)
			cfg.Addr = ln.Addr().String()
			cfg.Raw = true
			_, err = load.Run(cfg)
			if !errors.Is(err, load.ErrVerify) {
				t.Fatalf("corrupt echo: err = %v, want a verification failure", err)
			}
		})
	}
}

// fakeConn is one connection of fakeServer: the client's last message,
// and the server's compressor when permessage-deflate was negotiated.
type fakeConn struct {
	fw  *flate.Writer
	buf bytes.Buffer
	ctx bool // the server keeps its compression context
}

// compressed is a final text frame with RSV1 set carrying p compressed,
// sync-flushed after each part, less the trailing 00 00 ff ff (RFC 7692
// §7.2.1).
func (c *fakeConn) compressed(parts ...[]byte) []byte {
	c.buf.Reset()
	if c.fw == nil {
		c.fw, _ = flate.NewWriter(&c.buf, flate.BestSpeed)
	} else if !c.ctx {
		c.fw.Reset(&c.buf)
	}
	for _, p := range parts {
		_, _ = c.fw.Write(p)
		_ = c.fw.Flush()
	}
	b := c.buf.Bytes()
	f := serverFrame(0x1, b[:len(b)-4])
	f[0] |= 0x40
	return f
}

// fakeServer is a minimal RFC 6455 server on 127.0.0.1: it completes the
// handshake (accepting permessage-deflate with client_no_context_takeover
// when offered, and server_no_context_takeover unless ctx), then calls
// reply with every client message (inflated if it was compressed) and
// writes what reply returns. Every connection ends within 20 s.
func fakeServer(t *testing.T, ctx bool, reply func(c *fakeConn, op byte, p []byte) []byte) string {
	t.Helper()
	const guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" // RFC 6455 §1.3
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(nc)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + guid))
				resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
					base64.StdEncoding.EncodeToString(h[:]) + "\r\n"
				if strings.Contains(req.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
					resp += "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover"
					if !ctx {
						resp += "; server_no_context_takeover"
					}
					resp += "\r\n"
				}
				if _, err := io.WriteString(nc, resp+"\r\n"); err != nil {
					return
				}
				fc := &fakeConn{ctx: ctx}
				for {
					var hd [2]byte
					if _, err := io.ReadFull(br, hd[:]); err != nil {
						return
					}
					n := uint64(hd[1] & 0x7F)
					switch n {
					case 126:
						var b [2]byte
						if _, err := io.ReadFull(br, b[:]); err != nil {
							return
						}
						n = uint64(binary.BigEndian.Uint16(b[:]))
					case 127:
						var b [8]byte
						if _, err := io.ReadFull(br, b[:]); err != nil {
							return
						}
						n = binary.BigEndian.Uint64(b[:])
					}
					var key [4]byte
					if _, err := io.ReadFull(br, key[:]); err != nil {
						return
					}
					p := make([]byte, n)
					if _, err := io.ReadFull(br, p); err != nil {
						return
					}
					for i := range p {
						p[i] ^= key[i%4]
					}
					if hd[0]&0x40 != 0 { // compressed, each message on its own
						p, err = io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(p),
							bytes.NewReader([]byte{0, 0, 0xff, 0xff, 0x01, 0, 0, 0xff, 0xff}))))
						if err != nil {
							return
						}
					}
					if out := reply(fc, hd[0]&0x0F, p); out != nil {
						if _, err := nc.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// serverFrame is an unmasked, final server frame.
func serverFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

func fakeCfg(addr, scenario string, size int) load.Config {
	return load.Config{Addr: addr, Scenario: scenario, Conns: 1, Size: size,
		Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond}
}

// failure is a way a server's echo can be wrong: each must fail the run
// with an error that matches load.ErrVerify.
type failure struct {
	name     string
	scenario string
	size     int
	ctx      bool // the fake server keeps its compression context
	reply    func(c *fakeConn, op byte, p []byte) []byte
}

// wrongLengths are echoes of the wrong length, plain, fragmented and
// compressed, with and without context takeover.
var wrongLengths = []failure{
	{"binary truncated", "echo", 64 << 10, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(op, p[:8]) }},
	{"binary empty", "echo", 1024, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(op, nil) }},
	{"binary longer", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(op, append(p, 0)) }},
	{"binary in two frames, cut short", "echo", 1024, false, func(_ *fakeConn, op byte, p []byte) []byte {
		f := serverFrame(op, p[:512])
		f[0] &^= 0x80 // not final
		return append(f, serverFrame(0x0, p[512:1000])...)
	}},
	{"text truncated", "deflate", 0, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x1, p[:len(p)*29/100]) }},
	{"text empty", "deflate", 0, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x1, nil) }},
	{"text longer", "deflate", 0, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x1, append(p, ' ')) }},
	{"compressed truncated", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p[:len(p)/2]) }},
	{"compressed truncated, takeover", "deflate", 0, true, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p[:len(p)/2]) }},
	{"compressed longer", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(append(p, ' ')) }},
	{"compressed longer, own flush", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p, []byte(" ")) }},
	{"compressed longer, own flush, takeover", "deflate", 0, true, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p, []byte(" ")) }},
}

// TestEchoOfWrongLengthFails guards the length check: each chunk of these
// echoes is a prefix of what was sent, which was all the client checked,
// so a server that sent back the first 8 bytes of each 64 KiB message
// (its sequence number) or nothing at all scored full round trips, and a
// text echo cut to 29% came out as a compression ratio of 0.29 B/B.
func TestEchoOfWrongLengthFails(t *testing.T) {
	for _, tc := range wrongLengths {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.ctx, tc.reply)
			res, err := load.Run(fakeCfg(addr, tc.scenario, tc.size))
			if err == nil {
				t.Fatalf("accepted: %s", res)
			}
			if !errors.Is(err, load.ErrVerify) || !strings.Contains(err.Error(), "echo of ") {
				t.Fatalf("err = %v, want a verification failure about the echo's length", err)
			}
		})
	}
}

// failures are every other way an echo can be wrong.
var failures = []failure{
	// Wrong bytes and opcodes.
	{"text for binary", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x1, p) }},
	{"binary for text", "deflate", 0, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x2, p) }},
	{"sequence number", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte { p[0]++; return serverFrame(op, p) }},
	{"payload byte", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte { p[40]++; return serverFrame(op, p) }},
	{"text byte", "deflate", 0, false, func(_ *fakeConn, op byte, p []byte) []byte { p[40]++; return serverFrame(0x1, p) }},
	{"inflated byte", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte { p[40]++; return c.compressed(p) }},
	{"corrupt deflate", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte {
		return append([]byte{0xC1, 4}, 0xff, 0xff, 0xff, 0xff) // reserved block type 3 (RFC 1951 §3.2.3)
	}},
	// Frames no conforming server sends (RFC 6455 §5).
	{"masked frame", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		f := serverFrame(op, p)
		f[1] |= 0x80
		return append(f[:2], append([]byte{0, 0, 0, 0}, f[2:]...)...)
	}},
	{"length with its top bit set", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		return []byte{0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	}},
	{"frame larger than any echo", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		return binary.BigEndian.AppendUint64([]byte{0x82, 0x7F}, 1<<40)
	}},
	{"continuation without a message", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x0, p) }},
	{"message inside a fragmented one", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		f := serverFrame(op, p[:10])
		f[0] &^= 0x80
		return append(f, serverFrame(op, p[10:])...)
	}},
	// Reserved bits (RFC 6455 §5.2, RFC 7692 §6.1) and control frames
	// (§5.5) no conforming server sends, around a right echo.
	{"RSV1 without permessage-deflate", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		f := serverFrame(op, p)
		f[0] |= 0x40
		return f
	}},
	{"RSV2", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		f := serverFrame(op, p)
		f[0] |= 0x20
		return f
	}},
	{"RSV3, compressed", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte {
		f := c.compressed(p)
		f[0] |= 0x10
		return f
	}},
	{"RSV1 on a continuation", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte {
		first, rest := splitFrame(c.compressed(p), 10)
		rest[0] |= 0x40
		return append(first, rest...)
	}},
	{"RSV1 on a ping", "deflate", 0, false, func(c *fakeConn, op byte, p []byte) []byte {
		if op == 0xA {
			return nil // the client's pong
		}
		ping := serverFrame(0x9, []byte("hi"))
		ping[0] |= 0x40
		return append(ping, c.compressed(p)...)
	}},
	{"fragmented ping", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		if op == 0xA {
			return nil // the client's pong
		}
		ping := serverFrame(0x9, []byte("hi"))
		ping[0] &^= 0x80
		return append(ping, serverFrame(op, p)...)
	}},
	{"ping of 126 bytes", "echo", 64, false, func(_ *fakeConn, op byte, p []byte) []byte {
		if op == 0xA {
			return nil // the client's pong
		}
		return append(serverFrame(0x9, make([]byte, 126)), serverFrame(op, p)...)
	}},
}

// splitFrame cuts a final server frame of under 64 KiB into a non-final
// frame with its first n payload bytes (RSV1 kept) and a final
// continuation frame with the rest.
func splitFrame(f []byte, n int) (first, rest []byte) {
	hdr := 2
	if f[1]&0x7F == 126 {
		hdr = 4
	}
	p := f[hdr:]
	first = serverFrame(f[0]&0x0F, p[:n])
	first[0] = f[0] &^ 0x80
	return first, serverFrame(0x0, p[n:])
}

// TestVerificationFailuresAreMarked guards the one marker for every way an
// echo can be wrong: cmd/loadclient maps it to exit status 3, and
// bench/run.sh retries a failed cell unless it exits 3. Failures without
// it (once: a wrong opcode, an echo longer than sent, anything whose text
// said neither "differ" nor "inflate") were retried, and a second, lucky
// run could hide them.
func TestVerificationFailuresAreMarked(t *testing.T) {
	for _, tc := range slices.Concat(wrongLengths, failures) {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.ctx, tc.reply)
			res, err := load.Run(fakeCfg(addr, tc.scenario, tc.size))
			if err == nil {
				t.Fatalf("accepted: %s", res)
			}
			if !errors.Is(err, load.ErrVerify) {
				t.Fatalf("%v: not marked as a verification failure", err)
			}
		})
	}
}

// TestFakeServerEchoes is the control for the tests above: the fake
// server passes when it echoes right, plainly or compressed, with or
// without context takeover, and with two sync flushes to a message (legal,
// and the client must take it).
func TestFakeServerEchoes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario string
		ctx      bool
		reply    func(c *fakeConn, op byte, p []byte) []byte
	}{
		{"binary", "echo", false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(op, p) }},
		{"text", "deflate", false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(op, p) }},
		{"compressed", "deflate", false, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p) }},
		{"compressed, takeover", "deflate", true, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p) }},
		{"compressed, two flushes", "deflate", false, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p, nil) }},
		{"compressed, two flushes, takeover", "deflate", true, func(c *fakeConn, op byte, p []byte) []byte { return c.compressed(p, nil) }},
		{"compressed in two frames, a ping between", "deflate", true, func(c *fakeConn, op byte, p []byte) []byte {
			if op == 0xA {
				return nil // the client's pong
			}
			first, rest := splitFrame(c.compressed(p), 10)
			return slices.Concat(first, serverFrame(0x9, make([]byte, 125)), rest)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each connection has its first messages echoed and checked
			// before Run returns, however slow the machine.
			addr := fakeServer(t, tc.ctx, tc.reply)
			if _, err := load.Run(fakeCfg(addr, tc.scenario, 1024)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOtherFailuresAreNotMarked: a failure that is not a verdict on the
// echo (a connection refused, a server that closes) is not marked, so
// bench/run.sh still retries it once.
func TestOtherFailuresAreNotMarked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	closing := fakeServer(t, false, func(_ *fakeConn, op byte, p []byte) []byte { return serverFrame(0x8, []byte{0x03, 0xE9}) })
	for _, addr := range []string{refused, closing} {
		_, err := load.Run(fakeCfg(addr, "echo", 64))
		if err == nil || errors.Is(err, load.ErrVerify) {
			t.Fatalf("%s: err = %v, want an error that is not a verification failure", addr, err)
		}
	}
}

// The deflate scenario's messages all have one length: Result.MBPerSec
// counts len of the first for each.
func TestOrdersHaveOneLength(t *testing.T) {
	for _, p := range testmsg.Orders(256, 1024) {
		if len(p) != 1024 {
			t.Fatalf("a message of %d bytes", len(p))
		}
	}
}
