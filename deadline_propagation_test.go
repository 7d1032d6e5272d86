package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// handlerDeadline is what a deadlineServer handler saw: the time its
// context's deadline left it on entry, and how the context ended.
type handlerDeadline struct {
	left time.Duration
	has  bool
	err  error
}

// deadlineServer's methods report their context's deadline and wait for
// it to end (or for release, so that a failing test does not leave them
// waiting); one without a deadline returns failed_precondition at once,
// unless hold. Count and Watch send one response first, for a call to
// see it open.
type deadlineServer struct {
	streamServer
	seen    chan<- handlerDeadline
	release <-chan struct{}
	hold    bool
}

func (s deadlineServer) wait(ctx context.Context) error {
	d, ok := ctx.Deadline()
	if !ok && !s.hold {
		s.report(handlerDeadline{})
		return wsrpc.Errorf(wsrpc.CodeFailedPrecondition, "the handler's context has no deadline")
	}
	left := time.Until(d)
	select {
	case <-ctx.Done():
	case <-s.release:
	}
	s.report(handlerDeadline{left: left, has: true, err: ctx.Err()})
	return ctx.Err()
}

// report sends h unless the test is over (a test that reads none).
func (s deadlineServer) report(h handlerDeadline) {
	select {
	case s.seen <- h:
	case <-s.release:
	}
}

func (s deadlineServer) Echo(ctx context.Context, _ *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	return s.wait(ctx)
}

func (s deadlineServer) Count(ctx context.Context, _ *testingv1.CountRequest, st *wsrpc.ServerStream[testingv1.CountResponse]) error {
	if err := st.Send(&testingv1.CountResponse{N: 1}); err != nil {
		return err
	}
	return s.wait(ctx)
}

func (s deadlineServer) Sum(ctx context.Context, _ *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
	return nil, s.wait(ctx)
}

func (s deadlineServer) Watch(ctx context.Context, _ *testingv1.WatchRequest, st *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	if err := st.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "open"}}); err != nil {
		return err
	}
	return s.wait(ctx)
}

// deadlineCall runs one call of kind ("bidi", "server-stream",
// "client-stream", "sse") on client until it ends, and returns how.
func deadlineCall(ctx context.Context, client testingv1wsrpc.StreamServiceClient, kind string) error {
	switch kind {
	case "bidi":
		st, err := client.Echo(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		_, err = st.Receive()
		return err
	case "server-stream":
		st, err := client.Count(ctx, &testingv1.CountRequest{Count: 1})
		if err != nil {
			return err
		}
		defer st.Close()
		for {
			if _, err := st.Receive(); err != nil {
				return err
			}
		}
	case "client-stream":
		st, err := client.Sum(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		_, err = st.CloseAndReceive()
		return err
	default:
		st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
		if err != nil {
			return err
		}
		defer st.Close()
		for {
			if _, err := st.Receive(); err != nil {
				return err
			}
		}
	}
}

var deadlineKinds = []string{"bidi", "server-stream", "client-stream", "sse"}

// newDeadlineServer serves deadlineServer with opts and returns its URL
// and what its handlers saw.
func newDeadlineServer(t *testing.T, hold bool, opts ...wsrpc.Option) (string, <-chan handlerDeadline) {
	seen := make(chan handlerDeadline, 8)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(deadlineServer{seen: seen, release: release, hold: hold}, opts...))
	base := newServer(t, mux)
	t.Cleanup(func() { close(release) }) // before the server closes
	return base, seen
}

// TestDeadlinePropagates guards TimeoutHeader: a typed client's deadline
// reaches the handler's context on every stream kind. The handler's ctx
// had no deadline at all: the server learnt of the client's only from its
// 4004 close, if the handler read. The client gives up first (the server
// counts from the request's arrival), so how the handler's context ends
// is a race, as in gRPC; TestDeadlineServerCountsFirst checks the other
// side.
func TestDeadlinePropagates(t *testing.T) {
	for _, kind := range deadlineKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			base, seen := newDeadlineServer(t, false)
			client := testingv1wsrpc.NewStreamServiceClient(nil, base)
			const timeout = 2 * time.Second
			ctx, cancel := context.WithTimeout(testContext(t), timeout)
			defer cancel()

			err := deadlineCall(ctx, client, kind)
			if c := wsrpc.CodeOf(err); c != wsrpc.CodeDeadlineExceeded {
				t.Errorf("client: %v (code %v), want deadline_exceeded", err, c)
			}
			select {
			case h := <-seen:
				if !h.has {
					t.Fatal("the handler's context had no deadline")
				}
				if h.left <= 0 || h.left > timeout {
					t.Errorf("the handler's deadline left it %v, want within (0, %v]", h.left, timeout)
				}
				if !errors.Is(h.err, context.DeadlineExceeded) && !errors.Is(h.err, context.Canceled) {
					t.Errorf("the handler's context ended with %v", h.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never ended")
			}
		})
	}
}

// TestDeadlineServerCountsFirst: when the time a client sent passes on
// the server first (here the client has no deadline of its own; an
// interceptor sends 300 ms), the handler's context ends with
// DeadlineExceeded, OnClose reports deadline_exceeded, and so does the
// client: the session ends as with an interceptor's deadline, a 4004
// close on a WebSocket whether or not the handler reads, a wsrpc.error
// event on SSE.
func TestDeadlineServerCountsFirst(t *testing.T) {
	send := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hs.Request.Header.Set(wsrpc.TimeoutHeader, "300")
			return next(ctx, hs)
		}
	})
	for _, kind := range deadlineKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			closes := make(chan wsrpc.CloseInfo, 8)
			base, seen := newDeadlineServer(t, false, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closes <- ci }))
			client := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithInterceptors(send))
			ctx := testContext(t)
			err := deadlineCall(ctx, client, kind)
			if c := wsrpc.CodeOf(err); c != wsrpc.CodeDeadlineExceeded {
				t.Errorf("client: %v (code %v), want deadline_exceeded", err, c)
			}
			// The server's word ended the call, not the test's own
			// context: an SSE stream ended without an event at the
			// header's deadline, and the client reconnected, with the
			// same header, until the test's 20 s were up.
			if ctx.Err() != nil {
				t.Errorf("the call ended only with the test's context (%v)", err)
			}
			bound := time.After(10 * time.Second)
			select {
			case h := <-seen:
				if !h.has || h.left <= 0 || h.left > 300*time.Millisecond {
					t.Errorf("the handler's deadline: %v left (set: %v), want within (0, 300ms]", h.left, h.has)
				}
				if !errors.Is(h.err, context.DeadlineExceeded) {
					t.Errorf("the handler's context ended with %v, want context.DeadlineExceeded", h.err)
				}
			case <-bound:
				t.Fatal("the handler never ended")
			}
			select {
			case ci := <-closes:
				if wsrpc.CodeOf(ci.Err) != wsrpc.CodeDeadlineExceeded {
					t.Errorf("OnClose: %+v, want deadline_exceeded", ci)
				}
			case <-bound:
				t.Fatal("OnClose never ran")
			}
		})
	}
}

// TestDeadlinePropagationReconnect: each handshake of a call carries the
// time left then, the reconnections' included. A WebSocket reconnection
// (WithReconnect) runs a new handshake; an SSE one repeated the first
// request's headers, stale value and all, the time the call had when it
// began.
func TestDeadlinePropagationReconnect(t *testing.T) {
	for _, kind := range []string{"server-stream", "sse"} {
		t.Run(kind, func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			record := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					mu.Lock()
					sent = append(sent, hs.Request.Header.Get(wsrpc.TimeoutHeader))
					mu.Unlock()
					return next(ctx, hs)
				}
			})
			base, _ := newDeadlineServer(t, true, wsrpc.WithInterceptors(record))
			bh := newBlackhole(t, strings.TrimPrefix(base, "http://"))
			hc := &http.Client{Transport: &http.Transport{}}
			defer hc.CloseIdleConnections()
			// Reconnections wait at least 10 ms: the time left drops by a
			// whole millisecond or more.
			client := testingv1wsrpc.NewStreamServiceClient(hc, "http://"+bh.addr,
				wsrpc.WithReconnect(wsrpc.ReconnectPolicy{MaxAttempts: 3, InitialDelay: 20 * time.Millisecond, MaxDelay: 40 * time.Millisecond}),
				wsrpc.WithSSEClientOptions(&sse.ClientOptions{ReconnectionTime: 20 * time.Millisecond, MaxReconnectionAttempts: 3}))
			const timeout = 10 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()

			var receive func() error
			if kind == "sse" {
				st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r"})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				receive = func() error { _, err := st.Receive(); return err }
			} else {
				st, err := client.Count(ctx, &testingv1.CountRequest{Count: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				receive = func() error { _, err := st.Receive(); return err }
			}
			if err := receive(); err != nil {
				t.Fatal(err)
			}
			bh.cut()
			// The handler starts over on the new connection, with its
			// first response.
			if err := receive(); err != nil {
				t.Fatalf("after the cut: %v", err)
			}
			mu.Lock()
			got := append([]string(nil), sent...)
			mu.Unlock()
			if len(got) != 2 {
				t.Fatalf("%d handshakes (%q), want 2", len(got), got)
			}
			first, err1 := strconv.ParseInt(got[0], 10, 64)
			second, err2 := strconv.ParseInt(got[1], 10, 64)
			if err1 != nil || err2 != nil || first <= 0 || first > timeout.Milliseconds() || second <= 0 || second >= first {
				t.Errorf("%s: %q, then %q on the reconnection; want the milliseconds left, within (0, %d], fewer the second time",
					wsrpc.TimeoutHeader, got[0], got[1], timeout.Milliseconds())
			}
		})
	}
}

// TestDeadlineBeyondHeaderRange: a deadline further away than the
// header's 10 digits hold (about 115 days) is not sent: a capped value
// would end the call on the server before the client gives up on it. The
// handler's context has no deadline, as for an old client. That holds up
// to the largest timeout, math.MaxInt64 ("no timeout" in a context), whose
// rounding up to milliseconds overflowed into a negative header that the
// server refused as malformed.
func TestDeadlineBeyondHeaderRange(t *testing.T) {
	for _, timeout := range []time.Duration{200 * 24 * time.Hour, math.MaxInt64} {
		t.Run(timeout.String(), func(t *testing.T) {
			base, seen := newDeadlineServer(t, false)
			client := testingv1wsrpc.NewStreamServiceClient(nil, base)
			ctx, cancel := context.WithTimeout(context.Background(), timeout) // not testContext: its own deadline is nearer
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- deadlineCall(ctx, client, "server-stream") }()
			select {
			case h := <-seen:
				if h.has {
					// It waits for a context that ends in months: end the call.
					t.Errorf("the handler's context has a deadline %v away", h.left)
					cancel()
				}
			case err := <-done:
				t.Fatalf("call ended before the handler ran: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never reported")
			}
			if err := <-done; !t.Failed() && wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
				t.Errorf("call: %v, want the handler's failed_precondition (no deadline)", err)
			}
		})
	}
}

// TestDeadlineHeaderMalformed: a TimeoutHeader the server cannot read is
// refused before the upgrade with 400 invalid_argument naming the header
// and the value, on both routes; it used to be ignored, the call running
// with no deadline on the server while the client believed it sent one.
func TestDeadlineHeaderMalformed(t *testing.T) {
	base, _ := newDeadlineServer(t, false)
	long := strings.Repeat("9", 200)
	values := []struct{ value, shown string }{
		{"", `""`},
		{"0", `"0"`},
		{"0000", `"0000"`},
		{"-5", `"-5"`},
		{"+5", `"+5"`},
		{"1.5", `"1.5"`},
		{"5s", `"5s"`},
		{"0x10", `"0x10"`},
		{"12345678901", `"12345678901"`}, // 11 digits
		{long, `"` + long[:32] + `"…`},
	}
	ctx := testContext(t)
	for _, route := range []struct {
		name, path string
		header     map[string]string
	}{
		{"websocket", testingv1wsrpc.StreamServiceEchoPath, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}},
		{"sse", testingv1wsrpc.StreamServiceWatchPath, map[string]string{"Accept": "text/event-stream"}},
	} {
		for _, v := range values {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+route.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, hv := range route.header {
				req.Header.Set(k, hv)
			}
			req.Header.Set(wsrpc.TimeoutHeader, v.value)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				// Not read: an accepted call's body lasts as long as it.
				resp.Body.Close()
				t.Errorf("%s, %s %q: %s, want 400", route.name, wsrpc.TimeoutHeader, v.value, resp.Status)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := wsrpc.TimeoutHeader + ": " + v.shown + " is not a timeout"
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(wsrpc.CodeHeader) != "invalid_argument" || !strings.Contains(string(body), want) {
				t.Errorf("%s, %s %q: %d, %s %q, body %q; want 400 invalid_argument with %q",
					route.name, wsrpc.TimeoutHeader, v.value, resp.StatusCode, wsrpc.CodeHeader, resp.Header.Get(wsrpc.CodeHeader), body, want)
			}
		}
	}
}

// TestDeadlineHeaderInterceptors: the client sets TimeoutHeader before
// its handshake interceptors run, so that they see it and may replace or
// delete it. One that sets a malformed value gets the server's
// invalid_argument; one that deletes it leaves the handler without a
// deadline, as an old client's call is.
func TestDeadlineHeaderInterceptors(t *testing.T) {
	base, seen := newDeadlineServer(t, false)
	ctx, cancel := context.WithTimeout(testContext(t), 5*time.Second)
	defer cancel()
	set := func(value string, del bool, saw *[]string, mu *sync.Mutex) wsrpc.Interceptor {
		return wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				mu.Lock()
				*saw = append(*saw, hs.Request.Header.Get(wsrpc.TimeoutHeader))
				mu.Unlock()
				if del {
					hs.Request.Header.Del(wsrpc.TimeoutHeader)
				} else {
					hs.Request.Header.Set(wsrpc.TimeoutHeader, value)
				}
				return next(ctx, hs)
			}
		})
	}
	for _, kind := range deadlineKinds {
		var mu sync.Mutex
		var saw []string
		bad := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithInterceptors(set("soon", false, &saw, &mu)))
		err := deadlineCall(ctx, bad, kind)
		var e *wsrpc.Error
		if !errors.As(err, &e) || e.Code() != wsrpc.CodeInvalidArgument || !strings.Contains(e.Message(), wsrpc.TimeoutHeader+`: "soon"`) {
			t.Errorf("%s, %s set to %q: %v, want invalid_argument naming it", kind, wsrpc.TimeoutHeader, "soon", err)
		}

		deleting := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithInterceptors(set("", true, &saw, &mu)))
		err = deadlineCall(ctx, deleting, kind)
		if wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
			t.Errorf("%s, %s deleted: %v, want the handler's failed_precondition (no deadline)", kind, wsrpc.TimeoutHeader, err)
		}
		select {
		case h := <-seen:
			if h.has {
				t.Errorf("%s, %s deleted: the handler's context has a deadline", kind, wsrpc.TimeoutHeader)
			}
		case <-ctx.Done():
			t.Fatalf("%s: the handler never ran", kind)
		}
		mu.Lock()
		for _, v := range saw {
			if ms, err := strconv.Atoi(v); err != nil || ms <= 0 || ms > 5000 {
				t.Errorf("%s: the interceptor saw %s %q, want the milliseconds left", kind, wsrpc.TimeoutHeader, v)
			}
		}
		mu.Unlock()
	}
}
