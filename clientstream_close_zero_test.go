package wsrpc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// TestClientStreamCloseZeroReportsWhatClientReads: a client-streaming
// handler's Close(0, reason) closed normally (1000), which its client
// reads as internal ("the server closed without a response": only a
// response ends such a call cleanly), while the stream interceptors got
// nil and OnClose 1000 without an error — metrics counted an OK call
// whose client failed. It ends the call with internal (4013), the
// reason given or one saying the handler closed without a response, and
// the client, the interceptors and OnClose all report that.
func TestClientStreamCloseZeroReportsWhatClientReads(t *testing.T) {
	for _, reason := range []string{"bye", ""} {
		t.Run("reason "+reason, func(t *testing.T) {
			opts, seen, closed := recordEnds(2)
			h := wsrpc.NewClientStreamHandler("/f1b.v1/Sum", func(ctx context.Context, s *wsrpc.ClientStream[testingv1.SumRequest]) (*testingv1.SumResponse, error) {
				_ = s.Close(0, reason)
				return nil, nil
			}, opts...)
			base := newServer(t, h)
			client := wsrpc.NewClientStreamClient[testingv1.SumRequest, testingv1.SumResponse](nil, base, "/f1b.v1/Sum")
			st, err := client.Call(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			_, cerr := st.CloseAndReceive()
			want := reason
			if want == "" {
				want = "/f1b.v1/Sum: the handler closed the call without a response"
			}
			out := waitSeen(t, seen, "the stream interceptor never returned").err
			if wsrpc.CodeOf(out) != wsrpc.CodeInternal || !strings.Contains(out.Error(), want) {
				t.Errorf("interceptor saw %v, want internal %q, what the client got", out, want)
			}
			ci := waitSeen(t, closed, "OnClose never ran").ci
			if ci.Code != wsrpc.CodeInternal.CloseCode() || ci.Reason != want || wsrpc.CodeOf(ci.Err) != wsrpc.CodeInternal {
				t.Errorf("OnClose = %d %q %v, want %d %q internal", ci.Code, ci.Reason, ci.Err, wsrpc.CodeInternal.CloseCode(), want)
			}
			if ci.Code == websocket.StatusNormalClosure {
				t.Errorf("OnClose reports a normal closure for a call its client read as internal")
			}
			wantCode(t, cerr, wsrpc.CodeInternal, want)
		})
	}
}
