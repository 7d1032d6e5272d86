package wsrpc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// kvCodec is a text codec that breaks codec.Codec's contract: an Echo
// message without text encodes as nothing ("text=<v>" otherwise).
type kvCodec struct{}

func (kvCodec) Name() string                              { return "kv" }
func (kvCodec) Binary() bool                              { return false }
func (k kvCodec) Marshal(m proto.Message) ([]byte, error) { return k.MarshalAppend(nil, m) }
func (kvCodec) MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	var text string
	switch x := m.(type) {
	case *testingv1.EchoRequest:
		text = x.GetText()
	case *testingv1.EchoResponse:
		text = x.GetText()
	}
	if text != "" {
		dst = append(dst, "text="+text...)
	}
	return dst, nil
}

func (kvCodec) Unmarshal(data []byte, m proto.Message) error {
	proto.Reset(m)
	v, _ := strings.CutPrefix(string(data), "text=")
	switch x := m.(type) {
	case *testingv1.EchoRequest:
		x.Text = v
	case *testingv1.EchoResponse:
		x.Text = v
	}
	return nil
}

// TestSendRefusesEmptyTextEncoding: a text codec (Binary false) that
// encodes a message as nothing made Send write an empty text message,
// wsrpc's end-of-stream marker: the peer read io.EOF, the messages after
// it were lost, and every Send returned nil. Send refuses such an
// encoding with internal, on both sides, writing nothing, and the stream
// goes on.
func TestSendRefusesEmptyTextEncoding(t *testing.T) {
	serverEmpty := make(chan error, 1)
	got := make(chan []string, 1)
	h := wsrpc.NewBidiHandler("/f1b.v1/Echo", func(ctx context.Context, s *wsrpc.BidiStream[testingv1.EchoRequest, testingv1.EchoResponse]) error {
		serverEmpty <- s.Send(&testingv1.EchoResponse{})
		var texts []string
		for req, err := range s.All() {
			if err != nil {
				return err
			}
			texts = append(texts, req.GetText())
			if err := s.Send(&testingv1.EchoResponse{Text: req.GetText()}); err != nil {
				return err
			}
		}
		got <- texts
		return nil
	}, wsrpc.WithCodecs(kvCodec{}))
	base := newServer(t, h)
	client := wsrpc.NewBidiClient[testingv1.EchoRequest, testingv1.EchoResponse](nil, base, "/f1b.v1/Echo", wsrpc.WithCodecs(kvCodec{}))
	st, err := client.Call(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	wantInternal := func(side string, err error) {
		t.Helper()
		if wsrpc.CodeOf(err) != wsrpc.CodeInternal || !strings.Contains(err.Error(), "end-of-stream marker") || !strings.Contains(err.Error(), "kv") {
			t.Errorf("%s Send of an empty encoding = %v (%v), want internal naming the codec and the end-of-stream marker", side, err, wsrpc.CodeOf(err))
		}
	}
	wantInternal("server", next(t, serverEmpty, "the handler's first Send"))
	for _, text := range []string{"a", "", "b"} {
		err := st.Send(&testingv1.EchoRequest{Text: text})
		if text == "" {
			wantInternal("client", err)
		} else if err != nil {
			t.Fatalf("Send(%q) = %v", text, err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var echoes []string
	for res, err := range st.All() {
		if err != nil {
			t.Fatalf("client Receive = %v", err)
		}
		echoes = append(echoes, res.GetText())
	}
	if texts := next(t, got, "the handler's messages"); strings.Join(texts, ",") != "a,b" {
		t.Errorf("handler received %q, want [a b]: nothing sent for the empty encoding, nothing lost after it", texts)
	}
	if strings.Join(echoes, ",") != "a,b" {
		t.Errorf("client received %q, want [a b]", echoes)
	}
}

// emptyJSON is a JSON codec (named "json", so an SSE handler writes event
// data with it) that encodes a CountResponse without n, and a Tick
// without seq, as nothing; codec.JSON otherwise.
type emptyJSON struct{ codec.Codec }

func (emptyJSON) empty(m proto.Message) bool {
	switch x := m.(type) {
	case *testingv1.CountResponse:
		return x.GetN() == 0
	case *testingv1.Tick:
		return x.GetSeq() == 0
	}
	return false
}

func (k emptyJSON) Marshal(m proto.Message) ([]byte, error) {
	if k.empty(m) {
		return []byte{}, nil
	}
	return k.Codec.Marshal(m)
}

func (k emptyJSON) MarshalAppend(dst []byte, m proto.Message) ([]byte, error) {
	if k.empty(m) {
		return dst, nil
	}
	return k.Codec.MarshalAppend(dst, m)
}

// TestSSESendRefusesEmptyData: the SSE counterpart. An event whose data
// is empty is lost: a "message" event without data is not dispatched
// (WHATWG HTML §9.2.6), and a case event's empty data is no JSON value.
// Send refuses the encoding with internal, writing nothing, and the
// stream goes on: the client reads the events before and after.
func TestSSESendRefusesEmptyData(t *testing.T) {
	k := emptyJSON{codec.JSON}
	sendErrs := make(chan error, 2)
	mux := http.NewServeMux()
	mux.Handle("/count", wsrpc.NewSSEHandler("/f1b.v1/Count", func(ctx context.Context, _ *testingv1.CountRequest, s *wsrpc.ServerStream[testingv1.CountResponse]) error {
		if err := s.Send(&testingv1.CountResponse{N: 1}); err != nil {
			return err
		}
		sendErrs <- s.Send(&testingv1.CountResponse{})
		return s.Send(&testingv1.CountResponse{N: 2})
	}, wsrpc.WithCodecs(k)))
	mux.Handle("/watch", wsrpc.NewSSEHandler("/f1b.v1/Watch", func(ctx context.Context, _ *testingv1.WatchRequest, s *wsrpc.ServerStream[testingv1.WatchResponse]) error {
		if err := s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "a"}}); err != nil {
			return err
		}
		sendErrs <- s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Tick{Tick: &testingv1.Tick{Room: "r"}}})
		return s.Send(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "b"}})
	}, wsrpc.WithCodecs(k)))
	base := newServer(t, mux)
	ctx := testContext(t)

	wantInternal := func(err error) {
		t.Helper()
		if wsrpc.CodeOf(err) != wsrpc.CodeInternal || !strings.Contains(err.Error(), "empty data") {
			t.Errorf("Send of empty data = %v (%v), want internal saying the data is empty", err, wsrpc.CodeOf(err))
		}
	}
	t.Run("message event", func(t *testing.T) {
		c := wsrpc.NewSSEClient[testingv1.CountRequest, testingv1.CountResponse](nil, base+"/count", "/f1b.v1/Count")
		st, err := c.Call(ctx, &testingv1.CountRequest{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var ns []int32
		for res, err := range st.All() {
			if err != nil {
				t.Fatalf("Receive = %v", err)
			}
			ns = append(ns, res.GetN())
		}
		wantInternal(next(t, sendErrs, "the handler's Send"))
		if len(ns) != 2 || ns[0] != 1 || ns[1] != 2 {
			t.Errorf("client received %v, want [1 2]", ns)
		}
	})
	t.Run("case event", func(t *testing.T) {
		c := wsrpc.NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, base+"/watch", "/f1b.v1/Watch")
		st, err := c.Call(ctx, &testingv1.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var notes []string
		for res, err := range st.All() {
			if err != nil {
				t.Fatalf("Receive = %v", err)
			}
			notes = append(notes, res.GetNote())
		}
		wantInternal(next(t, sendErrs, "the handler's Send"))
		if strings.Join(notes, ",") != "a,b" {
			t.Errorf("client received %q, want [a b]", notes)
		}
	})
}
