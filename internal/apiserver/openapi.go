package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/apiserver/openapi"
)

// openapiDocs are the OpenAPI v3 documents, generated once at start.
type openapiDocs struct {
	index []byte
	docs  map[string][]byte // "api/v1" -> document
	hash  map[string]string
}

func buildOpenAPI(s *Server) (*openapiDocs, error) {
	d := &openapiDocs{docs: map[string][]byte{}, hash: map[string]string{}}
	// One generator for all group-versions: they share most component schemas.
	gen := openapi.NewGenerator()
	for gvKey, hs := range s.byGV {
		group, version, _ := strings.Cut(gvKey, "/")
		var rs []openapi.Resource
		for _, h := range hs {
			rs = append(rs, openapi.Resource{
				Name: h.res.Name, Kind: h.res.Kind, Namespaced: h.res.Namespaced,
				Object: h.res.New(), List: h.res.NewList(),
				Subresources: h.res.Subresources, Verbs: h.res.Verbs,
			})
		}
		gv := schema.GroupVersion{Group: group, Version: version}
		doc, err := gen.Document(gv, rs)
		if err != nil {
			return nil, err
		}
		p := openapi.GroupVersionPath(gv)
		d.docs[p] = doc
		d.hash[p] = openapi.Hash(doc)
	}
	idx, err := openapi.Index(d.docs)
	if err != nil {
		return nil, err
	}
	d.index = idx
	return d, nil
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if p == "/openapi/v3" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.index)
		return
	}
	key := strings.TrimPrefix(p, "/openapi/v3/")
	doc, ok := s.openapi.docs[key]
	if !ok || !strings.HasPrefix(p, "/openapi/v3/") {
		// /openapi/v2 would have to be gnostic protobuf; kubectl falls back fine on 404.
		s.writeError(w, r, notFoundPath())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Etag", `"`+s.openapi.hash[key]+`"`)
	if r.URL.Query().Get("hash") == s.openapi.hash[key] {
		w.Header().Set("Cache-Control", "public, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	}
	_, _ = w.Write(doc)
}
