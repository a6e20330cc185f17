package proxy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// FuzzChangeTrackers drives both trackers with a random sequence of Service
// and EndpointSlice events (adds, updates, deletes, with random and partly
// invalid specs) and Apply calls. It checks that nothing panics, that each
// Apply reports exactly the ServicePortNames whose state changed, that
// endpoint lists are sorted and hold each address:port once, that replaying
// the sequence gives the same results, and that the final state equals that of
// fresh trackers fed only the surviving objects, in reverse order.
//
//	go test ./internal/proxy/ -run '^$' -fuzz FuzzChangeTrackers -fuzztime 60s
func FuzzChangeTrackers(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 2, 3, 1, 2, 2, 1, 1, 2, 4, 2, 0, 0, 0, 1, 1, 4})
	f.Add([]byte("service and slices, then apply, then delete and apply again"))
	f.Add([]byte{2, 0, 0, 0, 1, 2, 3, 1, 1, 1, 0, 2, 1, 0, 0, 1, 2, 3, 1, 1, 2, 2, 1, 0, 4, 3, 0, 4, 5, 1, 7, 7, 7, 4})
	// Longer pseudo-random inputs (fixed seed) so that plain `go test` already
	// covers long histories.
	r := rand.New(rand.NewPCG(1, 2))
	for range 64 {
		b := make([]byte, 200+r.IntN(800))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		first := runTrackerOps(t, data)
		second := runTrackerOps(t, data)
		if first != second {
			t.Fatalf("same events, different results:\n%s\n---\n%s", first, second)
		}
	})
}

// fuzzInput hands out bytes of the fuzz input; 0 once it is used up.
type fuzzInput struct {
	data []byte
}

func (in *fuzzInput) next() int {
	if len(in.data) == 0 {
		return 0
	}
	b := in.data[0]
	in.data = in.data[1:]
	return int(b)
}

func (in *fuzzInput) pick(n int) int { return in.next() % n }

func (in *fuzzInput) done() bool { return len(in.data) == 0 }

func pickFrom[T any](in *fuzzInput, options ...T) T { return options[in.pick(len(options))] }

var fuzzSince = time.Unix(1000, 0)

// runTrackerOps plays the events encoded in data and returns a trace of what
// the trackers reported; it fails t when an invariant breaks.
func runTrackerOps(t *testing.T, data []byte) string {
	in := &fuzzInput{data: data}
	st := NewServiceChangeTracker()
	et := NewEndpointsChangeTracker(thisNode, fuzzSince)
	services := map[string]*corev1.Service{}
	endpointSlices := map[string]*discoveryv1.EndpointSlice{}
	var trace strings.Builder
	for steps := 0; !in.done() && steps < 200; steps++ {
		switch in.pick(5) {
		case 0:
			s := fuzzService(in)
			st.Update(services[s.Name], s)
			services[s.Name] = s
		case 1:
			name := pickFrom(in, "s0", "s1", "s2")
			st.Update(services[name], nil)
			delete(services, name)
		case 2:
			s := fuzzSlice(in)
			et.Update(endpointSlices[s.Name], s)
			endpointSlices[s.Name] = s
		case 3:
			name := pickFrom(in, "e0", "e1", "e2", "e3")
			et.Update(endpointSlices[name], nil)
			delete(endpointSlices, name)
		case 4:
			checkedApply(t, st, et, &trace)
		}
	}
	checkedApply(t, st, et, &trace)

	// Fresh trackers fed the surviving objects only, in reverse name order.
	st2 := NewServiceChangeTracker()
	et2 := NewEndpointsChangeTracker(thisNode, fuzzSince)
	for _, name := range reverseKeys(services) {
		st2.Update(nil, services[name])
	}
	for _, name := range reverseKeys(endpointSlices) {
		et2.Update(nil, endpointSlices[name])
	}
	st2.Apply()
	et2.Apply()
	if !maps.EqualFunc(st.Services(), st2.Services(), func(a, b *ServicePort) bool { return a.equal(b) }) {
		t.Fatalf("service state depends on history:\nincremental %v\nfresh %v", st.Services(), st2.Services())
	}
	if !maps.EqualFunc(et.Endpoints(), et2.Endpoints(), endpointsEqual) {
		t.Fatalf("endpoint state depends on history:\nincremental %v\nfresh %v",
			describeEndpoints(et.Endpoints()), describeEndpoints(et2.Endpoints()))
	}
	fmt.Fprintf(&trace, "final services %v\nfinal endpoints %v\n", sortedKeys(st.Services()), describeEndpoints(et.Endpoints()))
	return trace.String()
}

// checkedApply applies both trackers and checks that Changed is exactly the set
// of names whose state changed, and that endpoint lists are well formed.
func checkedApply(t *testing.T, st *ServiceChangeTracker, et *EndpointsChangeTracker, trace *strings.Builder) {
	beforeSvc := maps2(st.Services())
	beforeEps := maps2(et.Endpoints())
	sc := st.Apply()
	ec := et.Apply()
	wantSvc := diffNames(beforeSvc, st.Services(), func(a, b *ServicePort) bool { return a.equal(b) })
	wantEps := diffNames(beforeEps, et.Endpoints(), endpointsEqual)
	if !mapsEqualKeys(sc.Changed, wantSvc) {
		t.Fatalf("service Changed = %v, want %v", sortedKeys(sc.Changed), sortedKeys(wantSvc))
	}
	if !mapsEqualKeys(ec.Changed, wantEps) {
		t.Fatalf("endpoint Changed = %v, want %v", sortedKeys(ec.Changed), sortedKeys(wantEps))
	}
	for n, tm := range ec.Triggered {
		if !ec.Changed[n] || !tm.After(fuzzSince) {
			t.Fatalf("trigger time %v for %v (changed %v)", tm, n, ec.Changed[n])
		}
	}
	for n, p := range st.Services() {
		if p.Name != n {
			t.Fatalf("ServicePort %v under %v", p.Name, n)
		}
	}
	for n, eps := range et.Endpoints() {
		if len(eps) == 0 {
			t.Fatalf("%v has an empty endpoint list", n)
		}
		for i := 1; i < len(eps); i++ {
			a, b := eps[i-1], eps[i]
			if c := a.IP.Compare(b.IP); c > 0 || c == 0 && a.Port >= b.Port {
				t.Fatalf("%v endpoints not sorted or repeated: %v", n, describeEndpoints(et.Endpoints())[n])
			}
		}
	}
	fmt.Fprintf(trace, "apply svc %v eps %v trig %v\n", sortedKeys(sc.Changed), sortedKeys(ec.Changed), ec.Triggered)
}

func fuzzService(in *fuzzInput) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: pickFrom(in, "s0", "s1", "s2")}}
	s.ResourceVersion = fmt.Sprint(in.next())
	s.Spec.Type = pickFrom(in, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer,
		corev1.ServiceTypeExternalName, "")
	s.Spec.ClusterIPs = pickFrom(in, []string{"10.96.0.1"}, []string{"10.96.0.2", "fd00::2"}, []string{"None"}, nil, []string{"bad"})
	if len(s.Spec.ClusterIPs) > 0 {
		s.Spec.ClusterIP = s.Spec.ClusterIPs[0]
	}
	for range in.pick(4) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
			Name:     pickFrom(in, "", "a", "b"),
			Protocol: pickFrom(in, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, ""),
			Port:     pickFrom[int32](in, 80, 443, 53),
			NodePort: pickFrom[int32](in, 0, 30080, 30443),
		})
	}
	s.Spec.ExternalIPs = pickFrom(in, nil, []string{"192.0.2.1"}, []string{"192.0.2.1", "junk", "2001:db8::1"})
	for range in.pick(3) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{
			IP:     pickFrom(in, "203.0.113.1", "203.0.113.2", "", "x"),
			IPMode: pickFrom(in, nil, ptr.To(corev1.LoadBalancerIPModeVIP), ptr.To(corev1.LoadBalancerIPModeProxy)),
		})
	}
	s.Spec.LoadBalancerSourceRanges = pickFrom(in, nil, []string{"192.0.2.0/24"}, []string{" 0.0.0.0/0", "2001:db8::/32"}, []string{"nope"})
	s.Spec.SessionAffinity = pickFrom(in, corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP, "")
	if in.pick(2) == 1 {
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{
			TimeoutSeconds: pickFrom(in, nil, ptr.To[int32](0), ptr.To[int32](60)),
		}}
	}
	s.Spec.ExternalTrafficPolicy = pickFrom(in, "", corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceExternalTrafficPolicyCluster)
	s.Spec.InternalTrafficPolicy = pickFrom(in, nil, ptr.To(corev1.ServiceInternalTrafficPolicyLocal), ptr.To(corev1.ServiceInternalTrafficPolicyCluster))
	s.Spec.HealthCheckNodePort = pickFrom[int32](in, 0, 31000)
	s.Spec.TrafficDistribution = pickFrom(in, nil, ptr.To(corev1.ServiceTrafficDistributionPreferClose))
	if in.pick(8) == 0 {
		s.Labels = map[string]string{LabelServiceProxyName: "other"}
	}
	s.Annotations = map[string]string{"noise": fmt.Sprint(in.next())}
	return s
}

func fuzzSlice(in *fuzzInput) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: pickFrom(in, "e0", "e1", "e2", "e3")}}
	s.ResourceVersion = fmt.Sprint(in.next())
	if svc := pickFrom(in, "s0", "s1", "s2", ""); svc != "" {
		s.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
	}
	s.AddressType = pickFrom(in, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	if tr := pickFrom(in, "", "1970-01-01T00:10:00Z", "1970-01-01T00:20:00Z", "1970-01-01T00:30:00.5Z", "garbage"); tr != "" {
		s.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: tr}
	}
	for range in.pick(3) {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{
			Name:     pickFrom(in, nil, ptr.To(""), ptr.To("a"), ptr.To("b")),
			Protocol: pickFrom(in, nil, ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)),
			Port:     pickFrom(in, nil, ptr.To[int32](0), ptr.To[int32](8080), ptr.To[int32](9090), ptr.To[int32](70000)),
		})
	}
	boolPtr := func() *bool { return pickFrom(in, nil, ptr.To(true), ptr.To(false)) }
	for range in.pick(5) {
		e := discoveryv1.Endpoint{
			Conditions: discoveryv1.EndpointConditions{Ready: boolPtr(), Serving: boolPtr(), Terminating: boolPtr()},
			NodeName:   pickFrom(in, nil, ptr.To(thisNode), ptr.To("n2")),
			Zone:       pickFrom(in, nil, ptr.To("z1"), ptr.To("z2")),
		}
		if a := pickFrom(in, "10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1", "bad", ""); a != "" {
			e.Addresses = []string{a}
		}
		if in.pick(3) == 0 {
			e.Hints = &discoveryv1.EndpointHints{
				ForZones: pickFrom(in, nil, []discoveryv1.ForZone{{Name: "z1"}}, []discoveryv1.ForZone{{Name: "z2"}, {Name: "z1"}}),
				ForNodes: pickFrom(in, nil, []discoveryv1.ForNode{{Name: thisNode}}),
			}
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

func maps2[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// diffNames returns the keys present in only one of a and b, or in both with
// values that differ.
func diffNames[V any](a, b map[ServicePortName]V, equal func(V, V) bool) map[ServicePortName]bool {
	out := map[ServicePortName]bool{}
	for n, v := range a {
		if w, ok := b[n]; !ok || !equal(v, w) {
			out[n] = true
		}
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			out[n] = true
		}
	}
	return out
}

func mapsEqualKeys(a, b map[ServicePortName]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for n := range a {
		if !b[n] {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[ServicePortName]V) []ServicePortName {
	out := make([]ServicePortName, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sortNames(out)
	return out
}

func reverseKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}
