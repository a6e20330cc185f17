package agent

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Writing a pod's status, as the kubelet's status manager does it: only when it
// changed, through the status subresource, keeping the conditions of other owners
// (readiness gates, DisruptionTarget, ...). The informer's copy of the pod may lag
// behind the agent's own last write; a status equal to that write is not sent again
// while the informer has not caught up with it.

// writeStatus writes status for pod unless the pod already has it.
func (a *Agent) writeStatus(ctx context.Context, w *podWorker, pod *corev1.Pod, status corev1.PodStatus) error {
	st := w.st
	if equality.Semantic.DeepEqual(status, pod.Status) {
		return nil
	}
	if st.written != nil && equality.Semantic.DeepEqual(status, st.written.want) &&
		(olderThan(pod.ResourceVersion, st.written.rv) || equality.Semantic.DeepEqual(pod.Status, st.written.stored)) {
		// unchanged since the last write, which the informer has not seen yet (or
		// which the server stored slightly differently)
		return nil
	}
	upd := pod.DeepCopy()
	upd.Status = status
	res, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// the informer's copy was stale: merge into the newest pod once more
		fresh, gerr := a.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("reading pod %s: %w", klog(pod), gerr)
		}
		if fresh.UID != pod.UID {
			return nil
		}
		upd = fresh.DeepCopy()
		upd.Status = status
		upd.Status.Conditions = mergeConditions(fresh.Status.Conditions, kubeletOwned(status.Conditions), fresh.Generation,
			metav1.NewTime(a.clock.Now()))
		upd.Status = normalizeStatus(upd.Status)
		if equality.Semantic.DeepEqual(upd.Status, fresh.Status) {
			return nil
		}
		res, err = a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("updating the status of pod %s: %w", klog(pod), err)
	}
	st.written = &writtenStatus{want: status, stored: res.Status, rv: res.ResourceVersion}
	w.mu.Lock()
	w.written = kubeletOwned(res.Status.Conditions)
	w.mu.Unlock()
	return nil
}

// writtenStatus is the agent's last status write.
type writtenStatus struct {
	// want is the status the agent wrote, stored what the server stored, rv the
	// pod's resourceVersion after the write.
	want, stored corev1.PodStatus
	rv           string
}

// kubeletOwned keeps the kubelet's conditions of list.
func kubeletOwned(list []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range list {
		if isKubeletCondition(c.Type) {
			out = append(out, c)
		}
	}
	return out
}

// olderThan reports whether resourceVersion a is older than b. kubesvc's resource
// versions are etcd revisions (numbers); anything else is never older.
func olderThan(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}
