package iptables

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// The golden cases use kube-proxy's own test Services (pkg/proxy/iptables
// proxier_test.go TestOverallIPTablesRules: same names, ports and endpoints),
// so the chain names below can be checked against the ones kube-proxy's tests
// print, e.g. KUBE-SVC-XPGD46QRK7WJZT7O for ns1/svc1:p80. External and
// load-balancer addresses are documentation addresses instead of kube-proxy's.
// The test node has address 192.168.0.2; endpoints on testNode are local.
const goldenNodeIP = "192.168.0.2"

// baseDumpV4 is the Fake's whole dump after a full sync of no Service with
// the test defaults: the fixed chains, the jumps from the built-in chains,
// and the martian guard of localhost NodePorts.
const baseDumpV4 = `
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-SERVICES -m comment --comment "drop traffic to unallocated Service IPs" -d 172.30.0.0/16 -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
`

// goldenCase is one golden ruleset: a Snapshot synced in full into a fresh
// Fake, and the lines its dump has besides those of the same sync without
// Services (in dump order: "*table" headers, chain declarations, rules).
type goldenCase struct {
	name   string
	config func(*Config)
	snap   *proxy.Snapshot
	want   string
}

// goldenConfig is the test defaults plus a Service CIDR.
func goldenConfig(c *Config) { c.ServiceCIDRs = prefixes("172.30.0.0/16") }

func TestBaseRuleset(t *testing.T) {
	env := newTestEnv(t, goldenConfig)
	env.sync(newSnap(goldenNodeIP).s)
	assertLines(t, "ruleset", env.fake.Dump(), baseDumpV4)
	if got := env.sysctl.set[routeLocalnetSysctl]; got != "1" {
		t.Errorf("route_localnet = %q, want 1", got)
	}
}

func TestGoldenRulesets(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			mutate := func(c *Config) {
				goldenConfig(c)
				if tc.config != nil {
					tc.config(c)
				}
			}
			base := newTestEnv(t, mutate)
			empty := *tc.snap
			empty.Services, empty.Endpoints = nil, nil
			base.sync(&empty)
			env := newTestEnv(t, mutate)
			env.sync(tc.snap)
			assertLines(t, "lines besides the base ruleset", addedLines(base.fake.Dump(), env.fake.Dump()), tc.want)
			if missing := addedLines(env.fake.Dump(), base.fake.Dump()); missing != "" {
				t.Errorf("lines of the base ruleset missing:\n%s", missing)
			}
		})
	}
}

// addedLines returns the lines of got that base lacks (table headers kept, for
// orientation), in got's order.
func addedLines(base, got string) string {
	have := make(map[string]int)
	for _, l := range normalize(base) {
		have[l]++
	}
	var out []string
	for _, l := range normalize(got) {
		switch {
		case strings.HasPrefix(l, "*"):
			out = append(out, l)
		case have[l] > 0:
			have[l]--
		default:
			out = append(out, l)
		}
	}
	// Drop headers of tables that gained nothing.
	var kept []string
	for i, l := range out {
		if strings.HasPrefix(l, "*") && (i+1 == len(out) || strings.HasPrefix(out[i+1], "*")) {
			continue
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

// TestChainNameHash computes a chain name independently from kube-proxy's
// documented algorithm — "KUBE-SVC-" + the first 16 characters of
// base32(sha256(servicePortName + protocol)) — and checks it against the name
// kube-proxy's own tests print and the name in the Backend's ruleset.
func TestChainNameHash(t *testing.T) {
	// From k8s.io/kubernetes v1.37.2 pkg/proxy/iptables/proxier_test.go.
	const kubeProxySVC = "KUBE-SVC-XPGD46QRK7WJZT7O" // ns1/svc1:p80, tcp
	const kubeProxySEP = "KUBE-SEP-SXIVWICOYRO3J4NJ" // ... endpoint 10.180.0.1:80
	if got := "KUBE-SVC-" + independentHash("ns1/svc1:p80tcp"); got != kubeProxySVC {
		t.Fatalf("independent hash = %s, kube-proxy's = %s", got, kubeProxySVC)
	}
	if got := "KUBE-SEP-" + independentHash("ns1/svc1:p80tcp10.180.0.1:80"); got != kubeProxySEP {
		t.Fatalf("independent endpoint hash = %s, kube-proxy's = %s", got, kubeProxySEP)
	}
	env := newTestEnv(t, nil)
	env.sync(newSnap(goldenNodeIP).add(&proxy.ServicePort{
		Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.41"), Port: 80,
	}, ep("10.180.0.1:80", "node-b")).s)
	want := []string{
		`-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j ` + kubeProxySVC,
		`-A ` + kubeProxySVC + ` -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j ` + kubeProxySEP,
	}
	dump := env.fake.Dump()
	for _, w := range want {
		if !strings.Contains(dump, w+"\n") {
			t.Errorf("ruleset lacks %q:\n%s", w, dump)
		}
	}
	// An unnamed port hashes "ns/name" + protocol.
	if got, want := portProtoHash(spn("default", "nginx", "", corev1.ProtocolUDP), "udp"), independentHash("default/nginxudp"); got != want {
		t.Errorf("unnamed port: hash %s, want %s", got, want)
	}
}

// independentHash is the documented algorithm, written out again.
func independentHash(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	sum := sha256Sum(s)
	var out []byte
	var acc, bits uint
	for _, c := range sum {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 5 && len(out) < 16 {
			out = append(out, alphabet[(acc>>(bits-5))&31])
			bits -= 5
		}
	}
	return string(out)
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "ClusterIP with two endpoints",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.41"), Port: 80,
			}, ep("10.180.0.1:80", testNode), ep("10.180.0.2:80", "node-b")).s,
			want: goldenClusterIP,
		},
		{
			name: "NodePort",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns3", "svc3", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
				ClusterIPs: addrs("172.30.0.43"), Port: 80, NodePort: 3003,
			}, ep("10.180.0.3:80", "node-b")).s,
			want: goldenNodePort,
		},
		{
			name: "LoadBalancer with loadBalancerSourceRanges",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns5", "svc5", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
				ClusterIPs: addrs("172.30.0.45"), Port: 80, NodePort: 3002,
				LoadBalancerIPs:          addrs("203.0.113.5"),
				LoadBalancerSourceRanges: prefixes("198.51.100.0/25", "192.168.0.0/16"),
			}, ep("10.180.0.3:80", "node-b")).s,
			want: goldenLoadBalancer,
		},
		{
			name: "externalIPs",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns4", "svc4", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.44"), Port: 80,
				ExternalIPs: addrs("192.0.2.33"),
			}, ep("10.180.0.4:80", "node-b"), ep("10.180.0.5:80", testNode)).s,
			want: goldenExternalIPs,
		},
		{
			name: "no endpoints: REJECT",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns6", "svc6", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
				ClusterIPs: addrs("172.30.0.46"), Port: 80, NodePort: 3006,
				ExternalIPs: addrs("192.0.2.46"), LoadBalancerIPs: addrs("203.0.113.46"),
			}).s,
			want: goldenNoEndpoints,
		},
		{
			name: "ClientIP affinity",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns5", "svc5", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.45"), Port: 80,
				AffinityTimeout: 10800 * time.Second,
			}, ep("10.180.0.3:80", "node-b"), ep("10.180.0.4:80", "node-b")).s,
			want: goldenAffinity,
		},
		{
			name: "externalTrafficPolicy Local",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns2", "svc2", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
				ClusterIPs: addrs("172.30.0.42"), Port: 80, NodePort: 3001, HealthCheckNodePort: 30000,
				ExternalIPs: addrs("192.0.2.22"), LoadBalancerIPs: addrs("203.0.113.4"),
				ExternalPolicyLocal: true,
			}, ep("10.180.0.2:80", testNode), ep("10.180.0.9:80", "node-b")).s,
			want: goldenLocal,
		},
		{
			name: "externalTrafficPolicy Local without local endpoints: DROP",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns2", "svc2", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
				ClusterIPs: addrs("172.30.0.42"), Port: 80, NodePort: 3001, HealthCheckNodePort: 30000,
				ExternalPolicyLocal: true,
			}, ep("10.180.0.9:80", "node-b")).s,
			want: goldenLocalNone,
		},
		{
			name: "internalTrafficPolicy Local, UDP",
			snap: newSnap(goldenNodeIP).add(&proxy.ServicePort{
				Name: spn("ns7", "dns", "dns", corev1.ProtocolUDP), ClusterIPs: addrs("172.30.0.10"), Port: 53,
				InternalPolicyLocal: true,
			}, ep("10.180.0.7:53", testNode), ep("10.180.0.8:53", "node-b")).s,
			want: goldenInternalLocal,
		},
	}
}

func TestGoldenIPv6(t *testing.T) {
	cfg := func(c *Config) {
		c.Family = corev1.IPv6Protocol
		c.ClusterCIDRs = prefixes("10.0.0.0/8", "fd00:10::/64")
		c.ServiceCIDRs = prefixes("172.30.0.0/16", "fd00:30::/112")
	}
	env := newTestEnv(t, cfg)
	env.sync(goldenIPv6Snapshot())
	assertLines(t, "IPv6 ruleset", env.fake.Dump(), goldenIPv6)
	if len(env.sysctl.set) != 0 {
		t.Errorf("IPv6 wrote sysctls %v; localhost NodePorts are IPv4 only", env.sysctl.set)
	}
}

// goldenIPv6Snapshot is a dual-stack NodePort Service with an external IP of
// each family and endpoints of both, and an IPv4-only Service.
func goldenIPv6Snapshot() *proxy.Snapshot {
	return newSnap(goldenNodeIP, "2001:db8::2").add(&proxy.ServicePort{
		Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
		ClusterIPs: addrs("172.30.0.41", "fd00:30::41"), Port: 80, NodePort: 3001,
		ExternalIPs: addrs("192.0.2.1", "2001:db8:1::1"),
	}, ep("10.180.0.1:80", testNode), ep("[fd00:10::1]:80", testNode), ep("[fd00:10::2]:80", "node-b")).
		add(&proxy.ServicePort{Name: spn("ns2", "v4only", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.42"), Port: 80}).s
}

// sha256Sum is crypto/sha256 without the helper under test.
func sha256Sum(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// TestRestoreInputIsStable: the same Snapshot gives the same restore input
// whatever the order of map iteration.
func TestRestoreInputIsStable(t *testing.T) {
	var inputs []string
	for range 3 {
		env := newTestEnv(t, goldenConfig)
		s := newSnap(goldenNodeIP)
		for _, c := range goldenCases() {
			for name, sp := range c.snap.Services {
				s.add(sp, c.snap.Endpoints[name]...)
			}
		}
		env.sync(s.s)
		if err := env.b.Sync(context.Background(), s.s); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, env.lastRestore())
	}
	if !slices.Equal(inputs[:2], inputs[1:]) {
		t.Errorf("restore input differs between runs")
	}
}
