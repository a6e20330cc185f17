package proxy

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// benchObjects returns n Services with one slice of 10 endpoints each.
func benchObjects(n int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	svcs := make([]*corev1.Service, n)
	slices := make([]*discoveryv1.EndpointSlice, n)
	ports := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		svcs[i] = svc("ns", name, withClusterIPs(fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)),
			withPorts(port("http", corev1.ProtocolTCP, 80, 0)))
		eps := make([]discoveryv1.Endpoint, 10)
		for j := range eps {
			eps[j] = ep(fmt.Sprintf("10.%d.%d.%d", 1+i/62500, i/250%250, (i%250)+j), fmt.Sprintf("node-%d", j))
		}
		slices[i] = slice("ns", name+"-1", name, ports, eps...)
	}
	return svcs, slices
}

// BenchmarkTrackersInitialLoad: every object of a 10,000-Service cluster
// through Update, then one Apply (the first sync's tracker work).
func BenchmarkTrackersInitialLoad(b *testing.B) {
	svcs, slices := benchObjects(10000)
	b.ReportAllocs()
	for b.Loop() {
		st, et := NewServiceChangeTracker(), NewEndpointsChangeTracker(thisNode, time.Time{})
		for i := range svcs {
			st.Update(nil, svcs[i])
			et.Update(nil, slices[i])
		}
		st.Apply()
		et.Apply()
	}
}

// BenchmarkOneEndpointChange: one slice update and Apply at n Services; the
// cost must not grow with n.
func BenchmarkOneEndpointChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			svcs, slices := benchObjects(n)
			st, et := NewServiceChangeTracker(), NewEndpointsChangeTracker(thisNode, time.Time{})
			for i := range svcs {
				st.Update(nil, svcs[i])
				et.Update(nil, slices[i])
			}
			st.Apply()
			et.Apply()
			a := slices[n/2]
			c := a.DeepCopy()
			c.Endpoints[3].Conditions.Ready = new(bool)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				prev, cur := a, c
				if i%2 == 1 {
					prev, cur = c, a
				}
				if !et.Update(prev, cur) {
					b.Fatal("no change")
				}
				if got := et.Apply(); got.Len() != 1 {
					b.Fatalf("changed %d", got.Len())
				}
				i++
			}
		})
	}
}
