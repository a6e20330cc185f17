package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what the collector found for one owner reference.
type ownerState string

const (
	// ownerAbsent: no object with the reference's UID exists (a dangling reference).
	ownerAbsent ownerState = "Absent"
	// ownerSolid: the owner exists and is not waiting for its dependents; also an
	// owner that cannot be resolved (cluster-scoped dependent, namespaced owner kind).
	ownerSolid ownerState = "Solid"
	// ownerWaiting: the owner exists and is being deleted in the foreground.
	ownerWaiting ownerState = "WaitingForDependents"
)

// actionKind is what attemptToDelete does with an object.
type actionKind string

const (
	// actNone leaves the object alone.
	actNone actionKind = "None"
	// actRemoveRefs removes the owner references of action.RemoveUIDs.
	actRemoveRefs actionKind = "RemoveOwnerReferences"
	// actDelete deletes the object with action.Policy.
	actDelete actionKind = "Delete"
)

// action is the decision for one object.
type action struct {
	Kind actionKind
	// RemoveUIDs are the owners whose references actRemoveRefs removes.
	RemoveUIDs []types.UID
	// Policy is actDelete's propagation policy.
	Policy metav1.DeletionPropagation
	// Unblock: before the delete, clear blockOwnerDeletion on the object's owner
	// references, because a dependent of the object is itself waiting for its
	// dependents and the owners could otherwise wait on each other in a cycle.
	Unblock bool
}

// decide is the garbage collector's rule for an object that is not being deleted
// and has owner references: owners[i] is the state of item.OwnerReferences[i] and
// dependents are the objects that name item as an owner.
//
//   - some owner is solid: keep the object, removing references to absent owners and
//     to owners waiting for their dependents (which would otherwise wait forever);
//   - no solid owner, some owner waiting, and the object has dependents: delete it in
//     the foreground, so that the waiting owner waits for the whole subtree;
//   - otherwise (every owner absent or waiting): delete it, with the policy its own
//     orphan or foregroundDeletion finalizer asks for, or in the background.
func decide(item *metav1.ObjectMeta, owners []ownerState, dependents []*metav1.ObjectMeta) action {
	var solid, waiting bool
	var remove []types.UID
	for i, st := range owners {
		switch st {
		case ownerSolid:
			solid = true
		case ownerWaiting:
			waiting = true
			remove = append(remove, item.OwnerReferences[i].UID)
		case ownerAbsent:
			remove = append(remove, item.OwnerReferences[i].UID)
		}
	}
	switch {
	case solid && len(remove) == 0:
		return action{Kind: actNone}
	case solid:
		return action{Kind: actRemoveRefs, RemoveUIDs: remove}
	case waiting && len(dependents) > 0:
		unblock := slices.ContainsFunc(dependents, deletingDependents)
		return action{Kind: actDelete, Policy: metav1.DeletePropagationForeground, Unblock: unblock}
	case hasFinalizer(item, metav1.FinalizerOrphanDependents):
		return action{Kind: actDelete, Policy: metav1.DeletePropagationOrphan}
	case hasFinalizer(item, metav1.FinalizerDeleteDependents):
		return action{Kind: actDelete, Policy: metav1.DeletePropagationForeground}
	default:
		return action{Kind: actDelete, Policy: metav1.DeletePropagationBackground}
	}
}

// stateOf classifies an owner that exists.
func stateOf(owner *metav1.ObjectMeta) ownerState {
	if deletingDependents(owner) {
		return ownerWaiting
	}
	return ownerSolid
}

// deletingDependents reports an object in foreground deletion.
func deletingDependents(m *metav1.ObjectMeta) bool {
	return m.DeletionTimestamp != nil && hasFinalizer(m, metav1.FinalizerDeleteDependents)
}

// orphaning reports an object being deleted with the orphan finalizer.
func orphaning(m *metav1.ObjectMeta) bool {
	return m.DeletionTimestamp != nil && hasFinalizer(m, metav1.FinalizerOrphanDependents)
}

func hasFinalizer(m *metav1.ObjectMeta, f string) bool {
	return slices.Contains(m.Finalizers, f)
}

// blocks reports whether dependent holds up owner's foreground deletion: its
// reference to owner has blockOwnerDeletion set.
func blocks(dependent *metav1.ObjectMeta, owner types.UID) bool {
	for _, ref := range dependent.OwnerReferences {
		if ref.UID == owner && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			return true
		}
	}
	return false
}

// withoutOwners returns refs without the references to uids (nil if none is left).
func withoutOwners(refs []metav1.OwnerReference, uids []types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, ref := range refs {
		if !slices.Contains(uids, ref.UID) {
			out = append(out, ref)
		}
	}
	return out
}

// unblocked returns refs with blockOwnerDeletion cleared.
func unblocked(refs []metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, len(refs))
	for i, ref := range refs {
		if ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			f := false
			ref.BlockOwnerDeletion = &f
		}
		out[i] = ref
	}
	return out
}

// withoutFinalizer returns finalizers without f (nil if none is left).
func withoutFinalizer(finalizers []string, f string) []string {
	var out []string
	for _, x := range finalizers {
		if x != f {
			out = append(out, x)
		}
	}
	return out
}
