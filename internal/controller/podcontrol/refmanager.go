package podcontrol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// RefManager claims objects for one controller object (Kubernetes'
// ControllerRefManager): an object already controlled by the controller is kept while
// it matches the selector and released when it stops matching; an orphan that matches
// is adopted. Objects controlled by someone else are never touched.
//
// A RefManager is built per sync and used by one goroutine.
type RefManager struct {
	// Controller is the owning object; Kind its group, version and kind.
	Controller metav1.Object
	Kind       schema.GroupVersionKind
	Selector   labels.Selector
	// CanAdopt is called once, before the first adoption, and adoption is refused if
	// it fails. Controllers use RecheckDeletionTimestamp so that an owner deleted
	// since the cache was read adopts nothing.
	CanAdopt func(ctx context.Context) error

	once        sync.Once
	canAdoptErr error
}

func (m *RefManager) canAdopt(ctx context.Context) error {
	m.once.Do(func() {
		if m.CanAdopt != nil {
			m.canAdoptErr = m.CanAdopt(ctx)
		}
	})
	return m.canAdoptErr
}

// RecheckDeletionTimestamp returns a CanAdopt function that reads the owner afresh
// with get and refuses adoption if it is being deleted.
func RecheckDeletionTimestamp(get func(ctx context.Context) (metav1.Object, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		obj, err := get(ctx)
		if err != nil {
			return fmt.Errorf("can't recheck DeletionTimestamp: %w", err)
		}
		if obj.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%v/%v has just been deleted at %v", obj.GetNamespace(), obj.GetName(), obj.GetDeletionTimestamp())
		}
		return nil
	}
}

// ClaimPods returns the pods the controller owns after adopting and releasing:
// pods that match the selector and every filter. Errors from individual adoptions
// or releases are joined; the pods claimed so far are still returned.
func (m *RefManager) ClaimPods(ctx context.Context, client kubernetes.Interface, pods []*corev1.Pod, filters ...func(*corev1.Pod) bool) ([]*corev1.Pod, error) {
	match := func(p *corev1.Pod) bool {
		if !m.Selector.Matches(labels.Set(p.Labels)) {
			return false
		}
		for _, f := range filters {
			if !f(p) {
				return false
			}
		}
		return true
	}
	patch := func(ctx context.Context, namespace, name string, data []byte) error {
		_, err := client.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
		return err
	}
	return claim(ctx, m, "Pod", pods, match, patch)
}

// ClaimReplicaSets is ClaimPods for ReplicaSets.
func (m *RefManager) ClaimReplicaSets(ctx context.Context, client kubernetes.Interface, sets []*appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, error) {
	match := func(rs *appsv1.ReplicaSet) bool { return m.Selector.Matches(labels.Set(rs.Labels)) }
	patch := func(ctx context.Context, namespace, name string, data []byte) error {
		_, err := client.AppsV1().ReplicaSets(namespace).Patch(ctx, name, types.StrategicMergePatchType, data, metav1.PatchOptions{})
		return err
	}
	return claim(ctx, m, "ReplicaSet", sets, match, patch)
}

type patchFunc func(ctx context.Context, namespace, name string, patch []byte) error

func claim[T metav1.Object](ctx context.Context, m *RefManager, kind string, objs []T, match func(T) bool, patch patchFunc) ([]T, error) {
	var claimed []T
	var errs []error
	for _, o := range objs {
		ok, err := m.claimObject(ctx, kind, o, match(o), patch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, o)
		}
	}
	return claimed, errors.Join(errs...)
}

// claimObject decides one object; it reports whether the controller owns it now.
func (m *RefManager) claimObject(ctx context.Context, kind string, obj metav1.Object, matches bool, patch patchFunc) (bool, error) {
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		if ref.UID != m.Controller.GetUID() {
			return false, nil // someone else's
		}
		if matches {
			// Ours and still matching: claimed even if being deleted, so that the
			// controller keeps counting it until it is gone.
			return true, nil
		}
		if m.Controller.GetDeletionTimestamp() != nil {
			return false, nil
		}
		if err := m.release(ctx, obj, patch); err != nil {
			return false, fmt.Errorf("releasing %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
		}
		return false, nil
	}
	// An orphan.
	if m.Controller.GetDeletionTimestamp() != nil || !matches || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if ns := m.Controller.GetNamespace(); ns != "" && ns != obj.GetNamespace() {
		return false, nil
	}
	if err := m.adopt(ctx, kind, obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (m *RefManager) adopt(ctx context.Context, kind string, obj metav1.Object, patch patchFunc) error {
	if err := m.canAdopt(ctx); err != nil {
		return fmt.Errorf("can't adopt %s %v/%v (%v): %w", kind, obj.GetNamespace(), obj.GetName(), obj.GetUID(), err)
	}
	data, err := AdoptPatch(m.Controller, m.Kind, obj.GetUID())
	if err != nil {
		return err
	}
	return patch(ctx, obj.GetNamespace(), obj.GetName(), data)
}

func (m *RefManager) release(ctx context.Context, obj metav1.Object, patch patchFunc) error {
	data, err := ReleasePatch(obj.GetUID(), m.Controller.GetUID())
	if err != nil {
		return err
	}
	err = patch(ctx, obj.GetNamespace(), obj.GetName(), data)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsInvalid(err), apierrors.IsConflict(err):
		// The object no longer has our reference, or was deleted and recreated
		// under the same name (its uid precondition failed): nothing to release.
		return nil
	}
	return err
}

type metaPatch struct {
	Metadata metaPatchBody `json:"metadata"`
}

type metaPatchBody struct {
	OwnerReferences []any     `json:"ownerReferences"`
	UID             types.UID `json:"uid"`
}

// AdoptPatch is the strategic-merge patch that makes owner the controller of the
// object with uid dependent: it adds a controller owner reference with
// blockOwnerDeletion, and carries the dependent's uid so that a recreated object
// of the same name is not patched.
func AdoptPatch(owner metav1.Object, kind schema.GroupVersionKind, dependent types.UID) ([]byte, error) {
	yes := true
	ref := metav1.OwnerReference{
		APIVersion:         kind.GroupVersion().String(),
		Kind:               kind.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}
	return json.Marshal(metaPatch{Metadata: metaPatchBody{OwnerReferences: []any{ref}, UID: dependent}})
}

// ReleasePatch is the strategic-merge patch that removes the owner reference to
// owner from the object with uid dependent.
func ReleasePatch(dependent, owner types.UID) ([]byte, error) {
	del := map[string]any{"$patch": "delete", "uid": owner}
	return json.Marshal(metaPatch{Metadata: metaPatchBody{OwnerReferences: []any{del}, UID: dependent}})
}
