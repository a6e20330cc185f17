package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// finalizerEstimate is how long Kubernetes expects an object held by finalizers to
// take (finalizerEstimateSeconds).
const finalizerEstimate = 15 * time.Second

// isPods reports the resource deleted first.
func isPods(gvr schema.GroupVersionResource) bool {
	return gvr.Group == "" && gvr.Resource == "pods"
}

// contentRemainingError reports content that is still going away.
type contentRemainingError struct {
	// Remaining counts the objects left.
	Remaining int
	// Estimate is the longest time one of them is expected to take.
	Estimate time.Duration
}

func (e *contentRemainingError) Error() string {
	return fmt.Sprintf("%d objects remain in the namespace, estimated %v before they are removed", e.Remaining, e.Estimate)
}

// Wait is when to look again: half the estimate plus one second (Kubernetes' rule).
func (e *contentRemainingError) Wait() time.Duration {
	return e.Estimate/2 + time.Second
}

// add counts one object left after its deletion was requested.
func (e *contentRemainingError) add(m *metav1.ObjectMeta, now time.Time) {
	e.Remaining++
	if len(m.Finalizers) > 0 {
		e.Estimate = max(e.Estimate, finalizerEstimate)
	}
	if m.DeletionTimestamp != nil {
		e.Estimate = max(e.Estimate, m.DeletionTimestamp.Sub(now).Round(time.Second))
	}
}

// resource is a namespaced resource the controller empties.
type resource struct {
	GVR              schema.GroupVersionResource
	DeleteCollection bool
}

// deletableResources picks, from preferred namespaced resource lists, the resources
// with list and delete (subresources excluded), pods first and the others in
// discovery order.
func deletableResources(lists []*metav1.APIResourceList) []resource {
	var out []resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, ar := range l.APIResources {
			if !ar.Namespaced || strings.Contains(ar.Name, "/") ||
				!slices.Contains(ar.Verbs, "list") || !slices.Contains(ar.Verbs, "delete") {
				continue
			}
			out = append(out, resource{GVR: gv.WithResource(ar.Name), DeleteCollection: slices.Contains(ar.Verbs, "deletecollection")})
		}
	}
	slices.SortStableFunc(out, func(a, b resource) int {
		return boolRank(!isPods(a.GVR)) - boolRank(!isPods(b.GVR))
	})
	return out
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// deleteContent deletes everything in namespace: pods first, and the rest only once
// no pod is left. It returns a *contentRemainingError while objects remain, and an
// error if discovery was partial (the namespace must not be released on a partial
// view of its content).
func (c *Controller) deleteContent(ctx context.Context, namespace string) error {
	lists, discErr := c.discovery.ServerPreferredNamespacedResources()
	resources := deletableResources(lists)
	if len(resources) == 0 && discErr != nil {
		return fmt.Errorf("discover namespaced resources: %w", discErr)
	}
	split := slices.IndexFunc(resources, func(r resource) bool { return !isPods(r.GVR) })
	if split < 0 {
		split = len(resources)
	}
	for _, phase := range [][]resource{resources[:split], resources[split:]} {
		left := &contentRemainingError{}
		var errs []error
		for _, r := range phase {
			if err := c.deleteAll(ctx, namespace, r, left); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if left.Remaining > 0 {
			return left
		}
	}
	if discErr != nil {
		return fmt.Errorf("discover namespaced resources (partial): %w", discErr)
	}
	return nil
}

// deleteAll deletes every object of r in namespace (background propagation) and
// counts in left those that remain.
func (c *Controller) deleteAll(ctx context.Context, namespace string, r resource, left *contentRemainingError) error {
	client := c.metadata.Resource(r.GVR).Namespace(namespace)
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	collected := false
	if r.DeleteCollection {
		err := client.DeleteCollection(ctx, opts, metav1.ListOptions{})
		switch {
		case err == nil:
			collected = true
		case apierrors.IsMethodNotSupported(err), apierrors.IsNotFound(err):
			// Not served after all: delete one by one.
		default:
			return fmt.Errorf("delete %s in %s: %w", r.GVR.GroupResource(), namespace, err)
		}
	}
	if !collected {
		if err := c.deleteEach(ctx, namespace, r, opts); err != nil {
			return err
		}
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s in %s: %w", r.GVR.GroupResource(), namespace, err)
	}
	now := time.Now()
	for i := range list.Items {
		left.add(&list.Items[i].ObjectMeta, now)
	}
	return nil
}

// deleteEach lists r in namespace and deletes every object not yet being deleted.
func (c *Controller) deleteEach(ctx context.Context, namespace string, r resource, opts metav1.DeleteOptions) error {
	client := c.metadata.Resource(r.GVR).Namespace(namespace)
	list, err := client.List(ctx, metav1.ListOptions{})
	if apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s in %s: %w", r.GVR.GroupResource(), namespace, err)
	}
	for _, item := range list.Items {
		if item.DeletionTimestamp != nil {
			continue
		}
		o := opts
		o.Preconditions = &metav1.Preconditions{UID: &item.UID}
		err := client.Delete(ctx, item.Name, o)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue // gone, or replaced (the next pass sees the new one)
		}
		if err != nil {
			return fmt.Errorf("delete %s %s/%s: %w", r.GVR.GroupResource(), namespace, item.Name, err)
		}
	}
	return nil
}

func everything() labels.Selector { return labels.Everything() }
