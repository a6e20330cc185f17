// Package sliceindex indexes the shared EndpointSlice informer by Service, so that
// the EndpointSlice and EndpointSlice mirroring controllers find a Service's slices
// without scanning every slice of the namespace.
//
// client-go's lister answers EndpointSlices(ns).List(selector) by walking the
// namespace index and matching the selector against each slice: O(slices in the
// namespace) per Service sync, O(n²) over a burst of n Services. The index here
// keys each slice by "<namespace>/<kubernetes.io/service-name label>", so a lookup
// touches only the slices of that Service name; the remaining label (managed-by)
// is matched on those.
//
// Both controllers share one informer from one SharedInformerFactory and both call
// Add; the index is added once. Add must be called before the informer's first
// lookup (in the controllers' New, before the factory starts), although client-go
// also indexes the objects already cached when an index is added later.
package sliceindex

import (
	"fmt"
	"reflect"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// ByService is the name of the index on the EndpointSlice informer. It is
// qualified so that it cannot clash with an index another component adds.
const ByService = "kubesvc.io/endpointslice-by-service"

// Key is the index key of the slices labelled kubernetes.io/service-name=service in
// namespace. Namespace names cannot contain "/", so keys are unambiguous.
func Key(namespace, service string) string {
	return namespace + "/" + service
}

// IndexFunc is the ByService index function: one key per slice that carries the
// kubernetes.io/service-name label (even with an empty value, as a label selector
// service-name= matches it), none for other slices or other objects.
func IndexFunc(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	svc, ok := s.Labels[discoveryv1.LabelServiceName]
	if !ok {
		return nil, nil
	}
	return []string{Key(s.Namespace, svc)}, nil
}

// Add adds the ByService index to inf unless it is there already. It returns an
// error when inf has an index of that name with another function, or when inf
// cannot take indexes any more (it has stopped). Concurrent Adds on one informer
// are safe; an Add concurrent with other code adding other indexes to the same
// informer is not (client-go's GetIndexers reads its map without a lock).
func Add(inf cache.SharedIndexInformer) error {
	// Add first, under the informer's lock, and only on a conflict read the
	// indexers: the Add that won has then finished writing them.
	err := inf.AddIndexers(cache.Indexers{ByService: IndexFunc})
	if err == nil {
		return nil
	}
	present, herr := has(inf.GetIndexer())
	if herr != nil {
		return herr
	}
	if present {
		return nil
	}
	return fmt.Errorf("add endpointslice index %s: %w", ByService, err)
}

// has reports whether indexer has the ByService index, and fails when the name is
// taken by another function (client-go would then answer lookups with other keys).
func has(indexer cache.Indexer) (bool, error) {
	f, ok := indexer.GetIndexers()[ByService]
	if !ok {
		return false, nil
	}
	if reflect.ValueOf(f).Pointer() != reflect.ValueOf(cache.IndexFunc(IndexFunc)).Pointer() {
		return false, fmt.Errorf("endpointslice index %s: already defined with another function", ByService)
	}
	return true, nil
}

// Lister returns the EndpointSlices of one Service from an indexer that has the
// ByService index.
type Lister struct {
	indexer cache.Indexer
}

// NewLister returns a Lister over indexer (the shared EndpointSlice informer's,
// after Add).
func NewLister(indexer cache.Indexer) *Lister {
	return &Lister{indexer: indexer}
}

// List returns the cached slices in namespace labelled
// kubernetes.io/service-name=service and endpointslice.kubernetes.io/managed-by=
// managedBy — what EndpointSlices(namespace).List with that label selector returns,
// in no particular order. The slices are the cache's: callers must not modify
// them. No matching slice gives an empty result and no error; an error comes back
// when the index is missing.
func (l *Lister) List(namespace, service, managedBy string) ([]*discoveryv1.EndpointSlice, error) {
	objs, err := l.indexer.ByIndex(ByService, Key(namespace, service))
	if err != nil {
		return nil, fmt.Errorf("endpointslice index %s: %w", ByService, err)
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		// The key alone would do for valid names; checking the namespace and the
		// label too keeps the result the selector's for any input.
		if s.Namespace != namespace || !hasLabel(s, discoveryv1.LabelServiceName, service) ||
			!hasLabel(s, discoveryv1.LabelManagedBy, managedBy) {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func hasLabel(s *discoveryv1.EndpointSlice, key, value string) bool {
	v, ok := s.Labels[key]
	return ok && v == value
}
