package replicaset

import (
	"math"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/controller/podcontrol"
)

// PodDeletionCostAnnotation lets users say which pods to delete first on scale
// down: lower cost goes first (an int32; invalid values count as 0).
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// podsToDelete picks n of pods to delete, the ones whose loss matters least.
// related are all pods of the ReplicaSet's sibling ReplicaSets (same controller):
// pods sharing a node with more of them are preferred victims. pods is reordered.
func podsToDelete(pods, related []*corev1.Pod, n int, now metav1.Time) []*corev1.Pod {
	// Deleting all of them needs no ranking (n never exceeds len(pods)).
	if n < len(pods) {
		sort.Sort(rankPods(pods, related, now))
	}
	return pods[:n]
}

func rankPods(pods, related []*corev1.Pod, now metav1.Time) rankedPods {
	onNode := map[string]int{}
	for _, p := range related {
		if podcontrol.IsPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	ranks := make([]int, len(pods))
	for i, p := range pods {
		ranks[i] = onNode[p.Spec.NodeName]
	}
	return rankedPods{pods: pods, rank: ranks, now: now}
}

// rankedPods sorts pods so that the first ones are the best to delete, with
// Kubernetes' ordering (ActivePodsWithRanks, PodDeletionCost and
// LogarithmicScaleDown enabled as by default):
//
//  1. unscheduled < scheduled
//  2. Pending < Unknown < Running
//  3. not ready < ready
//  4. lower pod-deletion-cost < higher
//  5. more related pods on the same node < fewer
//  6. ready for less time < more time (in log2 buckets)
//  7. more container restarts < fewer
//  8. newer < older (in log2 buckets), then by UID
type rankedPods struct {
	pods []*corev1.Pod
	rank []int
	now  metav1.Time
}

func (s rankedPods) Len() int { return len(s.pods) }

func (s rankedPods) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

// phaseOrdinal orders phases for deletion: Pending < Unknown < Running (others
// count as Pending, as a missing map entry does in Kubernetes).
func phaseOrdinal(p corev1.PodPhase) int {
	switch p {
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 0
}

func (s rankedPods) Less(i, j int) bool {
	pi, pj := s.pods[i], s.pods[j]
	if pi.Spec.NodeName != pj.Spec.NodeName && (pi.Spec.NodeName == "" || pj.Spec.NodeName == "") {
		return pi.Spec.NodeName == ""
	}
	if oi, oj := phaseOrdinal(pi.Status.Phase), phaseOrdinal(pj.Status.Phase); oi != oj {
		return oi < oj
	}
	ri, rj := podcontrol.IsPodReady(pi), podcontrol.IsPodReady(pj)
	if ri != rj {
		return !ri
	}
	if ci, cj := deletionCost(pi), deletionCost(pj); ci != cj {
		return ci < cj
	}
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	if ri && rj {
		ti, tj := readyTime(pi), readyTime(pj)
		if !ti.Equal(tj) {
			if less, decided := s.compareTimes(pi, pj, ti, tj); decided {
				return less
			}
		}
	}
	if ci, cj := maxRestarts(pi), maxRestarts(pj); ci != cj {
		return ci > cj
	}
	if ci, cj := maxSidecarRestarts(pi), maxSidecarRestarts(pj); ci != cj {
		return ci > cj
	}
	if !pi.CreationTimestamp.Equal(&pj.CreationTimestamp) {
		if less, decided := s.compareTimes(pi, pj, &pi.CreationTimestamp, &pj.CreationTimestamp); decided {
			return less
		}
	}
	return false
}

// compareTimes orders two different timestamps: zero first, then the more recent
// one, compared in log2 buckets of their age so that pods of about the same age are
// picked at random (by UID) rather than always the newest.
func (s rankedPods) compareTimes(pi, pj *corev1.Pod, ti, tj *metav1.Time) (less, decided bool) {
	if s.now.IsZero() || ti.IsZero() || tj.IsZero() {
		return afterOrZero(ti, tj), true
	}
	d := logRankDiff(ti, tj, s.now)
	if d == 0 {
		return pi.UID < pj.UID, true
	}
	return d < 0, true
}

func afterOrZero(t1, t2 *metav1.Time) bool {
	if t1.Time.IsZero() || t2.Time.IsZero() {
		return t1.Time.IsZero()
	}
	return t1.After(t2.Time)
}

func logRankDiff(t1, t2 *metav1.Time, now metav1.Time) int64 {
	d1, d2 := now.Sub(t1.Time), now.Sub(t2.Time)
	r1, r2 := int64(-1), int64(-1)
	if d1 > 0 {
		r1 = int64(math.Log2(float64(d1)))
	}
	if d2 > 0 {
		r2 = int64(math.Log2(float64(d2)))
	}
	return r1 - r2
}

func readyTime(p *corev1.Pod) *metav1.Time {
	if c := podcontrol.PodReadyCondition(p); c != nil && c.Status == corev1.ConditionTrue {
		return &c.LastTransitionTime
	}
	return &metav1.Time{}
}

func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[PodDeletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

func maxRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}

// maxSidecarRestarts counts restartable init containers (sidecars) only.
func maxSidecarRestarts(p *corev1.Pod) int32 {
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	var n int32
	for _, c := range p.Status.InitContainerStatuses {
		if sidecars[c.Name] {
			n = max(n, c.RestartCount)
		}
	}
	return n
}
