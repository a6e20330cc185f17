package podnet

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
)

// The masquerade table, owned completely by podnet and replaced as a whole.
const (
	nftFamily = "inet"
	nftTable  = "kubesvc-podnet"
	nftChain  = "postrouting"
)

// Multicast ranges are never masqueraded (the bridge plugin's ipMasq does the
// same).
var (
	multicast4 = netip.MustParsePrefix("224.0.0.0/4")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

// renderMasquerade is the nft script that replaces the masquerade table: pod
// traffic (from a pod CIDR) to anything outside the pod, cluster and service
// CIDRs and multicast leaves with the node's address. Deleting and re-creating
// the table in one script makes the change atomic (nft runs it as one
// transaction); the leading add makes the delete valid when the table is new.
func renderMasquerade(nn NodeNetwork) string {
	var b strings.Builder
	fmt.Fprintf(&b, "add table %s %s\n", nftFamily, nftTable)
	fmt.Fprintf(&b, "delete table %s %s\n", nftFamily, nftTable)
	fmt.Fprintf(&b, "table %s %s {\n", nftFamily, nftTable)
	fmt.Fprintf(&b, "\tchain %s {\n", nftChain)
	b.WriteString("\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	for _, src := range nn.PodCIDRs {
		keep := []netip.Prefix{multicast4}
		match := "ip"
		if src.Addr().Is6() {
			keep, match = []netip.Prefix{multicast6}, "ip6"
		}
		for _, ps := range [][]netip.Prefix{nn.PodCIDRs, nn.ClusterCIDRs, nn.ServiceCIDRs} {
			for _, p := range ps {
				if p.Addr().Is4() == src.Addr().Is4() {
					keep = append(keep, p.Masked())
				}
			}
		}
		fmt.Fprintf(&b, "\t\t%s saddr %s %s daddr != { %s } masquerade\n", match, src, match, joinPrefixes(coverPrefixes(keep)))
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// coverPrefixes drops the prefixes inside others and duplicates (an interval set
// rejects overlapping elements), in address order.
func coverPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var out []netip.Prefix
	for _, p := range ps {
		if len(out) > 0 {
			if last := out[len(out)-1]; last.Overlaps(p) {
				continue // sorted: last starts first and, overlapping, contains p
			}
		}
		out = append(out, p)
	}
	return out
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
