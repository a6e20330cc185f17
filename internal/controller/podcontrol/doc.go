// Package podcontrol holds what the ReplicaSet and Deployment controllers share, as
// pkg/controller/controller_utils.go and controller_ref_manager.go do in Kubernetes:
//
//   - PodControl creates pods from a template (generateName "<owner>-", the owner as
//     controller reference) and deletes them, recording the SuccessfulCreate,
//     FailedCreate, SuccessfulDelete and FailedDelete events on the owner.
//   - RefManager claims objects for a controller: it adopts orphans that match the
//     controller's selector and releases owned objects that no longer match, by
//     strategic-merge patches of metadata.ownerReferences.
//   - Expectations remembers the creations and deletions a controller has asked for
//     and not yet seen in its informer cache, so that a sync working on a stale
//     cache does not create or delete the same pods twice.
//   - Pod predicates: IsPodActive, IsPodReady, IsPodAvailable.
package podcontrol
