package protoslim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	restclientwatch "k8s.io/client-go/rest/watch"
)

// Func decodes an object of the given apiVersion and kind from its protobuf
// (without the envelope); handled is false for a kind it does not decode.
type Func func(apiVersion, kind string, raw []byte) (obj runtime.Object, handled bool, err error)

// maxFrame bounds one watch event, as client-go's streaming decoder does
// (16 MiB, its largest buffer).
const maxFrame = 16 << 20

// protobufPrefix starts every object Kubernetes encodes as protobuf: "k8s\x00"
// and a runtime.Unknown (type meta, raw object, content encoding and type).
const protobufPrefix = "k8s\x00"

// Decoder is a watch.Decoder (watch.NewStreamWatcher) of the body of a watch
// request. A protobuf stream (Content-Type application/vnd.kubernetes.protobuf;
// stream=watch: each event a 4-byte big-endian length and a metav1.WatchEvent)
// is read here: the objects of ADDED, MODIFIED and DELETED events go to fast,
// every other object (and the kinds fast does not handle) to the objects
// decoder, client-go's. A JSON stream, which a server that does not speak
// protobuf sends, is handed whole to client-go's decoders (jsonStream for the
// events, jsonObjects for their objects). Its first byte is "{", which no
// protobuf stream starts with: that would be a first event of 2 GiB or more.
type Decoder struct {
	body    io.ReadCloser
	r       *bufio.Reader
	fast    Func
	objects runtime.Decoder
	// jsonObjects and jsonStream decode a JSON stream.
	jsonObjects runtime.Decoder
	jsonStream  *runtime.StreamSerializerInfo
	buf         []byte
	// other decodes a JSON stream; sniffed records that the first byte was
	// read.
	other   watch.Decoder
	sniffed bool
}

var _ watch.Decoder = &Decoder{}

// NewDecoder returns a Decoder of body. objects decodes the objects fast does
// not (client-go's protobuf decoder); jsonObjects and jsonStream decode a JSON
// stream instead (client-go's JSON decoder and stream serializer).
func NewDecoder(body io.ReadCloser, fast Func, objects, jsonObjects runtime.Decoder, jsonStream *runtime.StreamSerializerInfo) *Decoder {
	return &Decoder{body: body, r: bufio.NewReaderSize(body, 64<<10), fast: fast, objects: objects, jsonObjects: jsonObjects, jsonStream: jsonStream}
}

// Decode returns the next event; io.EOF at the end of the stream.
func (d *Decoder) Decode() (watch.EventType, runtime.Object, error) {
	if !d.sniffed {
		first, err := d.r.Peek(1)
		if err != nil {
			return "", nil, err
		}
		d.sniffed = true
		if first[0] == '{' {
			if d.jsonStream == nil || d.jsonStream.Framer == nil || d.jsonObjects == nil {
				return "", nil, fmt.Errorf("protoslim: the watch stream is not protobuf, and there is no JSON decoder")
			}
			frames := d.jsonStream.Framer.NewFrameReader(readCloser{d.r, d.body})
			d.other = restclientwatch.NewDecoder(streaming.NewDecoder(frames, d.jsonStream.Serializer), d.jsonObjects)
		}
	}
	if d.other != nil {
		return d.other.Decode()
	}
	var size [4]byte
	if _, err := io.ReadFull(d.r, size[:]); err != nil {
		return "", nil, err // io.EOF between events: the end of the stream
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxFrame {
		return "", nil, fmt.Errorf("protoslim: watch event of %d bytes, more than %d", n, maxFrame)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	frame := d.buf[:n]
	if _, err := io.ReadFull(d.r, frame); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", nil, err
	}
	typ, raw, err := watchEvent(frame)
	if err != nil {
		return "", nil, err
	}
	switch watch.EventType(typ) {
	case watch.Added, watch.Modified, watch.Deleted, watch.Error, watch.Bookmark:
	default:
		return "", nil, fmt.Errorf("got invalid watch event type: %v", typ)
	}
	obj, err := d.object(watch.EventType(typ), raw)
	if err != nil {
		return "", nil, fmt.Errorf("unable to decode watch event: %w", err)
	}
	return watch.EventType(typ), obj, nil
}

// object decodes the object of an event of type typ.
func (d *Decoder) object(typ watch.EventType, raw []byte) (runtime.Object, error) {
	if d.fast != nil && (typ == watch.Added || typ == watch.Modified || typ == watch.Deleted) && len(raw) >= len(protobufPrefix) && string(raw[:len(protobufPrefix)]) == protobufPrefix {
		u, err := unknown(raw[len(protobufPrefix):])
		if err != nil {
			return nil, err
		}
		if u.contentEncoding == "" && (u.contentType == "" || u.contentType == runtime.ContentTypeProtobuf) {
			obj, handled, err := d.fast(u.apiVersion, u.kind, u.raw)
			if handled {
				return obj, err
			}
		}
	}
	// The frame's buffer is reused for the next event: the decoder gets a copy.
	return runtime.Decode(d.objects, bytes.Clone(raw))
}

// Close closes the body.
func (d *Decoder) Close() {
	if d.other != nil {
		d.other.Close()
		return
	}
	_ = d.body.Close()
}

// watchEvent reads a metav1.WatchEvent: type (field 1), object (field 2, a
// runtime.RawExtension whose field 1 is the encoded object).
func watchEvent(b []byte) (typ string, raw []byte, err error) {
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			typ, _ = f.str()
		case 2:
			if d, ok := f.bytes(); ok {
				o := fields(d)
				for o.next() {
					if o.num == 1 {
						raw, _ = o.bytes()
					}
				}
				f.fail(o.err)
			}
		}
	}
	return typ, raw, f.err
}

// unknownObject is a runtime.Unknown, read in place.
type unknownObject struct {
	apiVersion, kind, contentEncoding, contentType string
	raw                                            []byte
}

// unknown reads a runtime.Unknown: typeMeta (field 1: apiVersion 1, kind 2),
// raw (2), contentEncoding (3), contentType (4).
func unknown(b []byte) (unknownObject, error) {
	var u unknownObject
	f := fields(b)
	for f.next() {
		switch f.num {
		case 1:
			if d, ok := f.bytes(); ok {
				t := fields(d)
				for t.next() {
					switch t.num {
					case 1:
						u.apiVersion, _ = t.str()
					case 2:
						u.kind, _ = t.str()
					}
				}
				f.fail(t.err)
			}
		case 2:
			u.raw, _ = f.bytes()
		case 3:
			u.contentEncoding, _ = f.str()
		case 4:
			u.contentType, _ = f.str()
		}
	}
	return u, f.err
}

// readCloser reads from the buffered reader that has already peeked into the
// body, and closes the body.
type readCloser struct {
	io.Reader
	io.Closer
}
