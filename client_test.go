package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestFinishedCallsReleased: a call that has ended for good (read to its
// end, failed, or answered by CloseAndReceive) releases its connection
// without Close. Each connection's context is a child of the caller's,
// and the runtime watches it with context.AfterFunc: until it is
// cancelled, a long-lived caller context keeps every finished call
// reachable (about 2.7 KB each). The test records each connection's
// context (the one OnConnect sees), checks it was cancelled, then checks
// that the garbage collector frees it while the caller's context lives on.
func TestFinishedCallsReleased(t *testing.T) {
	srv := serve(t)
	var (
		mu   sync.Mutex
		ctxs []context.Context
	)
	client := testingv1wsrpc.NewStreamServiceClient(nil, srv, wsrpc.WithOnConnect(func(ctx context.Context, _ *wsrpc.ConnInfo) {
		mu.Lock()
		ctxs = append(ctxs, ctx)
		mu.Unlock()
	}))
	appCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	calls := []struct {
		name string
		run  func() error
	}{
		{"server stream to its end", func() error {
			st, err := client.Count(appCtx, &testingv1.CountRequest{Count: 2})
			if err != nil {
				return err
			}
			for _, err := range st.All() {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"server stream failed", func() error {
			st, err := client.Count(appCtx, &testingv1.CountRequest{Count: 2, FailAt: 1, FailCode: uint32(wsrpc.CodeAborted)})
			if err != nil {
				return err
			}
			for _, err := range st.All() {
				if wsrpc.CodeOf(err) == wsrpc.CodeAborted {
					return nil
				}
			}
			return errors.New("the handler's error did not arrive")
		}},
		{"bidi to its end", func() error {
			st, err := client.Echo(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.EchoRequest{Text: "a"}); err != nil {
				return err
			}
			if err := st.CloseSend(); err != nil {
				return err
			}
			for _, err := range st.All() {
				if err != nil {
					return err
				}
			}
			// After CloseSend a Send is refused, released or not.
			if err := st.Send(&testingv1.EchoRequest{}); wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
				return errors.New("Send after CloseSend: " + errString(err) + ", want failed_precondition")
			}
			return nil
		}},
		{"bidi failed", func() error {
			st, err := client.Echo(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.EchoRequest{Text: "fail"}); err != nil {
				return err
			}
			var end error
			for _, err := range st.All() {
				end = err
			}
			var e *wsrpc.Error
			if !errors.As(end, &e) || e.Message() != "asked to fail at 0" {
				return errors.New("All ended with " + errString(end) + ", want the handler's error")
			}
			// Released, the stream still reports its end to a late Send.
			if err := st.Send(&testingv1.EchoRequest{}); !errors.As(err, &e) || e.Message() != "asked to fail at 0" {
				return errors.New("Send after the end: " + errString(err) + ", want the handler's error")
			}
			return nil
		}},
		{"client stream answered", func() error {
			st, err := client.Sum(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
				return err
			}
			_, err = st.CloseAndReceive()
			return err
		}},
		{"client stream failed", func() error {
			st, err := client.Sum(appCtx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.SumRequest{N: -1}); err != nil {
				return err
			}
			if _, err = st.CloseAndReceive(); wsrpc.CodeOf(err) != wsrpc.CodeOutOfRange {
				return errors.New("CloseAndReceive: " + errString(err) + ", want out_of_range")
			}
			return nil
		}},
	}
	const rounds = 10
	for range rounds {
		for _, c := range calls {
			if err := c.run(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}

	mu.Lock()
	recorded := ctxs
	ctxs = nil
	mu.Unlock()
	if len(recorded) != rounds*len(calls) {
		t.Fatalf("%d connections, want %d", len(recorded), rounds*len(calls))
	}
	var freed atomic.Int64
	for i, ctx := range recorded {
		if ctx.Err() == nil {
			t.Errorf("call %d (%s) ended but its connection's context is live", i, calls[i%len(calls)].name)
		}
		runtime.SetFinalizer(ctx, func(context.Context) { freed.Add(1) })
	}
	recorded = nil
	// Bounded: finalizers run on their own goroutine after a collection.
	for i := 0; i < 100 && freed.Load() < rounds*int64(len(calls)); i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := freed.Load(); n < rounds*int64(len(calls)) {
		t.Errorf("%d of %d finished calls still reachable from the caller's live context", rounds*int64(len(calls))-n, rounds*len(calls))
	}
	if appCtx.Err() != nil {
		t.Fatal("the caller's context ended during the test: the check above proved nothing")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// handlerBound bounds a wait for something a handler must see; only a
// failing test waits it out.
const handlerBound = 5 * time.Second

// waitSeen returns what a handler reported on seen, failing after
// handlerBound.
func waitSeen[T any](t *testing.T, seen <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-seen:
		return v
	case <-time.After(handlerBound):
		t.Fatalf("%v later, %s", handlerBound, what)
		panic("unreachable")
	}
}

// TestCancelledCallClosesConnection: ctx bounds the whole call
// (BidiClient.Call), and a call read to its error has released its
// connection (docs/codegen.md). Cancelling ctx while no Receive or Send
// runs used to leave the WebSocket open for good (the runtime watches a
// context only during a read or write), so the handler waited in Receive
// forever and a later Close returned nil without closing anything. Now
// the connection closes at once with canceled's close code (4001, in the
// application range of RFC 6455 §7.4.2): the handler's Receive reports
// CodeCanceled, and a server stream's context is cancelled.
func TestCancelledCallClosesConnection(t *testing.T) {
	seen := make(chan error, 1)
	mux := http.NewServeMux()
	mux.Handle("/t/Echo", wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for r, err := range s.All() {
			if err != nil {
				seen <- err
				return err
			}
			if err := s.Send(&testingv1.EchoResponse{Text: r.GetText()}); err != nil {
				seen <- err
				return err
			}
		}
		seen <- io.EOF
		return nil
	}))
	mux.Handle("/t/Sum", wsrpc.NewClientStreamHandler("/t/Sum", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		for _, err := range s.All() {
			if err != nil {
				seen <- err
				return nil, err
			}
		}
		seen <- io.EOF
		return &testingv1.SumResponse{}, nil
	}))
	mux.Handle("/t/Count", wsrpc.NewServerStreamHandler("/t/Count", func(ctx context.Context, _ *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		// The client may have read the message and left before Send
		// returns, which then reports the cancellation: what counts here
		// is ctx.
		_ = s.Send(&testingv1.CountResponse{N: 1})
		<-ctx.Done()
		seen <- ctx.Err()
		return ctx.Err()
	}))
	base := newServer(t, mux)
	wantCanceled := func(t *testing.T, what string, err error) {
		t.Helper()
		if wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
			t.Fatalf("%s = %v, want canceled", what, err)
		}
	}

	t.Run("bidi", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Echo", "/t/Echo").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&testingv1.EchoRequest{Text: "a"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		cancel() // between two Receives
		_, err = st.Receive()
		wantCanceled(t, "Receive after cancel", err)
		wantCanceled(t, "the handler's Receive", waitSeen(t, seen, "the handler's Receive has not seen the client leave"))
		if err := st.Close(); err != nil {
			t.Fatalf("Close after the end = %v", err)
		}
	})

	t.Run("client stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/Sum", "/t/Sum").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = st.CloseAndReceive()
		wantCanceled(t, "CloseAndReceive after cancel", err)
		wantCanceled(t, "the handler's Receive", waitSeen(t, seen, "the handler's Receive has not seen the client leave"))
	})

	t.Run("server stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testContext(t))
		st, err := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/t/Count", "/t/Count").Call(ctx, &testingv1.CountRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		cancel() // and no Receive runs to notice
		if err := waitSeen(t, seen, "the handler's context is live"); !errors.Is(err, context.Canceled) {
			t.Fatalf("the handler's ctx = %v", err)
		}
		_, err = st.Receive()
		wantCanceled(t, "Receive after cancel", err)
	})
}

// TestCodecErrorEndsCall: a message the client cannot decode ends the
// call (All yields invalid_argument last), so the connection is released
// like any other end: it closes with invalid_argument's close code (4003)
// and the codec's error as the reason, and the handler's Receive reports
// it. The connection and the handler used to live on until Close, which
// the docs say a call read to its error does not need.
func TestCodecErrorEndsCall(t *testing.T) {
	seen := make(chan error, 1)
	h := wsrpc.NewBidiHandler("/t/Bad", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		// Not valid protobuf: say, a message of another schema version.
		if err := s.WebSocket().Write(ctx, websocket.MessageBinary, []byte{0xff, 0xff, 0xff}); err != nil {
			return err
		}
		for _, err := range s.All() {
			if err != nil {
				seen <- err
				return err
			}
		}
		seen <- io.EOF
		return nil
	})
	base := newServer(t, h)
	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Bad", "/t/Bad", wsrpc.WithCodecs(codec.Proto)).Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for _, err := range st.All() {
		last = err
	}
	if wsrpc.CodeOf(last) != wsrpc.CodeInvalidArgument {
		t.Fatalf("All ended with %v, want invalid_argument", last)
	}
	got := waitSeen(t, seen, "the handler still waits in Receive: the connection was left open")
	var e *wsrpc.Error
	if !errors.As(got, &e) || e.Code() != wsrpc.CodeInvalidArgument || !strings.Contains(e.Message(), "unmarshal") {
		t.Fatalf("the handler's Receive = %v, want invalid_argument with the codec's error", got)
	}
}

// TestSendAfterHalfClose: after CloseSend (CloseAndReceive for a client
// stream) the server's Receive has returned io.EOF for good, so a Send
// is refused with CodeFailedPrecondition and nothing is written. It used
// to return nil while the message was dropped unread.
func TestSendAfterHalfClose(t *testing.T) {
	client := testingv1wsrpc.NewStreamServiceClient(nil, serve(t))
	ctx := testContext(t)

	t.Run("bidi", func(t *testing.T) {
		st, err := client.Echo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		err = st.Send(&testingv1.EchoRequest{Text: "after CloseSend"})
		if wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
			t.Fatalf("Send after CloseSend = %v, want failed_precondition", err)
		}
		if m, err := st.Receive(); !errors.Is(err, io.EOF) {
			t.Fatalf("Receive = %v, %v, want io.EOF", m, err)
		}
	})

	t.Run("client stream", func(t *testing.T) {
		st, err := client.Sum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&testingv1.SumRequest{N: 2}); err != nil {
			t.Fatal(err)
		}
		if res, err := st.CloseAndReceive(); err != nil || res.GetTotal() != 2 {
			t.Fatalf("CloseAndReceive = %v, %v", res, err)
		}
		if err := st.Send(&testingv1.SumRequest{N: 1}); wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
			t.Fatalf("Send after CloseAndReceive = %v, want failed_precondition", err)
		}
	})
}

// TestClientStreamCloseCancelsUpload: a client stream abandoned with Close
// before CloseAndReceive closes with canceled's close code (4001), so the
// handler's Receive returns a CodeCanceled *Error. It used to close with
// 1000, which the handler's Receive reads as io.EOF, exactly as the end
// of a finished upload: a handler that commits at io.EOF committed part
// of the input.
func TestClientStreamCloseCancelsUpload(t *testing.T) {
	seen := make(chan error, 1)
	h := wsrpc.NewClientStreamHandler("/t/Upload", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		for _, err := range s.All() {
			if err != nil {
				seen <- err
				return nil, err
			}
		}
		seen <- io.EOF // would commit here
		return &testingv1.SumResponse{}, nil
	})
	base := newServer(t, h)
	st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/Upload", "/t/Upload").Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := waitSeen(t, seen, "the handler has not seen the client leave"); wsrpc.CodeOf(got) != wsrpc.CodeCanceled {
		t.Fatalf("the handler's Receive after the client's Close = %v, want canceled", got)
	}
}

// TestClientStreamServerEndsEarly: a client-streaming call's server answer
// is read as it comes, not once the client has sent everything. A handler
// that rejects the upload after its first message closes with its code;
// the client's next Sends fail with that error and CloseAndReceive returns
// it. Before, nothing read the connection during the upload: the close
// went unanswered, the server dropped the connection when its close
// timeout ran out (200 ms here, 5 s by default), and the client, still
// sending, saw a broken pipe — unavailable, which invites a retry of a
// request the server had refused. A handler that answers early makes Send
// fail with io.EOF, and CloseAndReceive returns the response.
func TestClientStreamServerEndsEarly(t *testing.T) {
	mux := http.NewServeMux()
	short := wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: 200 * time.Millisecond})
	mux.Handle("/t/Reject", wsrpc.NewClientStreamHandler("/t/Reject", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		if _, err := s.Receive(); err != nil {
			return nil, err
		}
		return nil, wsrpc.Errorf(wsrpc.CodeInvalidArgument, "bad upload")
	}, short))
	mux.Handle("/t/First", wsrpc.NewClientStreamHandler("/t/First", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		m, err := s.Receive()
		if err != nil {
			return nil, err
		}
		return &testingv1.SumResponse{Total: m.GetN()}, nil
	}, short))
	base := newServer(t, mux)

	// upload sends until Send fails, for at most 2 s (ten close timeouts).
	upload := func(st *wsrpc.ClientStreamForClient[testingv1.SumRequest, testingv1.SumResponse]) error {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if err := st.Send(&testingv1.SumRequest{N: 7}); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}

	st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/Reject", "/t/Reject").Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, upload(st), wsrpc.CodeInvalidArgument, "bad upload")
	_, err = st.CloseAndReceive()
	wantCode(t, err, wsrpc.CodeInvalidArgument, "bad upload")

	st, err = wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/First", "/t/First").Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := upload(st); !errors.Is(err, io.EOF) {
		t.Fatalf("Send after the server answered = %v, want io.EOF", err)
	}
	res, err := st.CloseAndReceive()
	if err != nil || res.GetTotal() != 7 {
		t.Fatalf("CloseAndReceive = %v, %v; want the early response", res, err)
	}
}
