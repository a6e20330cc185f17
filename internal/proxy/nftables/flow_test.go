package nftables

import (
	"maps"
	"testing"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// Addresses of the packet-flow tests: a pod of this cluster, a host outside it,
// a host inside one loadBalancerSourceRanges entry.
const (
	podIP      = "10.0.5.5"
	outsideIP  = "203.0.113.99"
	allowedIP  = "198.51.100.7"
	internetIP = "8.8.8.8"
)

// flowCase is one traced connection and its expected fate.
type flowCase struct {
	name                 string
	from, src, dst, prot string
	port                 int
	want                 string
	masq                 bool
}

// allGoldenIPv4 merges the IPv4 golden cases into one Snapshot.
func allGoldenIPv4() *proxy.Snapshot {
	s := newSnap(goldenNodeIP).s
	for _, c := range goldenCases() {
		if c.config != nil {
			continue
		}
		maps.Copy(s.Services, c.snap.Services)
		maps.Copy(s.Endpoints, c.snap.Endpoints)
	}
	return s
}

// TestPacketFlows traces connections through the ruleset of every IPv4 golden
// case at once and checks where each ends up.
func TestPacketFlows(t *testing.T) {
	env := newTestEnv(t, nil)
	env.sync(allGoldenIPv4())
	runFlows(t, newTracer(t, env.fake, goldenNodeIP), []flowCase{
		// ClusterIP
		{name: "ClusterIP from a pod", from: fromElsewhere, src: podIP, dst: "172.30.0.41", prot: "tcp", port: 80, want: "10.180.0.1:80, 10.180.0.2:80"},
		{name: "ClusterIP from the node (masqueraded: not from a pod)", from: fromNode, src: goldenNodeIP, dst: "172.30.0.41", prot: "tcp", port: 80, want: "10.180.0.1:80, 10.180.0.2:80", masq: true},
		{name: "ClusterIP from outside the cluster", from: fromElsewhere, src: outsideIP, dst: "172.30.0.41", prot: "tcp", port: 80, want: "10.180.0.1:80, 10.180.0.2:80", masq: true},
		{name: "ClusterIP hairpin (an endpoint reaching itself)", from: fromElsewhere, src: "10.180.0.1", dst: "172.30.0.41", prot: "tcp", port: 80, want: "10.180.0.1:80, 10.180.0.2:80", masq: true},
		{name: "ClusterIP, wrong protocol", from: fromElsewhere, src: podIP, dst: "172.30.0.41", prot: "udp", port: 80, want: "REJECT"},
		{name: "ClusterIP, invalid port", from: fromElsewhere, src: podIP, dst: "172.30.0.41", prot: "tcp", port: 81, want: "REJECT"},
		{name: "ClusterIP, invalid port, from the node", from: fromNode, src: goldenNodeIP, dst: "172.30.0.41", prot: "tcp", port: 81, want: "REJECT"},
		{name: "unallocated address in the Service CIDR", from: fromElsewhere, src: podIP, dst: "172.30.0.99", prot: "tcp", port: 80, want: "DROP"},
		{name: "unallocated address, from the node", from: fromNode, src: goldenNodeIP, dst: "172.30.0.99", prot: "tcp", port: 80, want: "DROP"},
		{name: "not a Service", from: fromElsewhere, src: podIP, dst: internetIP, prot: "udp", port: 53, want: "ACCEPT"},
		{name: "ClientIP affinity, first connection", from: fromElsewhere, src: podIP, dst: "172.30.0.46", prot: "tcp", port: 80, want: "10.180.0.61:80, 10.180.0.62:80"},

		// NodePort
		{name: "NodePort from outside", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
		{name: "NodePort from the node", from: fromNode, src: goldenNodeIP, dst: goldenNodeIP, prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
		{name: "localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
		{name: "localhost NodePort from another host (martian)", from: fromElsewhere, src: outsideIP, dst: "127.0.0.1", prot: "tcp", port: 3001, want: "DROP"},
		{name: "NodePort on an address that is not the node's", from: fromElsewhere, src: outsideIP, dst: "192.168.0.3", prot: "tcp", port: 3001, want: "ACCEPT"},
		{name: "unused node port", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3999, want: "ACCEPT"},

		// no endpoints
		{name: "no endpoints: ClusterIP", from: fromElsewhere, src: podIP, dst: "172.30.0.44", prot: "tcp", port: 80, want: "REJECT"},
		{name: "no endpoints: ClusterIP from the node", from: fromNode, src: goldenNodeIP, dst: "172.30.0.44", prot: "tcp", port: 80, want: "REJECT"},
		{name: "no endpoints: NodePort", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3004, want: "REJECT"},
		{name: "no endpoints: localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3004, want: "REJECT"},
		{name: "no endpoints: external IP", from: fromElsewhere, src: outsideIP, dst: "192.0.2.44", prot: "tcp", port: 80, want: "REJECT"},

		// external IPs and load balancers
		{name: "external IP", from: fromElsewhere, src: outsideIP, dst: "192.0.2.33", prot: "udp", port: 53, want: "10.180.0.3:53", masq: true},
		{name: "load balancer, source outside the ranges", from: fromElsewhere, src: outsideIP, dst: "203.0.113.5", prot: "tcp", port: 80, want: "DROP"},
		{name: "load balancer, source in a range", from: fromElsewhere, src: allowedIP, dst: "203.0.113.5", prot: "tcp", port: 80, want: "10.180.0.5:8080", masq: true},
		{name: "load balancer from the node (a range holds its address)", from: fromNode, src: goldenNodeIP, dst: "203.0.113.5", prot: "tcp", port: 80, want: "10.180.0.5:8080", masq: true},
		{name: "load balancer's NodePort ignores the ranges", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3005, want: "10.180.0.5:8080", masq: true},

		// externalTrafficPolicy Local
		{name: "eTP Local: NodePort from outside keeps the client address", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3007, want: "10.180.0.71:80"},
		{name: "eTP Local: load balancer from outside", from: fromElsewhere, src: outsideIP, dst: "203.0.113.7", prot: "tcp", port: 80, want: "10.180.0.71:80"},
		{name: "eTP Local: pod traffic is short-circuited to every endpoint", from: fromElsewhere, src: podIP, dst: "203.0.113.7", prot: "tcp", port: 80, want: "10.180.0.71:80, 10.180.0.72:80"},
		{name: "eTP Local: node traffic is short-circuited and masqueraded", from: fromNode, src: goldenNodeIP, dst: goldenNodeIP, prot: "tcp", port: 3007, want: "10.180.0.71:80, 10.180.0.72:80", masq: true},
		// 10.180.0.72 is an endpoint on node-b: the short-circuit may pick it
		// for itself, so it needs its hairpin-endpoints element here too.
		{name: "eTP Local: an endpoint on another node to this node's NodePort is short-circuited, hairpin masqueraded", from: fromElsewhere, src: "10.180.0.72", dst: goldenNodeIP, prot: "tcp", port: 3007, want: "10.180.0.71:80, 10.180.0.72:80", masq: true},
		{name: "eTP Local: ClusterIP uses every endpoint", from: fromElsewhere, src: podIP, dst: "172.30.0.47", prot: "tcp", port: 80, want: "10.180.0.71:80, 10.180.0.72:80"},
		{name: "eTP Local without local endpoints: NodePort from outside", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3008, want: "DROP"},
		{name: "eTP Local without local endpoints: from a pod", from: fromElsewhere, src: podIP, dst: goldenNodeIP, prot: "tcp", port: 3008, want: "10.180.0.73:80"},
		{name: "eTP Local without local endpoints: localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3008, want: "10.180.0.73:80", masq: true},

		// internalTrafficPolicy Local
		{name: "iTP Local: only the local endpoint", from: fromElsewhere, src: podIP, dst: "172.30.0.81", prot: "tcp", port: 80, want: "10.180.0.81:80"},
		{name: "iTP Local without local endpoints", from: fromElsewhere, src: podIP, dst: "172.30.0.82", prot: "tcp", port: 80, want: "DROP"},
	})
}

// TestPacketFlowsIPv6 traces the IPv6 golden case.
func TestPacketFlowsIPv6(t *testing.T) {
	c := goldenCases()[8]
	env := newTestEnv(t, c.config)
	env.sync(c.snap)
	runFlows(t, newTracer(t, env.fake, "2001:db8::2"), []flowCase{
		{name: "ClusterIP from a pod", from: fromElsewhere, src: "fd00:10::5", dst: "fd00:30::91", prot: "tcp", port: 80, want: "[fd00:10::91]:80"},
		{name: "ClusterIP from outside", from: fromElsewhere, src: "2001:db8:1::1", dst: "fd00:30::91", prot: "tcp", port: 80, want: "[fd00:10::91]:80", masq: true},
		{name: "NodePort", from: fromElsewhere, src: "2001:db8:1::1", dst: "2001:db8::2", prot: "tcp", port: 3009, want: "[fd00:10::91]:80", masq: true},
		{name: "no localhost NodePorts in IPv6", from: fromNode, src: "::1", dst: "::1", prot: "tcp", port: 3009, want: "ACCEPT"},
		{name: "unallocated address in the Service CIDR", from: fromElsewhere, src: "fd00:10::5", dst: "fd00:30::99", prot: "tcp", port: 80, want: "DROP"},
	})
}

// TestPacketFlowsConfig: MasqueradeAll, localhost NodePorts off, and
// nodePortAddresses CIDRs.
func TestPacketFlowsConfig(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name   string
		config func(*Config)
		flows  []flowCase
	}{
		{
			name:   "MasqueradeAll",
			config: func(c *Config) { c.MasqueradeAll = true },
			flows: []flowCase{
				{name: "ClusterIP from a pod is masqueraded", from: fromElsewhere, src: podIP, dst: "172.30.0.41", prot: "tcp", port: 80, want: "10.180.0.1:80, 10.180.0.2:80", masq: true},
			},
		},
		{
			name:   "no cluster CIDR",
			config: func(c *Config) { c.ClusterCIDRs = nil },
			flows: []flowCase{
				{name: "ClusterIP from outside is not masqueraded", from: fromElsewhere, src: outsideIP, dst: "172.30.0.41", prot: "tcp", port: 80, want: "10.180.0.1:80, 10.180.0.2:80"},
			},
		},
		{
			name:   "LocalhostNodePorts false",
			config: func(c *Config) { c.LocalhostNodePorts = &off },
			flows: []flowCase{
				{name: "localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3001, want: "ACCEPT"},
				{name: "NodePort on the node address", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
			},
		},
		{
			name:   "nodePortAddresses 127.0.0.0/8 only (seed-003)",
			config: func(c *Config) { c.NodePortAddresses = []string{"127.0.0.0/8"} },
			flows: []flowCase{
				{name: "localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
				{name: "NodePort on the node address", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3001, want: "ACCEPT"},
				{name: "localhost NodePort from another host", from: fromElsewhere, src: outsideIP, dst: "127.0.0.1", prot: "tcp", port: 3001, want: "DROP"},
			},
		},
		{
			name:   "nodePortAddresses 0.0.0.0/0",
			config: func(c *Config) { c.NodePortAddresses = []string{"0.0.0.0/0"} },
			flows: []flowCase{
				{name: "NodePort on the node address", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
				{name: "localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3001, want: "10.180.0.2:80", masq: true},
				{name: "localhost NodePort from another host", from: fromElsewhere, src: outsideIP, dst: "127.0.0.1", prot: "tcp", port: 3001, want: "DROP"},
			},
		},
		{
			name:   "nodePortAddresses of the other family only",
			config: func(c *Config) { c.NodePortAddresses = []string{"2001:db8::/64"} },
			flows: []flowCase{
				{name: "NodePort on the node address", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 3001, want: "ACCEPT"},
				{name: "localhost NodePort", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 3001, want: "ACCEPT"},
				{name: "ClusterIP", from: fromElsewhere, src: podIP, dst: "172.30.0.42", prot: "tcp", port: 80, want: "10.180.0.2:80"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, tc.config)
			env.sync(allGoldenIPv4())
			runFlows(t, newTracer(t, env.fake, goldenNodeIP), tc.flows)
		})
	}
}

func runFlows(t *testing.T, tr *tracer, flows []flowCase) {
	t.Helper()
	for _, f := range flows {
		got, masq := tr.trace(f.from, f.src, f.dst, f.prot, f.port)
		if got != f.want || masq != f.masq {
			t.Errorf("%s: %s %s -> %s %s/%d: got %s (masquerade %v), want %s (masquerade %v)",
				f.name, f.from, f.src, f.dst, f.prot, f.port, got, masq, f.want, f.masq)
		}
	}
}
