package wsrpc_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// rawClose writes a masked client close frame with code straight to the
// socket, without waiting for the answer.
func rawClose(t *testing.T, nc net.Conn, code uint16) {
	rawFrame(t, nc, 0x88, binary.BigEndian.AppendUint16(nil, code))
}

// rawFrame writes one masked client frame (first byte b0, payload under
// 126 bytes) straight to the socket (RFC 6455 §5.2, §5.3).
func rawFrame(t *testing.T, nc net.Conn, b0 byte, payload []byte) {
	key := [4]byte{1, 2, 3, 4}
	f := append([]byte{b0, 0x80 | byte(len(payload))}, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	if _, err := nc.Write(f); err != nil {
		t.Fatal(err)
	}
}

type bidiOutcome struct {
	sendErr error
	got     []int32
	recvErr error
}

// TestWriteResetKeepsPeerInput: a bidi client sends a message and its
// close frame (1000) and then goes away with input unread (a reset). The
// runtime keeps a reset socket open for a reader to find what the peer
// sent before the reset, and the handler's Send that meets the reset must
// leave it so: a first version closed the socket at once (writeErr ->
// ended -> CloseNow), and the handler's next Receive lost the client's
// last message and close frame, OnClose reporting 1006, not 1000.
func TestWriteResetKeepsPeerInput(t *testing.T) {
	for i := range 2 {
		outc := make(chan bidiOutcome, 1)
		closes := make(chan wsrpc.CloseInfo, 1)
		mux := http.NewServeMux()
		mux.Handle("/t/B", wsrpc.NewBidiHandler("/t/B",
			func(ctx context.Context, st *wsrpc.BidiStream[testingv1.CountRequest, testingv1.EchoResponse]) error {
				if _, err := st.Receive(); err != nil {
					return err
				}
				var o bidiOutcome
				blob := make([]byte, 64<<10)
				for {
					if o.sendErr = st.Send(&testingv1.EchoResponse{Blob: blob}); o.sendErr != nil {
						break
					}
				}
				for {
					m, err := st.Receive()
					if err != nil {
						o.recvErr = err
						break
					}
					o.got = append(o.got, m.GetCount())
				}
				outc <- o
				return o.recvErr
			}, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })))
		base := newServer(t, mux)
		ctx := testContext(t)
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/t/B",
			&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := proto.Marshal(&testingv1.CountRequest{Count: 1})
		if err := ws.Write(ctx, websocket.MessageBinary, req); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.Read(ctx); err != nil { // the handler is streaming
			t.Fatal(err)
		}
		// Written raw, as the close frame is, so that it surely goes
		// before it: a Write after a read may be deferred (pipelining),
		// and a raw close frame could overtake it.
		last, _ := proto.Marshal(&testingv1.CountRequest{Count: 42})
		rawFrame(t, ws.NetConn(), 0x82, last)
		rawClose(t, ws.NetConn(), 1000)
		time.Sleep(20 * time.Millisecond) // both on the server's side
		ws.CloseNow()                     // input unread: reset
		o := waitSeen(t, outc, "handler never finished")
		ci := waitSeen(t, closes, "OnClose never ran")
		t.Logf("run %d: send=%v got=%v recv=%v OnClose=%d %v", i, o.sendErr, o.got, o.recvErr, ci.Code, ci.Err)
		if len(o.got) != 1 || o.got[0] != 42 {
			t.Errorf("run %d: handler received %v after the reset, want [42] (the message sent before it)", i, o.got)
		}
		if ci.Code != websocket.StatusNormalClosure {
			t.Errorf("run %d: OnClose %d, want 1000 (the close frame received)", i, ci.Code)
		}
	}
}

// TestCloseThenResetReportsCloseFrame: a client sends its close frame
// (4001) and resets at once while the handler streams. The peer watcher
// reads the close frame; the handler's Send meets the reset. OnClose
// should report the close frame that came (RFC 6455 §7.1.5).
func TestCloseThenResetReportsCloseFrame(t *testing.T) {
	counts := map[websocket.StatusCode]int{}
	const runs = 30
	for range runs {
		closes := make(chan wsrpc.CloseInfo, 1)
		mux := http.NewServeMux()
		mux.Handle("/t/S", wsrpc.NewServerStreamHandler("/t/S",
			func(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.EchoResponse]) error {
				blob := make([]byte, 64<<10)
				for {
					if err := st.Send(&testingv1.EchoResponse{Blob: blob}); err != nil {
						return err
					}
				}
			}, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })))
		base := newServer(t, mux)
		ctx := testContext(t)
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/t/S",
			&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := proto.Marshal(&testingv1.CountRequest{})
		if err := ws.Write(ctx, websocket.MessageBinary, req); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.Read(ctx); err != nil {
			t.Fatal(err)
		}
		rawClose(t, ws.NetConn(), 4001)
		ws.CloseNow()
		ci := waitSeen(t, closes, "OnClose never ran")
		counts[ci.Code]++
	}
	t.Logf("OnClose codes over %d runs: %v", runs, counts)
	if counts[websocket.StatusAbnormalClosure] > 0 {
		t.Errorf("OnClose reported 1006 in %d of %d runs though the client's close frame (4001) had arrived", counts[websocket.StatusAbnormalClosure], runs)
	}
}
