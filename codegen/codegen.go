// Package codegen is the library behind protoc-gen-wsrpc: it turns the
// services of protobuf files into typed wsrpc handlers and clients, one
// file <name>.wsrpc.go per .proto file, in a sub-package named after the
// Go package with "wsrpc" appended (gen/chat/v1/chatv1wsrpc/chat.wsrpc.go
// for gen/chat/v1/chat.pb.go), in the style of connect-go.
//
// Methods opt in with the (wsrpc.v1.method) option (see
// proto/wsrpc/v1/options.proto); methods without it are skipped, and a
// service with no such method generates nothing. Mistakes in a schema are
// reported through the plugin's error with the file and method, never a
// panic. Output is deterministic.
package codegen

import (
	"fmt"
	"go/build/constraint"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	wsrpcv1 "github.com/wsrpc/wsrpc/gen/wsrpc/v1"
)

// Version is protoc-gen-wsrpc's version, written into every generated
// file's header.
const Version = "0.1.0"

// PackageSuffix is appended to a file's Go package name to name the
// package of its generated wsrpc code, and its directory. The "_" that
// protogen puts before a package name that is a Go keyword or starts with
// a digit is dropped first (funcwsrpc for package _func: the go tool
// ignores a directory whose name starts with "_"); a package name that
// would then start with a digit keeps it (_2fawsrpc, in 2fawsrpc/).
const PackageSuffix = "wsrpc"

const (
	wsrpcPkg   = protogen.GoImportPath("github.com/wsrpc/wsrpc")
	contextPkg = protogen.GoImportPath("context")
	httpPkg    = protogen.GoImportPath("net/http")
)

// transport of one method.
type transport int

const (
	webSocket transport = iota + 1
	serverSentEvents
)

// method is a method with a wsrpc transport.
type method struct {
	*protogen.Method
	transport transport
	path      string
}

type service struct {
	*protogen.Service
	methods []*method
	mount   string // the pattern NewFooServiceHandler returns
}

// Generate is the protogen entry point: it generates a file for every
// requested .proto file that has a service with a wsrpc method.
func Generate(plugin *protogen.Plugin) error {
	// The generator reads services, methods and their options only, which
	// mean the same in every syntax and edition.
	plugin.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL |
		pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
	plugin.SupportedEditionsMinimum = descriptorpb.Edition_EDITION_PROTO2
	plugin.SupportedEditionsMaximum = descriptorpb.Edition_EDITION_2023
	// Every file is checked before any is generated: the handlers of one
	// run may share a mux, so method paths are unique across all of them,
	// and a file's imports must miss the identifiers of its whole
	// generated package, other files' included.
	type file struct {
		*protogen.File
		services []*service
	}
	var files []file
	names := map[protogen.GoImportPath]map[string]string{} // per generated package
	paths := map[string]string{}                           // method path -> who serves it
	generatedFor := map[protogen.GoImportPath]string{}     // generated package -> a .proto it serves
	for _, f := range plugin.Files {
		if !f.Generate {
			continue
		}
		services, err := collect(f)
		if err != nil {
			return err
		}
		if len(services) == 0 {
			continue
		}
		pkg := generatedPackage(f)
		if names[pkg] == nil {
			names[pkg] = map[string]string{}
			generatedFor[pkg] = f.Desc.Path()
		}
		if err := claimNames(f, services, names[pkg]); err != nil {
			return err
		}
		if err := claimRoutes(f, services, paths); err != nil {
			return err
		}
		files = append(files, file{f, services})
	}
	for _, f := range files {
		g := generateFile(plugin, f.File, f.services)
		if err := checkImports(g, f.File, f.services, names[generatedPackage(f.File)]); err != nil {
			return err
		}
	}
	return checkForeignFiles(plugin, generatedFor)
}

// checkForeignFiles fails when a .proto file's Go package is one this run
// generates wsrpc code into (generatedFor). checkImports names the case
// where a method uses such a file's message; this one catches the rest —
// a file no method of its own package uses, one used by another file's
// services, one merely imported — since protoc-gen-go's output for it
// lands in the generated package all the same: it shares the package
// block with the generated declarations (a message named XServiceClient
// does not compile beside service XService), and when the .proto of the
// services imports it, the generated package imports the services'
// message package, which imports the generated package back (an import
// cycle). Well-known types and other dependencies are checked too: a Go
// package is one directory however it was generated.
func checkForeignFiles(plugin *protogen.Plugin, generatedFor map[protogen.GoImportPath]string) error {
	for _, f := range plugin.Files {
		if owner, ok := generatedFor[f.GoImportPath]; ok {
			return fmt.Errorf("%s: its Go package %q is the package generated for %s's services: give it a go_package of its own",
				f.Desc.Path(), string(f.GoImportPath), owner)
		}
	}
	return nil
}

// claimRoutes records the method paths of f's services in paths, failing
// on one another method of this run already has: two handlers could not
// both serve it. Two services whose mount patterns meet (custom paths in
// one directory) are no error: their generated comments say to mount
// each handler on its methods' paths instead, which http.ServeMux allows.
func claimRoutes(f *protogen.File, services []*service, paths map[string]string) error {
	for _, s := range services {
		for _, m := range s.methods {
			if prev, ok := paths[m.path]; ok {
				return schemaErr(f, m.Method, "path %q is also used by %s: give one another path", m.path, prev)
			}
			paths[m.path] = fmt.Sprintf("method %s (%s)", m.Desc.FullName(), f.Desc.Path())
		}
	}
	return nil
}

// checkImports fails when g, generated for f, imports a package under a
// name its generated package declares (names, from claimNames): Go allows
// no identifier both in a file's imports and in its package block, and
// protogen keeps import names clear of Go's predeclared identifiers only.
// Only message packages can meet one: every declared identifier has an
// upper-case letter, which the runtime packages' names lack, so a package
// must be named against Go's conventions (go_package ".../xServiceClient").
//
// It fails too when a message is in g's own package (a go_package of
// ".../x/xwsrpc" for x.proto's services): the message is then named bare,
// not through an import, so no import name betrays a clash, and its
// protoc-gen-go code shares the package block with the generated
// declarations. One named like them (SName beside service S) makes code
// that does not compile; one named otherwise compiles only until a new
// service or method takes its name, so any such message is refused.
func checkImports(g *protogen.GeneratedFile, f *protogen.File, services []*service, names map[string]string) error {
	own := generatedPackage(f)
	for _, s := range services {
		for _, m := range s.methods {
			for _, msg := range []*protogen.Message{m.Input, m.Output} {
				if msg.GoIdent.GoImportPath == own {
					return schemaErr(f, m.Method, "message %s is in package %q, the package generated for %s's services: give it a go_package of its own",
						msg.Desc.FullName(), string(own), f.Desc.Path())
				}
				// Already qualified while generating, so this adds no import.
				q := qualifier(g.QualifiedGoIdent(msg.GoIdent))
				if owner, ok := names[q]; ok {
					imp := string(msg.GoIdent.GoImportPath)
					return fmt.Errorf("%s: service %s: message %s's Go package %q would be imported as %s, which %s declares: name the package otherwise in %s's go_package (\"%s;<name>\")",
						f.Desc.Path(), s.Desc.FullName(), msg.Desc.FullName(), imp, q, owner, msg.Desc.ParentFile().Path(), imp)
				}
			}
		}
	}
	return nil
}

// claimNames records the package-level identifiers f's services generate
// in names (identifier -> who declared it), failing on one already taken:
// services or methods whose names Go-case alike (foo_service and
// FooService), or whose concatenations meet (Chat.RoomList and
// ChatRoom.List), in this file or another of the same Go package, would
// otherwise make code that does not compile. It fails too on a method
// whose Go name go vet holds to another signature (vetMethods): the code
// would compile, but fail vet, which `go test` runs.
func claimNames(f *protogen.File, services []*service, names map[string]string) error {
	claim := func(id, owner string) error {
		if prev, ok := names[id]; ok {
			return fmt.Errorf("%s: Go name %s would be declared twice, by %s and by %s: rename one", f.Desc.Path(), id, prev, owner)
		}
		names[id] = owner
		return nil
	}
	for _, s := range services {
		owner := fmt.Sprintf("service %s (%s)", s.Desc.FullName(), f.Desc.Path())
		n := s.GoName
		for _, id := range []string{n + "Name", n + "Client", "New" + n + "Client", unexport(n) + "Client",
			n + "Handler", "New" + n + "Handler", "Unimplemented" + n + "Handler"} {
			if err := claim(id, owner); err != nil {
				return err
			}
		}
		methods := map[string]string{} // Go name -> proto name, within the service
		for _, m := range s.methods {
			if sig, ok := vetMethods[m.GoName]; ok {
				return schemaErr(f, m.Method, "its Go name %s would make go vet fail on the generated code: vet's stdmethods check wants every %s method to be %s, which a generated method cannot be: rename the RPC", m.GoName, m.GoName, sig)
			}
			if other, ok := methods[m.GoName]; ok {
				return schemaErr(f, m.Method, "its Go name %s is also method %s's: rename one", m.GoName, other)
			}
			methods[m.GoName] = string(m.Desc.Name())
			owner := fmt.Sprintf("method %s (%s)", m.Desc.FullName(), f.Desc.Path())
			for _, id := range []string{procConst(s, m), pathConst(s, m)} {
				if err := claim(id, owner); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// vetMethods maps the method names go vet's stdmethods check holds to one
// signature, that of a well-known interface's method (json.Marshaler,
// io.ByteReader…), to that signature. A generated client or handler
// method takes a context, so it never has it, and vet fails on the
// generated code. The check's other names pass: Format, ReadFrom, Scan,
// Seek and WriteTo are checked only when the first parameter is the
// interface's (fmt.State, io.Reader…), which a context is not, and Is, As
// and Unwrap only on types that implement error, which no generated type
// does (its Error method, if any, takes a context too). Pinned by
// TestVetMethodNames and TestServiceAndMethodNamesCompile.
var vetMethods = map[string]string{
	"GobDecode":     "GobDecode([]byte) error",
	"GobEncode":     "GobEncode() ([]byte, error)",
	"MarshalJSON":   "MarshalJSON() ([]byte, error)",
	"MarshalXML":    "MarshalXML(*xml.Encoder, xml.StartElement) error",
	"ReadByte":      "ReadByte() (byte, error)",
	"ReadRune":      "ReadRune() (rune, int, error)",
	"UnmarshalJSON": "UnmarshalJSON([]byte) error",
	"UnmarshalXML":  "UnmarshalXML(*xml.Decoder, xml.StartElement) error",
	"UnreadByte":    "UnreadByte() error",
	"UnreadRune":    "UnreadRune() error",
	"WriteByte":     "WriteByte(byte) error",
}

// collect validates f's wsrpc methods.
func collect(f *protogen.File) ([]*service, error) {
	var out []*service
	for _, s := range f.Services {
		svc := &service{Service: s}
		paths := map[string]string{}
		for _, m := range s.Methods {
			wm, err := methodOf(f, m)
			if err != nil {
				return nil, err
			}
			if wm == nil {
				continue
			}
			if other, ok := paths[wm.path]; ok {
				return nil, schemaErr(f, m, "path %q is already used by method %s", wm.path, other)
			}
			paths[wm.path] = string(m.Desc.Name())
			svc.methods = append(svc.methods, wm)
		}
		if len(svc.methods) > 0 {
			svc.mount = mountPath(svc.methods)
			out = append(out, svc)
		}
	}
	return out, nil
}

func schemaErr(f *protogen.File, m *protogen.Method, format string, args ...any) error {
	return fmt.Errorf("%s: method %s: %s", f.Desc.Path(), m.Desc.FullName(), fmt.Sprintf(format, args...))
}

// methodOf reads m's (wsrpc.v1.method) option: nil for a method without
// it, an error for a misuse.
func methodOf(f *protogen.File, m *protogen.Method) (*method, error) {
	opts := m.Desc.Options()
	if opts == nil || !proto.HasExtension(opts, wsrpcv1.E_Method) {
		return nil, nil
	}
	mo, ok := proto.GetExtension(opts, wsrpcv1.E_Method).(*wsrpcv1.MethodOptions)
	if !ok || mo == nil {
		return nil, schemaErr(f, m, "cannot read the (wsrpc.v1.method) option")
	}
	cs, ss := m.Desc.IsStreamingClient(), m.Desc.IsStreamingServer()
	wm := &method{Method: m}
	var p string
	switch t := mo.GetTransport().(type) {
	case *wsrpcv1.MethodOptions_Websocket:
		wm.transport = webSocket
		p = t.Websocket.GetPath()
		if !cs && !ss {
			return nil, schemaErr(f, m, "(wsrpc.v1.method).websocket needs a streaming method; this one is unary")
		}
	case *wsrpcv1.MethodOptions_Sse:
		wm.transport = serverSentEvents
		p = t.Sse.GetPath()
		if cs || !ss {
			return nil, schemaErr(f, m, "(wsrpc.v1.method).sse needs a server-streaming method; this one is %s", kindName(cs, ss))
		}
	default:
		return nil, schemaErr(f, m, "(wsrpc.v1.method) sets no transport: set websocket or sse")
	}
	if p == "" {
		p = procedure(m)
	}
	if err := checkPath(p); err != nil {
		return nil, schemaErr(f, m, "bad path %q: %v", p, err)
	}
	wm.path = p
	return wm, nil
}

func kindName(cs, ss bool) string {
	switch {
	case cs && ss:
		return "bidirectional-streaming"
	case cs:
		return "client-streaming"
	case ss:
		return "server-streaming"
	}
	return "unary"
}

// checkPath applies the rules of WebSocketRule.path.
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("it must start with /")
	case strings.ContainsAny(p, "?#"):
		return fmt.Errorf("it must not contain a query or fragment")
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return fmt.Errorf("it must not end with /")
	case strings.Contains(p, "//"):
		return fmt.Errorf("it must not contain an empty segment")
	case strings.ContainsAny(p, "{}"):
		// The handler's mount path is a net/http.ServeMux pattern, where
		// braces are wildcards.
		return fmt.Errorf("it must not contain { or }")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("it must not contain . or .. segments")
		}
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || r == '%' || r == '\\' || r > 0x7e {
			return fmt.Errorf("it must be printable ASCII without spaces, %%, or \\")
		}
	}
	return nil
}

func procedure(m *protogen.Method) string {
	return "/" + string(m.Parent.Desc.FullName()) + "/" + string(m.Desc.Name())
}

// mountPath is the http.ServeMux pattern NewFooServiceHandler returns. A
// lone method's is its path itself, an exact pattern ("/{$}" for "/",
// which as a pattern would match every path): its directory would take
// the application's other routes there away and conflict with another
// service mounted in it. Several methods get the longest common prefix
// of their paths, cut after its last "/".
func mountPath(methods []*method) string {
	if len(methods) == 1 {
		if methods[0].path == "/" {
			return "/{$}"
		}
		return methods[0].path
	}
	prefix := methods[0].path
	for _, m := range methods[1:] {
		for !strings.HasPrefix(m.path, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	return prefix[:strings.LastIndex(prefix, "/")+1]
}

// generatedPackage is the import path of f's generated wsrpc code.
func generatedPackage(f *protogen.File) protogen.GoImportPath {
	dir, _ := generatedName(f)
	return protogen.GoImportPath(path.Join(string(f.GoImportPath), dir))
}

// generatedName returns the directory and the package name of f's
// generated code: f's Go package name with PackageSuffix appended, without
// the leading "_" protogen gives a name that is a Go keyword (package _func
// for go_package ".../func") or does not start with a letter. The go tool
// ignores a directory whose name starts with "_" ("./..." skips it without
// a word), and funcwsrpc is no keyword. The package keeps a "_" only where
// its name would otherwise start with a digit (_2fawsrpc in 2fawsrpc/),
// which no Go identifier may.
func generatedName(f *protogen.File) (dir, pkg string) {
	dir = strings.TrimLeft(string(f.GoPackageName), "_") + PackageSuffix
	if r, _ := utf8.DecodeRuneInString(dir); !unicode.IsLetter(r) {
		return dir, "_" + dir
	}
	return dir, dir
}

func generateFile(plugin *protogen.Plugin, f *protogen.File, services []*service) *protogen.GeneratedFile {
	pkgDir, pkgName := generatedName(f)
	dir, base := path.Split(f.GeneratedFilenamePrefix)
	filename := path.Join(dir, pkgDir, base+".wsrpc.go")
	g := plugin.NewGeneratedFile(filename, generatedPackage(f))

	g.P("// Code generated by protoc-gen-wsrpc. DO NOT EDIT.")
	g.P("//")
	g.P("// Source: ", f.Desc.Path())
	g.P("// Generator: protoc-gen-wsrpc v", Version)
	g.P()
	g.P("package ", pkgName)
	g.P()
	g.P("// This assertion fails to compile when the linked wsrpc package is older")
	g.P("// than the one this file was generated for: update github.com/wsrpc/wsrpc.")
	g.P("const _ = ", wsrpcPkg.Ident("IsAtLeastVersion0_1_0"))
	g.P()
	for _, s := range services {
		generateService(g, s)
	}
	return g
}

func unexport(s string) string { return strings.ToLower(s[:1]) + s[1:] }

// leading writes a declaration's proto comments, or fallback when it has
// none.
func leading(g *protogen.GeneratedFile, c protogen.Comments, fallback string) {
	if strings.TrimSpace(string(c)) == "" {
		g.P("// ", fallback)
		return
	}
	g.P(goComment(c))
}

// serviceDoc writes first, then the service's proto comments.
func serviceDoc(g *protogen.GeneratedFile, s *service, first string) {
	g.P("// ", first)
	if strings.TrimSpace(string(s.Comments.Leading)) != "" {
		g.P("//")
		g.P(goComment(s.Comments.Leading))
	}
}

// goComment renders proto comments as Go line comments. A line that would
// read as a directive gets a space after the slashes, for it is
// documentation here: the form go/doc/comment calls a directive,
// "//(line |extern |export |[a-z0-9]+:[a-z0-9])" — the toolchain's
// (//go:noinline, //line f.go:1, cgo's //export) and other tools'
// (//nolint:all would silence golangci-lint for the declaration), which
// gofmt would also move to the end of the doc comment. A line that is
// "+build" after the slashes and white space, which gofmt would make the
// file's build constraint, gets a backslash before the "+". A carriage
// return (a .proto with CRLF line ends, or one inside a line) is white
// space.
// What Go source cannot hold even in a comment, and protoc passes on, is
// replaced: bytes that are not UTF-8 and NUL by U+FFFD, a byte order mark
// (U+FEFF, once a zero-width space) dropped; the Go parser refused the
// file, and the plugin failed with the whole generated file in its error.
func goComment(c protogen.Comments) string {
	text := strings.ReplaceAll(strings.ToValidUTF8(c.String(), "\uFFFD"), "\x00", "\uFFFD")
	text = strings.ReplaceAll(text, "\uFEFF", "")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		l = strings.ReplaceAll(strings.TrimSuffix(l, "\r"), "\r", " ")
		if directive.MatchString(l) {
			l = "// " + l[2:]
		}
		// go/printer, which formats every generated file, takes a comment
		// line that is "+build" after the slashes and white space for a
		// build constraint wherever it stands, and moves it above the
		// package clause as the file's: " +build linux" would build the
		// code on Linux alone. No space defuses it (the check trims
		// them), so a backslash goes before the "+".
		if constraint.IsPlusBuild(l) {
			i := strings.Index(l, "+build")
			l = l[:i] + `\` + l[i:]
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// directive matches a comment line go/doc/comment takes for a directive.
var directive = regexp.MustCompile(`^//(line |extern |export |[a-z0-9]+:[a-z0-9])`)

// deprecated marks a declaration generated for a method or service the
// schema deprecates (option deprecated = true), so that staticcheck and
// gopls flag its callers as they do for protoc-gen-go's messages.
func deprecated(g *protogen.GeneratedFile, d protoreflect.Descriptor) {
	if mo, ok := d.Options().(interface{ GetDeprecated() bool }); ok && mo.GetDeprecated() {
		g.P("//")
		g.P("// Deprecated: do not use.")
	}
}

func generateService(g *protogen.GeneratedFile, s *service) {
	name := s.GoName
	full := string(s.Desc.FullName())

	g.P("// ", name, "Name is the fully-qualified name of the ", name, " service.")
	g.P("const ", name, "Name = ", fmt.Sprintf("%q", full))
	g.P()
	g.P("// These constants are the procedure names of the ", name, " methods: the")
	g.P("// default paths they are served on, and the names interceptors see.")
	g.P("const (")
	for _, m := range s.methods {
		g.P("// ", procConst(s, m), " is the procedure name of ", full, ".", m.Desc.Name(), ".")
		g.P(procConst(s, m), " = ", fmt.Sprintf("%q", procedure(m.Method)))
	}
	g.P(")")
	g.P()
	g.P("// These constants are the HTTP paths the ", name, " methods are mounted on:")
	g.P("// the procedure name unless the schema overrides the path.")
	g.P("const (")
	for _, m := range s.methods {
		g.P("// ", pathConst(s, m), " is the path of ", full, ".", m.Desc.Name(), " (", transportName(m), ").")
		g.P(pathConst(s, m), " = ", fmt.Sprintf("%q", m.path))
	}
	g.P(")")
	g.P()

	// Client interface.
	serviceDoc(g, s, name+"Client is a client for the "+full+" service.")
	deprecated(g, s.Desc)
	g.P("type ", name, "Client interface {")
	for _, m := range s.methods {
		leading(g, m.Comments.Leading, m.GoName+" calls "+full+"."+string(m.Desc.Name())+".")
		deprecated(g, m.Desc)
		g.P(m.GoName, clientSignature(g, m))
	}
	g.P("}")
	g.P()

	g.P("// New", name, "Client returns a client for the ", full, " service at baseURL")
	g.P("// (scheme, host and any path prefix, such as \"http://127.0.0.1:8080\"; ws://")
	g.P("// and wss:// work too). A query in baseURL (\"?access_token=…\") is kept on")
	g.P("// every method's URL (see wsrpc.JoinPath). httpClient supplies the dialer,")
	g.P("// TLS and proxy (nil means http.DefaultClient); SSE calls go through its")
	g.P("// Transport, while WebSocket calls read only an *http.Transport's dialer,")
	g.P("// TLS config and proxy and the client's Jar, so a RoundTripper that wraps")
	g.P("// the transport (tracing, auth) is bypassed for them (see")
	g.P("// websocket.DialOptions.HTTPClient). opts configure every method (see")
	g.P("// wsrpc.Option).")
	deprecated(g, s.Desc)
	// The body names the message types' packages: the parameters must not
	// hide one (messages in a Go package named opts), nor the client type
	// (a service named Http).
	joinPath := g.QualifiedGoIdent(wsrpcPkg.Ident("JoinPath"))
	ctors := make([]string, len(s.methods))
	avoid := map[string]bool{unexport(name) + "Client": true, qualifier(joinPath): true}
	for i, m := range s.methods {
		ctors[i] = g.QualifiedGoIdent(wsrpcPkg.Ident(clientCtor(m))) + "[" + g.QualifiedGoIdent(m.Input.GoIdent) + ", " + g.QualifiedGoIdent(m.Output.GoIdent) + "]"
		avoid[qualifier(ctors[i])] = true
		avoid[qualifier(g.QualifiedGoIdent(m.Input.GoIdent))] = true
		avoid[qualifier(g.QualifiedGoIdent(m.Output.GoIdent))] = true
	}
	httpClient, baseURL, opts := param("httpClient", avoid), param("baseURL", avoid), param("opts", avoid)
	g.P("func New", name, "Client(", httpClient, " *", httpPkg.Ident("Client"), ", ", baseURL, " string, ", opts, " ...", wsrpcPkg.Ident("Option"), ") ", name, "Client {")
	g.P("return &", unexport(name), "Client{")
	for i, m := range s.methods {
		g.P(unexport(m.GoName), "Client: ", ctors[i], "(", httpClient, ", ", joinPath, "(", baseURL, ", ", pathConst(s, m), "), ", procConst(s, m), ", ", opts, "...),")
	}
	g.P("}")
	g.P("}")
	g.P()
	g.P("// ", unexport(name), "Client implements ", name, "Client.")
	g.P("type ", unexport(name), "Client struct {")
	for _, m := range s.methods {
		g.P(unexport(m.GoName), "Client *", wsrpcPkg.Ident(clientType(m)), "[", g.QualifiedGoIdent(m.Input.GoIdent), ", ", g.QualifiedGoIdent(m.Output.GoIdent), "]")
	}
	g.P("}")
	g.P()
	for _, m := range s.methods {
		g.P("// ", m.GoName, " calls ", full, ".", m.Desc.Name(), ".")
		g.P("func (c *", unexport(name), "Client) ", m.GoName, clientSignature(g, m), " {")
		if m.Desc.IsStreamingClient() {
			g.P("return c.", unexport(m.GoName), "Client.Call(ctx)")
		} else {
			g.P("return c.", unexport(m.GoName), "Client.Call(ctx, req)")
		}
		g.P("}")
		g.P()
	}

	// Handler interface.
	serviceDoc(g, s, name+"Handler is an implementation of the "+full+" service.")
	deprecated(g, s.Desc)
	g.P("type ", name, "Handler interface {")
	for _, m := range s.methods {
		leading(g, m.Comments.Leading, m.GoName+" serves "+full+"."+string(m.Desc.Name())+".")
		deprecated(g, m.Desc)
		g.P(m.GoName, handlerSignature(g, m))
	}
	g.P("}")
	g.P()

	mount := s.mount
	g.P("// New", name, "Handler builds an HTTP handler from the service implementation.")
	g.P("// It returns the path to mount it on (", fmt.Sprintf("%q", mount), ") and the handler,")
	g.P("// which serves the method paths and answers 404 to any other path.")
	switch {
	case mount == "/{$}":
		g.P("// \"/{$}\" is the http.ServeMux pattern of the path \"/\" alone.")
	case mount == "/":
		g.P("// The methods' paths share no directory, so that path is every other")
		g.P("// route's fallback in an http.ServeMux; to serve other paths under \"/\",")
		g.P("// mount the handler on each method's path instead:")
		eachPath(g, s)
	case customPaths(s):
		// The schema chose the directory, so the application may serve
		// other paths in it.
		g.P("// That pattern takes every path under ", fmt.Sprintf("%q", mount), "; if the mux serves other")
		g.P("// paths there, mount the handler on each method's path instead:")
		eachPath(g, s)
	}
	g.P("// opts configure every method (see wsrpc.Option).")
	deprecated(g, s.Desc)
	g.P("func New", name, "Handler(svc ", name, "Handler, opts ...", wsrpcPkg.Ident("Option"), ") (string, ", httpPkg.Ident("Handler"), ") {")
	for _, m := range s.methods {
		g.P(unexport(m.GoName), "Handler := ", wsrpcPkg.Ident(handlerCtor(m)), "(", procConst(s, m), ", svc.", m.GoName, ", opts...)")
	}
	g.P("return ", fmt.Sprintf("%q", mount), ", ", httpPkg.Ident("HandlerFunc"), "(func(w ", httpPkg.Ident("ResponseWriter"), ", r *", httpPkg.Ident("Request"), ") {")
	g.P("switch r.URL.Path {")
	for _, m := range s.methods {
		g.P("case ", pathConst(s, m), ":")
		g.P(unexport(m.GoName), "Handler.ServeHTTP(w, r)")
	}
	g.P("default:")
	// The paths the schema set go to ServiceNotFound, so that a handler
	// mounted unstripped under a prefix says so for them too: they need
	// not hold the service's name, which it looks for otherwise.
	var custom []string
	for _, m := range s.methods {
		if m.path != procedure(m.Method) {
			custom = append(custom, ", "+pathConst(s, m))
		}
	}
	g.P(wsrpcPkg.Ident("ServiceNotFound"), "(w, r, ", fmt.Sprintf("%q", s.Desc.FullName()), strings.Join(custom, ""), ")")
	g.P("}")
	g.P("})")
	g.P("}")
	g.P()

	g.P("// Unimplemented", name, "Handler returns CodeUnimplemented from every method;")
	g.P("// embed it to keep compiling when the service gains methods.")
	g.P("type Unimplemented", name, "Handler struct{}")
	g.P()
	for _, m := range s.methods {
		g.P("func (Unimplemented", name, "Handler) ", m.GoName, handlerSignature(g, m), " {")
		msg := fmt.Sprintf("%q", string(m.Desc.FullName())+" is not implemented")
		if m.Desc.IsStreamingClient() && !m.Desc.IsStreamingServer() {
			g.P("return nil, ", wsrpcPkg.Ident("Errorf"), "(", wsrpcPkg.Ident("CodeUnimplemented"), ", ", msg, ")")
		} else {
			g.P("return ", wsrpcPkg.Ident("Errorf"), "(", wsrpcPkg.Ident("CodeUnimplemented"), ", ", msg, ")")
		}
		g.P("}")
		g.P()
	}
}

// eachPath ends the handler's doc comment with the list of its methods'
// path constants, to mount it on each, wrapped at 80 columns.
func eachPath(g *protogen.GeneratedFile, s *service) {
	line := "//"
	var root string
	for i, m := range s.methods {
		c := pathConst(s, m)
		if m.path == "/" {
			root = c
		}
		sep := ","
		if i == len(s.methods)-1 {
			sep = "."
		}
		if len(line) > 2 && len(line)+1+len(c)+1 > 80 {
			g.P(line)
			line = "//"
		}
		line += " " + c + sep
	}
	g.P(line)
	if root != "" {
		g.P("// ", root, " is \"/\": mount that one on the pattern \"/{$}\", as the")
		g.P("// pattern \"/\" matches every path.")
	}
}

// customPaths reports whether a method of s has a path set in the schema.
func customPaths(s *service) bool {
	for _, m := range s.methods {
		if m.path != procedure(m.Method) {
			return true
		}
	}
	return false
}

// qualifier returns the package name of a qualified identifier ("pkg" of
// "pkg.Name"), or "" for one of the file's own package.
func qualifier(ident string) string {
	q, _, ok := strings.Cut(ident, ".")
	if !ok {
		return ""
	}
	return q
}

// param returns name, with underscores added while it is in avoid.
func param(name string, avoid map[string]bool) string {
	for avoid[name] {
		name += "_"
	}
	return name
}

func procConst(s *service, m *method) string { return s.GoName + m.GoName + "Procedure" }
func pathConst(s *service, m *method) string { return s.GoName + m.GoName + "Path" }

func transportName(m *method) string {
	if m.transport == serverSentEvents {
		return "Server-Sent Events"
	}
	return "WebSocket"
}

func clientCtor(m *method) string {
	switch {
	case m.transport == serverSentEvents:
		return "NewSSEClient"
	case m.Desc.IsStreamingClient() && m.Desc.IsStreamingServer():
		return "NewBidiClient"
	case m.Desc.IsStreamingClient():
		return "NewClientStreamClient"
	}
	return "NewServerStreamClient"
}

func clientType(m *method) string {
	switch {
	case m.Desc.IsStreamingClient() && m.Desc.IsStreamingServer():
		return "BidiClient"
	case m.Desc.IsStreamingClient():
		return "ClientStreamClient"
	}
	return "ServerStreamClient"
}

func handlerCtor(m *method) string {
	switch {
	case m.transport == serverSentEvents:
		return "NewSSEHandler"
	case m.Desc.IsStreamingClient() && m.Desc.IsStreamingServer():
		return "NewBidiHandler"
	case m.Desc.IsStreamingClient():
		return "NewClientStreamHandler"
	}
	return "NewServerStreamHandler"
}

func clientSignature(g *protogen.GeneratedFile, m *method) string {
	ctx := g.QualifiedGoIdent(contextPkg.Ident("Context"))
	in, out := g.QualifiedGoIdent(m.Input.GoIdent), g.QualifiedGoIdent(m.Output.GoIdent)
	switch {
	case m.Desc.IsStreamingClient() && m.Desc.IsStreamingServer():
		return "(ctx " + ctx + ") (*" + g.QualifiedGoIdent(wsrpcPkg.Ident("BidiStreamForClient")) + "[" + in + ", " + out + "], error)"
	case m.Desc.IsStreamingClient():
		return "(ctx " + ctx + ") (*" + g.QualifiedGoIdent(wsrpcPkg.Ident("ClientStreamForClient")) + "[" + in + ", " + out + "], error)"
	}
	return "(ctx " + ctx + ", req *" + in + ") (*" + g.QualifiedGoIdent(wsrpcPkg.Ident("ServerStreamForClient")) + "[" + out + "], error)"
}

func handlerSignature(g *protogen.GeneratedFile, m *method) string {
	ctx := g.QualifiedGoIdent(contextPkg.Ident("Context"))
	in, out := g.QualifiedGoIdent(m.Input.GoIdent), g.QualifiedGoIdent(m.Output.GoIdent)
	switch {
	case m.Desc.IsStreamingClient() && m.Desc.IsStreamingServer():
		return "(" + ctx + ", *" + g.QualifiedGoIdent(wsrpcPkg.Ident("BidiStream")) + "[" + in + ", " + out + "]) error"
	case m.Desc.IsStreamingClient():
		return "(" + ctx + ", *" + g.QualifiedGoIdent(wsrpcPkg.Ident("ClientStream")) + "[" + in + "]) (*" + out + ", error)"
	}
	return "(" + ctx + ", *" + in + ", *" + g.QualifiedGoIdent(wsrpcPkg.Ident("ServerStream")) + "[" + out + "]) error"
}
