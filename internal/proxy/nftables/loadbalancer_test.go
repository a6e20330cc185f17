package nftables

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// TestLoadBalancerOnNodeAddresses traces the service-lb-controller's node mode
// through the ruleset: the Service's load-balancer IP is the node's own address,
// and a "localhost" ingress serves the same port on 127.0.0.1 for the node
// itself, as a localhost NodePort.
func TestLoadBalancerOnNodeAddresses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		localhost *bool // Config.LocalhostNodePorts
		flows     []flowCase
	}{
		{
			name: "localhost NodePorts on",
			flows: []flowCase{
				{name: "node address from outside", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 80, want: "10.180.0.9:8080", masq: true},
				{name: "node address from the node", from: fromNode, src: goldenNodeIP, dst: goldenNodeIP, prot: "tcp", port: 80, want: "10.180.0.9:8080", masq: true},
				{name: "localhost from the node", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 80, want: "10.180.0.9:8080", masq: true},
				{name: "localhost, another port", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 81, want: "ACCEPT"},
			},
		},
		{
			name:      "localhost NodePorts off: no localhost ingress either",
			localhost: new(bool),
			flows: []flowCase{
				{name: "node address from outside", from: fromElsewhere, src: outsideIP, dst: goldenNodeIP, prot: "tcp", port: 80, want: "10.180.0.9:8080", masq: true},
				{name: "localhost from the node", from: fromNode, src: "127.0.0.1", dst: "127.0.0.1", prot: "tcp", port: 80, want: "ACCEPT"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.LocalhostNodePorts = tc.localhost })
			s := newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name:                  spn("ns", "lb", "", corev1.ProtocolTCP),
				Type:                  corev1.ServiceTypeLoadBalancer,
				ClusterIPs:            addrs("172.30.0.90"),
				Port:                  80,
				NodePort:              3090,
				LoadBalancerIPs:       addrs(goldenNodeIP),
				LocalhostLoadBalancer: true,
			}, ep("10.180.0.9:8080", "other")).s
			env.sync(s)
			runFlows(t, newTracer(t, env.fake, goldenNodeIP), tc.flows)
			dump := env.fake.Dump()
			if has := strings.Contains(dump, "127.0.0.1 . tcp . 80"); has != (tc.localhost == nil) {
				t.Errorf("service-ips has 127.0.0.1 . tcp . 80: %v\n%s", has, dump)
			}
		})
	}
}
