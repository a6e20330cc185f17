package apiserver

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// mediaType is one entry of an Accept header.
type mediaType struct {
	Type   string // application/json
	Params map[string]string
}

func parseAccept(h string) []mediaType {
	var out []mediaType
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, ";")
		mt := mediaType{Type: strings.ToLower(strings.TrimSpace(fields[0])), Params: map[string]string{}}
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok {
				mt.Params[strings.ToLower(k)] = v
			}
		}
		out = append(out, mt)
	}
	return out
}

// outputKind is what the client asked the body to be.
type outputKind int

const (
	outputObject outputKind = iota
	outputTable
	outputPartial // PartialObjectMetadata(List)
)

// negotiation is the chosen response format.
type negotiation struct {
	Kind      outputKind
	MediaType string // application/json, application/yaml, application/vnd.kubernetes.protobuf
}

// negotiate picks the first Accept entry we can serve. Unknown types are skipped; when
// nothing matches, JSON is used (clients accept it, see the kubectl reference §2).
func negotiate(r *http.Request) negotiation {
	for _, mt := range parseAccept(r.Header.Get("Accept")) {
		var media string
		switch mt.Type {
		case "application/json", "*/*", "application/*":
			media = runtime.ContentTypeJSON
		case "application/yaml":
			media = runtime.ContentTypeYAML
		case runtime.ContentTypeProtobuf:
			media = runtime.ContentTypeProtobuf
		default:
			continue
		}
		switch as := mt.Params["as"]; as {
		case "":
			return negotiation{Kind: outputObject, MediaType: media}
		case "Table":
			if mt.Params["g"] == "meta.k8s.io" && (mt.Params["v"] == "v1" || mt.Params["v"] == "v1beta1") {
				return negotiation{Kind: outputTable, MediaType: media}
			}
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			if mt.Params["g"] == "meta.k8s.io" && (mt.Params["v"] == "v1" || mt.Params["v"] == "v1beta1") {
				return negotiation{Kind: outputPartial, MediaType: media}
			}
		case "APIGroupDiscoveryList":
			// discovery handles this itself
			continue
		}
	}
	return negotiation{Kind: outputObject, MediaType: runtime.ContentTypeJSON}
}

// encode serialises obj (which must carry its apiVersion and kind) as mediaType.
func (s *Server) encode(mediaType string, obj runtime.Object) ([]byte, error) {
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.Factory.SupportedMediaTypes(), mediaType)
	if !ok {
		return nil, fmt.Errorf("no serializer for %s", mediaType)
	}
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		if err := s.codecs.SetGVK(obj); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := info.Serializer.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", mediaType, err)
	}
	return buf.Bytes(), nil
}

// writeObject writes obj with status code in the negotiated media type (objects only;
// tables are built by the caller).
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	media := negotiate(r).MediaType
	data, err := s.encode(media, obj)
	if err != nil && media != runtime.ContentTypeJSON {
		media = runtime.ContentTypeJSON
		data, err = s.encode(media, obj)
	}
	if err != nil {
		s.log.Error("encode response", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", media)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// respond writes a single object honouring Table and PartialObjectMetadata requests.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, h *resourceHandler, code int, obj runtime.Object) {
	obj = h.res.Served(obj)
	switch n := negotiate(r); n.Kind {
	case outputTable:
		t, err := s.toTable(r, h, []runtime.Object{obj}, metav1.ListMeta{ResourceVersion: resourceVersionOf(obj)})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeObject(w, r, code, t)
	case outputPartial:
		s.writeObject(w, r, code, toPartial(obj))
	default:
		s.writeObject(w, r, code, obj)
	}
}

func resourceVersionOf(obj runtime.Object) string {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetResourceVersion()
	}
	return ""
}

func toPartial(obj runtime.Object) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{}
	if m := objectMeta(obj); m != nil {
		p.ObjectMeta = *m
	}
	p.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}
	return p
}

// objectMeta returns the ObjectMeta embedded in a typed object (nil if none).
func objectMeta(obj runtime.Object) *metav1.ObjectMeta {
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if m, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return m
		}
	}
	return nil
}
