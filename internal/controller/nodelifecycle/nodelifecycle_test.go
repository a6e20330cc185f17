package nodelifecycle

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

func testNode(ready corev1.ConditionStatus, taints ...corev1.Taint) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: taints}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	}
	return n
}

func taint(key string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Effect: effect}
}

func TestDesiredTaints(t *testing.T) {
	old := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(old.Add(time.Hour))
	unreachableNoExec := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &old}
	tests := []struct {
		line  string
		name  string
		node  *corev1.Node
		state disruptionState
		want  []string // key:effect, in order
	}{
		{line: getLine(), name: "ready node keeps user taints only",
			node: testNode(corev1.ConditionTrue, taint("user", corev1.TaintEffectNoSchedule), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)),
			want: []string{"user:NoSchedule"}},
		{line: getLine(), name: "unknown node gets unreachable NoSchedule and NoExecute",
			node: testNode(corev1.ConditionUnknown),
			want: []string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}},
		{line: getLine(), name: "not ready node gets not-ready; stale unreachable is swapped",
			node: testNode(corev1.ConditionFalse, unreachableNoExec),
			want: []string{"node.kubernetes.io/not-ready:NoSchedule", "node.kubernetes.io/not-ready:NoExecute"}},
		{line: getLine(), name: "full disruption: no NoExecute taint",
			node: testNode(corev1.ConditionUnknown, unreachableNoExec), state: fullDisruption,
			want: []string{"node.kubernetes.io/unreachable:NoSchedule"}},
		{line: getLine(), name: "partial disruption: no new NoExecute taint",
			node: testNode(corev1.ConditionUnknown), state: partialDisruption,
			want: []string{"node.kubernetes.io/unreachable:NoSchedule"}},
		{line: getLine(), name: "partial disruption: an existing NoExecute taint stays",
			node: testNode(corev1.ConditionUnknown, unreachableNoExec), state: partialDisruption,
			want: []string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}},
		{line: getLine(), name: "unschedulable",
			node: func() *corev1.Node { n := testNode(corev1.ConditionTrue); n.Spec.Unschedulable = true; return n }(),
			want: []string{"node.kubernetes.io/unschedulable:NoSchedule"}},
		{line: getLine(), name: "pressure conditions",
			node: func() *corev1.Node {
				n := testNode(corev1.ConditionTrue)
				n.Status.Conditions = append(n.Status.Conditions,
					corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue},
					corev1.NodeCondition{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse})
				return n
			}(),
			want: []string{"node.kubernetes.io/memory-pressure:NoSchedule"}},
		{line: getLine(), name: "node without Ready condition gets no taint yet",
			node: testNode(""), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := desiredTaints(tt.node, tt.state, now)
			var keys []string
			for _, g := range got {
				keys = append(keys, g.Key+":"+string(g.Effect))
				kept := false
				for _, o := range tt.node.Spec.Taints {
					if o.Key == g.Key && o.Effect == g.Effect {
						kept = true
						if o.TimeAdded != nil && !g.TimeAdded.Equal(o.TimeAdded) {
							t.Errorf("%s: %s lost its timeAdded", tt.line, g.ToString())
						}
					}
				}
				if !kept && managed(g) && (g.TimeAdded == nil || !g.TimeAdded.Equal(&now)) {
					t.Errorf("%s: new taint %s has timeAdded %v, want now", tt.line, g.ToString(), g.TimeAdded)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.want) {
				t.Errorf("%s: taints %v, want %v", tt.line, keys, tt.want)
			}
		})
	}
}

func TestTolerationTime(t *testing.T) {
	c := &Controller{evictionTimeout: 5 * time.Second}
	secs := func(s int64) *int64 { return &s }
	unreachable := []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}}
	tests := []struct {
		line        string
		name        string
		tols        []corev1.Toleration
		taints      []corev1.Taint
		want        time.Duration
		wantForever bool
	}{
		{line: getLine(), name: "no toleration: evict now", taints: unreachable, want: 0},
		{line: getLine(), name: "default 300s means PodEvictionTimeout", taints: unreachable,
			tols: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(300)}},
			want: 5 * time.Second},
		{line: getLine(), name: "explicit seconds are honoured", taints: unreachable,
			tols: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(60)}},
			want: time.Minute},
		{line: getLine(), name: "shortest matching toleration wins", taints: unreachable,
			tols: []corev1.Toleration{
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(60)},
				{Operator: corev1.TolerationOpExists, TolerationSeconds: secs(10)},
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(1)},
			},
			want: 10 * time.Second},
		{line: getLine(), name: "toleration without seconds: forever", taints: unreachable,
			tols:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			wantForever: true},
		{line: getLine(), name: "one taint not tolerated: evict now",
			taints: append([]corev1.Taint{{Key: "user", Effect: corev1.TaintEffectNoExecute}}, unreachable...),
			tols:   []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists}},
			want:   0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, forever := c.tolerationTime(tt.tols, tt.taints)
			if d != tt.want || forever != tt.wantForever {
				t.Errorf("%s: got %v forever=%v, want %v forever=%v", tt.line, d, forever, tt.want, tt.wantForever)
			}
		})
	}
}

func TestMarkUnknown(t *testing.T) {
	now := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	n := testNode(corev1.ConditionTrue)
	n.Status.Conditions[0].Reason = "KubeletReady"
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse})
	if !markUnknown(n, now) {
		t.Fatal("nothing changed")
	}
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			if c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." || !c.LastTransitionTime.Equal(&now) {
				t.Errorf("Ready = %+v", c)
			}
		case corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
			if c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusNeverUpdated" || c.Message != "Kubelet never posted node status." {
				t.Errorf("%s = %+v", c.Type, c)
			}
		case corev1.NodeNetworkUnavailable:
			if c.Status != corev1.ConditionFalse {
				t.Errorf("NetworkUnavailable changed: %+v", c)
			}
		}
	}
	if len(n.Status.Conditions) != 5 {
		t.Errorf("conditions %d, want 5", len(n.Status.Conditions))
	}
	if markUnknown(n, now) {
		t.Error("second markUnknown changed something")
	}
}
