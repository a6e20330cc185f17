package proxyconfig

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const header = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"

// An empty configuration is kubesvc's defaults.
func TestDefaults(t *testing.T) {
	l, err := Parse([]byte(header))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Mode: ModeNFTables, HealthzBindAddress: "0.0.0.0:10256", MetricsBindAddress: "127.0.0.1:10249",
		DetectLocalMode: LocalModeClusterCIDR, MasqueradeBit: 14, LocalhostNodePorts: true,
		SyncPeriod: 30 * time.Second, MinSyncPeriod: DefaultNFTablesMinSyncPeriod,
		Conntrack: Conntrack{MaxPerCore: 32768, Min: 131072, TCPEstablishedTimeout: 24 * time.Hour, TCPCloseWaitTimeout: time.Hour},
	}
	if d := cmp.Diff(want, l.Config); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	if v := l.Versioned; v.ConfigSyncPeriod.Duration != 15*time.Minute || *v.OOMScoreAdj != -999 || v.ClientConnection.QPS != 5 || v.BindAddress != "0.0.0.0" {
		t.Errorf("versioned defaults: %+v", v)
	}
	// no clusterCIDR: no local-traffic detection, and a warning says so
	if len(l.Warnings) != 1 || !strings.Contains(l.Warnings[0], "clusterCIDR is empty") {
		t.Errorf("warnings %q", l.Warnings)
	}
}

// Valid configurations and what they complete to: the mode's section gives the
// periods and masquerade settings, keywords become CIDRs.
func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		check    func(c Config) string
	}{
		{
			name: "iptables reads its section",
			in:   "mode: iptables\niptables:\n  syncPeriod: 10s\n  minSyncPeriod: 0s\n  masqueradeAll: true\n  masqueradeBit: 3\n  localhostNodePorts: false\nnftables:\n  syncPeriod: 1h\n  masqueradeBit: 0\n",
			check: func(c Config) string {
				if c.Mode != ModeIPTables || c.SyncPeriod != 10*time.Second || c.MinSyncPeriod != time.Second ||
					!c.MasqueradeAll || c.MasqueradeBit != 3 || c.LocalhostNodePorts {
					return "iptables section not used"
				}
				return ""
			},
		},
		{
			name: "nftables reads its section",
			in:   "mode: nftables\nnftables:\n  syncPeriod: 1m\n  minSyncPeriod: 5s\n  masqueradeAll: true\n  masqueradeBit: 20\niptables:\n  masqueradeAll: false\n",
			check: func(c Config) string {
				if c.SyncPeriod != time.Minute || c.MinSyncPeriod != 5*time.Second || !c.MasqueradeAll || c.MasqueradeBit != 20 {
					return "nftables section not used"
				}
				return ""
			},
		},
		{
			name: "nodePortAddresses keywords",
			in:   "nodePortAddresses: [primary, localhost, all, 192.0.2.0/24]\n",
			check: func(c Config) string {
				if d := cmp.Diff([]string{"primary", "127.0.0.0/8", "::1/128", "0.0.0.0/0", "::/0", "192.0.2.0/24"}, c.NodePortAddresses); d != "" {
					return d
				}
				return ""
			},
		},
		{
			name: "dual-stack clusterCIDR, NodeCIDR",
			in:   "clusterCIDR: 10.244.0.1/16,fd00::/48\ndetectLocalMode: NodeCIDR\n",
			check: func(c Config) string {
				if c.DetectLocalMode != LocalModeNodeCIDR || len(c.ClusterCIDRs) != 2 || c.ClusterCIDRs[0] != netip.MustParsePrefix("10.244.0.0/16") {
					return "clusterCIDR or detectLocalMode"
				}
				return ""
			},
		},
		{
			name: "bindAddress, ports added, hostnameOverride",
			in:   "bindAddress: 192.0.2.7\nhealthzBindAddress: 192.0.2.7\nmetricsBindAddress: 0.0.0.0\nhostnameOverride: Node-A\nbindAddressHardFail: true\n",
			check: func(c Config) string {
				if len(c.NodeIPOverride) != 1 || c.NodeIPOverride[0] != netip.MustParseAddr("192.0.2.7") ||
					c.HealthzBindAddress != "192.0.2.7:10256" || c.MetricsBindAddress != "0.0.0.0:10249" ||
					c.HostnameOverride != "node-a" || !c.BindAddressHardFail {
					return "addresses"
				}
				return ""
			},
		},
		{
			name: "IPv6 bindAddress moves the default addresses",
			in:   "bindAddress: \"::\"\n",
			check: func(c Config) string {
				if c.HealthzBindAddress != "[::]:10256" || c.MetricsBindAddress != "[::1]:10249" || len(c.NodeIPOverride) != 0 {
					return "IPv6 defaults"
				}
				return ""
			},
		},
		{
			name: "conntrack",
			in:   "conntrack:\n  maxPerCore: 0\n  tcpEstablishedTimeout: 2h\n  tcpCloseWaitTimeout: 0s\n  tcpBeLiberal: true\n  udpTimeout: 30s\n  udpStreamTimeout: 2m\n",
			check: func(c Config) string {
				want := []Sysctl{
					{"net.netfilter.nf_conntrack_tcp_timeout_established", "7200"},
					{"net.netfilter.nf_conntrack_tcp_be_liberal", "1"},
					{"net.netfilter.nf_conntrack_udp_timeout", "30"},
					{"net.netfilter.nf_conntrack_udp_timeout_stream", "120"},
				}
				return cmp.Diff(want, c.Conntrack.Sysctls())
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse([]byte(header + tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(l.Config); msg != "" {
				t.Errorf("%s: %+v", msg, l.Config)
			}
		})
	}
}

// Invalid values are refused with kube-proxy's messages (where it has one),
// every problem listed, the field named by its YAML path.
func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{name: "ipvs", in: "mode: ipvs\n", want: []string{`mode: Invalid value: "ipvs": IPVS mode is not supported: kube-proxy deprecated it in 1.35`}},
		{name: "unknown mode", in: "mode: userspace\n", want: []string{`mode: Invalid value: "userspace": must be iptables, nftables or blank`}},
		{name: "nodePortAddresses", in: "nodePortAddresses: [127.0.0.0/8, 10.20.30.40, primary, nodes]\n", want: []string{
			`nodePortAddresses[1]: Invalid value: "10.20.30.40": must be a valid CIDR`,
			`nodePortAddresses[3]: Invalid value: "nodes": must be a valid CIDR`}},
		{name: "clusterCIDR", in: "clusterCIDR: 10.244.0.0/33\n", want: []string{`clusterCIDR: Invalid value: "10.244.0.0/33": must be a valid CIDR block`}},
		{name: "clusterCIDR same family twice", in: "clusterCIDR: 10.0.0.0/8,192.168.0.0/16\n", want: []string{"must be either a single CIDR or a dual-stack pair"}},
		{name: "syncPeriod below minSyncPeriod", in: "nftables:\n  syncPeriod: 1s\n  minSyncPeriod: 5s\n", want: []string{
			`nftables.syncPeriod: Invalid value: "1s": must be greater than or equal to nftables.minSyncPeriod (5s)`}},
		{name: "negative periods", in: "mode: iptables\niptables:\n  syncPeriod: -1s\n  minSyncPeriod: -2s\n", want: []string{
			`iptables.syncPeriod: Invalid value: "-1s": must be greater than 0`,
			`iptables.minSyncPeriod: Invalid value: "-2s": must be greater than or equal to 0`}},
		{name: "masqueradeBit out of range", in: "iptables:\n  masqueradeBit: 32\n", want: []string{`iptables.masqueradeBit: Invalid value: 32: must be within the range [0, 31]`}},
		{name: "masqueradeBit 0 in use", in: "nftables:\n  masqueradeBit: 0\n", want: []string{`nftables.masqueradeBit: Invalid value: 0: bit 0 is not supported`}},
		{name: "BridgeInterface", in: "detectLocalMode: BridgeInterface\n", want: []string{`detectLocalMode: Invalid value: "BridgeInterface": not supported by kubesvc`}},
		{name: "unknown detectLocalMode", in: "detectLocalMode: Pods\n", want: []string{`detectLocalMode: Unsupported value: "Pods": supported values: "ClusterCIDR", "NodeCIDR"`}},
		{name: "bindAddress", in: "bindAddress: node-a\n", want: []string{`bindAddress: Invalid value: "node-a": not a valid textual representation of an IP address`}},
		{name: "metricsBindAddress", in: "metricsBindAddress: localhost:10249\n", want: []string{`metricsBindAddress: Invalid value: "localhost": must be a valid IP`}},
		{name: "healthzBindAddress port", in: "healthzBindAddress: 0.0.0.0:0\n", want: []string{`healthzBindAddress: Invalid value: "0": must be a valid port`}},
		{name: "conntrack", in: "conntrack:\n  min: -1\n  udpTimeout: -1s\n", want: []string{
			`conntrack.min: Invalid value: -1: must be greater than or equal to 0`,
			`conntrack.udpTimeout: Invalid value: "-1s": must be greater than or equal to 0`}},
		{name: "oomScoreAdj", in: "oomScoreAdj: 1001\n", want: []string{`oomScoreAdj: Invalid value: 1001: must be within the range [-1000, 1000]`}},
		{name: "portRange", in: "portRange: 3-2-1\n", want: []string{`portRange: Invalid value: "3-2-1": must be a valid port range`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(header + tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if !IsInvalid(err) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
