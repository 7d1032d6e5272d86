package wsrpc_test

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestSSERequestKeepsNegativeZero: an SSE handler gets exactly the request
// the client sent, -0 in an implicit-presence double or float included
// (proto.Equal to it), in the flat form, the request form and from the
// typed client. Receive copied the decoded request with proto.Merge,
// which skips ±0 in such fields while Marshal and Equal count -0 as set,
// so the handler got +0 where the query said -0.
func TestSSERequestKeepsNegativeZero(t *testing.T) {
	negz := math.Copysign(0, -1)
	want := &testingv1.AllTypes{FDouble: negz, FFloat: float32(negz)}
	seen := make(chan *testingv1.AllTypes, 1)
	h := wsrpc.NewSSEHandler("/t/NegZero", func(ctx context.Context, req *testingv1.AllTypes, s *wsrpc.ServerStream[testingv1.AllTypes]) error {
		seen <- req
		return s.Send(req)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	check := func(t *testing.T) {
		t.Helper()
		select {
		case req := <-seen:
			if !math.Signbit(req.GetFDouble()) || !math.Signbit(float64(req.GetFFloat())) || !proto.Equal(req, want) {
				t.Errorf("handler got fDouble %v (sign bit %v), fFloat %v (sign bit %v); want -0 in both",
					req.GetFDouble(), math.Signbit(req.GetFDouble()), req.GetFFloat(), math.Signbit(float64(req.GetFFloat())))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the handler did not run")
		}
	}
	for _, tc := range []struct{ name, query string }{
		{"flat", url.Values{"fDouble": {"-0"}, "fFloat": {"-0"}}.Encode()},
		{"request form", url.Values{wsrpc.SSERequestParam: {`{"fDouble":-0,"fFloat":-0}`}}.Encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/t/NegZero?"+tc.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			check(t)
			_, _ = io.Copy(io.Discard, resp.Body)
		})
	}
	t.Run("typed client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := wsrpc.NewSSEClient[testingv1.AllTypes, testingv1.AllTypes](nil, srv.URL+"/t/NegZero", "/t/NegZero")
		st, err := c.Call(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		check(t)
		n := 0
		for m, err := range st.All() {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if !proto.Equal(m, want) {
				t.Errorf("event decoded to %v, want the request echoed", m)
			}
		}
		if n != 1 {
			t.Errorf("%d events, want 1", n)
		}
	})
}
