package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what the URL path says about an API request.
type requestInfo struct {
	// IsResource is false for non-resource paths (/version, /healthz, discovery).
	IsResource  bool
	Group       string
	Version     string
	Namespace   string
	Resource    string
	Name        string
	Subresource string
	// Verb is the Kubernetes verb: get, list, watch, create, update, patch, delete,
	// deletecollection.
	Verb string
	// Parts are the path segments after the group-version.
	Parts []string
}

// parseRequestInfo understands /api/v1/... and /apis/<group>/<version>/... paths.
func parseRequestInfo(r *http.Request) requestInfo {
	path := strings.Trim(r.URL.Path, "/")
	segs := strings.Split(path, "/")
	var ri requestInfo
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		ri.Version = segs[1]
		segs = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		ri.Group, ri.Version = segs[1], segs[2]
		segs = segs[3:]
	default:
		return ri
	}
	if len(segs) == 0 {
		return ri
	}
	ri.Parts = segs
	ri.IsResource = true
	// namespaces/{ns}/{resource}/... ; but "namespaces" and "namespaces/{name}" and
	// "namespaces/{name}/status|finalize" are the namespace resource itself.
	if segs[0] == "namespaces" && len(segs) >= 3 && segs[2] != "status" && segs[2] != "finalize" {
		ri.Namespace = segs[1]
		segs = segs[2:]
	}
	ri.Resource = segs[0]
	if len(segs) >= 2 {
		ri.Name = segs[1]
	}
	if len(segs) >= 3 {
		ri.Subresource = segs[2]
	}
	if ri.Resource == "namespaces" && ri.Namespace == "" && ri.Name != "" {
		ri.Namespace = ri.Name
	}
	watch := false
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		watch = isWatch(r.URL.Query())
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case ri.Name == "" && watch:
			ri.Verb = "watch"
		case ri.Name == "":
			ri.Verb = "list"
		case watch:
			ri.Verb = "watch"
		default:
			ri.Verb = "get"
		}
	case http.MethodPost:
		ri.Verb = "create"
	case http.MethodPut:
		ri.Verb = "update"
	case http.MethodPatch:
		ri.Verb = "patch"
	case http.MethodDelete:
		if ri.Name == "" {
			ri.Verb = "deletecollection"
		} else {
			ri.Verb = "delete"
		}
	default:
		ri.Verb = strings.ToLower(r.Method)
	}
	return ri
}
