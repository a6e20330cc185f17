package podnet

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
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

// renderMasquerade is the nft script of the masquerade table that
// masqueradeBatch writes over netlink: pod traffic (from a pod CIDR) to anything
// outside the pod, cluster and service CIDRs and multicast leaves with the
// node's address. The tests apply it with nft to compare the kernel's tables.
func renderMasquerade(nn NodeNetwork) string {
	var b strings.Builder
	fmt.Fprintf(&b, "add table %s %s\n", nftFamily, nftTable)
	fmt.Fprintf(&b, "delete table %s %s\n", nftFamily, nftTable)
	fmt.Fprintf(&b, "table %s %s {\n", nftFamily, nftTable)
	fmt.Fprintf(&b, "\tchain %s {\n", nftChain)
	b.WriteString("\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, src := range nn.PodCIDRs {
		match := "ip"
		if src.Addr().Is6() {
			match = "ip6"
		}
		fmt.Fprintf(&b, "\t\t%s saddr %s %s daddr != { %s } masquerade\n", match, src, match, joinPrefixes(masqueradeKeep(nn, src)))
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// applyNFT runs script with `nft -f -`, as one transaction.
func applyNFT(ctx context.Context, nft, script string) error {
	cmd := exec.CommandContext(ctx, nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("could not run nftables command: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
