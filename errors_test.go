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
	"unicode/utf8"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestCodeTable pins the documented code ↔ close code ↔ HTTP status table.
func TestCodeTable(t *testing.T) {
	table := []struct {
		code   wsrpc.Code
		name   string
		close  websocket.StatusCode
		status int
	}{
		{wsrpc.CodeCanceled, "canceled", 4001, 499},
		{wsrpc.CodeUnknown, "unknown", 4002, 500},
		{wsrpc.CodeInvalidArgument, "invalid_argument", 4003, 400},
		{wsrpc.CodeDeadlineExceeded, "deadline_exceeded", 4004, 504},
		{wsrpc.CodeNotFound, "not_found", 4005, 404},
		{wsrpc.CodeAlreadyExists, "already_exists", 4006, 409},
		{wsrpc.CodePermissionDenied, "permission_denied", 4007, 403},
		{wsrpc.CodeResourceExhausted, "resource_exhausted", 4008, 429},
		{wsrpc.CodeFailedPrecondition, "failed_precondition", 4009, 412},
		{wsrpc.CodeAborted, "aborted", 4010, 409},
		{wsrpc.CodeOutOfRange, "out_of_range", 4011, 400},
		{wsrpc.CodeUnimplemented, "unimplemented", 4012, 501},
		{wsrpc.CodeInternal, "internal", 4013, 500},
		{wsrpc.CodeUnavailable, "unavailable", 4014, 503},
		{wsrpc.CodeDataLoss, "data_loss", 4015, 500},
		{wsrpc.CodeUnauthenticated, "unauthenticated", 4016, 401},
	}
	for _, r := range table {
		if r.code.String() != r.name || r.code.CloseCode() != r.close || r.code.HTTPStatus() != r.status {
			t.Errorf("%d: %s %d %d, want %s %d %d", r.code, r.code, r.code.CloseCode(), r.code.HTTPStatus(), r.name, r.close, r.status)
		}
		if c, ok := wsrpc.ParseCode(r.name); !ok || c != r.code {
			t.Errorf("ParseCode(%q) = %v, %v", r.name, c, ok)
		}
		if c := wsrpc.CodeFromCloseCode(r.close); c != r.code {
			t.Errorf("CodeFromCloseCode(%d) = %v, want %v", r.close, c, r.code)
		}
	}
	runtime := map[websocket.StatusCode]wsrpc.Code{
		1000: 0, 1005: 0, 1001: wsrpc.CodeUnavailable, 1002: wsrpc.CodeInternal, 1003: wsrpc.CodeInvalidArgument,
		1006: wsrpc.CodeUnavailable, 1007: wsrpc.CodeInvalidArgument, 1008: wsrpc.CodePermissionDenied,
		1009: wsrpc.CodeResourceExhausted, 1011: wsrpc.CodeInternal, 1012: wsrpc.CodeUnavailable,
		1013: wsrpc.CodeUnavailable, 4000: wsrpc.CodeUnknown, 4017: wsrpc.CodeUnknown, 4999: wsrpc.CodeUnknown, 3000: wsrpc.CodeUnknown,
	}
	for sc, want := range runtime {
		if got := wsrpc.CodeFromCloseCode(sc); got != want {
			t.Errorf("CodeFromCloseCode(%d) = %v, want %v", sc, got, want)
		}
	}
	statuses := map[int]wsrpc.Code{
		400: wsrpc.CodeInvalidArgument, 401: wsrpc.CodeUnauthenticated, 403: wsrpc.CodePermissionDenied,
		404: wsrpc.CodeNotFound, 409: wsrpc.CodeAlreadyExists, 415: wsrpc.CodeInvalidArgument, 418: wsrpc.CodeUnknown,
		405: wsrpc.CodeInvalidArgument, 426: wsrpc.CodeInvalidArgument, 413: wsrpc.CodeResourceExhausted,
		431: wsrpc.CodeResourceExhausted, 414: wsrpc.CodeUnknown,
		429: wsrpc.CodeResourceExhausted, 500: wsrpc.CodeInternal, 501: wsrpc.CodeUnimplemented, 502: wsrpc.CodeUnavailable,
		503: wsrpc.CodeUnavailable, 504: wsrpc.CodeDeadlineExceeded,
	}
	for st, want := range statuses {
		if got := wsrpc.CodeFromHTTPStatus(st); got != want {
			t.Errorf("CodeFromHTTPStatus(%d) = %v, want %v", st, got, want)
		}
	}
	if wsrpc.Code(99).String() != "code_99" || wsrpc.Code(99).CloseCode() != 4002 {
		t.Errorf("out-of-table code: %s %d", wsrpc.Code(99), wsrpc.Code(99).CloseCode())
	}
}

// TestZeroCodeIsOK: the zero Code is no error (CodeOf(nil)), and prints
// as gRPC and Connect name it, "ok", where it printed "code_0". It stays
// out of the table on the wire: ParseCode does not accept "ok", and it
// closes a stream as unknown.
func TestZeroCodeIsOK(t *testing.T) {
	if got := wsrpc.CodeOf(nil).String(); got != "ok" {
		t.Errorf("CodeOf(nil).String() = %q, want ok", got)
	}
	if got := fmt.Sprint(wsrpc.Code(0)); got != "ok" {
		t.Errorf("fmt.Sprint(Code(0)) = %q, want ok", got)
	}
	if c, ok := wsrpc.ParseCode("ok"); ok {
		t.Errorf("ParseCode(ok) = %v, true; want false", c)
	}
	if got := wsrpc.Code(0).CloseCode(); got != 4002 {
		t.Errorf("Code(0).CloseCode() = %d, want 4002", got)
	}
	if got := wsrpc.Code(17).String(); got != "code_17" {
		t.Errorf("Code(17).String() = %q, want code_17", got)
	}
}

// TestHeaderTooLarge: a request whose header is over the server's
// http.Server.MaxHeaderBytes is refused by net/http with 431 and no
// Wsrpc-Code (no handler runs); the typed client reports it as
// resource_exhausted on both transports, the code of a message over the
// limit, where it used to say unknown.
func TestHeaderTooLarge(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(&testingv1wsrpc.UnimplementedStreamServiceHandler{}))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.MaxHeaderBytes = 1 << 10 // net/http adds 4 KiB of slack
	srv.Start()
	t.Cleanup(srv.Close)
	big := strings.Repeat("x", 16<<10)
	c := testingv1wsrpc.NewStreamServiceClient(&http.Client{}, srv.URL,
		wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
			return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
				hs.Request.Header.Set("Cookie", "big="+big)
				return next(ctx, hs)
			}
		})))
	ctx := testContext(t)
	for name, call := range map[string]func() error{
		"websocket": func() error {
			_, err := c.Count(ctx, &testingv1.CountRequest{})
			return err
		},
		"sse": func() error {
			st, err := c.Watch(ctx, &testingv1.WatchRequest{})
			if err == nil {
				defer st.Close()
				_, err = st.Receive()
			}
			return err
		},
	} {
		err := call()
		var e *wsrpc.Error
		if !errors.As(err, &e) || e.Code() != wsrpc.CodeResourceExhausted || !strings.Contains(e.Message(), "431") {
			t.Errorf("%s: %v, want resource_exhausted from the 431", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestErrorValues(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	e := wsrpc.Errorf(wsrpc.CodeDataLoss, "reading %s: %w", "x", cause)
	if e.Error() != "wsrpc: data_loss: reading x: unexpected EOF" || !errors.Is(e, cause) || e.Message() != "reading x: unexpected EOF" {
		t.Fatalf("Errorf: %q, Is=%v", e, errors.Is(e, cause))
	}
	wrapped := fmt.Errorf("outer: %w", wsrpc.NewError(wsrpc.CodeAborted, cause))
	cases := map[error]wsrpc.Code{
		nil: 0, wrapped: wsrpc.CodeAborted, context.Canceled: wsrpc.CodeCanceled,
		fmt.Errorf("x: %w", context.DeadlineExceeded): wsrpc.CodeDeadlineExceeded,
		&websocket.CloseError{Code: 4005}:             wsrpc.CodeNotFound,
		io.EOF:                                        wsrpc.CodeUnknown,
	}
	for err, want := range cases {
		if got := wsrpc.CodeOf(err); got != want {
			t.Errorf("CodeOf(%v) = %v, want %v", err, got, want)
		}
	}
}

// TestErrorMessageAsCloseReason: a handler's error message becomes the
// close reason, which must be valid UTF-8 of at most 123 bytes (RFC 6455
// §5.5, §7.1.6) or the runtime refuses to send it. Long messages are cut
// on a rune boundary, invalid bytes become U+FFFD; either way the close
// frame goes out, the client gets the code, and the server's OnClose the
// same reason. Before, a short message with invalid UTF-8 sent no close
// frame and left the client waiting for its deadline.
func TestErrorMessageAsCloseReason(t *testing.T) {
	cases := []struct {
		name, msg, want string
	}{
		{"long, cut on a rune boundary", strings.Repeat("é", 100), strings.Repeat("é", 61)},
		{"short, invalid UTF-8", "bad blob \xff\xfe", "bad blob \uFFFD"},
		{"long, invalid UTF-8 at the cut", strings.Repeat("a", 121) + "\xff" + "bbb", strings.Repeat("a", 121)},
		{"exactly 123 bytes", strings.Repeat("z", 123), strings.Repeat("z", 123)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan wsrpc.CloseInfo, 1)
			h := wsrpc.NewBidiHandler("/t/Reason", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
				return wsrpc.Errorf(wsrpc.CodeAborted, "%s", tc.msg)
			}, wsrpc.WithOnClose(func(_ context.Context, _ *wsrpc.ConnInfo, ci wsrpc.CloseInfo) { closed <- ci }))
			srv := newServer(t, h)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](http.DefaultClient, srv, "/t/Reason").Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.Receive()
			var e *wsrpc.Error
			if !errors.As(err, &e) || e.Code() != wsrpc.CodeAborted {
				t.Fatalf("Receive: %v, want aborted", err)
			}
			if e.Message() != tc.want || len(e.Message()) > 123 || !utf8.ValidString(e.Message()) {
				t.Fatalf("reason %q (%d bytes), want %q", e.Message(), len(e.Message()), tc.want)
			}
			select {
			case ci := <-closed:
				if ci.Code != wsrpc.CodeAborted.CloseCode() || ci.Reason != tc.want {
					t.Fatalf("OnClose: %d %q, want %d %q", ci.Code, ci.Reason, wsrpc.CodeAborted.CloseCode(), tc.want)
				}
			case <-ctx.Done():
				t.Fatal("no OnClose")
			}
		})
	}
}

// TestCodeOutsideTableIsUnknown guards the codes outside the table (0
// included) on the wire: a WebSocket closes with 4002 (unknown) for
// them, and a refusal before the upgrade and an SSE error event must say
// unknown too. The refusal carried Wsrpc-Code: code_99, which no client
// parses, so it read the status instead: 500, internal.
func TestCodeOutsideTableIsUnknown(t *testing.T) {
	for _, odd := range []wsrpc.Code{0, 99} {
		t.Run(fmt.Sprintf("code_%d", uint32(odd)), func(t *testing.T) {
			refuse := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					if hs.Request.Header.Get("X-Refuse") != "" {
						return ctx, wsrpc.Errorf(odd, "odd refusal")
					}
					return next(ctx, hs)
				}
			})
			mux := http.NewServeMux()
			mux.Handle("/ws", wsrpc.NewBidiHandler("/t/Odd", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
				return wsrpc.Errorf(odd, "odd failure")
			}, wsrpc.WithInterceptors(refuse)))
			mux.Handle("/sse", wsrpc.NewSSEHandler("/t/Odd", func(ctx context.Context, req *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
				return wsrpc.Errorf(odd, "odd failure")
			}, wsrpc.WithInterceptors(refuse)))
			base := newServer(t, mux)
			ctx := testContext(t)
			setRefuse := wsrpc.WithInterceptors(wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					hs.Request.Header.Set("X-Refuse", "1")
					return next(ctx, hs)
				}
			}))
			get := func(path string, hdr map[string]string) (*http.Response, string) {
				t.Helper()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp, string(body)
			}
			wantUnknown := func(what string, err error) {
				t.Helper()
				if c := wsrpc.CodeOf(err); c != wsrpc.CodeUnknown {
					t.Errorf("%s: %v (code %v), want unknown", what, err, c)
				}
			}

			st, err := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/ws", "/t/Odd").Call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Receive()
			st.Close()
			wantUnknown("WebSocket after the upgrade", err)
			_, err = wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base+"/ws", "/t/Odd", setRefuse).Call(ctx)
			wantUnknown("WebSocket refused", err)
			resp, _ := get("/ws", map[string]string{"X-Refuse": "1", "Connection": "Upgrade", "Upgrade": "websocket",
				"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "wsrpc.json"})
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get(wsrpc.CodeHeader) != "unknown" {
				t.Errorf("WebSocket refusal: %d with %s %q, want 500 unknown", resp.StatusCode, wsrpc.CodeHeader, resp.Header.Get(wsrpc.CodeHeader))
			}

			sst, err := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/sse", "/t/Odd").Call(ctx, &testingv1.WatchRequest{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sst.Receive()
			sst.Close()
			wantUnknown("SSE error event", err)
			_, err = wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/sse", "/t/Odd", setRefuse).Call(ctx, &testingv1.WatchRequest{})
			wantUnknown("SSE refused", err)
			resp, _ = get("/sse", map[string]string{"X-Refuse": "1"})
			if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get(wsrpc.CodeHeader) != "unknown" {
				t.Errorf("SSE refusal: %d with %s %q, want 500 unknown", resp.StatusCode, wsrpc.CodeHeader, resp.Header.Get(wsrpc.CodeHeader))
			}
			if _, body := get("/sse", nil); !strings.Contains(body, "event: "+wsrpc.SSEEventError+"\ndata: {\"code\":\"unknown\"") {
				t.Errorf("SSE stream %q, want a %s event with code unknown", body, wsrpc.SSEEventError)
			}
		})
	}
}
