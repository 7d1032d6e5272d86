package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestSendAfterReturnIsFailedPrecondition: a server stream's Send once
// the handler has returned fails with failed_precondition ("send after
// the handler returned") and sends nothing, whenever it comes — as the
// session's close goes out (from OnClose) or once the handler's context
// has ended — on a bidirectional and a server-streaming WebSocket stream
// and on SSE, whether the handler returned nil or an error. It returned
// io.EOF, unavailable or canceled depending on how far the close had got
// (TestSendAfterHandlerReturned allowed any).
func TestSendAfterReturnIsFailedPrecondition(t *testing.T) {
	for _, fail := range []bool{false, true} {
		for _, route := range []string{"bidi", "server-stream", "sse"} {
			name := route
			if fail {
				name += "/error"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				late := make(chan error, 2)
				var send func() error
				var handlerCtx context.Context
				returned := func(ctx context.Context) error {
					handlerCtx = ctx
					if fail {
						return wsrpc.Errorf(wsrpc.CodeAborted, "done")
					}
					return nil
				}
				onClose := wsrpc.WithOnClose(func(context.Context, *wsrpc.ConnInfo, wsrpc.CloseInfo) {
					// The session's end, as its close goes out; and
					// once the handler's context has ended.
					late <- send()
					go func() { <-handlerCtx.Done(); late <- send() }()
				})
				var h http.Handler
				switch route {
				case "bidi":
					h = wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
						send = func() error { return s.Send(&testingv1.EchoResponse{Text: "late"}) }
						return returned(ctx)
					}, onClose)
				case "server-stream":
					h = wsrpc.NewServerStreamHandler("/t/Count", func(ctx context.Context, _ *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
						send = func() error { return s.Send(&testingv1.CountResponse{N: 1}) }
						return returned(ctx)
					}, onClose)
				default:
					h = wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
						send = func() error {
							return s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "late"}})
						}
						return returned(ctx)
					}, onClose)
				}
				url := newServer(t, h)
				ctx := testContext(t)
				var err error
				switch route {
				case "bidi":
					st, cerr := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, url, "/t/Echo").Call(ctx)
					if cerr != nil {
						t.Fatal(cerr)
					}
					defer st.Close()
					_, err = st.Receive()
				case "server-stream":
					st, cerr := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, url, "/t/Count").Call(ctx, &testingv1.CountRequest{})
					if cerr != nil {
						t.Fatal(cerr)
					}
					defer st.Close()
					_, err = st.Receive()
				default:
					st, cerr := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, url, "/t/Watch").Call(ctx, &testingv1.WatchRequest{})
					if cerr != nil {
						t.Fatal(cerr)
					}
					defer st.Close()
					_, err = st.Receive()
				}
				if want := wsrpc.Code(0); fail {
					want = wsrpc.CodeAborted
					if wsrpc.CodeOf(err) != want {
						t.Errorf("client Receive = %v, want the handler's aborted, nothing after it", err)
					}
				} else if !errors.Is(err, io.EOF) {
					t.Errorf("client Receive = %v, want io.EOF, nothing after it", err)
				}
				for _, when := range []string{"during the session's end (OnClose)", "after the handler's context ended"} {
					err := waitSeen(t, late, "the late Send never returned")
					var e *wsrpc.Error
					if !errors.As(err, &e) || e.Code() != wsrpc.CodeFailedPrecondition || !strings.Contains(e.Message(), "send after the handler returned") {
						t.Errorf("Send %s = %v, want failed_precondition: send after the handler returned", when, err)
					}
				}
			})
		}
	}
}
