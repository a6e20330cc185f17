package podnet

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRenderMasquerade(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		nn   NodeNetwork
		want string
	}{
		{
			name: "IPv4, pod CIDR inside the cluster CIDR",
			nn: NodeNetwork{
				PodCIDRs:     []netip.Prefix{p("10.244.1.0/24")},
				ClusterCIDRs: []netip.Prefix{p("10.244.0.0/16")},
				ServiceCIDRs: []netip.Prefix{p("10.96.0.0/12")},
			},
			want: `add table inet kubesvc-podnet
delete table inet kubesvc-podnet
table inet kubesvc-podnet {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.244.1.0/24 ip daddr != { 10.96.0.0/12, 10.244.0.0/16, 224.0.0.0/4 } masquerade
	}
}
`,
		},
		{
			name: "dual-stack, no cluster CIDRs",
			nn: NodeNetwork{
				PodCIDRs:     []netip.Prefix{p("10.244.1.0/24"), p("fd00:10:244:1::/64")},
				ServiceCIDRs: []netip.Prefix{p("10.96.0.0/12"), p("fd00:10:96::/112")},
			},
			want: `add table inet kubesvc-podnet
delete table inet kubesvc-podnet
table inet kubesvc-podnet {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.244.1.0/24 ip daddr != { 10.96.0.0/12, 10.244.1.0/24, 224.0.0.0/4 } masquerade
		ip6 saddr fd00:10:244:1::/64 ip6 daddr != { fd00:10:96::/112, fd00:10:244:1::/64, ff00::/8 } masquerade
	}
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, renderMasquerade(tt.nn)); diff != "" {
				t.Errorf("renderMasquerade (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCoverPrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	got := coverPrefixes([]netip.Prefix{p("10.244.1.0/24"), p("10.0.0.0/8"), p("10.96.0.0/12"), p("192.168.0.0/16"), p("10.0.0.0/8")})
	if diff := cmp.Diff("[10.0.0.0/8 192.168.0.0/16]", fmtPrefixes(got)); diff != "" {
		t.Error(diff)
	}
}

func fmtPrefixes(ps []netip.Prefix) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += p.String()
	}
	return s + "]"
}
