package wsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	greetv1 "github.com/wsrpc/wsrpc/gen/greet/v1"
	"github.com/wsrpc/wsrpc/gen/greet/v1/greetv1wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// streamServer implements the golden StreamService.
type streamServer struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
}

func (streamServer) Echo(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	for req, err := range s.All() {
		if err != nil {
			return err
		}
		if req.GetText() == "fail" {
			return wsrpc.Errorf(wsrpc.CodeFailedPrecondition, "asked to fail at %d", req.GetSeq())
		}
		if err := s.Send(&testingv1.EchoResponse{Text: req.GetText(), Seq: req.GetSeq(), Blob: req.GetBlob()}); err != nil {
			return err
		}
	}
	return nil
}

func (streamServer) Count(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
	for i := int32(1); i <= req.GetCount(); i++ {
		if req.GetFailAt() > 0 && i > req.GetFailAt() {
			return wsrpc.Errorf(wsrpc.Code(req.GetFailCode()), "failed at %d", i)
		}
		if err := s.Send(&testingv1.CountResponse{N: i}); err != nil {
			return err
		}
	}
	return nil
}

func (streamServer) Sum(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
	res := &testingv1.SumResponse{}
	for req, err := range s.All() {
		if err != nil {
			return nil, err
		}
		if req.GetN() < 0 {
			return nil, wsrpc.Errorf(wsrpc.CodeOutOfRange, "negative addend %d", req.GetN())
		}
		res.Total += req.GetN()
		res.Count++
	}
	return res, nil
}

// watchEvents is what Watch sends for a request: one event of every case.
func watchEvents(req *testingv1.WatchRequest) []*testingv1.WatchResponse {
	var out []*testingv1.WatchResponse
	for i := int32(1); i <= req.GetCount(); i++ {
		out = append(out,
			&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Seq: int64(i) + req.GetSince(), Room: req.GetRoom(), Tags: req.GetTags()}}},
			&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: fmt.Sprintf("note %d: %s\nsecond line", i, req.GetMinLevel())}},
			&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Level{Level: 1 << 40}},
			&testingv1.WatchResponse{Event: &testingv1.WatchResponse_UserJoined{UserJoined: &testingv1.Joined{User: string(req.GetToken())}}},
		)
	}
	return out
}

func (streamServer) Watch(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
	for _, ev := range watchEvents(req) {
		if err := s.Send(ev); err != nil {
			return err
		}
	}
	if req.GetFail() {
		return wsrpc.Errorf(wsrpc.CodeNotFound, "room %q is gone", req.GetRoom())
	}
	return nil
}

func (streamServer) Search(ctx context.Context, req *testingv1.SearchRequest, s *wsrpc.ServerStream[testingv1.SearchResponse]) error {
	for i := int32(1); i <= req.GetLimit(); i++ {
		title := req.GetFilter().GetQuery() + " " + strings.Join(req.GetFilter().GetTags(), ",")
		if err := s.Send(&testingv1.SearchResponse{Title: title, Rank: i}); err != nil {
			return err
		}
	}
	return nil
}

// serve starts the generated handler on 127.0.0.1 and returns its base URL.
func serve(t *testing.T, opts ...wsrpc.Option) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, opts...))
	return newServer(t, mux)
}

// newServer serves h on 127.0.0.1 until the test ends.
func newServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var allCodecs = []codec.Codec{codec.Proto, codec.JSON, codec.Msgpack}

func wantCode(t *testing.T, err error, code wsrpc.Code, msg string) {
	t.Helper()
	var e *wsrpc.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want an *wsrpc.Error", err, err)
	}
	if e.Code() != code || (msg != "" && e.Message() != msg) {
		t.Fatalf("error = code %v message %q, want %v %q", e.Code(), e.Message(), code, msg)
	}
	if wsrpc.CodeOf(err) != code {
		t.Fatalf("CodeOf = %v, want %v", wsrpc.CodeOf(err), code)
	}
}

// TestGoldenWebSocket runs the generated client against the generated
// handler for every WebSocket stream kind and every codec.
func TestGoldenWebSocket(t *testing.T) {
	base := serve(t)
	for _, c := range allCodecs {
		t.Run(c.Name(), func(t *testing.T) {
			ctx := testContext(t)
			client := testingv1wsrpc.NewStreamServiceClient(http.DefaultClient, base, wsrpc.WithCodecs(c))

			t.Run("bidi", func(t *testing.T) {
				s, err := client.Echo(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if s.Codec().Name() != c.Name() {
					t.Fatalf("negotiated %s, want %s", s.Codec().Name(), c.Name())
				}
				if got := s.ResponseHeader().Get("Sec-WebSocket-Protocol"); got != codec.Subprotocol(c) {
					t.Fatalf("response subprotocol %q", got)
				}
				sent := []*testingv1.EchoRequest{
					{Text: "héllo", Seq: 1, Blob: []byte{0, 1, 2, 255}},
					{},
					{Text: strings.Repeat("x", 70_000), Seq: -1 << 60},
				}
				for _, m := range sent {
					if err := s.Send(m); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.CloseSend(); err != nil {
					t.Fatal(err)
				}
				var got []*testingv1.EchoResponse
				for m, err := range s.All() {
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, m)
				}
				if len(got) != len(sent) {
					t.Fatalf("got %d echoes, want %d", len(got), len(sent))
				}
				for i := range sent {
					want := &testingv1.EchoResponse{Text: sent[i].Text, Seq: sent[i].Seq, Blob: sent[i].Blob}
					if !proto.Equal(got[i], want) {
						t.Fatalf("echo %d = %v, want %v", i, got[i], want)
					}
				}
				if _, err := s.Receive(); !errors.Is(err, io.EOF) {
					t.Fatalf("Receive after the end = %v, want io.EOF", err)
				}
			})

			t.Run("bidi error", func(t *testing.T) {
				s, err := client.Echo(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Send(&testingv1.EchoRequest{Text: "fail", Seq: 7}); err != nil {
					t.Fatal(err)
				}
				_, err = s.Receive()
				wantCode(t, err, wsrpc.CodeFailedPrecondition, "asked to fail at 7")
			})

			t.Run("server stream", func(t *testing.T) {
				s, err := client.Count(ctx, &testingv1.CountRequest{Count: 5})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var n int32
				for m, err := range s.All() {
					if err != nil {
						t.Fatal(err)
					}
					n++
					if m.GetN() != n {
						t.Fatalf("got %d, want %d", m.GetN(), n)
					}
				}
				if n != 5 {
					t.Fatalf("got %d messages, want 5", n)
				}
			})

			t.Run("server stream error", func(t *testing.T) {
				s, err := client.Count(ctx, &testingv1.CountRequest{Count: 5, FailAt: 2, FailCode: uint32(wsrpc.CodeResourceExhausted)})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				for i := int32(1); i <= 2; i++ {
					m, err := s.Receive()
					if err != nil || m.GetN() != i {
						t.Fatalf("Receive = %v, %v; want %d", m, err, i)
					}
				}
				_, err = s.Receive()
				wantCode(t, err, wsrpc.CodeResourceExhausted, "failed at 3")
			})

			t.Run("client stream", func(t *testing.T) {
				s, err := client.Sum(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				for i := int64(1); i <= 10; i++ {
					if err := s.Send(&testingv1.SumRequest{N: i}); err != nil {
						t.Fatal(err)
					}
				}
				res, err := s.CloseAndReceive()
				if err != nil {
					t.Fatal(err)
				}
				if res.GetTotal() != 55 || res.GetCount() != 10 {
					t.Fatalf("sum = %v, want 55 over 10", res)
				}
			})

			t.Run("client stream error", func(t *testing.T) {
				s, err := client.Sum(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Send(&testingv1.SumRequest{N: -3}); err != nil {
					t.Fatal(err)
				}
				_, err = s.CloseAndReceive()
				wantCode(t, err, wsrpc.CodeOutOfRange, "negative addend -3")
			})
		})
	}
}

// TestGoldenSSE runs the generated SSE client against the generated
// handler: oneof cases from event types (message, string and int64 cases),
// the flat and the request form of the request, the end and error events.
func TestGoldenSSE(t *testing.T) {
	base := serve(t)
	ctx := testContext(t)
	client := testingv1wsrpc.NewStreamServiceClient(nil, base)

	req := &testingv1.WatchRequest{
		Room: "a b&c=d", Count: 2, Tags: []string{"x", "y z"}, MinLevel: testingv1.Level_LEVEL_WARN,
		Since: 1 << 50, Token: []byte("ü\x00"),
	}
	s, err := client.Watch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := s.ResponseHeader().Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var got []*testingv1.WatchResponse
	for m, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	want := watchEvents(req)
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("event %d = %v, want %v", i, got[i], want[i])
		}
	}

	// One base URL serves every method: SSE methods of a client made
	// with a ws:// base go over http://.
	wsBase := testingv1wsrpc.NewStreamServiceClient(nil, "ws"+strings.TrimPrefix(base, "http"))
	small := &testingv1.WatchRequest{Room: "r", Count: 1}
	s2, err := wsBase.Watch(ctx, small)
	if err != nil {
		t.Fatalf("SSE method with a ws:// base URL: %v", err)
	}
	n2 := 0
	for _, err := range s2.All() {
		if err != nil {
			t.Fatal(err)
		}
		n2++
	}
	if want := len(watchEvents(small)); n2 != want {
		t.Fatalf("ws:// base: %d events, want %d", n2, want)
	}

	fail, err := client.Watch(ctx, &testingv1.WatchRequest{Room: "r", Count: 1, Fail: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range fail.All() {
		if err != nil {
			wantCode(t, err, wsrpc.CodeNotFound, `room "r" is gone`)
			break
		}
		n++
	}
	if n != 4 {
		t.Fatalf("got %d events before the error, want 4", n)
	}

	search, err := client.Search(ctx, &testingv1.SearchRequest{Filter: &testingv1.Filter{Query: "q&r", Tags: []string{"t1", "t2"}}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer search.Close()
	var ranks []int32
	for m, err := range search.All() {
		if err != nil {
			t.Fatal(err)
		}
		if m.GetTitle() != "q&r t1,t2" {
			t.Fatalf("title %q", m.GetTitle())
		}
		ranks = append(ranks, m.GetRank())
	}
	if fmt.Sprint(ranks) != "[1 2 3]" {
		t.Fatalf("ranks %v", ranks)
	}
}

// TestGeneratedClientKeepsBaseURLQuery: a generated client whose base URL
// holds a query (an access token for a server that reads it, as browsers
// must send one) keeps it on every method's URL, after the method's path,
// over WebSocket and SSE, with or without a path prefix and a trailing
// slash. The constructor appended the path to the whole base URL, so it
// landed inside the query: the SSE call got a 404 and the WebSocket one a
// redirect, reported as an unknown error.
func TestGeneratedClientKeepsBaseURLQuery(t *testing.T) {
	seen := make(chan string, 16) // path and token of each handshake
	auth := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			token := hs.Request.URL.Query().Get("access_token")
			seen <- hs.Request.URL.Path + " " + token
			if token != "abc" {
				return ctx, wsrpc.Errorf(wsrpc.CodeUnauthenticated, "token %q", token)
			}
			return next(ctx, hs)
		}
	})
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(streamServer{}, wsrpc.WithInterceptors(auth)))
	outer := http.NewServeMux()
	outer.Handle("/", mux)
	outer.Handle("/prefix/", http.StripPrefix("/prefix", mux))
	base := newServer(t, outer)
	ctx := testContext(t)
	for _, b := range []string{base + "?access_token=abc", base + "/?access_token=abc", base + "/prefix/?access_token=abc#frag"} {
		client := testingv1wsrpc.NewStreamServiceClient(nil, b)

		count, err := client.Count(ctx, &testingv1.CountRequest{Count: 2})
		if err != nil {
			t.Fatalf("base %q: WebSocket call: %v", b, err)
		}
		n := 0
		for _, err := range count.All() {
			if err != nil {
				t.Fatalf("base %q: WebSocket call: %v", b, err)
			}
			n++
		}
		if got := <-seen; got != testingv1wsrpc.StreamServiceCountPath+" abc" || n != 2 {
			t.Errorf("base %q: WebSocket handshake saw %q and %d messages, want %q and 2", b, got, n, testingv1wsrpc.StreamServiceCountPath+" abc")
		}

		// The flat request's parameters join the base URL's.
		req := &testingv1.WatchRequest{Room: "r", Count: 1}
		watch, err := client.Watch(ctx, req)
		if err != nil {
			t.Fatalf("base %q: SSE call: %v", b, err)
		}
		n = 0
		for _, err := range watch.All() {
			if err != nil {
				t.Fatalf("base %q: SSE call: %v", b, err)
			}
			n++
		}
		if got := <-seen; got != testingv1wsrpc.StreamServiceWatchPath+" abc" || n != len(watchEvents(req)) {
			t.Errorf("base %q: SSE request saw %q and %d events, want %q and %d", b, got, n, testingv1wsrpc.StreamServiceWatchPath+" abc", len(watchEvents(req)))
		}
	}

	// A base URL that does not parse fails each call with
	// invalid_argument, as a method URL that does not parse does.
	bad := testingv1wsrpc.NewStreamServiceClient(nil, "http://[::1?access_token=abc")
	if _, err := bad.Count(ctx, &testingv1.CountRequest{Count: 1}); wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
		t.Errorf("unparsable base URL: WebSocket call: %v, want invalid_argument", err)
	}
	if _, err := bad.Watch(ctx, &testingv1.WatchRequest{}); wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
		t.Errorf("unparsable base URL: SSE call: %v, want invalid_argument", err)
	}
}

// TestServiceNotFoundSaysWhy guards the 404 of a generated handler mounted
// under a prefix it does not strip (chi's Mount, an echo or gin Group: the
// full path reaches it): the client's not_found names the service and the
// path and, when the service's own path shows further in, the prefix to
// strip. It said "404 page not found", as the router's own 404 does.
func TestServiceNotFoundSaysWhy(t *testing.T) {
	mux := http.NewServeMux()
	_, greet := greetv1wsrpc.NewGreetServiceHandler(greetv1wsrpc.UnimplementedGreetServiceHandler{})
	mux.Handle("/api/", greet) // not stripped
	base := newServer(t, mux)
	ctx := testContext(t)
	client := greetv1wsrpc.NewGreetServiceClient(nil, base+"/api")
	_, err := client.Chat(ctx)
	want := `no method of greet.v1.GreetService at /api/greet.v1.GreetService/Chat: the handler is mounted under /api, which it does not strip; wrap it in http.StripPrefix("/api", h)`
	if wsrpc.CodeOf(err) != wsrpc.CodeNotFound || !strings.Contains(err.Error(), want) {
		t.Errorf("WebSocket call: %v, want not_found: %s", err, want)
	}
	st, err := client.Clock(ctx, &greetv1.ClockRequest{})
	if err == nil {
		_, err = st.Receive()
	}
	if wsrpc.CodeOf(err) != wsrpc.CodeNotFound || !strings.Contains(err.Error(), "no method of greet.v1.GreetService at /api/greet.v1.GreetService/Clock: the handler is mounted under /api") {
		t.Errorf("SSE call: %v, want not_found naming the prefix", err)
	}
	mux.Handle("/api2/", http.StripPrefix("/api2", greet))
	chat, err := greetv1wsrpc.NewGreetServiceClient(nil, base+"/api2").Chat(ctx)
	if err == nil {
		defer chat.Close()
		_, err = chat.Receive()
	}
	if wsrpc.CodeOf(err) != wsrpc.CodeUnimplemented {
		t.Errorf("stripped: %v, want the handler's unimplemented", err)
	}
}

// TestServiceNotFoundSaysWhyCustomPaths is TestServiceNotFoundSaysWhy for
// methods whose schema sets a path ("/count", "/rooms/watch"): unstripped
// under a prefix, their calls got "no method of … at /api/count" with no
// word of the prefix, since only the service's own "/<service>/" was
// looked for in the path.
func TestServiceNotFoundSaysWhyCustomPaths(t *testing.T) {
	mux := http.NewServeMux()
	_, h := testingv1wsrpc.NewStreamServiceHandler(streamServer{})
	mux.Handle("/api/", h) // not stripped
	base := newServer(t, mux)
	ctx := testContext(t)
	client := testingv1wsrpc.NewStreamServiceClient(nil, base+"/api")
	hint := `the handler is mounted under /api, which it does not strip; wrap it in http.StripPrefix("/api", h)`

	st, err := client.Count(ctx, &testingv1.CountRequest{})
	if err == nil {
		_, err = st.Receive()
		st.Close()
	}
	if wsrpc.CodeOf(err) != wsrpc.CodeNotFound || !strings.Contains(err.Error(), "at /api/count: "+hint) {
		t.Errorf("WebSocket call: %v, want not_found: …at /api/count: %s", err, hint)
	}
	w, err := client.Watch(ctx, &testingv1.WatchRequest{})
	if err == nil {
		_, err = w.Receive()
		w.Close()
	}
	if wsrpc.CodeOf(err) != wsrpc.CodeNotFound || !strings.Contains(err.Error(), "at /api/rooms/watch: "+hint) {
		t.Errorf("SSE call: %v, want not_found: …at /api/rooms/watch: %s", err, hint)
	}

	// A path that only ends like a method's, not at a segment boundary, or
	// that is no method's at all, names no prefix.
	for _, p := range []string{"/api/discount", "/api/nothing"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "StripPrefix") {
			t.Errorf("GET %s: %s %q, want 404 naming no prefix", p, resp.Status, body)
		}
	}
}

// TestUnknownMethodIsUnimplemented guards a client built from a newer
// schema than its server's (a rolling deploy): a path that names the
// service (its own first segment) and a method it does not have is
// answered 404 with Wsrpc-Code unimplemented, as Connect and gRPC answer
// an unknown procedure, and a message naming the method. It read
// not_found, like a wrong base URL. A wrong base URL, a router's own 404
// and a path with the service further in (an unstripped prefix: see
// TestServiceNotFoundSaysWhy) stay not_found.
func TestUnknownMethodIsUnimplemented(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(greetv1wsrpc.NewGreetServiceHandler(greetv1wsrpc.UnimplementedGreetServiceHandler{}))
	base := newServer(t, mux)
	ctx := testContext(t)
	const gone = "/greet.v1.GreetService/Gone"
	want := "greet.v1.GreetService has no method Gone"

	ws := wsrpc.NewBidiClient[greetv1.ChatRequest, greetv1.ChatResponse](nil, base+gone, gone)
	if st, err := ws.Call(ctx); err == nil {
		st.Close()
		t.Error("WebSocket call of a missing method succeeded")
	} else if wsrpc.CodeOf(err) != wsrpc.CodeUnimplemented || !strings.Contains(err.Error(), want) {
		t.Errorf("WebSocket call of a missing method: %v, want unimplemented: %s", err, want)
	}
	sse := wsrpc.NewSSEClient[greetv1.ClockRequest, greetv1.ClockResponse](nil, base+gone, gone)
	st, err := sse.Call(ctx, &greetv1.ClockRequest{})
	if err == nil {
		_, err = st.Receive()
		st.Close()
	}
	if wsrpc.CodeOf(err) != wsrpc.CodeUnimplemented || !strings.Contains(err.Error(), want) {
		t.Errorf("SSE call of a missing method: %v, want unimplemented: %s", err, want)
	}

	for _, tc := range []struct {
		path string
		code string // Wsrpc-Code
	}{
		{gone, "unimplemented"},
		{"/greet.v1.GreetService/", "not_found"},       // no method named
		{"/greet.v1.GreetService/Chat/x", "not_found"}, // not a method's path
		{"/api/greet.v1.GreetService/Gone", ""},        // a wrong base URL: the mux's own 404
		{"/greet.v1.GreetServiceX/Chat", ""},           // another service: the mux's own 404
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get(wsrpc.CodeHeader) != tc.code {
			t.Errorf("GET %s: %d, Wsrpc-Code %q; want 404, %q", tc.path, resp.StatusCode, resp.Header.Get(wsrpc.CodeHeader), tc.code)
		}
	}
}
