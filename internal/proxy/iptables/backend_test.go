package iptables

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "no family", cfg: Config{}},
		{name: "bad family", cfg: Config{Family: "IPv5"}},
		{name: "masquerade bit", cfg: Config{Family: corev1.IPv4Protocol, MasqueradeBit: 32}},
		{name: "nodePortAddresses", cfg: Config{Family: corev1.IPv4Protocol, NodePortAddresses: []string{"eth0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Executor = NewFake()
			if _, err := New(tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// nodePortJumps returns nat KUBE-SERVICES's rules that are not a Service's.
func nodePortJumps(env *testEnv) []string {
	var out []string
	for _, r := range env.fake.Rules(TableNAT, kubeServicesChain) {
		if !strings.Contains(r, " cluster IP") {
			out = append(out, r)
		}
	}
	return out
}

func TestNodePortAddresses(t *testing.T) {
	const (
		c      = `-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" `
		guard4 = `-A KUBE-SERVICES -m comment --comment "no nodeports on loopback addresses" -d 127.0.0.0/8 -j RETURN`
	)
	no := false
	for _, tc := range []struct {
		name      string
		family    corev1.IPFamily
		addrs     []string
		localhost *bool
		want      []string
		routeLo   bool
	}{
		{name: "empty: every local address, loopback too", addrs: nil, routeLo: true,
			want: []string{c + "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"}},
		{name: "empty without localhost NodePorts", addrs: nil, localhost: &no,
			want: []string{c + "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"}},
		{name: "primary: the node's addresses and loopback", addrs: []string{"primary"}, routeLo: true,
			want: []string{c + "-d 192.168.0.2 -j KUBE-NODEPORTS", c + "-d 127.0.0.0/8 -j KUBE-NODEPORTS"}},
		{name: "127.0.0.0/8 only (seed 003)", addrs: []string{"127.0.0.0/8"}, routeLo: true,
			want: []string{c + "-d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"}},
		{name: "a CIDR: its local addresses, no loopback", addrs: []string{"192.168.0.0/16", "fd00::/8"},
			want: []string{c + "-d 192.168.0.0/16 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"}},
		{name: "a CIDR over loopback without localhost NodePorts", addrs: []string{"64.0.0.0/2"}, localhost: &no,
			want: []string{guard4, c + "-d 64.0.0.0/2 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"}},
		{name: "0.0.0.0/0", addrs: []string{"0.0.0.0/0", "10.0.0.0/8"}, routeLo: true,
			want: []string{c + "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"}},
		{name: "only the other family: no NodePorts", addrs: []string{"::/0"}, want: nil},
		{name: "IPv6 empty: no ::1", family: corev1.IPv6Protocol,
			want: []string{c + "-m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS"}},
		{name: "IPv6 ::1/128: guarded", family: corev1.IPv6Protocol, addrs: []string{"::1/128"},
			want: []string{`-A KUBE-SERVICES -m comment --comment "no nodeports on loopback addresses" -d ::1/128 -j RETURN`,
				c + "-d ::1/128 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(cfg *Config) {
				if tc.family != "" {
					cfg.Family = tc.family
				}
				cfg.NodePortAddresses = tc.addrs
				cfg.LocalhostNodePorts = tc.localhost
			})
			env.sync(newSnap(goldenNodeIP, "2001:db8::2").s)
			got := nodePortJumps(env)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("KUBE-SERVICES NodePort rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			_, routeLo := env.sysctl.set[routeLocalnetSysctl]
			guard := env.fake.Rules(TableFilter, kubeletFirewallChain) != nil
			if routeLo != tc.routeLo || guard != tc.routeLo {
				t.Errorf("route_localnet set %v, KUBE-FIREWALL %v; want both %v", routeLo, guard, tc.routeLo)
			}
		})
	}
}

func TestNodePortsOffForFamily(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.NodePortAddresses = []string{"fd00::/8"} })
	env.sync(manyServices(1))
	if r := env.fake.Rules(TableNAT, kubeNodePortsChain); len(r) != 0 {
		t.Errorf("KUBE-NODEPORTS has rules with NodePorts off for IPv4: %v", r)
	}
	for _, c := range env.fake.Chains(TableNAT) {
		if strings.HasPrefix(c, externalChainPrefix) {
			t.Errorf("%s exists: a NodePort Service without node ports needs no external chain", c)
		}
	}
}

func TestMasqueradeAllAndBit(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MasqueradeAll, c.MasqueradeBit = true, 3 })
	s := newSnap(goldenNodeIP).add(&proxy.ServicePort{
		Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.41"), Port: 80,
	}, ep("10.180.0.1:80", "node-b")).s
	env.sync(s)
	dump := env.fake.Dump()
	for _, want := range []string{
		`-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ`,
		`-A KUBE-MARK-MASQ -j MARK --or-mark 0x8`,
		`-A KUBE-POSTROUTING -m mark ! --mark 0x8/0x8 -j RETURN`,
	} {
		if !strings.Contains(dump, want+"\n") {
			t.Errorf("ruleset lacks %q", want)
		}
	}
}

func TestNoClusterCIDRNoMasqueradeRule(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.ClusterCIDRs = nil })
	s := newSnap(goldenNodeIP).add(&proxy.ServicePort{
		Name: spn("ns2", "svc2", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort, ExternalPolicyLocal: true,
		ClusterIPs: addrs("172.30.0.42"), Port: 80, NodePort: 3001,
	}, ep("10.180.0.2:80", testNode)).s
	env.sync(s)
	dump := env.fake.Dump()
	if strings.Contains(dump, "cluster IP\" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s") || strings.Contains(dump, "pod traffic for") {
		t.Errorf("rules that need a local-traffic detector without one:\n%s", dump)
	}
}

// TestCanary: a sync without changes runs no restore while the canary chain
// is there, and rebuilds everything once it has gone.
func TestCanary(t *testing.T) {
	env := newTestEnv(t, nil)
	s := manyServices(2)
	env.sync(s)
	n := len(env.fake.Restores())
	s.Full = false
	env.sync(s)
	if got := len(env.fake.Restores()); got != n {
		t.Fatalf("a sync without changes ran %d restores", got-n)
	}
	// Someone flushes and deletes everything (firewalld reload, iptables -F -X).
	if err := env.fake.Load([]byte("*filter\nCOMMIT\n*nat\nCOMMIT\n*mangle\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	env.sync(s)
	if sum := summarize(env.lastRestore()); len(sum.declared["mangle"]) != 1 || sum.inserted == 0 {
		t.Errorf("no full resync after the canary went:\n%s", env.lastRestore())
	}
	fresh := newTestEnv(t, nil)
	s.Full = true
	fresh.sync(s)
	assertLines(t, "ruleset after the resync", env.fake.Dump(), fresh.fake.Dump())
}

// TestFullSyncAdoptsAnEarlierRun: a restarted proxy's full sync deletes the
// per-Service chains nobody owns any more, keeps the rest of the tables (other
// software's chains and rules) and adds no second copy of the jumps.
func TestFullSyncAdoptsAnEarlierRun(t *testing.T) {
	env := newTestEnv(t, nil)
	s := manyServices(3)
	env.sync(s)
	other := "*filter\n:MY-CHAIN - [0:0]\n-A MY-CHAIN -s 192.0.2.7 -j DROP\n-I INPUT -j MY-CHAIN\nCOMMIT\n*nat\n:MY-NAT - [0:0]\n-A PREROUTING -d 192.0.2.8 -j MY-NAT\nCOMMIT\n"
	if err := env.fake.Restore(context.Background(), []byte(other)); err != nil {
		t.Fatal(err)
	}
	before := env.fake.Dump()

	b2, err := New(Config{Family: corev1.IPv4Protocol, ClusterCIDRs: prefixes("10.0.0.0/8"), Executor: env.fake, Sysctl: env.sysctl})
	if err != nil {
		t.Fatal(err)
	}
	gone := spn("ns", "svc-0002", "http", corev1.ProtocolTCP)
	delete(s.Services, gone)
	delete(s.Endpoints, gone)
	if err := b2.Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	after := env.fake.Dump()
	for _, c := range []string{portProtoHash(gone, "tcp")} {
		if strings.Contains(after, c) {
			t.Errorf("chains of the removed Service (%s) left:\n%s", c, after)
		}
	}
	for _, l := range strings.Split(before, "\n") {
		if strings.Contains(l, "MY-") && !strings.Contains(after, l) {
			t.Errorf("line of other software lost: %s", l)
		}
	}
	if n := strings.Count(after, "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"); n != 1 {
		t.Errorf("%d jumps from PREROUTING to KUBE-SERVICES, want 1", n)
	}
}

// TestLocalhostNodePortsTurnedOff: a restart without localhost NodePorts takes
// the martian guard (chain and jumps) away.
func TestLocalhostNodePortsTurnedOff(t *testing.T) {
	env := newTestEnv(t, nil)
	env.sync(manyServices(1))
	if env.fake.Rules(TableFilter, kubeletFirewallChain) == nil {
		t.Fatal("no KUBE-FIREWALL with localhost NodePorts")
	}
	no := false
	b2, err := New(Config{Family: corev1.IPv4Protocol, LocalhostNodePorts: &no, Executor: env.fake, Sysctl: env.sysctl})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Sync(context.Background(), manyServices(1)); err != nil {
		t.Fatal(err)
	}
	if dump := env.fake.Dump(); strings.Contains(dump, kubeletFirewallChain) {
		t.Errorf("KUBE-FIREWALL left:\n%s", dump)
	}
}

// TestCleanup removes every KUBE-* chain and the jumps to them, and nothing
// else; a second Cleanup has nothing to do.
func TestCleanup(t *testing.T) {
	env := newTestEnv(t, goldenConfig)
	s := newSnap(goldenNodeIP)
	for _, c := range goldenCases() {
		for name, sp := range c.snap.Services {
			s.add(sp, c.snap.Endpoints[name]...)
		}
	}
	env.sync(s.s)
	other := "*filter\n:MY-CHAIN - [0:0]\n-A MY-CHAIN -s 192.0.2.7 -j DROP\n-A INPUT -j MY-CHAIN\nCOMMIT\n"
	if err := env.fake.Restore(context.Background(), []byte(other)); err != nil {
		t.Fatal(err)
	}
	if err := env.b.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	dump := env.fake.Dump()
	if strings.Contains(dump, "KUBE-") {
		t.Errorf("KUBE- left after Cleanup:\n%s", dump)
	}
	if !strings.Contains(dump, "-A INPUT -j MY-CHAIN\n") || !strings.Contains(dump, "-A MY-CHAIN -s 192.0.2.7 -j DROP\n") {
		t.Errorf("Cleanup removed other software's rules:\n%s", dump)
	}
	n := len(env.fake.Restores())
	if err := env.b.Cleanup(context.Background()); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	if len(env.fake.Restores()) != n {
		t.Errorf("second Cleanup ran a restore")
	}
	// And the Backend comes back with a full sync.
	env.sync(s.s)
	if !strings.Contains(env.fake.Dump(), "KUBE-SVC-XPGD46QRK7WJZT7O") {
		t.Errorf("no rules after Cleanup and Sync")
	}
}

// TestServiceOfOtherFamilyOnly: an IPv4-only Service has nothing in IPv6, and
// a Service that loses its IPv6 ClusterIP loses its ip6tables chains.
func TestServiceOfOtherFamilyOnly(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Family = corev1.IPv6Protocol })
	name := spn("ns", "ds", "", corev1.ProtocolTCP)
	s := newSnap("2001:db8::2").add(&proxy.ServicePort{Name: name, ClusterIPs: addrs("172.30.0.1", "fd00::1"), Port: 80},
		ep("[fd00:10::1]:80", "node-b"), ep("10.0.0.1:80", "node-b")).s
	env.sync(s)
	if !strings.Contains(env.fake.Dump(), "DNAT --to-destination [fd00:10::1]:80") || strings.Contains(env.fake.Dump(), "10.0.0.1") {
		t.Fatalf("IPv6 ruleset wrong:\n%s", env.fake.Dump())
	}
	s.Full = false
	s.Services[name] = &proxy.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, ClusterIPs: addrs("172.30.0.1"), Port: 80}
	s.Changed = map[proxy.ServicePortName]bool{name: true}
	env.sync(s)
	if dump := env.fake.Dump(); strings.Contains(dump, "KUBE-SVC-") || strings.Contains(dump, "KUBE-SEP-") {
		t.Errorf("chains left for a Service without an IPv6 ClusterIP:\n%s", dump)
	}
}

// TestSCTPAndSameNumberOnTCPAndUDP: protocols are matched by name; the same
// port number on TCP and UDP makes two ServicePorts with chains of their own.
func TestSCTPAndSameNumberOnTCPAndUDP(t *testing.T) {
	env := newTestEnv(t, nil)
	s := newSnap(goldenNodeIP).
		add(&proxy.ServicePort{Name: spn("ns", "dns", "dns-tcp", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.10"), Port: 53}, ep("10.1.0.1:53", "node-b")).
		add(&proxy.ServicePort{Name: spn("ns", "dns", "dns", corev1.ProtocolUDP), ClusterIPs: addrs("172.30.0.10"), Port: 53}, ep("10.1.0.1:53", "node-b")).
		add(&proxy.ServicePort{Name: spn("ns", "sig", "", corev1.ProtocolSCTP), ClusterIPs: addrs("172.30.0.11"), Port: 3868}, ep("10.1.0.2:3868", "node-b")).s
	env.sync(s)
	dump := env.fake.Dump()
	for _, want := range []string{
		`-m tcp -p tcp -d 172.30.0.10 --dport 53 -j KUBE-SVC-`,
		`-m udp -p udp -d 172.30.0.10 --dport 53 -j KUBE-SVC-`,
		`-m sctp -p sctp -d 172.30.0.11 --dport 3868 -j KUBE-SVC-`,
		`-m sctp -p sctp -j DNAT --to-destination 10.1.0.2:3868`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
}

// TestTerminatingFallback: with no ready endpoint, the serving and terminating
// ones get the traffic.
func TestTerminatingFallback(t *testing.T) {
	env := newTestEnv(t, nil)
	term := ep("10.1.0.1:80", "node-b")
	term.Ready, term.Serving, term.Terminating = false, true, true
	notServing := ep("10.1.0.2:80", "node-b")
	notServing.Ready, notServing.Serving, notServing.Terminating = false, false, true
	env.sync(newSnap(goldenNodeIP).add(&proxy.ServicePort{Name: spn("ns", "t", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.30.0.9"), Port: 80}, term, notServing).s)
	dump := env.fake.Dump()
	if !strings.Contains(dump, "--to-destination 10.1.0.1:80") || strings.Contains(dump, "10.1.0.2") {
		t.Errorf("want only the serving terminating endpoint:\n%s", dump)
	}
}

// TestBatchedCleanup: with a Batcher, Cleanup of 1,000 Services (4,000
// chains of theirs) flushes and deletes their chains in restores of
// cleanupBatchChains, and leaves what the one-restore Cleanup leaves.
func TestBatchedCleanup(t *testing.T) {
	env := newBatchedEnv(t, 100)
	env.sync(manyServices(1000))
	other := "*nat\n:MY-CHAIN - [0:0]\n-A MY-CHAIN -s 192.0.2.7 -j RETURN\n-A PREROUTING -j MY-CHAIN\nCOMMIT\n"
	if err := env.fake.Restore(context.Background(), []byte(other)); err != nil {
		t.Fatal(err)
	}
	n := len(env.fake.Restores())
	if err := env.b.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	// One restore to unhook and flush, 4 to flush and 4 to delete 4,000
	// chains, one to delete the fixed nat chains.
	if got := len(env.fake.Restores()) - n; got != 10 {
		t.Errorf("Cleanup ran %d restores, want 10", got)
	}
	dump := env.fake.Dump()
	if strings.Contains(dump, "KUBE-") {
		t.Errorf("KUBE- left after Cleanup:\n%s", dump)
	}
	if !strings.Contains(dump, "-A PREROUTING -j MY-CHAIN\n") || !strings.Contains(dump, "-A MY-CHAIN -s 192.0.2.7 -j RETURN\n") {
		t.Errorf("Cleanup removed other software's rules:\n%s", dump)
	}
}
