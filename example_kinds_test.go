package wsrpc_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// A server-streaming method served as Server-Sent Events: the request
// travels in the query (?count=3), each response is an event, and the
// handler's return ends the stream (the client's loop ends with it).
func ExampleNewSSEHandler() {
	count := wsrpc.NewSSEHandler("/count.v1.CountService/Count",
		func(ctx context.Context, req *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
			for n := int32(1); n <= req.GetCount(); n++ {
				if err := s.Send(&testingv1.CountResponse{N: n}); err != nil {
					return err
				}
			}
			return nil // a "wsrpc.end" event: the client's stream ends with io.EOF
		})
	srv := httptest.NewServer(count)
	defer srv.Close()

	client := wsrpc.NewSSEClient[testingv1.CountRequest, testingv1.CountResponse](
		http.DefaultClient, srv.URL, "/count.v1.CountService/Count")
	stream, err := client.Call(context.Background(), &testingv1.CountRequest{Count: 3})
	if err != nil {
		log.Fatal(err)
	}
	for res, err := range stream.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.GetN())
	}
	// Output:
	// 1
	// 2
	// 3
}

// A client-streaming method (an upload): the handler receives until
// io.EOF, the end-of-stream marker that CloseAndReceive sends, and
// returns the one response, which CloseAndReceive returns.
func ExampleNewClientStreamHandler() {
	sum := wsrpc.NewClientStreamHandler("/sum.v1.SumService/Sum",
		func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
			res := &testingv1.SumResponse{}
			for req, err := range s.All() { // ends at io.EOF: the whole upload came
				if err != nil {
					return nil, err // canceled if the client abandoned the upload
				}
				res.Total += req.GetN()
				res.Count++
			}
			return res, nil
		})
	srv := httptest.NewServer(sum)
	defer srv.Close()

	client := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](
		http.DefaultClient, srv.URL, "/sum.v1.SumService/Sum")
	upload, err := client.Call(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range []int64{1, 2, 3, 4} {
		if err := upload.Send(&testingv1.SumRequest{N: n}); err != nil {
			break // the server ended the call early: CloseAndReceive says how
		}
	}
	res, err := upload.CloseAndReceive() // no Close needed after it
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetTotal(), res.GetCount())
	// Output: 10 4
}
