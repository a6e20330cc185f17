// Package garbagecollector deletes objects whose owners are gone and carries out
// foreground and orphan deletion, as Kubernetes' garbage collector does
// (pkg/controller/garbagecollector).
//
// Data flow:
//
//	discovery ──► one metadata informer per served resource that supports
//	              list, watch and delete (slim cache, indexed by owner UID)
//	                  │ event handlers enqueue object keys
//	                  ▼
//	              work queue of objectRef (resource, namespace, name, uid)
//	                  │ workers
//	                  ▼
//	              sync: orphan | deleting dependents | attempt to delete
//	                  │ metadata client
//	                  ▼
//	              API server (DELETE with preconditions, merge PATCH of metadata)
//
// For each object the collector decides, like Kubernetes:
//
//   - An object whose ownerReferences all point to absent owners (no object with
//     that UID; owners missing from the cache are confirmed with a live GET) is
//     deleted, in the background, or with the policy its own orphan/foregroundDeletion
//     finalizer asks for.
//   - An object with at least one live owner is kept; references to absent owners,
//     and to owners waiting for their dependents, are removed from it.
//   - An object whose only remaining owners are in foreground deletion is deleted;
//     if it has dependents itself, it is deleted in the foreground too.
//   - An owner being deleted with the foregroundDeletion finalizer has all its
//     dependents deleted; once no dependent with blockOwnerDeletion is left, the
//     finalizer is removed (and the API server removes the owner).
//   - An owner being deleted with the orphan finalizer has its ownerReference removed
//     from every dependent, then the finalizer is removed.
//
// Namespaced owners are looked up in the dependent's namespace. A cluster-scoped
// object that names a namespaced kind as its owner cannot be resolved: it is kept and
// a warning event (OwnerRefInvalidNamespace) is recorded. An owner reference whose
// kind the server does not serve is retried with rate limiting and then dropped.
//
// events.k8s.io/v1 events are the core/v1 events under another name; only the core
// resource is watched (unlike Kubernetes, which ignores events by default, kubesvc
// collects events too).
package garbagecollector
