//go:build !race

// Allocation counts are only meaningful without the race detector (its
// sync.Pool drops items at random): scripts/test.sh runs the Allocs
// tests in a pass of their own.

package wsrpc_test

import (
	"net/http"
	"runtime"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestLargeMessageAllocs: a stream of messages over 64 KiB reuses its
// read and marshal buffers (largeBufs), so a round trip of a 1 MiB
// message allocates about what the codec keeps — the two decoded blobs,
// 2 MiB. Buffers over 64 KiB were dropped after every message: each read
// grew a new one from 64 KiB by doubling, and each Send marshalled into a
// new one, 9–10 MiB per round trip.
func TestLargeMessageAllocs(t *testing.T) {
	const size = 1 << 20
	limit := &websocket.AcceptOptions{MaxMessageSize: 8 << 20}
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, wsrpc.WithAcceptOptions(limit)))
	base := newServer(t, mux)
	client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithDialOptions(&websocket.DialOptions{MaxMessageSize: 8 << 20}))
	st, err := client.Echo(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msg := &testingv1.EchoRequest{Blob: make([]byte, size)}
	roundTrip := func() {
		if err := st.Send(msg); err != nil {
			t.Fatal(err)
		}
		res, err := st.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetBlob()) != size {
			t.Fatalf("echo of %d bytes, want %d", len(res.GetBlob()), size)
		}
	}
	for range 3 { // the streams learn the size; the pools fill
		roundTrip()
	}
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		roundTrip()
	}
	runtime.ReadMemStats(&after)
	perTrip := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.2f MiB allocated per round trip of a %d-byte message", perTrip/(1<<20), size)
	if perTrip > 3.5*size {
		t.Errorf("%.2f MiB allocated per round trip of a 1 MiB message, want under 3.5 (the decoded blobs are 2)", perTrip/(1<<20))
	}
}
