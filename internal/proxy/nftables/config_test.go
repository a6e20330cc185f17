package nftables

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

func TestNewInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "no family", cfg: Config{}},
		{name: "inet family", cfg: Config{Family: knftables.InetFamily}},
		{name: "masquerade bit out of range", cfg: Config{Family: knftables.IPv4Family, MasqueradeBit: 32}},
		{name: "bad nodePortAddresses", cfg: Config{Family: knftables.IPv4Family, NodePortAddresses: []string{"10.0.0.1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.NFT = knftables.NewFake(knftables.IPv4Family, DefaultTableName)
			if _, err := New(tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New = %v; want an ErrInvalidConfig", err)
			}
		})
	}
}

func TestParseNodePortAddresses(t *testing.T) {
	p := func(ss ...string) []netip.Prefix {
		if len(ss) == 0 {
			return nil
		}
		return prefixes(ss...)
	}
	for _, tc := range []struct {
		name      string
		in        []string
		ipv6      bool
		localhost bool
		want      nodePortAddrs
	}{
		{name: "empty is primary, with localhost", in: nil, localhost: true,
			want: nodePortAddrs{enabled: true, primary: true, loopback: p("127.0.0.0/8")}},
		{name: "primary without localhost", in: []string{"primary"},
			want: nodePortAddrs{enabled: true, primary: true}},
		{name: "match all", in: []string{"0.0.0.0/0", "::/0"}, localhost: true,
			want: nodePortAddrs{enabled: true, matchAll: true, loopback: p("127.0.0.0/8"), overlapsLoopback: true}},
		{name: "CIDRs, nested and duplicate ones dropped", in: []string{"192.168.0.0/24", "192.168.0.0/16", "10.0.0.0/8", "10.0.0.0/8", "fd00::/64"},
			want: nodePortAddrs{enabled: true, cidrs: p("192.168.0.0/16", "10.0.0.0/8")}},
		{name: "loopback only (seed-003)", in: []string{"127.0.0.0/8"}, localhost: true,
			want: nodePortAddrs{enabled: true, cidrs: p("127.0.0.0/8"), loopback: p("127.0.0.0/8"), overlapsLoopback: true}},
		{name: "one loopback address", in: []string{"127.0.0.1/32", "192.168.0.0/16"}, localhost: true,
			want: nodePortAddrs{enabled: true, cidrs: p("127.0.0.1/32", "192.168.0.0/16"), loopback: p("127.0.0.1/32"), overlapsLoopback: true}},
		{name: "a CIDR holding 127/8", in: []string{"64.0.0.0/2"}, localhost: true,
			want: nodePortAddrs{enabled: true, cidrs: p("64.0.0.0/2"), loopback: p("127.0.0.0/8"), overlapsLoopback: true}},
		{name: "other family only: disabled", in: []string{"fd00::/64"}, localhost: true,
			want: nodePortAddrs{}},
		{name: "IPv6: no localhost", in: nil, ipv6: true, localhost: true,
			want: nodePortAddrs{enabled: true, primary: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNodePortAddresses(tc.in, tc.ipv6, tc.localhost)
			if err != nil {
				t.Fatal(err)
			}
			if got.enabled != tc.want.enabled || got.primary != tc.want.primary || got.matchAll != tc.want.matchAll ||
				got.overlapsLoopback != tc.want.overlapsLoopback || !slices.Equal(got.cidrs, tc.want.cidrs) || !slices.Equal(got.loopback, tc.want.loopback) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestNodePortRules: the NodePort dispatch rule and nodeport-ips for each kind
// of nodePortAddresses.
func TestNodePortRules(t *testing.T) {
	for _, tc := range []struct {
		name      string
		addrs     []string
		nodeIPs   []string
		wantRule  string // in the services chain; "" for none
		wantElems []string
	}{
		{name: "primary", nodeIPs: []string{"192.168.0.2", "2001:db8::2", "127.0.0.1"},
			wantRule: "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports", wantElems: []string{"192.168.0.2"}},
		{name: "CIDRs", addrs: []string{"192.168.0.0/24", "10.1.0.0/16"}, nodeIPs: []string{"192.168.0.2"},
			wantRule:  "fib daddr type local ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
			wantElems: []string{"10.1.0.0/16", "192.168.0.0/24"}},
		{name: "primary and a CIDR holding the node address", addrs: []string{"primary", "192.168.0.0/24"}, nodeIPs: []string{"192.168.0.2", "172.16.0.2"},
			wantRule:  "fib daddr type local ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
			wantElems: []string{"172.16.0.2", "192.168.0.0/24"}},
		{name: "every local address", addrs: []string{"0.0.0.0/0"},
			wantRule: "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"},
		{name: "loopback and more", addrs: []string{"127.0.0.0/8", "192.168.0.0/24"},
			wantRule:  "ip daddr != 127.0.0.0/8 fib daddr type local ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
			wantElems: []string{"127.0.0.0/8", "192.168.0.0/24"}},
		{name: "disabled", addrs: []string{"fd00::/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.NodePortAddresses = tc.addrs })
			env.sync(newSnap(tc.nodeIPs...).s)
			env.fake.RLock()
			defer env.fake.RUnlock()
			var rules []string
			for _, r := range env.fake.Table.Chains[servicesChain].Rules {
				if strings.Contains(r.Rule, serviceNodePortsMap) {
					rules = append(rules, r.Rule)
				}
			}
			if tc.wantRule == "" && len(rules) != 0 || tc.wantRule != "" && !slices.Equal(rules, []string{tc.wantRule}) {
				t.Errorf("NodePort rules %q; want %q", rules, tc.wantRule)
			}
			var elems []string
			for _, e := range env.fake.Table.Sets[nodePortIPsSet].Elements {
				elems = append(elems, e.Key[0])
			}
			slices.Sort(elems)
			if !slices.Equal(elems, tc.wantElems) {
				t.Errorf("nodeport-ips %q; want %q", elems, tc.wantElems)
			}
		})
	}
}

// TestRouteLocalnet: the full sync of an IPv4 Backend with localhost NodePorts
// sets route_localnet; without them, or in IPv6, nothing is written.
func TestRouteLocalnet(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name   string
		config func(*Config)
		want   map[string]string
	}{
		{name: "IPv4 default", want: map[string]string{routeLocalnetSysctl: "1"}},
		{name: "IPv4 LocalhostNodePorts false", config: func(c *Config) { c.LocalhostNodePorts = &off }},
		{name: "IPv4 nodePortAddresses without loopback", config: func(c *Config) { c.NodePortAddresses = []string{"192.168.0.0/16"} }},
		{name: "IPv6", config: func(c *Config) {
			c.Family = knftables.IPv6Family
			c.ClusterCIDRs, c.ServiceCIDRs = prefixes("fd00:10::/64"), prefixes("fd00:30::/108")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, tc.config)
			env.sync(newSnap(goldenNodeIP).s)
			if len(env.sysctl.set) != len(tc.want) || env.sysctl.set[routeLocalnetSysctl] != tc.want[routeLocalnetSysctl] {
				t.Errorf("sysctls %v; want %v", env.sysctl.set, tc.want)
			}
			if got := strings.Contains(env.fake.Dump(), "block incoming localnet connections"); got != (len(tc.want) > 0) {
				t.Errorf("martian-drop rule present: %v; want %v", got, len(tc.want) > 0)
			}
		})
	}
}

// TestCleanup deletes the table, and succeeds when there is none.
func TestCleanup(t *testing.T) {
	env := newTestEnv(t, nil)
	env.sync(allGoldenIPv4())
	for range 2 {
		if err := env.b.Cleanup(context.Background()); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if d := env.fake.Dump(); d != "" {
			t.Fatalf("after Cleanup:\n%s", d)
		}
	}
	// The next Sync is a full one that re-creates everything.
	s := allGoldenIPv4()
	s.Full = false
	env.sync(s)
	if !strings.Contains(env.fake.Dump(), "add table ip kubesvc") {
		t.Errorf("the table was not re-created")
	}
}
