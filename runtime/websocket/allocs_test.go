//go:build !race

// Allocation counts are only meaningful without the race detector (its
// sync.Pool drops items at random), so these tests are left out of -race
// builds and scripts/test.sh runs them in a pass of their own.

package websocket_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestSteadyStateAllocs: once a connection is warm, echoing a message
// allocates nothing on either side — client write, server read, server
// write, client read — plain up to 64 KiB and compressed with and
// without context takeover (issue 7's zero-allocation target).
func TestSteadyStateAllocs(t *testing.T) {
	noCtx := &websocket.DeflateOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	cases := []struct {
		name string
		opts *websocket.DeflateOptions // nil: the client offers no compression
		size int
	}{
		{"plain/16B", nil, 16},
		{"plain/1KiB", nil, 1 << 10},
		{"plain/64KiB", nil, 64 << 10},
		{"deflate/takeover/1KiB", &websocket.DeflateOptions{}, 1 << 10},
		{"deflate/takeover/64KiB", &websocket.DeflateOptions{}, 64 << 10},
		{"deflate/no-takeover/1KiB", noCtx, 1 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sopts := tc.opts
			if sopts == nil {
				sopts = &websocket.DeflateOptions{}
			}
			url := deflateEcho(t, sopts, 0)
			var dopts websocket.DialOptions
			if tc.opts != nil {
				dopts.Extensions = websocket.MustExtensionSet(websocket.PerMessageDeflate(tc.opts))
			}
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, url, &dopts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			r := rand.New(rand.NewPCG(1, 2))
			msgs := make([][]byte, 16)
			for i := range msgs {
				msgs[i] = jsonLike(r, tc.size)
			}
			buf := make([]byte, 0, tc.size)
			i := 0
			echo := func() {
				msg := msgs[i%len(msgs)]
				i++
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					t.Fatal(err)
				}
				_, got, err := c.ReadAppend(ctx, buf[:0])
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatal("echo differs", err)
				}
			}
			for range 100 {
				echo() // warm up: buffers grown, pools filled
			}
			// Whole-process counts: a stray allocation elsewhere (the
			// runtime, the test framework) is averaged away over 300.
			if n := testing.AllocsPerRun(300, echo); n != 0 {
				t.Fatalf("%.2f allocations per echoed message", n)
			}
		})
	}
}

// TestPollerSteadyStateAllocs: the same through a Poller, with eight
// connections written before any is read, so that the poller finds
// several sockets ready at once and hands them to its workers.
func TestPollerSteadyStateAllocs(t *testing.T) {
	s := startPollServer(t, nil, false, func(c *websocket.Conn, typ websocket.MessageType, msg []byte) {
		_ = c.Write(context.Background(), typ, msg)
	})
	ctx := context.Background()
	conns := make([]*websocket.Conn, 8)
	for i := range conns {
		conns[i] = s.dial(nil)
	}
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64)
	buf := make([]byte, 0, len(msg))
	echo := func() {
		for _, c := range conns {
			if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range conns {
			_, got, err := c.ReadAppend(ctx, buf[:0])
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatal("echo differs", err)
			}
		}
	}
	for range 100 {
		echo()
	}
	if n := testing.AllocsPerRun(300, echo); n != 0 {
		t.Fatalf("%.2f allocations per round of 8 echoed messages", n)
	}
}
