package scheduler

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ErrNoNodesAvailable is kube-scheduler's error when the cluster has no nodes.
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")

// Post-filter (preemption) outcomes per node, as kube-scheduler's default
// preemption plugin words them.
const (
	preemptionNotHelpful = "Preemption is not helpful for scheduling"
	preemptionNoVictims  = "No preemption victims found for incoming pod"
	preemptionNever      = "preemption: not eligible due to preemptionPolicy=Never."
)

// FitError says why a pod fits no node; Error() is kube-scheduler's message format:
// "0/N nodes are available: <count> <reason>, .... preemption: 0/N nodes are
// available: <count> <outcome>, ....".
type FitError struct {
	NumAllNodes int
	// Reasons counts the nodes per failure reason.
	Reasons map[string]int
	// Preemption counts the nodes per preemption outcome (empty when the pod may
	// not preempt).
	Preemption map[string]int
	// PreemptionNever: the pod's preemptionPolicy is Never.
	PreemptionNever bool
}

func (e *FitError) Error() string {
	msg := fmt.Sprintf("0/%d nodes are available:", e.NumAllNodes)
	if h := histogram(e.Reasons); h != "" {
		msg += " " + h + "."
	}
	switch {
	case e.PreemptionNever:
		msg += " " + preemptionNever
	case len(e.Preemption) > 0:
		msg += fmt.Sprintf(" preemption: 0/%d nodes are available: %s.", e.NumAllNodes, histogram(e.Preemption))
	}
	return msg
}

// histogram renders "<count> <reason>" items sorted as strings, like kube-scheduler.
func histogram(m map[string]int) string {
	items := make([]string, 0, len(m))
	for reason, n := range m {
		items = append(items, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(items)
	return strings.Join(items, ", ")
}

// schedule picks the node for pod: it filters nodes, then takes the best by score.
// It returns ErrNoNodesAvailable for an empty node list and a *FitError when no
// node fits.
func schedule(pod *corev1.Pod, nodes []*nodeInfo) (string, error) {
	if len(nodes) == 0 {
		return "", ErrNoNodesAvailable
	}
	req := podRequests(pod)
	fe := &FitError{NumAllNodes: len(nodes), Reasons: map[string]int{}, Preemption: map[string]int{}}
	var best *nodeInfo
	var bestScore nodeScore
	for _, ni := range nodes {
		if st := filter(pod, req, ni); st != nil {
			for _, r := range st.reasons {
				fe.Reasons[r]++
			}
			if st.resolvable {
				fe.Preemption[preemptionNoVictims]++
			} else {
				fe.Preemption[preemptionNotHelpful]++
			}
			continue
		}
		s := score(pod, ni)
		if best == nil || s.better(bestScore) {
			best, bestScore = ni, s
		}
	}
	if best != nil {
		return best.node.Name, nil
	}
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		fe.PreemptionNever = true
		fe.Preemption = nil
	}
	return "", fe
}

// nodeScore orders feasible nodes; see the package doc.
type nodeScore struct {
	preferNoSchedule int   // untolerated PreferNoSchedule taints (fewer is better)
	affinity         int64 // matching preferred node affinity weight (more is better)
	siblings         int   // pods of the same owner (fewer is better)
	pods             int   // all pods (fewer is better)
	name             string
}

func (a nodeScore) better(b nodeScore) bool {
	switch {
	case a.preferNoSchedule != b.preferNoSchedule:
		return a.preferNoSchedule < b.preferNoSchedule
	case a.affinity != b.affinity:
		return a.affinity > b.affinity
	case a.siblings != b.siblings:
		return a.siblings < b.siblings
	case a.pods != b.pods:
		return a.pods < b.pods
	}
	return a.name < b.name
}

func score(pod *corev1.Pod, ni *nodeInfo) nodeScore {
	s := nodeScore{pods: len(ni.pods), name: ni.node.Name}
	for i := range ni.taints {
		t := &ni.taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !tolerated(pod.Spec.Tolerations, t) {
			s.preferNoSchedule++
		}
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			p := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
			if termMatches(&p.Preference, ni.node) {
				s.affinity += int64(p.Weight)
			}
		}
	}
	same := siblingMatcher(pod)
	for _, other := range ni.pods {
		if same(other) {
			s.siblings++
		}
	}
	return s
}

// siblingMatcher returns what counts as "a replica of pod" for spreading: pods with
// the same controller, or for pods without one, pods of the namespace whose labels
// include all of pod's labels.
func siblingMatcher(pod *corev1.Pod) func(*corev1.Pod) bool {
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		uid := ref.UID
		return func(o *corev1.Pod) bool {
			r := metav1.GetControllerOfNoCopy(o)
			return r != nil && r.UID == uid
		}
	}
	if len(pod.Labels) == 0 {
		return func(*corev1.Pod) bool { return false }
	}
	sel := labels.SelectorFromSet(pod.Labels)
	return func(o *corev1.Pod) bool {
		return o.Namespace == pod.Namespace && sel.Matches(labels.Set(o.Labels))
	}
}
