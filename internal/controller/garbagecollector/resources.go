package garbagecollector

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// resource is one served resource.
type resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// resourceSet is what discovery told the collector: the resources it watches, and
// how to find the resource of an owner reference's kind.
type resourceSet struct {
	// Watched are the resources with list, watch and delete, in discovery order.
	Watched []resource
	// byKind maps every served kind (preferred version) to its resource.
	byKind map[schema.GroupKind]resource
}

// ignored reports the watchable resources the collector leaves alone.
// events.k8s.io events share their storage with core events: watching both would
// show every Event twice, under two resources.
func ignored(gr schema.GroupResource) bool {
	return gr == schema.GroupResource{Group: "events.k8s.io", Resource: "events"}
}

// newResourceSet builds a resourceSet from preferred resource lists. Subresources
// are skipped; a list with an unparsable group version is skipped too.
func newResourceSet(lists []*metav1.APIResourceList) *resourceSet {
	rs := &resourceSet{byKind: map[schema.GroupKind]resource{}}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, ar := range l.APIResources {
			if strings.Contains(ar.Name, "/") {
				continue
			}
			r := resource{GVR: gv.WithResource(ar.Name), Kind: ar.Kind, Namespaced: ar.Namespaced}
			gk := gv.WithKind(ar.Kind).GroupKind()
			if _, dup := rs.byKind[gk]; !dup {
				rs.byKind[gk] = r
			}
			if hasVerbs(ar.Verbs, "list", "watch", "delete") && !ignored(r.GVR.GroupResource()) {
				rs.Watched = append(rs.Watched, r)
			}
		}
	}
	return rs
}

// forOwner returns the resource of an owner reference's kind (any version of its
// group: metadata is the same in every version).
func (rs *resourceSet) forOwner(ref metav1.OwnerReference) (resource, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return resource{}, fmt.Errorf("owner reference %s %q: %w", ref.Kind, ref.Name, err)
	}
	r, ok := rs.byKind[gv.WithKind(ref.Kind).GroupKind()]
	if !ok {
		return resource{}, fmt.Errorf("owner reference %s/%s %q: %w", ref.APIVersion, ref.Kind, ref.Name, errUnknownKind)
	}
	return r, nil
}

func hasVerbs(have metav1.Verbs, want ...string) bool {
	for _, v := range want {
		if !slices.Contains(have, v) {
			return false
		}
	}
	return true
}

// discoverResources asks the server for its preferred resources. A partial answer
// (some group failed) is an error: the collector must not act on a partial view of
// the owners.
func discoverResources(ctx context.Context, dc discovery.DiscoveryInterface) (*resourceSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	return newResourceSet(lists), nil
}
