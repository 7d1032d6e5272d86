package wsrpc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestSSEWriteTimeoutUnavailable: a typed SSE handler whose client stops
// reading fails its Send after WriteTimeout with unavailable (wrapping
// sse.ErrWriteTimeout), and OnClose reports 1006, as a WebSocket handler
// reports the same client (TestOnCloseWriteLoss). Over HTTP/1.1 net/http
// cancels the request's context when a write fails, and the timeout was
// taken for a client that left: Send returned canceled ("sse: client went
// away: … i/o timeout") and OnClose 4001. A client that closes its
// connection still reads as one that left: canceled and 4001.
func TestSSEWriteTimeoutUnavailable(t *testing.T) {
	for _, tc := range []struct {
		how      string
		wantCode wsrpc.Code
		wantWire websocket.StatusCode
	}{
		{"stop-reading", wsrpc.CodeUnavailable, websocket.StatusAbnormalClosure},
		{"close", wsrpc.CodeCanceled, wsrpc.CodeCanceled.CloseCode()}, // 4001
	} {
		t.Run(tc.how, func(t *testing.T) {
			closed := make(chan struct{}) // the client has closed its connection
			sent := make(chan error, 1)
			closes := make(chan wsrpc.CloseInfo, 1)
			mux := http.NewServeMux()
			mux.Handle("/t/Down", wsrpc.NewSSEHandler("/t/Down",
				func(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.EchoResponse]) error {
					if tc.how == "close" {
						select {
						case <-closed:
						case <-time.After(10 * time.Second):
						}
					}
					blob := make([]byte, 256<<10)
					for range 4000 { // bounded: 1 GiB would outlast any socket buffer
						if err := st.Send(&testingv1.EchoResponse{Blob: blob}); err != nil {
							sent <- err
							return err
						}
					}
					sent <- errors.New("every send succeeded")
					return nil
				},
				wsrpc.WithSSEOptions(&sse.StreamOptions{WriteTimeout: 300 * time.Millisecond}),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci })))
			base := newServer(t, mux)

			nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write([]byte("GET /t/Down HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("response: %v %v", resp, err)
			}
			if tc.how == "close" {
				nc.Close()
				close(closed)
			} // else read nothing more: the handler's write times out

			err = waitSeen(t, sent, "the handler's Send never failed")
			if wsrpc.CodeOf(err) != tc.wantCode {
				t.Errorf("Send = %v, want %v", err, tc.wantCode)
			}
			if timedOut := errors.Is(err, sse.ErrWriteTimeout); timedOut != (tc.how == "stop-reading") {
				t.Errorf("Send = %v: errors.Is sse.ErrWriteTimeout %v", err, timedOut)
			}
			ci := waitSeen(t, closes, "OnClose never ran")
			if ci.Code != tc.wantWire || wsrpc.CodeOf(ci.Err) != tc.wantCode {
				t.Fatalf("OnClose Code %d Err %v, want %d and %v", ci.Code, ci.Err, tc.wantWire, tc.wantCode)
			}
		})
	}
}

// stallWriter is a ResponseWriter whose writes fail, once stall is set,
// as a write past its deadline does (os.ErrDeadlineExceeded): a client
// that stopped reading, from the moment the test chooses.
type stallWriter struct {
	http.ResponseWriter
	stall atomic.Bool
}

func (w *stallWriter) Write(b []byte) (int, error) {
	if w.stall.Load() {
		return 0, fmt.Errorf("write tcp: %w", os.ErrDeadlineExceeded)
	}
	return w.ResponseWriter.Write(b)
}

func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type stallKey struct{}

// TestSSEEndEventWriteTimeoutIsLost: a handler that returns (nil, or
// Close) while its client has stopped reading ends the stream with an
// end event whose write times out: the client never gets it, and
// reconnects. OnClose reported a normal closure (1000), or the handler's
// code, as if the event had gone out; it is a lost connection (1006,
// unavailable), as a Send's timed-out write is (TestSSEWriteTimeoutUnavailable)
// and a WebSocket close frame that could not be written.
func TestSSEEndEventWriteTimeoutIsLost(t *testing.T) {
	for _, how := range []string{"return nil", "return error", "Close"} {
		t.Run(how, func(t *testing.T) {
			closes := make(chan wsrpc.CloseInfo, 1)
			h := wsrpc.NewSSEHandler("/t/Down",
				func(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.EchoResponse]) error {
					if err := st.Send(&testingv1.EchoResponse{Text: "x"}); err != nil {
						return err
					}
					ctx.Value(stallKey{}).(*stallWriter).stall.Store(true)
					switch how {
					case "return error":
						return wsrpc.Errorf(wsrpc.CodeNotFound, "gone")
					case "Close":
						_ = st.Close(wsrpc.CodeNotFound, "gone")
					}
					return nil
				},
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))
			base := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sw := &stallWriter{ResponseWriter: w}
				h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), stallKey{}, sw)))
			}))
			ctx := testContext(t)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/t/Down", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "wsrpc.") {
				t.Fatalf("an end event went out: %q", body)
			}
			select {
			case ci := <-closes:
				if ci.Code != websocket.StatusAbnormalClosure || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
					t.Errorf("OnClose: %+v, want 1006 unavailable: the end event never reached the client", ci)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("OnClose never ran")
			}
		})
	}
}
