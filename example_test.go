package wsrpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// Generated code calls these constructors; they work by hand too.
func ExampleNewBidiHandler() {
	echo := wsrpc.NewBidiHandler("/echo.v1.EchoService/Echo",
		func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			for req, err := range s.All() {
				if err != nil {
					return err
				}
				if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
					return err
				}
			}
			return nil // closes with 1000: the client's Receive returns io.EOF
		})
	srv := httptest.NewServer(echo)
	defer srv.Close()

	client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](
		http.DefaultClient, srv.URL, "/echo.v1.EchoService/Echo", wsrpc.WithPreferredCodec(codec.JSON))
	stream, err := client.Call(context.Background())
	if err != nil {
		panic(err)
	}
	defer stream.Close()
	_ = stream.Send(&testingv1.EchoRequest{Text: "hello"})
	_ = stream.CloseSend()
	for res, err := range stream.All() {
		if err != nil {
			panic(err)
		}
		fmt.Println(stream.Codec().Name(), res.GetText())
	}
	// Output: json hello
}

// A handler fails a stream with a code; the client gets it back.
func ExampleErrorf() {
	err := wsrpc.Errorf(wsrpc.CodeNotFound, "room %q not found", "lobby")
	fmt.Println(err)
	fmt.Println(wsrpc.CodeOf(err), int(wsrpc.CodeOf(err).CloseCode()), wsrpc.CodeOf(err).HTTPStatus())
	// Output:
	// wsrpc: not_found: room "lobby" not found
	// not_found 4005 404
}

// callerKey carries the authenticated caller in a handler's context.
type callerKey struct{}

// Authentication is a handshake interceptor on each side. The server's
// runs before the upgrade: it checks the token and puts the caller in the
// context the handler runs with, or refuses the call (unauthenticated is
// HTTP 401 there, and no connection is upgraded). A browser cannot set
// Authorization on a WebSocket or an EventSource, so it also accepts the
// token as a query parameter (in a cookie works too). The client's sets
// the header on every handshake.
func ExampleWithInterceptors() {
	tokens := map[string]string{"s3cret": "ada"}
	authenticate := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			token, ok := strings.CutPrefix(hs.Request.Header.Get("Authorization"), "Bearer ")
			if !ok {
				token = hs.Request.URL.Query().Get("access_token") // browsers
			}
			caller, known := tokens[token]
			if !known {
				return ctx, wsrpc.Errorf(wsrpc.CodeUnauthenticated, "unknown or missing token")
			}
			return next(context.WithValue(ctx, callerKey{}, caller), hs)
		}
	})
	greet := wsrpc.NewBidiHandler("/greet.v1.GreetService/Chat",
		func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
			caller := ctx.Value(callerKey{}).(string)
			return s.Send(&testingv1.EchoResponse{Text: "hello " + caller})
		}, wsrpc.WithInterceptors(authenticate))
	srv := httptest.NewServer(greet)
	defer srv.Close()

	bearer := wsrpc.HandshakeInterceptorFunc(func(next wsrpc.HandshakeFunc) wsrpc.HandshakeFunc {
		return func(ctx context.Context, hs *wsrpc.Handshake) (context.Context, error) {
			hs.Request.Header.Set("Authorization", "Bearer s3cret")
			return next(ctx, hs)
		}
	})
	client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](
		http.DefaultClient, srv.URL, "/greet.v1.GreetService/Chat", wsrpc.WithInterceptors(bearer))
	stream, err := client.Call(context.Background())
	if err != nil {
		panic(err)
	}
	defer stream.Close()
	res, err := stream.Receive()
	if err != nil {
		panic(err)
	}
	fmt.Println(res.GetText())

	anonymous := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](
		http.DefaultClient, srv.URL, "/greet.v1.GreetService/Chat")
	_, err = anonymous.Call(context.Background())
	fmt.Println(wsrpc.CodeOf(err))
	// Output:
	// hello ada
	// unauthenticated
}
