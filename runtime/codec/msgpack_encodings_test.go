package codec_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// The msgpack decoder must read what any conforming encoder writes, not
// only its own (smallest) forms, and must refuse any cut-short input
// cleanly. These tests use an independent parser and re-encoder of
// msgpack (spec.md, "Formats") to produce such input.

// mpNode is one msgpack value as a generic decoder sees it.
type mpNode struct {
	kind  byte // 'n' nil, 'b' bool, 'i' negative int, 'u' non-negative int, 'f' float32, 'd' float64, 's' str, 'y' bin, 'a' array, 'm' map, 'e' ext
	b     bool
	i     int64
	u     uint64
	f     float64
	raw   []byte
	etype int8
	kids  []mpNode // array elements, or map keys and values alternating
}

// parseMP is a tiny independent msgpack parser (spec.md), for re-encoding
// valid input in other, non-canonical but valid forms.
func parseMP(b []byte) (mpNode, []byte, error) {
	if len(b) == 0 {
		return mpNode{}, nil, errors.New("eof")
	}
	c, b := b[0], b[1:]
	need := func(n int) ([]byte, []byte, error) {
		if len(b) < n {
			return nil, nil, errors.New("eof")
		}
		return b[:n], b[n:], nil
	}
	be := func(p []byte) uint64 {
		var v uint64
		for _, x := range p {
			v = v<<8 | uint64(x)
		}
		return v
	}
	container := func(kind byte, n int) (mpNode, []byte, error) {
		nd := mpNode{kind: kind}
		if kind == 'm' {
			n *= 2
		}
		for range n {
			var k mpNode
			var err error
			k, b, err = parseMP(b)
			if err != nil {
				return mpNode{}, nil, err
			}
			nd.kids = append(nd.kids, k)
		}
		return nd, b, nil
	}
	sized := func(kind byte, lenBytes int) (mpNode, []byte, error) {
		p, rest, err := need(lenBytes)
		if err != nil {
			return mpNode{}, nil, err
		}
		b = rest
		n := int(be(p))
		p, rest, err = need(n)
		if err != nil {
			return mpNode{}, nil, err
		}
		return mpNode{kind: kind, raw: p}, rest, nil
	}
	ext := func(n int) (mpNode, []byte, error) {
		p, rest, err := need(1 + n)
		if err != nil {
			return mpNode{}, nil, err
		}
		return mpNode{kind: 'e', etype: int8(p[0]), raw: p[1:]}, rest, nil
	}
	switch {
	case c <= 0x7f:
		return mpNode{kind: 'u', u: uint64(c)}, b, nil
	case c >= 0xe0:
		return mpNode{kind: 'i', i: int64(int8(c))}, b, nil
	case c&0xf0 == 0x80:
		return container('m', int(c&0x0f))
	case c&0xf0 == 0x90:
		return container('a', int(c&0x0f))
	case c&0xe0 == 0xa0:
		n := int(c & 0x1f)
		p, rest, err := need(n)
		return mpNode{kind: 's', raw: p}, rest, err
	}
	switch c {
	case 0xc0:
		return mpNode{kind: 'n'}, b, nil
	case 0xc2, 0xc3:
		return mpNode{kind: 'b', b: c == 0xc3}, b, nil
	case 0xc4, 0xc5, 0xc6:
		return sized('y', 1<<(c-0xc4))
	case 0xd9, 0xda, 0xdb:
		return sized('s', 1<<(c-0xd9))
	case 0xca:
		p, rest, err := need(4)
		if err != nil {
			return mpNode{}, nil, err
		}
		return mpNode{kind: 'f', f: float64(math.Float32frombits(uint32(be(p))))}, rest, nil
	case 0xcb:
		p, rest, err := need(8)
		if err != nil {
			return mpNode{}, nil, err
		}
		return mpNode{kind: 'd', f: math.Float64frombits(be(p))}, rest, nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		p, rest, err := need(1 << (c - 0xcc))
		if err != nil {
			return mpNode{}, nil, err
		}
		return mpNode{kind: 'u', u: be(p)}, rest, nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		p, rest, err := need(n)
		if err != nil {
			return mpNode{}, nil, err
		}
		v := int64(be(p) << (64 - 8*n) >> 0)
		v >>= 64 - 8*n
		if v < 0 {
			return mpNode{kind: 'i', i: v}, rest, nil
		}
		return mpNode{kind: 'u', u: uint64(v)}, rest, nil
	case 0xdc, 0xdd:
		p, rest, err := need(2 << (c - 0xdc))
		if err != nil {
			return mpNode{}, nil, err
		}
		b = rest
		return container('a', int(be(p)))
	case 0xde, 0xdf:
		p, rest, err := need(2 << (c - 0xde))
		if err != nil {
			return mpNode{}, nil, err
		}
		b = rest
		return container('m', int(be(p)))
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return ext(1 << (c - 0xd4))
	case 0xc7, 0xc8, 0xc9:
		p, rest, err := need(1 << (c - 0xc7))
		if err != nil {
			return mpNode{}, nil, err
		}
		b = rest
		return ext(int(be(p)))
	}
	return mpNode{}, nil, fmt.Errorf("code %#x", c)
}

// mpStyle is a choice of widths for encodeMP: each is the valid but
// non-canonical output of some encoder that does not minimise.
type mpStyle int

const (
	styleWide   mpStyle = iota // uint64/int64, str32, bin32, array32, map32, ext32, float32 kept
	styleSigned                // non-negative ints as the smallest signed int (d0..d3), str8 even when short
	styleMid                   // 16-bit lengths, ext8/ext16, uint16/int16 where they fit
)

// encodeMP appends n to dst in style st.
func encodeMP(dst []byte, n mpNode, st mpStyle) []byte {
	u16 := func(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
	u32 := func(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	switch n.kind {
	case 'n':
		return append(dst, 0xc0)
	case 'b':
		if n.b {
			return append(dst, 0xc3)
		}
		return append(dst, 0xc2)
	case 'u':
		switch st {
		case styleSigned:
			switch {
			case n.u <= math.MaxInt8:
				return append(dst, 0xd0, byte(n.u))
			case n.u <= math.MaxInt16:
				return append(append(dst, 0xd1), u16(int(n.u))...)
			case n.u <= math.MaxInt32:
				return append(append(dst, 0xd2), u32(int(n.u))...)
			case n.u <= math.MaxInt64:
				return binary.BigEndian.AppendUint64(append(dst, 0xd3), n.u)
			}
			return binary.BigEndian.AppendUint64(append(dst, 0xcf), n.u)
		case styleMid:
			if n.u <= math.MaxUint16 {
				return append(append(dst, 0xcd), u16(int(n.u))...)
			}
		}
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), n.u)
	case 'i':
		if st == styleMid && n.i >= math.MinInt16 {
			return append(append(dst, 0xd1), u16(int(n.i))...)
		}
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(n.i))
	case 'f':
		return binary.BigEndian.AppendUint32(append(dst, 0xca), math.Float32bits(float32(n.f)))
	case 'd':
		return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(n.f))
	case 's':
		switch st {
		case styleSigned:
			if len(n.raw) < 256 {
				return append(append(dst, 0xd9, byte(len(n.raw))), n.raw...)
			}
		case styleMid:
			if len(n.raw) < 65536 {
				return append(append(append(dst, 0xda), u16(len(n.raw))...), n.raw...)
			}
		}
		return append(append(append(dst, 0xdb), u32(len(n.raw))...), n.raw...)
	case 'y':
		if st == styleMid && len(n.raw) < 65536 {
			return append(append(append(dst, 0xc5), u16(len(n.raw))...), n.raw...)
		}
		return append(append(append(dst, 0xc6), u32(len(n.raw))...), n.raw...)
	case 'a', 'm':
		cnt := len(n.kids)
		code16, code32 := byte(0xdc), byte(0xdd)
		if n.kind == 'm' {
			cnt /= 2
			code16, code32 = 0xde, 0xdf
		}
		if st == styleMid && cnt < 65536 {
			dst = append(append(dst, code16), u16(cnt)...)
		} else {
			dst = append(append(dst, code32), u32(cnt)...)
		}
		for _, k := range n.kids {
			dst = encodeMP(dst, k, st)
		}
		return dst
	case 'e':
		if st == styleMid {
			dst = append(dst, 0xc7, byte(len(n.raw)))
		} else {
			dst = append(append(dst, 0xc9), u32(len(n.raw))...)
		}
		return append(append(dst, byte(n.etype)), n.raw...)
	}
	panic("bad node")
}

// TestMsgpackNonCanonicalEncodings: the decoder reads any valid encoding
// of its own output, with another encoder's choice of widths (msgpack
// spec, "Formats": every family has several and the spec does not
// require the smallest), for random rich messages.
func TestMsgpackNonCanonicalEncodings(t *testing.T) {
	for seed := range uint64(60) {
		m := newFiller(seed).allTypes()
		b := mustMarshal(t, codec.Msgpack, m)
		root, rest, err := parseMP(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("seed %d: own parser: %v, %d left", seed, err, len(rest))
		}
		for _, st := range []mpStyle{styleWide, styleSigned, styleMid} {
			in := encodeMP(nil, root, st)
			var got testingv1.AllTypes
			if err := codec.Msgpack.Unmarshal(in, &got); err != nil {
				t.Fatalf("seed %d style %d: %v", seed, st, err)
			}
			if !proto.Equal(m, &got) {
				t.Fatalf("seed %d style %d: differs\n%s", seed, st, cmpDiff(m, &got))
			}
		}
	}
}

// TestMsgpackTruncatedAtEveryOffset: every strict prefix of a valid
// encoding is an error wrapping ErrUnmarshal, never a panic and never
// success. Each prefix is decoded in full, so the cost is the square of
// the length: a few small random messages keep it to a second or two
// under -race.
func TestMsgpackTruncatedAtEveryOffset(t *testing.T) {
	for seed := range uint64(3) {
		f := newFiller(seed)
		f.small = true
		m := f.allTypes()
		b := mustMarshal(t, codec.Msgpack, m)
		for i := range len(b) {
			var got testingv1.AllTypes
			err := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				return codec.Msgpack.Unmarshal(b[:i], &got)
			}()
			if !errors.Is(err, codec.ErrUnmarshal) {
				t.Fatalf("seed %d, prefix %d of %d: got %v", seed, i, len(b), err)
			}
		}
	}
}
