// Package conntrack keeps the kernel's connection tracking table consistent with
// the service proxy's rules, as kube-proxy's pkg/proxy/conntrack does: UDP has no
// connection to end, so a conntrack entry that DNATs a Service address to an
// endpoint outlives that endpoint and keeps sending the client's datagrams to a
// backend that is gone (or, created while the Service had no endpoints, keeps
// them from reaching the ones that came). After each successful sync the
// Reconciler deletes the UDP entries whose original destination is a Service
// address (cluster IP, external IP, load-balancer IP, or any address on a node
// port) and whose backend is not one of the Service port's current endpoints.
// TCP entries are left alone: established connections survive a proxy restart
// and the removal of unrelated endpoints, and the kernel answers a packet of a
// connection to a gone endpoint with a reset.
//
// The kernel is reached through netlink (vishvananda/netlink), not the conntrack
// program.
package conntrack

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Flow is what the Reconciler looks at in a conntrack entry.
type Flow struct {
	// Proto is the IP protocol number (unix.IPPROTO_UDP, ...).
	Proto uint8
	// OrigDst is where the client sent the packet (the Service address).
	OrigDst netip.AddrPort
	// ReplySrc is where the answers come from: the endpoint after DNAT, or
	// OrigDst when no DNAT happened.
	ReplySrc netip.AddrPort
}

// Interface deletes conntrack entries.
type Interface interface {
	// DeleteFlows deletes the entries of the family (unix.AF_INET or
	// unix.AF_INET6) for which match is true and returns how many went.
	DeleteFlows(ctx context.Context, family int, match func(Flow) bool) (int, error)
}

// Netlink is the Interface of the running kernel (the caller's network
// namespace).
type Netlink struct{}

var _ Interface = Netlink{}

// DeleteFlows dumps the table and deletes the matching entries.
func (Netlink) DeleteFlows(_ context.Context, family int, match func(Flow) bool) (int, error) {
	n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.InetFamily(family), flowFilter(match))
	if err != nil {
		return int(n), fmt.Errorf("conntrack: deleting stale entries: %w", err)
	}
	return int(n), nil
}

// flowFilter adapts a match function to netlink's filter interface.
type flowFilter func(Flow) bool

func (f flowFilter) MatchConntrackFlow(c *netlink.ConntrackFlow) bool {
	return f(Flow{
		Proto:    c.Forward.Protocol,
		OrigDst:  addrPort(c.Forward.DstIP, c.Forward.DstPort),
		ReplySrc: addrPort(c.Reverse.SrcIP, c.Reverse.SrcPort),
	})
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

// protoUDP is the only protocol the Reconciler cleans up.
const protoUDP = unix.IPPROTO_UDP
