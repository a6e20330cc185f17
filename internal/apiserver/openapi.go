package apiserver

import (
	"net/http"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/apiserver/openapi"
)

// openapiDocs are the OpenAPI documents: the v3 documents, generated once at
// start, and the v2 document, generated on its first request (openapiv2.go).
type openapiDocs struct {
	index []byte
	docs  map[string][]byte // "api/v1" -> document
	hash  map[string]string
	v2    *openapiV2
}

// openapiResources lists the served resources of every group-version, sorted
// by group-version, as the openapi package describes them.
func openapiResources(s *Server) []openapi.GroupVersionResources {
	out := make([]openapi.GroupVersionResources, 0, len(s.byGV))
	for gvKey, hs := range s.byGV {
		group, version, _ := strings.Cut(gvKey, "/")
		gr := openapi.GroupVersionResources{GroupVersion: schema.GroupVersion{Group: group, Version: version}}
		for _, h := range hs {
			gr.Resources = append(gr.Resources, openapi.Resource{
				Name: h.res.Name, Kind: h.res.Kind, Namespaced: h.res.Namespaced,
				Object: h.res.New(), List: h.res.NewList(),
				Subresources: h.res.Subresources, Verbs: h.res.Verbs,
			})
		}
		out = append(out, gr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupVersion.String() < out[j].GroupVersion.String() })
	return out
}

func buildOpenAPI(s *Server) (*openapiDocs, error) {
	d := &openapiDocs{docs: map[string][]byte{}, hash: map[string]string{}}
	groups := openapiResources(s)
	// One generator for all group-versions: they share most component schemas.
	gen := openapi.NewGenerator()
	for _, gr := range groups {
		doc, err := gen.Document(gr.GroupVersion, gr.Resources)
		if err != nil {
			return nil, err
		}
		p := openapi.GroupVersionPath(gr.GroupVersion)
		d.docs[p] = doc
		d.hash[p] = openapi.Hash(doc)
	}
	idx, err := openapi.Index(d.docs)
	if err != nil {
		return nil, err
	}
	d.index = idx
	// The v2 document gets a generator of its own when it is first asked for,
	// so that the v3 generator's cache is not kept for it.
	d.v2 = newOpenAPIV2(func() ([]byte, error) {
		return openapi.NewGenerator().SwaggerDocument(groups)
	})
	return d, nil
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if p == "/openapi/v2" {
		s.serveOpenAPIV2(w, r)
		return
	}
	if p == "/openapi/v3" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.openapi.index)
		return
	}
	key := strings.TrimPrefix(p, "/openapi/v3/")
	doc, ok := s.openapi.docs[key]
	if !ok || !strings.HasPrefix(p, "/openapi/v3/") {
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
