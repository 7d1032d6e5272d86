package wsrpc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1/testingv1wsrpc"
)

// TestHandlerCtxEndsWhenReceiveReadsTheEnd: docs/protocol.md §3.5 says a
// client's 4001 cancels the call ("the handler's context ends"), and
// codegen.md has a bidirectional handler that waits on its context keep a
// Receive pending on another goroutine. When that Receive read the end
// (the client's 4001, 4004, 1001 or 1000, a lost connection, a frame the
// runtime refused) it returned it, but the context lived on: the
// goroutine waiting on ctx waited for good, and the session with it.
// Before the fix every case timed out on ctx.
func TestHandlerCtxEndsWhenReceiveReadsTheEnd(t *testing.T) {
	closeFrame := func(code uint16) (byte, []byte) {
		return 0x8, binary.BigEndian.AppendUint16(nil, code)
	}
	for _, tc := range []struct {
		name    string
		frame   func() (byte, []byte) // nil: the client drops TCP
		recvErr wsrpc.Code            // 0: io.EOF
	}{
		{"4001 cancel", func() (byte, []byte) { return closeFrame(4001) }, wsrpc.CodeCanceled},
		{"4004 deadline", func() (byte, []byte) { return closeFrame(4004) }, wsrpc.CodeDeadlineExceeded},
		{"1001 leaving", func() (byte, []byte) { return closeFrame(1001) }, wsrpc.CodeCanceled},
		{"1000 normal", func() (byte, []byte) { return closeFrame(1000) }, 0},
		{"invalid UTF-8", func() (byte, []byte) { return 0x1, []byte("\"\xff\"") }, wsrpc.CodeInvalidArgument},
		{"TCP dropped", nil, wsrpc.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			received := make(chan error, 1)
			ended := make(chan error, 1)
			h := wsrpc.NewBidiHandler(testingv1wsrpc.StreamServiceEchoProcedure,
				func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
					go func() {
						_, err := s.Receive()
						received <- err
					}()
					select {
					case <-ctx.Done():
						ended <- ctx.Err()
						return ctx.Err()
					case <-time.After(10 * time.Second): // a bound for the hang
						ended <- nil
						return nil
					}
				})
			raw, status := dialRaw(t, strings.TrimPrefix(newServer(t, h), "http://"), "/", "Connection: Upgrade\r\nUpgrade: websocket\r\n"+wsHeaders)
			if !strings.Contains(status, " 101 ") {
				t.Fatalf("handshake: %s", status)
			}
			if tc.frame == nil {
				raw.nc.Close()
			} else if op, p := tc.frame(); raw.send(op, p) != nil {
				t.Fatal("send failed")
			}
			err := <-received
			if tc.recvErr == 0 {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("Receive: %v, want io.EOF", err)
				}
			} else if wsrpc.CodeOf(err) != tc.recvErr {
				t.Fatalf("Receive: %v (code %v), want %v", err, wsrpc.CodeOf(err), tc.recvErr)
			}
			if err := <-ended; !errors.Is(err, context.Canceled) {
				t.Fatalf("the handler's ctx after Receive returned the end: %v, want context.Canceled", err)
			}
		})
	}
}
