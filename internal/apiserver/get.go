package apiserver

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
)

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	obj, err := s.get(r, h, ri.Namespace, ri.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.respond(w, r, h, http.StatusOK, obj)
}

// get reads one object: from the watch cache when the client accepts any version
// (resourceVersion=0), otherwise a consistent read from etcd.
func (s *Server) get(r *http.Request, h *resourceHandler, namespace, name string) (runtime.Object, error) {
	key := h.res.Key(namespace, name)
	opts, err := parseGetOptions(r)
	if err != nil {
		return nil, err
	}
	if opts.ResourceVersion == "0" {
		if obj, ok := s.cache.Get(key); ok {
			return obj, nil
		}
	}
	obj, err := s.store.Get(r.Context(), key)
	if err != nil {
		return nil, toAPIError(err, h.res.GroupResource(), name)
	}
	return obj, nil
}
