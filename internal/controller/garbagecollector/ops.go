package garbagecollector

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// get reads an object's metadata from the server; a missing object is (nil, nil).
func (g *collector) get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*metav1.PartialObjectMetadata, error) {
	obj, err := g.client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return obj, err
}

// deleteObject deletes key with policy. The delete is guarded by key's UID and, when
// rv is set, by the resource version the decision was made on; if only the resource
// version moved and the owner references are still refs, it is retried on the UID
// alone (as Kubernetes does). An object already gone is not an error.
func (g *collector) deleteObject(ctx context.Context, key objectRef, rv string, refs []metav1.OwnerReference, policy metav1.DeletionPropagation) error {
	client := g.client.Resource(key.Resource).Namespace(key.Namespace)
	del := func(rv string) error {
		pre := &metav1.Preconditions{UID: &key.UID}
		if rv != "" {
			pre.ResourceVersion = &rv
		}
		err := client.Delete(ctx, key.Name, metav1.DeleteOptions{Preconditions: pre, PropagationPolicy: &policy})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	err := del(rv)
	if !apierrors.IsConflict(err) || rv == "" {
		return wrap(err, "delete %s", key)
	}
	live, gerr := g.get(ctx, key.Resource, key.Namespace, key.Name)
	switch {
	case gerr != nil:
		return fmt.Errorf("delete %s: %w", key, gerr)
	case live == nil || live.UID != key.UID:
		return nil
	case !ownerRefsEqual(live.OwnerReferences, refs):
		return fmt.Errorf("delete %s: owner references changed since the decision: %w", key, err)
	}
	return wrap(del(""), "delete %s", key)
}

// patchOwnerReferences replaces key's owner references with edit's result.
func (g *collector) patchOwnerReferences(ctx context.Context, key objectRef, edit func([]metav1.OwnerReference) []metav1.OwnerReference) error {
	return g.patchMetadata(ctx, key, "ownerReferences", func(m *metav1.ObjectMeta) (any, bool) {
		refs := edit(m.OwnerReferences)
		return refs, !ownerRefsEqual(refs, m.OwnerReferences)
	})
}

// removeFinalizer removes finalizer f from key.
func (g *collector) removeFinalizer(ctx context.Context, key objectRef, f string) error {
	return g.patchMetadata(ctx, key, "finalizers", func(m *metav1.ObjectMeta) (any, bool) {
		return withoutFinalizer(m.Finalizers, f), hasFinalizer(m, f)
	})
}

// patchMetadata sets one metadata field of the live object key to what compute
// returns (if it reports a change) with a JSON merge patch guarded by the object's
// UID and resource version, retrying on conflicts. An object that is gone, or was
// replaced under the same name, is not an error.
func (g *collector) patchMetadata(ctx context.Context, key objectRef, field string, compute func(*metav1.ObjectMeta) (any, bool)) error {
	client := g.client.Resource(key.Resource).Namespace(key.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := g.get(ctx, key.Resource, key.Namespace, key.Name)
		if err != nil || live == nil || live.UID != key.UID {
			return err
		}
		value, changed := compute(&live.ObjectMeta)
		if !changed {
			return nil
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid":             key.UID,
			"resourceVersion": live.ResourceVersion,
			field:             value,
		}})
		if err != nil {
			return err
		}
		_, err = client.Patch(ctx, key.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	return wrap(err, "patch %s of %s", field, key)
}

// wrap adds context to a non-nil error.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
