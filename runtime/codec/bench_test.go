package codec_test

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// benchMessage is chat-sized: what one WebSocket message usually carries.
var benchMessage = &testingv1.Small{
	Room:   "lobby",
	User:   "ann",
	Text:   "hello, world: a message of typical length for a chat line",
	Seq:    1234567,
	SentAt: &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 123456789},
}

var benchCodecs = []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack}

// BenchmarkMarshal measures MarshalAppend into a reused buffer, the hot
// path of a sender.
func BenchmarkMarshal(b *testing.B) {
	for _, c := range benchCodecs {
		b.Run(c.Name(), func(b *testing.B) {
			buf, err := c.Marshal(benchMessage)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = c.MarshalAppend(buf[:0], benchMessage); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnmarshal measures decoding into a reused message.
func BenchmarkUnmarshal(b *testing.B) {
	for _, c := range benchCodecs {
		b.Run(c.Name(), func(b *testing.B) {
			data, err := c.Marshal(benchMessage)
			if err != nil {
				b.Fatal(err)
			}
			var m testingv1.Small
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Unmarshal(data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
