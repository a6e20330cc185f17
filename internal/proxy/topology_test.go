package proxy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// tep is a compact endpoint description for topology cases.
type tep struct {
	ip                      string
	notReady, serving, term bool
	local                   bool
	zoneHints, nodeHints    []string
}

func (d tep) endpoint() Endpoint {
	e := Endpoint{
		IP: netip.MustParseAddr(d.ip), Port: 80,
		Ready: !d.notReady, Serving: !d.notReady || d.serving, Terminating: d.term,
		IsLocal: d.local,
	}
	if d.zoneHints != nil || d.nodeHints != nil {
		e.Hints = &EndpointHints{ForZones: d.zoneHints, ForNodes: d.nodeHints}
	}
	if d.local {
		e.NodeName = thisNode
	} else {
		e.NodeName = "node-" + d.ip
	}
	return e
}

func ips(eps []Endpoint) []string {
	if eps == nil {
		return nil
	}
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.IP.String()
	}
	return out
}

func TestCategorizeEndpoints(t *testing.T) {
	zoned := NodeInfo{Name: thisNode, Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}
	unzoned := NodeInfo{Name: thisNode}
	clusterSvc := &ServicePort{Type: corev1.ServiceTypeClusterIP}
	itpLocal := &ServicePort{Type: corev1.ServiceTypeClusterIP, InternalPolicyLocal: true}
	etpLocal := &ServicePort{Type: corev1.ServiceTypeNodePort, NodePort: 30080, ExternalPolicyLocal: true}
	itpLocalNodePort := &ServicePort{Type: corev1.ServiceTypeNodePort, NodePort: 30080, InternalPolicyLocal: true}
	termServing := func(ip string, local bool) tep {
		return tep{ip: ip, notReady: true, serving: true, term: true, local: local}
	}

	cases := []struct {
		name                            string
		svc                             *ServicePort
		node                            NodeInfo
		eps                             []tep
		wantCluster, wantLocal, wantAll []string
		wantUsable                      bool
	}{
		{name: "no endpoints", svc: clusterSvc, node: zoned},
		{
			name: "cluster policy: ready endpoints",
			svc:  clusterSvc, node: zoned,
			eps:         []tep{{ip: "10.0.0.1"}, {ip: "10.0.0.2", notReady: true}, {ip: "10.0.0.3", local: true}},
			wantCluster: []string{"10.0.0.1", "10.0.0.3"}, wantAll: []string{"10.0.0.1", "10.0.0.3"}, wantUsable: true,
		},
		{
			name: "no ready endpoint: serving and terminating ones as fallback",
			svc:  clusterSvc, node: zoned,
			eps: []tep{
				termServing("10.0.0.1", false),
				{ip: "10.0.0.2", notReady: true, term: true},
				{ip: "10.0.0.3", notReady: true},
			},
			wantCluster: []string{"10.0.0.1"}, wantAll: []string{"10.0.0.1"}, wantUsable: true,
		},
		{
			name: "a ready endpoint wins over serving-terminating ones",
			svc:  clusterSvc, node: zoned,
			eps:         []tep{termServing("10.0.0.1", false), {ip: "10.0.0.2"}},
			wantCluster: []string{"10.0.0.2"}, wantAll: []string{"10.0.0.2"}, wantUsable: true,
		},
		{
			name: "nothing usable",
			svc:  clusterSvc, node: zoned,
			eps: []tep{{ip: "10.0.0.1", notReady: true}, {ip: "10.0.0.2", notReady: true, term: true}},
		},
		{
			name: "iTP Local: only local ready endpoints, no cluster set",
			svc:  itpLocal, node: zoned,
			eps:       []tep{{ip: "10.0.0.1"}, {ip: "10.0.0.2", local: true}, {ip: "10.0.0.3", local: true, notReady: true}},
			wantLocal: []string{"10.0.0.2"}, wantAll: []string{"10.0.0.2"}, wantUsable: true,
		},
		{
			name: "iTP Local: local serving-terminating fallback although remote ready ones exist",
			svc:  itpLocal, node: zoned,
			eps:       []tep{{ip: "10.0.0.1"}, termServing("10.0.0.2", true)},
			wantLocal: []string{"10.0.0.2"}, wantAll: []string{"10.0.0.2"}, wantUsable: true,
		},
		{
			name: "iTP Local without local endpoints: none reachable, but usable elsewhere",
			svc:  itpLocal, node: zoned,
			eps:        []tep{{ip: "10.0.0.1"}},
			wantUsable: true,
		},
		{
			name: "iTP Local on a NodePort Service still needs cluster endpoints for external traffic",
			svc:  itpLocalNodePort, node: zoned,
			eps:         []tep{{ip: "10.0.0.1"}, {ip: "10.0.0.2", local: true}},
			wantCluster: []string{"10.0.0.1", "10.0.0.2"}, wantLocal: []string{"10.0.0.2"},
			wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "eTP Local: cluster for internal traffic, local for external",
			svc:  etpLocal, node: zoned,
			eps:         []tep{{ip: "10.0.0.1"}, {ip: "10.0.0.2", local: true}},
			wantCluster: []string{"10.0.0.1", "10.0.0.2"}, wantLocal: []string{"10.0.0.2"},
			wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "eTP Local: local terminating fallback joins the reachable set",
			svc:  etpLocal, node: zoned,
			eps:         []tep{{ip: "10.0.0.1"}, termServing("10.0.0.2", true)},
			wantCluster: []string{"10.0.0.1"}, wantLocal: []string{"10.0.0.2"},
			wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "zone hints: only endpoints for this node's zone",
			svc:  clusterSvc, node: zoned,
			eps: []tep{
				{ip: "10.0.0.1", zoneHints: []string{"z1"}},
				{ip: "10.0.0.2", zoneHints: []string{"z2"}},
				{ip: "10.0.0.3", zoneHints: []string{"z1", "z2"}},
				{ip: "10.0.0.4", notReady: true}, // not ready: its missing hint does not matter
			},
			wantCluster: []string{"10.0.0.1", "10.0.0.3"}, wantAll: []string{"10.0.0.1", "10.0.0.3"}, wantUsable: true,
		},
		{
			name: "zone hints: ignored when one ready endpoint has none",
			svc:  clusterSvc, node: zoned,
			eps:         []tep{{ip: "10.0.0.1", zoneHints: []string{"z1"}}, {ip: "10.0.0.2"}},
			wantCluster: []string{"10.0.0.1", "10.0.0.2"}, wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "zone hints: ignored when none is for this zone",
			svc:  clusterSvc, node: zoned,
			eps:         []tep{{ip: "10.0.0.1", zoneHints: []string{"z2"}}, {ip: "10.0.0.2", zoneHints: []string{"z3"}}},
			wantCluster: []string{"10.0.0.1", "10.0.0.2"}, wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "zone hints: ignored when the node has no zone label",
			svc:  clusterSvc, node: unzoned,
			eps:         []tep{{ip: "10.0.0.1", zoneHints: []string{"z1"}}, {ip: "10.0.0.2", zoneHints: []string{"z2"}}},
			wantCluster: []string{"10.0.0.1", "10.0.0.2"}, wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "node hints (PreferSameNode) win over zone hints",
			svc:  clusterSvc, node: zoned,
			eps: []tep{
				{ip: "10.0.0.1", local: true, zoneHints: []string{"z1"}, nodeHints: []string{thisNode}},
				{ip: "10.0.0.2", zoneHints: []string{"z1"}, nodeHints: []string{"node-b"}},
			},
			wantCluster: []string{"10.0.0.1"}, wantAll: []string{"10.0.0.1"}, wantUsable: true,
		},
		{
			name: "node hints for other nodes only: fall back to zone hints",
			svc:  clusterSvc, node: zoned,
			eps: []tep{
				{ip: "10.0.0.1", zoneHints: []string{"z1"}, nodeHints: []string{"node-b"}},
				{ip: "10.0.0.2", zoneHints: []string{"z2"}, nodeHints: []string{"node-c"}},
			},
			wantCluster: []string{"10.0.0.1"}, wantAll: []string{"10.0.0.1"}, wantUsable: true,
		},
		{
			name: "topology with eTP Local: a local endpoint outside the hinted zone is still reachable",
			svc:  etpLocal, node: zoned,
			eps: []tep{
				{ip: "10.0.0.1", zoneHints: []string{"z1"}},
				{ip: "10.0.0.2", local: true, zoneHints: []string{"z2"}},
			},
			wantCluster: []string{"10.0.0.1"}, wantLocal: []string{"10.0.0.2"},
			wantAll: []string{"10.0.0.1", "10.0.0.2"}, wantUsable: true,
		},
		{
			name: "iTP Local ignores topology hints",
			svc:  itpLocal, node: zoned,
			eps: []tep{
				{ip: "10.0.0.1", zoneHints: []string{"z1"}},
				{ip: "10.0.0.2", local: true, zoneHints: []string{"z2"}},
			},
			wantLocal: []string{"10.0.0.2"}, wantAll: []string{"10.0.0.2"}, wantUsable: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var eps []Endpoint
			for _, d := range tc.eps {
				eps = append(eps, d.endpoint())
			}
			input := slicesClone(eps)
			cluster, local, all := CategorizeEndpoints(eps, tc.svc, tc.node)
			if diff := cmp.Diff(tc.wantCluster, ips(cluster)); diff != "" {
				t.Errorf("cluster mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLocal, ips(local)); diff != "" {
				t.Errorf("local mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAll, ips(all)); diff != "" {
				t.Errorf("allReachable mismatch (-want +got):\n%s", diff)
			}
			if got := HasUsableEndpoints(eps); got != tc.wantUsable {
				t.Errorf("HasUsableEndpoints() = %v, want %v", got, tc.wantUsable)
			}
			if !endpointsEqual(eps, input) {
				t.Error("CategorizeEndpoints modified its input")
			}
		})
	}
}
