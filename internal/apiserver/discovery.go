package apiserver

import (
	"net/http"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/registry"
)

// groupOrder is the order kube-apiserver lists groups in (by priority); the core
// group is always first on /api.
func groupOrder() []string {
	return []string{"apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "networking.k8s.io"}
}

// aggregatedVersion returns "v2" or "v2beta1" when the client accepts aggregated
// discovery, "" otherwise.
func aggregatedVersion(r *http.Request) string {
	for _, mt := range parseAccept(r.Header.Get("Accept")) {
		if mt.Type == "application/json" && mt.Params["g"] == "apidiscovery.k8s.io" && mt.Params["as"] == "APIGroupDiscoveryList" {
			if v := mt.Params["v"]; v == "v2" || v == "v2beta1" {
				return v
			}
		}
	}
	return ""
}

func subresourceDiscovery(res *registry.Resource, sub string) apidiscoveryv2.APISubresourceDiscovery {
	d := apidiscoveryv2.APISubresourceDiscovery{Subresource: sub}
	own := &metav1.GroupVersionKind{Group: res.Group, Version: res.Version, Kind: res.Kind}
	switch sub {
	case "status", "ephemeralcontainers":
		d.ResponseKind, d.Verbs = own, []string{"get", "patch", "update"}
	case "scale":
		d.ResponseKind = &metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
		d.Verbs = []string{"get", "patch", "update"}
	case "binding":
		d.ResponseKind, d.Verbs = &metav1.GroupVersionKind{Version: "v1", Kind: "Binding"}, []string{"create"}
	case "log":
		d.ResponseKind, d.Verbs = &metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, []string{"get"}
	case "exec":
		d.ResponseKind, d.Verbs = &metav1.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"}, []string{"create", "get"}
	case "attach":
		d.ResponseKind, d.Verbs = &metav1.GroupVersionKind{Version: "v1", Kind: "PodAttachOptions"}, []string{"create", "get"}
	case "portforward":
		d.ResponseKind, d.Verbs = &metav1.GroupVersionKind{Version: "v1", Kind: "PodPortForwardOptions"}, []string{"create", "get"}
	case "finalize":
		d.ResponseKind, d.Verbs = own, []string{"update"}
	case "token":
		d.ResponseKind = &metav1.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}
		d.Verbs = []string{"create"}
	default:
		d.ResponseKind, d.Verbs = own, []string{"get"}
	}
	return d
}

func resourceDiscovery(res *registry.Resource) apidiscoveryv2.APIResourceDiscovery {
	scope := apidiscoveryv2.ScopeCluster
	if res.Namespaced {
		scope = apidiscoveryv2.ScopeNamespace
	}
	d := apidiscoveryv2.APIResourceDiscovery{
		Resource:         res.Name,
		ResponseKind:     &metav1.GroupVersionKind{Group: res.Group, Version: res.Version, Kind: res.Kind},
		Scope:            scope,
		SingularResource: res.SingularName,
		Verbs:            sortedCopy(res.Verbs),
		ShortNames:       res.ShortNames,
		Categories:       res.Categories,
	}
	for _, sub := range res.Subresources {
		d.Subresources = append(d.Subresources, subresourceDiscovery(res, sub))
	}
	return d
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func (s *Server) groupDiscovery(group string) apidiscoveryv2.APIGroupDiscovery {
	g := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: group}}
	hs := s.byGV[group+"/v1"]
	v := apidiscoveryv2.APIVersionDiscovery{Version: "v1", Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
	for _, h := range hs {
		v.Resources = append(v.Resources, resourceDiscovery(h.res))
	}
	g.Versions = append(g.Versions, v)
	return g
}

func (s *Server) writeAggregated(w http.ResponseWriter, version string, groups []apidiscoveryv2.APIGroupDiscovery) {
	list := apidiscoveryv2.APIGroupDiscoveryList{Items: groups}
	list.APIVersion, list.Kind = "apidiscovery.k8s.io/"+version, "APIGroupDiscoveryList"
	w.Header().Set("Vary", "Accept")
	writeJSONType(w, "application/json;g=apidiscovery.k8s.io;v="+version+";as=APIGroupDiscoveryList", list)
}

func (s *Server) serveCoreDiscovery(w http.ResponseWriter, r *http.Request) {
	if v := aggregatedVersion(r); v != "" {
		s.writeAggregated(w, v, []apidiscoveryv2.APIGroupDiscovery{s.groupDiscovery("")})
		return
	}
	w.Header().Set("Vary", "Accept")
	writeJSON(w, http.StatusOK, metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}},
	})
}

func (s *Server) serveGroupsDiscovery(w http.ResponseWriter, r *http.Request) {
	if v := aggregatedVersion(r); v != "" {
		var groups []apidiscoveryv2.APIGroupDiscovery
		for _, g := range groupOrder() {
			groups = append(groups, s.groupDiscovery(g))
		}
		s.writeAggregated(w, v, groups)
		return
	}
	list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range groupOrder() {
		list.Groups = append(list.Groups, apiGroup(g))
	}
	w.Header().Set("Vary", "Accept")
	writeJSON(w, http.StatusOK, list)
}

func apiGroup(g string) metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: g + "/v1", Version: "v1"}
	return metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: g,
		Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

// serveGroupVersionDiscovery serves /api/v1, /apis/<g> and /apis/<g>/<v>.
func (s *Server) serveGroupVersionDiscovery(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var group, version string
	switch {
	case parts[0] == "api" && len(parts) == 2:
		version = parts[1]
	case parts[0] == "apis" && len(parts) == 2:
		if _, ok := s.byGV[parts[1]+"/v1"]; ok {
			writeJSON(w, http.StatusOK, apiGroup(parts[1]))
			return
		}
		s.writeError(w, r, notFoundPath())
		return
	case parts[0] == "apis" && len(parts) == 3:
		group, version = parts[1], parts[2]
	default:
		s.writeError(w, r, notFoundPath())
		return
	}
	hs, ok := s.byGV[group+"/"+version]
	if !ok {
		s.writeError(w, r, notFoundPath())
		return
	}
	gv := version
	if group != "" {
		gv = group + "/" + version
	}
	list := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
	for _, h := range hs {
		res := h.res
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.Name, SingularName: res.SingularName, Namespaced: res.Namespaced, Kind: res.Kind,
			Verbs: sortedCopy(res.Verbs), ShortNames: res.ShortNames, Categories: res.Categories,
		})
		for _, sub := range res.Subresources {
			d := subresourceDiscovery(res, sub)
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.Name + "/" + sub, Namespaced: res.Namespaced, Kind: d.ResponseKind.Kind,
				Group: d.ResponseKind.Group, Version: d.ResponseKind.Version, Verbs: d.Verbs,
			})
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func writeJSONType(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	writeJSONBody(w, v)
}
