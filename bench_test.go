package wsrpc_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// benchMessage is the small message of the echo benchmarks.
func benchMessage() *testingv1.EchoRequest {
	return &testingv1.EchoRequest{Text: "hello, wsrpc", Seq: 42, Blob: []byte("0123456789")}
}

// BenchmarkEcho compares a typed bidirectional echo of a small message
// (generated client and handler: marshal, frame, unmarshal on both sides)
// with a raw runtime echo of the same bytes, per codec. One round trip per
// iteration over 127.0.0.1. See docs/benchmarks.md.
func BenchmarkEcho(b *testing.B) {
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}))
	mux.HandleFunc("/raw", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		buf := make([]byte, 0, 1024)
		for {
			typ, msg, err := c.ReadAppend(r.Context(), buf[:0])
			if err != nil {
				return
			}
			buf = msg
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	srv := newServer(b, mux)
	ctx := context.Background()
	for _, cdc := range allCodecs {
		b.Run("typed/"+cdc.Name(), func(b *testing.B) {
			client := testingv1wsrpc.NewStreamServiceClient(nil, srv, wsrpc.WithCodecs(cdc))
			s, err := client.Echo(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			msg := benchMessage()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Send(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Receive(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw/"+cdc.Name(), func(b *testing.B) {
			payload, err := cdc.Marshal(benchMessage())
			if err != nil {
				b.Fatal(err)
			}
			typ := websocket.MessageText
			if cdc.Binary() {
				typ = websocket.MessageBinary
			}
			c, _, err := websocket.Dial(ctx, srv+"/raw", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Write(ctx, typ, payload); err != nil {
					b.Fatal(err)
				}
				_, msg, err := c.ReadAppend(ctx, buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				buf = msg
			}
		})
	}
}

// BenchmarkEchoLarge is BenchmarkEcho's typed round trip with a 1 MiB
// blob, the size of an upload's chunk: the buffers a stream reuses for
// messages over 64 KiB (largeBufs) show here.
func BenchmarkEchoLarge(b *testing.B) {
	const size = 1 << 20
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{MaxMessageSize: 8 << 20})))
	srv := newServer(b, mux)
	client := testingv1wsrpc.NewStreamServiceClient(nil, srv, wsrpc.WithDialOptions(&websocket.DialOptions{MaxMessageSize: 8 << 20}))
	s, err := client.Echo(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	msg := &testingv1.EchoRequest{Blob: make([]byte, size)}
	b.SetBytes(2 * size) // both ways
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Receive(); err != nil {
			b.Fatal(err)
		}
	}
}
