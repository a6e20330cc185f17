package apiserver

import (
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/registry"
)

// resourceHandler serves one resource.
type resourceHandler struct {
	res *registry.Resource
	// deprecation is the Warning every request of the resource carries ("" for
	// none), worked out once from the kind and the served version.
	deprecation string
}

func notFoundPath() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "", schema.GroupResource{}, "",
		"the server could not find the requested resource", 0, false)
}

// serveAPI serves /api/v1/... and /apis/<g>/<v>/...
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	ri := parseRequestInfo(r)
	if !ri.IsResource {
		// /api/v1 or /apis/<g>/<v>: the legacy resource list; /apis/<g>: the group.
		s.serveGroupVersionDiscovery(w, r)
		return
	}
	// POST /api/v1/namespaces/{ns}/bindings is the pods/binding subresource by another path.
	if ri.Group == "" && ri.Resource == "bindings" && ri.Verb == "create" {
		s.handleBindingCollection(w, r, ri)
		return
	}
	h := s.handlers[ri.Group+"/"+ri.Version+"/"+ri.Resource]
	if h == nil {
		s.writeError(w, r, notFoundPath())
		return
	}
	if h.deprecation != "" {
		addWarning(w, h.deprecation)
	}
	// Access and identity reviews are answered, never stored (reviews.go).
	if h.res.IsReview() && ri.Verb == "create" && ri.Name == "" && ri.Namespace == "" {
		s.handleReview(w, r, h)
		return
	}
	if h.res.Namespaced && ri.Namespace == "" && ri.Name != "" {
		s.writeError(w, r, notFoundPath())
		return
	}
	if !h.res.Namespaced && ri.Namespace != "" && ri.Resource != "namespaces" {
		s.writeError(w, r, notFoundPath())
		return
	}
	if isProxyRequest(ri) {
		s.handleProxy(w, r, h, ri)
		return
	}
	if ri.Subresource != "" {
		if !h.res.HasSubresource(ri.Subresource) || len(ri.Parts) > 3+boolInt(ri.Namespace != "" && ri.Resource != "namespaces")*2 {
			s.writeError(w, r, notFoundPath())
			return
		}
		s.serveSubresource(w, r, h, ri)
		return
	}
	if !contains(h.res.Verbs, ri.Verb) && !(ri.Verb == "watch" && contains(h.res.Verbs, "list")) {
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		return
	}
	switch ri.Verb {
	case "get":
		s.handleGet(w, r, h, ri)
	case "list":
		s.handleList(w, r, h, ri)
	case "watch":
		s.handleWatch(w, r, h, ri)
	case "create":
		if ri.Name != "" {
			s.writeError(w, r, methodNotSupported(h.res.GroupResource(), "create"))
			return
		}
		s.handleCreate(w, r, h, ri)
	case "update":
		s.handleUpdate(w, r, h, ri, false)
	case "patch":
		s.handlePatch(w, r, h, ri, false)
	case "delete":
		s.handleDelete(w, r, h, ri)
	case "deletecollection":
		s.handleDeleteCollection(w, r, h, ri)
	default:
		s.writeError(w, r, methodNotSupported(h.res.GroupResource(), strings.ToLower(r.Method)))
	}
}

func (s *Server) serveSubresource(w http.ResponseWriter, r *http.Request, h *resourceHandler, ri requestInfo) {
	switch ri.Subresource {
	case "status":
		switch ri.Verb {
		case "get":
			s.handleGet(w, r, h, ri)
		case "update":
			s.handleUpdate(w, r, h, ri, true)
		case "patch":
			s.handlePatch(w, r, h, ri, true)
		default:
			s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
		}
	case "scale":
		s.handleScale(w, r, h, ri)
	case "log":
		s.handleLog(w, r, h, ri)
	case "exec":
		s.handleExec(w, r, h, ri)
	case "attach":
		s.handleAttach(w, r, h, ri)
	case "portforward":
		s.handlePortForward(w, r, h, ri)
	case "binding":
		if ri.Verb != "create" {
			s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
			return
		}
		s.handleBinding(w, r, ri.Namespace, ri.Name)
	case "finalize":
		if ri.Verb != "update" {
			s.writeError(w, r, methodNotSupported(h.res.GroupResource(), ri.Verb))
			return
		}
		s.handleUpdate(w, r, h, ri, false)
	default:
		s.writeError(w, r, notImplemented(h.res.Name+"/"+ri.Subresource))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
