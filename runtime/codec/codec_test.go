package codec_test

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

func TestBuiltins(t *testing.T) {
	cases := []struct {
		c         codec.Codec
		name, sub string
		binary    bool
	}{
		{codec.Proto, "proto", "wsrpc.proto", true},
		{codec.JSON, "json", "wsrpc.json", false},
		{codec.Msgpack, "msgpack", "wsrpc.msgpack", true},
	}
	for _, tc := range cases {
		if tc.c.Name() != tc.name || tc.c.Binary() != tc.binary || codec.Subprotocol(tc.c) != tc.sub {
			t.Errorf("%s: Name %q Binary %v Subprotocol %q", tc.name, tc.c.Name(), tc.c.Binary(), codec.Subprotocol(tc.c))
		}
		if got, ok := codec.Lookup(tc.name); !ok || got != tc.c {
			t.Errorf("Lookup(%q) = %v, %v", tc.name, got, ok)
		}
		if got, ok := codec.BySubprotocol(tc.sub); !ok || got != tc.c {
			t.Errorf("BySubprotocol(%q) = %v, %v", tc.sub, got, ok)
		}
	}
	if got := codec.Names(); !slices.Equal(got[:3], []string{"proto", "json", "msgpack"}) {
		t.Errorf("Names() = %q", got)
	}
	for _, sub := range []string{"", "proto", "wsrpc.", "WSRPC.json", "wsrpc.JSON", "x.json", "wsrpc.nope"} {
		if c, ok := codec.BySubprotocol(sub); ok {
			t.Errorf("BySubprotocol(%q) = %v, want none", sub, c)
		}
	}
	if c, ok := codec.Lookup("nope"); ok {
		t.Errorf("Lookup(nope) = %v", c)
	}
}

type namedCodec struct {
	codec.Codec
	name string
}

func (c namedCodec) Name() string { return c.name }

// registerRuns counts TestRegister runs.
var registerRuns atomic.Int32

func TestRegister(t *testing.T) {
	for _, name := range []string{"", "a b", "a/b", "é", "a,b", `"x"`} {
		if err := codec.Register(namedCodec{codec.JSON, name}); !errors.Is(err, codec.ErrInvalidName) {
			t.Errorf("Register(%q): got %v, want ErrInvalidName", name, err)
		}
	}
	if err := codec.Register(nil); !errors.Is(err, codec.ErrInvalidName) {
		t.Errorf("Register(nil): got %v", err)
	}
	if err := codec.Register(namedCodec{codec.JSON, "json"}); !errors.Is(err, codec.ErrDuplicate) {
		t.Errorf("Register(json): got %v, want ErrDuplicate", err)
	}
	// The registry is global and keeps what is registered: a name new to
	// each run lets the test run again (-count).
	name := "json-snake_v" + strconv.Itoa(int(registerRuns.Add(1)))
	custom := namedCodec{codec.NewJSON(&codec.JSONOptions{UseProtoNames: true}), name}
	if err := codec.Register(custom); err != nil {
		t.Fatal(err)
	}
	if got, ok := codec.BySubprotocol("wsrpc." + name); !ok || got != codec.Codec(custom) {
		t.Fatalf("BySubprotocol after Register = %v, %v", got, ok)
	}
	if names := codec.Names(); names[len(names)-1] != name {
		t.Fatalf("Names() = %q", names)
	}
	if err := codec.Register(custom); !errors.Is(err, codec.ErrDuplicate) {
		t.Fatalf("second Register: got %v", err)
	}
}

// TestRegistryConcurrent is for -race: lookups while registering.
func TestRegistryConcurrent(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			_ = codec.Register(namedCodec{codec.Proto, "race" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
		}
	}()
	for range 200 {
		if _, ok := codec.Lookup("proto"); !ok {
			t.Fatal("proto vanished")
		}
		_ = codec.Names()
	}
	<-done
}

// TestTextCodecOutput: a text codec's output is valid UTF-8 with no
// newline, so it can be a text frame and a single SSE data line.
func TestTextCodecOutput(t *testing.T) {
	for seed := range uint64(20) {
		m := newFiller(seed).allTypes()
		for _, c := range []codec.Codec{codec.JSON, codec.NewJSON(&codec.JSONOptions{EmitUnpopulated: true})} {
			b := mustMarshal(t, c, m)
			if !utf8.Valid(b) || bytes.ContainsAny(b, "\r\n") {
				t.Fatalf("seed %d: not one line of UTF-8: %q", seed, b)
			}
		}
	}
}

// TestBadInput: every codec rejects malformed input with an error wrapping
// ErrUnmarshal (msgpack's specific cases are in TestMsgpackBadInput).
func TestBadInput(t *testing.T) {
	cases := []struct {
		c  codec.Codec
		in string
	}{
		{codec.Proto, "\x08"},                 // truncated varint
		{codec.Proto, "\x0a\x05ab"},           // length beyond input
		{codec.Proto, "\x72\x01\xff"},         // f_string = invalid UTF-8
		{codec.Proto, "\x07"},                 // field number 0
		{codec.Proto, "\x0b\x08\x01"},         // unterminated group
		{codec.JSON, ""},                      // not JSON
		{codec.JSON, "{"},                     // truncated
		{codec.JSON, `{"fInt32":"x"}`},        // wrong type
		{codec.JSON, `{"fInt32":2147483648}`}, // out of range
		{codec.JSON, `{"fInt32":1,"fInt32":2}`},
		{codec.JSON, `{"cInt64":"1","cString":"a"}`},
		{codec.JSON, `{"wTimestamp":"10000-01-01T00:00:00Z"}`},
		{codec.JSON, `{"fString":"\udc00"}`},
		{codec.JSON, `{} {}`},
		{codec.Msgpack, "\x81\xa6fInt32\xa1x"},
	}
	// The documented split (errors.go, docs/codecs.md): only msgpack wraps
	// the specific sentinels; proto and JSON wrap protobuf's own error.
	specific := []error{
		codec.ErrTruncated, codec.ErrTrailingData, codec.ErrDepth, codec.ErrWrongType, codec.ErrRange,
		codec.ErrInvalidUTF8, codec.ErrDuplicateOneof, codec.ErrUnknownType, codec.ErrMalformed,
	}
	for _, tc := range cases {
		var m testingv1.AllTypes
		err := tc.c.Unmarshal([]byte(tc.in), &m)
		if !errors.Is(err, codec.ErrUnmarshal) {
			t.Errorf("%s.Unmarshal(%q): got %v, want ErrUnmarshal", tc.c.Name(), tc.in, err)
			continue
		}
		n := 0
		for _, s := range specific {
			if errors.Is(err, s) {
				n++
			}
		}
		if wrapsSpecific := tc.c.Name() == codec.NameMsgpack; (n > 0) != wrapsSpecific {
			t.Errorf("%s.Unmarshal(%q): %v wraps %d specific sentinels; the docs say msgpack errors wrap one and others none", tc.c.Name(), tc.in, err, n)
		}
	}
	for _, c := range []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack} {
		if err := c.Unmarshal([]byte{}, nil); !errors.Is(err, codec.ErrNilMessage) || !errors.Is(err, codec.ErrUnmarshal) {
			t.Errorf("%s.Unmarshal(nil message): got %v", c.Name(), err)
		}
		if err := c.Unmarshal([]byte{}, (*testingv1.Nested)(nil)); !errors.Is(err, codec.ErrNilMessage) {
			t.Errorf("%s.Unmarshal(typed nil message): got %v", c.Name(), err)
		}
	}
}

// TestNegativeRecursionLimit guards that a negative RecursionLimit means
// the default, for every codec: the proto codec once passed it on to
// protobuf, which then refused every message, even an empty one.
func TestNegativeRecursionLimit(t *testing.T) {
	cases := []struct {
		c     codec.Codec
		deflt int // the default limit
		// over checks that c refuses nesting past the default limit.
		over func(c codec.Codec, m proto.Message) error
	}{
		{codec.NewProto(&codec.ProtoOptions{RecursionLimit: -1}), 10000, func(c codec.Codec, m proto.Message) error {
			return c.Unmarshal(mustMarshal(t, codec.Proto, m), &testingv1.AllTypes{})
		}},
		{codec.NewJSON(&codec.JSONOptions{RecursionLimit: -1}), 100, func(c codec.Codec, m proto.Message) error {
			return c.Unmarshal(mustMarshal(t, codec.JSON, m), &testingv1.AllTypes{})
		}},
		// msgpack counts alike both ways (TestMsgpackRecursionLimitAgrees);
		// its encoder refuses the depth much faster than its decoder,
		// which wraps the error once per level.
		{codec.NewMsgpack(&codec.MsgpackOptions{RecursionLimit: -1}), 10000, func(c codec.Codec, m proto.Message) error {
			_, err := c.Marshal(m)
			return err
		}},
	}
	for _, tc := range cases {
		c := tc.c
		if err := c.Unmarshal(mustMarshal(t, c, &testingv1.Nested{Id: 1}), &testingv1.Nested{}); err != nil {
			t.Errorf("%s, limit -1: a flat message: %v", c.Name(), err)
		}
		// deepNested(n) is n+1 messages deep, AllTypes included.
		if err := c.Unmarshal(mustMarshal(t, c, deepNested(tc.deflt-1)), &testingv1.AllTypes{}); err != nil {
			t.Errorf("%s, limit -1: depth %d: %v", c.Name(), tc.deflt-1, err)
		}
		if err := tc.over(c, deepNested(tc.deflt+1)); err == nil {
			t.Errorf("%s, limit -1: depth %d: no error, want the default limit's", c.Name(), tc.deflt+1)
		}
	}
}

// TestUnmarshalResets: Unmarshal replaces the destination's contents, as
// proto.Unmarshal does, for every codec.
func TestUnmarshalResets(t *testing.T) {
	for _, c := range []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack} {
		dst := &testingv1.Nested{Id: 1, Name: "old", Children: []*testingv1.Nested{{}}}
		if err := c.Unmarshal(mustMarshal(t, c, &testingv1.Nested{Name: "new"}), dst); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(dst, &testingv1.Nested{Name: "new"}) {
			t.Errorf("%s: got %v", c.Name(), dst)
		}
	}
}

// TestMarshalNil: a nil message encodes as the empty message.
func TestMarshalNil(t *testing.T) {
	for _, c := range []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack} {
		b, err := c.Marshal((*testingv1.Nested)(nil))
		if err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
		var m testingv1.Nested
		if err := c.Unmarshal(b, &m); err != nil || !proto.Equal(&m, &testingv1.Nested{}) {
			t.Fatalf("%s: %q decodes to %v, %v", c.Name(), b, &m, err)
		}
	}
}
