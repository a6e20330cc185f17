// Package registry describes every resource kubesvc serves: its names, scope, verbs,
// subresources, field selectors and the Strategy (what clients may not set,
// defaulting, validation, status handling, deletion, scale, table columns) the
// API server applies to it.
//
// Each kind has one file, kind_<kind>.go, that holds its Resource and its
// Strategy; the strategy calls the kind's functions in the defaults,
// validation and printers packages. resources.go lists the resources in
// discovery order; strategy.go holds the Strategy interface and the
// DefaultStrategy that every kind embeds.
package registry

import (
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resource is one served resource.
type Resource struct {
	Group, Version string
	// Name is the plural resource name (services).
	Name         string
	SingularName string
	Kind         string
	Namespaced   bool
	ShortNames   []string
	Categories   []string
	// Subresources served beside the main resource: "status", "scale", "binding", ...
	Subresources []string
	// New and NewList return zero objects of the type.
	New     func() runtime.Object
	NewList func() runtime.Object
	// Fields returns the fields that field selectors can use on obj (metadata.name and
	// metadata.namespace are always included by the caller).
	Fields func(obj runtime.Object) fields.Set
	// HasSpec: updates to spec bump metadata.generation.
	HasSpec bool
	// ContentGeneration: metadata.generation starts at 1 and is bumped when anything
	// but metadata (or the labels) changes (EndpointSlices, as in Kubernetes).
	ContentGeneration bool
	// Verbs are the verbs of the main resource.
	Verbs []string
	// Storage, when set, is the resource whose objects this one is a view of (stored
	// under its keys, in its kind); ToStorage and FromStorage convert.
	Storage     *Resource
	ToStorage   func(runtime.Object) runtime.Object
	FromStorage func(runtime.Object) runtime.Object
	// Strategy is what the kind does on each write; every served resource has
	// one. A view (Storage set) shares the strategy of the stored kind.
	Strategy Strategy
}

// StoredAs converts an object of this resource's kind to the stored kind.
func (r *Resource) StoredAs(obj runtime.Object) runtime.Object {
	if r.ToStorage == nil || obj == nil {
		return obj
	}
	return r.ToStorage(obj)
}

// Served converts a stored object to this resource's kind.
func (r *Resource) Served(obj runtime.Object) runtime.Object {
	if r.FromStorage == nil || obj == nil {
		return obj
	}
	return r.FromStorage(obj)
}

// GVR is the resource's group, version and plural name.
func (r *Resource) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Name}
}

// GVK is the resource's kind.
func (r *Resource) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// GroupResource is the resource's group and plural name.
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Name}
}

// HasSubresource reports whether sub is served.
func (r *Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// KeyPrefix is the etcd prefix of all objects of the resource:
// /registry/<group or "core">/<resource>/.
func (r *Resource) KeyPrefix() string {
	if r.Storage != nil {
		return r.Storage.KeyPrefix()
	}
	g := r.Group
	if g == "" {
		g = "core"
	}
	return "/registry/" + g + "/" + r.Name + "/"
}

// Key is the etcd key of one object; namespace is ignored for cluster-scoped resources.
func (r *Resource) Key(namespace, name string) string {
	if r.Namespaced {
		return r.KeyPrefix() + namespace + "/" + name
	}
	return r.KeyPrefix() + name
}

// ListPrefix is the prefix for a list in namespace ("" = all namespaces).
func (r *Resource) ListPrefix(namespace string) string {
	if r.Namespaced && namespace != "" {
		return r.KeyPrefix() + namespace + "/"
	}
	return r.KeyPrefix()
}

// StandardVerbs returns the verbs of an ordinary resource.
func StandardVerbs() []string {
	return []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}
