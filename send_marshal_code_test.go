package wsrpc_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// badUTF8 is no UTF-8, which a proto3 string field must hold: the proto
// and JSON codecs refuse to marshal a message holding it.
const badUTF8 = "a\xffb"

// recordingEcho records the texts its Echo receives; with badResponse it
// answers the first with a message that cannot be marshalled and reports
// Send's error on sendErr.
type recordingEcho struct {
	testingv1wsrpc.UnimplementedStreamServiceHandler
	badResponse bool
	sendErr     chan error

	mu   sync.Mutex
	got  []string
	done chan struct{} // closed when Echo returns
}

func (h *recordingEcho) Echo(_ context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
	defer close(h.done)
	for {
		req, err := s.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.got = append(h.got, req.GetText())
		h.mu.Unlock()
		if h.badResponse {
			err := s.Send(&testingv1.EchoResponse{Text: badUTF8})
			h.sendErr <- err
			return err
		}
		if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
			return err
		}
	}
}

// TestSendMarshalErrorCode: a message the codec cannot marshal is the
// caller's mistake on a client, so a typed WebSocket client's Send fails
// with invalid_argument, as the same message does over SSE, and sends
// nothing: the call goes on. A handler's response that cannot be
// marshalled is the server's fault: internal. The client's Send used to
// say internal too.
func TestSendMarshalErrorCode(t *testing.T) {
	for _, c := range []codec.Codec{codec.Proto, codec.JSON} {
		t.Run(c.Name()+"/client", func(t *testing.T) {
			h := &recordingEcho{done: make(chan struct{})}
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h))
			base := newServer(t, mux)
			ctx := testContext(t)
			client := testingv1wsrpc.NewStreamServiceClient(http.DefaultClient, base, wsrpc.WithCodecs(c))
			s, err := client.Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Send(&testingv1.EchoRequest{Text: badUTF8})
			wantCode(t, err, wsrpc.CodeInvalidArgument, "")
			if !errors.Is(err, codec.ErrMarshal) {
				t.Errorf("error %v does not wrap codec.ErrMarshal", err)
			}
			// The call goes on; the server sees the good message alone.
			if err := s.Send(&testingv1.EchoRequest{Text: "ok"}); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			res, err := s.Receive()
			if err != nil || res.GetText() != "ok" {
				t.Fatalf("Receive = %v, %v, want the echo of \"ok\"", res, err)
			}
			if _, err := s.Receive(); !errors.Is(err, io.EOF) {
				t.Fatalf("Receive after the echo = %v, want io.EOF", err)
			}
			select {
			case <-h.done:
			case <-time.After(10 * time.Second):
				t.Fatal("handler did not return")
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.got) != 1 || h.got[0] != "ok" {
				t.Fatalf("server received %q, want only \"ok\"", h.got)
			}
		})
		t.Run(c.Name()+"/server", func(t *testing.T) {
			h := &recordingEcho{badResponse: true, sendErr: make(chan error, 1), done: make(chan struct{})}
			mux := http.NewServeMux()
			mux.Handle(testingv1wsrpc.NewStreamServiceHandler(h))
			base := newServer(t, mux)
			ctx := testContext(t)
			client := testingv1wsrpc.NewStreamServiceClient(http.DefaultClient, base, wsrpc.WithCodecs(c))
			s, err := client.Echo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Send(&testingv1.EchoRequest{Text: "ok"}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-h.sendErr:
				wantCode(t, err, wsrpc.CodeInternal, "")
			case <-time.After(10 * time.Second):
				t.Fatal("handler did not send")
			}
			// The handler returned that error: the client is told internal.
			if _, err := s.Receive(); wsrpc.CodeOf(err) != wsrpc.CodeInternal {
				t.Fatalf("client Receive = %v, want internal", err)
			}
		})
	}
}
