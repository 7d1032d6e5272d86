package wsrpc_test

import (
	"context"
	"errors"
	"io"
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

// leaveRecorder collects, per call, what a server reports of its end:
// the handler's Receive (recvs), the outcome a stream interceptor sees
// (outcomes) and OnClose's CloseInfo (closes).
type leaveRecorder struct {
	recvs    chan error
	outcomes chan error
	closes   chan wsrpc.CloseInfo
}

func newLeaveRecorder() *leaveRecorder {
	return &leaveRecorder{recvs: make(chan error, 16), outcomes: make(chan error, 16), closes: make(chan wsrpc.CloseInfo, 16)}
}

func (r *leaveRecorder) options() []wsrpc.Option {
	return []wsrpc.Option{
		wsrpc.WithInterceptors(wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
			return func(ctx context.Context, conn wsrpc.StreamConn) error {
				err := next(ctx, conn)
				r.outcomes <- err
				return err
			}
		})),
		wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { r.closes <- ci }),
	}
}

// next waits (generously) for the next value of ch.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
		panic("unreachable")
	}
}

// TestServerReadsClientGoingAwayAsCanceled: a browser closes a page's
// WebSockets with 1001 when the tab closes, reloads or navigates away
// (RFC 6455 §7.4.1). The server read that as unavailable (1001's mapping
// for a client, where it is the server shutting down): a bidi or upload
// handler's Receive, the stream interceptors and OnClose reported every
// closed tab as an outage, while the same page's SSE stream reported
// canceled. On the server it is the client leaving: canceled, with
// OnClose keeping the wire code 1001.
func TestServerReadsClientGoingAwayAsCanceled(t *testing.T) {
	rec := newLeaveRecorder()
	opts := rec.options()
	mux := http.NewServeMux()
	mux.Handle("/bidi", wsrpc.NewBidiHandler("/leave.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for {
			if _, err := s.Receive(); err != nil {
				rec.recvs <- err
				return err
			}
		}
	}, opts...))
	mux.Handle("/upload", wsrpc.NewClientStreamHandler("/leave.v1/Upload", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		for {
			if _, err := s.Receive(); err != nil {
				rec.recvs <- err
				return nil, err
			}
		}
	}, opts...))
	mux.Handle("/watch", wsrpc.NewServerStreamHandler("/leave.v1/Watch", func(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		<-ctx.Done() // the peer watcher reads the client's close
		rec.recvs <- nil
		return ctx.Err()
	}, opts...))
	base := newServer(t, mux)
	ctx := testContext(t)

	for _, tc := range []struct {
		path string
		msg  proto.Message
	}{
		{"/bidi", &testingv1.EchoRequest{Text: "hi", Seq: 1}},
		{"/upload", &testingv1.SumRequest{N: 1}},
		{"/watch", &testingv1.CountRequest{Count: 3}},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			c, _, err := websocket.Dial(ctx, base+tc.path, &websocket.DialOptions{Subprotocols: []string{codec.Subprotocol(codec.Proto)}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			b, err := proto.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Write(ctx, websocket.MessageBinary, b); err != nil {
				t.Fatal(err)
			}
			// What a browser sends as its page goes away.
			if err := c.Close(websocket.StatusGoingAway, ""); err != nil {
				t.Fatalf("Close(1001) = %v", err)
			}
			recv := next(t, rec.recvs, "handler end")
			if tc.path != "/watch" && wsrpc.CodeOf(recv) != wsrpc.CodeCanceled {
				t.Errorf("handler's Receive = %v (%v), want canceled", recv, wsrpc.CodeOf(recv))
			}
			if out := next(t, rec.outcomes, "interceptor outcome"); wsrpc.CodeOf(out) != wsrpc.CodeCanceled {
				t.Errorf("stream interceptor saw %v (%v), want canceled", out, wsrpc.CodeOf(out))
			}
			ci := next(t, rec.closes, "OnClose")
			if ci.Code != websocket.StatusGoingAway || wsrpc.CodeOf(ci.Err) != wsrpc.CodeCanceled {
				t.Errorf("OnClose = code %v err %v (%v), want 1001 with canceled", ci.Code, ci.Err, wsrpc.CodeOf(ci.Err))
			}
		})
	}
}

// TestClientReadsServerGoingAwayAsUnavailable: the other direction keeps
// its meaning. A server's 1001 (Tracker.Shutdown) is an outage the
// client retries, unavailable; and the server, reading its own 1001
// echoed back, still reports the shutdown, not a client that left.
func TestClientReadsServerGoingAwayAsUnavailable(t *testing.T) {
	rec := newLeaveRecorder()
	tracker := wsrpc.NewTracker()
	opts := append(rec.options(), wsrpc.WithTracker(tracker))
	mux := http.NewServeMux()
	mux.Handle("/bidi", wsrpc.NewBidiHandler("/leave.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for {
			m, err := s.Receive()
			if err != nil {
				rec.recvs <- err
				return err
			}
			if err := s.Send(&testingv1.EchoResponse{Seq: m.GetSeq()}); err != nil {
				return err
			}
		}
	}, opts...))
	base := newServer(t, mux)
	ctx := testContext(t)

	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/bidi", "/leave.v1/Bidi").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&testingv1.EchoRequest{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Receive(); err != nil { // the session is up
		t.Fatal(err)
	}
	// A Receive pending reads the server's 1001 and answers it (see
	// BidiStreamForClient), so that Shutdown need not wait out the close
	// timeout.
	ended := make(chan error, 1)
	go func() { _, err := st.Receive(); ended <- err }()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tracker.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	err = next(t, ended, "client Receive")
	if websocket.CloseStatus(err) != websocket.StatusGoingAway || wsrpc.CodeOf(err) != wsrpc.CodeUnavailable {
		t.Errorf("client Receive after Shutdown = %v (%v), want 1001 with unavailable", err, wsrpc.CodeOf(err))
	}
	// The handler's Receive reads the client's echo of the 1001, unless
	// Shutdown's cancel (once the closing handshake is over) ends the
	// read first: either way not the client going away.
	var ce *websocket.CloseError
	if recv := next(t, rec.recvs, "handler end"); errors.As(recv, &ce) && wsrpc.CodeOf(recv) != wsrpc.CodeUnavailable {
		t.Errorf("handler's Receive after Shutdown = %v (%v): its own 1001 echoed back read as the client leaving, want unavailable", recv, wsrpc.CodeOf(recv))
	}
	ci := next(t, rec.closes, "OnClose")
	if ci.Code != websocket.StatusGoingAway || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnavailable {
		t.Errorf("OnClose = code %v err %v, want 1001 with unavailable", ci.Code, ci.Err)
	}
}

// TestSendErrorAfterClientLeavesIsCleanEnd: after a client's normal
// closure a handler's Send returns io.EOF, and the README's idiom
// `if err := s.Send(m); err != nil { return err }` returns it. That read
// as unknown (EOF) to every stream interceptor on every normal leave
// (on a server-streaming call Send said canceled: "context canceled"),
// while OnClose reported a normal closure. Both now report a clean end.
func TestSendErrorAfterClientLeavesIsCleanEnd(t *testing.T) {
	rec := newLeaveRecorder()
	opts := rec.options()
	mux := http.NewServeMux()
	mux.Handle("/push", wsrpc.NewBidiHandler("/leave.v1/Push", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		// A Receive kept pending reads the client's close (see BidiStream).
		go func() {
			for {
				if _, err := s.Receive(); err != nil {
					return
				}
			}
		}()
		for i := int64(0); ; i++ {
			if err := s.Send(&testingv1.EchoResponse{Seq: i}); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}, opts...))
	mux.Handle("/count", wsrpc.NewServerStreamHandler("/leave.v1/Count", func(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		for i := int32(0); ; i++ {
			if err := s.Send(&testingv1.CountResponse{N: i}); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}, opts...))
	mux.Handle("/eof", wsrpc.NewBidiHandler("/leave.v1/EOF", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		if _, err := s.Receive(); err != nil {
			return err
		}
		return io.EOF // the handler's own, with the client still there
	}, opts...))
	mux.Handle("/coded", wsrpc.NewServerStreamHandler("/leave.v1/Coded", func(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		for i := int32(0); ; i++ {
			if err := s.Send(&testingv1.CountResponse{N: i}); err != nil {
				return wsrpc.Errorf(wsrpc.CodeDataLoss, "push: %w", err) // a code of the handler's own
			}
			time.Sleep(time.Millisecond)
		}
	}, opts...))
	mux.Handle("/upload", wsrpc.NewClientStreamHandler("/leave.v1/Upload", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.EchoRequest]) (*testingv1.EchoResponse, error) {
		var n int64
		for _, err := range s.All() {
			if err != nil {
				return nil, err
			}
			n++
		}
		<-ctx.Done() // the client's close after its end-of-stream marker
		return &testingv1.EchoResponse{Seq: n}, nil
	}, opts...))
	base := newServer(t, mux)
	ctx := testContext(t)

	wantCleanEnd := func(t *testing.T) {
		t.Helper()
		if out := next(t, rec.outcomes, "interceptor outcome"); out != nil {
			t.Errorf("stream interceptor saw %v (%v), want nil: the client left normally", out, wsrpc.CodeOf(out))
		}
		ci := next(t, rec.closes, "OnClose")
		if ci.Code != websocket.StatusNormalClosure || ci.Err != nil {
			t.Errorf("OnClose = code %v err %v, want normal closure", ci.Code, ci.Err)
		}
	}
	t.Run("bidi", func(t *testing.T) {
		client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/push", "/leave.v1/Push")
		for range 5 {
			st, err := client.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := st.Receive(); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			wantCleanEnd(t)
		}
	})
	t.Run("server-stream", func(t *testing.T) {
		client := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/count", "/leave.v1/Count")
		for range 5 {
			st, err := client.Call(ctx, &testingv1.CountRequest{Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := st.Receive(); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			wantCleanEnd(t)
		}
	})
	// A page that sends its last chunk, the end-of-stream marker and
	// closes at once (`ws.send(""); ws.close()`) does not wait for the
	// answer: the upload is finished, and the answer's Send, which
	// meets the closed stream, is a clean end as in the other kinds.
	t.Run("client-stream answered after the client left", func(t *testing.T) {
		for range 3 {
			c, _, err := websocket.Dial(ctx, base+"/upload", &websocket.DialOptions{Subprotocols: []string{codec.Subprotocol(codec.Proto)}})
			if err != nil {
				t.Fatal(err)
			}
			chunk, _ := proto.Marshal(&testingv1.EchoRequest{Seq: 1})
			for _, m := range []struct {
				typ  websocket.MessageType
				data []byte
			}{{websocket.MessageBinary, chunk}, {websocket.MessageBinary, chunk}, {websocket.MessageText, nil}} {
				if err := c.Write(ctx, m.typ, m.data); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatalf("Close = %v", err)
			}
			wantCleanEnd(t)
		}
	})
	t.Run("handler's own code around the EOF", func(t *testing.T) {
		st, err := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/coded", "/leave.v1/Coded").Call(ctx, &testingv1.CountRequest{Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if out := next(t, rec.outcomes, "interceptor outcome"); wsrpc.CodeOf(out) != wsrpc.CodeDataLoss {
			t.Errorf("stream interceptor saw %v, want the handler's data_loss", out)
		}
		next(t, rec.closes, "OnClose")
	})
	t.Run("handler's own EOF", func(t *testing.T) {
		st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/eof", "/leave.v1/EOF").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Send(&testingv1.EchoRequest{Seq: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeUnknown {
			t.Errorf("client Receive = %v (%v), want unknown", err, wsrpc.CodeOf(err))
		}
		if out := next(t, rec.outcomes, "interceptor outcome"); !errors.Is(out, io.EOF) {
			t.Errorf("stream interceptor saw %v, want the handler's io.EOF", out)
		}
		if ci := next(t, rec.closes, "OnClose"); wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnknown {
			t.Errorf("OnClose = code %v err %v, want unknown", ci.Code, ci.Err)
		}
	})
}

// TestReceiveAfterCloseWithSaysSo: after the client's own CloseWith (or
// Close), its Receive and Send said "canceled: context canceled", though
// the caller cancelled no context. They say the stream was closed by
// this side, and how, still with canceled.
func TestReceiveAfterCloseWithSaysSo(t *testing.T) {
	rec := newLeaveRecorder()
	mux := http.NewServeMux()
	mux.Handle("/bidi", wsrpc.NewBidiHandler("/leave.v1/Bidi", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		_, err := s.Receive()
		rec.recvs <- err
		return err
	}))
	base := newServer(t, mux)
	ctx := testContext(t)
	client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/bidi", "/leave.v1/Bidi")

	for _, tc := range []struct {
		name     string
		close    func(*wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]) error
		handler  wsrpc.Code // what the handler's Receive reports (0: io.EOF)
		mentions string     // what the client's error says of the close
	}{
		{"CloseWith", func(st *wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			return st.CloseWith(wsrpc.CodeAborted, "user left")
		}, wsrpc.CodeAborted, "aborted: user left"},
		{"Close", (*wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]).Close, 0, "normal closure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := client.Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.close(st); err != nil {
				t.Fatalf("%s = %v", tc.name, err)
			}
			recv := next(t, rec.recvs, "handler's Receive")
			if want := tc.handler; (want == 0 && recv != io.EOF) || (want != 0 && wsrpc.CodeOf(recv) != want) {
				t.Errorf("handler's Receive = %v, want %v", recv, tc.handler)
			}
			_, rerr := st.Receive()
			serr := st.Send(&testingv1.EchoRequest{Seq: 1})
			for what, err := range map[string]error{"Receive": rerr, "Send": serr} {
				if wsrpc.CodeOf(err) != wsrpc.CodeCanceled {
					t.Errorf("%s after %s = %v, want canceled", what, tc.name, err)
				}
				if err == nil {
					continue
				}
				if msg := err.Error(); strings.Contains(msg, "context") || !strings.Contains(msg, "closed by this side") || !strings.Contains(msg, tc.mentions) {
					t.Errorf("%s after %s = %q: want it to say this side closed the stream (%s), not a context", what, tc.name, msg, tc.mentions)
				}
			}
		})
	}
}
