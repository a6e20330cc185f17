package nftables

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// Config is what New needs. Zero values take the documented defaults.
type Config struct {
	// Family is knftables.IPv4Family ("ip") or knftables.IPv6Family ("ip6"); a
	// dual-stack node runs one Backend per family. Required.
	Family knftables.Family
	// TableName is the table the Backend owns completely (default "kubesvc").
	TableName string
	// NodeName is this proxy's node (for logs; endpoint locality comes with the
	// Snapshot).
	NodeName string
	// ClusterCIDRs detect local traffic: a source in one of them is a pod of this
	// cluster. Prefixes of the other family are ignored. None: traffic to a
	// ClusterIP is never masqueraded for being from outside the cluster, and
	// pod traffic to an externalTrafficPolicy Local Service is not short-circuited
	// (kube-proxy's behaviour without a local-traffic detector).
	ClusterCIDRs []netip.Prefix
	// ServiceCIDRs are the Service IP ranges: traffic to an address in them that
	// no Service has is dropped. Prefixes of the other family are ignored.
	ServiceCIDRs []netip.Prefix
	// NodePortAddresses selects the addresses that accept NodePort traffic:
	// CIDRs (a local address in one of them) and "primary" (the node's addresses,
	// Snapshot.Node.IPs). Empty means "primary". CIDRs of the other family are
	// ignored; a list with neither "primary" nor a CIDR of this family disables
	// NodePorts for this family. "0.0.0.0/0" ("::/0") means every local address.
	NodePortAddresses []string
	// MasqueradeAll masquerades all traffic to ClusterIPs, not only traffic from
	// outside ClusterCIDRs.
	MasqueradeAll bool
	// MasqueradeBit is the packet-mark bit that asks for masquerade, 0..31
	// (0 means the default, 14: mark 0x4000, as kube-proxy).
	MasqueradeBit int
	// LocalhostNodePorts (IPv4 only; nil means true) makes NodePorts answer on
	// 127.0.0.0/8 for connections from the node itself when NodePortAddresses
	// includes "primary" or a CIDR that overlaps 127.0.0.0/8. It sets
	// net.ipv4.conf.all.route_localnet=1; see the package README.
	LocalhostNodePorts *bool
	// NFT, when set, runs the Backend's transactions through knftables (as nft
	// text): tests pass knftables.NewFake(Family, TableName), and
	// knftables.New(Family, TableName) uses the nft binary. Nil (production)
	// programs the kernel over netlink (internal/proxy/nftnl): the same
	// operations, compiled to netlink messages and sent as one batch, without
	// the nft binary and without listing the table on each sync.
	NFT knftables.Interface
	// Sysctl writes kernel parameters (nil: files under /proc/sys).
	Sysctl Sysctl
	// Now is the clock (nil: time.Now); it times stale-chain deletion.
	Now func() time.Time
	// Log receives sync summaries and warnings (nil: discarded).
	Log *slog.Logger
}

// Sysctl writes kernel parameters.
type Sysctl interface {
	// Set writes value to the parameter name, in sysctl(8)'s dotted form
	// ("net.ipv4.conf.all.route_localnet"). It returns the write's error.
	Set(name, value string) error
}

// ProcSysctl is the Sysctl of the running kernel: it writes /proc/sys/NAME (dots
// become slashes). Network parameters belong to the caller's network namespace.
type ProcSysctl struct{}

// Set writes value to /proc/sys/NAME.
func (ProcSysctl) Set(name, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// routeLocalnetSysctl lets the kernel route 127.0.0.0/8 sources and destinations
// off the loopback device: what localhost NodePorts need after DNAT.
const routeLocalnetSysctl = "net.ipv4.conf.all.route_localnet"

// nodePortPrimary is the NodePortAddresses value for the node's own addresses.
const nodePortPrimary = "primary"

// defaultMasqueradeBit is kube-proxy's (mark 0x4000).
const defaultMasqueradeBit = 14

// ErrInvalidConfig is wrapped by New's errors about the Config.
var ErrInvalidConfig = errors.New("invalid nftables backend configuration")

// nodePortAddrs is Config.NodePortAddresses resolved for one family.
type nodePortAddrs struct {
	// enabled is false when the list names only the other family's CIDRs.
	enabled bool
	// primary: the node's addresses accept NodePorts.
	primary bool
	// matchAll: every local address accepts NodePorts (a /0 CIDR).
	matchAll bool
	// cidrs are this family's CIDRs (none contained in another; no /0).
	cidrs []netip.Prefix
	// loopback are the 127.0.0.0/8 prefixes that accept NodePorts from the node
	// itself (IPv4 with LocalhostNodePorts only).
	loopback []netip.Prefix
	// overlapsLoopback: some CIDR overlaps 127.0.0.0/8, so the prerouting
	// NodePort rule must exclude loopback destinations explicitly.
	overlapsLoopback bool
}

var loopbackV4 = netip.MustParsePrefix("127.0.0.0/8")

// parseNodePortAddresses resolves addrs for family; localhost is
// LocalhostNodePorts. It fails on a value that is neither "primary" nor a CIDR.
func parseNodePortAddresses(addrs []string, ipv6, localhost bool) (nodePortAddrs, error) {
	var npa nodePortAddrs
	if len(addrs) == 0 {
		npa.primary = true
	}
	var cidrs []netip.Prefix
	for _, a := range addrs {
		if a == nodePortPrimary {
			npa.primary = true
			continue
		}
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return npa, fmt.Errorf("%w: nodePortAddresses: %q is neither %q nor a CIDR", ErrInvalidConfig, a, nodePortPrimary)
		}
		p = p.Masked()
		if p.Addr().Is6() != ipv6 {
			continue
		}
		if p.Bits() == 0 {
			npa.matchAll = true
		}
		cidrs = append(cidrs, p)
	}
	npa.enabled = npa.primary || len(cidrs) > 0
	if !npa.matchAll {
		npa.cidrs = outermost(cidrs)
	}
	if ipv6 {
		return npa, nil
	}
	for _, p := range cidrs {
		if p.Overlaps(loopbackV4) {
			npa.overlapsLoopback = true
		}
	}
	if !localhost {
		return npa, nil
	}
	if npa.primary || npa.matchAll {
		npa.loopback = []netip.Prefix{loopbackV4}
		return npa, nil
	}
	for _, p := range npa.cidrs {
		switch {
		case p.Contains(loopbackV4.Addr()) && p.Bits() <= loopbackV4.Bits():
			npa.loopback = []netip.Prefix{loopbackV4}
			return npa, nil
		case loopbackV4.Overlaps(p):
			npa.loopback = append(npa.loopback, p)
		}
	}
	return npa, nil
}

// outermost drops the prefixes contained in another (and duplicates), so that
// the rest can be elements of one interval set.
func outermost(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if i != j && q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q.Bits() < p.Bits() || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// familyPrefixes returns the prefixes of ps in the family (masked).
func familyPrefixes(ps []netip.Prefix, ipv6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.IsValid() && p.Addr().Is6() == ipv6 {
			out = append(out, p.Masked())
		}
	}
	return out
}
