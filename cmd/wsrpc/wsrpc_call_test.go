package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/internal/runtest"
)

// TestWSWsrpcCallEndsWithStdin: with a wsrpc subprotocol, the end of
// stdin is the end of the client's half of the call (the end-of-stream
// marker), and the command waits for the server's responses and close.
// It closed with 1000 instead, which cancelled the call: a
// client-streaming handler's Receive returned canceled and its response
// was never printed, a server stream's responses were lost, and the
// command exited 0 with nothing on stdout.
func TestWSWsrpcCallEndsWithStdin(t *testing.T) {
	received := make(chan error, 1)
	sum := wsrpc.NewClientStreamHandler("/t/Sum", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
		var total int64
		for {
			r, err := s.Receive()
			if errors.Is(err, io.EOF) {
				received <- nil
				return &testingv1.SumResponse{Total: total}, nil
			}
			if err != nil {
				received <- err
				return nil, err
			}
			total += r.GetN()
		}
	})
	count := wsrpc.NewServerStreamHandler("/t/Count", func(ctx context.Context, r *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		for i := range r.GetCount() {
			if err := s.Send(&testingv1.CountResponse{N: i + 1}); err != nil {
				return err
			}
		}
		if r.GetFailAt() != 0 {
			return wsrpc.Errorf(wsrpc.CodeFailedPrecondition, "failed at the end")
		}
		return nil
	})
	sumSrv, countSrv := httptest.NewServer(sum), httptest.NewServer(count)
	defer sumSrv.Close()
	defer countSrv.Close()
	ws := func(srv *httptest.Server, path string) string {
		return "ws" + strings.TrimPrefix(srv.URL, "http") + path
	}

	code, stdout, stderr := runWSCmd(t, strings.NewReader("{\"n\":1}\n{\"n\":2}\n"), "--subprotocol", "wsrpc.json", ws(sumSrv, "/t/Sum"))
	if err := <-received; err != nil {
		t.Errorf("Sum's Receive: %v, want io.EOF at the end of stdin", err)
	}
	if code != 0 || strings.ReplaceAll(stdout, " ", "") != "{\"total\":\"3\"}\n" {
		t.Errorf("Sum: exit %d, stdout %q (stderr %q); want 0 and the total", code, stdout, stderr)
	}

	code, stdout, stderr = runWSCmd(t, strings.NewReader("{\"count\":3}\n"), "--subprotocol", "wsrpc.json", ws(countSrv, "/t/Count"))
	if want := "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"; code != 0 || strings.ReplaceAll(stdout, " ", "") != want {
		t.Errorf("Count: exit %d, stdout %q (stderr %q); want 0 and %q", code, stdout, stderr, want)
	}

	// The exit status is how the call ended.
	code, _, stderr = runWSCmd(t, strings.NewReader("{\"count\":1,\"failAt\":1}\n"), "--subprotocol", "wsrpc.json", ws(countSrv, "/t/Count"))
	if want := "closed by server: 4009 (failed_precondition): failed at the end\n"; code != 1 || !strings.HasSuffix(stderr, want) {
		t.Errorf("failing Count: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// TestWSWsrpcCallInterrupt: a wsrpc call still running once stdin ended
// (a subscription) runs until interrupted, which closes with 1001 and
// exits 130, as before stdin ended.
func TestWSWsrpcCallInterrupt(t *testing.T) {
	sent, ended := make(chan struct{}), make(chan error, 1)
	h := wsrpc.NewServerStreamHandler("/t/Count", func(ctx context.Context, r *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		if err := s.Send(&testingv1.CountResponse{N: 1}); err != nil {
			return err
		}
		close(sent)
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut runtest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runWS(ctx, []string{"--subprotocol", "wsrpc.json", "ws" + strings.TrimPrefix(srv.URL, "http") + "/t/Count"}, strings.NewReader("{}\n"), &out, &errOut)
	}()
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler sent nothing")
	}
	select {
	case code := <-done:
		t.Fatalf("returned %d before the interrupt; stderr: %s", code, errOut.String())
	case <-time.After(50 * time.Millisecond): // no timing assertion: only gives a wrong early return its chance
	}
	cancel()
	select {
	case code := <-done:
		if code != 130 || out.String() != "{\"n\":1}\n" {
			t.Errorf("exit %d, stdout %q; want 130 and the response; stderr: %s", code, out.String(), errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not return after the interrupt")
	}
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not end")
	}
}
