package wsrpc_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestUploadOverLimitResourceExhausted: an upload over the server's
// MaxMessageSize reports resource_exhausted, every time, with and without
// compression. The server answers 1009, drains a bounded amount and
// resets the connection, which fails the client's write. The Send
// reported the reset at once (unavailable, which reads as retryable)
// instead of waiting for the reader's 1009; with compression the runtime
// also failed the connection itself over the broken message (1011),
// throwing the 1009 away, so CloseAndReceive lost it too. A user
// walkthrough saw unavailable in most compressed uploads of 32 MiB.
func TestUploadOverLimitResourceExhausted(t *testing.T) {
	chunk := make([]byte, 16<<20) // incompressible, far beyond the drain budget and socket buffers
	_, _ = rand.NewChaCha8([32]byte{2}).Read(chunk)
	for _, compress := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "deflate"}[compress]
		t.Run(name, func(t *testing.T) {
			var opts []wsrpc.Option
			if compress {
				opts = append(opts, wsrpc.WithCompression(nil))
			}
			mux := http.NewServeMux()
			mux.Handle("/t/Upload", wsrpc.NewClientStreamHandler("/t/Upload",
				func(ctx context.Context, st *wsrpc.ClientStream[testingv1.EchoRequest]) (*testingv1.EchoResponse, error) {
					for {
						if _, err := st.Receive(); err != nil {
							return nil, err
						}
					}
				}, append(opts, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{MaxMessageSize: 64 << 10}))...))
			base := newServer(t, mux)
			c := wsrpc.NewClientStreamClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Upload", "/t/Upload", opts...)
			ctx := testContext(t)
			for i := range 20 {
				st, err := c.Call(ctx)
				if err != nil {
					t.Fatal(err)
				}
				serr := st.Send(&testingv1.EchoRequest{Blob: chunk})
				_, cerr := st.CloseAndReceive()
				if serr != nil && wsrpc.CodeOf(serr) != wsrpc.CodeResourceExhausted {
					t.Errorf("attempt %d: Send = %v, want resource_exhausted", i, serr)
				}
				if wsrpc.CodeOf(cerr) != wsrpc.CodeResourceExhausted {
					t.Errorf("attempt %d: CloseAndReceive = %v, want resource_exhausted", i, cerr)
				}
			}
		})
	}
}

// TestCancelDuringBlockedSend: a Send blocked because the server stopped
// reading, cut off by the caller's cancel (or deadline), reports canceled
// (deadline_exceeded), as docs/codegen.md says and Receive and Close do.
// The close timeout ends it, cutting the connection the close frame could
// not get through, and it reported that cut: unavailable, which reads as
// an outage to retry.
func TestCancelDuringBlockedSend(t *testing.T) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	mux := http.NewServeMux()
	mux.Handle("/t/Stall", wsrpc.NewClientStreamHandler("/t/Stall",
		func(ctx context.Context, st *wsrpc.ClientStream[testingv1.EchoRequest]) (*testingv1.EchoResponse, error) {
			_, _ = st.Receive()
			<-stop // stops reading, and does not notice the close either
			return nil, nil
		}))
	base := newServer(t, mux)
	c := wsrpc.NewClientStreamClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Stall", "/t/Stall",
		wsrpc.WithDialOptions(&websocket.DialOptions{CloseTimeout: 300 * time.Millisecond}))
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		end  bool // the test cancels once the Send is blocked
		want wsrpc.Code
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, true, wsrpc.CodeCanceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 2*time.Second)
		}, false, wsrpc.CodeDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			st, err := c.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var sent atomic.Int64
			done := make(chan error, 1)
			go func() {
				blob := make([]byte, 256<<10)
				for {
					if err := st.Send(&testingv1.EchoRequest{Blob: blob}); err != nil {
						done <- err
						return
					}
					sent.Add(1)
				}
			}()
			if tc.end {
				// Blocked: no Send has returned for a while, the socket
				// buffers full. Only the test's power to fail without the
				// fix depends on it.
				last, still := sent.Load(), 0
				for deadline := time.Now().Add(handlerBound); still < 5 && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
					if n := sent.Load(); n == last && n > 0 {
						still++
					} else {
						last, still = n, 0
					}
				}
				cancel()
			}
			err = waitSeen(t, done, "the blocked Send never returned")
			if wsrpc.CodeOf(err) != tc.want {
				t.Fatalf("blocked Send = %v, want %v", err, tc.want)
			}
			// CloseAndReceive after it reports the call's end the same.
			if _, err := st.CloseAndReceive(); wsrpc.CodeOf(err) != tc.want {
				t.Fatalf("CloseAndReceive after the blocked Send = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOnCloseWriteLoss: a handler whose client is lost while the handler
// writes — the client resets the connection, or stops reading until
// WriteTimeout — ends with OnClose's 1006, as CloseInfo's doc promises
// for a TCP connection that ended without a close frame, whatever the
// handler then returns. The write path recorded nothing, and OnClose
// reported the 4014 of the unavailable the handler returned; a read that
// found the connection gone already reported 1006. A server-streaming
// handler's peer watcher reads too, and often saw the reset first; a
// bidirectional handler that only writes has nothing reading.
func TestOnCloseWriteLoss(t *testing.T) {
	sendAll := func(send func(*testingv1.EchoResponse) error) error {
		blob := make([]byte, 256<<10)
		for {
			if err := send(&testingv1.EchoResponse{Blob: blob}); err != nil {
				return err
			}
		}
	}
	for _, kind := range []string{"server-streaming", "bidi"} {
		for _, how := range []string{"reset", "stop-reading"} {
			t.Run(kind+"/"+how, func(t *testing.T) {
				closes := make(chan wsrpc.CloseInfo, 1)
				opts := []wsrpc.Option{
					wsrpc.WithAcceptOptions(&websocket.AcceptOptions{WriteTimeout: 300 * time.Millisecond}),
					wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }),
				}
				mux := http.NewServeMux()
				if kind == "bidi" {
					mux.Handle("/t/Down", wsrpc.NewBidiHandler("/t/Down",
						func(ctx context.Context, st *wsrpc.BidiStream[testingv1.CountRequest, testingv1.EchoResponse]) error {
							if _, err := st.Receive(); err != nil {
								return err
							}
							return sendAll(st.Send)
						}, opts...))
				} else {
					mux.Handle("/t/Down", wsrpc.NewServerStreamHandler("/t/Down",
						func(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.EchoResponse]) error {
							return sendAll(st.Send)
						}, opts...))
				}
				base := newServer(t, mux)
				ctx := testContext(t)
				ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/t/Down",
					&websocket.DialOptions{Subprotocols: []string{codec.SubprotocolProto}})
				if err != nil {
					t.Fatal(err)
				}
				defer ws.CloseNow()
				req, _ := proto.Marshal(&testingv1.CountRequest{})
				if err := ws.Write(ctx, websocket.MessageBinary, req); err != nil {
					t.Fatal(err)
				}
				if _, _, err := ws.Read(ctx); err != nil { // the handler is streaming
					t.Fatal(err)
				}
				if how == "reset" {
					ws.CloseNow() // input unread: the kernel answers with a reset
				} // else never read again: the handler's write times out
				ci := waitSeen(t, closes, "OnClose never ran")
				if ci.Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
					t.Fatalf("OnClose Code %d Err %v, want 1006 and unavailable", ci.Code, ci.Err)
				}
			})
		}
	}
}
