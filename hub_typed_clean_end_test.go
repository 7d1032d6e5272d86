package wsrpc_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/hub"
)

// subscribedCounter serves Count as docs/hub.md's typed sessions do: the
// session's connection subscribed to a hub topic, the handler waiting on
// ctx or the subscription, returning ctx.Err() when ctx ends.
type subscribedCounter struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	topic      *hub.Topic[*testingv1.CountResponse]
	subscribed chan struct{}
}

func (f subscribedCounter) waitSub(ctx context.Context, sub *hub.Subscription) error {
	f.subscribed <- struct{}{}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.Done():
	}
	switch err := sub.Err(); {
	case errors.Is(err, hub.ErrClosed):
		return wsrpc.Errorf(wsrpc.CodeUnavailable, "topic closed")
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return wsrpc.NewError(wsrpc.CodeUnavailable, err)
	}
}

func (f subscribedCounter) Count(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	sub, err := f.topic.SubscribeWebSocket(st.WebSocket(), st.Codec())
	if err != nil {
		return err
	}
	defer sub.Close()
	return f.waitSub(ctx, sub)
}

// TestHandlerCtxErrAfterNormalCloseIsCleanEnd: a server-streaming handler
// that follows a hub topic as docs/hub.md shows returns ctx.Err() when
// its client closes normally (1000); the stream interceptors then see a
// clean end (nil), as OnClose does and observability.md promises, not
// canceled. A client that cancels its call (4001) still reads canceled.
func TestHandlerCtxErrAfterNormalCloseIsCleanEnd(t *testing.T) {
	for _, leave := range []string{"close", "cancel"} {
		t.Run(leave, func(t *testing.T) {
			h, err := hub.New(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			topic, err := hub.NewTopic[*testingv1.CountResponse](h, "count", &hub.TopicOptions[*testingv1.CountResponse]{DisableReplay: true})
			if err != nil {
				t.Fatal(err)
			}
			outcome, closed := make(chan error, 1), make(chan wsrpc.CloseInfo, 1)
			observe := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
				return func(ctx context.Context, conn wsrpc.StreamConn) error {
					err := next(ctx, conn)
					outcome <- err
					return err
				}
			})
			srv := subscribedCounter{topic: topic, subscribed: make(chan struct{}, 1)}
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(srv, wsrpc.WithInterceptors(observe),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci })))
			ctx := testContext(t)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := testingv1wsrpc.NewStreamServiceClient(nil, newServer(t, mux)).Count(cctx, &testingv1.CountRequest{})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-srv.subscribed:
			case <-ctx.Done():
				t.Fatal("the handler never subscribed")
			}
			if err := topic.Publish(ctx, &testingv1.CountResponse{N: 1}); err != nil {
				t.Fatal(err)
			}
			if res, err := st.Receive(); err != nil || res.GetN() != 1 {
				t.Fatalf("Receive = %v, %v", res, err)
			}
			want := wsrpc.Code(0)
			if leave == "close" {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				cancel()
				want = wsrpc.CodeCanceled
			}
			var got error
			select {
			case got = <-outcome:
			case <-ctx.Done():
				t.Fatal("the handler never returned")
			}
			if wsrpc.CodeOf(got) != want {
				t.Errorf("the interceptor saw %v (%v), want %v", got, wsrpc.CodeOf(got), want)
			}
			select {
			case ci := <-closed:
				if wsrpc.CodeOf(ci.Err) != want {
					t.Errorf("OnClose: %d %v, want %v", ci.Code, ci.Err, want)
				}
			case <-ctx.Done():
				t.Fatal("OnClose never ran")
			}
		})
	}
}
