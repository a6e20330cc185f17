package nftables

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// goldenCase is one golden ruleset: a Snapshot, synced in full into a fresh
// table, and the lines the dump must have besides the fixed part.
type goldenCase struct {
	name   string
	config func(*Config)
	snap   *proxy.Snapshot
	// base is the fixed part of the table (baseRulesetV4 when empty).
	base string
	want string
}

// The test node has address 192.168.0.2; endpoints on testNode are local.
const goldenNodeIP = "192.168.0.2"

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "ClusterIP with two endpoints",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.41"), Port: 80,
			}, ep("10.180.0.1:80", testNode), ep("10.180.0.2:80", "node-b")).s,
		},
		{
			name: "NodePort",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns2", "svc2", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
				ClusterIPs: addrs("172.30.0.42"), Port: 80, NodePort: 3001,
			}, ep("10.180.0.2:80", "node-b")).s,
		},
		{
			name: "LoadBalancer with loadBalancerSourceRanges",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns5", "svc5", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
				ClusterIPs: addrs("172.30.0.45"), Port: 80, NodePort: 3005,
				LoadBalancerIPs:          addrs("203.0.113.5"),
				LoadBalancerSourceRanges: prefixes("198.51.100.0/24", "192.168.0.0/16"),
			}, ep("10.180.0.5:8080", "node-b")).s,
		},
		{
			name: "externalIPs",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns3", "svc3", "p53", corev1.ProtocolUDP), ClusterIPs: addrs("172.30.0.43"), Port: 53,
				ExternalIPs: addrs("192.0.2.33"),
			}, ep("10.180.0.3:53", "node-b")).s,
		},
		{
			name: "no endpoints: reject",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns4", "svc4", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
				ClusterIPs: addrs("172.30.0.44"), Port: 80, NodePort: 3004, ExternalIPs: addrs("192.0.2.44"),
			}).s,
		},
		{
			name: "ClientIP affinity",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns6", "svc6", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.46"), Port: 80,
				AffinityTimeout: 10800 * time.Second,
			}, ep("10.180.0.61:80", testNode), ep("10.180.0.62:80", "node-b")).s,
		},
		{
			name: "externalTrafficPolicy Local",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns7", "svc7", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
				ClusterIPs: addrs("172.30.0.47"), Port: 80, NodePort: 3007, LoadBalancerIPs: addrs("203.0.113.7"),
				ExternalPolicyLocal: true, HealthCheckNodePort: 30007,
			}, ep("10.180.0.71:80", testNode), ep("10.180.0.72:80", "node-b")).add(&proxy.ServicePort{
				Name: spn("ns7", "remote", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
				ClusterIPs: addrs("172.30.0.48"), Port: 80, NodePort: 3008, ExternalPolicyLocal: true,
			}, ep("10.180.0.73:80", "node-b")).s,
		},
		{
			name: "internalTrafficPolicy Local",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns8", "svc8", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.81"), Port: 80,
				InternalPolicyLocal: true,
			}, ep("10.180.0.81:80", testNode), ep("10.180.0.82:80", "node-b")).add(&proxy.ServicePort{
				Name: spn("ns8", "remote", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.82"), Port: 80,
				InternalPolicyLocal: true,
			}, ep("10.180.0.83:80", "node-b")).s,
		},
		{
			name: "IPv6",
			config: func(c *Config) {
				c.Family = knftables.IPv6Family
				c.ClusterCIDRs = prefixes("10.0.0.0/8", "fd00:10::/64")
				c.ServiceCIDRs = prefixes("172.30.0.0/16", "fd00:30::/108")
			},
			snap: newSnap(goldenNodeIP, "2001:db8::2").add(&proxy.ServicePort{
				Name: spn("ns9", "svc9", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
				ClusterIPs: addrs("172.30.0.91", "fd00:30::91"), Port: 80, NodePort: 3009,
			}, ep("10.180.0.91:80", testNode), ep("[fd00:10::91]:80", testNode)).add(&proxy.ServicePort{
				Name: spn("ns9", "v4only", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.92"), Port: 80,
			}, ep("10.180.0.92:80", testNode)).s,
			base: baseRulesetV6,
		},
	}
}
