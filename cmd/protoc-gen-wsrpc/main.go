// Command protoc-gen-wsrpc is the protoc (and buf) plugin that generates
// typed wsrpc handlers and clients from protobuf services whose methods
// carry the (wsrpc.v1.method) option. The generation lives in package
// codegen; see docs/codegen.md.
//
//	protoc-gen-wsrpc --version
//
// With buf, list it in buf.gen.yaml:
//
//	plugins:
//	  - local: protoc-gen-wsrpc
//	    out: gen
//	    opt: paths=source_relative
package main

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/compiler/protogen"

	"github.com/wsrpc/wsrpc/codegen"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println("protoc-gen-wsrpc", codegen.Version)
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "protoc-gen-wsrpc: a protoc plugin: run it through buf generate or protoc (or pass --version)")
		os.Exit(2)
	}
	protogen.Options{ParamFunc: unknownParam}.Run(codegen.Generate)
}

// unknownParam rejects a parameter protogen does not handle itself: the
// plugin has none of its own, and a misspelt "paths=" should not be
// ignored.
func unknownParam(name, _ string) error {
	return fmt.Errorf("unknown parameter %q (protoc-gen-wsrpc takes protoc-gen-go's paths, module and M parameters)", name)
}
