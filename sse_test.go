package wsrpc_test

import (
	"net/url"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wsrpc/wsrpc"
	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
)

// TestSSERequestForms pins both query forms of options.proto's SSERule.
func TestSSERequestForms(t *testing.T) {
	flat := &testingv1.WatchRequest{Room: "r 1", Count: 3, Tags: []string{"a", "b"}, Fail: true, MinLevel: testingv1.Level_LEVEL_WARN, Since: -5, Token: []byte{0xff, 0xfe}}
	q, err := wsrpc.EncodeSSERequest(flat)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"room": {"r 1"}, "count": {"3"}, "tags": {"a", "b"}, "fail": {"true"}, "minLevel": {"LEVEL_WARN"}, "since": {"-5"}, "token": {"//4="}}
	if q.Encode() != want.Encode() {
		t.Fatalf("flat form %s, want %s", q.Encode(), want.Encode())
	}
	nested := &testingv1.SearchRequest{Filter: &testingv1.Filter{Query: "q"}, Limit: 2}
	q2, err := wsrpc.EncodeSSERequest(nested)
	if err != nil {
		t.Fatal(err)
	}
	if len(q2) != 1 || q2.Get("request") == "" {
		t.Fatalf("request form %v", q2)
	}
	empty, _ := wsrpc.EncodeSSERequest(&testingv1.SearchRequest{})
	if len(empty) != 0 {
		t.Fatalf("empty request gives %v", empty)
	}

	for _, tc := range []struct {
		q    url.Values
		into proto.Message
		want proto.Message
	}{
		{q, &testingv1.WatchRequest{}, flat},
		{q2, &testingv1.SearchRequest{}, nested},
		{url.Values{"request": {`{"room":"x","count":2}`}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{Room: "x", Count: 2}},
		{url.Values{"token": {"_-8"}, "minLevel": {"2"}, "other": {"ignored"}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{Token: []byte{0xff, 0xef}, MinLevel: testingv1.Level_LEVEL_WARN}},
		{url.Values{"min_level": {"LEVEL_INFO"}}, &testingv1.WatchRequest{}, &testingv1.WatchRequest{}},
		{url.Values{}, &testingv1.SearchRequest{}, &testingv1.SearchRequest{}},
	} {
		if err := wsrpc.DecodeSSERequest(tc.q, tc.into); err != nil {
			t.Fatalf("%v: %v", tc.q, err)
		}
		if !proto.Equal(tc.into, tc.want) {
			t.Fatalf("%v decoded to %v, want %v", tc.q, tc.into, tc.want)
		}
	}
	for _, bad := range []url.Values{
		{"count": {"1.5"}}, {"room": {"a", "b"}}, {"fail": {"1"}}, {"request": {"{}"}, "count": {"1"}},
		{"request": {"{}", "{}"}}, {"minLevel": {"LEVEL_NOPE"}}, {"request": {`{"filter":3}`}},
	} {
		var into proto.Message = &testingv1.WatchRequest{}
		if bad.Has("request") && bad.Get("request") != "{}" {
			into = &testingv1.SearchRequest{}
		}
		if err := wsrpc.DecodeSSERequest(bad, into); wsrpc.CodeOf(err) != wsrpc.CodeInvalidArgument {
			t.Errorf("%v: error %v, want invalid_argument", bad, err)
		}
	}
}

// TestSSEEventShapes pins event types and data for oneof and plain
// responses, and refuses a oneof response with no case.
func TestSSEEventShapes(t *testing.T) {
	ev, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Level{Level: 7}}, "id-1")
	if err != nil || ev.Type != "level" || ev.Data != `"7"` || ev.ID != "id-1" {
		t.Fatalf("scalar case: %+v %v", ev, err)
	}
	ev, err = wsrpc.NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_UserJoined{UserJoined: &testingv1.Joined{}}}, "")
	if err != nil || ev.Type != "user_joined" || ev.Data != `{}` {
		t.Fatalf("empty message case: %+v %v", ev, err)
	}
	ev, err = wsrpc.NewSSEEvent(&testingv1.SearchResponse{Rank: 1}, "")
	if err != nil || ev.Type != "" || compactJSON(t, ev.Data) != `{"rank":1}` {
		t.Fatalf("plain message: %+v %v", ev, err)
	}
	if _, err := wsrpc.NewSSEEvent(&testingv1.WatchResponse{}, ""); wsrpc.CodeOf(err) != wsrpc.CodeInternal {
		t.Fatalf("no case: %v", err)
	}
}
