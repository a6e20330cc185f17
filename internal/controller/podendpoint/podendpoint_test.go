package podendpoint

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func getLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func TestFindPort(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{
			{Name: "a", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}},
			{Name: "b", Ports: []corev1.ContainerPort{
				{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "web", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
			}},
		},
		InitContainers: []corev1.Container{
			{Name: "init", Ports: []corev1.ContainerPort{{Name: "init-only", ContainerPort: 1111, Protocol: corev1.ProtocolTCP}}},
			{Name: "sidecar", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001, Protocol: corev1.ProtocolTCP}}},
		},
	}}
	tests := []struct {
		line     int
		name     string
		target   intstr.IntOrString
		protocol corev1.Protocol
		want     int32
		notFound bool
	}{
		{line: getLine(), name: "number", target: intstr.FromInt32(7000), protocol: corev1.ProtocolTCP, want: 7000},
		{line: getLine(), name: "first match by name", target: intstr.FromString("web"), protocol: corev1.ProtocolTCP, want: 8080},
		{line: getLine(), name: "protocol must match", target: intstr.FromString("dns"), protocol: corev1.ProtocolTCP, notFound: true},
		{line: getLine(), name: "protocol matches", target: intstr.FromString("dns"), protocol: corev1.ProtocolUDP, want: 53},
		{line: getLine(), name: "sidecar port", target: intstr.FromString("proxy"), protocol: corev1.ProtocolTCP, want: 15001},
		{line: getLine(), name: "plain init container ignored", target: intstr.FromString("init-only"), protocol: corev1.ProtocolTCP, notFound: true},
		{line: getLine(), name: "unknown name", target: intstr.FromString("nope"), protocol: corev1.ProtocolTCP, notFound: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindPort(pod, &corev1.ServicePort{TargetPort: tc.target, Protocol: tc.protocol})
			if tc.notFound {
				if !errors.Is(err, ErrPortNotFound) {
					t.Errorf("line %d: got %d, %v; want ErrPortNotFound", tc.line, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("line %d: got %d, %v; want %d", tc.line, got, err, tc.want)
			}
		})
	}
}

func TestShouldInclude(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		line               int
		name               string
		pod                corev1.Pod
		includeTerminating bool
		want               bool
	}{
		{line: getLine(), name: "running with IP", pod: corev1.Pod{Status: corev1.PodStatus{PodIP: "10.0.0.1"}}, want: true},
		{line: getLine(), name: "podIPs only", pod: corev1.Pod{Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}}}, want: true},
		{line: getLine(), name: "no IP", pod: corev1.Pod{}, want: false},
		{line: getLine(), name: "succeeded", pod: corev1.Pod{Status: corev1.PodStatus{PodIP: "10.0.0.1", Phase: corev1.PodSucceeded}}, want: false},
		{line: getLine(), name: "failed", pod: corev1.Pod{Status: corev1.PodStatus{PodIP: "10.0.0.1", Phase: corev1.PodFailed}}, want: false},
		{line: getLine(), name: "terminating excluded", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{PodIP: "10.0.0.1"}}, want: false},
		{line: getLine(), name: "terminating included", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{PodIP: "10.0.0.1"}}, includeTerminating: true, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShouldInclude(&tc.pod, tc.includeTerminating); got != tc.want {
				t.Errorf("line %d: got %v, want %v", tc.line, got, tc.want)
			}
		})
	}
}

func TestServicesToUpdate(t *testing.T) {
	svc := func(name string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{Selector: sel}}
	}
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	indexer := factory.Core().V1().Services().Informer().GetIndexer()
	for _, s := range []*corev1.Service{
		svc("a", map[string]string{"app": "a"}),
		svc("b", map[string]string{"app": "b"}),
		svc("all", map[string]string{}),
		svc("manual", nil),
	} {
		if err := indexer.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	lister := factory.Core().V1().Services().Lister()
	base := func(rv string, labels map[string]string, ready bool) *corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", ResourceVersion: rv, Labels: labels},
			Status: corev1.PodStatus{PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		}
	}
	a, b := map[string]string{"app": "a"}, map[string]string{"app": "b"}
	tests := []struct {
		line     int
		name     string
		old, cur *corev1.Pod
		want     []string
	}{
		{line: getLine(), name: "resync", old: base("1", a, true), cur: base("1", a, false), want: nil},
		{line: getLine(), name: "irrelevant change", old: base("1", a, true), cur: base("2", a, true), want: nil},
		{line: getLine(), name: "readiness", old: base("1", a, true), cur: base("2", a, false), want: []string{"ns/a", "ns/all"}},
		{line: getLine(), name: "labels only: gained and lost", old: base("1", a, true), cur: base("2", b, true), want: []string{"ns/a", "ns/b"}},
		{line: getLine(), name: "labels and readiness: all", old: base("1", a, true), cur: base("2", b, false), want: []string{"ns/a", "ns/all", "ns/b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ServicesToUpdate(lister, tc.old, tc.cur)
			if err != nil {
				t.Fatal(err)
			}
			if g := sets.List(got); !slices.Equal(g, tc.want) && !(len(g) == 0 && len(tc.want) == 0) {
				t.Errorf("line %d: got %v, want %v", tc.line, g, tc.want)
			}
		})
	}
}

func TestTriggerTimeTracker(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", CreationTimestamp: metav1.NewTime(t0)}}
	pod := func(name string, ready time.Time) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(ready)},
			}},
		}
	}
	tr := NewTriggerTimeTracker()
	steps := []struct {
		line int
		pods []*corev1.Pod
		want time.Time
	}{
		{line: getLine(), pods: []*corev1.Pod{pod("a", t0.Add(time.Second))}, want: t0},                                                         // new Service: its creation
		{line: getLine(), pods: []*corev1.Pod{pod("a", t0.Add(time.Second))}, want: time.Time{}},                                                // nothing moved
		{line: getLine(), pods: []*corev1.Pod{pod("a", t0.Add(5*time.Second)), pod("b", t0.Add(3*time.Second))}, want: t0.Add(3 * time.Second)}, // earliest change
		{line: getLine(), pods: []*corev1.Pod{pod("b", t0.Add(3*time.Second))}, want: time.Time{}},                                              // a left: no trigger
	}
	for _, s := range steps {
		if got := tr.Compute(svc, s.pods); !got.Equal(s.want) {
			t.Errorf("line %d: got %v, want %v", s.line, got, s.want)
		}
	}
	tr.Forget("ns", "s")
	if got := tr.Compute(svc, nil); !got.Equal(t0) {
		t.Errorf("after Forget: got %v, want the creation time", got)
	}
}
