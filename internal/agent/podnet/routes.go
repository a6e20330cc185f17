package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SyncRoutes makes the main table's routes tagged RouteProtocol exactly routes
// (host-gateway: each other node's pod CIDR via its node address). A route whose
// next hop is on a connected subnet goes out of that interface; one whose next hop
// the node reaches only through a gateway goes out of that gateway's interface
// with the onlink flag (the nodes are on one L2 segment, as host-gateway needs).
// Routes to a destination that someone else's route already covers are skipped
// with an error; the rest are synced anyway. It works before Ensure.
func (n *Netlink) SyncRoutes(ctx context.Context, routes []Route) error {
	want := make(map[netip.Prefix]Route, len(routes))
	for _, r := range routes {
		if !r.Dst.IsValid() || r.Dst != r.Dst.Masked() || !r.Via.IsValid() {
			return fmt.Errorf("podnet: invalid route %s via %s", r.Dst, r.Via)
		}
		if r.Dst.Addr().Is4() != r.Via.Is4() {
			return fmt.Errorf("podnet: route %s via %s mixes address families", r.Dst, r.Via)
		}
		if _, dup := want[r.Dst]; dup {
			return fmt.Errorf("podnet: more than one route to %s", r.Dst)
		}
		want[r.Dst] = r
	}
	ours, err := listRoutes(netlink.FAMILY_ALL, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("podnet: listing routes: %w", err)
	}
	var errs []error
	have := map[netip.Prefix]bool{}
	for _, r := range ours {
		dst, ok := prefixOf(r.Dst)
		if w, wanted := want[dst]; ok && wanted {
			// Kept; one with another next hop is replaced below, without a gap.
			have[dst] = addrOf(r.Gw) == w.Via
			continue
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("podnet: removing the stale route %s: %w", r.Dst, err))
			continue
		}
		n.log.Info("removed pod route", "dst", r.Dst, "via", r.Gw)
	}
	for _, r := range routes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if have[r.Dst] {
			continue
		}
		if err := addRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		n.log.Info("added pod route", "dst", r.Dst, "via", r.Via)
	}
	return errors.Join(errs...)
}

// addRoute installs (or replaces one of ours for) r.
func addRoute(r Route) error {
	family := netlink.FAMILY_V4
	if r.Dst.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	existing, err := listRoutes(family, &netlink.Route{Dst: ipNet(r.Dst)}, netlink.RT_FILTER_DST)
	if err != nil {
		return fmt.Errorf("podnet: listing routes to %s: %w", r.Dst, err)
	}
	for _, e := range existing {
		if e.Protocol != RouteProtocol {
			return fmt.Errorf("podnet: route to %s via %s: a route of proto %d to it exists and is not ours", r.Dst, r.Via, e.Protocol)
		}
	}
	via := net.IP(r.Via.AsSlice())
	hops, err := netlink.RouteGet(via)
	if err != nil || len(hops) == 0 {
		return fmt.Errorf("podnet: route to %s: the node has no route to %s: %w", r.Dst, r.Via, err)
	}
	hop := hops[0]
	if hop.Type == unix.RTN_LOCAL {
		return fmt.Errorf("podnet: route to %s: %s is an address of this node", r.Dst, r.Via)
	}
	route := &netlink.Route{
		Dst:       ipNet(r.Dst),
		Gw:        via,
		LinkIndex: hop.LinkIndex,
		Protocol:  RouteProtocol,
		Table:     unix.RT_TABLE_MAIN,
	}
	if hop.Gw != nil {
		route.Flags = int(netlink.FLAG_ONLINK)
	}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("podnet: route to %s via %s: %w", r.Dst, r.Via, err)
	}
	return nil
}
