package websocket

// Native fuzz targets. Seed corpora live in testdata/fuzz/<Target>/; the
// f.Add seeds below cover the main shapes of valid input.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// frameBytes encodes one frame for seeds (masked with a fixed key).
func frameBytes(fin bool, rsv byte, op Opcode, masked bool, payload []byte) []byte {
	h := header{fin: fin, rsv: rsv, opcode: op, masked: masked, length: int64(len(payload))}
	if masked {
		h.key = 0x11223344
	}
	var b [maxHeaderSize]byte
	n := putHeader(b[:], &h)
	out := append(b[:n:n], payload...)
	if masked {
		mask(h.key, 0, out[n:])
	}
	return out
}

// FuzzReadFrames feeds bytes to a connection as the peer's stream. The first
// byte picks the mode: bit 0 client role (else server), bit 1 raw mode,
// bit 2 small limits. Reading must end with a clean error, never panic or
// hang, and agree with modelRead: the same messages (frames in raw mode)
// and the same kind of end.
func FuzzReadFrames(f *testing.F) {
	for _, mode := range []byte{0, 1, 2, 3, 4} {
		masked := mode&1 == 0
		var seed []byte
		seed = append(seed, mode)
		seed = append(seed, frameBytes(true, 0, OpText, masked, []byte("hello"))...)
		seed = append(seed, frameBytes(false, 0, OpBinary, masked, []byte{1, 2})...)
		seed = append(seed, frameBytes(true, 0, OpPing, masked, []byte("p"))...)
		seed = append(seed, frameBytes(true, 0, OpContinuation, masked, []byte{3})...)
		seed = append(seed, frameBytes(true, 0, OpPong, masked, nil)...)
		seed = append(seed, frameBytes(true, 0, OpText, masked, []byte("κόσμε"))...)
		seed = append(seed, frameBytes(true, 0, OpClose, masked, []byte{3, 0xE8, 'b', 'y', 'e'})...)
		f.Add(seed)
		f.Add(append([]byte{mode}, frameBytes(true, 0, OpText, masked, []byte("\xed\xa0\x80"))...))
		f.Add(append([]byte{mode}, frameBytes(true, RSV1, OpBinary, masked, bytes.Repeat([]byte("x"), 300))...))
		// A 64-bit length, cut short: large inputs make the fuzzer slow.
		f.Add(append([]byte{mode}, frameBytes(true, 0, OpBinary, masked, bytes.Repeat([]byte("y"), 70000))[:40]...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, stream := data[0], data[1:]
		client, raw, small := mode&1 != 0, mode&2 != 0, mode&4 != 0
		var maxFrame, maxMsg int64
		if small {
			maxFrame, maxMsg = 100, 300
		}
		cfg := resolveConfig(maxFrame, maxMsg, 0, 0, time.Second, 50*time.Millisecond, raw)
		local, peer := net.Pipe()
		c := newConn(local, client, cfg, "", nil, nil)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the peer's stream, then EOF
			defer wg.Done()
			if len(stream) > 0 { // net.Pipe turns an empty Write into a (0, nil) Read
				_, _ = peer.Write(stream)
			}
			peer.Close()
		}()
		go func() { // whatever we answer (pongs, close frames)
			defer wg.Done()
			_, _ = io.Copy(io.Discard, peer)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		var got []Frame // what the reads delivered, as modelRead gives it
		buf := make([]byte, 0, 64)
		for i := 0; i < 10000 && err == nil; i++ {
			if raw {
				var fr Frame
				if fr, err = c.ReadFrame(ctx, buf); err == nil {
					fr.Payload = bytes.Clone(fr.Payload)
					got = append(got, fr)
				}
			} else {
				var typ MessageType
				if typ, buf, err = c.ReadAppend(ctx, buf[:0]); err == nil {
					got = append(got, Frame{FrameHeader{Fin: true, Opcode: Opcode(typ), Length: int64(len(buf))}, bytes.Clone(buf)})
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("read hung: %v", err)
		}
		c.CloseNow()
		wg.Wait()
		var ce *CloseError
		var end modelEnd
		cut := false // reading may have ended early, before the model does
		switch {
		case err == nil:
			t.Fatal("10000 reads from a finite stream")
		case errors.As(err, &ce):
			end = modelClose
		case errors.Is(err, ErrProtocol):
			end = modelProtocol
		case errors.Is(err, ErrInvalidUTF8):
			end = modelUTF8
		case errors.Is(err, ErrMessageTooBig):
			end = modelTooBig
		case errors.Is(err, io.ErrUnexpectedEOF):
			end = modelEOF
		case errors.Is(err, ErrClosed),
			// Answering a ping after the test's peer closed its end.
			errors.Is(err, io.ErrClosedPipe):
			cut = true
		default:
			t.Fatalf("unclean error %T: %v", err, err)
		}

		// Against the model: the same frames or messages, in order, and
		// the same end (with the peer's close code and reason), unless a
		// pong that could not go out cut reading short.
		want, wantEnd, wantClose := modelRead(stream, client, raw, c.cfg.maxFrameSize, c.cfg.maxMessageSize)
		if cut && len(got) <= len(want) {
			want = want[:len(got)]
		} else if !cut && end != wantEnd {
			t.Fatalf("reading ended with %v (%v), the model with %v", end, err, wantEnd)
		}
		if len(got) != len(want) {
			t.Fatalf("%d frames or messages read, the model has %d (end %v)", len(got), len(want), err)
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.FrameHeader != w.FrameHeader || !bytes.Equal(g.Payload, w.Payload) {
				t.Fatalf("read %d: %+v (%d bytes), the model has %+v (%d bytes)", i, g.FrameHeader, len(g.Payload), w.FrameHeader, len(w.Payload))
			}
		}
		if end == modelClose && (ce.Code != wantClose.Code || ce.Reason != wantClose.Reason) {
			t.Fatalf("close %d %q, the model has %d %q", ce.Code, ce.Reason, wantClose.Code, wantClose.Reason)
		}
	})
}

// FuzzHandshake parses request bytes and checks them as Accept would. It
// must never panic; an accepted request must be a GET with a valid key, and
// a refused one gets a 4xx wrapping ErrBadHandshake.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: b, a\r\nOrigin: https://x.example.com\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n"))
	// With permessage-deflate installed, so that the offers reach its
	// negotiation (an answer it cannot write would be a 500).
	opts := &AcceptOptions{Subprotocols: []string{"a", "b"}, OriginPatterns: []string{"*.example.com", "https://app.test"},
		Extensions: MustExtensionSet(PerMessageDeflate(&DeflateOptions{ClientMaxWindowBits: 12}))}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		accept, proto, _, herr := verifyClientHandshake(r, opts)
		if herr != nil {
			if herr.status < 400 || herr.status > 499 || !errors.Is(herr, ErrBadHandshake) {
				t.Fatalf("refusal %d %v", herr.status, herr)
			}
		} else {
			key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
			if r.Method != http.MethodGet || !validKey(key) || accept != acceptKey(key) {
				t.Fatalf("accepted %s with key %q", r.Method, key)
			}
			if proto != "" && proto != "a" && proto != "b" {
				t.Fatalf("chose subprotocol %q", proto)
			}
		}
		// Through Accept: a recorder cannot be hijacked, so an accepted
		// handshake fails there, cleanly.
		rec := httptest.NewRecorder()
		if c, err := Accept(rec, r, opts); err == nil || c != nil {
			t.Fatalf("Accept on a recorder: %v", err)
		}
	})
}

// FuzzParseExtensions: never panic; what parses re-formats to something
// that parses to the same elements.
func FuzzParseExtensions(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate",
		`x-foo; a="b"; c=d ,, y`,
		`a;b="\"`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		els, err := ParseExtensions([]string{s})
		if err != nil {
			return
		}
		var parts []string
		for _, e := range els {
			if !isToken(e.Name) {
				t.Fatalf("name %q is not a token", e.Name)
			}
			for _, p := range e.Params {
				if !isToken(p.Name) || p.Value != "" && !isToken(p.Value) {
					t.Fatalf("param %+v is not made of tokens", p)
				}
			}
			parts = append(parts, FormatExtension(e.Name, e.Params))
		}
		again, err := ParseExtensions([]string{strings.Join(parts, ", ")})
		if err != nil || len(again) != len(els) {
			t.Fatalf("re-parse of %q: %v", parts, err)
		}
		for i := range els {
			if again[i].Name != els[i].Name || len(again[i].Params) != len(els[i].Params) {
				t.Fatalf("re-parse: %+v != %+v", again[i], els[i])
			}
			for j := range els[i].Params {
				if again[i].Params[j] != els[i].Params[j] {
					t.Fatalf("re-parse: %+v != %+v", again[i], els[i])
				}
			}
		}
	})
}

// FuzzMask compares mask with the byte-by-byte definition, at once and in
// two pieces.
func FuzzMask(f *testing.F) {
	f.Add(uint32(0x12345678), uint8(0), []byte("hello, world"), uint16(5))
	f.Add(uint32(0xFFFFFFFF), uint8(3), bytes.Repeat([]byte{0xAA}, 100), uint16(33))
	f.Add(uint32(0), uint8(1), []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, key uint32, pos uint8, data []byte, split uint16) {
		p := int(pos & 3)
		want := bytes.Clone(data)
		var k [4]byte
		binary.LittleEndian.PutUint32(k[:], key)
		for i := range want {
			want[i] ^= k[(p+i)&3]
		}
		got := bytes.Clone(data)
		if np := mask(key, p, got); np != (p+len(data))&3 || !bytes.Equal(got, want) {
			t.Fatalf("mask(%#x, %d, %d bytes) differs from the reference", key, p, len(data))
		}
		got = bytes.Clone(data)
		s := int(split) % (len(data) + 1)
		np := mask(key, p, got[:s])
		mask(key, np, got[s:])
		if !bytes.Equal(got, want) {
			t.Fatalf("mask split at %d differs", s)
		}
	})
}

// FuzzUTF8 compares the validator with unicode/utf8.Valid, whole and fed in
// three pieces.
func FuzzUTF8(f *testing.F) {
	f.Add([]byte("κόσμε"), uint16(1), uint16(3))
	f.Add([]byte("\xed\xa0\x80"), uint16(1), uint16(2))
	f.Add([]byte("\xf4\x90\x80\x80"), uint16(0), uint16(2))
	f.Add([]byte("ascii only, long enough for the fast path"), uint16(9), uint16(17))
	// Long enough for the vector check on amd64, with an error past the
	// first block.
	f.Add([]byte(strings.Repeat("κόσμε €😀 ", 12)+"\xed\xa0\x80 tail"), uint16(40), uint16(70))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		want := utf8.Valid(data)
		if got := validUTF8(data); got != want {
			t.Fatalf("validUTF8(%q) = %v, want %v", data, got, want)
		}
		i := int(a) % (len(data) + 1)
		j := i + int(b)%(len(data)-i+1)
		var v utf8Validator
		ok := v.write(data[:i]) && v.write(data[i:j]) && v.write(data[j:])
		if (ok && v.complete()) != want {
			t.Fatalf("split %d/%d of %q: %v, want %v", i, j, data, ok && v.complete(), want)
		}
		// Fail fast, exactly: a prefix is accepted if and only if some
		// valid string starts with it, fed whole and after the first piece.
		var w utf8Validator
		if got, want := w.write(data[:j]), validPrefix(data[:j]); got != want {
			t.Fatalf("prefix %q: accepted %v, want %v", data[:j], got, want)
		}
		var x utf8Validator
		if got, want := x.write(data[:i]) && x.write(data[i:j]), validPrefix(data[:j]); got != want {
			t.Fatalf("prefix %q in pieces at %d: accepted %v, want %v", data[:j], i, got, want)
		}
	})
}

// validPrefix reports whether some valid UTF-8 string starts with q: q is
// valid, or completing its last, unfinished sequence makes it so. The
// completions tried hold the endpoints of every range of continuation
// bytes table 3-7 of the Unicode Standard allows, so one of them
// completes any sequence that can be completed.
func validPrefix(q []byte) bool {
	if utf8.Valid(q) {
		return true
	}
	conts := []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF}
	for n := 1; n <= 3; n++ {
		var try func(r []byte, k int) bool
		try = func(r []byte, k int) bool {
			if k == 0 {
				return utf8.Valid(r)
			}
			for _, c := range conts {
				if try(append(r, c), k-1) {
					return true
				}
			}
			return false
		}
		if try(append([]byte(nil), q...), n) {
			return true
		}
	}
	return false
}
