package wsrpc

// The SSE request and event mapping (sse.go) over a dynamic schema with
// every kind of field a flat query can carry, and the typed SSE client
// and handler around it: round trips, hostile queries and events.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/sse"
)

// ---- a dynamic schema with every kind of field a flat query can carry ----

type dynF = descriptorpb.FieldDescriptorProto

func dynField(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string) *dynF {
	f := &dynF{Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(), Label: label.Enum()}
	if typeName != "" {
		f.TypeName = proto.String(typeName)
	}
	return f
}

var dynFile = func() protoreflect.FileDescriptor {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	type k = descriptorpb.FieldDescriptorProto_Type
	scalars := []struct {
		n  string
		t  k
		tn string
	}{
		{"int32", descriptorpb.FieldDescriptorProto_TYPE_INT32, ""},
		{"int64", descriptorpb.FieldDescriptorProto_TYPE_INT64, ""},
		{"uint32", descriptorpb.FieldDescriptorProto_TYPE_UINT32, ""},
		{"uint64", descriptorpb.FieldDescriptorProto_TYPE_UINT64, ""},
		{"sint32", descriptorpb.FieldDescriptorProto_TYPE_SINT32, ""},
		{"sint64", descriptorpb.FieldDescriptorProto_TYPE_SINT64, ""},
		{"fixed32", descriptorpb.FieldDescriptorProto_TYPE_FIXED32, ""},
		{"fixed64", descriptorpb.FieldDescriptorProto_TYPE_FIXED64, ""},
		{"sfixed32", descriptorpb.FieldDescriptorProto_TYPE_SFIXED32, ""},
		{"sfixed64", descriptorpb.FieldDescriptorProto_TYPE_SFIXED64, ""},
		{"float", descriptorpb.FieldDescriptorProto_TYPE_FLOAT, ""},
		{"double", descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, ""},
		{"bool", descriptorpb.FieldDescriptorProto_TYPE_BOOL, ""},
		{"string", descriptorpb.FieldDescriptorProto_TYPE_STRING, ""},
		{"bytes", descriptorpb.FieldDescriptorProto_TYPE_BYTES, ""},
		{"enum", descriptorpb.FieldDescriptorProto_TYPE_ENUM, ".dyn.Color"},
	}
	flat := &descriptorpb.DescriptorProto{Name: proto.String("Flat")}
	var num int32 = 1
	// A real oneof of scalars (declared before the synthetic ones): still flat.
	flat.OneofDecl = append(flat.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String("choice")})
	var oneofIdx int32 = 1
	for _, s := range scalars {
		flat.Field = append(flat.Field, dynField("f_"+s.n, num, s.t, opt, s.tn))
		num++
	}
	// proto3 optional: one synthetic oneof each.
	for _, s := range scalars {
		f := dynField("o_"+s.n, num, s.t, opt, s.tn)
		f.Proto3Optional = proto.Bool(true)
		f.OneofIndex = proto.Int32(oneofIdx)
		flat.OneofDecl = append(flat.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String("_o_" + s.n)})
		oneofIdx++
		flat.Field = append(flat.Field, f)
		num++
	}
	for _, s := range scalars {
		flat.Field = append(flat.Field, dynField("r_"+s.n, num, s.t, rep, s.tn))
		num++
	}
	for _, s := range []struct {
		n string
		t k
	}{{"c_int", descriptorpb.FieldDescriptorProto_TYPE_INT32}, {"c_str", descriptorpb.FieldDescriptorProto_TYPE_STRING}} {
		f := dynField(s.n, num, s.t, opt, "")
		f.OneofIndex = proto.Int32(0)
		flat.Field = append(flat.Field, f)
		num++
	}

	withNull := &descriptorpb.DescriptorProto{Name: proto.String("WithNull"), Field: []*dynF{
		dynField("nulls", 1, descriptorpb.FieldDescriptorProto_TYPE_ENUM, rep, ".google.protobuf.NullValue"),
	}}
	reqNamed := &descriptorpb.DescriptorProto{Name: proto.String("ReqNamed"), Field: []*dynF{
		dynField("request", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
		dynField("count", 2, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
	}}
	reqNamedRep := &descriptorpb.DescriptorProto{Name: proto.String("ReqNamedRep"), Field: []*dynF{
		dynField("request", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, rep, ""),
	}}
	inner := &descriptorpb.DescriptorProto{Name: proto.String("Inner"), Field: []*dynF{
		dynField("x", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
	}}
	resp := &descriptorpb.DescriptorProto{Name: proto.String("Resp"), OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("event")}}}
	num = 1
	for _, s := range scalars {
		f := dynField("e_"+s.n, num, s.t, opt, s.tn)
		f.OneofIndex = proto.Int32(0)
		resp.Field = append(resp.Field, f)
		num++
	}
	for _, s := range []struct{ n, tn string }{
		{"m_inner", ".dyn.Inner"}, {"m_ts", ".google.protobuf.Timestamp"}, {"m_value", ".google.protobuf.Value"},
		{"m_struct", ".google.protobuf.Struct"}, {"m_empty", ".google.protobuf.Empty"}, {"m_sv", ".google.protobuf.StringValue"},
	} {
		f := dynField(s.n, num, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, opt, s.tn)
		f.OneofIndex = proto.Int32(0)
		resp.Field = append(resp.Field, f)
		num++
	}
	fn := dynField("e_null", num, descriptorpb.FieldDescriptorProto_TYPE_ENUM, opt, ".google.protobuf.NullValue")
	fn.OneofIndex = proto.Int32(0)
	resp.Field = append(resp.Field, fn)

	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("dyn/mapping.proto"),
		Package:    proto.String("dyn"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/struct.proto", "google/protobuf/timestamp.proto", "google/protobuf/empty.proto", "google/protobuf/wrappers.proto"},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Color"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("COLOR_UNSPECIFIED"), Number: proto.Int32(0)},
			{Name: proto.String("RED"), Number: proto.Int32(1)},
			{Name: proto.String("BLUE"), Number: proto.Int32(2)},
		}}},
		MessageType: []*descriptorpb.DescriptorProto{flat, withNull, reqNamed, reqNamedRep, inner, resp},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	return fd
}()

func dynMsg(name string) *dynamicpb.Message {
	return dynamicpb.NewMessage(dynFile.Messages().ByName(protoreflect.Name(name)))
}

// viaWire sends q through the query string as a client would, and parses it
// as the server does.
func viaWire(t *testing.T, q url.Values) url.Values {
	t.Helper()
	u, _ := url.Parse("http://127.0.0.1/x")
	u.RawQuery = q.Encode()
	r, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.URL.Query()
}

var oddStrings = []string{"", " ", "a b", "&=+%#?", "ünïcødé ✓ 𝄞", "line\nbreak\r\n", "\x00nul", "\"quoted\"\\", "+", "%2B", "a;b", "<>&'", "\u2028\u2029", "日本語"}

func randScalar(r *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32([]int32{0, 1, -1, math.MaxInt32, math.MinInt32, int32(r.Uint32())}[r.Intn(6)])
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64([]int64{0, 1, -1, math.MaxInt64, math.MinInt64, int64(r.Uint64())}[r.Intn(6)])
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, math.MaxUint32, r.Uint32()}[r.Intn(4)])
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64([]uint64{0, 1, math.MaxUint64, r.Uint64()}[r.Intn(4)])
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32([]float32{0, float32(math.Copysign(0, -1)), 1.1, -3.4028235e38, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.SmallestNonzeroFloat32, r.Float32()}[r.Intn(9)])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, math.Copysign(0, -1), 0.1, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64, r.NormFloat64() * 1e300}[r.Intn(9)])
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.Intn(2) == 0)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(oddStrings[r.Intn(len(oddStrings))])
	case protoreflect.BytesKind:
		b := make([]byte, r.Intn(7))
		r.Read(b)
		return protoreflect.ValueOfBytes(b)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(r.Intn(3)))
	}
	panic(fd.Kind())
}

// TestSSEFlatRoundTrip: EncodeSSERequest, the query string, then
// DecodeSSERequest gives back an equal message, for every scalar kind,
// optional (presence), repeated and a scalar oneof, over random values
// with a fixed seed.
func TestSSEFlatRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(18))
	md := dynFile.Messages().ByName("Flat")
	if !flatRequest(md) {
		t.Fatal("Flat is not flat")
	}
	fails := 0
	for i := 0; i < 400 && fails < 5; i++ {
		m := dynMsg("Flat")
		fields := md.Fields()
		for j := 0; j < fields.Len(); j++ {
			fd := fields.Get(j)
			if r.Intn(2) == 0 {
				continue
			}
			if fd.IsList() {
				l := m.Mutable(fd).List()
				for n := r.Intn(4); n > 0; n-- {
					l.Append(randScalar(r, fd))
				}
				continue
			}
			m.Set(fd, randScalar(r, fd))
		}
		q, err := EncodeSSERequest(m)
		if err != nil {
			t.Errorf("encode %v: %v", m, err)
			fails++
			continue
		}
		got := dynMsg("Flat")
		if err := DecodeSSERequest(viaWire(t, q), got); err != nil {
			t.Errorf("decode %s: %v", q.Encode(), err)
			fails++
			continue
		}
		if !proto.Equal(got, m) {
			t.Errorf("round trip of %v\n query %s\n gave %v", m, q.Encode(), got)
			fails++
		}
	}
}

// TestSSEFlatRefusesInvalidUTF8: a string parameter that is not UTF-8 is
// refused (protobuf strings are UTF-8; the request form refuses it too);
// it was silently replaced by U+FFFD.
func TestSSEFlatRefusesInvalidUTF8(t *testing.T) {
	q, err := url.ParseQuery("room=ab%FFcd")
	if err != nil {
		t.Fatal(err)
	}
	got := &testingv1.WatchRequest{}
	err = DecodeSSERequest(q, got)
	if err == nil {
		t.Errorf("flat form: ?room=ab%%FFcd decoded without error to room %q (bytes % x)", got.GetRoom(), got.GetRoom())
	}
	// The request form refuses the same bytes.
	rq := url.Values{"request": {"{\"room\":\"ab\xffcd\"}"}}
	if err := DecodeSSERequest(rq, &testingv1.WatchRequest{}); CodeOf(err) != CodeInvalidArgument {
		t.Errorf("request form: %v", err)
	}
}

// TestSSEFieldNamedRequest: in a flat request with a field whose JSON
// name is "request", the parameter is that field, so the request survives
// the round trip with another field set, or with the field repeated (both
// were refused as the request form mixed with fields, or repeated).
func TestSSEFieldNamedRequest(t *testing.T) {
	m := dynMsg("ReqNamed")
	m.Set(m.Descriptor().Fields().ByName("request"), protoreflect.ValueOfString("x"))
	m.Set(m.Descriptor().Fields().ByName("count"), protoreflect.ValueOfInt32(2))
	q, err := EncodeSSERequest(m)
	if err != nil {
		t.Fatal(err)
	}
	got := dynMsg("ReqNamed")
	if err := DecodeSSERequest(viaWire(t, q), got); err != nil || !proto.Equal(got, m) {
		t.Errorf("ReqNamed: query %s decoded to %v, %v; want %v", q.Encode(), got, err, m)
	}

	r := dynMsg("ReqNamedRep")
	l := r.Mutable(r.Descriptor().Fields().ByName("request")).List()
	l.Append(protoreflect.ValueOfString("a"))
	l.Append(protoreflect.ValueOfString("b"))
	q, err = EncodeSSERequest(r)
	if err != nil {
		t.Fatal(err)
	}
	got = dynMsg("ReqNamedRep")
	if err := DecodeSSERequest(viaWire(t, q), got); err != nil || !proto.Equal(got, r) {
		t.Errorf("ReqNamedRep: query %s decoded to %v, %v; want %v", q.Encode(), got, err, r)
	}
}

// TestSSEProtoNameParams: a flat request's parameters may use the proto
// names (snake_case) as protojson reads them; they were unknown
// parameters, ignored, so ?f_int32=7 left the field unset without a
// word. Both names for one field, or a proto name beside ?request=, or
// for a field that cannot travel flat, are invalid_argument.
func TestSSEProtoNameParams(t *testing.T) {
	got := dynMsg("Flat")
	q, _ := url.ParseQuery("f_int32=7&r_string=a&r_string=b&oBool=true")
	if err := DecodeSSERequest(q, got); err != nil {
		t.Fatal(err)
	}
	fields := got.Descriptor().Fields()
	if v := got.Get(fields.ByName("f_int32")).Int(); v != 7 {
		t.Errorf("f_int32 = %d, want 7", v)
	}
	if l := got.Get(fields.ByName("r_string")).List(); l.Len() != 2 || l.Get(1).String() != "b" {
		t.Errorf("r_string = %v, want [a b]", l)
	}
	if !got.Get(fields.ByName("o_bool")).Bool() {
		t.Error("o_bool (by its JSON name) not set")
	}
	for _, tc := range []struct{ msg, query string }{
		{"Flat", "f_int32=7&fInt32=7"},
		{"Flat", `request={"fInt32":1}&f_string=x`},
		{"Resp", "m_inner=1"},
	} {
		q, _ := url.ParseQuery(tc.query)
		if err := DecodeSSERequest(q, dynMsg(tc.msg)); CodeOf(err) != CodeInvalidArgument {
			t.Errorf("%s ?%s: %v, want invalid_argument", tc.msg, tc.query, err)
		}
	}
}

// TestSSERepeatedNullValue: protojson writes a google.protobuf.NullValue
// element as null; the flat form sends it as 0, its one value's number (it
// sent "", which DecodeSSERequest refused as not a value of the enum).
func TestSSERepeatedNullValue(t *testing.T) {
	m := dynMsg("WithNull")
	m.Mutable(m.Descriptor().Fields().ByName("nulls")).List().Append(protoreflect.ValueOfEnum(0))
	q, err := EncodeSSERequest(m)
	if err != nil {
		t.Fatal(err)
	}
	got := dynMsg("WithNull")
	if err := DecodeSSERequest(viaWire(t, q), got); err != nil || !proto.Equal(got, m) {
		t.Errorf("query %s decoded to %v, %v; want %v", q.Encode(), got, err, m)
	}
}

// TestSSEHostileFlatQueries: hostile flat queries give invalid_argument,
// never a panic or a changed value.
func TestSSEHostileFlatQueries(t *testing.T) {
	for _, raw := range []string{
		"count=2147483648", "count=-2147483649", "count=1e10", "count=0x10", "count=%20 1", "count=1.0e0x",
		"since=9223372036854775808", "minLevel=2147483648", "minLevel=+1", "minLevel=007", "fail=TRUE", "fail=",
		"token=%%%", "token=a", "count=1&count=1", "request=%7B&room=x", "count=NaN", "count=Infinity",
		"request=" + strings.Repeat("%5B", 200),
	} {
		q, err := url.ParseQuery(raw)
		if err != nil {
			continue
		}
		got := &testingv1.WatchRequest{}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: panic %v", raw, p)
				}
			}()
			if err := DecodeSSERequest(q, got); CodeOf(err) != CodeInvalidArgument {
				t.Errorf("%s: DecodeSSERequest = %v (%v), want invalid_argument", raw, err, got)
			}
		}()
	}
	// Deeply nested request form (Struct in a Value) is bounded.
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	if err := DecodeSSERequest(url.Values{"request": {deep}}, &structpb.Struct{}); CodeOf(err) != CodeInvalidArgument {
		t.Errorf("deep request form: %v", err)
	}
	// A 1 MB query of repeated values decodes (bounded by its size).
	big := url.Values{"tags": make([]string, 100000)}
	for i := range big["tags"] {
		big["tags"][i] = "abcdefghi"
	}
	got := &testingv1.WatchRequest{}
	if err := DecodeSSERequest(big, got); err != nil || len(got.GetTags()) != 100000 {
		t.Errorf("1 MB of tags: %v, %d tags", err, len(got.GetTags()))
	}
}

// TestSSEMalformedQueryRefused: a query with a pair url.ParseQuery refuses
// (a bad %-escape, a ';') is answered 400 invalid_argument. serveSSE read
// r.URL.Query(), which drops such pairs, and the handler ran with those
// fields unset.
func TestSSEMalformedQueryRefused(t *testing.T) {
	got := make(chan *testingv1.WatchRequest, 4)
	h := NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *ServerStream[testingv1.WatchResponse]) error {
		got <- proto.Clone(req).(*testingv1.WatchRequest)
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, raw := range []string{"room=50%&count=3", "room=a;b&count=3", "request=%7B%22room%22:%22x%22%7D;&count=3", "request=%7B%22room%22%3A%22100%%22%7D"} {
		conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(conn, "GET /t/W?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n", raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Fatalf("%s: %v", raw, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode == http.StatusOK {
			select {
			case req := <-got:
				t.Errorf("?%s: 200, handler ran with %v (a parameter silently dropped), want 400", raw, req)
			case <-time.After(time.Second):
				t.Errorf("?%s: 200", raw)
			}
		}
	}
}

// ---- responses ----

func eventRoundTrip(t *testing.T, m proto.Message) {
	t.Helper()
	ev, err := NewSSEEvent(m, "7")
	if err != nil {
		t.Errorf("NewSSEEvent(%v): %v", m, err)
		return
	}
	wire, err := sse.AppendEvent(nil, ev)
	if err != nil {
		t.Errorf("AppendEvent(%+v): %v", ev, err)
		return
	}
	p := sse.NewParser(strings.NewReader(string(wire)), nil)
	back, err := p.Next()
	if err != nil {
		t.Errorf("%v: parse %q: %v", m, wire, err)
		return
	}
	got := m.ProtoReflect().New().Interface()
	ok, err := decodeSSEEvent(back, got)
	if !ok || err != nil || !proto.Equal(got, m) {
		t.Errorf("%v: event %q decoded to %v (ok %v, err %v)", m, wire, got, ok, err)
	}
}

// TestSSEEventRoundTrip: every kind of oneof case (zero values included,
// strings with CR/LF), through NewSSEEvent, the event-stream framing and
// decodeSSEEvent.
func TestSSEEventRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	md := dynFile.Messages().ByName("Resp")
	fields := md.Fields()
	for j := 0; j < fields.Len(); j++ {
		fd := fields.Get(j)
		for i := 0; i < 20; i++ {
			m := dynMsg("Resp")
			switch fd.Kind() {
			case protoreflect.MessageKind:
				v := m.NewField(fd)
				switch fd.Message().FullName() {
				case "dyn.Inner":
					v.Message().Set(fd.Message().Fields().ByName("x"), protoreflect.ValueOfString(oddStrings[r.Intn(len(oddStrings))]))
				case "google.protobuf.Timestamp":
					v = protoreflect.ValueOfMessage(timestamppb.New(time.Unix(r.Int63n(1e10), r.Int63n(1e9))).ProtoReflect())
				case "google.protobuf.Value":
					vals := []*structpb.Value{structpb.NewNullValue(), structpb.NewNumberValue(0), structpb.NewStringValue("a\nb"), structpb.NewBoolValue(false)}
					v = protoreflect.ValueOfMessage(vals[r.Intn(len(vals))].ProtoReflect())
				case "google.protobuf.StringValue":
					v.Message().Set(fd.Message().Fields().ByName("value"), protoreflect.ValueOfString(oddStrings[r.Intn(len(oddStrings))]))
				}
				m.Set(fd, v)
			case protoreflect.EnumKind:
				if fd.Enum().FullName() == "google.protobuf.NullValue" {
					m.Set(fd, protoreflect.ValueOfEnum(0))
				} else {
					m.Set(fd, randScalar(r, fd))
				}
			default:
				m.Set(fd, randScalar(r, fd))
			}
			eventRoundTrip(t, m)
		}
	}
	// Generated WatchResponse: a note with CR, LF, CRLF; empty note; level 0.
	for _, m := range []*testingv1.WatchResponse{
		{Event: &testingv1.WatchResponse_Note{Note: "a\rb\nc\r\nd"}},
		{Event: &testingv1.WatchResponse_Note{Note: ""}},
		{Event: &testingv1.WatchResponse_Level{Level: 0}},
		{Event: &testingv1.WatchResponse_Tick{Tick: nil}},
	} {
		eventRoundTrip(t, m)
	}
	// Whole messages.
	for _, m := range []proto.Message{
		&testingv1.SearchResponse{Title: "x\ny\r", Rank: -1},
		&testingv1.SearchResponse{},
		timestamppb.New(time.Unix(0, 0)),
		structpb.NewStringValue("\r\n"),
	} {
		eventRoundTrip(t, m)
	}
}

// TestParseSSEErrorHostile: wsrpc.error data that is not JSON, has an
// unknown code, or is huge, is a clear *Error.
func TestParseSSEErrorHostile(t *testing.T) {
	for _, data := range []string{"", "not json", "null", `{"code":"nope"}`, `{"code":"ok"}`, `{"code":5}`, `{"code":"not_found","message":"x"} trailing`, `[]`,
		`{"code":"internal","message":"` + strings.Repeat("é", 300000) + `"}`} {
		e := parseSSEError(data)
		if e == nil || e.code == 0 {
			t.Errorf("parseSSEError(%.40q) = %v", data, e)
		}
	}
	e := parseSSEError(`{"code":"not_found","message":"gone"}`)
	if e.code != CodeNotFound || e.msg != "gone" {
		t.Errorf("parseSSEError = %v", e)
	}
}

// ---- the typed client with the sse client's Show* options ----

func searchServer(t *testing.T, opts ...Option) string {
	h := NewSSEHandler("/t/S", func(ctx context.Context, req *testingv1.SearchRequest, s *ServerStream[testingv1.SearchResponse]) error {
		if err := s.Send(&testingv1.SearchResponse{Title: "one"}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond): // heartbeats go out
		}
		return s.Send(&testingv1.SearchResponse{Title: "two"})
	}, opts...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/t/S"
}

// TestSSETypedClientSkipsShownBlocks: WithSSEClientOptions passes
// ShowCommentEvents and ShowRetryEvents through, and the sse client then
// yields heartbeats and retry blocks as events of Type ""; the typed
// client skips them and receives every response. It took them for
// "message" events of a non-oneof response, failed to decode them, and
// ended the call with invalid_argument at the first one.
func TestSSETypedClientSkipsShownBlocks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server *sse.StreamOptions
		client *sse.ClientOptions
	}{
		{"comments", &sse.StreamOptions{Heartbeat: 50 * time.Millisecond}, &sse.ClientOptions{ShowCommentEvents: true}},
		{"retry", &sse.StreamOptions{Retry: time.Second}, &sse.ClientOptions{ShowRetryEvents: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := searchServer(t, WithSSEOptions(tc.server))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := NewSSEClient[testingv1.SearchRequest, testingv1.SearchResponse](nil, url, "/t/S", WithSSEClientOptions(tc.client))
			st, err := c.Call(ctx, &testingv1.SearchRequest{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var titles []string
			for m, err := range st.All() {
				if err != nil {
					t.Fatalf("after %v: %v", titles, err)
				}
				titles = append(titles, m.GetTitle())
			}
			if strings.Join(titles, ",") != "one,two" {
				t.Fatalf("received %v, want [one two]", titles)
			}
		})
	}
}

// TestSSEClientKeepsURLQuery: NewSSEClient's url may carry a query (an
// access token, say, as EventSource users put there); the request's
// parameters join it, as the WebSocket clients keep it. It was replaced as
// soon as the request had a field set.
func TestSSEClientKeepsURLQuery(t *testing.T) {
	seen := make(chan string, 4)
	h := NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *ServerStream[testingv1.WatchResponse]) error {
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.RawQuery
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, srv.URL+"/t/W?key=secret", "/t/W")
	for _, req := range []*testingv1.WatchRequest{{}, {Room: "r"}} {
		st, err := c.Call(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range st.All() {
			if err != nil {
				t.Fatal(err)
			}
		}
		q := <-seen
		if v, _ := url.ParseQuery(q); v.Get("key") != "secret" {
			t.Errorf("request %v: the server saw ?%s: the url's key=secret was dropped", req, q)
		}
	}
}

// TestSSENonFlatFieldParamsRefused: a parameter for a field that cannot
// travel flat (?filter=…, a message) is invalid_argument, beside a flat
// field's (?limit=2, which a server accepts for any request: SSERule);
// it was ignored, and the handler ran without the filter.
func TestSSENonFlatFieldParamsRefused(t *testing.T) {
	got := &testingv1.SearchRequest{}
	err := DecodeSSERequest(url.Values{"limit": {"2"}, "filter": {`{"query":"q"}`}}, got)
	if err == nil {
		t.Errorf("?limit=2&filter=… for SearchRequest: no error, decoded to %v (limit %d)", got, got.GetLimit())
	}
}

// TestSSEExtensionsTravelWhole: a proto2 request with extension ranges
// takes the request form even when all its fields are scalars: the flat
// form has parameters for fields only, so an extension set on the request
// never reached the handler, without a word. Protojson carries it as
// "[wsrpc.testing.v1.note]" (ProtoJSON format: extensions), through the
// typed client and handler as through EncodeSSERequest and
// DecodeSSERequest; a hand-built flat query still sets its fields.
func TestSSEExtensionsTravelWhole(t *testing.T) {
	req := &testingv1.LegacyQuery{Name: proto.String("n"), Ids: []int32{1, 2}}
	proto.SetExtension(req, testingv1.E_Note, "ext")
	if flatRequest(req.ProtoReflect().Descriptor()) {
		t.Error("LegacyQuery, which has extension ranges, takes the flat form")
	}
	q, err := EncodeSSERequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || !strings.Contains(q.Get(SSERequestParam), `"[wsrpc.testing.v1.note]"`) {
		t.Errorf("query %s, want the extension in %q alone", q.Encode(), SSERequestParam)
	}
	got := &testingv1.LegacyQuery{}
	if err := DecodeSSERequest(viaWire(t, q), got); err != nil || !proto.Equal(got, req) {
		t.Errorf("?%s = %v, %v; want %v", q.Encode(), got, err, req)
	}
	// A server reads the flat form of any request's fields (SSERule), an
	// extension's only in the request form.
	if got := (&testingv1.LegacyQuery{}); DecodeSSERequest(url.Values{"name": {"n"}}, got) != nil || got.GetName() != "n" {
		t.Errorf("?name=n for LegacyQuery: %v, want name n", got)
	}
	// A request without its required field is refused in either form, as
	// the flat form's decoding refused one (protojson checks required
	// fields); the empty query, which carries an empty request, reached
	// the handler once LegacyQuery was sent whole.
	for _, q := range []url.Values{{}, {"ids": {"1"}}, {SSERequestParam: {`{"ids":[1]}`}}} {
		if err := DecodeSSERequest(q, &testingv1.LegacyQuery{}); CodeOf(err) != CodeInvalidArgument {
			t.Errorf("?%s for LegacyQuery without its required name: %v, want invalid_argument", q.Encode(), err)
		}
	}

	seen := make(chan *testingv1.LegacyQuery, 1)
	h := NewSSEHandler("/t/L", func(ctx context.Context, req *testingv1.LegacyQuery, s *ServerStream[testingv1.WatchResponse]) error {
		seen <- req
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := NewSSEClient[testingv1.LegacyQuery, testingv1.WatchResponse](nil, srv.URL+"/t/L", "/t/L").Call(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range st.All() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if h := <-seen; !proto.Equal(h, req) || proto.GetExtension(h, testingv1.E_Note) != "ext" {
		t.Errorf("the handler got %v, want %v", h, req)
	}
}

// TestSSEFlatOneofBothCases: both cases of a scalar oneof in the flat form
// is an error.
func TestSSEFlatOneofBothCases(t *testing.T) {
	got := dynMsg("Flat")
	if err := DecodeSSERequest(url.Values{"cInt": {"1"}, "cStr": {"x"}}, got); CodeOf(err) != CodeInvalidArgument {
		t.Errorf("both oneof cases: %v (%v)", err, got)
	}
	// The oneof case at its zero value keeps its presence.
	m := dynMsg("Flat")
	m.Set(m.Descriptor().Fields().ByName("c_int"), protoreflect.ValueOfInt32(0))
	q, _ := EncodeSSERequest(m)
	got = dynMsg("Flat")
	if err := DecodeSSERequest(q, got); err != nil || !proto.Equal(got, m) {
		t.Errorf("cInt=0: %s → %v %v", q.Encode(), got, err)
	}
}

// TestSSENullEventDataRefused: an event of a case type with data null is
// a decode error; it decoded silently to a response with no case set,
// which no server can send.
func TestSSENullEventDataRefused(t *testing.T) {
	for _, ev := range []sse.Event{{Type: "tick", Data: "null"}, {Type: "note", Data: "null"}, {Type: "level", Data: "null"}} {
		m := &testingv1.WatchResponse{}
		ok, err := decodeSSEEvent(ev, m)
		if ok && err == nil && m.GetEvent() == nil {
			t.Errorf("event %s data %s: decoded without error to a response with no case set", ev.Type, ev.Data)
		}
	}
}

// TestSSEEventDataNotJSONRefused: a case event's data must be one JSON
// value, as a browser's JSON.parse requires; the decoder wraps it in an
// object, where `1,"x":2` parsed and its extra member was dropped as an
// unknown field (found by FuzzDecodeSSEEvent).
func TestSSEEventDataNotJSONRefused(t *testing.T) {
	for _, ev := range []sse.Event{
		{Type: "note", Data: `"a","zzz":2`}, {Type: "tick", Data: `{"seq":"1"},"more":{}`}, {Type: "level", Data: `1 2`}, {Type: "note", Data: ``},
	} {
		m := &testingv1.WatchResponse{}
		if ok, err := decodeSSEEvent(ev, m); ok && err == nil {
			t.Errorf("event %s data %q: decoded without error to %v", ev.Type, ev.Data, m)
		}
	}
}

// TestSSECloseDuringReceive: Close from another goroutine while Receive
// blocks (race detector), then Receive again.
func TestSSECloseDuringReceive(t *testing.T) {
	h := NewSSEHandler("/t/W", func(ctx context.Context, req *testingv1.WatchRequest, s *ServerStream[testingv1.WatchResponse]) error {
		<-ctx.Done()
		return ctx.Err()
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := NewSSEClient[testingv1.WatchRequest, testingv1.WatchResponse](nil, srv.URL+"/t/W", "/t/W")
	for i := 0; i < 5; i++ {
		st, err := c.Call(ctx, &testingv1.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := st.Receive(); done <- err }()
		time.Sleep(20 * time.Millisecond)
		st.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Receive after Close = nil")
			}
			t.Logf("Receive after Close: %v (code %v)", err, CodeOf(err))
		case <-time.After(3 * time.Second):
			t.Fatal("Receive did not return after Close")
		}
		if _, err := st.Receive(); err == nil {
			t.Errorf("second Receive after Close = nil")
		}
	}
	// Cancelling the call's context ends a blocked Receive.
	cctx, ccancel := context.WithCancel(ctx)
	st, err := c.Call(cctx, &testingv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := st.Receive(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	ccancel()
	select {
	case err := <-done:
		t.Logf("Receive after cancel: %v (code %v)", err, CodeOf(err))
		if CodeOf(err) != CodeCanceled {
			t.Errorf("Receive after cancel: code %v, want canceled", CodeOf(err))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Receive did not return after cancel")
	}
}

// TestSSEEventOneofNamesake: eventOneofs caches by full name; a second
// descriptor of the same name (a dynamicpb message from a schema
// registry, reloaded descriptors, a relay) gets its own oneof. It got the
// first descriptor's, and NewSSEEvent panicked in WhichOneof.
func TestSSEEventOneofNamesake(t *testing.T) {
	if _, err := NewSSEEvent(&testingv1.WatchResponse{Event: &testingv1.WatchResponse_Note{Note: "a"}}, ""); err != nil {
		t.Fatal(err)
	}
	fdp := protodesc.ToFileDescriptorProto(testingv1.File_wsrpc_testing_v1_stream_proto)
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().ByName("WatchResponse")
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("note"), protoreflect.ValueOfString("b"))
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("NewSSEEvent(dynamic WatchResponse) panicked: %v", p)
		}
	}()
	ev, err := NewSSEEvent(m, "")
	if err != nil || ev.Type != "note" || ev.Data != `"b"` {
		t.Errorf("NewSSEEvent(dynamic) = %+v, %v", ev, err)
	}
}

// TestSSEDocumentedQueries: browser-built queries as options.proto and
// docs/codegen.md describe them decode as documented; out-of-range values
// are errors, not wrapped.
func TestSSEDocumentedQueries(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want *testingv1.WatchRequest
	}{
		{"count=3", &testingv1.WatchRequest{Count: 3}},
		{"tags=a&tags=b&tags=", &testingv1.WatchRequest{Tags: []string{"a", "b", ""}}},
		{"minLevel=LEVEL_WARN", &testingv1.WatchRequest{MinLevel: testingv1.Level_LEVEL_WARN}},
		{"minLevel=2", &testingv1.WatchRequest{MinLevel: testingv1.Level_LEVEL_WARN}},
		{"token=_-8", &testingv1.WatchRequest{Token: []byte{0xff, 0xef}}},
		{"token=%2F%2F4%3D", &testingv1.WatchRequest{Token: []byte{0xff, 0xfe}}},
		{"token=//4", &testingv1.WatchRequest{Token: []byte{0xff, 0xfe}}},
		{"since=-9223372036854775808", &testingv1.WatchRequest{Since: math.MinInt64}},
		{"room=a%20b%26c%3Dd%2Be%25f%23", &testingv1.WatchRequest{Room: "a b&c=d+e%f#"}},
		{"room=a+b", &testingv1.WatchRequest{Room: "a b"}},
		{"fail=true&fail2=x", &testingv1.WatchRequest{Fail: true}},
	} {
		q, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		got := &testingv1.WatchRequest{}
		if err := DecodeSSERequest(q, got); err != nil || !proto.Equal(got, tc.want) {
			t.Errorf("?%s = %v, %v; want %v", tc.raw, got, err, tc.want)
		}
	}
	for _, raw := range []string{"fInt32=2147483648", "fUint32=-1", "fUint64=18446744073709551616", "fFloat=1e39", "fSint32=-2147483649",
		"rInt32=1&rInt32=x", "oBool=yes", "fEnum=GREEN", "rEnum=RED&rEnum=NOPE", "cInt=99999999999"} {
		q, _ := url.ParseQuery(raw)
		got := dynMsg("Flat")
		if err := DecodeSSERequest(q, got); CodeOf(err) != CodeInvalidArgument {
			t.Errorf("?%s: %v (%v), want invalid_argument", raw, err, got)
		}
	}
}

// TestSSEFlatJSONNameShadowsProtoName: a proto name that is another
// field's JSON name is that other field's parameter, as protojson reads
// it (JSON name first), here with a = 1 [json_name = "b"] beside
// b = 2 [json_name = "c"] — what docs/evolution.md's rename advice
// produces. The server refused the generated client's ?b=…&c=… ("both set
// b"), and ?b=1 set both fields.
func TestSSEFlatJSONNameShadowsProtoName(t *testing.T) {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING
	a := dynField("a", 1, str, opt, "")
	a.JsonName = proto.String("b")
	b := dynField("b", 2, str, opt, "")
	b.JsonName = proto.String("c")
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("wsrpc/test/shadow.proto"), Package: proto.String("wsrpc.test.shadow"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Req"), Field: []*dynF{a, b}}},
	}
	fd, err := protodesc.NewFile(fdp, new(protoregistry.Files))
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().ByName("Req")
	fa, fb := md.Fields().ByName("a"), md.Fields().ByName("b")
	for _, tc := range []struct {
		raw          string
		wantA, wantB string
	}{
		{"b=va&c=vb", "va", "vb"}, // what EncodeSSERequest sends
		{"b=1", "1", ""},          // the JSON name b is a's, not b's
		{"c=2", "", "2"},
		{"a=3", "3", ""}, // a's proto name, no field's JSON name
	} {
		q, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		m := dynamicpb.NewMessage(md)
		if err := DecodeSSERequest(q, m); err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if got := m.Get(fa).String(); got != tc.wantA {
			t.Errorf("%s: a = %q, want %q", tc.raw, got, tc.wantA)
		}
		if got := m.Get(fb).String(); got != tc.wantB {
			t.Errorf("%s: b = %q, want %q", tc.raw, got, tc.wantB)
		}
	}
	m := dynamicpb.NewMessage(md)
	m.Set(fa, protoreflect.ValueOfString("x"))
	m.Set(fb, protoreflect.ValueOfString("y"))
	q, err := EncodeSSERequest(m)
	if err != nil {
		t.Fatal(err)
	}
	back := dynamicpb.NewMessage(md)
	if err := DecodeSSERequest(q, back); err != nil || !proto.Equal(back, m) {
		t.Fatalf("round trip of %v through %v: %v, %v", m, q, back, err)
	}
}
