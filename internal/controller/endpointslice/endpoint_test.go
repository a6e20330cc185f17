package endpointslice

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func getLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func ptr[T any](v T) *T { return &v }

func newService(opts ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", UID: "svc-uid", CreationTimestamp: metav1.Now(),
			Labels: map[string]string{"team": "net"}},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "a"},
			ClusterIP:  "10.96.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func newPod(name, ip string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "a"}},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func deleting(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }

func conditions(e discoveryv1.Endpoint) string {
	return fmt.Sprintf("ready=%v serving=%v terminating=%v", *e.Conditions.Ready, *e.Conditions.Serving, *e.Conditions.Terminating)
}

func TestPodToEndpointConditions(t *testing.T) {
	publish := func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }
	tests := []struct {
		line int
		name string
		pod  *corev1.Pod
		svc  *corev1.Service
		want string
	}{
		{line: getLine(), name: "ready", pod: newPod("a", "10.0.0.1"), svc: newService(), want: "ready=true serving=true terminating=false"},
		{line: getLine(), name: "not ready", pod: newPod("a", "10.0.0.1", notReady), svc: newService(), want: "ready=false serving=false terminating=false"},
		{line: getLine(), name: "terminating, ready", pod: newPod("a", "10.0.0.1", deleting), svc: newService(), want: "ready=false serving=true terminating=true"},
		{line: getLine(), name: "terminating, not ready", pod: newPod("a", "10.0.0.1", deleting, notReady), svc: newService(), want: "ready=false serving=false terminating=true"},
		{line: getLine(), name: "publishNotReadyAddresses, not ready", pod: newPod("a", "10.0.0.1", notReady), svc: newService(publish), want: "ready=true serving=false terminating=false"},
		{line: getLine(), name: "publishNotReadyAddresses, terminating", pod: newPod("a", "10.0.0.1", deleting), svc: newService(publish), want: "ready=true serving=true terminating=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := conditions(podToEndpoint(tc.pod, nil, tc.svc, discoveryv1.AddressTypeIPv4)); got != tc.want {
				t.Errorf("line %d: got %s, want %s", tc.line, got, tc.want)
			}
		})
	}
}

func TestPodToEndpointFields(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}}
	pod := newPod("a", "10.0.0.1", func(p *corev1.Pod) {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00:0::1"})
		p.Spec.Hostname, p.Spec.Subdomain = "h", "svc"
	})
	v4 := podToEndpoint(pod, node, newService(), discoveryv1.AddressTypeIPv4)
	if len(v4.Addresses) != 1 || v4.Addresses[0] != "10.0.0.1" || *v4.Zone != "z1" || *v4.NodeName != "node-1" ||
		*v4.Hostname != "h" || *v4.TargetRef != (corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "a", UID: "uid-a"}) {
		t.Errorf("IPv4 endpoint %+v", v4)
	}
	if v6 := podToEndpoint(pod, node, newService(), discoveryv1.AddressTypeIPv6); len(v6.Addresses) != 1 || v6.Addresses[0] != "fd00::1" {
		t.Errorf("IPv6 addresses %v, want the canonical fd00::1", v6.Addresses)
	}
}

func TestEndpointPorts(t *testing.T) {
	svc := newService(func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")},
			{Name: "metrics", Port: 9100, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9100)},
		}
	})
	withWeb := newPod("a", "10.0.0.1", func(p *corev1.Pod) {
		p.Spec.Containers = []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}
	})
	if got := endpointPorts(svc, withWeb); len(got) != 2 || *got[0].Port != 8080 || *got[0].Name != "http" {
		t.Errorf("ports %+v", got)
	}
	// Unresolvable named port: the pod keeps the other ports (a different port set).
	if got := endpointPorts(svc, newPod("b", "10.0.0.2")); len(got) != 1 || *got[0].Port != 9100 {
		t.Errorf("ports %+v", got)
	}
	headless := newService(func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil })
	if got := endpointPorts(headless, withWeb); got == nil || len(got) != 0 {
		t.Errorf("headless without ports: %+v, want empty", got)
	}
}

func TestSliceLabels(t *testing.T) {
	svc := newService(func(s *corev1.Service) {
		s.Labels = map[string]string{"team": "net", discoveryv1.LabelManagedBy: "me", corev1.IsHeadlessService: "x"}
		s.Spec.ClusterIP = corev1.ClusterIPNone
	})
	s := newSlice(svc, nil, discoveryv1.AddressTypeIPv4)
	want := map[string]string{
		"team":                       "net",
		corev1.IsHeadlessService:     "",
		discoveryv1.LabelServiceName: "svc",
		discoveryv1.LabelManagedBy:   ControllerName,
	}
	if !mapsEqual(s.Labels, want) {
		t.Errorf("labels %v, want %v", s.Labels, want)
	}
	if _, changed := sliceLabels(s, svc); changed {
		t.Errorf("labels reported changed on a fresh slice")
	}
	svc.Labels["team"] = "other"
	if _, changed := sliceLabels(s, svc); !changed {
		t.Errorf("label change not seen")
	}
	if s.GenerateName != "svc-" || len(s.OwnerReferences) != 1 || !*s.OwnerReferences[0].Controller || s.OwnerReferences[0].UID != "svc-uid" {
		t.Errorf("slice meta %+v", s.ObjectMeta)
	}
}

func TestSliceToFill(t *testing.T) {
	mk := func(n int) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(n)}, Endpoints: make([]discoveryv1.Endpoint, n)}
	}
	tests := []struct {
		line  int
		sizes []int
		add   int
		want  string
	}{
		{line: getLine(), sizes: []int{10, 50, 90}, add: 5, want: "90"},
		{line: getLine(), sizes: []int{10, 50, 90}, add: 20, want: "50"},
		{line: getLine(), sizes: []int{10, 50, 95}, add: 5, want: "95"},
		{line: getLine(), sizes: []int{96, 97}, add: 5, want: ""},
	}
	for _, tc := range tests {
		var ss []*discoveryv1.EndpointSlice
		for _, n := range tc.sizes {
			ss = append(ss, mk(n))
		}
		got := ""
		if s := sliceToFill(ss, tc.add, 100); s != nil {
			got = s.Name
		}
		if got != tc.want {
			t.Errorf("line %d: got %q, want %q", tc.line, got, tc.want)
		}
	}
}
