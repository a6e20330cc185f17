package nftables

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

var seedFlag = flag.Uint64("seed", 0, "seed of TestPartialMatchesFull (0: the time)")

// model is the desired state TestPartialMatchesFull changes at random: a small
// universe of ServicePorts (two per Service, sharing its ClusterIP) whose
// attributes collide on purpose (node ports, external and load-balancer IPs).
type model struct {
	rng       *rand.Rand
	services  map[proxy.ServicePortName]*proxy.ServicePort
	endpoints map[proxy.ServicePortName][]proxy.Endpoint
	nodeIP    string
}

func newModel(rng *rand.Rand) *model {
	return &model{
		rng:       rng,
		services:  make(map[proxy.ServicePortName]*proxy.ServicePort),
		endpoints: make(map[proxy.ServicePortName][]proxy.Endpoint),
		nodeIP:    goldenNodeIP,
	}
}

// snapshot is the current state as a Snapshot (copied: the Backend may keep
// nothing of it).
func (m *model) snapshot(full bool, changed map[proxy.ServicePortName]bool) *proxy.Snapshot {
	s := newSnap(m.nodeIP).s
	s.Services = maps.Clone(m.services)
	s.Endpoints = maps.Clone(m.endpoints)
	s.Full, s.Changed = full, changed
	return s
}

// mutate changes one ServicePort at random (removes it, or gives it new random
// attributes and endpoints) and returns its name.
func (m *model) mutate() proxy.ServicePortName {
	r := m.rng
	svc := r.IntN(8)
	port, proto := "a", corev1.ProtocolTCP
	if r.IntN(2) == 0 {
		port, proto = "b", corev1.ProtocolUDP
	}
	name := spn(fmt.Sprintf("ns%d", svc%3), fmt.Sprintf("svc%d", svc), port, proto)
	if r.IntN(6) == 0 {
		delete(m.services, name)
		delete(m.endpoints, name)
		return name
	}
	sp := &proxy.ServicePort{
		Name: name, Protocol: proto, Type: corev1.ServiceTypeClusterIP,
		ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{172, 30, 0, byte(10 + svc)})},
		Port:       int32(80 + r.IntN(2)),
	}
	switch r.IntN(3) {
	case 1:
		sp.Type, sp.NodePort = corev1.ServiceTypeNodePort, int32(30000+r.IntN(4))
	case 2:
		sp.Type, sp.NodePort = corev1.ServiceTypeLoadBalancer, int32(30000+r.IntN(4))
		sp.LoadBalancerIPs = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + r.IntN(3))})}
		if r.IntN(2) == 0 {
			sp.LoadBalancerSourceRanges = prefixes("198.51.100.0/24")
			if r.IntN(2) == 0 {
				sp.LoadBalancerSourceRanges = append(sp.LoadBalancerSourceRanges, netip.MustParsePrefix("192.168.0.0/24"))
			}
		}
	}
	if r.IntN(3) == 0 {
		sp.ExternalIPs = []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + r.IntN(3))})}
	}
	if r.IntN(3) == 0 {
		sp.AffinityTimeout = []time.Duration{60 * time.Second, 10800 * time.Second}[r.IntN(2)]
	}
	sp.ExternalPolicyLocal = sp.Type != corev1.ServiceTypeClusterIP && r.IntN(3) == 0
	sp.InternalPolicyLocal = r.IntN(4) == 0
	m.services[name] = sp

	var eps []proxy.Endpoint
	for i := range r.IntN(4) {
		e := proxy.Endpoint{
			IP:   netip.AddrFrom4([4]byte{10, 180, byte(svc), byte(1 + r.IntN(4))}),
			Port: int32(8080 + i%2),
		}
		switch r.IntN(5) {
		case 0: // terminating but serving
			e.Serving, e.Terminating = true, true
		case 1: // not ready
		default:
			e.Ready, e.Serving = true, true
		}
		if r.IntN(2) == 0 {
			e.NodeName, e.IsLocal = testNode, true
		} else {
			e.NodeName = "node-b"
		}
		dup := false
		for _, o := range eps {
			dup = dup || (o.IP == e.IP && o.Port == e.Port)
		}
		if !dup {
			eps = append(eps, e)
		}
	}
	if len(eps) > 0 {
		m.endpoints[name] = eps
	} else {
		delete(m.endpoints, name)
	}
	return name
}
