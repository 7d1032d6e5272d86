package codec_test

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// durationForms are strings at the edges of ProtoJSON's duration grammar:
// signs, leading zeros, empty whole or fractional parts, digit counts, the
// range's ends.
var durationForms = []string{
	"1.5s", "-1.5s", "+1s", ".5s", "-.5s", "+.5s", "1.s", ".s", "0s", "-0s",
	"00s", "01s", "0.000000001s", "1.0000000001s", "1..5s", "1.5", "s", "-s",
	"+s", "1s ", " 1s", "1e3s", "0x1s", "-+1s", "1.5ss", "1,5s", "1.-5s",
	"315576000000s", "315576000000.999999999s", "-315576000000.999999999s",
	"315576000001s", "999999999999999999s", "9999999999999999999s", "",
}

// TestMsgpackDurationLikeProtoJSON: the msgpack codec reads a Duration's
// string exactly as protojson reads it (codecs.md: "str, ProtoJSON
// form"), so a client that builds one for one codec is understood by the
// other. It refused "+1s" and ".5s", which protojson takes, and took
// "01s", which protojson refuses.
func TestMsgpackDurationLikeProtoJSON(t *testing.T) {
	for _, s := range durationForms {
		checkDurationLikeProtoJSON(t, s)
	}
}

func FuzzMsgpackDurationLikeProtoJSON(f *testing.F) {
	for _, s := range durationForms {
		f.Add(s)
	}
	f.Fuzz(checkDurationLikeProtoJSON)
}

func checkDurationLikeProtoJSON(t *testing.T, s string) {
	var want durationpb.Duration
	jerr := protojson.Unmarshal([]byte(strconv.Quote(s)), &want)
	var got testingv1.AllTypes
	merr := codec.Msgpack.Unmarshal(append(append([]byte{0x81}, mp(t, "wDuration")...), mp(t, s)...), &got)
	switch {
	case (jerr == nil) != (merr == nil):
		t.Errorf("%q: protojson %v, msgpack %v", s, jerr, merr)
	case jerr == nil && !proto.Equal(&want, got.GetWDuration()):
		t.Errorf("%q: protojson %v, msgpack %v", s, &want, got.GetWDuration())
	}
}
