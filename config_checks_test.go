package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestErrorOutsideTableStoredAsUnknown: a handler that returns
// Errorf(0, …) or Errorf(99, …) fails its client with unknown (4002), and
// its own side must read the same: the stream interceptor's outcome and
// OnClose's Err read "ok" for 0 (a failure taken for success) and
// code_99 for 99, while the client got unknown.
func TestErrorOutsideTableStoredAsUnknown(t *testing.T) {
	for _, odd := range []wsrpc.Code{0, 99} {
		if c := wsrpc.Errorf(odd, "x").Code(); c != wsrpc.CodeUnknown {
			t.Errorf("Errorf(%d).Code() = %v, want unknown", uint32(odd), c)
		}
		if c := wsrpc.NewError(odd, errors.New("x")).Code(); c != wsrpc.CodeUnknown {
			t.Errorf("NewError(%d).Code() = %v, want unknown", uint32(odd), c)
		}
		for _, mk := range []struct {
			name string
			err  func() error
		}{
			{"Errorf", func() error { return wsrpc.Errorf(odd, "boom") }},
			{"NewError", func() error { return wsrpc.NewError(odd, errors.New("boom")) }},
			{"Close", nil}, // the handler's Close(odd, "boom"); 0 is a normal closure there
		} {
			if mk.err == nil && odd == 0 {
				continue
			}
			t.Run(fmt.Sprintf("%s_%d", mk.name, uint32(odd)), func(t *testing.T) {
				outcome := make(chan wsrpc.Code, 1)
				closed := make(chan wsrpc.CloseInfo, 1)
				ic := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
					return func(ctx context.Context, conn wsrpc.StreamConn) error {
						err := next(ctx, conn)
						outcome <- wsrpc.CodeOf(err)
						return err
					}
				})
				h := wsrpc.NewBidiHandler("/t/Odd", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
					if mk.err == nil {
						return s.Close(odd, "boom")
					}
					return mk.err()
				}, wsrpc.WithInterceptors(ic), wsrpc.WithOnClose(func(ctx context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
					closed <- ci
				}))
				ctx := testContext(t)
				st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h), "/t/Odd").Call(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				_, err = st.Receive()
				wantCode(t, err, wsrpc.CodeUnknown, "boom")
				select {
				case c := <-outcome:
					if c != wsrpc.CodeUnknown {
						t.Errorf("interceptor's outcome %v, want unknown", c)
					}
				case <-ctx.Done():
					t.Fatal("the interceptor did not return")
				}
				select {
				case ci := <-closed:
					if ci.Code != 4002 || wsrpc.CodeOf(ci.Err) != wsrpc.CodeUnknown {
						t.Errorf("OnClose: code %d, err %v (%v), want 4002 unknown", ci.Code, ci.Err, wsrpc.CodeOf(ci.Err))
					}
				case <-ctx.Done():
					t.Fatal("no OnClose")
				}
			})
		}
	}
}

// panicOf runs f and returns what it panicked with, as a string ("" for
// no panic).
func panicOf(f func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprint(p)
		}
	}()
	f()
	return ""
}

func echoHandler(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	for req, err := range s.All() {
		if err != nil {
			return err
		}
		if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
			return err
		}
	}
	return nil
}

// TestWithCodecsNil: a nil codec is a configuration mistake caught when
// the handler or client is built, with a message naming the option. It
// was caught nowhere on a handler: every request panicked in the
// negotiation, and the client saw only "unexpected EOF".
func TestWithCodecsNil(t *testing.T) {
	for _, opt := range []wsrpc.Option{wsrpc.WithCodecs(nil), wsrpc.WithCodecs(codec.Proto, nil)} {
		if p := panicOf(func() { wsrpc.NewBidiHandler("/t/Echo", echoHandler, opt) }); !strings.Contains(p, "WithCodecs") {
			t.Errorf("NewBidiHandler with a nil codec: panic %q, want one naming WithCodecs", p)
		}
		if p := panicOf(func() { testingv1wsrpc.NewStreamServiceHandler(streamServer{}, opt) }); !strings.Contains(p, "WithCodecs") {
			t.Errorf("NewStreamServiceHandler with a nil codec: panic %q, want one naming WithCodecs", p)
		}
		if p := panicOf(func() {
			wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, "http://127.0.0.1:1", "/t/Echo", opt)
		}); !strings.Contains(p, "WithCodecs") {
			t.Errorf("NewBidiClient with a nil codec: panic %q, want one naming WithCodecs", p)
		}
	}

	// WithCodecs() with no codec keeps the default list: a client that
	// offers msgpack alone is served.
	h := wsrpc.NewBidiHandler("/t/Echo", echoHandler, wsrpc.WithCodecs())
	ctx := testContext(t)
	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h), "/t/Echo", wsrpc.WithCodecs(codec.Msgpack)).Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Codec().Name() != codec.NameMsgpack {
		t.Errorf("codec %s, want msgpack", st.Codec().Name())
	}
}

// TestPreferredCodecNotAccepted: a handler whose preferred codec is not
// among its codecs served that codec to clients that offer no
// subprotocol while refusing clients that offer it; building it panics
// now. A client keeps offering its preferred codec first, and a handler
// whose preferred codec is accepted under the same name is fine.
func TestPreferredCodecNotAccepted(t *testing.T) {
	const want = "WithPreferredCodec(json): the handler does not accept it (WithCodecs)"
	bad := []wsrpc.Option{wsrpc.WithCodecs(codec.Proto), wsrpc.WithPreferredCodec(codec.JSON)}
	if p := panicOf(func() { wsrpc.NewBidiHandler("/t/Echo", echoHandler, bad...) }); !strings.Contains(p, want) {
		t.Errorf("NewBidiHandler: panic %q, want %q", p, want)
	}
	if p := panicOf(func() { testingv1wsrpc.NewStreamServiceHandler(streamServer{}, bad...) }); !strings.Contains(p, want) {
		t.Errorf("NewStreamServiceHandler: panic %q, want %q", p, want)
	}

	for _, ok := range [][]wsrpc.Option{
		{wsrpc.WithPreferredCodec(codec.Msgpack)},
		{wsrpc.WithCodecs(codec.JSON, codec.Proto), wsrpc.WithPreferredCodec(codec.Proto)},
		{wsrpc.WithPreferredCodec(codec.NewJSON(&codec.JSONOptions{RejectUnknown: true}))},
		{wsrpc.WithCodecs(codec.Proto), wsrpc.WithPreferredCodec(nil)},
	} {
		if p := panicOf(func() { wsrpc.NewBidiHandler("/t/Echo", echoHandler, ok...) }); p != "" {
			t.Errorf("NewBidiHandler with an accepted preferred codec panicked: %s", p)
		}
	}

	// The client side: offered first, whatever its own WithCodecs says.
	var client *wsrpc.BidiClient[testingv1.EchoRequest, testingv1.EchoResponse]
	if p := panicOf(func() {
		client = wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, wsrpc.NewBidiHandler("/t/Echo", echoHandler)), "/t/Echo", bad...)
	}); p != "" {
		t.Fatalf("NewBidiClient panicked: %s", p)
	}
	ctx := testContext(t)
	st, err := client.Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Codec().Name() != codec.NameJSON {
		t.Errorf("client's codec %s, want json (its preferred, offered first)", st.Codec().Name())
	}
}

// TestZeroTracker: the zero Tracker is usable. Its nil session map made
// every call fail with "internal: handler panicked", while its Shutdown
// returned nil.
func TestZeroTracker(t *testing.T) {
	tracker := &wsrpc.Tracker{}
	h := wsrpc.NewBidiHandler("/t/Echo", echoHandler, wsrpc.WithTracker(tracker))
	ctx := testContext(t)
	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h), "/t/Echo").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&testingv1.EchoRequest{Text: "a"}); err != nil {
		t.Fatal(err)
	}
	res, err := st.Receive()
	if err != nil || res.GetText() != "a" {
		t.Fatalf("Receive = %v, %v; want the echo", res, err)
	}
	if n := tracker.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	if err := tracker.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = st.Receive()
	if err == io.EOF {
		t.Fatal("Receive after Shutdown: io.EOF, want going away")
	}
	wantCode(t, err, wsrpc.CodeUnavailable, wsrpc.ShutdownReason)
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.StatusGoingAway {
		t.Errorf("close code %d, want 1001", ce.Code)
	}
	if n := tracker.Len(); n != 0 {
		t.Errorf("Len after Shutdown = %d, want 0", n)
	}
}

// TestPreferredCodecIsTheAcceptedInstance: a handler's WithPreferredCodec
// is matched by name against WithCodecs, and a client that offers no
// subprotocol gets the accepted instance, with its options — it got the
// one given to WithPreferredCodec (codec.JSON, which discards unknown
// fields), unlike clients that name wsrpc.json.
func TestPreferredCodecIsTheAcceptedInstance(t *testing.T) {
	strict := codec.NewJSON(&codec.JSONOptions{RejectUnknown: true})
	h := wsrpc.NewBidiHandler("/t/Strict", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		_, err := s.Receive()
		return err
	}, wsrpc.WithCodecs(strict, codec.Proto), wsrpc.WithPreferredCodec(codec.JSON))
	ctx := testContext(t)
	c, _, err := websocket.Dial(ctx, newServer(t, h), nil) // no subprotocol offered
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"text":"hi","noSuchField":1}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != wsrpc.CodeInvalidArgument.CloseCode() {
		t.Errorf("close %v (%v), want %d: the strict JSON codec refuses the unknown field", got, err, wsrpc.CodeInvalidArgument.CloseCode())
	}
}
