package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/registry/defaults"
)

// DisruptionTarget condition of an evicted pod, as the taint eviction controller
// writes it.
const (
	conditionDisruptionTarget = corev1.PodConditionType("DisruptionTarget")
	reasonDeletionByTaint     = "DeletionByTaintManager"
	messageDeletionByTaint    = "Taint manager: deleting due to NoExecute taint"
)

// markPodsNotReady sets the Ready condition of the node's pods to False.
func (c *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node, objs []any) error {
	var errs []error
	for _, o := range objs {
		pod, ok := o.(*corev1.Pod)
		if !ok || pod.Spec.NodeName != node.Name {
			continue
		}
		i := podConditionIndex(pod, corev1.PodReady)
		if i < 0 || pod.Status.Conditions[i].Status == corev1.ConditionFalse {
			continue
		}
		upd := pod.DeepCopy()
		upd.Status.Conditions[i].Status = corev1.ConditionFalse
		upd.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.now())
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("marking pod %s/%s not ready: %w", pod.Namespace, pod.Name, err))
			}
			continue
		}
		c.recorder.Event(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	}
	return errors.Join(errs...)
}

// evictPods deletes the node's pods whose NoExecute toleration has run out (or that
// have none), and queues the node again for the next deadline.
func (c *Controller) evictPods(ctx context.Context, node *corev1.Node, objs []any) error {
	var taints []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			taints = append(taints, t)
		}
	}
	now := c.now()
	since := c.noExecuteSince(node.Name, len(taints) > 0, now)
	if len(taints) == 0 {
		return nil
	}
	// the taints' own timeAdded, when they all have one, is restart-proof
	start := time.Time{}
	for _, t := range taints {
		if t.TimeAdded == nil {
			start = since
			break
		}
		if t.TimeAdded.Time.After(start) {
			start = t.TimeAdded.Time
		}
	}
	var next time.Time
	var errs []error
	for _, o := range objs {
		pod, ok := o.(*corev1.Pod)
		if !ok || pod.Spec.NodeName != node.Name || pod.DeletionTimestamp != nil ||
			pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		delay, forever := c.tolerationTime(pod.Spec.Tolerations, taints)
		if forever {
			continue
		}
		if deadline := start.Add(delay); delay > 0 && now.Before(deadline) {
			if next.IsZero() || deadline.Before(next) {
				next = deadline
			}
			continue
		}
		if err := c.evict(ctx, pod); err != nil {
			errs = append(errs, err)
		}
	}
	if !next.IsZero() {
		c.queue.AddAfter(node.Name, next.Sub(now)+10*time.Millisecond)
	}
	return errors.Join(errs...)
}

// noExecuteSince returns when the controller first saw NoExecute taints on the node,
// and forgets it once they are gone.
func (c *Controller) noExecuteSince(name string, tainted bool, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[name]
	if h == nil {
		return now
	}
	if !tainted {
		h.noExecuteSince = time.Time{}
		return now
	}
	if h.noExecuteSince.IsZero() {
		h.noExecuteSince = now
	}
	return h.noExecuteSince
}

// tolerationTime is how long a pod may stay on a node with the given NoExecute
// taints: 0 if one of them is not tolerated, otherwise the shortest tolerationSeconds
// among the tolerations used (forever when none has one). tolerationSeconds equal
// to the DefaultTolerationSeconds admission value mean PodEvictionTimeout.
func (c *Controller) tolerationTime(tols []corev1.Toleration, taints []corev1.Taint) (d time.Duration, forever bool) {
	forever = true
	for i := range taints {
		matched := false
		for j := range tols {
			t := &tols[j]
			if !tolerates(t, &taints[i]) {
				continue
			}
			matched = true
			if t.TolerationSeconds == nil {
				continue
			}
			secs := max(*t.TolerationSeconds, 0)
			td := time.Duration(secs) * time.Second
			if secs == defaults.DefaultTolerationSeconds {
				td = c.evictionTimeout
			}
			if forever || td < d {
				d, forever = td, false
			}
		}
		if !matched {
			return 0, false
		}
	}
	return d, forever
}

// tolerates reports whether t tolerates taint (Kubernetes' matching rules).
func tolerates(t *corev1.Toleration, taint *corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpEqual, "":
		return t.Value == taint.Value
	}
	return false
}

// evict records the eviction on the pod (event, DisruptionTarget condition) and
// deletes it gracefully.
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	if podConditionIndex(pod, conditionDisruptionTarget) < 0 {
		upd := pod.DeepCopy()
		upd.Status.Conditions = append(upd.Status.Conditions, corev1.PodCondition{
			Type: conditionDisruptionTarget, Status: corev1.ConditionTrue,
			Reason: reasonDeletionByTaint, Message: messageDeletionByTaint,
			LastTransitionTime: metav1.NewTime(c.now()),
		})
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	c.evictRecorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	uid := pod.UID
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.log.Info("evicted pod", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	return nil
}

func podConditionIndex(pod *corev1.Pod, t corev1.PodConditionType) int {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return i
		}
	}
	return -1
}
