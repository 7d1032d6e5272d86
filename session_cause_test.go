package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// causeService serves Count (WebSocket) and Watch (SSE). The first call
// of each sends 1 and then waits for its context to end (and, when
// linger is set, for release too, as a handler busy elsewhere would);
// later calls send the rest, 1 to 3 for Count, the notes after
// Last-Event-ID up to 3 for Watch, and return nil.
type causeService struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	linger  bool
	release chan struct{}
	count   atomic.Int32
	watch   atomic.Int32
}

func (h *causeService) wait(ctx context.Context) error {
	<-ctx.Done()
	if h.linger {
		<-h.release
	}
	return ctx.Err()
}

func (h *causeService) Count(ctx context.Context, req *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	first := h.count.Add(1) == 1
	for i := int32(1); i <= 3; i++ {
		if err := st.Send(&testingv1.CountResponse{N: i}); err != nil {
			return err
		}
		if first {
			return h.wait(ctx)
		}
	}
	return nil
}

func (h *causeService) Watch(ctx context.Context, req *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	first := h.watch.Add(1) == 1
	from, _ := strconv.Atoi(st.LastEventID())
	for i := from + 1; i <= 3; i++ {
		ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: strconv.Itoa(i)}}, strconv.Itoa(i))
		if err != nil {
			return err
		}
		if err := st.SendEvent(ev); err != nil {
			return err
		}
		if first {
			return h.wait(ctx)
		}
	}
	return nil
}

// TestSessionContextCause: a session whose context ends with an *Error as
// its cause — a handshake interceptor's context.WithCancelCause cancelled
// to revoke a tenant, or a server's base context cancelled with
// unavailable — ends the call with that error, as if the handler had
// returned it, on both transports: the close code (4007, 4014) on
// WebSocket, a wsrpc.error event on SSE, at once even while the handler
// is busy elsewhere (linger). permission_denied ends the call for good;
// unavailable is retried (WithReconnect; the SSE client with
// Last-Event-ID) and the call goes on. Any other end is as before: 4001
// canceled on WebSocket, which ends the call; on SSE the response ends
// without an event and the client resumes, OnClose reporting 4001.
// These calls used to end with 4001 canceled on WebSocket whatever the
// cause, and with a cut (resumed) SSE response.
func TestSessionContextCause(t *testing.T) {
	revoked := wsrpc.Errorf(wsrpc.CodePermissionDenied, "tenant revoked")
	leaving := wsrpc.Errorf(wsrpc.CodeUnavailable, "server shutting down")
	for _, tc := range []struct {
		name   string
		sse    bool
		cause  error // nil: cancel(nil)
		linger bool
		got    string     // what Receive yields: the numbers, then the end
		err    wsrpc.Code // 0: io.EOF
		msg    string
		calls  int32
		closes string // the server's OnClose codes, one a connection, in any order
	}{
		{name: "ws/permission_denied", cause: revoked, got: "1", err: wsrpc.CodePermissionDenied, msg: "tenant revoked", calls: 1, closes: "4007"},
		{name: "ws/permission_denied wrapped", cause: fmt.Errorf("revoke: %w", revoked), got: "1", err: wsrpc.CodePermissionDenied, msg: "tenant revoked", calls: 1, closes: "4007"},
		{name: "ws/permission_denied handler busy", cause: revoked, linger: true, got: "1", err: wsrpc.CodePermissionDenied, msg: "tenant revoked", calls: 1, closes: "4007"},
		{name: "ws/unavailable", cause: leaving, got: "1 1 2 3", calls: 2, closes: "4014 1000"},
		{name: "ws/no cause", got: "1", err: wsrpc.CodeCanceled, calls: 1, closes: "4001"},
		{name: "ws/other cause", cause: errors.New("not an *Error"), got: "1", err: wsrpc.CodeCanceled, calls: 1, closes: "4001"},
		{name: "sse/permission_denied", sse: true, cause: revoked, got: "1", err: wsrpc.CodePermissionDenied, msg: "tenant revoked", calls: 1, closes: "4007"},
		{name: "sse/permission_denied handler busy", sse: true, cause: revoked, linger: true, got: "1", err: wsrpc.CodePermissionDenied, msg: "tenant revoked", calls: 1, closes: "4007"},
		{name: "sse/unavailable", sse: true, cause: leaving, got: "1 2 3", calls: 2, closes: "4014 1000"},
		{name: "sse/unavailable handler busy", sse: true, cause: leaving, linger: true, got: "1 2 3", calls: 2, closes: "4014 1000"},
		{name: "sse/no cause", sse: true, got: "1 2 3", calls: 2, closes: "4001 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &causeService{linger: tc.linger, release: make(chan struct{})}
			cancels := make(chan context.CancelCauseFunc, 1)
			var sessions atomic.Int32
			closes := make(chan string, 4)
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(svc,
				wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
					return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
						if sessions.Add(1) == 1 {
							var cancel context.CancelCauseFunc
							ctx, cancel = context.WithCancelCause(ctx)
							cancels <- cancel
						}
						return next(ctx, hs)
					}
				})),
				wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					closes <- strconv.Itoa(int(ci.Code))
				})))
			base := newServer(t, mux)
			released := false
			release := func() {
				if !released {
					released = true
					close(svc.release)
				}
			}
			t.Cleanup(release) // before the server closes: it waits for the handlers
			c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, base,
				wsrpc.WithReconnect(wsrpc.ReconnectPolicy{InitialDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond}),
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 10 * time.Millisecond}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var recv func() (string, error)
			var closeCall func() error
			if tc.sse {
				st, err := c.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
				if err != nil {
					t.Fatal(err)
				}
				recv = func() (string, error) {
					m, err := st.Receive()
					return m.GetNote(), err
				}
				closeCall = st.Close
			} else {
				st, err := c.Count(ctx, &testingv1.CountRequest{})
				if err != nil {
					t.Fatal(err)
				}
				recv = func() (string, error) {
					m, err := st.Receive()
					return strconv.Itoa(int(m.GetN())), err
				}
				closeCall = st.Close
			}
			defer closeCall()
			var got []string
			first, err := recv()
			if err != nil {
				t.Fatalf("first Receive: %v", err)
			}
			got = append(got, first)
			(<-cancels)(tc.cause)
			for {
				var s string
				if s, err = recv(); err != nil {
					break
				}
				got = append(got, s)
			}
			release()
			if g := strings.Join(got, " "); g != tc.got {
				t.Errorf("received %q, want %q", g, tc.got)
			}
			if tc.err == 0 && err != io.EOF {
				t.Errorf("call ended with %v, want io.EOF", err)
			}
			if tc.err != 0 {
				var e *wsrpc.Error
				if !errors.As(err, &e) || e.Code() != tc.err || tc.msg != "" && e.Message() != tc.msg {
					t.Errorf("call ended with %v, want %v %q", err, tc.err, tc.msg)
				}
			}
			calls := svc.count.Load()
			if tc.sse {
				calls = svc.watch.Load()
			}
			if calls != tc.calls {
				t.Errorf("%d handler calls, want %d", calls, tc.calls)
			}
			var ends []string
			for range strings.Fields(tc.closes) {
				select {
				case code := <-closes:
					ends = append(ends, code)
				case <-time.After(10 * time.Second):
					t.Fatalf("OnClose %v, then no more; want %s", ends, tc.closes)
				}
			}
			// The first session's OnClose may come after the second's.
			want := strings.Fields(tc.closes)
			slices.Sort(ends)
			slices.Sort(want)
			if !slices.Equal(ends, want) {
				t.Errorf("OnClose codes %v, want %s", ends, tc.closes)
			}
		})
	}
}
