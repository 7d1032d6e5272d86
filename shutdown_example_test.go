package wsrpc_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// A server that stops gracefully on SIGTERM: WebSocket clients get 1001
// (going away), SSE clients reconnect with Last-Event-ID to the next
// server, handlers get 10 s to return.
func ExampleShutdown() {
	tracker := wsrpc.NewTracker()
	mux := http.NewServeMux()
	mux.Handle(testingv1wsrpc.NewStreamServiceHandler(testingv1wsrpc.UnimplementedStreamServiceHandler{}, wsrpc.WithTracker(tracker)))
	srv := wsrpc.NewHTTPServer(mux)
	srv.Addr = "127.0.0.1:8080"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := wsrpc.Shutdown(sctx, srv, tracker); err != nil {
			log.Printf("shutdown: %v", err)
		}
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	// ListenAndServe returns as soon as Shutdown begins: wait for the
	// sessions to end before main returns.
	<-stopped
}

// A client whose bidirectional calls survive a server restart: each
// reconnection is reported, and the application sends what the new
// connection needs to resume.
func ExampleWithReconnect() {
	var stream *wsrpc.BidiStreamForClient[testingv1.EchoRequest, testingv1.EchoResponse]
	client := testingv1wsrpc.NewStreamServiceClient(http.DefaultClient, "http://127.0.0.1:8080",
		wsrpc.WithReconnect(wsrpc.ReconnectPolicy{
			MaxAttempts: 20,
			OnReconnect: func(attempt int, err error) {
				if err != nil {
					log.Printf("reconnect attempt %d: %v", attempt, err)
					return
				}
				_ = stream.Send(&testingv1.EchoRequest{Text: "resume"})
			},
		}))
	stream, err := client.Echo(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for res, err := range stream.All() {
		if err != nil {
			log.Fatal(err) // lost for good: MaxAttempts failed in a row
		}
		log.Println(res.GetText())
	}
}
