package multinode

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is a route on the machine: Dst via a node's address on the bridge.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// SyncRoutes makes the machine's routes of RouteProtocol exactly routes, each
// out of the plan's bridge. nil removes them all. It goes on after a failing
// route and returns every error.
func SyncRoutes(p Plan, routes []Route) error {
	want := map[netip.Prefix]Route{}
	for _, r := range routes {
		if !r.Dst.IsValid() || !r.Via.IsValid() || r.Dst.Addr().Is4() != r.Via.Is4() {
			return fmt.Errorf("multinode: invalid route %s via %s", r.Dst, r.Via)
		}
		want[r.Dst.Masked()] = r
	}
	have, err := ourRoutes()
	if err != nil {
		return err
	}
	var errs []error
	kept := map[netip.Prefix]bool{}
	for _, r := range have {
		dst, _ := netip.ParsePrefix(r.Dst.String())
		if w, ok := want[dst]; ok && r.Gw != nil && r.Gw.Equal(net.IP(w.Via.AsSlice())) {
			kept[dst] = true
			continue
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("multinode: removing the route %s: %w", r.Dst, err))
		}
	}
	if len(want) == len(kept) {
		return errors.Join(errs...)
	}
	br, err := netlink.LinkByName(p.Bridge)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("multinode: bridge %s: %w", p.Bridge, err))...)
	}
	for dst, r := range want {
		if kept[dst] {
			continue
		}
		route := &netlink.Route{Dst: ipNet(dst), Gw: net.IP(r.Via.AsSlice()), LinkIndex: br.Attrs().Index,
			Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if err := netlink.RouteReplace(route); err != nil {
			errs = append(errs, fmt.Errorf("multinode: route %s via %s: %w", dst, r.Via, err))
		}
	}
	return errors.Join(errs...)
}

// ourRoutes lists the machine's routes of RouteProtocol (IPv4: the nodes'
// network is IPv4).
func ourRoutes() ([]netlink.Route, error) {
	var (
		rs  []netlink.Route
		err error
	)
	// A dump interrupted by a concurrent change answers EINTR: ask again.
	for range 5 {
		rs, err = netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("multinode: listing routes: %w", err)
	}
	return rs, nil
}
