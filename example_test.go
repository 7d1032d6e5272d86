package wsrpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

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
