package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/wsrpc/wsrpc/codegen"
	wsrpcv1 "github.com/wsrpc/wsrpc/gen/wsrpc/v1"
)

// TestBinary builds the plugin and runs it as protoc and buf do: --version
// prints the version, and a schema mistake comes back as the response's
// error naming file and method, with exit status 0 and no panic.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "protoc-gen-wsrpc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "protoc-gen-wsrpc "+codegen.Version {
		t.Fatalf("--version: %q, %v", out, err)
	}

	opts := &descriptorpb.MethodOptions{}
	proto.SetExtension(opts, wsrpcv1.E_Method, &wsrpcv1.MethodOptions{Transport: &wsrpcv1.MethodOptions_Websocket{Websocket: &wsrpcv1.WebSocketRule{}}})
	file := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("bad/v1/bad.proto"),
		Package:     proto.String("bad.v1"),
		Syntax:      proto.String("proto3"),
		Dependency:  []string{"wsrpc/v1/options.proto"},
		Options:     &descriptorpb.FileOptions{GoPackage: proto.String("example.com/bad/v1;badv1")},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("BadService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name: proto.String("Get"), InputType: proto.String(".bad.v1.M"), OutputType: proto.String(".bad.v1.M"), Options: opts,
			}},
		}},
	}
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{"bad/v1/bad.proto"},
		ProtoFile: []*descriptorpb.FileDescriptorProto{
			protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
			protodesc.ToFileDescriptorProto(wsrpcv1.File_wsrpc_v1_options_proto),
			file,
		},
	}
	in, _ := proto.Marshal(req)
	cmd := exec.Command(bin)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("plugin: %v\n%s", err, stderr.String())
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	want := "bad/v1/bad.proto: method bad.v1.BadService.Get: (wsrpc.v1.method).websocket needs a streaming method; this one is unary"
	if resp.GetError() != want {
		t.Fatalf("error %q, want %q", resp.GetError(), want)
	}

	// A parameter the plugin does not know fails the run, naming it.
	req.Parameter = proto.String("paths=source_relative,path=import")
	in, _ = proto.Marshal(req)
	cmd = exec.Command(bin)
	cmd.Stdin = bytes.NewReader(in)
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("an unknown parameter was accepted")
	}
	if want := `unknown parameter "path"`; !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q lacks %q", stderr.String(), want)
	}
}
