package endpoints

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func getLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

func addr(ip, uid string) corev1.EndpointAddress {
	return corev1.EndpointAddress{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)}}
}

func port(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

// render is a compact, order-preserving rendering of subsets.
func render(subsets []corev1.EndpointSubset) string {
	var parts []string
	for _, s := range subsets {
		var r, nr, p []string
		for _, a := range s.Addresses {
			r = append(r, a.IP)
		}
		for _, a := range s.NotReadyAddresses {
			nr = append(nr, a.IP)
		}
		for _, x := range s.Ports {
			p = append(p, fmt.Sprintf("%s:%d", x.Name, x.Port))
		}
		parts = append(parts, fmt.Sprintf("{%s|%s|%s}", strings.Join(r, ","), strings.Join(nr, ","), strings.Join(p, ",")))
	}
	return strings.Join(parts, " ")
}

func TestRepackSubsets(t *testing.T) {
	tests := []struct {
		line int
		name string
		in   []corev1.EndpointSubset
		// want lists the expected subsets in any order (their order is the hash order,
		// checked separately).
		want []string
	}{{
		line: getLine(),
		name: "empty",
		in:   nil,
		want: nil,
	}, {
		line: getLine(),
		name: "one address per subset, same port: merged and sorted",
		in: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
		},
		want: []string{"{10.0.0.1,10.0.0.2||http:80}"},
	}, {
		line: getLine(),
		name: "same addresses on two ports: one subset with both ports (in hash order)",
		in: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("https", 443)}},
		},
		want: []string{"{10.0.0.1||https:443,http:80}"},
	}, {
		line: getLine(),
		name: "different address sets: separate subsets",
		in: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("", 8080)}},
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}, Ports: []corev1.EndpointPort{port("", 9090)}},
		},
		want: []string{"{10.0.0.1||:8080}", "{10.0.0.2||:9090}"},
	}, {
		line: getLine(),
		name: "not ready wins over ready for the same address and port",
		in: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
			{NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}, Ports: []corev1.EndpointPort{port("http", 80)}},
		},
		want: []string{"{|10.0.0.1|http:80}"},
	}, {
		line: getLine(),
		name: "same IP, different pods: both kept",
		in: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.1", "a"), addr("10.0.0.1", "b")}, Ports: []corev1.EndpointPort{port("http", 80)}},
		},
		want: []string{"{10.0.0.1,10.0.0.1||http:80}"},
	}, {
		line: getLine(),
		name: "no ports (headless): addresses kept",
		in: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr("10.0.0.2", "b")}},
			{NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.1", "a")}},
		},
		want: []string{"{10.0.0.2|10.0.0.1|}"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := repackSubsets(tc.in)
			var parts []string
			for i := range got {
				parts = append(parts, render(got[i:i+1]))
			}
			slices.Sort(parts)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(parts, want) {
				t.Errorf("line %d: got %v, want %v", tc.line, parts, want)
			}
			// Canonical: repacking again, or repacking a shuffled input, gives the same.
			if again := repackSubsets(got); render(again) != render(got) {
				t.Errorf("line %d: not idempotent: %s then %s", tc.line, render(got), render(again))
			}
			rev := slices.Clone(tc.in)
			slices.Reverse(rev)
			if r := repackSubsets(rev); render(r) != render(got) {
				t.Errorf("line %d: order-dependent: %s vs %s", tc.line, render(r), render(got))
			}
		})
	}
}

func TestTruncateSubsets(t *testing.T) {
	mk := func(ready, notReady int) corev1.EndpointSubset {
		var s corev1.EndpointSubset
		for i := range ready {
			s.Addresses = append(s.Addresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250)})
		}
		for i := range notReady {
			s.NotReadyAddresses = append(s.NotReadyAddresses, corev1.EndpointAddress{IP: fmt.Sprintf("10.2.%d.%d", i/250, i%250)})
		}
		return s
	}
	tests := []struct {
		line      int
		name      string
		in        [][2]int // ready, notReady per subset
		want      [][2]int
		truncated bool
	}{
		{line: getLine(), name: "under capacity", in: [][2]int{{500, 500}}, want: [][2]int{{500, 500}}},
		{line: getLine(), name: "over: not ready cut first", in: [][2]int{{900, 200}}, want: [][2]int{{900, 100}}, truncated: true},
		{line: getLine(), name: "ready over: not ready all gone", in: [][2]int{{1001, 5}}, want: [][2]int{{1000, 0}}, truncated: true},
		{line: getLine(), name: "proportional over subsets, rounded up", in: [][2]int{{600, 0}, {600, 0}}, want: [][2]int{{500, 0}, {500, 0}}, truncated: true},
		{line: getLine(), name: "proportional not ready", in: [][2]int{{400, 300}, {400, 100}}, want: [][2]int{{400, 150}, {400, 50}}, truncated: true},
		{line: getLine(), name: "last subset gets the remainder", in: [][2]int{{700, 0}, {301, 0}, {1, 0}}, want: [][2]int{{699, 0}, {301, 0}, {0, 0}}, truncated: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var subsets []corev1.EndpointSubset
			for _, c := range tc.in {
				subsets = append(subsets, mk(c[0], c[1]))
			}
			if got := truncateSubsets(subsets); got != tc.truncated {
				t.Errorf("line %d: truncated=%v, want %v", tc.line, got, tc.truncated)
			}
			var got [][2]int
			for _, s := range subsets {
				got = append(got, [2]int{len(s.Addresses), len(s.NotReadyAddresses)})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("line %d: got %v, want %v", tc.line, got, tc.want)
			}
		})
	}
}

type podOpt func(*corev1.Pod)

func newPod(name, ip string, opts ...podOpt) *corev1.Pod {
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

func notReady(p *corev1.Pod)  { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func deleting(p *corev1.Pod)  { now := metav1.Now(); p.DeletionTimestamp = &now }
func succeeded(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
func withPorts(ports ...corev1.ContainerPort) podOpt {
	return func(p *corev1.Pod) { p.Spec.Containers = []corev1.Container{{Name: "c", Ports: ports}} }
}
func dualStack(v6 string) podOpt {
	return func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: v6}) }
}
func hostname(h, sub string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = h, sub }
}

type svcOpt func(*corev1.Service)

func newService(opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", UID: "svc-uid", CreationTimestamp: metav1.Now()},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "a"},
			ClusterIP:  "10.96.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func TestDesiredSubsets(t *testing.T) {
	named := func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("web") }
	tests := []struct {
		line int
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want string
	}{{
		line: getLine(),
		name: "ready and not ready",
		svc:  newService(),
		pods: []*corev1.Pod{newPod("a", "10.0.0.1"), newPod("b", "10.0.0.2", notReady)},
		want: "{10.0.0.1|10.0.0.2|http:8080}",
	}, {
		line: getLine(),
		name: "terminal, terminating and IP-less pods are left out",
		svc:  newService(),
		pods: []*corev1.Pod{newPod("a", "10.0.0.1", succeeded), newPod("b", "10.0.0.2", deleting), newPod("c", "")},
		want: "",
	}, {
		line: getLine(),
		name: "publishNotReadyAddresses: not ready and terminating pods are ready",
		svc:  newService(func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }),
		pods: []*corev1.Pod{newPod("a", "10.0.0.1", notReady), newPod("b", "10.0.0.2", deleting)},
		want: "{10.0.0.1,10.0.0.2||http:8080}",
	}, {
		line: getLine(),
		name: "named port resolved per pod, unresolvable pods left out",
		svc:  newService(named),
		pods: []*corev1.Pod{
			newPod("a", "10.0.0.1", withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP})),
			newPod("b", "10.0.0.2", withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 9090, Protocol: corev1.ProtocolTCP})),
			newPod("c", "10.0.0.3", withPorts(corev1.ContainerPort{Name: "web", ContainerPort: 7070, Protocol: corev1.ProtocolUDP})),
		},
		want: "{10.0.0.1||http:8080} {10.0.0.2||http:9090}",
	}, {
		line: getLine(),
		name: "headless without ports",
		svc: newService(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil
		}),
		pods: []*corev1.Pod{newPod("a", "10.0.0.1"), newPod("b", "10.0.0.2", notReady)},
		want: "{10.0.0.1|10.0.0.2|}",
	}, {
		line: getLine(),
		name: "primary family only: IPv6 service picks the v6 pod IP",
		svc: newService(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.IPFamilies = "fd00::10", []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
		}),
		pods: []*corev1.Pod{newPod("a", "10.0.0.1", dualStack("fd00::1")), newPod("b", "10.0.0.2")},
		want: "{fd00::1||http:8080}",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, _ := desiredSubsets(tc.svc, tc.pods)
			var parts []string
			for i := range got {
				parts = append(parts, render(got[i:i+1]))
			}
			slices.Sort(parts)
			if s := strings.Join(parts, " "); s != tc.want {
				t.Errorf("line %d: got %q, want %q", tc.line, s, tc.want)
			}
		})
	}
}

func TestPodAddress(t *testing.T) {
	svc := newService()
	a, ok := podAddress(svc, newPod("a", "10.0.0.1", hostname("h", "svc")))
	if !ok {
		t.Fatal("no address")
	}
	if a.Hostname != "h" || a.NodeName == nil || *a.NodeName != "node-1" ||
		*a.TargetRef != (corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "a", UID: "uid-a"}) {
		t.Errorf("address %+v", a)
	}
	if a, _ := podAddress(svc, newPod("b", "10.0.0.2", hostname("h", "other"))); a.Hostname != "" {
		t.Errorf("hostname %q set for another subdomain", a.Hostname)
	}
}
