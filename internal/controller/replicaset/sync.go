package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/kubesvc/kubesvc/internal/controller/podcontrol"
)

// slowStartInitialBatchSize is the first batch of pod creations; each successful
// batch doubles the next one, so that a ReplicaSet whose pods are all refused (quota,
// admission) fails after one call rather than hundreds.
const slowStartInitialBatchSize = 1

// sync brings one ReplicaSet's pods and status in line with its spec. It is
// idempotent; an error asks for a rate-limited retry.
func (c *Controller) sync(ctx context.Context, key string) error {
	start := c.now()
	defer func() { c.log.Debug("synced", "replicaset", key, "took", time.Since(start)) }()

	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("bad key %q: %w", key, err)
	}
	rs, err := c.rsLister.ReplicaSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.Delete(key)
		return nil
	}
	if err != nil {
		return err
	}
	// Read the expectations before the pods: a pod event arriving in between can
	// only make the pod list newer than the expectations say.
	needsSync := c.expectations.Satisfied(key)
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// Invalid selectors are refused by validation; retrying cannot help.
		c.log.Error("invalid selector", "replicaset", key, "err", err)
		return nil
	}
	// List all pods, not just the matching ones, so that owned pods whose labels
	// stopped matching are released.
	all, err := c.podLister.Pods(namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, rs, selector, podcontrol.FilterActivePods(all))
	if err != nil {
		return err
	}
	terminating := terminatingPods(rs, selector, all)
	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, pods, rs)
	}
	rs = rs.DeepCopy()
	now := c.now()
	status := calculateStatus(rs, pods, terminating, manageErr, now)
	updated, err := c.updateStatus(ctx, rs, status)
	if err != nil {
		return errors.Join(manageErr, err)
	}
	// Pods that are ready but not yet available become available by the clock
	// alone: come back then.
	if manageErr == nil && updated.Spec.MinReadySeconds > 0 {
		if d, ok := nextAvailable(pods, updated.Spec.MinReadySeconds, now); ok {
			c.queue.AddAfter(key, d)
		}
	}
	return manageErr
}

// terminatingPods returns rs's pods that are being deleted but have not reached a
// terminal phase: status.terminatingReplicas, which Kubernetes reports with its
// DeploymentReplicaSetTerminatingReplicas feature (beta, on by default).
func terminatingPods(rs *appsv1.ReplicaSet, selector labels.Selector, all []*corev1.Pod) []*corev1.Pod {
	out := []*corev1.Pod{}
	for _, p := range all {
		if p.DeletionTimestamp == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == rs.UID && selector.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// nextAvailable returns how long until the first ready but not yet available pod
// becomes available (plus a little, so that it is available when we look).
func nextAvailable(pods []*corev1.Pod, minReadySeconds int32, now time.Time) (time.Duration, bool) {
	var first time.Time
	for _, p := range pods {
		at, ok := podcontrol.AvailableAt(p, minReadySeconds)
		if !ok || at.Before(now) {
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return first.Sub(now) + 100*time.Millisecond, true
}

func (c *Controller) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	m := &podcontrol.RefManager{
		Controller: rs,
		Kind:       controllerKind(),
		Selector:   selector,
		CanAdopt: podcontrol.RecheckDeletionTimestamp(func(ctx context.Context) (metav1.Object, error) {
			fresh, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if fresh.UID != rs.UID {
				return nil, fmt.Errorf("original ReplicaSet %v/%v is gone: got uid %v, wanted %v", rs.Namespace, rs.Name, fresh.UID, rs.UID)
			}
			return fresh, nil
		}),
	}
	return m.ClaimPods(ctx, c.client, pods)
}

// manageReplicas creates or deletes pods so that len(pods) approaches
// spec.replicas, by at most burst pods.
func (c *Controller) manageReplicas(ctx context.Context, pods []*corev1.Pod, rs *appsv1.ReplicaSet) error {
	key := mustKey(rs)
	diff := len(pods) - int(replicas(rs))
	switch {
	case diff < 0:
		n := min(-diff, c.burst)
		// Expect all n creations before making any: a pod's add event may arrive
		// before Create returns.
		c.expectations.ExpectCreations(key, n)
		c.log.Debug("too few replicas", "replicaset", key, "need", replicas(rs), "creating", n)
		ref := metav1.NewControllerRef(rs, controllerKind())
		created, err := slowStartBatch(n, slowStartInitialBatchSize, func() error {
			_, err := c.podControl.CreatePod(ctx, rs.Namespace, &rs.Spec.Template, rs, ref)
			if err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil // nothing more to do in a terminating namespace
			}
			return err
		})
		// Creations never attempted (or failed) will never be observed.
		for i := created; i < n; i++ {
			c.expectations.CreationObserved(key)
		}
		return err
	case diff > 0:
		n := min(diff, c.burst)
		c.log.Debug("too many replicas", "replicaset", key, "need", replicas(rs), "deleting", n)
		victims := podsToDelete(pods, c.relatedPods(rs), n, metav1.NewTime(c.now()))
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = podcontrol.PodKey(p)
		}
		c.expectations.ExpectDeletions(key, keys)
		errs := make(chan error, len(victims))
		var wg sync.WaitGroup
		for _, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.podControl.DeletePod(ctx, rs.Namespace, p.Name, rs); err != nil {
					// This deletion will never be observed.
					c.expectations.DeletionObserved(key, podcontrol.PodKey(p))
					if !apierrors.IsNotFound(err) {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		// The errors are likely all the same; report the first.
		return <-errs
	}
	return nil
}

// slowStartBatch calls fn count times, in batches of initial, 2*initial, 4*initial,
// ... parallel calls, stopping after the first batch with an error. It returns the
// number of successful calls and the first error.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining := count
	successes := 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for i := 0; i < batch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		successes += batch - len(errs)
		if len(errs) > 0 {
			return successes, <-errs
		}
		remaining -= batch
	}
	return successes, nil
}

// relatedPods returns the active and inactive pods of every ReplicaSet with the same
// controller as rs (its Deployment's ReplicaSets, rs included); used to prefer
// deleting pods on nodes crowded with the Deployment's pods.
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet) []*corev1.Pod {
	ref := metav1.GetControllerOfNoCopy(rs)
	if ref == nil {
		return nil
	}
	objs, err := c.rsIndexer.ByIndex(controllerUIDIndex, string(ref.UID))
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []*corev1.Pod
	for _, obj := range objs {
		sibling, ok := obj.(*appsv1.ReplicaSet)
		if !ok {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(sibling.Spec.Selector)
		if err != nil {
			continue
		}
		pods, err := c.podLister.Pods(sibling.Namespace).List(sel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			if seen[string(p.UID)] {
				continue // selected by two siblings; count it once
			}
			seen[string(p.UID)] = true
			out = append(out, p)
		}
	}
	return out
}

func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}
