package nodelifecycle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionTaints maps node conditions to the NoSchedule taints that mirror them.
var conditionTaints = []struct {
	condition corev1.NodeConditionType
	status    corev1.ConditionStatus
	key       string
}{
	{corev1.NodeReady, corev1.ConditionFalse, corev1.TaintNodeNotReady},
	{corev1.NodeReady, corev1.ConditionUnknown, corev1.TaintNodeUnreachable},
	{corev1.NodeMemoryPressure, corev1.ConditionTrue, corev1.TaintNodeMemoryPressure},
	{corev1.NodeDiskPressure, corev1.ConditionTrue, corev1.TaintNodeDiskPressure},
	{corev1.NodePIDPressure, corev1.ConditionTrue, corev1.TaintNodePIDPressure},
	{corev1.NodeNetworkUnavailable, corev1.ConditionTrue, corev1.TaintNodeNetworkUnavailable},
}

// managed reports whether the controller owns taint t.
func managed(t corev1.Taint) bool {
	switch t.Effect {
	case corev1.TaintEffectNoSchedule:
		if t.Key == corev1.TaintNodeUnschedulable {
			return true
		}
		for _, ct := range conditionTaints {
			if ct.key == t.Key {
				return true
			}
		}
	case corev1.TaintEffectNoExecute:
		return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
	}
	return false
}

// desiredTaints returns the node's taints as they should be: the taints the
// controller does not own unchanged, and its own taints as the conditions, the
// unschedulable flag and the disruption state say. Taints that stay keep their
// timeAdded; new ones get now.
func desiredTaints(node *corev1.Node, state disruptionState, now metav1.Time) []corev1.Taint {
	var want []corev1.Taint
	for _, ct := range conditionTaints {
		if c := nodeCondition(node, ct.condition); c != nil && c.Status == ct.status {
			want = append(want, corev1.Taint{Key: ct.key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		want = append(want, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	noExecute := ""
	switch readyStatus(node) {
	case corev1.ConditionFalse:
		noExecute = corev1.TaintNodeNotReady
	case corev1.ConditionUnknown:
		noExecute = corev1.TaintNodeUnreachable
	}
	if noExecute != "" {
		hasOne := false
		for _, t := range node.Spec.Taints {
			if managed(t) && t.Effect == corev1.TaintEffectNoExecute {
				hasOne = true
			}
		}
		switch {
		case state == fullDisruption:
			// no NoExecute taints at all
		case state == partialDisruption && !hasOne:
			// adding is paused; an existing one is still swapped to match Ready
		default:
			want = append(want, corev1.Taint{Key: noExecute, Effect: corev1.TaintEffectNoExecute})
		}
	}

	var out []corev1.Taint
	for _, t := range node.Spec.Taints {
		if !managed(t) {
			out = append(out, t)
		}
	}
	for _, w := range want {
		found := false
		for _, t := range node.Spec.Taints {
			if t.Key == w.Key && t.Effect == w.Effect {
				out = append(out, t)
				found = true
				break
			}
		}
		if !found {
			w.TimeAdded = &now
			out = append(out, w)
		}
	}
	return out
}

// reconcileTaints writes the desired taints when they differ; it returns the node as
// written.
func (c *Controller) reconcileTaints(ctx context.Context, node *corev1.Node, state disruptionState) (*corev1.Node, error) {
	want := desiredTaints(node, state, metav1.NewTime(c.now()))
	if sameTaints(want, node.Spec.Taints) {
		return node, nil
	}
	upd := node.DeepCopy()
	upd.Spec.Taints = want
	written, err := c.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating taints of node %s: %w", node.Name, err)
	}
	c.log.Info("node taints updated", "node", node.Name, "taints", taintStrings(want))
	return written, nil
}

// sameTaints compares taint sets, ignoring order.
func sameTaints(a, b []corev1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if equality.Semantic.DeepEqual(x, y) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func taintStrings(ts []corev1.Taint) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ToString()
	}
	return out
}
