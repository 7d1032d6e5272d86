package codegen_test

import (
	"bytes"
	"flag"
	"go/build/constraint"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/wsrpc/wsrpc/codegen"
	wsrpcv1 "github.com/wsrpc/wsrpc/gen/wsrpc/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// rule builds a (wsrpc.v1.method) option value.
func ws(path string) *wsrpcv1.MethodOptions {
	return &wsrpcv1.MethodOptions{Transport: &wsrpcv1.MethodOptions_Websocket{Websocket: &wsrpcv1.WebSocketRule{Path: path}}}
}

func sseRule(path string) *wsrpcv1.MethodOptions {
	return &wsrpcv1.MethodOptions{Transport: &wsrpcv1.MethodOptions_Sse{Sse: &wsrpcv1.SSERule{Path: path}}}
}

type methodSpec struct {
	name           string
	client, server bool // streaming
	opt            *wsrpcv1.MethodOptions
	comment        string
}

// request builds a CodeGeneratorRequest for x/v1/svc.proto with one
// service holding methods.
func request(methods ...methodSpec) *pluginpb.CodeGeneratorRequest {
	file := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("x/v1/svc.proto"),
		Package:    proto.String("x.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"wsrpc/v1/options.proto"},
		Options:    &descriptorpb.FileOptions{GoPackage: proto.String("example.com/gen/x/v1;xv1")},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Req")},
			{Name: proto.String("Res")},
		},
		SourceCodeInfo: &descriptorpb.SourceCodeInfo{},
	}
	svc := &descriptorpb.ServiceDescriptorProto{Name: proto.String("XService")}
	for i, m := range methods {
		md := &descriptorpb.MethodDescriptorProto{
			Name:            proto.String(m.name),
			InputType:       proto.String(".x.v1.Req"),
			OutputType:      proto.String(".x.v1.Res"),
			ClientStreaming: proto.Bool(m.client),
			ServerStreaming: proto.Bool(m.server),
		}
		if m.opt != nil {
			md.Options = &descriptorpb.MethodOptions{}
			proto.SetExtension(md.Options, wsrpcv1.E_Method, m.opt)
		}
		if m.comment != "" {
			// service 0 (field 6), method i (field 2)
			file.SourceCodeInfo.Location = append(file.SourceCodeInfo.Location, &descriptorpb.SourceCodeInfo_Location{
				Path: []int32{6, 0, 2, int32(i)}, Span: []int32{0, 0, 0}, LeadingComments: proto.String(m.comment),
			})
		}
		svc.Method = append(svc.Method, md)
	}
	file.Service = []*descriptorpb.ServiceDescriptorProto{svc}
	return &pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{"x/v1/svc.proto"},
		Parameter:      proto.String("paths=source_relative"),
		ProtoFile: []*descriptorpb.FileDescriptorProto{
			protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
			protodesc.ToFileDescriptorProto(wsrpcv1.File_wsrpc_v1_options_proto),
			file,
		},
	}
}

// run runs the generator (or generate, if given) on req as protoc would,
// through a serialised request (so the option travels as an extension in
// bytes, as from buf).
func run(t *testing.T, req *pluginpb.CodeGeneratorRequest, generate ...func(*protogen.Plugin) error) *pluginpb.CodeGeneratorResponse {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var wire pluginpb.CodeGeneratorRequest
	if err := proto.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	plugin, err := protogen.Options{}.New(&wire)
	if err != nil {
		t.Fatal(err)
	}
	gen := codegen.Generate
	if len(generate) > 0 {
		gen = generate[0]
	}
	if err := gen(plugin); err != nil {
		plugin.Error(err)
	}
	return plugin.Response()
}

// TestSchemaMistakes: every misuse of the option is a plugin error that
// names the file and the method, never a panic.
func TestSchemaMistakes(t *testing.T) {
	cases := []struct {
		name string
		m    []methodSpec
		want string
	}{
		{"websocket on unary", []methodSpec{{name: "M", opt: ws("")}}, "websocket needs a streaming method; this one is unary"},
		{"sse on unary", []methodSpec{{name: "M", opt: sseRule("")}}, "sse needs a server-streaming method; this one is unary"},
		{"sse on client stream", []methodSpec{{name: "M", client: true, opt: sseRule("")}}, "this one is client-streaming"},
		{"sse on bidi", []methodSpec{{name: "M", client: true, server: true, opt: sseRule("")}}, "this one is bidirectional-streaming"},
		{"no transport", []methodSpec{{name: "M", server: true, opt: &wsrpcv1.MethodOptions{}}}, "sets no transport"},
		{"relative path", []methodSpec{{name: "M", server: true, opt: ws("m")}}, `bad path "m": it must start with /`},
		{"query in path", []methodSpec{{name: "M", server: true, opt: sseRule("/m?x=1")}}, "query or fragment"},
		{"trailing slash", []methodSpec{{name: "M", server: true, opt: ws("/m/")}}, "must not end with /"},
		{"dot segment", []methodSpec{{name: "M", server: true, opt: ws("/a/../m")}}, ". or .. segments"},
		{"space", []methodSpec{{name: "M", server: true, opt: ws("/a m")}}, "printable ASCII"},
		{"duplicate path", []methodSpec{{name: "A", server: true, opt: ws("/same")}, {name: "M", server: true, opt: sseRule("/same")}}, `path "/same" is already used by method A`},
		{"braces in path", []methodSpec{{name: "M", server: true, opt: ws("/{tenant}/m")}}, "must not contain { or }"},
		{"same Go name", []methodSpec{{name: "m", server: true, opt: ws("")}, {name: "M", server: true, opt: sseRule("")}}, "its Go name M is also method m's"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := run(t, request(tc.m...))
			msg := resp.GetError()
			if !strings.Contains(msg, "x/v1/svc.proto: method x.v1.XService.M: ") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want file, method and %q", msg, tc.want)
			}
			if len(resp.GetFile()) != 0 {
				t.Fatalf("files generated despite the error")
			}
		})
	}
}

// TestVetMethodNames: an RPC whose Go name go vet's stdmethods check holds
// to the signature of a well-known interface method (MarshalJSON() ([]byte,
// error), for json.Marshaler) generated code that compiled but failed
// go vet, and so `go test`, in the user's module. It is a schema error
// naming the file, the service and the method, why and what to do; in
// every method shape, and whatever the RPC's own case (marshalJSON). The
// names vet lets through with the generated signatures are in
// TestServiceAndMethodNamesCompile.
func TestVetMethodNames(t *testing.T) {
	shapes := []methodSpec{
		{client: true, server: true, opt: ws("")},
		{server: true, opt: ws("")},
		{client: true, opt: ws("")},
		{server: true, opt: sseRule("")},
	}
	for i, name := range []string{"GobDecode", "GobEncode", "MarshalJSON", "MarshalXML", "ReadByte", "ReadRune",
		"UnmarshalJSON", "UnmarshalXML", "UnreadByte", "UnreadRune", "WriteByte", "marshalJSON"} {
		m := shapes[i%len(shapes)]
		m.name = name
		resp := run(t, request(methodSpec{name: "Fine", server: true, opt: ws("")}, m))
		goName := strings.ToUpper(name[:1]) + name[1:]
		want := "x/v1/svc.proto: method x.v1.XService." + name + ": its Go name " + goName + " would make go vet fail on the generated code"
		if msg := resp.GetError(); !strings.Contains(msg, want) || !strings.Contains(msg, "rename the RPC") || len(resp.GetFile()) != 0 {
			t.Errorf("rpc %s: error %q and %d files, want %q, \"rename the RPC\" and none", name, msg, len(resp.GetFile()), want)
		}
	}
	// Another case is another Go name, which vet does not know.
	if resp := run(t, request(methodSpec{name: "marshal_json", server: true, opt: ws("")})); resp.GetError() != "" {
		t.Errorf("rpc marshal_json (Go name MarshalJson): %s", resp.GetError())
	}
}

// TestGenerateGolden compares the output for a schema with every method
// kind to testdata/svc.wsrpc.go.golden, and checks it is deterministic.
func TestGenerateGolden(t *testing.T) {
	req := request(
		methodSpec{name: "Bidi", client: true, server: true, opt: ws(""), comment: " Bidi talks both ways.\n Second line.\n"},
		methodSpec{name: "Down", server: true, opt: ws("/down")},
		methodSpec{name: "Up", client: true, opt: ws("")},
		methodSpec{name: "Events", server: true, opt: sseRule("")},
		methodSpec{name: "Unary"}, // no option: skipped
	)
	resp := run(t, req)
	if resp.GetError() != "" {
		t.Fatal(resp.GetError())
	}
	if len(resp.GetFile()) != 1 {
		t.Fatalf("%d files, want 1", len(resp.GetFile()))
	}
	f := resp.GetFile()[0]
	if f.GetName() != "x/v1/xv1wsrpc/svc.wsrpc.go" {
		t.Fatalf("file name %q", f.GetName())
	}
	again := run(t, req)
	if again.GetFile()[0].GetContent() != f.GetContent() {
		t.Fatal("output differs between two runs")
	}
	content := f.GetContent()
	for _, want := range []string{
		"const _ = wsrpc.IsAtLeastVersion0_1_0",
		`XServiceName = "x.v1.XService"`,
		`XServiceBidiProcedure = "/x.v1.XService/Bidi"`,
		`XServiceDownPath = "/down"`,
		"// Bidi talks both ways.\n\t// Second line.\n\tBidi(ctx context.Context)",
		`return "/", http.HandlerFunc`,
		"type UnimplementedXServiceHandler struct{}",
		"wsrpc.NewSSEClient[v1.Req, v1.Res]",
	} {
		if !strings.Contains(content, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(content, "Unary") {
		t.Error("a method without the option was generated")
	}
	golden := filepath.Join("testdata", "svc.wsrpc.go.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, []byte(content)) {
		t.Fatalf("output differs from %s (run go test ./codegen -update and review):\n%s", golden, content)
	}
}

// TestGeneratedPackageName: the generated code lives in the Go package
// name with "wsrpc" appended, in a directory of that name beside the
// .pb.go. protogen prefixes "_" to a go_package's name that is a Go
// keyword (".../func" gives package _func) or starts with a digit, and
// the go tool ignores a directory whose name starts with "_" ("./..."
// skipped _funcwsrpc/ without a word), so the generated directory drops
// it, and so does the package unless it would start with a digit.
func TestGeneratedPackageName(t *testing.T) {
	for _, tc := range []struct{ goPackage, file, pkg string }{
		{"example.com/gen/x/v1;xv1", "x/v1/xv1wsrpc/svc.wsrpc.go", "xv1wsrpc"},
		{"example.com/gen/x/func", "x/v1/funcwsrpc/svc.wsrpc.go", "funcwsrpc"},
		{"example.com/gen/go/type", "x/v1/typewsrpc/svc.wsrpc.go", "typewsrpc"},
		{"example.com/gen/x/_x", "x/v1/xwsrpc/svc.wsrpc.go", "xwsrpc"},
		{"example.com/gen/x/2fa", "x/v1/2fawsrpc/svc.wsrpc.go", "_2fawsrpc"},
	} {
		req := request(methodSpec{name: "M", server: true, opt: ws("")})
		req.ProtoFile[len(req.ProtoFile)-1].Options.GoPackage = proto.String(tc.goPackage)
		resp := run(t, req)
		if resp.GetError() != "" {
			t.Fatalf("go_package %q: %s", tc.goPackage, resp.GetError())
		}
		f := resp.GetFile()[0]
		if f.GetName() != tc.file || !strings.Contains(f.GetContent(), "\npackage "+tc.pkg+"\n") {
			t.Errorf("go_package %q: generated %s with package %q, want %s with package %s",
				tc.goPackage, f.GetName(), packageClause(f.GetContent()), tc.file, tc.pkg)
		}
	}
}

// packageClause returns the name in a Go file's package clause.
func packageClause(src string) string {
	_, after, _ := strings.Cut(src, "\npackage ")
	name, _, _ := strings.Cut(after, "\n")
	return name
}

// TestMountPath pins the pattern NewXServiceHandler returns and the
// advice its doc comment gives. A lone method's own path, at any depth,
// is an exact ServeMux pattern ("/{$}" for "/"): its directory would take
// the application's other routes there away, and conflict with another
// service mounted in it. Several methods get their common directory,
// "/" when they share none; where the schema chose the paths, the comment
// names each method's path to mount instead (and "/{$}" for one at "/",
// since the pattern "/" matches every path).
func TestMountPath(t *testing.T) {
	const advice = "mount the handler on each method's path instead:\n// XServiceAPath, XServiceBPath."
	const rootNote = "// XServiceAPath is \"/\": mount that one on the pattern \"/{$}\""
	for _, tc := range []struct {
		name    string
		methods []methodSpec
		mount   string
		want    []string // in the doc comment
		advice  bool
	}{
		{"default paths", []methodSpec{{name: "A", server: true, opt: ws("")}, {name: "B", server: true, opt: sseRule("")}}, "/x.v1.XService/", nil, false},
		{"one default path", []methodSpec{{name: "A", server: true, opt: ws("")}}, "/x.v1.XService/A", nil, false},
		{"shared directory", []methodSpec{{name: "A", server: true, opt: ws("/rooms/a")}, {name: "B", server: true, opt: sseRule("/rooms/b")}}, "/rooms/",
			[]string{`That pattern takes every path under "/rooms/"; if the mux serves other`}, true},
		{"custom path in the default directory", []methodSpec{{name: "A", server: true, opt: ws("/x.v1.XService/a")}, {name: "B", server: true, opt: sseRule("")}}, "/x.v1.XService/", nil, true},
		{"one root path", []methodSpec{{name: "A", server: true, opt: ws("/count")}}, "/count", nil, false},
		{"one nested path", []methodSpec{{name: "A", server: true, opt: sseRule("/api/v1/events")}}, "/api/v1/events", nil, false},
		{"one path at the root", []methodSpec{{name: "A", server: true, opt: sseRule("/")}}, "/{$}",
			[]string{`"/{$}" is the http.ServeMux pattern of the path "/" alone.`}, false},
		{"no shared directory", []methodSpec{{name: "A", server: true, opt: ws("/count")}, {name: "B", server: true, opt: sseRule("/rooms/watch")}}, "/", nil, true},
		{"the root and another path", []methodSpec{{name: "A", server: true, opt: ws("/")}, {name: "B", server: true, opt: sseRule("/count")}}, "/", []string{rootNote}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := run(t, request(tc.methods...))
			if resp.GetError() != "" {
				t.Fatal(resp.GetError())
			}
			content := resp.GetFile()[0].GetContent()
			if want := "return \"" + tc.mount + "\", http.HandlerFunc"; !strings.Contains(content, want) {
				t.Errorf("output lacks %q", want)
			}
			if want := "It returns the path to mount it on (\"" + tc.mount + "\")"; !strings.Contains(content, want) {
				t.Errorf("doc comment lacks %q", want)
			}
			for _, want := range tc.want {
				if !strings.Contains(content, want) {
					t.Errorf("doc comment lacks %q", want)
				}
			}
			if got := strings.Contains(content, advice); got != tc.advice {
				t.Errorf("advice to mount each path given: %v, want %v", got, tc.advice)
			}
			if got, want := strings.Contains(content, rootNote), len(tc.want) > 0 && tc.want[0] == rootNote; got != want {
				t.Errorf("advice to mount the root path on \"/{$}\" given: %v, want %v", got, want)
			}
		})
	}
}

// TestNoWsrpcMethods: a file without wsrpc methods generates nothing.
func TestNoWsrpcMethods(t *testing.T) {
	resp := run(t, request(methodSpec{name: "Unary"}, methodSpec{name: "S", server: true}))
	if resp.GetError() != "" || len(resp.GetFile()) != 0 {
		t.Fatalf("error %q, %d files", resp.GetError(), len(resp.GetFile()))
	}
}

// TestDeprecated: option deprecated = true on a method marks its client
// and handler interface methods, and on a service its interfaces and
// constructors, with the "Deprecated:" paragraph Go tools recognise.
func TestDeprecated(t *testing.T) {
	for _, tc := range []struct {
		name                string
		service, method     bool
		wantBefore          []string // a prefix per declaration marked
		wantUnmarkedBefores []string
	}{
		{
			name: "method", method: true,
			wantBefore:          []string{"\tOld(", "\tOld("},
			wantUnmarkedBefores: []string{"type XServiceClient interface", "func NewXServiceClient(", "type XServiceHandler interface", "func NewXServiceHandler("},
		},
		{
			name: "service", service: true,
			wantBefore:          []string{"type XServiceClient interface", "func NewXServiceClient(", "type XServiceHandler interface", "func NewXServiceHandler("},
			wantUnmarkedBefores: []string{"\tOld("},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(methodSpec{name: "Old", server: true, opt: ws("")}, methodSpec{name: "New", server: true, opt: ws("")})
			file := req.ProtoFile[len(req.ProtoFile)-1]
			if tc.method {
				file.Service[0].Method[0].Options.Deprecated = proto.Bool(true)
			}
			if tc.service {
				file.Service[0].Options = &descriptorpb.ServiceOptions{Deprecated: proto.Bool(true)}
			}
			resp := run(t, req)
			if resp.GetError() != "" {
				t.Fatal(resp.GetError())
			}
			lines := strings.Split(resp.GetFile()[0].GetContent(), "\n")
			marked := func(prefix string) (n int) {
				for i, l := range lines {
					if strings.HasPrefix(l, prefix) && i > 0 && strings.TrimSpace(lines[i-1]) == "// Deprecated: do not use." {
						n++
					}
				}
				return n
			}
			counts := map[string]int{}
			for _, p := range tc.wantBefore {
				counts[p]++
			}
			for p, n := range counts {
				if got := marked(p); got != n {
					t.Errorf("%d declarations starting %q marked deprecated, want %d", got, p, n)
				}
			}
			for _, p := range tc.wantUnmarkedBefores {
				if got := marked(p); got != 0 {
					t.Errorf("%q marked deprecated", p)
				}
			}
			if got := marked("\tNew("); got != 0 {
				t.Error("the method that is not deprecated is marked")
			}
		})
	}
}

// TestCommentDirectivesEscaped: a proto comment line in the form
// go/doc/comment takes for a directive stays documentation (a space after
// the slashes): //nolint:all would have silenced golangci-lint for the
// declaration, //export is cgo's, and gofmt moves directives to the end
// of the doc comment. A carriage return is white space, not dropped.
func TestCommentDirectivesEscaped(t *testing.T) {
	// As protoc gives a comment: each line without its "//".
	comment := " Watch streams.\r\nnolint:all\nexport Foo\nextern bar\nline x.go:1\ngo:noinline\n Carriage\rreturn.\n not:A directive\n"
	resp := run(t, request(methodSpec{name: "Watch", server: true, opt: ws(""), comment: comment}))
	if resp.GetError() != "" {
		t.Fatal(resp.GetError())
	}
	out := resp.GetFile()[0].GetContent()
	for _, want := range []string{"// Watch streams.\n", "// nolint:all\n", "// export Foo\n", "// extern bar\n", "// line x.go:1\n", "// go:noinline\n", "// Carriage return.\n", "// not:A directive\n"} {
		if !strings.Contains(out, "\t"+want) {
			t.Errorf("generated code lacks %q", "\t"+want)
		}
	}
	for _, bad := range []string{"\t//nolint", "\t//export", "\t//extern", "\t//line", "\t//go:", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("generated code holds %q", bad)
		}
	}
}

// TestCommentBytesGoRefuses: a proto comment may hold what Go source may
// not, even in a comment: a byte that is not UTF-8 (a Latin-1 .proto), a
// NUL, a byte order mark (U+FEFF) inside the file. The plugin failed with
// "unparsable Go source" and the whole generated file; such bytes are now
// replaced (U+FFFD) or dropped (the mark), the rest of the line kept.
func TestCommentBytesGoRefuses(t *testing.T) {
	comment := " caf\xe9 ok\n nul\x00x\n zero\ufeffwidth\n"
	resp := run(t, request(methodSpec{name: "Watch", server: true, opt: ws(""), comment: comment}))
	if resp.GetError() != "" {
		t.Fatalf("%.300s", resp.GetError())
	}
	out := resp.GetFile()[0].GetContent()
	for _, want := range []string{"// caf\uFFFD ok\n", "// nul\uFFFDx\n", "// zerowidth\n"} {
		if !strings.Contains(out, "\t"+want) {
			t.Errorf("generated code lacks %q", "\t"+want)
		}
	}
}

// TestCommentBuildConstraintEscaped: a proto comment line beginning with
// "+build" (a list of flags, say), on a service or a method, was copied
// as "// +build …", which gofmt — run on every generated file — takes for
// a build constraint wherever it stands, and hoists to the top of the
// file as one: " +build linux" made the generated code build on Linux
// alone ("//go:build linux" above the package clause), and go vet failed
// on it ("misplaced +build comment"). Such a line gets a backslash before
// the "+", so that it stays documentation.
func TestCommentBuildConstraintEscaped(t *testing.T) {
	req := request(methodSpec{name: "Watch", server: true, opt: ws(""), comment: " Watch streams.\n +build linux\n+build\n\t+build !windows,amd64\n +builder stays\n"})
	file := req.ProtoFile[len(req.ProtoFile)-1]
	file.SourceCodeInfo.Location = append(file.SourceCodeInfo.Location, &descriptorpb.SourceCodeInfo_Location{
		Path: []int32{6, 0}, Span: []int32{0, 0, 0}, LeadingComments: proto.String(" XService serves.\n +build ignore\n"),
	})
	resp := run(t, req)
	if resp.GetError() != "" {
		t.Fatal(resp.GetError())
	}
	out := resp.GetFile()[0].GetContent()
	for i, l := range strings.Split(out, "\n") {
		if constraint.IsGoBuild(l) || constraint.IsPlusBuild(l) {
			t.Errorf("line %d is a build constraint: %q", i+1, l)
		}
	}
	for _, want := range []string{"\n// XService serves.\n// \\+build ignore\n", "\t// \\+build linux\n", "\t// \\+build\n", "\t//\t\\+build !windows,amd64\n", "\t// +builder stays\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
}
