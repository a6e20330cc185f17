package iptables

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// TestLoadBalancerOnNodeAddresses: the service-lb-controller's node mode gives a
// Service the node's own address as load-balancer IP, and a "localhost" ingress
// that is served on 127.0.0.1 like a localhost NodePort (only where those are
// on: route_localnet and the martian guard).
func TestLoadBalancerOnNodeAddresses(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name          string
		localhost     *bool
		wantLocalhost bool
	}{
		{name: "localhost NodePorts on", wantLocalhost: true},
		{name: "localhost NodePorts off", localhost: &no},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.LocalhostNodePorts = tc.localhost })
			env.sync(newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name:                  spn("ns", "lb", "", corev1.ProtocolTCP),
				Type:                  corev1.ServiceTypeLoadBalancer,
				ClusterIPs:            addrs("172.30.0.90"),
				Port:                  80,
				NodePort:              3090,
				LoadBalancerIPs:       addrs(goldenNodeIP),
				LocalhostLoadBalancer: true,
			}, ep("10.180.0.9:8080", "other")).s)
			rules := env.fake.Rules(TableNAT, kubeServicesChain)
			has := func(dst, comment string) bool {
				return slices.ContainsFunc(rules, func(r string) bool {
					return strings.Contains(r, "-d "+dst+" --dport 80 -j KUBE-EXT-") && strings.Contains(r, comment)
				})
			}
			if !has(goldenNodeIP, "loadbalancer IP") {
				t.Errorf("no load-balancer rule for the node address:\n%s", strings.Join(rules, "\n"))
			}
			if got := has("127.0.0.1", "external IP"); got != tc.wantLocalhost {
				t.Errorf("rule for 127.0.0.1: %v, want %v:\n%s", got, tc.wantLocalhost, strings.Join(rules, "\n"))
			}
		})
	}
}
