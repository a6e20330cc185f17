package scheduler

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// Failure reasons, worded as kube-scheduler's plugins word them (they are counted
// into the FailedScheduling message).
const (
	reasonUnschedulable   = "node(s) were unschedulable"
	reasonNodeAffinity    = "node(s) didn't match Pod's node affinity/selector"
	reasonUntoleratedFmt  = "node(s) had untolerated taint {%s: %s}"
	reasonTooManyPods     = "Too many pods"
	reasonInsufficientFmt = "Insufficient %s"
)

// nodeInfo is one node as a scheduling cycle sees it: the node, its effective taints
// and the pods assigned (or assumed) to it.
type nodeInfo struct {
	node   *corev1.Node
	taints []corev1.Taint
	pods   []*corev1.Pod
	// requested is computed on first use: most pods request nothing and only need
	// the pod count.
	requested *resources
}

type resources struct {
	milliCPU int64
	memory   int64
}

func newNodeInfo(node *corev1.Node, pods []*corev1.Pod) *nodeInfo {
	return &nodeInfo{node: node, taints: effectiveTaints(node), pods: pods}
}

func (ni *nodeInfo) requestedResources() resources {
	if ni.requested == nil {
		r := resources{}
		for _, p := range ni.pods {
			pr := podRequests(p)
			r.milliCPU += pr.milliCPU
			r.memory += pr.memory
		}
		ni.requested = &r
	}
	return *ni.requested
}

// effectiveTaints are the node's taints plus, while its Ready condition is not True
// and the node lifecycle controller has not tainted it yet, the NoSchedule taint
// that controller will add.
func effectiveTaints(node *corev1.Node) []corev1.Taint {
	key := ""
	switch readyStatus(node) {
	case corev1.ConditionTrue:
		return node.Spec.Taints
	case corev1.ConditionUnknown:
		key = corev1.TaintNodeUnreachable
	default:
		key = corev1.TaintNodeNotReady
	}
	for _, t := range node.Spec.Taints {
		if (t.Key == corev1.TaintNodeUnreachable || t.Key == corev1.TaintNodeNotReady) && t.Effect == corev1.TaintEffectNoSchedule {
			return node.Spec.Taints
		}
	}
	out := slices.Clone(node.Spec.Taints)
	return append(out, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
}

// readyStatus is the status of the node's Ready condition ("" when it has none).
func readyStatus(node *corev1.Node) corev1.ConditionStatus {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// filterStatus says why a pod does not fit a node.
type filterStatus struct {
	reasons []string
	// resolvable: removing pods from the node could make room (resources), so
	// preemption could help in principle.
	resolvable bool
}

// filter runs the filters in kube-scheduler's order; nil means the pod fits.
func filter(pod *corev1.Pod, req resources, ni *nodeInfo) *filterStatus {
	node := ni.node
	if node.Spec.Unschedulable && !tolerated(pod.Spec.Tolerations, &corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return &filterStatus{reasons: []string{reasonUnschedulable}}
	}
	for i := range ni.taints {
		t := &ni.taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(pod.Spec.Tolerations, t) {
			return &filterStatus{reasons: []string{fmt.Sprintf(reasonUntoleratedFmt, t.Key, t.Value)}}
		}
	}
	if !matchesNodeSelectorAndAffinity(pod, node) {
		return &filterStatus{reasons: []string{reasonNodeAffinity}}
	}
	return fitsResources(req, ni)
}

func fitsResources(req resources, ni *nodeInfo) *filterStatus {
	var reasons []string
	alloc := ni.node.Status.Allocatable
	if int64(len(ni.pods))+1 > quantity(alloc, corev1.ResourcePods).Value() {
		reasons = append(reasons, reasonTooManyPods)
	}
	if req.milliCPU > 0 || req.memory > 0 {
		used := ni.requestedResources()
		if req.milliCPU > 0 && req.milliCPU > quantity(alloc, corev1.ResourceCPU).MilliValue()-used.milliCPU {
			reasons = append(reasons, fmt.Sprintf(reasonInsufficientFmt, corev1.ResourceCPU))
		}
		if req.memory > 0 && req.memory > quantity(alloc, corev1.ResourceMemory).Value()-used.memory {
			reasons = append(reasons, fmt.Sprintf(reasonInsufficientFmt, corev1.ResourceMemory))
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return &filterStatus{reasons: reasons, resolvable: true}
}

func quantity(l corev1.ResourceList, name corev1.ResourceName) *resource.Quantity {
	q := l[name]
	return &q
}

// podRequests is what the pod asks of a node: the sum of its containers' requests
// (sidecar init containers included), or the largest regular init container's if
// that is more, plus the pod overhead.
func podRequests(pod *corev1.Pod) resources {
	var sum resources
	add := func(r *resources, l corev1.ResourceList) {
		r.milliCPU += quantity(l, corev1.ResourceCPU).MilliValue()
		r.memory += quantity(l, corev1.ResourceMemory).Value()
	}
	for i := range pod.Spec.Containers {
		add(&sum, pod.Spec.Containers[i].Resources.Requests)
	}
	var sidecars, initMax resources
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(&sidecars, c.Resources.Requests)
			continue
		}
		var one resources
		add(&one, c.Resources.Requests)
		// a regular init container runs next to the sidecars started before it
		initMax.milliCPU = max(initMax.milliCPU, one.milliCPU+sidecars.milliCPU)
		initMax.memory = max(initMax.memory, one.memory+sidecars.memory)
	}
	sum.milliCPU += sidecars.milliCPU
	sum.memory += sidecars.memory
	sum.milliCPU = max(sum.milliCPU, initMax.milliCPU)
	sum.memory = max(sum.memory, initMax.memory)
	if pod.Spec.Overhead != nil {
		add(&sum, pod.Spec.Overhead)
	}
	return sum
}

// tolerated reports whether one of tols tolerates taint.
func tolerated(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if toleratesTaint(&tols[i], taint) {
			return true
		}
	}
	return false
}

// toleratesTaint reports whether t tolerates taint: an empty effect matches every
// effect, an empty key (with Exists) every key; Equal (or no operator) compares the
// values.
func toleratesTaint(t *corev1.Toleration, taint *corev1.Taint) bool {
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

// matchesNodeSelectorAndAffinity is the NodeAffinity filter: every nodeSelector label
// and (if given) one of the required node selector terms.
func matchesNodeSelectorAndAffinity(pod *corev1.Pod, node *corev1.Node) bool {
	if len(pod.Spec.NodeSelector) > 0 && !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(&a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// termMatches ANDs a term's requirements; an empty term matches no node.
func termMatches(term *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for i := range term.MatchExpressions {
		r := &term.MatchExpressions[i]
		v, ok := node.Labels[r.Key]
		if !requirementMatches(r, v, ok) {
			return false
		}
	}
	for i := range term.MatchFields {
		r := &term.MatchFields[i]
		// metadata.name is the only field node affinity supports
		if r.Key != "metadata.name" || !requirementMatches(r, node.Name, true) {
			return false
		}
	}
	return true
}

func requirementMatches(r *corev1.NodeSelectorRequirement, value string, present bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(value, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}
