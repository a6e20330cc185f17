// Package namespace is the namespace controller: it empties a namespace being
// deleted and then releases it, as Kubernetes' namespace controller does
// (pkg/controller/namespace).
//
// When a namespace has a deletionTimestamp and still carries the "kubernetes"
// finalizer in spec.finalizers, the controller
//
//  1. deletes its pods (deletecollection, background propagation) and waits until
//     none is left: pods go before anything they may depend on, as with Kubernetes'
//     OrderedNamespaceDeletion (GA in 1.34);
//  2. deletes every other namespaced resource the server serves with list and delete
//     (from discovery: deletecollection where served, else list and delete each);
//  3. lists them again and, while anything remains (objects held by finalizers, pods
//     in graceful termination), queues the namespace again after an estimate: half
//     the longest remaining grace period, or of 15s for objects with finalizers, plus
//     one second — Kubernetes' schedule;
//  4. once the namespace is empty, removes "kubernetes" from spec.finalizers with the
//     finalize subresource. The API server then removes the namespace as soon as its
//     metadata.finalizers are empty too.
//
// Differences from Kubernetes: the controller does not write the
// NamespaceDeletion*/NamespaceContentRemaining/NamespaceFinalizersRemaining status
// conditions, because the kubesvc API server finishes the deletion of a terminating
// namespace on any update that leaves metadata.finalizers empty, without looking at
// spec.finalizers: a status update would remove the namespace before its content.
// Namespace events are processed after one second instead of five: Kubernetes waits
// for the namespace lifecycle admission caches, kubesvc checks the namespace in storage.
package namespace
