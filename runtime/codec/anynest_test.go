package codec_test

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"weak"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	testingv1 "github.com/wsrpc/wsrpc/gen/wsrpc/testing/v1"
	"github.com/wsrpc/wsrpc/runtime/codec"
)

// TestJSONAnyCheckReleasesDescriptors: the JSON encoder's Any-nesting
// pre-walk (anynest.go) caches, per message descriptor, whether its type
// can hold an Any, in a package-level map that is never pruned. It must
// keep only the descriptors registered in protoregistry.GlobalFiles,
// which live for ever anyway: it kept every descriptor ever marshaled,
// so a server that builds descriptors at run time (dynamicpb, from a
// schema registry reloaded on change) leaked each generation of them.
func TestJSONAnyCheckReleasesDescriptors(t *testing.T) {
	// marshaledThenCollected builds a fresh descriptor of
	//
	//	message M { int32 x = 1; google.protobuf.Any a = 2; repeated M kids = 3; }
	//
	// (an Any field, so the pre-walk looks inside), marshals a message of
	// it holding an Any with marshal, and reports whether the descriptor
	// is garbage collected afterwards.
	marshaledThenCollected := func(name string, marshal func(proto.Message) ([]byte, error)) bool {
		fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
			Name:       proto.String("wsrpc/codec/test/gen_" + name + ".proto"),
			Package:    proto.String("wsrpc.codec.test.gen"),
			Syntax:     proto.String("proto3"),
			Dependency: []string{"google/protobuf/any.proto"},
			MessageType: []*descriptorpb.DescriptorProto{{
				Name: proto.String("M"),
				Field: []*descriptorpb.FieldDescriptorProto{{
					Name: proto.String("x"), JsonName: proto.String("x"), Number: proto.Int32(1),
					Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
					Type:  descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(),
				}, {
					Name: proto.String("a"), JsonName: proto.String("a"), Number: proto.Int32(2),
					Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
					Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
					TypeName: proto.String(".google.protobuf.Any"),
				}, {
					Name: proto.String("kids"), JsonName: proto.String("kids"), Number: proto.Int32(3),
					Label:    descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
					Type:     descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
					TypeName: proto.String(".wsrpc.codec.test.gen.M"),
				}},
			}},
		}, protoregistry.GlobalFiles)
		if err != nil {
			t.Fatal(err)
		}
		md := fd.Messages().Get(0)
		fields := md.Fields()
		m := dynamicpb.NewMessage(md)
		m.Set(fields.ByName("x"), protoreflect.ValueOfInt32(1))
		m.Set(fields.ByName("a"), protoreflect.ValueOfMessage(mustAny(&testingv1.Nested{Id: 2}).ProtoReflect()))
		kid := dynamicpb.NewMessage(md)
		kid.Set(fields.ByName("a"), protoreflect.ValueOfMessage(mustAny(&testingv1.Nested{Id: 3}).ProtoReflect()))
		m.Mutable(fields.ByName("kids")).List().Append(protoreflect.ValueOfMessage(kid))
		if _, err := marshal(m); err != nil {
			t.Fatal(err)
		}
		w := weak.Make((*byte)(reflect.ValueOf(fd).UnsafePointer()))
		fd, md, fields, m, kid = nil, nil, nil, nil, nil
		for range 10 {
			runtime.GC()
			if w.Value() == nil {
				return true
			}
		}
		return false
	}
	if !marshaledThenCollected("control", func(m proto.Message) ([]byte, error) { return protojson.Marshal(m) }) {
		t.Skip("control: a descriptor marshaled with protojson itself is not collected either")
	}
	for i, c := range []codec.Codec{codec.JSON, codec.Msgpack} {
		if !marshaledThenCollected(fmt.Sprint(c.Name(), i), c.Marshal) {
			t.Errorf("%s: a descriptor marshaled once is never garbage collected", c.Name())
		}
	}
}
