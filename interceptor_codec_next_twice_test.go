package wsrpc_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestInterceptorNextTwiceCodecFollowsConnection guards a client
// handshake interceptor that calls next again after a success, to a
// server whose answer selects another codec than the first's, or none:
// the call kept the first connection's codec, so it encoded its messages
// for a codec the connection in use had not negotiated (when the second
// next was given a Handshake of its own, which the dial filled in, not
// the one the call read the codec from), or ran on a connection that
// selected no offered codec at all. The codec now follows the connection
// the call runs on, and a connection that selected none fails the call.
func TestInterceptorNextTwiceCodecFollowsConnection(t *testing.T) {
	jsonURL := newServer(t, wsrpc.NewBidiHandler("/t/Echo", echoHandler, wsrpc.WithCodecs(codec.JSON)))
	protoURL := newServer(t, wsrpc.NewBidiHandler("/t/Echo", echoHandler, wsrpc.WithCodecs(codec.Proto)))
	// A plain WebSocket server that selects no subprotocol.
	plainURL := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	for _, tc := range []struct {
		name   string
		second string // the server the second next dials
		own    bool   // the second next gets a Handshake of its own
		want   codec.Codec
	}{
		{"other codec, own Handshake", protoURL, true, codec.Proto},
		{"other codec, same Handshake", protoURL, false, codec.Proto},
		{"no codec, own Handshake", plainURL, true, nil},
		{"no codec, same Handshake", plainURL, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second, err := url.Parse(tc.second + "/t/Echo")
			if err != nil {
				t.Fatal(err)
			}
			var got codec.Codec // what the second next left in its Handshake
			again := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
				return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
					if _, err := next(ctx, hs); err != nil {
						return ctx, err
					}
					h := hs
					if tc.own {
						h = &wsrpc.Handshake{Spec: hs.Spec, Request: hs.Request.Clone(ctx)}
					}
					h.Request.URL = second
					h.Request.Host = second.Host
					sctx, err := next(ctx, h)
					got = h.Codec
					return sctx, err
				}
			})
			c := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, jsonURL, "/t/Echo",
				wsrpc.WithCodecs(codec.JSON, codec.Proto), wsrpc.WithInterceptors(again))
			st, err := c.Call(testContext(t))
			if tc.want == nil {
				if err == nil {
					st.Close()
					t.Fatal("Call: a connection that selected no offered codec was taken")
				}
				wantCode(t, err, wsrpc.CodeInternal, "")
				if !strings.Contains(err.Error(), "no offered codec") {
					t.Fatalf("Call: %v; want it to say no offered codec was selected", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Codec().Name() != tc.want.Name() || got == nil || got.Name() != tc.want.Name() {
				gotName := "none"
				if got != nil {
					gotName = got.Name()
				}
				t.Fatalf("stream's codec %s, Handshake's %s; want %s, the second connection's", st.Codec().Name(), gotName, tc.want.Name())
			}
			if err := st.Send(&testingv1.EchoRequest{Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			if res, err := st.Receive(); err != nil || res.GetText() != "hi" {
				t.Fatalf("Receive: %v, %v", res, err)
			}
		})
	}
}
