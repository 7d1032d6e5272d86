// Package load is the one load client for every echo server in the
// comparison: a small RFC 6455 client written here (not the library under
// test) that masks what it sends, checks every byte that comes back and
// each message's length, and offers permessage-deflate with context
// takeover for the compressed scenario.
package load

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
)

// RFC 6455 opcodes and header bits the client needs.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	finBit  = 0x80
	rsv1Bit = 0x40
	rsv2Bit = 0x20
	rsv3Bit = 0x10
	maskBit = 0x80
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" // RFC 6455 §1.3

// conn is one client connection. Owned by one goroutine.
type conn struct {
	nc   net.Conn
	raw  bool // tcp ceiling: no handshake, echoed frames come back masked
	rbuf []byte
	r, w int
	wbuf []byte
	key  uint32 // xorshift state for masking keys
	// maxFrame is the largest frame payload the client accepts (connect
	// sets it from the scenario): a longer one is an error, not a buffer
	// of whatever size its header claims.
	maxFrame int

	// permessage-deflate, when negotiated.
	deflate     bool
	serverNoCtx bool // the server resets its compressor per message
	clientNoCtx bool // we must compress each message on its own
	clientBits  int  // the LZ77 window the server allows us (8-15)
	feed        feed
	inflater    io.ReadCloser
	scratch     []byte

	wireIn int64 // bytes of frames received (headers and payloads)
}

// dial opens a connection and runs the opening handshake (RFC 6455 §4.1),
// offering permessage-deflate if deflate is set. raw skips the handshake
// (the TCP ceiling).
func dial(addr string, raw, deflate bool, rbufSize int) (*conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, raw: raw, rbuf: make([]byte, rbufSize), deflate: deflate}
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	c.key = binary.LittleEndian.Uint32(seed[:]) | 1
	if deflate {
		c.inflater = flate.NewReader(&c.feed)
	}
	if raw {
		return c, nil
	}
	if err := c.handshake(addr); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *conn) handshake(addr string) error {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if c.deflate {
		// Context takeover both ways unless the server says otherwise.
		req += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	req += "\r\n"
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.nc, req); err != nil {
		return err
	}
	var end int
	for {
		if i := bytes.Index(c.rbuf[:c.w], []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
			break
		}
		if c.w == len(c.rbuf) {
			return errors.New("handshake response too long")
		}
		n, err := c.nc.Read(c.rbuf[c.w:])
		c.w += n
		if err != nil && n == 0 {
			return fmt.Errorf("handshake: %w", err)
		}
	}
	resp := string(c.rbuf[:end])
	c.r = end
	lines := strings.Split(resp, "\r\n")
	if !strings.HasPrefix(lines[0], "HTTP/1.1 101") {
		return fmt.Errorf("handshake: %q", lines[0])
	}
	h := sha1.Sum([]byte(key + acceptGUID))
	want := base64.StdEncoding.EncodeToString(h[:])
	var gotAccept bool
	var ext string
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(name) {
		case "sec-websocket-accept":
			gotAccept = val == want
		case "sec-websocket-extensions":
			ext += val + ","
		}
	}
	if !gotAccept {
		return errors.New("handshake: bad Sec-WebSocket-Accept")
	}
	if c.deflate {
		if !strings.Contains(ext, "permessage-deflate") {
			return fmt.Errorf("handshake: server did not accept permessage-deflate (%q)", ext)
		}
		c.serverNoCtx = strings.Contains(ext, "server_no_context_takeover")
		c.clientNoCtx = strings.Contains(ext, "client_no_context_takeover")
		c.clientBits = 15
		if _, v, ok := strings.Cut(ext, "client_max_window_bits="); ok {
			v = strings.TrimLeft(v, "\"")
			n := 0
			for n < len(v) && v[n] >= '0' && v[n] <= '9' {
				n++
			}
			b, err := strconv.Atoi(v[:n])
			if err != nil || b < 8 || b > 15 {
				return fmt.Errorf("handshake: bad client_max_window_bits in %q", ext)
			}
			c.clientBits = b
		}
	} else if ext != "" {
		return fmt.Errorf("handshake: unexpected extensions %q", ext)
	}
	return nil
}

// nextKey returns a fresh masking key (xorshift32; a benchmark client needs
// keys that vary, not keys an attacker cannot predict).
func (c *conn) nextKey() uint32 {
	x := c.key
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	c.key = x
	return x
}

// appendFrame appends one masked, final client frame whose payload is p
// with its first len(head) bytes replaced by head (a message number on a
// fixed pattern). The payload is masked as it is copied, one pass over it:
// at 64 KiB the client's copy-then-mask was an eighth of its core, and a
// load client that is the bottleneck measures itself, not the server.
func (c *conn) appendFrame(op byte, rsv1 bool, p, head []byte) {
	b0 := finBit | op
	if rsv1 {
		b0 |= rsv1Bit
	}
	n := len(p)
	switch {
	case n <= 125:
		c.wbuf = append(c.wbuf, b0, maskBit|byte(n))
	case n <= 0xFFFF:
		c.wbuf = append(c.wbuf, b0, maskBit|126, byte(n>>8), byte(n))
	default:
		c.wbuf = append(c.wbuf, b0, maskBit|127)
		c.wbuf = binary.BigEndian.AppendUint64(c.wbuf, uint64(n))
	}
	key := c.nextKey()
	c.wbuf = binary.LittleEndian.AppendUint32(c.wbuf, key)
	start := len(c.wbuf)
	c.wbuf = slices.Grow(c.wbuf, n)[:start+n]
	dst := c.wbuf[start:]
	h := min(len(head), n)
	maskCopy(key, dst[:h], head[:h])
	// The key's phase continues where head ended (RFC 6455 §5.3: byte i
	// takes key byte i mod 4).
	maskCopy(bits.RotateLeft32(key, -8*(h%4)), dst[h:], p[h:])
}

func (c *conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

type frame struct {
	op      byte
	fin     bool
	rsv1    bool
	payload []byte // unmasked, valid until the next read
}

// frameLen returns the length of the complete frame at the start of b, or 0
// if b does not hold its header yet, or minus the frame's length if it
// holds the header but not the whole payload; hdr is the header's length.
// A payload length above limit is an error, and so is one with its most
// significant bit set (RFC 6455 §5.2: that bit MUST be 0), which as an int
// would be negative.
func frameLen(b []byte, limit int) (total, hdr int, err error) {
	if len(b) < 2 {
		return 0, 0, nil
	}
	hdr = 2
	n := uint64(b[1] & 0x7F)
	switch n {
	case 126:
		hdr = 4
		if len(b) < hdr {
			return 0, 0, nil
		}
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		hdr = 10
		if len(b) < hdr {
			return 0, 0, nil
		}
		n = binary.BigEndian.Uint64(b[2:])
		if n>>63 != 0 {
			return 0, 0, verifyf("frame length %#x has its most significant bit set (RFC 6455 §5.2)", n)
		}
	}
	if n > uint64(limit) {
		return 0, 0, verifyf("frame of %d bytes, more than the %d this scenario's echoes can need", n, limit)
	}
	if b[1]&maskBit != 0 {
		hdr += 4
	}
	total = hdr + int(n)
	if len(b) < total {
		return -total, hdr, nil // negative: need this many bytes in all
	}
	return total, hdr, nil
}

// buffered reports whether a whole frame is already in the read buffer.
func (c *conn) buffered() bool {
	t, _, _ := frameLen(c.rbuf[c.r:c.w], c.maxFrame)
	return t > 0
}

// readFrame returns the next frame, reading as needed.
func (c *conn) readFrame() (frame, error) {
	for {
		t, hdr, err := frameLen(c.rbuf[c.r:c.w], c.maxFrame)
		if err != nil {
			return frame{}, err
		}
		if t > 0 {
			b := c.rbuf[c.r : c.r+t]
			c.r += t
			c.wireIn += int64(t)
			f := frame{op: b[0] & 0x0F, fin: b[0]&finBit != 0, rsv1: b[0]&rsv1Bit != 0, payload: b[hdr:]}
			if err := c.checkBits(f, b[0]); err != nil {
				return f, err
			}
			if b[1]&maskBit != 0 {
				if !c.raw {
					return f, verifyf("masked frame from server (RFC 6455 §5.1)")
				}
				maskCopy(binary.LittleEndian.Uint32(b[hdr-4:]), f.payload, f.payload)
			}
			return f, nil
		}
		need := -t
		if need < 14 {
			need = 14
		}
		if c.r > 0 && (c.r == c.w || c.r+need > len(c.rbuf)) {
			c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r = 0
		}
		if need > len(c.rbuf) {
			nb := make([]byte, need+need/2)
			c.w = copy(nb, c.rbuf[c.r:c.w])
			c.r = 0
			c.rbuf = nb
		}
		n, err := c.nc.Read(c.rbuf[c.w:])
		c.w += n
		if n == 0 && err != nil {
			return frame{}, err
		}
	}
}

// checkBits refuses a frame whose header no conforming server sends,
// whatever its payload: a client that took it would score an echo every
// browser fails the connection on. RSV2 and RSV3 belong to no extension
// the client offers, and RSV1 only to permessage-deflate, which sets it on
// the first frame of a data message alone (RFC 6455 §5.2, RFC 7692 §6.1);
// a control frame is final and carries at most 125 bytes (RFC 6455 §5.5).
func (c *conn) checkBits(f frame, b0 byte) error {
	if b0&(rsv2Bit|rsv3Bit) != 0 {
		return verifyf("frame with RSV2 or RSV3 set (%#x), no extension negotiated for them (RFC 6455 §5.2)", b0)
	}
	control := f.op&0x08 != 0
	if f.rsv1 && (!c.deflate || control || f.op == opContinuation) {
		return verifyf("RSV1 set on a frame of opcode %d, not the first frame of a compressed message (RFC 6455 §5.2, RFC 7692 §6.1)", f.op)
	}
	if control && (!f.fin || len(f.payload) > 125) {
		return verifyf("control frame of opcode %d fragmented or longer than 125 bytes (RFC 6455 §5.5)", f.op)
	}
	return nil
}

// readMessage reads one data message, calling chunk for each fragment's
// payload (compressed payloads go to the inflater first, see message),
// and returns the message's length as sent (compressed, if it was).
// Pings are answered; a close frame ends the connection with an error.
func (c *conn) readMessage(chunk func(op byte, rsv1 bool, off int, p []byte) error) (int, error) {
	off := 0
	var op byte
	var rsv1 bool
	for {
		f, err := c.readFrame()
		if err != nil {
			return off, err
		}
		switch f.op {
		case opPing:
			c.appendFrame(opPong, false, f.payload, nil)
			if err := c.flush(); err != nil {
				return off, err
			}
			continue
		case opPong:
			continue
		case opClose:
			return off, fmt.Errorf("server closed the connection: % x", f.payload)
		case opContinuation:
			if off == 0 && op == 0 {
				return off, verifyf("continuation without a message (RFC 6455 §5.4)")
			}
		default:
			if op != 0 {
				return off, verifyf("new message inside a fragmented one (RFC 6455 §5.4)")
			}
			op, rsv1 = f.op, f.rsv1
		}
		if err := chunk(op, rsv1, off, f.payload); err != nil {
			return off, err
		}
		off += len(f.payload)
		if f.fin {
			return off, nil
		}
	}
}

// maskCopy sets dst to src XOR key (RFC 6455 §5.3), key being the
// little-endian load of the four key bytes; dst and src have the same
// length and may be the same slice. Four words a turn.
func maskCopy(key uint32, dst, src []byte) {
	dst = dst[:len(src)]
	k := uint64(key)<<32 | uint64(key)
	for len(src) >= 32 {
		d, s := dst[:32], src[:32]
		binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(s[0:])^k)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^k)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^k)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^k)
		dst, src = dst[32:], src[32:]
	}
	for len(src) >= 8 {
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src)^k)
		dst, src = dst[8:], src[8:]
	}
	for i := range src {
		dst[i] = src[i] ^ byte(bits.RotateLeft32(key, -8*i))
	}
}

// feed is the inflater's input: the compressed messages, each followed by
// the 00 00 ff ff that the sender stripped (RFC 7692 §7.2.2). It is an
// io.ByteReader, so flate reads no further than it must.
type feed struct {
	buf []byte
	pos int
}

func (f *feed) add(p []byte) {
	if f.pos == len(f.buf) {
		f.buf, f.pos = f.buf[:0], 0
	} else if f.pos > 64<<10 {
		f.buf = f.buf[:copy(f.buf, f.buf[f.pos:])]
		f.pos = 0
	}
	f.buf = append(f.buf, p...)
}

func (f *feed) Read(p []byte) (int, error) {
	if f.pos == len(f.buf) {
		return 0, io.EOF
	}
	n := copy(p, f.buf[f.pos:])
	f.pos += n
	return n, nil
}

func (f *feed) ReadByte() (byte, error) {
	if f.pos == len(f.buf) {
		return 0, io.EOF
	}
	b := f.buf[f.pos]
	f.pos++
	return b, nil
}

var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflate decompresses the message just fed and checks it is want, every
// byte and its length. It asks for one byte more than want: the inflater
// hands its output over at each sync flush (the end of a compressed
// message, RFC 7692 §7.2.1), so the read that completes want also brings
// whatever that flush released beyond it. Reading on until the inflater
// says its input is spent would settle every case, but leaves it unable
// to go on (its errors stick) where the next message needs the window
// this one left (context takeover).
func (c *conn) inflate(want []byte) error {
	c.feed.add(deflateTail)
	if cap(c.scratch) < len(want)+1 {
		c.scratch = make([]byte, len(want)+1)
	}
	got := c.scratch[:len(want)+1]
	n, err := io.ReadAtLeast(c.inflater, got, len(want))
	switch {
	case n > len(want):
		extra, _ := c.drain()
		return verifyf("echo of %d bytes, want %d", n+extra, len(want))
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The input ran out before want was complete.
		return verifyf("echo of %d bytes, want %d", n, len(want))
	case err != nil:
		return verifyf("inflate: %v", err)
	}
	if !bytes.Equal(got[:n], want) {
		return verifyf("inflated echo differs from what was sent")
	}
	if c.feed.pos < len(c.feed.buf) && c.serverNoCtx {
		// Input is left after want was complete: more deflate blocks,
		// which may hold more text (a longer echo) or none (a second sync
		// flush). The next compressed message resets the inflater, so it
		// can be run to the end of its input. Under context takeover it
		// cannot (see above); there those blocks stay in the feed, and
		// any text they hold comes out ahead of the next message's, which
		// then differs: a longer echo is caught one message late, on
		// every message but a connection's last.
		extra, err := c.drain()
		if extra > 0 {
			return verifyf("echo of %d bytes, want %d", n+extra, len(want))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return verifyf("inflate: %v", err)
		}
	}
	return nil
}

// drain inflates what is left of the input and returns how many bytes it
// gave, with the error that stopped it (io.ErrUnexpectedEOF when the
// input ran out). The inflater is of no use afterwards until reset.
func (c *conn) drain() (int, error) {
	n := 0
	for {
		k, err := c.inflater.Read(c.scratch[:cap(c.scratch)])
		n += k
		if err != nil {
			return n, err
		}
	}
}

// resetInflater starts a message without the previous messages' window.
func (c *conn) resetInflater() {
	c.feed.buf, c.feed.pos = c.feed.buf[:0], 0
	_ = c.inflater.(flate.Resetter).Reset(&c.feed, nil)
}
