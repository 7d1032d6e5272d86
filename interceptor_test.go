package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
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

type userKey struct{}

// authInterceptor refuses calls without the right bearer token before the
// upgrade and puts the user into the stream's context.
func authInterceptor() wsrpc.Interceptor {
	return wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if hs.Spec.IsClient {
				hs.Request.Header.Set("Authorization", "Bearer s3cret")
				return next(ctx, hs)
			}
			if hs.Request.Header.Get("Authorization") != "Bearer s3cret" {
				return ctx, wsrpc.Errorf(wsrpc.CodeUnauthenticated, "missing or bad token")
			}
			hs.ResponseHeader.Set("X-User", "ada")
			return next(context.WithValue(ctx, userKey{}, "ada"), hs)
		}
	})
}

// TestInterceptorRejectsBeforeUpgrade: an authentication interceptor
// refuses with 401 on both transports, the client gets unauthenticated
// with the message, and a client interceptor adding the token gets in.
func TestInterceptorRejectsBeforeUpgrade(t *testing.T) {
	base := serve(t, wsrpc.WithInterceptors(authInterceptor()))
	ctx := testContext(t)

	anon := testingv1wsrpc.NewStreamServiceClient(nil, base)
	_, err := anon.Echo(ctx)
	wantCode(t, err, wsrpc.CodeUnauthenticated, "missing or bad token")
	var e *wsrpc.Error
	errors.As(err, &e)
	if e.Meta().Get(wsrpc.CodeHeader) != "unauthenticated" {
		t.Fatalf("meta %v", e.Meta())
	}
	_, err = anon.Watch(ctx, &testingv1.WatchRequest{Count: 1})
	wantCode(t, err, wsrpc.CodeUnauthenticated, "missing or bad token")

	// A plain request sees the HTTP status of the table.
	resp, err := http.Get(base + testingv1wsrpc.StreamServiceWatchPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}

	authed := testingv1wsrpc.NewStreamServiceClient(nil, base, wsrpc.WithInterceptors(authInterceptor()))
	s, err := authed.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ResponseHeader().Get("X-User") != "ada" || s.RequestHeader().Get("Authorization") == "" {
		t.Fatalf("headers: response %v request %v", s.ResponseHeader(), s.RequestHeader())
	}
	w, err := authed.Watch(ctx, &testingv1.WatchRequest{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.ResponseHeader().Get("X-User") != "ada" {
		t.Fatalf("SSE response header %v", w.ResponseHeader())
	}
}

// TestStreamInterceptorAndHooks: a stream interceptor sees every message
// and the handler's error; OnConnect and OnClose see the codec, close
// code and reason on both sides; the context carries the handshake's
// values.
func TestStreamInterceptorAndHooks(t *testing.T) {
	var mu sync.Mutex
	var log []string
	add := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	counting := wsrpc.StreamInterceptorFunc(func(next wsrpc.StreamFunc) wsrpc.StreamFunc {
		return func(ctx context.Context, conn wsrpc.StreamConn) error {
			add("start " + conn.Spec().Procedure + " " + conn.Codec().Name() + " user=" + ctx.Value(userKey{}).(string))
			err := next(ctx, &countingConn{StreamConn: conn, add: add})
			add("end " + wsrpc.CodeOf(err).String())
			return err
		}
	})
	done := make(chan struct{}, 4)
	serverOpts := []wsrpc.Option{
		wsrpc.WithInterceptors(authInterceptor(), counting),
		wsrpc.WithOnConnect(func(ctx context.Context, info *wsrpc.ConnInfo) { add("connect " + info.Codec.Name()) }),
		wsrpc.WithOnClose(func(ctx context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
			add("close " + ci.Code.String() + " " + ci.Reason + " " + wsrpc.CodeOf(ci.Err).String())
			done <- struct{}{}
		}),
	}
	base := serve(t, serverOpts...)
	ctx := testContext(t)
	var clientClose []wsrpc.CloseInfo
	client := testingv1wsrpc.NewStreamServiceClient(nil, base,
		wsrpc.WithInterceptors(authInterceptor()),
		wsrpc.WithPreferredCodec(codec.Msgpack),
		wsrpc.WithOnClose(func(ctx context.Context, info *wsrpc.ConnInfo, ci wsrpc.CloseInfo) {
			clientClose = append(clientClose, ci)
		}))

	s, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Send(&testingv1.EchoRequest{Text: "a"})
	_ = s.Send(&testingv1.EchoRequest{Text: "fail", Seq: 2})
	for _, err := range s.All() {
		if err != nil {
			wantCode(t, err, wsrpc.CodeFailedPrecondition, "asked to fail at 2")
		}
	}
	<-done
	mu.Lock()
	got := strings.Join(log, "\n")
	mu.Unlock()
	want := strings.Join([]string{
		"connect msgpack",
		"start /wsrpc.testing.v1.StreamService/Echo msgpack user=ada",
		"recv a", "send a", "recv fail",
		"end failed_precondition",
		"close status 4009 asked to fail at 2 failed_precondition",
	}, "\n")
	if got != want {
		t.Fatalf("log:\n%s\nwant:\n%s", got, want)
	}
	if len(clientClose) != 1 || clientClose[0].Code != 4009 || wsrpc.CodeOf(clientClose[0].Err) != wsrpc.CodeFailedPrecondition {
		t.Fatalf("client OnClose %+v", clientClose)
	}
	_ = s.Close()
	if len(clientClose) != 1 {
		t.Fatalf("client OnClose ran %d times", len(clientClose))
	}
}

type countingConn struct {
	wsrpc.StreamConn
	add func(string)
}

func (c *countingConn) Receive(m any) error {
	err := c.StreamConn.Receive(m)
	if err == nil {
		c.add("recv " + m.(*testingv1.EchoRequest).GetText())
	}
	return err
}

func (c *countingConn) Send(m any) error {
	c.add("send " + m.(*testingv1.EchoResponse).GetText())
	return c.StreamConn.Send(m)
}

// TestCodecNegotiation: the server picks the first offered codec it
// accepts, a client without an offer gets JSON, an offer the server
// cannot serve is refused before the upgrade with invalid_argument, and a
// codec given twice is offered once.
func TestCodecNegotiation(t *testing.T) {
	base := serve(t, wsrpc.WithCodecs(codec.JSON, codec.Proto))
	ctx := testContext(t)
	cases := []struct {
		name  string
		opts  []wsrpc.Option
		want  string
		code  wsrpc.Code
		extra string
	}{
		{"client order wins", []wsrpc.Option{wsrpc.WithCodecs(codec.Msgpack, codec.Proto, codec.JSON)}, "proto", 0, ""},
		{"preferred first", []wsrpc.Option{wsrpc.WithPreferredCodec(codec.JSON)}, "json", 0, ""},
		{"none acceptable", []wsrpc.Option{wsrpc.WithCodecs(codec.Msgpack)}, "", wsrpc.CodeInvalidArgument, "wsrpc.msgpack"},
		// Offered once each: Dial refuses a subprotocol given twice.
		{"duplicates offered once", []wsrpc.Option{wsrpc.WithCodecs(codec.JSON, codec.Msgpack, codec.JSON)}, "json", 0, ""},
		{"preferred among the codecs", []wsrpc.Option{wsrpc.WithPreferredCodec(codec.Proto), wsrpc.WithCodecs(codec.JSON, codec.Proto, codec.Proto)}, "proto", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := testingv1wsrpc.NewStreamServiceClient(nil, base, tc.opts...).Echo(ctx)
			if tc.code != 0 {
				wantCode(t, err, tc.code, "")
				if !strings.Contains(err.Error(), tc.extra) {
					t.Fatalf("error %q does not name %q", err, tc.extra)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Codec().Name() != tc.want {
				t.Fatalf("codec %s, want %s", s.Codec().Name(), tc.want)
			}
		})
	}
	// No subprotocol at all: JSON, and no subprotocol in the answer.
	c, _, err := websocket.Dial(ctx, base+testingv1wsrpc.StreamServiceEchoPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"text":"plain"}`)); err != nil {
		t.Fatal(err)
	}
	typ, data, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || !strings.Contains(string(data), `"plain"`) {
		t.Fatalf("read %v %q %v", typ, data, err)
	}
}

// TestUnimplementedAndRouting: the embedded Unimplemented handler fails
// with unimplemented (4012) and unknown paths are 404.
func TestUnimplementedAndRouting(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(testingv1wsrpc.UnimplementedStreamServiceHandler{}))
	srv := newServer(t, mux)
	ctx := testContext(t)
	client := testingv1wsrpc.NewStreamServiceClient(nil, srv)
	s, err := client.Echo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Receive()
	wantCode(t, err, wsrpc.CodeUnimplemented, "wsrpc.testing.v1.StreamService.Echo is not implemented")
	sum, err := client.Sum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sum.CloseAndReceive()
	wantCode(t, err, wsrpc.CodeUnimplemented, "")
	w, err := client.Watch(ctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Receive()
	wantCode(t, err, wsrpc.CodeUnimplemented, "")

	resp, err := http.Get(srv + "/wsrpc.testing.v1.StreamService/Nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// A plain GET on a WebSocket method is told to upgrade.
	resp, err = http.Get(srv + testingv1wsrpc.StreamServiceEchoPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
}

// TestServerStreamClientGoesAway: when the client closes a server stream,
// the handler's context is cancelled and its OnClose sees the client's
// normal closure.
func TestServerStreamClientGoesAway(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	h := wsrpc.NewServerStreamHandler("/t/Wait", func(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		if err := s.Send(&testingv1.CountResponse{N: 1}); err != nil {
			return err
		}
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	})
	srv := newServer(t, h)
	ctx := testContext(t)
	c := wsrpc.NewServerStreamClient[testingv1.CountRequest, testingv1.CountResponse](nil, srv, "/t/Wait")
	s, err := c.Call(ctx, &testingv1.CountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Receive(); err != nil || m.GetN() != 1 {
		t.Fatalf("Receive = %v, %v", m, err)
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ctx = %v", err)
	}
}

// TestHalfClosedBidiClientGoesAway: after the client's CloseSend the
// handler's Receive has returned io.EOF and the handler only sends (the
// long answer to a finished request). Nothing read the connection any
// more, so the client's close frame went unread: its Close waited out the
// close timeout (5 s) and failed, and the handler's context lived on. The
// end-of-stream marker now starts the reader server streams have, which
// answers the close (RFC 6455 §5.5.1) and cancels the context.
func TestHalfClosedBidiClientGoesAway(t *testing.T) {
	ended := make(chan error, 1)
	h := wsrpc.NewBidiHandler("/t/Half", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		for _, err := range s.All() {
			if err != nil {
				return err
			}
		}
		for i := int64(0); ctx.Err() == nil; i++ {
			if s.Send(&testingv1.EchoResponse{Seq: i}) != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * handlerBound):
		}
		ended <- ctx.Err()
		return ctx.Err()
	})
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h)+"/t/Half", "/t/Half")
	st, err := c.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Receive(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close of a half-closed stream = %v", err)
	}
	if err := waitSeen(t, ended, "the handler's context is live"); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ctx = %v", err)
	}
}

// handshakeTimeout is the documented client interceptor that bounds only
// the handshake (see wsrpc.HandshakeFunc): next gets a derived context,
// cancelled on return, and the call runs with the interceptor's own. A
// derived context returned instead would bound the whole call, and its
// deferred cancel would end the call as soon as it opened. derived
// records the context next got.
func handshakeTimeout(d time.Duration, derived chan<- context.Context) wsrpc.Interceptor {
	return wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			derived <- hctx
			if _, err := next(hctx, hs); err != nil {
				return ctx, err
			}
			return ctx, nil
		}
	})
}

// TestClientHandshakeTimeoutOnlyBoundsHandshake: the way HandshakeFunc's
// doc gives to bound a client's handshake bounds the handshake (a server
// that never answers the upgrade fails the call with deadline_exceeded)
// and nothing after it: the call works once the interceptor has returned
// and cancelled its context, and after that context's timeout.
func TestClientHandshakeTimeoutOnlyBoundsHandshake(t *testing.T) {
	const timeout = 200 * time.Millisecond
	derived := make(chan context.Context, 1)
	client := testingv1wsrpc.NewStreamServiceClient(nil, serve(t), wsrpc.WithInterceptors(handshakeTimeout(timeout, derived)))
	st, err := client.Echo(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if hctx := <-derived; hctx.Err() == nil {
		t.Fatal("the handshake's context is live after Call returned: the test proves nothing")
	}
	echo := func(text string) {
		t.Helper()
		if err := st.Send(&testingv1.EchoRequest{Text: text}); err != nil {
			t.Fatalf("Send after the handshake = %v", err)
		}
		if m, err := st.Receive(); err != nil || m.GetText() != text {
			t.Fatalf("Receive after the handshake = %v, %v", m, err)
		}
	}
	echo("after the interceptor returned")
	// Time for the handshake's timeout to pass, which must not end the
	// call.
	time.Sleep(timeout + 50*time.Millisecond)
	echo("after the handshake's timeout")

	// A server that accepts TCP and never answers the upgrade.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	silent := testingv1wsrpc.NewStreamServiceClient(nil, "http://"+ln.Addr().String(), wsrpc.WithInterceptors(handshakeTimeout(timeout, derived)))
	_, err = silent.Echo(testContext(t))
	<-derived
	if wsrpc.CodeOf(err) != wsrpc.CodeDeadlineExceeded {
		t.Fatalf("Call to a server that never answers = %v, want deadline_exceeded", err)
	}
}

// TestInterceptorSeesAcceptRefusal guards what a handshake interceptor
// sees when the WebSocket runtime refuses the handshake itself and writes
// the response (RFC 6455 §4.2.2: 403 for a refused origin, §4.4: 426 for
// another version; 400 for a bad key): next returns an *Error with the
// code the client reads from that status (no Wsrpc-Code comes with it)
// and the runtime's message, where it returned an internal marker whose
// code was unknown. And whatever the interceptor returns — the refusal
// re-wrapped with %v, which hides the marker from errors.Is, or no error
// at all — the handler writes no second response after the runtime's.
func TestInterceptorSeesAcceptRefusal(t *testing.T) {
	hdr := func(extra ...string) map[string]string {
		h := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "wsrpc.json"}
		for i := 0; i < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return h
	}
	for _, req := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"cross-origin", hdr("Origin", "http://evil.example"), http.StatusForbidden},
		{"bad key", hdr("Sec-WebSocket-Key", "short"), http.StatusBadRequest},
		{"other version", hdr("Sec-WebSocket-Version", "8"), http.StatusUpgradeRequired},
	} {
		for _, outer := range []struct {
			name string
			wrap func(ctx context.Context, err error) (context.Context, error)
		}{
			{"rewrapped with %v", func(ctx context.Context, err error) (context.Context, error) {
				return ctx, wsrpc.Errorf(wsrpc.CodeOf(err), "handshake failed: %v", err)
			}},
			{"swallowed", func(ctx context.Context, err error) (context.Context, error) { return ctx, nil }},
		} {
			t.Run(req.name+", "+outer.name, func(t *testing.T) {
				seen := make(chan error, 1)
				observe := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
					return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
						ctx, err := next(ctx, hs)
						seen <- err
						if err != nil {
							return outer.wrap(ctx, err)
						}
						return ctx, nil
					}
				})
				h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
					return nil
				}, wsrpc.WithInterceptors(observe))
				url := newServer(t, h)
				r, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, url, nil)
				for k, v := range req.header {
					r.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != req.status || resp.Header.Get(wsrpc.CodeHeader) != "" {
					t.Errorf("response %d with %s %q, want the runtime's %d without it", resp.StatusCode, wsrpc.CodeHeader, resp.Header.Get(wsrpc.CodeHeader), req.status)
				}
				if strings.Contains(string(body), "handshake failed") || strings.Contains(string(body), "without calling next") || strings.Count(string(body), "\n") != 1 {
					t.Errorf("a second response was written after the runtime's: body %q", body)
				}
				err = waitSeen(t, seen, "the interceptor never ran")
				var e *wsrpc.Error
				if !errors.As(err, &e) || e.Code() != wsrpc.CodeFromHTTPStatus(req.status) {
					t.Fatalf("next returned %v, want an *Error with %v (from %d)", err, wsrpc.CodeFromHTTPStatus(req.status), req.status)
				}
				if first, _, _ := strings.Cut(string(body), "\n"); !strings.Contains(e.Message(), first) || !errors.Is(err, websocket.ErrBadHandshake) {
					t.Errorf("next's error %q, want the runtime's (%q, ErrBadHandshake)", e.Message(), first)
				}
			})
		}
	}
}

// TestResponseHeaderIsWhatWasSent guards the streams' ResponseHeader,
// "the headers sent with the 101 (or 200) response": a header a
// handshake interceptor sets after next returns is never sent, so it must
// not be there either. The copy was made once the whole interceptor chain
// had returned; it is made as the response goes out.
func TestResponseHeaderIsWhatWasSent(t *testing.T) {
	headers := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hs.ResponseHeader.Set("X-Early", "1")
			ctx, err := next(ctx, hs)
			hs.ResponseHeader.Set("X-Late", "1")
			return ctx, err
		}
	})
	serverSaw := make(chan http.Header, 2)
	mux := http.NewServeMux()
	mux.Handle("/ws", wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		serverSaw <- s.ResponseHeader()
		return nil
	}, wsrpc.WithInterceptors(headers)))
	mux.Handle("/sse", wsrpc.NewSSEHandler("/t/Watch", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		serverSaw <- s.ResponseHeader()
		return nil
	}, wsrpc.WithInterceptors(headers)))
	base := newServer(t, mux)
	ctx := testContext(t)
	check := func(transport string, client http.Header) {
		t.Helper()
		server := waitSeen(t, serverSaw, "the handler never ran")
		for _, name := range []string{"X-Early", "X-Late"} {
			if got, sent := server.Get(name), client.Get(name); got != sent {
				t.Errorf("%s: the server's ResponseHeader has %s %q, the client received %q", transport, name, got, sent)
			}
		}
		if client.Get("X-Early") != "1" {
			t.Errorf("%s: X-Early, set before next, was not sent", transport)
		}
	}

	st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/ws", "/t/Echo").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check("WebSocket", st.ResponseHeader())

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sse", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	check("SSE", resp.Header)
}

// TestNoOfferCodec pins the codec a client that offers no subprotocol
// gets, as docs/security.md and WithPreferredCodec state it: the
// handler's preferred codec if set (even over JSON), else JSON if
// accepted, else the first codec accepted.
func TestNoOfferCodec(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []wsrpc.Option
		want string
	}{
		{"default", nil, "json"},
		{"preferred", []wsrpc.Option{wsrpc.WithPreferredCodec(codec.Proto)}, "proto"},
		{"JSON accepted, not first", []wsrpc.Option{wsrpc.WithCodecs(codec.Proto, codec.JSON)}, "json"},
		{"no JSON", []wsrpc.Option{wsrpc.WithCodecs(codec.Msgpack, codec.Proto)}, "msgpack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
				return s.Send(&testingv1.EchoResponse{Text: s.Codec().Name()})
			}, tc.opts...)
			ctx := testContext(t)
			c, _, err := websocket.Dial(ctx, newServer(t, h), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			// The codec's name, in the codec: a text frame for JSON only.
			typ, data, err := c.Read(ctx)
			if err != nil || !strings.Contains(string(data), tc.want) || (typ == websocket.MessageText) != (tc.want == "json") {
				t.Errorf("first message %v %q %v, want one in %s", typ, data, err, tc.want)
			}
		})
	}
}

// TestInterceptorRefusesAfterNext: a server handshake interceptor that
// calls next and then returns an error fails the call after the upgrade
// (or once the event stream is open) with the error's code, without
// running the handler — the way docs/codegen.md gives pages, which cannot
// see a refusal's status, the reason: a WebSocket closes with 4000+code
// and the reason, an SSE stream ends with a wsrpc.error event; the typed
// clients read the code either way.
func TestInterceptorRefusesAfterNext(t *testing.T) {
	refuse := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if hs.Spec.IsClient {
				return next(ctx, hs)
			}
			if _, err := next(ctx, hs); err != nil {
				return ctx, err
			}
			return ctx, wsrpc.Errorf(wsrpc.CodeUnauthenticated, "unknown or missing token")
		}
	})
	base := serve(t, wsrpc.WithInterceptors(refuse))
	ctx := testContext(t)
	client := testingv1wsrpc.NewStreamServiceClient(nil, base)

	// A page's WebSocket: the close code and reason.
	c, _, err := websocket.Dial(ctx, base+testingv1wsrpc.StreamServiceEchoPath, &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolJSON}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != wsrpc.CodeUnauthenticated.CloseCode() || ce.Reason != "unknown or missing token" {
		t.Errorf("page's WebSocket read %v, want close 4016 with the reason", err)
	}
	// The typed clients, WebSocket and SSE.
	st, err := client.Echo(ctx)
	if err == nil {
		_, err = st.Receive()
		st.Close()
	}
	wantCode(t, err, wsrpc.CodeUnauthenticated, "unknown or missing token")
	w, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r", Count: 1})
	if err == nil {
		_, err = w.Receive()
		w.Close()
	}
	wantCode(t, err, wsrpc.CodeUnauthenticated, "unknown or missing token")
}

// TestInterceptorCallingNextTwiceLeaksNothing guards a client handshake
// interceptor that calls next a second time after a success (dialling
// anew): the call runs on the second connection and the first is
// closed, where it stayed open for good, its handler waiting on it.
func TestInterceptorCallingNextTwiceLeaksNothing(t *testing.T) {
	var started, active atomic.Int32
	h := wsrpc.NewBidiHandler("/t/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		started.Add(1)
		active.Add(1)
		defer active.Add(-1)
		for req, err := range s.All() {
			if err != nil {
				return err
			}
			if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
				return err
			}
		}
		return nil
	})
	twice := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			if _, err := next(ctx, hs); err != nil {
				return ctx, err
			}
			return next(ctx, hs)
		}
	})
	c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, newServer(t, h), "/t/Echo", wsrpc.WithInterceptors(twice))
	st, err := c.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testingv1.EchoRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Receive(); err != nil || res.GetText() != "hi" {
		t.Fatalf("Receive: %v, %v", res, err)
	}
	st.Close()
	waitFor(t, "both connections' handlers to return", func() bool { return started.Load() == 2 && active.Load() == 0 })
}
