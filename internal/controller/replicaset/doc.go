// Package replicaset is the ReplicaSet controller, as Kubernetes'
// pkg/controller/replicaset: it keeps spec.replicas active pods for every ReplicaSet.
//
// Data flow: pod and ReplicaSet informer events only enqueue the key of the
// ReplicaSet concerned (and record observed creations and deletions in the
// expectations); workers run sync(key), which
//
//  1. claims pods: adopts orphans that match the selector and releases owned pods
//     that no longer match (owner references are patched);
//  2. if the expectations of earlier creations and deletions are met (the cache
//     has caught up with them), creates the missing pods from the template in
//     slow-start batches (1, 2, 4, ...) or deletes the surplus, choosing the pods
//     that matter least (unscheduled before scheduled, pending before running, not
//     ready before ready, ...), at most 500 at a time;
//  3. writes status (replicas, fullyLabeledReplicas, readyReplicas,
//     availableReplicas, observedGeneration, the ReplicaFailure condition) through
//     the status subresource, and requeues itself for when a ready pod becomes
//     available after minReadySeconds.
//
// Events on the ReplicaSet: SuccessfulCreate "Created pod: NAME", FailedCreate,
// SuccessfulDelete "Deleted pod: NAME", FailedDelete.
package replicaset
