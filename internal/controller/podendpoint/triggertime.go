package podendpoint

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TriggerTimeTracker computes the endpoints.kubernetes.io/last-change-trigger-time
// annotation: the time of the oldest change (a pod's Ready transition, or the
// Service's creation) not yet reflected in a sync. It remembers, per Service, the
// trigger times it saw at the previous sync.
//
// As in Kubernetes, the value is approximate when one object changes several times
// between two syncs. Compute is safe for concurrent use on different Services; the
// work queue guarantees one sync per Service at a time.
type TriggerTimeTracker struct {
	mu     sync.Mutex
	states map[types.NamespacedName]triggerState
}

type triggerState struct {
	service time.Time
	pods    map[string]time.Time
}

// NewTriggerTimeTracker returns an empty tracker.
func NewTriggerTimeTracker() *TriggerTimeTracker {
	return &TriggerTimeTracker{states: map[types.NamespacedName]triggerState{}}
}

// Compute records the trigger times of svc and its selected pods and returns the
// value to publish: the Service's creation time the first time a Service is seen,
// then the earliest trigger time that moved since the previous call, or the zero
// time when nothing moved (the annotation is then removed on the next write).
func (t *TriggerTimeTracker) Compute(svc *corev1.Service, pods []*corev1.Pod) time.Time {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	prev, known := t.states[key]
	t.mu.Unlock()

	var earliest time.Time
	observe := func(ts time.Time) {
		if earliest.IsZero() || ts.Before(earliest) {
			earliest = ts
		}
	}
	next := triggerState{service: svc.CreationTimestamp.Time, pods: make(map[string]time.Time, len(pods))}
	for _, pod := range pods {
		c := readyCondition(pod)
		if c == nil || c.LastTransitionTime.IsZero() {
			continue
		}
		ts := c.LastTransitionTime.Time
		next.pods[pod.Name] = ts
		if ts.After(prev.pods[pod.Name]) {
			observe(ts)
		}
	}
	if next.service.After(prev.service) {
		observe(next.service)
	}

	t.mu.Lock()
	t.states[key] = next
	t.mu.Unlock()
	if !known {
		return svc.CreationTimestamp.Time
	}
	return earliest
}

// Forget drops the state kept for a Service (call it when the Service is deleted).
func (t *TriggerTimeTracker) Forget(namespace, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.states, types.NamespacedName{Namespace: namespace, Name: name})
}
