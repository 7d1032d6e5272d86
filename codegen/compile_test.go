package codegen_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/wsrpc/wsrpc/codegen"
	wsrpcv1 "github.com/wsrpc/wsrpc/gen/wsrpc/v1"
)

// protoFile describes a .proto file for the compile tests: its messages
// are empty; its services' methods name their types in full (".pkg.Msg").
type protoFile struct {
	name, pkg, goPackage string
	editions             bool // edition 2023 rather than proto3
	deps, messages       []string
	services             []protoService
}

type protoService struct {
	name, comment string
	methods       []protoMethod
}

type protoMethod struct {
	name, in, out, comment string
	client, server         bool
	opt                    *wsrpcv1.MethodOptions
}

func (f protoFile) descriptor() *descriptorpb.FileDescriptorProto {
	fd := &descriptorpb.FileDescriptorProto{
		Name:           proto.String(f.name),
		Package:        proto.String(f.pkg),
		Syntax:         proto.String("proto3"),
		Dependency:     append([]string{"wsrpc/v1/options.proto"}, f.deps...),
		Options:        &descriptorpb.FileOptions{GoPackage: proto.String(f.goPackage)},
		SourceCodeInfo: &descriptorpb.SourceCodeInfo{},
	}
	if f.editions {
		fd.Syntax, fd.Edition = proto.String("editions"), descriptorpb.Edition_EDITION_2023.Enum()
	}
	for _, m := range f.messages {
		fd.MessageType = append(fd.MessageType, &descriptorpb.DescriptorProto{Name: proto.String(m)})
	}
	comment := func(text string, path ...int32) {
		if text != "" {
			fd.SourceCodeInfo.Location = append(fd.SourceCodeInfo.Location, &descriptorpb.SourceCodeInfo_Location{
				Path: path, Span: []int32{0, 0, 0}, LeadingComments: proto.String(text)})
		}
	}
	for si, s := range f.services {
		sd := &descriptorpb.ServiceDescriptorProto{Name: proto.String(s.name)}
		comment(s.comment, 6, int32(si)) // FileDescriptorProto.service
		for mi, m := range s.methods {
			md := &descriptorpb.MethodDescriptorProto{
				Name: proto.String(m.name), InputType: proto.String(m.in), OutputType: proto.String(m.out),
				ClientStreaming: proto.Bool(m.client), ServerStreaming: proto.Bool(m.server),
				Options: &descriptorpb.MethodOptions{},
			}
			proto.SetExtension(md.Options, wsrpcv1.E_Method, m.opt)
			comment(m.comment, 6, int32(si), 2, int32(mi)) // ServiceDescriptorProto.method
			sd.Method = append(sd.Method, md)
		}
		fd.Service = append(fd.Service, sd)
	}
	return fd
}

// generateAll runs protoc-gen-go and this generator over files, as buf
// does through serialised requests, and returns the files they write.
func generateAll(t *testing.T, files ...protoFile) map[string]string {
	t.Helper()
	req := &pluginpb.CodeGeneratorRequest{ProtoFile: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(wsrpcv1.File_wsrpc_v1_options_proto),
		protodesc.ToFileDescriptorProto(emptypb.File_google_protobuf_empty_proto),
	}}
	for _, f := range files {
		req.FileToGenerate = append(req.FileToGenerate, f.name)
		req.ProtoFile = append(req.ProtoFile, f.descriptor())
	}
	out := map[string]string{}
	for _, gen := range []func(*protogen.Plugin) error{codegen.Generate, func(p *protogen.Plugin) error {
		for _, f := range p.Files {
			if f.Generate {
				gengo.GenerateFile(p, f)
			}
		}
		return nil
	}} {
		resp := run(t, req, gen)
		if resp.GetError() != "" {
			t.Fatal(resp.GetError())
		}
		for _, f := range resp.GetFile() {
			out[f.GetName()] = f.GetContent()
		}
	}
	return out
}

// TestGeneratedCodeCompiles builds, with the Go toolchain, what the
// generator writes for schemas at the edges of what it accepts, beside
// protoc-gen-go's messages, in a module of its own that uses this
// checkout of wsrpc: names that are Go keywords or snake_case, message
// types from other files, packages and google.protobuf.Empty, two files
// of one package, comments holding "*/", backticks and a "go:" directive
// line, messages in a Go package named like NewXClient's parameters, a
// service whose client type is named like one, and an edition-2023 file.
func TestGeneratedCodeCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const mod = "example.com/t/"
	m := func(name, in, out string, client, server bool, opt *wsrpcv1.MethodOptions) protoMethod {
		return protoMethod{name: name, in: in, out: out, client: client, server: server, opt: opt}
	}
	files := generateAll(t,
		protoFile{name: "b/v1/b.proto", pkg: "b.v1", goPackage: mod + "b/v1;bv1", messages: []string{"B"}},
		protoFile{name: "a/v1/a.proto", pkg: "a.v1", goPackage: mod + "a/v1;av1",
			deps: []string{"b/v1/b.proto", "google/protobuf/empty.proto"}, messages: []string{"M", "MyServiceClient"},
			services: []protoService{{name: "my_service", comment: " Says */ and `code` and \"q\" and \\ and\n//go:generate nothing\n", methods: []protoMethod{
				{name: "get_item", in: ".google.protobuf.Empty", out: ".b.v1.B", server: true, opt: sseRule(""), comment: "go:noinline\n a /* comment\n"},
				m("type", ".a.v1.M", ".google.protobuf.Empty", true, true, ws("")),
				m("func", ".b.v1.B", ".a.v1.M", true, false, ws("")),
			}}}},
		protoFile{name: "a/v1/a2.proto", pkg: "a.v1", goPackage: mod + "a/v1;av1", deps: []string{"a/v1/a.proto"},
			services: []protoService{{name: "Other", methods: []protoMethod{m("S", ".a.v1.M", ".a.v1.M", false, true, ws("/x/s"))}}}},
		protoFile{name: "opts/v1/o.proto", pkg: "opts.v1", goPackage: mod + "o/opts", messages: []string{"M"}},
		protoFile{name: "c/v1/c.proto", pkg: "c.v1", goPackage: mod + "c/v1;cv1", deps: []string{"opts/v1/o.proto"},
			services: []protoService{{name: "Http", methods: []protoMethod{m("S", ".opts.v1.M", ".opts.v1.M", false, true, ws(""))}}}},
		protoFile{name: "e/v1/e.proto", pkg: "e.v1", goPackage: mod + "e/v1;ev1", editions: true, messages: []string{"M"},
			services: []protoService{{name: "EService", methods: []protoMethod{m("S", ".e.v1.M", ".e.v1.M", false, true, sseRule(""))}}}},
	)

	for _, want := range []string{"a/v1/av1wsrpc/a.wsrpc.go", "a/v1/av1wsrpc/a2.wsrpc.go", "c/v1/cv1wsrpc/c.wsrpc.go", "e/v1/ev1wsrpc/e.wsrpc.go"} {
		if _, ok := files[mod+want]; !ok {
			t.Errorf("%s not generated", want)
		}
	}
	// go vet builds, and checks the doc directives too.
	if out, err := goModule(t, files, []string{"vet", "./..."}); err != nil {
		t.Fatalf("go vet of the generated code: %v\n%s", err, out)
	}
}

// goModule writes files (named by import path under example.com/t/) into
// a module of its own that uses this checkout of wsrpc, with the same
// requirements as wsrpc's so nothing is downloaded, and runs the go
// commands in it in turn, returning the last one's output or the first
// failure's.
func goModule(t *testing.T, files map[string]string, cmds ...[]string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(self))
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	_, req, _ := strings.Cut(string(goMod), "\nrequire")
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/t\n\ngo 1.26\n\nrequire github.com/wsrpc/wsrpc v0.0.0\n\nreplace github.com/wsrpc/wsrpc => "+root+"\n\nrequire"+req)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	for name, content := range files {
		rel, ok := strings.CutPrefix(name, "example.com/t/")
		if !ok {
			t.Fatalf("file %s outside the test module", name)
		}
		write(rel, content)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out []byte
	for _, args := range cmds {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if out, err = cmd.CombinedOutput(); err != nil {
			return string(out), err
		}
	}
	return string(out), nil
}

// TestNameClashes: services whose generated Go names meet, in one file or
// across the files of one Go package, are schema errors that name both.
func TestNameClashes(t *testing.T) {
	svc := func(name, method string) protoService {
		return protoService{name: name, methods: []protoMethod{{name: method, in: ".p.v1.M", out: ".p.v1.M", server: true, opt: ws("/" + name + "/" + method)}}}
	}
	file := func(name string, services ...protoService) protoFile {
		return protoFile{name: name, pkg: "p.v1", goPackage: "example.com/p/v1;pv1", messages: []string{"M" + strings.TrimSuffix(filepath.Base(name), ".proto")}, services: services}
	}
	for _, tc := range []struct {
		name  string
		files []protoFile
		want  string
	}{
		{"services Go-case alike", []protoFile{file("p/v1/m.proto", svc("foo_service", "A"), svc("FooService", "B"))},
			"Go name FooServiceName would be declared twice, by service p.v1.foo_service (p/v1/m.proto) and by service p.v1.FooService (p/v1/m.proto)"},
		{"names concatenate alike, across files", []protoFile{file("p/v1/m.proto", svc("Chat", "RoomList")), file("p/v1/n.proto", svc("ChatRoom", "List"))},
			"p/v1/n.proto: Go name ChatRoomListProcedure would be declared twice, by method p.v1.Chat.RoomList (p/v1/m.proto) and by method p.v1.ChatRoom.List (p/v1/n.proto)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.files[0].messages = append(tc.files[0].messages, "M")
			req := &pluginpb.CodeGeneratorRequest{ProtoFile: []*descriptorpb.FileDescriptorProto{
				protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
				protodesc.ToFileDescriptorProto(wsrpcv1.File_wsrpc_v1_options_proto),
			}}
			for i, f := range tc.files {
				if i > 0 {
					f.deps = []string{tc.files[0].name}
				}
				req.FileToGenerate = append(req.FileToGenerate, f.name)
				req.ProtoFile = append(req.ProtoFile, f.descriptor())
			}
			resp := run(t, req)
			if !strings.Contains(resp.GetError(), tc.want) || len(resp.GetFile()) != 0 {
				t.Fatalf("error %q and %d files, want %q and none", resp.GetError(), len(resp.GetFile()), tc.want)
			}
		})
	}
}

// requestFor builds a CodeGeneratorRequest generating files.
func requestFor(files ...protoFile) *pluginpb.CodeGeneratorRequest {
	req := &pluginpb.CodeGeneratorRequest{ProtoFile: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(wsrpcv1.File_wsrpc_v1_options_proto),
	}}
	for _, f := range files {
		req.FileToGenerate = append(req.FileToGenerate, f.name)
		req.ProtoFile = append(req.ProtoFile, f.descriptor())
	}
	return req
}

// TestRouteClashes: handlers generated in one run may share a mux, where
// registering a pattern twice panics, so a path or a mount pattern used by
// two services, in one file or in files of different Go packages, is a
// schema error that names both.
func TestRouteClashes(t *testing.T) {
	svc := func(pkg, name string, paths ...string) protoService {
		s := protoService{name: name}
		for i, p := range paths {
			s.methods = append(s.methods, protoMethod{name: string(rune('A' + i)), in: "." + pkg + ".M", out: "." + pkg + ".M", server: true, opt: sseRule(p)})
		}
		return s
	}
	file := func(pkg string, services ...protoService) protoFile {
		dir := strings.ReplaceAll(pkg, ".", "/")
		return protoFile{name: dir + "/f.proto", pkg: pkg, goPackage: "example.com/t/" + dir + ";" + strings.ReplaceAll(pkg, ".", ""), messages: []string{"M"}, services: services}
	}
	for _, tc := range []struct {
		name  string
		files []protoFile
		want  string // "": no error
	}{
		{"path in two services of a file", []protoFile{file("d.v1", svc("d.v1", "AService", "/events"), svc("d.v1", "BService", "/events"))},
			`d/v1/f.proto: method d.v1.BService.A: path "/events" is also used by method d.v1.AService.A (d/v1/f.proto)`},
		{"path in two Go packages", []protoFile{file("e.v1", svc("e.v1", "E", "/api/watch")), file("f.v1", svc("f.v1", "F", "", "/api/watch"))},
			`f/v1/f.proto: method f.v1.F.B: path "/api/watch" is also used by method e.v1.E.A (e/v1/f.proto)`},
		{"custom path is another's default", []protoFile{file("e.v1", svc("e.v1", "E", "")), file("f.v1", svc("f.v1", "F", "/e.v1.E/A"))},
			`f/v1/f.proto: method f.v1.F.A: path "/e.v1.E/A" is also used by method e.v1.E.A (e/v1/f.proto)`},
		// Both mount on "/rooms/": each is to be mounted on its paths,
		// as their comments say.
		{"mount pattern in two Go packages", []protoFile{file("e.v1", svc("e.v1", "R", "/rooms/a", "/rooms/b")), file("f.v1", svc("f.v1", "S", "/rooms/c", "/rooms/d"))}, ""},
		// "/{$}" and "/" are distinct patterns, as are a directory and a
		// lone method's path in it.
		{"root path beside paths sharing no directory", []protoFile{file("e.v1", svc("e.v1", "Home", "/"), svc("e.v1", "S", "/a", "/b/c"))}, ""},
		{"lone path in another service's directory", []protoFile{file("e.v1", svc("e.v1", "R", "/rooms/a", "/rooms/b"), svc("e.v1", "W", "/rooms/watch"))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := run(t, requestFor(tc.files...))
			if tc.want == "" {
				if resp.GetError() != "" {
					t.Fatal(resp.GetError())
				}
				return
			}
			if !strings.Contains(resp.GetError(), tc.want) || len(resp.GetFile()) != 0 {
				t.Fatalf("error %q and %d files, want %q and none", resp.GetError(), len(resp.GetFile()), tc.want)
			}
		})
	}
}

// TestImportNamedLikeDeclaration: a message package whose Go name is an
// identifier the generated package declares (the unexported client type,
// or another file's handler type or path constant) would make code that
// does not compile ("already declared through import of package"), so it
// is a generation error naming the file, the service, the package and the
// declaration. A message in the generated package itself, which no import
// names, is one too, whether or not it is named like a declaration, and so
// is any file in that package, used by no method or by another file's.
func TestImportNamedLikeDeclaration(t *testing.T) {
	const mod = "example.com/t/"
	msgs := func(goName string) protoFile {
		return protoFile{name: "m/m.proto", pkg: "m", goPackage: mod + "m/" + goName, messages: []string{"M"}}
	}
	x := protoFile{name: "x/x.proto", pkg: "x", goPackage: mod + "x;x", messages: []string{"X"},
		services: []protoService{{name: "XService", methods: []protoMethod{{name: "S", in: ".x.X", out: ".x.X", server: true, opt: ws("")}}}}}
	usesM := func(f protoFile, service string) protoFile {
		f.deps = append(f.deps, "m/m.proto")
		f.services = []protoService{{name: service, methods: []protoMethod{{name: "S", in: ".m.M", out: ".m.M", server: true, opt: ws("")}}}}
		return f
	}
	y := protoFile{name: "x/y.proto", pkg: "x", goPackage: mod + "x;x"}
	inGenerated := protoFile{name: "m/m.proto", pkg: "m", goPackage: mod + "x/xwsrpc;xwsrpc", messages: []string{"XServiceName"}}
	usesGenerated := x
	usesGenerated.deps = []string{"m/m.proto"}
	usesGenerated.services = []protoService{{name: "XService", methods: []protoMethod{{name: "S", in: ".m.XServiceName", out: ".m.XServiceName", server: true, opt: ws("")}}}}
	importsM := x
	importsM.deps = []string{"m/m.proto"}
	for _, tc := range []struct {
		name  string
		files []protoFile
		want  string
	}{
		{"unexported client type", []protoFile{msgs("xServiceClient"), usesM(x, "XService")},
			`x/x.proto: service x.XService: message m.M's Go package "example.com/t/m/xServiceClient" would be imported as xServiceClient, which service x.XService (x/x.proto) declares`},
		{"another file's handler type", []protoFile{msgs("XServiceHandler"), x, usesM(y, "YService")},
			`x/y.proto: service x.YService: message m.M's Go package "example.com/t/m/XServiceHandler" would be imported as XServiceHandler, which service x.XService (x/x.proto) declares`},
		{"another file's path constant", []protoFile{msgs("XServiceSPath"), x, usesM(y, "YService")},
			`would be imported as XServiceSPath, which method x.XService.S (x/x.proto) declares: name the package otherwise in m/m.proto's go_package ("example.com/t/m/XServiceSPath;<name>")`},
		{"message in the generated package, named like a declaration", []protoFile{inGenerated, usesGenerated},
			`x/x.proto: method x.XService.S: message m.XServiceName is in package "example.com/t/x/xwsrpc", the package generated for x/x.proto's services: give it a go_package of its own`},
		{"message in the generated package", []protoFile{{name: "m/m.proto", pkg: "m", goPackage: mod + "x/xwsrpc", messages: []string{"M"}}, usesM(x, "XService")},
			`x/x.proto: method x.XService.S: message m.M is in package "example.com/t/x/xwsrpc", the package generated for x/x.proto's services`},
		{"unused file in the generated package, named like a declaration", []protoFile{inGenerated, x},
			`m/m.proto: its Go package "example.com/t/x/xwsrpc" is the package generated for x/x.proto's services: give it a go_package of its own`},
		{"another file's services use it", []protoFile{{name: "m/m.proto", pkg: "m", goPackage: mod + "x/xwsrpc", messages: []string{"M"}}, x, usesM(protoFile{name: "y/y.proto", pkg: "y", goPackage: mod + "y;y"}, "YService")},
			`m/m.proto: its Go package "example.com/t/x/xwsrpc" is the package generated for x/x.proto's services`},
		{"imported by the services' file", []protoFile{{name: "m/m.proto", pkg: "m", goPackage: mod + "x/xwsrpc", messages: []string{"M"}}, importsM},
			`m/m.proto: its Go package "example.com/t/x/xwsrpc" is the package generated for x/x.proto's services`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := run(t, requestFor(tc.files...))
			if !strings.Contains(resp.GetError(), tc.want) || len(resp.GetFile()) != 0 {
				t.Fatalf("error %q and %d files, want %q and none", resp.GetError(), len(resp.GetFile()), tc.want)
			}
		})
	}
}

// TestMountBesideApplicationRoutes mounts generated handlers, as their
// doc comments say, on a mux that also serves the application's own
// routes, in a program built against this checkout: a lone method's
// handler takes only its path ("/{$}" for "/"), so it neither hides the
// application's other routes in its directory or at "/" nor conflicts
// with another service's handler there (ServeMux would panic).
func TestMountBesideApplicationRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const mod = "example.com/t/"
	m := func(name, path string) protoMethod {
		return protoMethod{name: name, in: ".api.v1.M", out: ".api.v1.M", server: true, opt: sseRule(path)}
	}
	files := generateAll(t, protoFile{name: "api/v1/api.proto", pkg: "api.v1", goPackage: mod + "api/v1;apiv1", messages: []string{"M"},
		services: []protoService{
			{name: "EventsService", methods: []protoMethod{m("Watch", "/api/v1/events")}},
			{name: "ChatService", methods: []protoMethod{{name: "Chat", in: ".api.v1.M", out: ".api.v1.M", client: true, server: true, opt: ws("/api/v1/chat")}}},
			{name: "HomeService", methods: []protoMethod{m("Home", "/")}},
			{name: "RoomsService", methods: []protoMethod{m("A", "/rooms/a"), m("B", "/rooms/b")}},
		}})
	files[mod+"cmd/main.go"] = `package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"example.com/t/api/v1/apiv1wsrpc"
)

func main() {
	mux := http.NewServeMux()
	// The application's own routes: a REST API and a fallback page.
	mux.HandleFunc("/api/", http.NotFound)
	mux.HandleFunc("/", http.NotFound)
	// Handle panics on a pattern that conflicts with one registered.
	mux.Handle(apiv1wsrpc.NewEventsServiceHandler(apiv1wsrpc.UnimplementedEventsServiceHandler{}))
	mux.Handle(apiv1wsrpc.NewChatServiceHandler(apiv1wsrpc.UnimplementedChatServiceHandler{}))
	mux.Handle(apiv1wsrpc.NewHomeServiceHandler(apiv1wsrpc.UnimplementedHomeServiceHandler{}))
	mux.Handle(apiv1wsrpc.NewRoomsServiceHandler(apiv1wsrpc.UnimplementedRoomsServiceHandler{}))
	for _, p := range []string{"/api/v1/users", "/api/v1/events", "/api/v1/chat", "/", "/about", "/rooms/a"} {
		_, pattern := mux.Handler(httptest.NewRequest("GET", p, nil))
		fmt.Printf("%s -> %s\n", p, pattern)
	}
}
`
	out, err := goModule(t, files, []string{"vet", "./..."}, []string{"run", "./cmd"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"/api/v1/users -> /api/\n",
		"/api/v1/events -> /api/v1/events\n",
		"/api/v1/chat -> /api/v1/chat\n",
		"/ -> /{$}\n",
		"/about -> /\n",
		"/rooms/a -> /rooms/\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("request routed otherwise than %q; program output:\n%s", want, out)
		}
	}
}

// TestKeywordPackagesListed builds, with the Go toolchain, what the
// generator writes for go_packages whose last element is a Go keyword
// (".../func", package _func) or starts with a digit (".../2fa", package
// _2fa), and checks that "go list ./..." sees the generated packages: their
// directories were _funcwsrpc/ and _2fawsrpc/, which the go tool ignores,
// so "./..." skipped them without a word.
func TestKeywordPackagesListed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const mod = "example.com/t/"
	svc := func(pkg string) []protoService {
		return []protoService{{name: "KService", methods: []protoMethod{{name: "S", in: "." + pkg + ".M", out: "." + pkg + ".M", server: true, opt: ws("/" + pkg)}}}}
	}
	files := generateAll(t,
		protoFile{name: "k/func/f.proto", pkg: "k.fn", goPackage: mod + "k/func", messages: []string{"M"}, services: svc("k.fn")},
		protoFile{name: "k/2fa/f.proto", pkg: "k.twofa", goPackage: mod + "k/2fa", messages: []string{"M"}, services: svc("k.twofa")},
	)
	files[mod+"cmd/main.go"] = `package main

import (
	"net/http"

	"example.com/t/k/2fa/2fawsrpc"
	"example.com/t/k/func/funcwsrpc"
)

func main() {
	mux := http.NewServeMux()
	mux.Handle(funcwsrpc.NewKServiceHandler(funcwsrpc.UnimplementedKServiceHandler{}))
	mux.Handle(_2fawsrpc.NewKServiceHandler(_2fawsrpc.UnimplementedKServiceHandler{}))
}
`
	out, err := goModule(t, files, []string{"vet", "./..."}, []string{"list", "./..."})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{mod + "k/func/funcwsrpc\n", mod + "k/2fa/2fawsrpc\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("go list ./... lacks %s; it lists:\n%s", strings.TrimSpace(want), out)
		}
	}
}

// TestServiceAndMethodNamesCompile builds, with the Go toolchain, what the
// generator writes for services and methods named like what it generates
// or like common Go methods: services named Service, ServiceHandler and
// Unimplemented, whose generated names are one another's prefixes
// (ServiceHandler, ServiceHandlerHandler, UnimplementedServiceHandler,
// UnimplementedHandler), and methods named Close, String, Name, Handler,
// ServeHTTP and Get_Foo, in every method shape over WebSocket and SSE. The
// generator must neither call such names a clash nor declare them twice.
// Service Vet's methods are named like those go vet's stdmethods check
// knows but lets through with the generated signatures (Format, Scan,
// Seek, ReadFrom, WriteTo: the first parameter is no fmt.State, io.Reader…;
// Is, As, Unwrap: no generated type implements error, even beside an
// Error method) or no longer checks (Peek): the generator must not refuse
// them (TestVetMethodNames has those it refuses).
func TestServiceAndMethodNamesCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const mod = "example.com/t/"
	m := func(name string, client, server bool, opt *wsrpcv1.MethodOptions) protoMethod {
		return protoMethod{name: name, in: ".t.v1.M", out: ".t.v1.M", client: client, server: server, opt: opt}
	}
	files := generateAll(t, protoFile{name: "t/v1/t.proto", pkg: "t.v1", goPackage: mod + "t/v1;tv1", messages: []string{"M"},
		services: []protoService{
			{name: "Service", methods: []protoMethod{
				m("Close", true, true, ws("")),
				m("String", false, true, ws("")),
				m("Handler", true, false, ws("")),
				m("Get_Foo", false, true, sseRule("")),
				m("Name", false, true, sseRule("")),
				m("ServeHTTP", false, true, sseRule("")),
			}},
			{name: "ServiceHandler", methods: []protoMethod{m("Handler", true, true, ws(""))}},
			{name: "Unimplemented", methods: []protoMethod{m("Service", false, true, ws("")), m("Handler", true, false, ws(""))}},
			{name: "Vet", methods: []protoMethod{
				m("Format", true, true, ws("")),
				m("Scan", false, true, ws("")),
				m("Seek", true, false, ws("")),
				m("ReadFrom", false, true, sseRule("")),
				m("WriteTo", true, false, ws("")),
				m("Peek", false, true, sseRule("")),
				m("Error", false, true, ws("")),
				m("Is", true, true, ws("")),
				m("As", false, true, sseRule("")),
				m("Unwrap", true, false, ws("")),
			}},
		}})
	if _, ok := files[mod+"t/v1/tv1wsrpc/t.wsrpc.go"]; !ok {
		t.Fatal("t/v1/tv1wsrpc/t.wsrpc.go not generated")
	}
	if out, err := goModule(t, files, []string{"vet", "./..."}); err != nil {
		t.Fatalf("go vet of the generated code: %v\n%s", err, out)
	}
}

// TestMessagePackageNamesCompile builds, with the Go toolchain, what the
// generator writes for messages from Go packages named like the generated
// code's parameters (ctx, req, httpClient, baseURL, opts, svc, w, r), its
// receiver (c) and its imports (context, http, strings, wsrpc), in every
// method shape over WebSocket and SSE: such an import must not be hidden
// by a parameter where the generated code names it, nor meet another
// import's name.
func TestMessagePackageNamesCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const mod = "example.com/t/"
	x := protoFile{name: "x/x.proto", pkg: "x", goPackage: mod + "x;x", services: []protoService{{name: "XService"}}}
	files := []protoFile{}
	for _, name := range []string{"ctx", "req", "httpClient", "baseURL", "opts", "svc", "w", "r", "c", "context", "http", "strings", "wsrpc"} {
		f := protoFile{name: "m/" + name + "/m.proto", pkg: "m." + name, goPackage: mod + "m/" + name + ";" + name, messages: []string{"M"}}
		files = append(files, f)
		x.deps = append(x.deps, f.name)
		method := func(shape string, client, server bool, opt *wsrpcv1.MethodOptions) protoMethod {
			return protoMethod{name: strings.ToUpper(name[:1]) + name[1:] + shape, in: "." + f.pkg + ".M", out: "." + f.pkg + ".M", client: client, server: server, opt: opt}
		}
		x.services[0].methods = append(x.services[0].methods,
			method("Bidi", true, true, ws("")),
			method("ServerStream", false, true, ws("")),
			method("ClientStream", true, false, ws("")),
			method("SSE", false, true, sseRule("")))
	}
	gen := generateAll(t, append(files, x)...)
	if _, ok := gen[mod+"x/xwsrpc/x.wsrpc.go"]; !ok {
		t.Fatal("x/xwsrpc/x.wsrpc.go not generated")
	}
	if out, err := goModule(t, gen, []string{"vet", "./..."}); err != nil {
		t.Fatalf("go vet of the generated code: %v\n%s", err, out)
	}
}
