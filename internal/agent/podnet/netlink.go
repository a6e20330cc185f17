package podnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
)

// DefaultBridgeName is the node's pod bridge unless Config.BridgeName says otherwise
// (the bridge CNI plugin's default is cni0; ours is named after us).
const DefaultBridgeName = "kubesvc0"

// RouteProtocol tags the routes SyncRoutes installs (rtm_protocol; `ip route` shows
// "proto 201"), so that it removes exactly its own stale routes and never one that
// an administrator, a routing daemon or another CNI added. Values above
// RTPROT_STATIC (4) are not interpreted by the kernel; 201 is not in iproute2's
// rt_protos and not used by the usual routing daemons (bird 12, zebra 11, the
// 186-192 block for BGP/IS-IS/OSPF/RIP/EIGRP) or Calico (80).
const RouteProtocol netlink.RouteProtocol = 201

// ServiceRouteProtocol tags the route Ensure adds for a Service range the node
// has no route to (see ensureServiceRoutes); SyncRoutes leaves it alone.
const ServiceRouteProtocol netlink.RouteProtocol = 202

// defaultMTU is the pod interfaces' MTU when NodeNetwork.MTU is 0 and the node has
// no default route.
const defaultMTU = 1500

// Directories under Config.RootDir.
const (
	netnsDir = "netns" // one bind-mounted network namespace per pod, named by UID
	ipamDir  = "ipam"  // host-local IPAM records, one directory per pod CIDR
)

// podIfName is the pod's end of its veth pair, inside the pod's namespace.
const podIfName = "eth0"

// Config configures a Netlink.
type Config struct {
	// RootDir holds the pods' network namespaces (RootDir/netns/<pod UID>) and the
	// IPAM records (RootDir/ipam). Required; the agent's --root-dir.
	RootDir string
	// BridgeName is the node's pod bridge; "" is DefaultBridgeName.
	BridgeName string
	// Log receives what podnet does; nil discards.
	Log *slog.Logger
}

// Netlink is the Network that programs the kernel with netlink (links, addresses,
// routes, namespaces) and nft (masquerade), in the network namespace of the process
// that calls it: the node's. Pod operations on different pods run concurrently;
// operations on one pod and Ensure are serialised.
type Netlink struct {
	root   string
	bridge string
	log    *slog.Logger
	ipam   *ipam

	// mu guards node: Ensure holds it for writing, the pod operations for reading.
	mu   sync.RWMutex
	node *nodeState // nil before a successful Ensure

	pods podLocks

	// dirMu guards dirReady: RootDir/netns is a shared mount point (see
	// ensureNetNSDir), made so once per Netlink.
	dirMu    sync.Mutex
	dirReady bool
}

var _ Network = (*Netlink)(nil)

// nodeState is what Ensure set up, for the pod operations.
type nodeState struct {
	podCIDRs []netip.Prefix
	mtu      int
	bridge   int // the bridge's interface index
}

// NewNetlink returns a Network for this node. It checks the configuration and
// changes nothing: Ensure sets the node up.
func NewNetlink(cfg Config) (*Netlink, error) {
	if cfg.RootDir == "" {
		return nil, errors.New("podnet: Config.RootDir is required")
	}
	root, err := filepath.Abs(cfg.RootDir)
	if err != nil {
		return nil, fmt.Errorf("podnet: root dir: %w", err)
	}
	if cfg.BridgeName == "" {
		cfg.BridgeName = DefaultBridgeName
	}
	if len(cfg.BridgeName) > unix.IFNAMSIZ-1 {
		return nil, fmt.Errorf("podnet: bridge name %q is longer than %d bytes", cfg.BridgeName, unix.IFNAMSIZ-1)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Netlink{
		root:   root,
		bridge: cfg.BridgeName,
		log:    log.With("component", "podnet"),
		ipam:   &ipam{dir: filepath.Join(root, ipamDir)},
	}, nil
}

// Ensure creates or repairs the bridge (up, MTU, the first address of each pod
// CIDR), turns on forwarding and br_netfilter's bridge-nf-call hooks (so that the
// proxy's rules see traffic between pods on the bridge), and replaces the
// masquerade table (over netlink: no nft command is needed). When the kernel has
// no nftables it sets up everything else, so AddPod works, and returns an error
// wrapping ErrMasqueradeUnavailable.
func (n *Netlink) Ensure(ctx context.Context, nn NodeNetwork) error {
	if err := validateNodeNetwork(nn); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()

	mtu := nn.MTU
	if mtu == 0 {
		var err error
		if mtu, err = uplinkMTU(); err != nil {
			return err
		}
	}
	br, err := n.ensureBridge(mtu)
	if err != nil {
		return err
	}
	if err := ensureBridgeAddrs(br, nn.PodCIDRs); err != nil {
		return err
	}
	if err := ensureServiceRoutes(br, nn.ServiceCIDRs); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.enableForwarding(nn.PodCIDRs); err != nil {
		return err
	}
	n.node = &nodeState{podCIDRs: append([]netip.Prefix(nil), nn.PodCIDRs...), mtu: mtu, bridge: br.Attrs().Index}
	n.log.Info("pod network ready", "bridge", n.bridge, "podCIDRs", nn.PodCIDRs, "mtu", mtu)

	if err := (nftnl.Conn{}).Send(masqueradeBatch(nn)); err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			// No nf_tables (or its nat/masq expressions) in this kernel.
			return fmt.Errorf("podnet: %w (%w)", ErrMasqueradeUnavailable, err)
		}
		return fmt.Errorf("podnet: masquerade: %w", err)
	}
	return nil
}

// validateNodeNetwork checks that nn has one pod CIDR per family, each with room
// for the bridge and at least one pod.
func validateNodeNetwork(nn NodeNetwork) error {
	if len(nn.PodCIDRs) == 0 {
		return fmt.Errorf("podnet: %w", ErrNotConfigured)
	}
	if nn.MTU < 0 || (nn.MTU > 0 && nn.MTU < 576) {
		return fmt.Errorf("podnet: MTU %d is out of range (0 for the uplink's, or at least 576)", nn.MTU)
	}
	seen := map[bool]bool{}
	for _, p := range nn.PodCIDRs {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("podnet: pod CIDR %s is not a network prefix", p)
		}
		if seen[p.Addr().Is4()] {
			return fmt.Errorf("podnet: more than one pod CIDR of the family of %s", p)
		}
		seen[p.Addr().Is4()] = true
		if p.Addr().BitLen()-p.Bits() < 2 {
			return fmt.Errorf("podnet: pod CIDR %s has no room for the bridge and a pod", p)
		}
	}
	for _, ps := range [][]netip.Prefix{nn.ClusterCIDRs, nn.ServiceCIDRs} {
		for _, p := range ps {
			if !p.IsValid() {
				return fmt.Errorf("podnet: invalid CIDR %s", p)
			}
		}
	}
	return nil
}

// uplinkMTU is the MTU of the interface of the default route (IPv4's, else
// IPv6's), or defaultMTU when there is none.
func uplinkMTU() (int, error) {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := listRoutes(family, nil, 0)
		if err != nil {
			return 0, fmt.Errorf("podnet: listing routes for the uplink's MTU: %w", err)
		}
		for _, r := range routes {
			if ones, _ := ipNetSize(r.Dst); ones != 0 || r.Type != unix.RTN_UNICAST {
				continue // not a default route (nil or 0/0), or an unreachable one
			}
			index := r.LinkIndex
			if index == 0 && len(r.MultiPath) > 0 {
				index = r.MultiPath[0].LinkIndex
			}
			link, err := netlink.LinkByIndex(index)
			if err != nil {
				return 0, fmt.Errorf("podnet: the default route's interface: %w", err)
			}
			return link.Attrs().MTU, nil
		}
	}
	return defaultMTU, nil
}

func ipNetSize(n *net.IPNet) (ones, bits int) {
	if n == nil {
		return 0, 0
	}
	return n.Mask.Size()
}

// ensureBridge creates the bridge or repairs its MTU, and brings it up.
func (n *Netlink) ensureBridge(mtu int) (netlink.Link, error) {
	link, err := netlink.LinkByName(n.bridge)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.bridge
		attrs.MTU = mtu
		// A MAC set by us (not inherited from the lowest port, as the kernel does
		// for a bridge whose address nobody set) stays put as pods come and go, so
		// the pods' neighbour entries for their gateway never go stale.
		attrs.HardwareAddr = randomMAC()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return nil, fmt.Errorf("podnet: creating bridge %s: %w", n.bridge, err)
		}
		link, err = netlink.LinkByName(n.bridge)
	}
	if err != nil {
		return nil, fmt.Errorf("podnet: bridge %s: %w", n.bridge, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("podnet: %s exists and is a %s, not a bridge", n.bridge, link.Type())
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("podnet: setting MTU %d on %s: %w", mtu, n.bridge, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("podnet: bringing %s up: %w", n.bridge, err)
	}
	return link, nil
}

// randomMAC is a random locally administered unicast MAC address.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac) // crypto/rand.Read never fails (Go 1.24+)
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// ensureBridgeAddrs gives the bridge the gateway address of each pod CIDR and
// removes the global addresses it should not have (a pod CIDR that changed).
func ensureBridgeAddrs(br netlink.Link, podCIDRs []netip.Prefix) error {
	want := map[netip.Prefix]bool{}
	for _, p := range podCIDRs {
		gw := gatewayPrefix(p)
		want[gw] = true
		if err := netlink.AddrReplace(br, bridgeAddr(gw)); err != nil {
			return fmt.Errorf("podnet: adding %s to the bridge: %w", gw, err)
		}
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("podnet: listing the bridge's addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() || want[p] {
			continue
		}
		if err := netlink.AddrDel(br, &a); err != nil {
			return fmt.Errorf("podnet: removing the stale address %s from the bridge: %w", p, err)
		}
	}
	return nil
}

// bridgeAddr is the netlink address for p; IPv6 without duplicate address
// detection, so that the address (the pods' gateway) is usable at once.
func bridgeAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// enableForwarding turns on IPv4 (and, with an IPv6 pod CIDR, IPv6) forwarding and
// the bridge-nf-call hooks in the current network namespace.
func (n *Netlink) enableForwarding(podCIDRs []netip.Prefix) error {
	settings := []string{"net/ipv4/ip_forward"}
	for _, p := range podCIDRs {
		if p.Addr().Is6() {
			settings = append(settings, "net/ipv6/conf/all/forwarding")
		}
	}
	for _, s := range settings {
		if err := writeSysctl(s, "1"); err != nil {
			return err
		}
	}
	// Without br_netfilter, traffic between two pods on the bridge skips the ip
	// hooks: a Service's reply from a pod to a pod on this node would not be
	// un-DNATed. kubelet's kubenet set the same (modprobe br_netfilter loads it; the
	// sysctls are per network namespace since Linux 5.3).
	for _, family := range []string{"iptables", "ip6tables"} {
		s := "net/bridge/bridge-nf-call-" + family
		if _, err := os.Stat(filepath.Join("/proc/sys", s)); errors.Is(err, os.ErrNotExist) {
			n.log.Warn("br_netfilter is not loaded: Service traffic between pods on this node needs it (modprobe br_netfilter)")
			break
		}
		if err := writeSysctl(s, "1"); err != nil {
			return err
		}
	}
	return nil
}

func writeSysctl(name, value string) error {
	path := filepath.Join("/proc/sys", name)
	if cur, err := os.ReadFile(path); err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("podnet: setting %s=%s: %w", name, value, err)
	}
	return nil
}

// listRoutes lists the main table's routes, retrying a dump that a concurrent
// change interrupted.
func listRoutes(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	if filter == nil {
		filter, mask = &netlink.Route{}, 0 // netlink v1.3.1 panics on a nil filter
	}
	return retryDump(func() ([]netlink.Route, error) { return netlink.RouteListFiltered(family, filter, mask) })
}

// retryDump retries a netlink dump that the kernel marked interrupted (the data
// changed while it was read; netlink v1.2+ reports it as ErrDumpInterrupted).
func retryDump[T any](list func() ([]T, error)) ([]T, error) {
	var err error
	for range 5 {
		var out []T
		if out, err = list(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

// gatewayPrefix is the bridge's address in p: its first host address, with p's
// length (10.244.0.0/24 → 10.244.0.1/24).
func gatewayPrefix(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Addr().Next(), p.Bits())
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones), true
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// Reset removes everything podnet set up on this node: every pod's network (as
// DelPod), the routes tagged RouteProtocol, the masquerade table, the bridge and
// the mount of RootDir/netns. For `kubesvc reset` and tests; the IPAM records go
// with their pods. Absent parts are skipped; it works before Ensure.
func (n *Netlink) Reset(ctx context.Context) error {
	pods, err := n.ListPods(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pods {
		errs = append(errs, n.DelPod(ctx, p.Pod.UID))
	}
	errs = append(errs, n.SyncRoutes(ctx, nil))
	{
		b := nftnl.NewBatch(unix.NFPROTO_INET, nftTable)
		b.AddTable("")
		b.DeleteTable()
		if err := (nftnl.Conn{}).Send(b); err != nil && !errors.Is(err, unix.EPROTONOSUPPORT) {
			errs = append(errs, fmt.Errorf("podnet: removing the masquerade table: %w", err))
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.node = nil
	switch link, err := netlink.LinkByName(n.bridge); {
	case errors.As(err, new(netlink.LinkNotFoundError)):
	case err != nil:
		errs = append(errs, fmt.Errorf("podnet: bridge %s: %w", n.bridge, err))
	default:
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("podnet: removing the bridge %s: %w", n.bridge, err))
		}
	}
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	dir := filepath.Join(n.root, netnsDir)
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("podnet: unmounting %s: %w", dir, err))
	}
	n.dirReady = false
	return errors.Join(errs...)
}

// ensureServiceRoutes gives a Service range the node has no route to (a machine
// without a default route, such as a sealed network namespace) a route on the
// bridge: the kernel routes a locally sent packet before the proxy's DNAT sees
// it, so without any route a connection from the node to a ClusterIP fails with
// "network unreachable". The bridge's address becomes such a connection's
// source (a pod address range: not masqueraded, and answered over the bridge).
// A range the node already routes (a default route) is left alone. The route is
// tagged ServiceRouteProtocol and goes with the bridge.
func ensureServiceRoutes(br netlink.Link, serviceCIDRs []netip.Prefix) error {
	for _, p := range serviceCIDRs {
		p = p.Masked()
		hops, err := netlink.RouteGet(net.IP(p.Addr().Next().AsSlice()))
		if err == nil && len(hops) > 0 {
			continue
		}
		if err != nil && !errors.Is(err, unix.ENETUNREACH) && !errors.Is(err, unix.EHOSTUNREACH) {
			return fmt.Errorf("podnet: looking up the route to %s: %w", p, err)
		}
		route := &netlink.Route{
			Dst:       ipNet(p),
			LinkIndex: br.Attrs().Index,
			Scope:     netlink.SCOPE_LINK,
			Protocol:  ServiceRouteProtocol,
			Table:     unix.RT_TABLE_MAIN,
		}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("podnet: route to the Service range %s on %s: %w", p, br.Attrs().Name, err)
		}
	}
	return nil
}
