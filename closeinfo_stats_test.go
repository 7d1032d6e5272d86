package wsrpc_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestCloseInfoStats: the OnClose hooks of both ends of a WebSocket
// session get its connection's counters (CloseInfo.Stats), closing
// handshake included: what one end wrote the other read, message for
// message and byte for byte on the wire, and the payload covers the
// messages sent. With compression the wire carries less than the
// payload.
func TestCloseInfoStats(t *testing.T) {
	for _, compress := range []bool{false, true} {
		name := "plain"
		var opts []wsrpc.Option
		if compress {
			name = "deflate"
			opts = append(opts, wsrpc.WithCompression(&websocket.DeflateOptions{}))
		}
		t.Run(name, func(t *testing.T) {
			server, client := make(chan wsrpc.CloseInfo, 1), make(chan wsrpc.CloseInfo, 1)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, append(opts,
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { server <- ci }))...))
			c := testingv1wsrpc.NewStreamServiceClient(nil, newServer(t, mux), append(opts,
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { client <- ci }))...)
			ctx := testContext(t)
			st, err := c.Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			const n, size = 3, 2000
			blob := bytes.Repeat([]byte("compressible "), size/13+1)[:size]
			for i := range n {
				if err := st.Send(&testingv1.EchoRequest{Seq: int64(i), Blob: blob}); err != nil {
					t.Fatal(err)
				}
				if _, err := st.Receive(); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			var sci, cci wsrpc.CloseInfo
			for _, ch := range []struct {
				ci   *wsrpc.CloseInfo
				from chan wsrpc.CloseInfo
			}{{&sci, server}, {&cci, client}} {
				select {
				case *ch.ci = <-ch.from:
				case <-ctx.Done():
					t.Fatal("OnClose never ran")
				}
			}
			s, cl := sci.Stats, cci.Stats
			if cl.MessagesWritten < n || cl.PayloadBytesWritten < n*size || s.MessagesWritten < n || s.PayloadBytesWritten < n*size {
				t.Errorf("counters short of %d messages of %d bytes each way: server %+v, client %+v", n, size, s, cl)
			}
			if s.MessagesRead != cl.MessagesWritten || s.PayloadBytesRead != cl.PayloadBytesWritten || s.WireBytesRead != cl.WireBytesWritten ||
				cl.MessagesRead != s.MessagesWritten || cl.PayloadBytesRead != s.PayloadBytesWritten || cl.WireBytesRead != s.WireBytesWritten {
				t.Errorf("the ends disagree:\nserver %+v\nclient %+v", s, cl)
			}
			if compress {
				if s.WireBytesWritten >= s.PayloadBytesWritten || cl.WireBytesWritten >= cl.PayloadBytesWritten {
					t.Errorf("compressed, yet no fewer bytes on the wire: server %+v, client %+v", s, cl)
				}
			} else if s.WireBytesWritten <= s.PayloadBytesWritten || cl.WireBytesWritten <= cl.PayloadBytesWritten {
				t.Errorf("uncompressed, yet no framing on the wire: server %+v, client %+v", s, cl)
			}
		})
	}
}
