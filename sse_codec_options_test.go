package wsrpc

// The JSON codec given to WithCodecs, with its codec.JSONOptions, is the
// one the SSE transport reads and writes with, on the handler and on the
// typed client, as the WebSocket transport does for wsrpc.json.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
	"github.com/wsrpc/wsrpc/runtime/sse"
	"github.com/wsrpc/wsrpc/runtime/websocket"
)

// sseGet makes an SSE request to url and returns the response, the body
// still to read; the call ends with t.
func sseGet(t *testing.T, url string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestSSERejectUnknownRequest: a handler whose JSON codec has
// RejectUnknown refuses a request-form request with a field its schema
// lacks, invalid_argument, on SSE (400 with Wsrpc-Code) as on WebSocket
// (close code 4003). The SSE transport read it with codec.JSON's
// defaults, dropped the field and ran the handler.
func TestSSERejectUnknownRequest(t *testing.T) {
	opts := []Option{WithCodecs(codec.Proto, codec.NewJSON(&codec.JSONOptions{RejectUnknown: true}))}
	ran := make(chan *testingv1.SearchRequest, 4)
	fn := func(ctx context.Context, req *testingv1.SearchRequest, s *ServerStream[testingv1.SearchResponse]) error {
		ran <- req
		return nil
	}
	sseSrv := httptest.NewServer(NewSSEHandler("/t/S", fn, opts...))
	defer sseSrv.Close()
	wsSrv := httptest.NewServer(NewServerStreamHandler("/t/S", fn, opts...))
	defer wsSrv.Close()
	const unknown = `{"unknown":1}`

	t.Run("sse", func(t *testing.T) {
		resp := sseGet(t, sseSrv.URL+"/t/S?"+url.Values{SSERequestParam: {unknown}}.Encode())
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(CodeHeader) != CodeInvalidArgument.String() {
			t.Fatalf("status %d, %s %q, body %q; want 400, invalid_argument", resp.StatusCode, CodeHeader, resp.Header.Get(CodeHeader), body)
		}
		// A known field is still read.
		resp = sseGet(t, sseSrv.URL+"/t/S?"+url.Values{SSERequestParam: {`{"limit":3}`}}.Encode())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("known field: status %d", resp.StatusCode)
		}
		if req := <-ran; req.GetLimit() != 3 {
			t.Fatalf("handler got %v, want limit 3", req)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(wsSrv.URL, "http")+"/t/S", &websocket.DialOptions{Subprotocols: []string{codec.SubprotocolJSON}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte(unknown)); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Read(ctx)
		if got := websocket.CloseStatus(err); got != CodeInvalidArgument.CloseCode() {
			t.Fatalf("read: %v (close status %d), want %d", err, got, CodeInvalidArgument.CloseCode())
		}
	})
	select {
	case req := <-ran:
		t.Fatalf("the handler ran with %v", req)
	default:
	}
}

// TestSSEEventDataUsesHandlerJSONOptions: a handler's events carry its
// JSON codec's output: UseProtoNames and EmitUnpopulated in a whole
// message and a message case, UseEnumNumbers (with UseProtoNames) in a
// scalar case; and ServerStream.Codec is that codec. They were written
// with codec.JSON's defaults whatever the options.
func TestSSEEventDataUsesHandlerJSONOptions(t *testing.T) {
	jk := codec.NewJSON(&codec.JSONOptions{UseProtoNames: true, EmitUnpopulated: true, UseEnumNumbers: true})
	resp := dynMsg("Resp")
	resp.Set(resp.Descriptor().Fields().ByName("e_enum"), protoreflect.ValueOfEnum(1))
	sent := []proto.Message{
		&testingv1.Small{Room: "r"},
		&testingv1.WatchResponse{Event: &testingv1.WatchResponse_UserJoined{UserJoined: &testingv1.Joined{}}},
		resp,
	}
	sameCodec := make(chan bool, 1)
	h := NewSSEHandler("/t/S", func(ctx context.Context, req *testingv1.SearchRequest, s *ServerStream[testingv1.SearchResponse]) error {
		sameCodec <- s.Codec() == jk
		for _, m := range sent {
			if err := s.Conn().Send(m); err != nil {
				return err
			}
		}
		return nil
	}, WithCodecs(codec.Proto, jk))
	srv := httptest.NewServer(h)
	defer srv.Close()
	r := sseGet(t, srv.URL+"/t/S")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.StatusCode)
	}
	p := sse.NewParser(r.Body, nil)
	var evs []sse.Event
	for {
		ev, err := p.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", len(evs), err)
		}
		if ev.Type == SSEEventEnd || ev.Type == SSEEventError {
			break
		}
		evs = append(evs, ev)
	}
	if len(evs) != len(sent) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(sent), evs)
	}
	if !<-sameCodec {
		t.Error("ServerStream.Codec is not the handler's JSON codec")
	}
	var whole map[string]json.RawMessage
	if err := json.Unmarshal([]byte(evs[0].Data), &whole); err != nil {
		t.Fatal(err)
	}
	if string(whole["room"]) != `"r"` || string(whole["user"]) != `""` || string(whole["sent_at"]) != "null" || whole["sentAt"] != nil {
		t.Errorf("whole message: data %s, want proto names and unpopulated fields", evs[0].Data)
	}
	// protojson's spacing varies between builds on purpose.
	var joined bytes.Buffer
	_ = json.Compact(&joined, []byte(evs[1].Data))
	if evs[1].Type != "user_joined" || joined.String() != `{"user":""}` {
		t.Errorf("message case: event %q %s, want user_joined {\"user\":\"\"}", evs[1].Type, evs[1].Data)
	}
	if evs[2].Type != "e_enum" || evs[2].Data != "1" {
		t.Errorf("scalar case: event %q %s, want e_enum 1", evs[2].Type, evs[2].Data)
	}
	// What the handler sent is what a reader with the defaults decodes.
	for i, ev := range evs {
		got := sent[i].ProtoReflect().New().Interface()
		if ok, err := decodeSSEEvent(ev, got); !ok || err != nil || !proto.Equal(got, sent[i]) {
			t.Errorf("event %q %s decoded to %v (ok %v, err %v), want %v", ev.Type, ev.Data, got, ok, err, sent[i])
		}
	}
}

// TestSSEClientUsesJSONOptions: a typed SSE client whose JSON codec has
// RejectUnknown refuses event data with a field its schema lacks
// (invalid_argument), as its WebSocket calls refuse such a message, while
// a client with the defaults drops the field. It decoded with codec.JSON's
// defaults whatever the options.
func TestSSEClientUsesJSONOptions(t *testing.T) {
	// A later schema's response: its events carry "seq", which
	// WatchResponse lacks.
	h := NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *ServerStream[testingv1.WatchResponseWithSeq]) error {
		return s.Send(&testingv1.WatchResponseWithSeq{Event: &testingv1.WatchResponseWithSeq_Note{Note: "x"}, Seq: 5})
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(opts ...Option) (*testingv1.WatchResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, srv.URL+"/t/W", "/t/W", opts...)
		st, err := c.Call(ctx, &testingv1.WatchRequest{})
		if err != nil {
			return nil, err
		}
		defer st.Close()
		return st.Receive()
	}
	if m, err := call(); err != nil || m.GetNote() != "x" {
		t.Fatalf("default client: %v, %v; want note x", m, err)
	}
	m, err := call(WithCodecs(codec.NewJSON(&codec.JSONOptions{RejectUnknown: true})))
	if CodeOf(err) != CodeInvalidArgument {
		t.Fatalf("RejectUnknown client: %v, %v; want invalid_argument", m, err)
	}
}
