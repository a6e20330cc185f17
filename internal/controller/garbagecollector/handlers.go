package garbagecollector

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// handlers returns the event handlers of r's informer. They only queue keys:
//
//   - an object with owners, or an owner entering orphan or foreground deletion,
//     when it appears;
//   - an object whose owner references change, and the owners it stopped naming
//     (one of them may be waiting for it);
//   - an object entering orphan or foreground deletion;
//   - on deletion, the object's dependents (their owner is gone) and its owners (one
//     of them may be waiting for it).
func (g *collector) handlers(r resource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			m := metaOf(obj)
			if m == nil {
				return
			}
			if len(m.OwnerReferences) > 0 || orphaning(m) || deletingDependents(m) {
				g.queue.Add(refOf(r, m))
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, n := metaOf(oldObj), metaOf(newObj)
			if o == nil || n == nil {
				return
			}
			if !ownerRefsEqual(o.OwnerReferences, n.OwnerReferences) {
				g.queue.Add(refOf(r, n))
				for _, ref := range o.OwnerReferences {
					if !slices.ContainsFunc(n.OwnerReferences, func(x metav1.OwnerReference) bool { return equality.Semantic.DeepEqual(x, ref) }) {
						g.enqueueOwner(r, o.Namespace, ref)
					}
				}
				return
			}
			if (orphaning(n) && !orphaning(o)) || (deletingDependents(n) && !deletingDependents(o)) {
				g.queue.Add(refOf(r, n))
			}
		},
		DeleteFunc: func(obj any) {
			m := metaOf(obj)
			if m == nil {
				return
			}
			g.absent.Add(ownerKey{Namespace: m.Namespace, UID: m.UID})
			for _, d := range g.dependents(m.UID) {
				g.queue.Add(d.ref)
			}
			for _, ref := range m.OwnerReferences {
				g.enqueueOwner(r, m.Namespace, ref)
			}
		},
	}
}

// enqueueOwner queues the owner that ref (on an object of resource dep in namespace)
// points to, if it can be resolved.
func (g *collector) enqueueOwner(dep resource, namespace string, ref metav1.OwnerReference) {
	r, err := g.resources.forOwner(ref)
	if err != nil {
		return
	}
	ns := ""
	if r.Namespaced {
		if !dep.Namespaced {
			return
		}
		ns = namespace
	}
	g.queue.Add(objectRef{Resource: r.GVR, Namespace: ns, Name: ref.Name, UID: ref.UID})
}

// metaOf returns the metadata of an informer object or deletion tombstone.
func metaOf(obj any) *metav1.ObjectMeta {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		return &m.ObjectMeta
	}
	return nil
}

// indexByOwnerUID indexes an object by the UIDs of its owners.
func indexByOwnerUID(obj any) ([]string, error) {
	m := metaOf(obj)
	if m == nil {
		return nil, nil
	}
	keys := make([]string, 0, len(m.OwnerReferences))
	for _, ref := range m.OwnerReferences {
		keys = append(keys, string(ref.UID))
	}
	return keys, nil
}

// slim keeps in the informer cache only the metadata the collector reads: identity,
// deletion state, finalizers and owners (no labels, annotations or managed fields).
func slim(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:                       m.Name,
			Namespace:                  m.Namespace,
			UID:                        m.UID,
			ResourceVersion:            m.ResourceVersion,
			DeletionTimestamp:          m.DeletionTimestamp,
			DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
			Finalizers:                 m.Finalizers,
			OwnerReferences:            m.OwnerReferences,
		},
	}, nil
}
