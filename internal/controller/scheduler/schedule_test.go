package scheduler

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

type nodeOpt func(*corev1.Node)

func node(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourcePods:   resource.MustParse("110"),
				corev1.ResourceCPU:    resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("4Gi"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withLabel(k, v string) nodeOpt { return func(n *corev1.Node) { n.Labels[k] = v } }
func withTaint(k, v string, e corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: e}) }
}
func unschedulable(n *corev1.Node) { n.Spec.Unschedulable = true }
func ready(s corev1.ConditionStatus) nodeOpt {
	return func(n *corev1.Node) { n.Status.Conditions[0].Status = s }
}
func maxPods(q string) nodeOpt {
	return func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse(q) }
}

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func selector(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		p.Spec.NodeSelector[k] = v
	}
}
func toleration(t corev1.Toleration) podOpt {
	return func(p *corev1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}
func requests(cpu, mem string) podOpt {
	return func(p *corev1.Pod) {
		r := corev1.ResourceList{}
		if cpu != "" {
			r[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			r[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		p.Spec.Containers[0].Resources.Requests = r
	}
}
func requiredAffinity(terms ...corev1.NodeSelectorTerm) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
}
func preferredAffinity(weight int32, term corev1.NodeSelectorTerm) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
		}
		na := p.Spec.Affinity.NodeAffinity
		na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: weight, Preference: term})
	}
}
func ownedBy(uid string) podOpt {
	return func(p *corev1.Pod) {
		t := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: uid, UID: types.UID(uid), Controller: &t}}
	}
}
func podLabels(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}
func never(p *corev1.Pod) {
	n := corev1.PreemptNever
	p.Spec.PreemptionPolicy = &n
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		line string
		name string
		pod  *corev1.Pod
		node *corev1.Node
		// onNode are pods already on the node
		onNode []*corev1.Pod
		// want are the failure reasons; none means the pod fits
		want           []string
		wantResolvable bool
	}{
		{line: getLine(), name: "plain pod fits a ready node", pod: pod("p"), node: node("n1")},
		{line: getLine(), name: "node selector matches", pod: pod("p", selector("disk", "ssd")), node: node("n1", withLabel("disk", "ssd"))},
		{line: getLine(), name: "node selector does not match",
			pod: pod("p", selector("disk", "ssd")), node: node("n1", withLabel("disk", "hdd")),
			want: []string{reasonNodeAffinity}},
		{line: getLine(), name: "NoSchedule taint not tolerated",
			pod: pod("p"), node: node("n1", withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule)),
			want: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{line: getLine(), name: "NoExecute taint not tolerated",
			pod: pod("p"), node: node("n1", withTaint("k", "", corev1.TaintEffectNoExecute)),
			want: []string{"node(s) had untolerated taint {k: }"}},
		{line: getLine(), name: "PreferNoSchedule taint does not filter",
			pod: pod("p"), node: node("n1", withTaint("k", "v", corev1.TaintEffectPreferNoSchedule))},
		{line: getLine(), name: "taint tolerated with Equal",
			pod:  pod("p", toleration(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule})),
			node: node("n1", withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule))},
		{line: getLine(), name: "toleration with other value does not tolerate",
			pod:  pod("p", toleration(corev1.Toleration{Key: "dedicated", Value: "cpu"})),
			node: node("n1", withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule)),
			want: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{line: getLine(), name: "Exists with empty key tolerates everything",
			pod:  pod("p", toleration(corev1.Toleration{Operator: corev1.TolerationOpExists})),
			node: node("n1", withTaint("a", "b", corev1.TaintEffectNoSchedule), withTaint("c", "", corev1.TaintEffectNoExecute))},
		{line: getLine(), name: "toleration for another effect",
			pod:  pod("p", toleration(corev1.Toleration{Key: "a", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})),
			node: node("n1", withTaint("a", "b", corev1.TaintEffectNoSchedule)),
			want: []string{"node(s) had untolerated taint {a: b}"}},
		{line: getLine(), name: "unschedulable node",
			pod: pod("p"), node: node("n1", unschedulable), want: []string{reasonUnschedulable}},
		{line: getLine(), name: "unschedulable node tolerated",
			pod:  pod("p", toleration(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule})),
			node: node("n1", unschedulable)},
		{line: getLine(), name: "unschedulable is checked before taints",
			pod:  pod("p"),
			node: node("n1", unschedulable, withTaint("a", "b", corev1.TaintEffectNoSchedule)),
			want: []string{reasonUnschedulable}},
		{line: getLine(), name: "not ready node counts as tainted not-ready",
			pod: pod("p"), node: node("n1", ready(corev1.ConditionFalse)),
			want: []string{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"}},
		{line: getLine(), name: "unknown node counts as tainted unreachable",
			pod: pod("p"), node: node("n1", ready(corev1.ConditionUnknown)),
			want: []string{"node(s) had untolerated taint {node.kubernetes.io/unreachable: }"}},
		{line: getLine(), name: "not ready node is fine for a pod tolerating not-ready",
			pod:  pod("p", toleration(corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists})),
			node: node("n1", ready(corev1.ConditionFalse))},
		{line: getLine(), name: "default NoExecute tolerations do not tolerate the NoSchedule taint",
			pod: pod("p", toleration(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64)})),
			node: node("n1", ready(corev1.ConditionUnknown), withTaint(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoSchedule)),
			want: []string{"node(s) had untolerated taint {node.kubernetes.io/unreachable: }"}},
		{line: getLine(), name: "required affinity In matches",
			pod: pod("p", requiredAffinity(expr("zone", corev1.NodeSelectorOpIn, "a", "b"))), node: node("n1", withLabel("zone", "b"))},
		{line: getLine(), name: "required affinity terms are ORed",
			pod:  pod("p", requiredAffinity(expr("zone", corev1.NodeSelectorOpIn, "x"), expr("zone", corev1.NodeSelectorOpExists))),
			node: node("n1", withLabel("zone", "b"))},
		{line: getLine(), name: "required affinity NotIn",
			pod: pod("p", requiredAffinity(expr("zone", corev1.NodeSelectorOpNotIn, "b"))), node: node("n1", withLabel("zone", "b")),
			want: []string{reasonNodeAffinity}},
		{line: getLine(), name: "required affinity DoesNotExist",
			pod: pod("p", requiredAffinity(expr("gpu", corev1.NodeSelectorOpDoesNotExist))), node: node("n1")},
		{line: getLine(), name: "required affinity Gt",
			pod: pod("p", requiredAffinity(expr("cores", corev1.NodeSelectorOpGt, "4"))), node: node("n1", withLabel("cores", "3")),
			want: []string{reasonNodeAffinity}},
		{line: getLine(), name: "required affinity Lt",
			pod: pod("p", requiredAffinity(expr("cores", corev1.NodeSelectorOpLt, "4"))), node: node("n1", withLabel("cores", "3"))},
		{line: getLine(), name: "required affinity on metadata.name",
			pod: pod("p", requiredAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}})),
			node: node("n1"), want: []string{reasonNodeAffinity}},
		{line: getLine(), name: "empty term matches nothing",
			pod: pod("p", requiredAffinity(corev1.NodeSelectorTerm{})), node: node("n1"), want: []string{reasonNodeAffinity}},
		{line: getLine(), name: "too many pods",
			pod: pod("p"), node: node("n1", maxPods("1")), onNode: []*corev1.Pod{pod("q")},
			want: []string{reasonTooManyPods}, wantResolvable: true},
		{line: getLine(), name: "insufficient cpu and memory",
			pod: pod("p", requests("1500m", "3Gi")), node: node("n1"), onNode: []*corev1.Pod{pod("q", requests("1", "2Gi"))},
			want: []string{"Insufficient cpu", "Insufficient memory"}, wantResolvable: true},
		{line: getLine(), name: "requests fit",
			pod: pod("p", requests("1", "2Gi")), node: node("n1"), onNode: []*corev1.Pod{pod("q", requests("1", "2Gi"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := filter(tt.pod, podRequests(tt.pod), newNodeInfo(tt.node, tt.onNode))
			if len(tt.want) == 0 {
				if st != nil {
					t.Fatalf("%s: pod does not fit: %v", tt.line, st.reasons)
				}
				return
			}
			if st == nil {
				t.Fatalf("%s: pod fits, want %v", tt.line, tt.want)
			}
			if fmt.Sprint(st.reasons) != fmt.Sprint(tt.want) || st.resolvable != tt.wantResolvable {
				t.Errorf("%s: got %v (resolvable %v), want %v (resolvable %v)", tt.line, st.reasons, st.resolvable, tt.want, tt.wantResolvable)
			}
		})
	}
}

func TestPodRequests(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := pod("p", requests("100m", "100Mi"))
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}}})
	p.Spec.InitContainers = []corev1.Container{
		{Name: "sidecar", RestartPolicy: &always, Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}}},
		{Name: "init", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("10Mi")}}},
	}
	got := podRequests(p)
	// containers 300m + sidecar 50m = 350m; init 1 + sidecar 50m = 1050m wins.
	if got.milliCPU != 1050 || got.memory != 100*1024*1024 {
		t.Errorf("podRequests = %+v, want 1050m and 100Mi", got)
	}
}

func TestSchedule(t *testing.T) {
	rs := ownedBy("rs-1")
	tests := []struct {
		line  string
		name  string
		pod   *corev1.Pod
		nodes []*nodeInfo
		want  string
	}{
		{line: getLine(), name: "fewest pods of the same owner wins over fewest pods",
			pod: pod("p", rs),
			nodes: []*nodeInfo{
				newNodeInfo(node("a"), []*corev1.Pod{pod("x", rs)}),
				newNodeInfo(node("b"), []*corev1.Pod{pod("y"), pod("z")}),
			},
			want: "b"},
		{line: getLine(), name: "then fewest pods",
			pod: pod("p", rs),
			nodes: []*nodeInfo{
				newNodeInfo(node("a"), []*corev1.Pod{pod("y"), pod("z")}),
				newNodeInfo(node("b"), []*corev1.Pod{pod("w")}),
			},
			want: "b"},
		{line: getLine(), name: "then the node name",
			pod:   pod("p"),
			nodes: []*nodeInfo{newNodeInfo(node("b"), nil), newNodeInfo(node("a"), nil)},
			want:  "a"},
		{line: getLine(), name: "pods without owner spread by labels",
			pod: pod("p", podLabels("app", "web")),
			nodes: []*nodeInfo{
				newNodeInfo(node("a"), []*corev1.Pod{pod("x", podLabels("app", "web", "extra", "1"))}),
				newNodeInfo(node("b"), []*corev1.Pod{pod("y", podLabels("app", "db")), pod("z", podLabels("app", "db"))}),
			},
			want: "b"},
		{line: getLine(), name: "preferred affinity beats spreading",
			pod: pod("p", rs, preferredAffinity(10, expr("disk", corev1.NodeSelectorOpIn, "ssd"))),
			nodes: []*nodeInfo{
				newNodeInfo(node("a", withLabel("disk", "ssd")), []*corev1.Pod{pod("x", rs)}),
				newNodeInfo(node("b"), nil),
			},
			want: "a"},
		{line: getLine(), name: "untolerated PreferNoSchedule taint avoided",
			pod: pod("p"),
			nodes: []*nodeInfo{
				newNodeInfo(node("a", withTaint("k", "v", corev1.TaintEffectPreferNoSchedule)), nil),
				newNodeInfo(node("b"), []*corev1.Pod{pod("x"), pod("y")}),
			},
			want: "b"},
		{line: getLine(), name: "infeasible nodes are skipped",
			pod: pod("p", selector("disk", "ssd")),
			nodes: []*nodeInfo{
				newNodeInfo(node("a"), nil),
				newNodeInfo(node("b", withLabel("disk", "ssd")), []*corev1.Pod{pod("x")}),
			},
			want: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := schedule(tt.pod, tt.nodes)
			if err != nil || got != tt.want {
				t.Errorf("%s: schedule = %q, %v; want %q", tt.line, got, err, tt.want)
			}
		})
	}
}

func TestScheduleFailureMessages(t *testing.T) {
	tests := []struct {
		line  string
		name  string
		pod   *corev1.Pod
		nodes []*nodeInfo
		want  string
	}{
		{line: getLine(), name: "no nodes", pod: pod("p"), want: "no nodes available to schedule pods"},
		{line: getLine(), name: "selector and taint",
			pod: pod("p", selector("disk", "ssd")),
			nodes: []*nodeInfo{
				newNodeInfo(node("a"), nil),
				newNodeInfo(node("b", withLabel("disk", "ssd"), withTaint("key", "value", corev1.TaintEffectNoSchedule)), nil),
			},
			want: "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {key: value}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."},
		{line: getLine(), name: "same reason counted",
			pod:   pod("p", selector("disk", "ssd")),
			nodes: []*nodeInfo{newNodeInfo(node("a"), nil), newNodeInfo(node("b"), nil), newNodeInfo(node("c"), nil)},
			want:  "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."},
		{line: getLine(), name: "resources are resolvable by preemption",
			pod: pod("p", requests("3", "")),
			nodes: []*nodeInfo{
				newNodeInfo(node("a"), nil),
				newNodeInfo(node("b", withTaint("machine-check-exception", "memory", corev1.TaintEffectNoSchedule)), nil),
			},
			want: "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {machine-check-exception: memory}. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."},
		{line: getLine(), name: "preemptionPolicy Never",
			pod:   pod("p", never, selector("disk", "ssd")),
			nodes: []*nodeInfo{newNodeInfo(node("a"), nil)},
			want:  "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: not eligible due to preemptionPolicy=Never."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := schedule(tt.pod, tt.nodes)
			if err == nil {
				t.Fatalf("%s: scheduled, want failure", tt.line)
			}
			if err.Error() != tt.want {
				t.Errorf("%s:\n got %q\nwant %q", tt.line, err.Error(), tt.want)
			}
			var fe *FitError
			if len(tt.nodes) > 0 && !errors.As(err, &fe) {
				t.Errorf("%s: error is %T, want *FitError", tt.line, err)
			}
		})
	}
}
