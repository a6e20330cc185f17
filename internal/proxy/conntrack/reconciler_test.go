package conntrack

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// fake is a conntrack table in memory.
type fake struct{ flows []Flow }

func (f *fake) DeleteFlows(_ context.Context, family int, match func(Flow) bool) (int, error) {
	n := 0
	f.flows = slices.DeleteFunc(f.flows, func(fl Flow) bool {
		if fl.OrigDst.Addr().Is4() != (family == 2) { // AF_INET
			return false
		}
		if match(fl) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func udpFlow(dst, backend string) Flow {
	return Flow{Proto: protoUDP, OrigDst: ap(dst), ReplySrc: ap(backend)}
}

func TestReconcile(t *testing.T) {
	dns := proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "kube-system", Name: "dns"}, Port: "dns", Protocol: corev1.ProtocolUDP}
	web := proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "default", Name: "web"}, Protocol: corev1.ProtocolTCP}
	ep := func(s string) proxy.Endpoint {
		a := ap(s)
		return proxy.Endpoint{IP: a.Addr(), Port: int32(a.Port()), Ready: true, Serving: true}
	}
	snap := func(full bool, dnsEndpoints ...string) *proxy.Snapshot {
		var eps []proxy.Endpoint
		for _, e := range dnsEndpoints {
			eps = append(eps, ep(e))
		}
		return &proxy.Snapshot{
			Services: map[proxy.ServicePortName]*proxy.ServicePort{
				dns: {Name: dns, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}, Port: 53, Protocol: corev1.ProtocolUDP, NodePort: 30053},
				web: {Name: web, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Port: 80, Protocol: corev1.ProtocolTCP},
			},
			Endpoints: map[proxy.ServicePortName][]proxy.Endpoint{dns: eps, web: {ep("10.244.0.9:8080")}},
			Node:      proxy.NodeInfo{Name: "node-a", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}},
			Full:      full,
			Changed:   map[proxy.ServicePortName]bool{dns: true},
		}
	}
	ct := &fake{flows: []Flow{
		udpFlow("10.96.0.10:53", "10.244.0.5:53"),                                 // to an endpoint that stays
		udpFlow("10.96.0.10:53", "10.244.0.6:53"),                                 // to an endpoint that goes
		udpFlow("10.96.0.10:53", "10.96.0.10:53"),                                 // made while there was no endpoint
		udpFlow("192.0.2.10:30053", "10.244.0.6:53"),                              // node port, gone endpoint
		udpFlow("127.0.0.1:30053", "10.244.0.5:53"),                               // node port on loopback, kept endpoint
		udpFlow("198.51.100.7:30053", "198.51.100.7:30053"),                       // the node's own far traffic
		{Proto: 6, OrigDst: ap("10.96.0.20:80"), ReplySrc: ap("10.244.0.1:8080")}, // TCP: never touched
	}}
	r := NewReconciler(ct)
	n, err := r.Reconcile(t.Context(), snap(true, "10.244.0.5:53"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Flow{
		udpFlow("10.96.0.10:53", "10.244.0.5:53"),
		udpFlow("127.0.0.1:30053", "10.244.0.5:53"),
		udpFlow("198.51.100.7:30053", "198.51.100.7:30053"),
		{Proto: 6, OrigDst: ap("10.96.0.20:80"), ReplySrc: ap("10.244.0.1:8080")},
	}
	if n != 3 || !slices.Equal(ct.flows, want) {
		t.Errorf("after a full reconcile: %d deleted, left %v", n, ct.flows)
	}

	// A partial snapshot with no UDP change does nothing.
	s := snap(false)
	s.Changed = map[proxy.ServicePortName]bool{web: true}
	if n, err := r.Reconcile(t.Context(), s); n != 0 || err != nil || len(ct.flows) != 4 {
		t.Errorf("TCP-only change: %d deleted (%v), %d left", n, err, len(ct.flows))
	}

	// The UDP Service goes away: its entries go too.
	s = snap(false)
	delete(s.Services, dns)
	delete(s.Endpoints, dns)
	if _, err := r.Reconcile(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	want = []Flow{
		udpFlow("198.51.100.7:30053", "198.51.100.7:30053"),
		{Proto: 6, OrigDst: ap("10.96.0.20:80"), ReplySrc: ap("10.244.0.1:8080")},
	}
	if !slices.Equal(ct.flows, want) {
		t.Errorf("after the UDP Service was removed, left %v", ct.flows)
	}
}
