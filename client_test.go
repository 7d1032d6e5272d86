package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

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
	if !errors.As(got, &e) || e.Code() != wsrpc.CodeInvalidArgument || !strings.HasPrefix(e.Message(), "bad message: proto: ") {
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

// TestSendRacingCloseSend: a Send concurrent with CloseSend either goes
// out before the end-of-stream marker (the handler reads it) or fails
// with failed_precondition, never after the marker: the server fails a
// call whose client sends after its marker (invalid_argument, "the client
// sent a message after its end-of-stream marker"). Send used to check the
// half-close and then write unlocked, so a CloseSend in between (while
// Send marshalled, say) put its marker first, about once in a thousand
// calls with small messages; the large JSON messages here widen that
// window to most calls.
func TestSendRacingCloseSend(t *testing.T) {
	got := make(chan int, 1)
	h := wsrpc.NewBidiHandler("/t/Drain", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		n := 0
		for _, err := range s.All() {
			if err != nil {
				return err
			}
			n++
		}
		got <- n
		return nil
	})
	base := newServer(t, h)
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Drain", "/t/Drain", wsrpc.WithCodecs(codec.JSON))
	msg := &testingv1.EchoRequest{Blob: make([]byte, 64<<10)}
	for i := range 40 {
		st, err := c.Call(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan int, 1)
		go func() {
			n := 0
			for {
				err := st.Send(msg)
				if err != nil {
					if wsrpc.CodeOf(err) != wsrpc.CodeFailedPrecondition {
						t.Errorf("call %d: Send concurrent with CloseSend = %v, want nil or failed_precondition", i, err)
					}
					sent <- n
					return
				}
				n++
			}
		}()
		// Let some Sends through first: the race is with a Send in
		// progress, not with the first.
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		if err := st.CloseSend(); err != nil {
			t.Fatalf("call %d: CloseSend = %v", i, err)
		}
		n := waitSeen(t, sent, "Send is still succeeding after CloseSend")
		if _, err := st.Receive(); !errors.Is(err, io.EOF) {
			t.Fatalf("call %d: Receive after CloseSend = %v, want io.EOF (the handler read every message before the marker)", i, err)
		}
		if read := waitSeen(t, got, "the handler has not returned"); read != n {
			t.Fatalf("call %d: the handler read %d messages, the client sent %d", i, read, n)
		}
	}
}

// TestCloseSendBehindStalledSend: once the call's context is cancelled,
// CloseSend and a new Send return canceled at once, even while another
// Send is stuck writing to a server that stopped reading. They used to
// wait for that Send's lock, which it holds until the abort's close
// times out (CloseTimeout, 5 s here), and the new Send then reported
// failed_precondition.
func TestCloseSendBehindStalledSend(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := wsrpc.NewBidiHandler("/t/Stall", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		select { // never reads: the client's big Send stalls
		case <-ctx.Done():
		case <-release:
		}
		return nil
	})
	base := newServer(t, h)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Stall", "/t/Stall",
		wsrpc.WithDialOptions(&websocket.DialOptions{CloseTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}))
	st, err := c.Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	big := make(chan error, 1)
	go func() { big <- st.Send(&testingv1.EchoRequest{Blob: make([]byte, 32<<20)}) }()
	// Far more than the socket buffers hold: the Send is stuck in its write.
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-big:
		t.Fatalf("the big Send did not stall: %v", err)
	default:
	}
	cancel()
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"CloseSend", st.CloseSend},
		{"Send", func() error { return st.Send(&testingv1.EchoRequest{Seq: 2}) }},
	} {
		start := time.Now()
		err := op.fn()
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s after cancel took %v behind the stalled Send", op.name, took)
		}
		if wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
			t.Errorf("%s after cancel = %v, want canceled", op.name, err)
		}
	}
	// The stalled Send is cut when the abort's close times out.
	select {
	case <-big:
	case <-time.After(15 * time.Second):
		t.Fatal("the stalled Send never returned")
	}
}

// TestServerEndBeforeCloseWins: the handler fails (aborted) and its close
// frame reaches the client before Close, but the client's reader records
// it only after the Close, as its echo waits behind a large upload on a
// held uplink. CloseAndReceive, waiting meanwhile, reports the handler's
// aborted, as its doc promises for a server's end that arrived first; it
// used to report canceled, as the Close marked the call closed locally.
func TestServerEndBeforeCloseWins(t *testing.T) {
	received := make(chan struct{}, 1)
	failNow := make(chan struct{})
	h := wsrpc.NewClientStreamHandler("/t/Up", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.EchoRequest]) (*testingv1.SumResponse, error) {
		if _, err := s.Receive(); err != nil {
			return nil, err
		}
		received <- struct{}{}
		<-failNow
		return nil, wsrpc.Errorf(wsrpc.CodeAborted, "handler gave up")
	}, wsrpc.WithAcceptOptions(&websocket.AcceptOptions{MaxMessageSize: 64 << 20}))
	px := newHoldProxy(t, strings.TrimPrefix(newServer(t, h), "http://"))
	c := wsrpc.NewClientStreamClient[testingv1.EchoRequest, testingv1.SumResponse](nil, "http://"+px.ln.Addr().String()+"/t/Up", "/t/Up")
	st, err := c.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testingv1.EchoRequest{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	waitSeen(t, received, "the handler has not received the first message")
	px.hold.Store(true)
	big := make(chan error, 1)
	go func() { big <- st.Send(&testingv1.EchoRequest{Blob: make([]byte, 16<<20)}) }()
	// Far more than the socket buffers hold: the Send is stuck in its
	// write, and so will be the echo of the server's close.
	time.Sleep(200 * time.Millisecond)
	car := make(chan error, 1)
	go func() { _, err := st.CloseAndReceive(); car <- err }()
	close(failNow)
	// The server's close frame has gone down the (unheld) downlink; a
	// moment more for the client's runtime to read it.
	waitSeen(t, px.down, "the server's close frame did not come")
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	time.Sleep(50 * time.Millisecond)
	px.hold.Store(false)
	err = waitSeen(t, car, "CloseAndReceive has not returned")
	waitSeen(t, closed, "Close has not returned")
	waitSeen(t, big, "the big Send has not returned")
	if wsrpc.CodeOf(err) != wsrpc.CodeAborted {
		t.Errorf("CloseAndReceive = %v, want the handler's aborted, which reached the client before Close", err)
	}
}

// holdProxy forwards TCP connections to target; while hold is set, it
// stops forwarding the client's bytes (a stalled uplink). down gets a
// value when bytes come from the server while hold is set.
type holdProxy struct {
	ln   net.Listener
	hold atomic.Bool
	down chan struct{}
}

func newHoldProxy(t *testing.T, target string) *holdProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{ln: ln, down: make(chan struct{}, 1)}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := s.Read(buf)
					if n > 0 && p.hold.Load() {
						select {
						case p.down <- struct{}{}:
						default:
						}
					}
					if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
						c.Close()
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 4096)
				for {
					for p.hold.Load() {
						time.Sleep(5 * time.Millisecond)
					}
					n, err := c.Read(buf)
					if _, werr := s.Write(buf[:n]); err != nil || werr != nil {
						s.Close()
						return
					}
				}
			}()
		}
	}()
	return p
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

// TestReceiveAfterErrorRepeatsIt: once a WebSocket call has failed, every
// later Receive returns the same error. A second Receive used to return
// io.EOF, which the docs reserve for a clean end (the handler returned
// nil), so a loop that read on after an error took the failure for a
// success. The handler's side keeps the client's error the same way.
// (An SSE stream already repeated its error.)
func TestReceiveAfterErrorRepeatsIt(t *testing.T) {
	client := testingv1wsrpc.NewStreamServiceClient(nil, serve(t))
	ctx := testContext(t)
	// again checks that the Receives after the first failure repeat it.
	again := func(t *testing.T, receive func() error, code wsrpc.Code) {
		t.Helper()
		for i := range 3 {
			if err := receive(); wsrpc.CodeOf(err) != code || errors.Is(err, io.EOF) {
				t.Fatalf("Receive %d after the failure = %v, want %v again", i+1, err, code)
			}
		}
	}

	t.Run("server stream", func(t *testing.T) {
		st, err := client.Count(ctx, &testingv1.CountRequest{Count: 3, FailAt: 1, FailCode: uint32(wsrpc.CodeAborted)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		again(t, func() error { _, err := st.Receive(); return err }, wsrpc.CodeAborted)
	})

	t.Run("bidi", func(t *testing.T) {
		st, err := client.Echo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&testingv1.EchoRequest{Text: "fail"}); err != nil {
			t.Fatal(err)
		}
		again(t, func() error { _, err := st.Receive(); return err }, wsrpc.CodeFailedPrecondition)
	})

	t.Run("handler", func(t *testing.T) {
		seen := make(chan []error, 1)
		h := wsrpc.NewBidiHandler("/t/Twice", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			var errs []error
			for range 3 {
				_, err := s.Receive()
				errs = append(errs, err)
			}
			seen <- errs
			return errs[0]
		})
		base := newServer(t, h)
		st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Twice", "/t/Twice").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CloseWith(wsrpc.CodeAborted, "gave up"); err != nil {
			t.Fatal(err)
		}
		for i, err := range waitSeen(t, seen, "the handler is still reading") {
			if wsrpc.CodeOf(err) != wsrpc.CodeAborted {
				t.Fatalf("the handler's Receive %d = %v, want aborted every time", i+1, err)
			}
		}
	})
}

// TestCloseDuringCloseAndReceive: Close from another goroutine while
// CloseAndReceive waits for the handler's answer ends the call as the
// caller's: CloseAndReceive returns canceled. After the end-of-stream
// marker Close sends a normal closure (1000), which the server echoes
// (RFC 6455 §5.5.1); CloseAndReceive used to take the echo for the
// server's own close and report internal, "the server closed without a
// response".
func TestCloseDuringCloseAndReceive(t *testing.T) {
	uploaded := make(chan struct{})
	h := wsrpc.NewClientStreamHandler("/t/Slow", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		for _, err := range s.All() {
			if err != nil {
				return nil, err
			}
		}
		close(uploaded)
		<-ctx.Done() // computing the answer until the client leaves
		return nil, ctx.Err()
	})
	base := newServer(t, h)
	st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/Slow", "/t/Slow").Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { _, err := st.CloseAndReceive(); got <- err }()
	// The handler has read the end-of-stream marker: CloseAndReceive
	// waits for the answer.
	waitSeen(t, uploaded, "the handler has not seen the end of the upload")
	if err := st.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := waitSeen(t, got, "CloseAndReceive is still waiting after Close"); wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
		t.Fatalf("CloseAndReceive after a concurrent Close = %v, want canceled", err)
	}
}

// serveDropOnClose serves, at the returned URL, a WebSocket peer that
// reads a client-streaming call's messages and, when the client's close
// frame comes, drops the TCP connection without answering it, as the
// race of Close with the server's own end sometimes does (the client
// reads 1006, connection closed without a close frame). Each marker it
// reads (an empty text message) is signalled on the channel.
func serveDropOnClose(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	marker := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{codec.Subprotocol(codec.Proto)}, Raw: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			f, err := c.ReadFrame(r.Context(), nil)
			if err != nil || f.Opcode == websocket.OpClose {
				return
			}
			if f.Opcode == websocket.OpText && len(f.Payload) == 0 {
				marker <- struct{}{}
			}
		}
	})
	return newServer(t, h), marker
}

// TestCloseRacingCloseAndReceive: when this side's Close ends a
// client-streaming call before any response arrived, CloseAndReceive
// returns canceled, as ClientStreamForClient.Close documents, whatever
// the reader saw of the end: here the server's answer to the close frame
// never comes (RFC 6455 §7.1.5's 1006), which CloseAndReceive used to
// report as unavailable, a lost connection that retry logic repeats
// (0.3–1.5% of calls racing Close against a real server). An end the
// server made before the Close (its handler's error, already read) is
// still reported as the server's.
func TestCloseRacingCloseAndReceive(t *testing.T) {
	t.Run("echo lost", func(t *testing.T) {
		base, marker := serveDropOnClose(t)
		st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base, "/t/Drop").Call(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { _, err := st.CloseAndReceive(); got <- err }()
		waitSeen(t, marker, "the server has not read the end-of-stream marker")
		_ = st.Close() // reports the unanswered close; not what is tested
		if err := waitSeen(t, got, "CloseAndReceive is still waiting after Close"); wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
			t.Fatalf("CloseAndReceive ended by Close = %v, want canceled", err)
		}
	})

	t.Run("server ended first", func(t *testing.T) {
		h := wsrpc.NewClientStreamHandler("/t/Reject", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
			return nil, wsrpc.Errorf(wsrpc.CodeInvalidArgument, "bad upload")
		})
		base := newServer(t, h)
		st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base+"/t/Reject", "/t/Reject").Call(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		// Send reports the handler's error only once the reader has read
		// it: the server's end is recorded before the Close.
		deadline := time.Now().Add(handlerBound)
		for err = nil; err == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			err = st.Send(&testingv1.SumRequest{N: 1})
		}
		wantCode(t, err, wsrpc.CodeInvalidArgument, "bad upload")
		_ = st.Close()
		_, err = st.CloseAndReceive()
		wantCode(t, err, wsrpc.CodeInvalidArgument, "bad upload")
	})
}

// TestSendAfterCloseIsCanceled: once this side's Close or CloseWith has
// ended a call, Send returns a CodeCanceled *Error, as Receive does,
// whatever ran in between. A bidirectional Send after Close and a
// Receive (which released the connection) used to return a bare io.EOF,
// which no Send doc mentions (CodeOf: unknown), while Send right after
// Close returned canceled; a client-streaming Send after Close returned
// whatever the reader saw of the close (unavailable when the server's
// answer was lost).
func TestSendAfterCloseIsCanceled(t *testing.T) {
	client := testingv1wsrpc.NewStreamServiceClient(nil, serve(t))
	ctx := testContext(t)
	type stream = wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
	closers := []struct {
		name  string
		close func(*stream) error
	}{
		{"Close", func(st *stream) error { return st.Close() }},
		{"CloseWith", func(st *stream) error { return st.CloseWith(wsrpc.CodeAborted, "gave up") }},
	}
	for _, cl := range closers {
		for _, receive := range []bool{false, true} {
			t.Run(fmt.Sprintf("bidi %s receive=%v", cl.name, receive), func(t *testing.T) {
				st, err := client.Echo(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := cl.close(st); err != nil {
					t.Fatal(err)
				}
				if receive {
					if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
						t.Fatalf("Receive after %s = %v, want canceled", cl.name, err)
					}
				}
				for i := range 2 {
					if err := st.Send(&testingv1.EchoRequest{Text: "late"}); wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
						t.Fatalf("Send %d after %s = %#v, want a canceled *Error", i+1, cl.name, err)
					}
				}
			})
		}
	}

	t.Run("client stream, echo lost", func(t *testing.T) {
		base, _ := serveDropOnClose(t)
		st, err := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base, "/t/Drop").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&testingv1.SumRequest{N: 1}); err != nil {
			t.Fatal(err)
		}
		_ = st.Close() // reports the unanswered close; not what is tested
		if err := st.Send(&testingv1.SumRequest{N: 1}); wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
			t.Fatalf("Send after Close = %v, want canceled", err)
		}
	})
}

// TestCancelDuringReceiveOrSend: the call's context ending while a Receive
// or Send is in progress — the usual state of a bidirectional client —
// reaches the handler as canceled (4001), or deadline_exceeded (4004),
// with a close frame, and the pending Receive or Send returns that code.
// The client used to read and write with the call's context, and the
// runtime drops the TCP connection, without a close frame, when the
// context of a read or write in progress ends: most handlers saw 1006, a
// lost connection (unavailable), as if the network had failed.
func TestCancelDuringReceiveOrSend(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	seen := make(chan error, 1)
	h := wsrpc.NewBidiHandler("/t/Wait", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if err := s.Send(&testingv1.EchoResponse{Text: "ready"}); err != nil {
			seen <- err
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
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, srv.URL, "/t/Wait")

	// call opens a call whose client has a Receive pending (the first
	// message read, the second awaited) and returns what that Receive
	// reports.
	call := func(t *testing.T, ctx context.Context) (*wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse], <-chan error) {
		t.Helper()
		st, err := c.Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { _, err := st.Receive(); got <- err }()
		// Time for the Receive to block in its read; should it not have
		// begun yet, it fails at once, and the test only proves less.
		time.Sleep(5 * time.Millisecond)
		return st, got
	}
	want := func(t *testing.T, what string, err error, code wsrpc.Code) {
		t.Helper()
		if wsrpc.CodeOf(err) != code {
			t.Fatalf("%s = %v, want %v", what, err, code)
		}
	}

	t.Run("receive pending, cancel", func(t *testing.T) {
		for i := range 30 {
			ctx, cancel := context.WithCancel(testContext(t))
			_, got := call(t, ctx)
			cancel()
			want(t, fmt.Sprintf("call %d: the pending Receive", i), waitSeen(t, got, "the pending Receive has not returned"), wsrpc.CodeCanceled)
			want(t, fmt.Sprintf("call %d: the handler's Receive", i), waitSeen(t, seen, "the handler's Receive has not returned"), wsrpc.CodeCanceled)
		}
	})

	t.Run("receive pending, cancel then Close", func(t *testing.T) {
		// What a caller that waits on the context does: Close right
		// after the cancel must not cut the close frame off.
		for i := range 30 {
			ctx, cancel := context.WithCancel(testContext(t))
			st, got := call(t, ctx)
			cancel()
			if err := st.Close(); err != nil {
				t.Fatalf("call %d: Close after cancel = %v", i, err)
			}
			want(t, fmt.Sprintf("call %d: the pending Receive", i), waitSeen(t, got, "the pending Receive has not returned"), wsrpc.CodeCanceled)
			want(t, fmt.Sprintf("call %d: the handler's Receive", i), waitSeen(t, seen, "the handler's Receive has not returned"), wsrpc.CodeCanceled)
		}
	})

	t.Run("receive pending, deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testContext(t), 100*time.Millisecond)
		defer cancel()
		_, got := call(t, ctx)
		want(t, "the pending Receive", waitSeen(t, got, "the pending Receive has not returned"), wsrpc.CodeDeadlineExceeded)
		want(t, "the handler's Receive", waitSeen(t, seen, "the handler's Receive has not returned"), wsrpc.CodeDeadlineExceeded)
	})

	for _, then := range []string{"", " then Close", " then Receive"} {
		// Close, or a Receive that finds the call ended (and releases
		// it), comes while the close frame waits for the Send to let it
		// out: ending the Send then would lose the frame.
		t.Run("send in progress, cancel"+then, func(t *testing.T) {
			for i := range 10 {
				ctx, cancel := context.WithCancel(testContext(t))
				var st *wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
				var got <-chan error
				if then == " then Receive" {
					var err error
					if st, err = c.Call(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					st, got = call(t, ctx)
				}
				sent := make(chan error, 1)
				go func() {
					// Large messages back to back: a Send is in
					// progress nearly all the time.
					blob := make([]byte, 256<<10)
					for {
						if err := st.Send(&testingv1.EchoRequest{Blob: blob}); err != nil {
							sent <- err
							return
						}
					}
				}()
				time.Sleep(5 * time.Millisecond)
				cancel()
				switch then {
				case " then Close":
					if err := st.Close(); err != nil {
						t.Fatalf("call %d: Close after cancel = %v", i, err)
					}
				case " then Receive":
					for {
						// The handler's "ready" may come first.
						_, err := st.Receive()
						if err != nil {
							want(t, fmt.Sprintf("call %d: Receive after cancel", i), err, wsrpc.CodeCanceled)
							break
						}
					}
				}
				want(t, fmt.Sprintf("call %d: the Send loop's last Send", i), waitSeen(t, sent, "Send has not failed"), wsrpc.CodeCanceled)
				if got != nil {
					want(t, fmt.Sprintf("call %d: the pending Receive", i), waitSeen(t, got, "the pending Receive has not returned"), wsrpc.CodeCanceled)
				}
				want(t, fmt.Sprintf("call %d: the handler's Receive", i), waitSeen(t, seen, "the handler's Receive has not returned"), wsrpc.CodeCanceled)
			}
		})
	}
}

// TestOnCloseAfterCancel: WithOnClose runs once for every call whose
// OnConnect ran, including a call ended by its context with no Receive
// or Close after it (such a call needs no Close), with the cancellation's
// CloseInfo (4001, canceled). It used to run only from Receive or Close,
// so such calls never ran it and an open-streams gauge kept by the two
// hooks drifted up for ever.
func TestOnCloseAfterCancel(t *testing.T) {
	var (
		mu               sync.Mutex
		connects, closes int
		infos            []wsrpc.CloseInfo
	)
	client := testingv1wsrpc.NewStreamServiceClient(nil, serve(t),
		wsrpc.WithOnConnect(func(context.Context, *wsrpc.ConnInfo) { mu.Lock(); connects++; mu.Unlock() }),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
			mu.Lock()
			closes++
			infos = append(infos, ci)
			mu.Unlock()
		}))
	calls := map[string]func(ctx context.Context) error{
		"bidi": func(ctx context.Context) error {
			st, err := client.Echo(ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&testingv1.EchoRequest{Text: "a"}); err != nil {
				return err
			}
			_, err = st.Receive()
			return err
		},
		"server stream": func(ctx context.Context) error {
			st, err := client.Count(ctx, &testingv1.CountRequest{Count: 2})
			if err != nil {
				return err
			}
			_, err = st.Receive()
			return err
		},
		"client stream": func(ctx context.Context) error {
			st, err := client.Sum(ctx)
			if err != nil {
				return err
			}
			return st.Send(&testingv1.SumRequest{N: 1})
		},
		"sse": func(ctx context.Context) error {
			st, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r", Count: 2})
			if err != nil {
				return err
			}
			_, err = st.Receive()
			return err
		},
	}
	const rounds = 5
	for name, run := range calls {
		for range rounds {
			ctx, cancel := context.WithCancel(testContext(t))
			if err := run(ctx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			cancel() // the call is over, and nothing else touches it
		}
	}
	want := rounds * len(calls)
	// Bounded: the hooks run on the context's AfterFunc goroutine.
	deadline := time.Now().Add(handlerBound)
	for {
		mu.Lock()
		n, m := connects, closes
		mu.Unlock()
		if n == want && m == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnConnect ran %d times, OnClose %d, for %d calls that all ended", n, m, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Once each: nothing more comes.
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if closes != want {
		t.Fatalf("OnClose ran %d times for %d calls", closes, want)
	}
	for _, ci := range infos {
		if ci.Code != wsrpc.CodeCanceled.CloseCode() || wsrpc.CodeOf(ci.Err) != wsrpc.CodeCanceled {
			t.Errorf("OnClose got %+v, want the cancellation (4001, canceled)", ci)
		}
	}
}

// TestBidiSendOnlyClientKeepsReceivePending: the way BidiStreamForClient's
// doc gives a client that only sends to learn the handler's end. The
// handler's close reaches the client only through a read (RFC 6455
// §5.5); a client that only sent, with no Receive pending, left it
// unanswered until the server reset the connection, and saw unavailable
// (which WithReconnect redialled) instead of the handler's error. With a
// Receive pending on another goroutine, Receive and the Send loop both
// report the handler's invalid_argument, and nothing redials.
func TestBidiSendOnlyClientKeepsReceivePending(t *testing.T) {
	var calls atomic.Int64
	short := wsrpc.WithAcceptOptions(&websocket.AcceptOptions{CloseTimeout: 200 * time.Millisecond})
	h := wsrpc.NewBidiHandler("/t/Reject", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		calls.Add(1)
		if _, err := s.Receive(); err != nil {
			return err
		}
		return wsrpc.Errorf(wsrpc.CodeInvalidArgument, "bad input")
	}, short)
	base := newServer(t, h)
	var reconnects atomic.Int64
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/t/Reject", "/t/Reject",
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{MaxAttempts: 1, InitialDelay: 10 * time.Millisecond, OnReconnect: func(int, error) { reconnects.Add(1) }}))
	st, err := c.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	received := make(chan error, 1)
	go func() {
		for {
			if _, err := st.Receive(); err != nil {
				received <- err
				return
			}
		}
	}()
	// Sends until Send fails, for at most ten of the server's close
	// timeouts.
	var sendErr error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if sendErr = st.Send(&testingv1.EchoRequest{Text: "x"}); sendErr != nil {
			break
		}
	}
	wantCode(t, waitSeen(t, received, "Receive has not returned"), wsrpc.CodeInvalidArgument, "bad input")
	wantCode(t, sendErr, wsrpc.CodeInvalidArgument, "bad input")
	if n, r := calls.Load(), reconnects.Load(); n != 1 || r != 0 {
		t.Fatalf("the handler ran %d times, after %d reconnections; want once, none", n, r)
	}
}
