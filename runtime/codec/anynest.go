package codec

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Encoding nested google.protobuf.Any values costs the square of their
// depth too. A message decoded from protobuf binary holds each Any's value
// as opaque bytes, whatever is nested inside, at no cost; an encoder that
// writes an Any as the message it holds (protojson, msgpack) decodes those
// bytes, writes what is inside, and meets the next Any's bytes there. A
// server relaying protobuf binary to a JSON or msgpack peer spent 1.9 s and
// gigabytes of garbage on one 450 KB message nested 10,000 deep. Each
// encoder refuses the nesting its decoder refuses: msgpack more than
// maxAnyNesting Any values, JSON more than its RecursionLimit.

// checkAnyNesting walks m as protojson will and fails with ErrDepth when
// more than limit Any values nest in one another. It visits only the
// fields whose types can hold an Any (extension fields included: see
// mayHoldAny), so a generated message whose schema has none costs one
// cached lookup and no allocation. An Any it cannot resolve or decode is
// left for the encoder to report.
func checkAnyNesting(m protoreflect.Message, r protoregistry.MessageTypeResolver, limit int) error {
	if v, ok := holdsAny.Load(m.Descriptor()); ok && !v.(bool) {
		return nil // before w, which the walk's closures make escape
	}
	w := &anyWalk{r: r}
	if err := w.nesting(m, limit); err != nil {
		return fmt.Errorf("%w: google.protobuf.Any nested more than %d deep", ErrDepth, limit)
	}
	return nil
}

// errTooDeep stops the walk; checkAnyNesting names the limit.
var errTooDeep = errors.New("too deep")

// anyWalk is one checkAnyNesting call.
type anyWalk struct {
	r protoregistry.MessageTypeResolver
	// local holds mayHoldAny's answers for the descriptors holdsAny must
	// not keep, for this call only; made on first use.
	local map[protoreflect.MessageDescriptor]bool
	// err is the walk's result so far: once set, every level stops and
	// returns it.
	err error
}

// nesting walks m with room for left more Any levels.
func (w *anyWalk) nesting(m protoreflect.Message, left int) error {
	md := m.Descriptor()
	if !w.mayHoldAny(md) {
		return nil
	}
	if md.FullName() == wktAny {
		if left == 0 { // counted as the decoders count: empty ones too
			return errTooDeep
		}
		fields := md.Fields()
		url := m.Get(fields.ByNumber(1)).String()
		raw := m.Get(fields.ByNumber(2)).Bytes()
		if url == "" && len(raw) == 0 {
			return nil
		}
		mt, err := w.r.FindMessageByURL(url)
		if err != nil {
			return nil
		}
		inner := mt.New()
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(raw, inner.Interface()); err != nil {
			return nil
		}
		return w.nesting(inner, left-1)
	}
	// The closures report through w.err, not a variable of their own,
	// which would be one more allocation per level.
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if vd := fd.MapValue(); vd.Message() != nil && w.mayHoldAny(vd.Message()) {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					w.err = w.nesting(mv.Message(), left)
					return w.err == nil
				})
			}
		case fd.Message() == nil || !w.mayHoldAny(fd.Message()):
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && w.err == nil; i++ {
				w.err = w.nesting(l.Get(i).Message(), left)
			}
		default:
			w.err = w.nesting(v.Message(), left)
		}
		return w.err == nil
	})
	return w.err
}

// holdsAny caches mayHoldAny for the descriptors registered in
// protoregistry.GlobalFiles (generated types), which live as long as the
// program anyway. It is never pruned, so it must not keep others alive:
// a server that builds descriptors at run time (dynamicpb, from a schema
// registry reloaded on change) would keep every generation of them.
// Safe for concurrent use.
var holdsAny sync.Map // protoreflect.MessageDescriptor -> bool

// mayHoldAny reports whether a message of type md can contain a
// google.protobuf.Any, in itself or in any field's type, transitively. A
// message with extension ranges counts as able to: any extension, of any
// type, may be set in it, and m.Range visits the set ones. The answer is
// kept in holdsAny for a registered descriptor, else in w.local.
func (w *anyWalk) mayHoldAny(md protoreflect.MessageDescriptor) bool {
	if v, ok := holdsAny.Load(md); ok {
		return v.(bool)
	}
	if v, ok := w.local[md]; ok {
		return v
	}
	found := reachesAny(md, make(map[protoreflect.MessageDescriptor]bool))
	// The registered descriptor itself, not one of the same name: a
	// dynamic copy of a generated type is as short-lived as any other.
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(md.FullName()); err == nil && d == md {
		holdsAny.Store(md, found)
		return found
	}
	if w.local == nil {
		w.local = make(map[protoreflect.MessageDescriptor]bool)
	}
	w.local[md] = found
	return found
}

func reachesAny(md protoreflect.MessageDescriptor, seen map[protoreflect.MessageDescriptor]bool) bool {
	if md.FullName() == wktAny {
		return true
	}
	if seen[md] {
		return false // a cycle: its other paths are being looked at
	}
	seen[md] = true
	if md.ExtensionRanges().Len() > 0 {
		return true
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		if sub := fd.Message(); sub != nil && reachesAny(sub, seen) {
			return true
		}
	}
	return false
}
