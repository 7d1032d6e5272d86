package websocket_test

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// params parses "a; b=1" into extension parameters.
func params(t testing.TB, s string) []websocket.Param {
	t.Helper()
	if s == "" {
		return nil
	}
	els, err := websocket.ParseExtensions([]string{"x; " + s})
	if err != nil {
		t.Fatal(err)
	}
	return els[0].Params
}

func formatParams(ps []websocket.Param) string {
	return strings.TrimPrefix(websocket.FormatExtension("", ps), "; ")
}

// TestDeflateServerNegotiation covers RFC 7692 §7.1 from the server's side:
// every parameter, accepted and declined offers, and what the answer may
// contain.
func TestDeflateServerNegotiation(t *testing.T) {
	const declined = "DECLINED"
	cases := []struct {
		name   string
		opts   websocket.DeflateOptions
		offers []string // alternatives, in the client's order
		answer string
		params websocket.DeflateParams // the server's view
	}{
		{"plain", websocket.DeflateOptions{}, []string{""}, "",
			websocket.DeflateParams{true, true, 15, 15}},
		{"browser offer", websocket.DeflateOptions{}, []string{"client_max_window_bits"}, "",
			websocket.DeflateParams{true, true, 15, 15}},
		{"client window with value", websocket.DeflateOptions{}, []string{"client_max_window_bits=10"}, "client_max_window_bits=10",
			websocket.DeflateParams{true, true, 15, 10}},
		{"server window asked smaller: echoed", websocket.DeflateOptions{}, []string{"server_max_window_bits=10"}, "server_max_window_bits=10",
			websocket.DeflateParams{true, true, 10, 15}},
		{"server window asked, ours smaller", websocket.DeflateOptions{ServerMaxWindowBits: 9}, []string{"server_max_window_bits=12"}, "server_max_window_bits=9",
			websocket.DeflateParams{true, true, 9, 15}},
		{"server window unasked, ours smaller", websocket.DeflateOptions{ServerMaxWindowBits: 11}, []string{""}, "server_max_window_bits=11",
			websocket.DeflateParams{true, true, 11, 15}},
		{"server_no_context_takeover asked", websocket.DeflateOptions{}, []string{"server_no_context_takeover"}, "server_no_context_takeover",
			websocket.DeflateParams{false, true, 15, 15}},
		{"server_no_context_takeover configured", websocket.DeflateOptions{ServerNoContextTakeover: true}, []string{""}, "server_no_context_takeover",
			websocket.DeflateParams{false, true, 15, 15}},
		{"client_no_context_takeover announced: confirmed", websocket.DeflateOptions{}, []string{"client_no_context_takeover"}, "client_no_context_takeover",
			websocket.DeflateParams{true, false, 15, 15}},
		{"client_no_context_takeover required", websocket.DeflateOptions{ClientNoContextTakeover: true}, []string{""}, "client_no_context_takeover",
			websocket.DeflateParams{true, false, 15, 15}},
		{"client window required, offer allows", websocket.DeflateOptions{ClientMaxWindowBits: 9}, []string{"client_max_window_bits"}, "client_max_window_bits=9",
			websocket.DeflateParams{true, true, 15, 9}},
		{"client window required, offer does not allow", websocket.DeflateOptions{ClientMaxWindowBits: 9}, []string{""}, "",
			websocket.DeflateParams{true, true, 15, 15}},
		{"everything", websocket.DeflateOptions{}, []string{"server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8"},
			"server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8",
			websocket.DeflateParams{false, false, 8, 8}},
		{"first offer invalid, second taken", websocket.DeflateOptions{}, []string{"server_max_window_bits=16", "server_max_window_bits=12"}, "server_max_window_bits=12",
			websocket.DeflateParams{true, true, 12, 15}},
		{"unknown parameter", websocket.DeflateOptions{}, []string{"x_unknown"}, declined, websocket.DeflateParams{}},
		{"duplicate parameter", websocket.DeflateOptions{}, []string{"server_no_context_takeover; server_no_context_takeover"}, declined, websocket.DeflateParams{}},
		{"duplicate window", websocket.DeflateOptions{}, []string{"client_max_window_bits=9; client_max_window_bits=10"}, declined, websocket.DeflateParams{}},
		{"server window without value", websocket.DeflateOptions{}, []string{"server_max_window_bits"}, declined, websocket.DeflateParams{}},
		{"server window 16", websocket.DeflateOptions{}, []string{"server_max_window_bits=16"}, declined, websocket.DeflateParams{}},
		{"server window 7", websocket.DeflateOptions{}, []string{"server_max_window_bits=7"}, declined, websocket.DeflateParams{}},
		{"server window leading zero", websocket.DeflateOptions{}, []string{"server_max_window_bits=09"}, declined, websocket.DeflateParams{}},
		{"client window 16", websocket.DeflateOptions{}, []string{"client_max_window_bits=16"}, declined, websocket.DeflateParams{}},
		{"client window text", websocket.DeflateOptions{}, []string{"client_max_window_bits=abc"}, declined, websocket.DeflateParams{}},
		{"no_context_takeover with value", websocket.DeflateOptions{}, []string{"server_no_context_takeover=1"}, declined, websocket.DeflateParams{}},
		{"quoted window", websocket.DeflateOptions{}, []string{`server_max_window_bits="10"`}, "server_max_window_bits=10",
			websocket.DeflateParams{true, true, 10, 15}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext := websocket.PerMessageDeflate(&tc.opts)
			var offers [][]websocket.Param
			for _, o := range tc.offers {
				offers = append(offers, params(t, o))
			}
			answer, s, ok := ext.ServerNegotiate(offers)
			if tc.answer == declined {
				if ok {
					t.Fatalf("accepted with %q, want declined", formatParams(answer))
				}
				return
			}
			if !ok {
				t.Fatal("declined")
			}
			if got := formatParams(answer); got != tc.answer {
				t.Fatalf("answer %q, want %q", got, tc.answer)
			}
			if got := s.(*websocket.DeflateSession).Params(); got != tc.params {
				t.Fatalf("params %+v, want %+v", got, tc.params)
			}
			// The answer must be acceptable to a client that made the offer
			// (RFC 7692 §7.1: never answer with what the offer forbade).
			for _, p := range answer {
				if p.Name == "client_max_window_bits" && !strings.Contains(strings.Join(tc.offers, ","), "client_max_window_bits") {
					t.Fatalf("answered client_max_window_bits that the offer did not allow")
				}
			}
		})
	}
}

// TestDeflateClientAccept covers the client's check of the server's answer.
func TestDeflateClientAccept(t *testing.T) {
	cases := []struct {
		name    string
		opts    websocket.DeflateOptions
		answer  string
		wantErr bool
		params  websocket.DeflateParams // the client's view
	}{
		{"plain", websocket.DeflateOptions{}, "", false, websocket.DeflateParams{true, true, 15, 15}},
		{"server limits our window", websocket.DeflateOptions{}, "client_max_window_bits=10", false, websocket.DeflateParams{true, true, 10, 15}},
		{"server announces its window", websocket.DeflateOptions{}, "server_max_window_bits=9", false, websocket.DeflateParams{true, true, 15, 9}},
		{"server resets", websocket.DeflateOptions{}, "server_no_context_takeover", false, websocket.DeflateParams{true, false, 15, 15}},
		{"server asks us to reset", websocket.DeflateOptions{}, "client_no_context_takeover", false, websocket.DeflateParams{false, true, 15, 15}},
		{"our window announced", websocket.DeflateOptions{ClientMaxWindowBits: 11}, "", false, websocket.DeflateParams{true, true, 11, 15}},
		{"our window lowered further", websocket.DeflateOptions{ClientMaxWindowBits: 11}, "client_max_window_bits=9", false, websocket.DeflateParams{true, true, 9, 15}},
		{"our window raised", websocket.DeflateOptions{ClientMaxWindowBits: 11}, "client_max_window_bits=12", true, websocket.DeflateParams{}},
		{"client window without value", websocket.DeflateOptions{}, "client_max_window_bits", true, websocket.DeflateParams{}},
		{"unknown parameter", websocket.DeflateOptions{}, "x_unknown", true, websocket.DeflateParams{}},
		{"duplicate", websocket.DeflateOptions{}, "client_no_context_takeover; client_no_context_takeover", true, websocket.DeflateParams{}},
		{"asked reset ignored", websocket.DeflateOptions{ServerNoContextTakeover: true}, "", true, websocket.DeflateParams{}},
		{"asked reset honoured", websocket.DeflateOptions{ServerNoContextTakeover: true}, "server_no_context_takeover", false, websocket.DeflateParams{true, false, 15, 15}},
		{"asked server window ignored", websocket.DeflateOptions{ServerMaxWindowBits: 10}, "", true, websocket.DeflateParams{}},
		{"asked server window exceeded", websocket.DeflateOptions{ServerMaxWindowBits: 10}, "server_max_window_bits=11", true, websocket.DeflateParams{}},
		{"asked server window honoured", websocket.DeflateOptions{ServerMaxWindowBits: 10}, "server_max_window_bits=9", false, websocket.DeflateParams{true, true, 15, 9}},
		{"window out of range", websocket.DeflateOptions{}, "server_max_window_bits=20", true, websocket.DeflateParams{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := websocket.PerMessageDeflate(&tc.opts).ClientAccept(params(t, tc.answer))
			if tc.wantErr {
				if err == nil {
					t.Fatal("accepted, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.(*websocket.DeflateSession).Params(); got != tc.params {
				t.Fatalf("params %+v, want %+v", got, tc.params)
			}
		})
	}
}

// TestDeflateClientAcceptOmittedServerWindow: an answer without the
// server_max_window_bits the offer set (gorilla/websocket servers answer
// so) is refused with an error that says the parameter is missing; it
// read "answer 0 does not honour the offered 10".
func TestDeflateClientAcceptOmittedServerWindow(t *testing.T) {
	_, err := websocket.PerMessageDeflate(&websocket.DeflateOptions{ServerMaxWindowBits: 10}).ClientAccept(params(t, ""))
	if err == nil || !strings.Contains(err.Error(), "leaves out server_max_window_bits") {
		t.Fatalf("ClientAccept = %v, want an error saying the answer leaves the parameter out", err)
	}
}

func TestDeflateClientOffers(t *testing.T) {
	cases := []struct {
		opts websocket.DeflateOptions
		want string
	}{
		{websocket.DeflateOptions{}, "client_max_window_bits"},
		{websocket.DeflateOptions{ClientMaxWindowBits: 10, ServerMaxWindowBits: 12}, "server_max_window_bits=12; client_max_window_bits=10"},
		{websocket.DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, "server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
	}
	for _, tc := range cases {
		offers := websocket.PerMessageDeflate(&tc.opts).ClientOffers()
		if len(offers) != 1 || formatParams(offers[0]) != tc.want {
			t.Errorf("%+v: offers %v, want %q", tc.opts, offers, tc.want)
		}
	}
}

// TestDeflateHandshakeAnswers: the client fails the handshake on answers
// it cannot accept, and negotiates nothing when the server declines.
func TestDeflateHandshakeAnswers(t *testing.T) {
	cases := []struct {
		name    string
		offer   bool
		answer  string
		wantErr bool
	}{
		{"declined", true, "", false},
		{"accepted", true, "permessage-deflate", false},
		{"not offered", false, "permessage-deflate", true},
		{"unknown extension", true, "x-unknown", true},
		{"twice", true, "permessage-deflate, permessage-deflate", true},
		{"bad parameter", true, "permessage-deflate; server_max_window_bits=99", true},
		{"malformed header", true, "permessage-deflate;;", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, peers := fakeServer(t, func(w io.Writer, req *http.Request) {
				ext := ""
				if tc.answer != "" {
					ext = "Sec-WebSocket-Extensions: " + tc.answer + "\r\n"
				}
				fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
					wsAccept(req.Header.Get("Sec-WebSocket-Key")), ext)
			})
			opts := &websocket.DialOptions{}
			if tc.offer {
				opts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(nil))
			}
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, opts)
			go func() {
				if p := <-peers; p != nil {
					p.nc.Close()
				}
			}()
			if tc.wantErr {
				if err == nil {
					c.CloseNow()
					t.Fatal("handshake succeeded")
				}
				wantErr(t, err, websocket.ErrBadHandshake)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			_, ok := c.Extension("permessage-deflate")
			if ok != (tc.answer != "") {
				t.Fatalf("negotiated = %v", ok)
			}
		})
	}
}

// compress deflates p as a peer would (the standard library's flate, an
// independent implementation), with the sync-flush tail removed.
func compress(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(p)
	fw.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("flush tail missing")
	}
	return out[:len(out)-4]
}

// peerInflater decompresses what our engine sends, keeping the last 32 KiB
// as the dictionary of the next message (the engine uses context takeover).
type peerInflater struct{ dict []byte }

func (pi *peerInflater) inflate(t testing.TB, p []byte) []byte {
	t.Helper()
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))
	out, err := io.ReadAll(flate.NewReaderDict(src, pi.dict))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	pi.dict = append(pi.dict, out...)
	if len(pi.dict) > 32<<10 {
		pi.dict = pi.dict[len(pi.dict)-32<<10:]
	}
	return out
}

// startDeflate is start() with permessage-deflate negotiated with the wire
// peer, which offers (or answers) it without parameters.
func startDeflate(t *testing.T, r role, maxMsg int64, run func(c *websocket.Conn) error) *session {
	t.Helper()
	set := websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{Threshold: -1}))
	if r == roleServer {
		s, resp := startServerWith(t, &websocket.AcceptOptions{Extensions: set, MaxMessageSize: maxMsg, CloseTimeout: 2 * time.Second},
			"Sec-WebSocket-Extensions: permessage-deflate\r\n", run)
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate" {
			t.Fatalf("answer %q, want permessage-deflate", got)
		}
		return s
	}
	url, peers := fakeServer(t, func(w io.Writer, req *http.Request) {
		fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
			wsAccept(req.Header.Get("Sec-WebSocket-Key")))
	})
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: set, MaxMessageSize: maxMsg, CloseTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := <-peers
	p.t = t
	s := &session{wirePeer: p, conn: c, done: make(chan error, 1)}
	go func() {
		err := run(c)
		c.CloseNow()
		s.done <- err
	}()
	return s
}

// TestDeflateWire plays a peer that compresses with the standard library
// against both roles.
func TestDeflateWire(t *testing.T) {
	forRoles(t, func(t *testing.T, r role) {
		t.Run("compressed messages of many sizes, fragmented and not", func(t *testing.T) {
			s := startDeflate(t, r, 0, echo)
			var pi peerInflater
			for _, n := range []int{0, 1, 50, 1000, 20000, 100000} {
				msg := bytes.Repeat([]byte("wsrpc compresses "), n/17+1)[:n]
				z := compress(t, msg)
				if n%2 == 0 || len(z) < 3 {
					s.frame(true, 0x40, opText, z)
				} else {
					third := len(z) / 3
					s.frame(false, 0x40, opText, z[:third])
					s.send(opPing, []byte("between"))
					s.frame(false, 0, opCont, z[third:2*third])
					s.frame(true, 0, opCont, z[2*third:])
					s.expect(opPong, []byte("between"))
				}
				f := s.mustRead()
				if f.op != opText || !f.fin || f.rsv != 0x40 {
					t.Fatalf("echo frame op %d fin %v rsv %#x", f.op, f.fin, f.rsv)
				}
				if got := pi.inflate(t, f.payload); !bytes.Equal(got, msg) {
					t.Fatalf("n=%d: echo differs", n)
				}
			}
			s.sendClose(1000, "")
			s.expectClose(1000)
		})
		// An empty payload with RSV1 is, with the tail, a DEFLATE stream cut
		// short (the empty message compresses to 0x00, RFC 7692 §7.2.3.6),
		// but some senders write it and zlib-based readers take it as the
		// empty message; so do we, and the next message decodes as usual.
		t.Run("an empty compressed payload is the empty message", func(t *testing.T) {
			s := startDeflate(t, r, 0, echo)
			var pi peerInflater
			for _, msg := range [][]byte{nil, []byte("and then a message"), nil} {
				s.frame(true, 0x40, opText, nil)
				if msg != nil {
					s.frame(true, 0x40, opText, compress(t, msg))
				}
				if f := s.mustRead(); f.op != opText || len(pi.inflate(t, f.payload)) != 0 {
					t.Fatalf("echo of the empty payload: op %d %q", f.op, f.payload)
				}
				if msg != nil {
					if got := pi.inflate(t, s.mustRead().payload); !bytes.Equal(got, msg) {
						t.Fatalf("echo %q, want %q", got, msg)
					}
				}
			}
			s.sendClose(1000, "")
			s.expectClose(1000)
		})
		t.Run("context takeover from the peer", func(t *testing.T) {
			s := startDeflate(t, r, 0, echo)
			var pi peerInflater
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.BestCompression)
			msg := []byte(strings.Repeat("the same words again and again ", 20))
			for i := 0; i < 3; i++ {
				b.Reset()
				fw.Write(msg)
				fw.Flush()
				z := b.Bytes()[:b.Len()-4]
				if i > 0 && len(z) > 20 {
					t.Fatalf("second message not referencing the first (%d bytes)", len(z))
				}
				s.frame(true, 0x40, opText, z)
				if got := pi.inflate(t, s.mustRead().payload); !bytes.Equal(got, msg) {
					t.Fatal("echo differs")
				}
			}
		})
		t.Run("final block instead of a flush", func(t *testing.T) {
			s := startDeflate(t, r, 0, echo)
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, flate.BestSpeed)
			fw.Write([]byte("ends with BFINAL"))
			fw.Close()
			s.frame(true, 0x40, opText, b.Bytes())
			var pi peerInflater
			if got := pi.inflate(t, s.mustRead().payload); string(got) != "ends with BFINAL" {
				t.Fatalf("got %q", got)
			}
		})
		failures := []struct {
			name string
			code int
			send func(s *session)
		}{
			{"RSV1 on a continuation frame", 1002, func(s *session) {
				z := compress(t, []byte("fragmented"))
				s.frame(false, 0x40, opText, z[:2])
				s.frame(true, 0x40, opCont, z[2:])
			}},
			{"RSV1 on a ping", 1002, func(s *session) { s.frame(true, 0x40, opPing, []byte("x")) }},
			{"RSV1 on a close", 1002, func(s *session) { s.frame(true, 0x40, opClose, closePayload(1000, "")) }},
			{"RSV2 not owned", 1002, func(s *session) { s.frame(true, 0x20, opText, []byte("x")) }},
			{"corrupt compressed data", 1007, func(s *session) { s.frame(true, 0x40, opBinary, []byte{0xff, 0xff, 0xff, 0xff, 0x00}) }},
			{"data after the final block", 1007, func(s *session) {
				var b bytes.Buffer
				fw, _ := flate.NewWriter(&b, flate.BestSpeed)
				fw.Write([]byte("done"))
				fw.Close()
				s.frame(true, 0x40, opBinary, append(b.Bytes(), 0x42, 0x42))
			}},
			{"invalid UTF-8 after decompression", 1007, func(s *session) {
				s.frame(true, 0x40, opText, compress(t, []byte("ok \xc3\x28 not ok")))
			}},
			{"bomb", 1009, func(s *session) {
				s.frame(true, 0x40, opBinary, compress(t, make([]byte, 8<<20)))
			}},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				s := startDeflate(t, r, 1<<20, echo)
				tc.send(s)
				s.expectClose(tc.code)
				err := s.result()
				if tc.code == 1007 && !strings.Contains(tc.name, "UTF-8") {
					wantErr(t, err, websocket.ErrInvalidPayload)
				} else {
					wantErr(t, err, failSentinel(tc.code))
				}
			})
		}
	})
}

// TestDeflateBombMemory: a message that inflates far past MaxMessageSize
// fails with 1009 after about MaxMessageSize of output, without
// allocating what the whole message would inflate to.
func TestDeflateBombMemory(t *testing.T) {
	const inflated = 256 << 20
	z := compress(t, make([]byte, inflated)) // ~256 KiB on the wire
	s := startDeflate(t, roleServer, 1<<20, func(c *websocket.Conn) error {
		_, _, err := c.Read(context.Background())
		return err
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s.frame(true, 0x40, opBinary, z)
	s.expectClose(1009)
	wantErr(t, s.result(), websocket.ErrMessageTooBig)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("allocated %d MiB for a %d MiB bomb with a 1 MiB limit", alloc>>20, inflated>>20)
	}
}

// TestDeflateWindowBombMemory is TestDeflateBombMemory for a bomb built
// from the window that context takeover keeps from earlier messages
// (RFC 7692 §7.1.1): after messages that fill the engine's window with a
// 30,000-byte chunk, a message of nothing but matches into it inflates to
// 30 MB. It must fail with 1009 having allocated about MaxMessageSize, not
// the 30 MB.
func TestDeflateWindowBombMemory(t *testing.T) {
	const limit, priming, copies = 1 << 20, 20, 1000
	chunk := make([]byte, 30000) // fits the 32 KiB window
	for i := range chunk {
		chunk[i] = byte('a' + (i*7919)%26 + (i/26)%3)
	}
	// The peer compresses with context takeover too: one compressor for
	// all its messages, each ending with a flush (RFC 7692 §7.2.1).
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestSpeed)
	message := func(copies int) []byte {
		z.Reset()
		for range copies {
			fw.Write(chunk)
		}
		fw.Flush()
		return bytes.Clone(z.Bytes()[:z.Len()-4])
	}
	var primes [][]byte
	for range priming {
		primes = append(primes, message(1))
	}
	bomb := message(copies)
	s := startDeflate(t, roleServer, limit, func(c *websocket.Conn) error {
		for i := 0; ; i++ {
			_, got, err := c.Read(context.Background())
			if err != nil {
				return err
			}
			if i >= priming || !bytes.Equal(got, chunk) {
				return fmt.Errorf("message %d: %d bytes, not the chunk", i, len(got))
			}
		}
	})
	for _, p := range primes {
		s.frame(true, 0x40, opBinary, p)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s.frame(true, 0x40, opBinary, bomb)
	s.expectClose(1009)
	wantErr(t, s.result(), websocket.ErrMessageTooBig)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("allocated %d MiB for a %d MiB bomb of %d KiB with a 1 MiB limit", alloc>>20, copies*len(chunk)>>20, len(bomb)>>10)
	}
}

// TestDeflateIncompressibleAtLimit guards MaxMessageSize for compressed
// messages: it bounds the message after decompression, and data that does
// not compress grows a little on the wire (stored blocks), so a message of
// exactly the limit sent by our own deflating writer, whole or streamed,
// must reach a reader with the same limit; one byte more still fails with
// 1009. The wire sizes were once held to the limit itself.
func TestDeflateIncompressibleAtLimit(t *testing.T) {
	const limit = 64 << 10
	set := websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{Threshold: -1}))
	msg := make([]byte, limit+1)
	rand.NewChaCha8([32]byte{7}).Read(msg)
	cases := []struct {
		name  string
		size  int
		chunk int // write with Writer in chunks of this size; 0: Write
	}{
		{"write", limit, 0},
		{"writer", limit, 10000},
		{"write over the limit", limit + 1, 0},
		{"writer over the limit", limit + 1, 10000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []byte, 1)
			done := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Extensions: set, MaxMessageSize: limit})
				if err != nil {
					done <- err
					return
				}
				defer c.CloseNow()
				ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
				defer cancel()
				_, p, err := c.Read(ctx)
				got <- p
				done <- err
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Extensions: set, MaxMessageSize: limit})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if _, ok := c.Extension("permessage-deflate"); !ok {
				t.Fatal("permessage-deflate not negotiated")
			}
			m := msg[:tc.size]
			// The client's writes may fail once the server has failed the
			// connection; what counts is what the server read.
			if tc.chunk == 0 {
				_ = c.Write(ctx, websocket.MessageBinary, m)
			} else if w, err := c.Writer(ctx, websocket.MessageBinary); err == nil {
				for p := m; len(p) > 0; p = p[min(tc.chunk, len(p)):] {
					w.Write(p[:min(tc.chunk, len(p))])
				}
				w.Close()
			}
			var rerr error
			select {
			case rerr = <-done:
			case <-time.After(wireTimeout):
				t.Fatal("server did not return")
			}
			p := <-got
			if tc.size <= limit {
				if rerr != nil || !bytes.Equal(p, m) {
					t.Fatalf("server read of a %d-byte message with MaxMessageSize %d: %d bytes, %v", tc.size, limit, len(p), rerr)
				}
				return
			}
			wantErr(t, rerr, websocket.ErrMessageTooBig)
			if code := websocket.FailureStatus(rerr); code != websocket.StatusMessageTooBig {
				t.Fatalf("close code %d, want 1009", code)
			}
		})
	}
}

// frameLog is a second, frame-level extension: it owns no RSV bit, offers
// two alternatives, and records every frame's opcode in both directions.
// It shows the extension API is not shaped around deflate alone.
type frameLog struct{}

type frameLogSession struct {
	mu     sync.Mutex
	level  string
	events []string
}

func (frameLog) Name() string { return "x-frame-log" }
func (frameLog) RSV() byte    { return 0 }
func (frameLog) ClientOffers() [][]websocket.Param {
	return [][]websocket.Param{{{Name: "level", Value: "2"}}, {{Name: "level", Value: "1"}}}
}

func (frameLog) ServerNegotiate(offers [][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	for _, o := range offers {
		if len(o) == 1 && o[0].Name == "level" && o[0].Value == "1" {
			return o, &frameLogSession{level: "1"}, true
		}
	}
	return nil, nil, false
}

func (frameLog) ClientAccept(answer []websocket.Param) (websocket.ExtensionSession, error) {
	if len(answer) != 1 || answer[0].Name != "level" {
		return nil, fmt.Errorf("bad answer %v", answer)
	}
	return &frameLogSession{level: answer[0].Value}, nil
}

func (s *frameLogSession) OutgoingFrame(f *websocket.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("out %v rsv1=%v", f.Opcode, f.RSV&websocket.RSV1 != 0))
	return nil
}

func (s *frameLogSession) IncomingFrame(h *websocket.FrameHeader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("in %v rsv1=%v", h.Opcode, h.RSV&websocket.RSV1 != 0))
	return nil
}

func TestExtensionAPIWithTwoExtensions(t *testing.T) {
	set := websocket.MustExtensionSet(websocket.PerMessageDeflate(&websocket.DeflateOptions{Threshold: -1}), frameLog{})
	srvConn := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Extensions: set})
		if err != nil {
			return
		}
		srvConn <- c
		echo(c)
	}))
	defer srv.Close()
	ctx := context.Background()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{Extensions: set})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := resp.Header.Values("Sec-WebSocket-Extensions"); strings.Join(got, ", ") != "permessage-deflate, x-frame-log; level=1" {
		t.Fatalf("answer %q", got)
	}
	sc := <-srvConn
	for _, conn := range []*websocket.Conn{c, sc} {
		exts := conn.Extensions()
		if len(exts) != 2 || exts[0].Name != "permessage-deflate" || exts[1].Name != "x-frame-log" {
			t.Fatalf("Extensions() = %+v", exts)
		}
		if _, ok := conn.Extension("X-Frame-Log"); !ok {
			t.Fatal("lookup by token failed")
		}
		if _, ok := conn.Extension("x-absent"); ok {
			t.Fatal("found an extension that was not negotiated")
		}
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("logged and compressed")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "logged and compressed" {
		t.Fatal(err)
	}
	if err := c.Ping(ctxWithReader(t, c)); err != nil {
		t.Fatal(err)
	}
	ne, _ := c.Extension("x-frame-log")
	log := ne.Session.(*frameLogSession)
	log.mu.Lock()
	got := strings.Join(log.events, "|")
	log.mu.Unlock()
	// The frame transformer sees the compressed data frame (RSV1 set by the
	// message transformer installed before it) and control frames too.
	want := "out text rsv1=true|in text rsv1=true|out ping rsv1=false|in pong rsv1=false"
	if got != want {
		t.Fatalf("frame log %q, want %q", got, want)
	}
}

// ctxWithReader runs a reader on c while a Ping waits for its pong.
func ctxWithReader(t *testing.T, c *websocket.Conn) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wireTimeout)
	t.Cleanup(cancel)
	go c.Read(ctx)
	return ctx
}

func TestExtensionSetValidation(t *testing.T) {
	deflate := websocket.PerMessageDeflate(nil)
	cases := []struct {
		name string
		exts []websocket.Extension
		ok   bool
	}{
		{"one", []websocket.Extension{deflate}, true},
		{"disjoint bits", []websocket.Extension{deflate, rsvExt{"x-two", websocket.RSV2}, frameLog{}}, true},
		{"same bit", []websocket.Extension{deflate, rsvExt{"x-also-rsv1", websocket.RSV1}}, false},
		{"overlapping bits", []websocket.Extension{rsvExt{"x-a", websocket.RSV2 | websocket.RSV3}, rsvExt{"x-b", websocket.RSV3}}, false},
		{"same name", []websocket.Extension{frameLog{}, frameLog{}}, false},
		{"not a token", []websocket.Extension{rsvExt{"bad name", 0}}, false},
		{"not an RSV bit", []websocket.Extension{rsvExt{"x-bits", 0x80}}, false},
	}
	for _, tc := range cases {
		_, err := websocket.NewExtensionSet(tc.exts...)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

type rsvExt struct {
	name string
	rsv  byte
}

func (e rsvExt) Name() string                      { return e.name }
func (e rsvExt) RSV() byte                         { return e.rsv }
func (e rsvExt) ClientOffers() [][]websocket.Param { return [][]websocket.Param{nil} }
func (e rsvExt) ServerNegotiate([][]websocket.Param) ([]websocket.Param, websocket.ExtensionSession, bool) {
	return nil, nil, false
}
func (e rsvExt) ClientAccept([]websocket.Param) (websocket.ExtensionSession, error) {
	return nil, fmt.Errorf("never negotiated")
}

// A compressed message over the limit on the wire names the configured
// limit, then the wire allowance: the error read "exceeds the
// 1065984-byte limit" for a MaxMessageSize of 1 MiB (gorilla-migration
// walkthrough), a figure nobody configured.
func TestDeflateLimitErrorNamesConfiguredLimit(t *testing.T) {
	const limit = 1000
	s := startDeflate(t, roleServer, limit, func(c *websocket.Conn) error {
		_, _, err := c.Read(context.Background())
		return err
	})
	s.frame(true, 0x40, opBinary, make([]byte, 3000)) // past the wire allowance; never inflated
	s.expectClose(1009)
	err := s.result()
	wantErr(t, err, websocket.ErrMessageTooBig)
	if want := "exceeds the 1000-byte limit (2039 bytes on the wire for a compressed one)"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to contain %q", err, want)
	}
}
