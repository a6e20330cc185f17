// Package protoslim decodes the Services and EndpointSlices of a Kubernetes
// protobuf watch stream straight into the few fields the service proxy reads,
// without building the whole API object first.
//
// client-go decodes every watch event into the complete object: its
// metadata (managedFields, annotations, owner references), every spec field,
// each endpoint's target reference and all its addresses. The proxy then
// keeps a tenth of it. At 10,000 Services of 10 endpoints, the initial
// (streamed) lists allocate ~77 MB that way, and the garbage collector's work
// on it was a third of the proxy's CPU before its first sync. Decoding only
// what is kept allocates a fraction of that.
//
// The decoders here follow the generated (gogo-protobuf) Unmarshal methods of
// k8s.io/api: the last value of a repeated scalar field wins, repeated fields
// append, a message field that comes twice is merged, unknown fields are
// skipped, and a known field with the wrong wire type is an error. Fields that
// are not kept are skipped without being checked further (the generated code
// would reject, for example, a malformed managedFields entry; a server never
// sends one).
//
// Decoder is a watch.Decoder over the body of a watch request that uses them
// for the kinds it is given and client-go's decoders for every other object,
// for bookmarks and errors, and for a JSON stream.
package protoslim

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is the current field of a message being read: next reads the next
// one, in place (no allocation).
type field struct {
	rest []byte // what follows the current field
	num  protowire.Number
	typ  protowire.Type
	v    uint64 // varint and fixed values
	data []byte // length-delimited values
	err  error
}

// fields starts reading the fields of the message b.
func fields(b []byte) field { return field{rest: b} }

// next moves to the next field; it returns false at the end of the message
// and on a malformed one (err says which).
func (f *field) next() bool {
	if f.err != nil || len(f.rest) == 0 {
		return false
	}
	num, typ, n := protowire.ConsumeTag(f.rest)
	if n < 0 {
		f.err = wireError(protowire.ParseError(n))
		return false
	}
	b := f.rest[n:]
	f.num, f.typ, f.v, f.data = num, typ, 0, nil
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.BytesType:
		f.data, n = protowire.ConsumeBytes(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.v = uint64(v)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(b)
	default: // groups: skipped whole, as the generated code does
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		f.err = wireError(protowire.ParseError(n))
		return false
	}
	f.rest = b[n:]
	return true
}

// bytes is the current field's value, which must be length-delimited (a
// string, bytes or a message).
func (f *field) bytes() ([]byte, bool) {
	if f.typ != protowire.BytesType {
		f.err = fmt.Errorf("protoslim: field %d: wire type %d, want length-delimited", f.num, f.typ)
		return nil, false
	}
	return f.data, true
}

// str is the current field's value as a string.
func (f *field) str() (string, bool) {
	b, ok := f.bytes()
	return string(b), ok
}

// setStr stores the current field's value, a string, in *dst.
func (f *field) setStr(dst *string) {
	if v, ok := f.str(); ok {
		*dst = v
	}
}

// appendStr appends the current field's value, a string, to *dst.
func (f *field) appendStr(dst *[]string) {
	if v, ok := f.str(); ok {
		*dst = append(*dst, v)
	}
}

// setInt32 stores the current field's value, a varint, in *dst (truncated, as
// the generated code does).
func (f *field) setInt32(dst *int32) {
	if v, ok := f.varint(); ok {
		*dst = int32(v)
	}
}

// varint is the current field's value, which must be a varint.
func (f *field) varint() (uint64, bool) {
	if f.typ != protowire.VarintType {
		f.err = fmt.Errorf("protoslim: field %d: wire type %d, want varint", f.num, f.typ)
		return 0, false
	}
	return f.v, true
}

// fail records err as the message's error (wrapped with the field's number)
// and stops the reading.
func (f *field) fail(err error) {
	if f.err == nil && err != nil {
		f.err = fmt.Errorf("protoslim: field %d: %w", f.num, err)
	}
}

// errMalformed is wrapped by the errors of a message that is not protobuf.
var errMalformed = errors.New("protoslim: malformed protobuf")

func wireError(err error) error { return fmt.Errorf("%w: %w", errMalformed, err) }

// mapEntry reads a map<string, string> entry: key field 1, value field 2
// (either may be absent: the empty string).
func mapEntry(b []byte) (key, value []byte, err error) {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			key, _ = f.bytes()
		case 2:
			value, _ = f.bytes()
		}
	}
	return key, value, f.err
}

// keep reports whether key is one of keys.
func keep(keys []string, key []byte) bool {
	for _, k := range keys {
		if k == string(key) {
			return true
		}
	}
	return false
}
