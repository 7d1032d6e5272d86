package websocket_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// BenchmarkDeflateEcho measures compressed echo of 1 KiB JSON-like text
// messages over loopback, with and without context takeover, and reports
// the bytes on the wire (server to client) per payload byte.
//
//	go test ./runtime/websocket -run '^$' -bench DeflateEcho -benchmem
func BenchmarkDeflateEcho(b *testing.B) {
	modes := []struct {
		name string
		opts websocket.DeflateOptions
	}{
		{"context-takeover", websocket.DeflateOptions{}},
		{"no-context-takeover", websocket.DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			url := deflateEcho(b, &m.opts, 0)
			var wire atomic.Int64
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
				Extensions:     websocket.MustExtensionSet(websocket.PerMessageDeflate(&m.opts)),
				NetDialContext: countingDial(&wire),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			r := rand.New(rand.NewPCG(5, 6))
			msgs := make([][]byte, 64)
			for i := range msgs {
				msgs[i] = jsonLike(r, 1024)
			}
			buf := make([]byte, 0, 4096)
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			start := wire.Load()
			for i := 0; i < b.N; i++ {
				msg := msgs[i%len(msgs)]
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				_, got, err := c.ReadAppend(ctx, buf[:0])
				if err != nil || !bytes.Equal(got, msg) {
					b.Fatal("echo differs", err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(wire.Load()-start)/float64(b.N*1024), "wire/payload")
		})
	}
}

// BenchmarkDeflateConnMemory reports the heap each connection pair keeps
// after one compressed message each way, per mode: the figures behind
// DeflateOptions' memory note.
//
//	go test ./runtime/websocket -run '^$' -bench DeflateConnMemory -benchtime 1x
func BenchmarkDeflateConnMemory(b *testing.B) {
	modes := []struct {
		name string
		opts websocket.DeflateOptions
	}{
		{"context-takeover", websocket.DeflateOptions{}},
		{"no-context-takeover", websocket.DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}},
		{"takeover-window-10", websocket.DeflateOptions{ServerMaxWindowBits: 10, ClientMaxWindowBits: 10}},
		{"no-compression", websocket.DeflateOptions{Threshold: 1 << 30}},
	}
	const conns = 100
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			url := deflateEcho(b, &m.opts, 0)
			ctx := context.Background()
			msg := jsonLike(rand.New(rand.NewPCG(1, 1)), 1024)
			for i := 0; i < b.N; i++ {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				cs := make([]*websocket.Conn, conns)
				for j := range cs {
					c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
						Extensions: websocket.MustExtensionSet(websocket.PerMessageDeflate(&m.opts)),
					})
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
						b.Fatal(err)
					}
					if _, _, err := c.Read(ctx); err != nil {
						b.Fatal(err)
					}
					cs[j] = c
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/conns, "heapB/pair")
				for _, c := range cs {
					c.CloseNow()
				}
			}
		})
	}
}
