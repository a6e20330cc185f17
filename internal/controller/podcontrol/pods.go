package podcontrol

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// IsPodActive reports whether a pod counts towards its controller's replicas: it has
// not terminated (Succeeded or Failed) and is not being deleted.
func IsPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded &&
		p.Status.Phase != corev1.PodFailed &&
		p.DeletionTimestamp == nil
}

// FilterActivePods returns the active pods of pods, in order.
func FilterActivePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

// PodReadyCondition returns the pod's Ready condition, or nil.
func PodReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(p *corev1.Pod) bool {
	c := PodReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable reports whether the pod has been ready for at least minReadySeconds
// at now. With minReadySeconds 0 every ready pod is available; with more, a ready
// pod without a Ready transition time never is (as in Kubernetes).
func IsPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	at, ok := AvailableAt(p, minReadySeconds)
	return ok && (minReadySeconds == 0 || at.Before(now))
}

// AvailableAt returns when a ready pod becomes (or became) available: its last
// transition to Ready plus minReadySeconds (the zero time when minReadySeconds is 0).
// ok is false for a pod that is not ready, or that will never count as available
// because its Ready condition has no transition time.
func AvailableAt(p *corev1.Pod, minReadySeconds int32) (at time.Time, ok bool) {
	c := PodReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return time.Time{}, false
	}
	if minReadySeconds == 0 {
		return time.Time{}, true
	}
	if c.LastTransitionTime.IsZero() {
		return time.Time{}, false
	}
	return c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second), true
}

// PodKey is the expectations key of a pod: "namespace/name".
func PodKey(p *corev1.Pod) string {
	return p.Namespace + "/" + p.Name
}
