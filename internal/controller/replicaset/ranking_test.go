package replicaset

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func getLine() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("line %d", line)
}

type podOpt func(*corev1.Pod)

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func readySince(t time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady,
			Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t)})
	}
}
func created(t time.Time) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}
func restarts(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "c", RestartCount: n})
	}
}
func cost(v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[PodDeletionCostAnnotation] = v
	}
}

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestPodsToDelete(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	running := []podOpt{onNode("n1"), phase(corev1.PodRunning)}
	with := func(base []podOpt, more ...podOpt) []podOpt { return append(append([]podOpt{}, base...), more...) }
	tests := []struct {
		line    string
		name    string
		pods    []*corev1.Pod
		related []*corev1.Pod
		n       int
		want    []string
	}{{
		line: getLine(), name: "unscheduled before scheduled",
		pods: []*corev1.Pod{pod("a", running...), pod("b", phase(corev1.PodPending))},
		n:    1, want: []string{"b"},
	}, {
		line: getLine(), name: "pending before unknown before running",
		pods: []*corev1.Pod{
			pod("run", running...),
			pod("unk", onNode("n1"), phase(corev1.PodUnknown)),
			pod("pend", onNode("n1"), phase(corev1.PodPending)),
		},
		n: 2, want: []string{"pend", "unk"},
	}, {
		line: getLine(), name: "not ready before ready",
		pods: []*corev1.Pod{pod("ready", with(running, readySince(now.Add(-time.Hour)))...), pod("notready", running...)},
		n:    1, want: []string{"notready"},
	}, {
		line: getLine(), name: "lower deletion cost first",
		pods: []*corev1.Pod{
			pod("expensive", with(running, cost("100"))...),
			pod("cheap", with(running, cost("-5"))...),
			pod("default", running...),
		},
		n: 2, want: []string{"cheap", "default"},
	}, {
		line: getLine(), name: "invalid deletion cost counts as zero",
		pods: []*corev1.Pod{pod("pos", with(running, cost("1"))...), pod("bad", with(running, cost("x"))...)},
		n:    1, want: []string{"bad"},
	}, {
		line: getLine(), name: "doubled-up node first",
		pods: []*corev1.Pod{pod("alone", onNode("n2"), phase(corev1.PodRunning)), pod("crowded", running...)},
		related: []*corev1.Pod{
			pod("r1", running...), pod("r2", running...), pod("r3", onNode("n2"), phase(corev1.PodRunning)),
		},
		n: 1, want: []string{"crowded"},
	}, {
		line: getLine(), name: "ready more recently first",
		pods: []*corev1.Pod{
			pod("old", with(running, readySince(now.Add(-100*time.Hour)))...),
			pod("new", with(running, readySince(now.Add(-time.Minute)))...),
		},
		n: 1, want: []string{"new"},
	}, {
		line: getLine(), name: "more restarts first",
		pods: []*corev1.Pod{pod("stable", with(running, restarts(0))...), pod("flaky", with(running, restarts(7))...)},
		n:    1, want: []string{"flaky"},
	}, {
		line: getLine(), name: "newer first",
		pods: []*corev1.Pod{
			pod("old", with(running, created(now.Add(-100*time.Hour)))...),
			pod("new", with(running, created(now.Add(-time.Minute)))...),
		},
		n: 1, want: []string{"new"},
	}, {
		line: getLine(), name: "empty creation time first",
		pods: []*corev1.Pod{pod("old", with(running, created(now.Add(-time.Hour)))...), pod("zero", running...)},
		n:    1, want: []string{"zero"},
	}, {
		line: getLine(), name: "same log2 age bucket falls back to uid",
		pods: []*corev1.Pod{
			pod("b", with(running, created(now.Add(-1000*time.Second)))...),
			pod("a", with(running, created(now.Add(-1001*time.Second)))...),
		},
		n: 1, want: []string{"a"},
	}, {
		line: getLine(), name: "delete all needs no ranking",
		pods: []*corev1.Pod{pod("x", running...), pod("y")},
		n:    2, want: []string{"x", "y"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := podsToDelete(tt.pods, tt.related, tt.n, metav1.NewTime(now))
			var names []string
			for _, p := range got {
				names = append(names, p.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.want) {
				t.Errorf("%s: deleted %v, want %v", tt.line, names, tt.want)
			}
		})
	}
}
