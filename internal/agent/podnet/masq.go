package podnet

import (
	"net/netip"
	"slices"
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

// masqueradeKeep are the destinations that traffic from the pod CIDR src keeps
// its address to: the pod, cluster and service CIDRs of its family and
// multicast, without overlaps (an interval set refuses them), in address order.
// Traffic from src to anything else leaves with the node's address.
func masqueradeKeep(nn NodeNetwork, src netip.Prefix) []netip.Prefix {
	keep := []netip.Prefix{multicast4}
	if src.Addr().Is6() {
		keep = []netip.Prefix{multicast6}
	}
	for _, ps := range [][]netip.Prefix{nn.PodCIDRs, nn.ClusterCIDRs, nn.ServiceCIDRs} {
		for _, p := range ps {
			if p.Addr().Is4() == src.Addr().Is4() {
				keep = append(keep, p.Masked())
			}
		}
	}
	return coverPrefixes(keep)
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
