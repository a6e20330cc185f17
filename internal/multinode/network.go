package multinode

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// EnsureNetwork makes (or repairs, after a restart) the machine's side of the
// plan: the bridge with the machine's address, and per node a named network
// namespace with lo up, a veth pair whose node end is eth0 with the node's
// address, and a default route via the machine. It is idempotent: `kubesvc up`
// calls it on every start, and a resumed cluster keeps its namespaces (and the
// pods' veths in them).
func EnsureNetwork(p Plan) error {
	br, err := ensureBridge(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(NetNSDir, 0o755); err != nil {
		return fmt.Errorf("multinode: %w", err)
	}
	for _, n := range p.Nodes {
		if err := ensureNode(p, n, br); err != nil {
			return err
		}
	}
	return nil
}

func ensureBridge(p Plan) (netlink.Link, error) {
	link, err := netlink.LinkByName(p.Bridge)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = p.Bridge
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("multinode: creating the bridge %s: %w", p.Bridge, err)
		}
		link, err = netlink.LinkByName(p.Bridge)
	}
	if err != nil {
		return nil, fmt.Errorf("multinode: bridge %s: %w", p.Bridge, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("multinode: %s is a %s, not a bridge", p.Bridge, link.Type())
	}
	addr := &netlink.Addr{IPNet: ipNet(p.MachinePrefix())}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return nil, fmt.Errorf("multinode: address %s on %s: %w", p.MachinePrefix(), p.Bridge, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("multinode: bringing %s up: %w", p.Bridge, err)
	}
	return link, nil
}

// ensureNode makes node n's namespace and veth pair.
func ensureNode(p Plan, n Node, br netlink.Link) error {
	path := n.NetNSPath()
	if !isNetNSMount(path) {
		if err := newNamedNetNS(path); err != nil {
			return err
		}
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("multinode: node %s: opening its network namespace: %w", n.Name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("multinode: node %s: netlink in its namespace: %w", n.Name, err)
	}
	defer h.Close()

	eth, err := h.LinkByName(NodeLink)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		// A host end left from a namespace that is gone is in the way.
		if old, err := netlink.LinkByName(n.HostVeth); err == nil {
			_ = netlink.LinkDel(old)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.HostVeth
		attrs.MasterIndex = br.Attrs().Index
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: NodeLink, PeerNamespace: netlink.NsFd(ns)}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("multinode: node %s: creating its veth pair: %w", n.Name, err)
		}
		eth, err = h.LinkByName(NodeLink)
	}
	if err != nil {
		return fmt.Errorf("multinode: node %s: %s: %w", n.Name, NodeLink, err)
	}
	host, err := netlink.LinkByName(n.HostVeth)
	if err != nil {
		return fmt.Errorf("multinode: node %s: %s: %w", n.Name, n.HostVeth, err)
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return fmt.Errorf("multinode: node %s: %s on %s: %w", n.Name, n.HostVeth, p.Bridge, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("multinode: node %s: bringing %s up: %w", n.Name, n.HostVeth, err)
	}
	if err := h.AddrReplace(eth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.IP, p.Range.Bits()))}); err != nil {
		return fmt.Errorf("multinode: node %s: its address: %w", n.Name, err)
	}
	for _, l := range []string{"lo", NodeLink} {
		link, err := h.LinkByName(l)
		if err == nil {
			err = h.LinkSetUp(link)
		}
		if err != nil {
			return fmt.Errorf("multinode: node %s: bringing %s up: %w", n.Name, l, err)
		}
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(p.Machine.AsSlice()), Table: unix.RT_TABLE_MAIN}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("multinode: node %s: default route via %s: %w", n.Name, p.Machine, err)
	}
	return nil
}

// isNetNSMount tells whether path is a bind-mounted network namespace.
func isNetNSMount(path string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NSFS_MAGIC
}

// newNamedNetNS creates a network namespace and bind-mounts it at path, as
// `ip netns add` does. It is made on a thread of its own that is never given
// back to the Go scheduler (the goroutine ends locked, so the runtime ends the
// thread): no other goroutine can ever run in the new namespace by accident.
func newNamedNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("multinode: creating %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("multinode: creating %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("multinode: creating a network namespace: %w", err)
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			done <- fmt.Errorf("multinode: bind-mounting the namespace at %s: %w", path, err)
			return
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// Do runs fn on a thread in the network namespace at path. The thread is never
// given back to the scheduler, so nothing else runs in that namespace; fn must
// not start goroutines that need the namespace. Programs that fn starts
// (os/exec) start in it: a child inherits the namespace of the thread that
// forks it.
func Do(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("multinode: opening the network namespace %s: %w", path, err)
	}
	defer ns.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := netns.Set(ns); err != nil {
			done <- fmt.Errorf("multinode: entering the network namespace %s: %w", path, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Remove deletes what EnsureNetwork and SyncRoutes made: every node's network
// namespace (which takes its links, routes and nftables tables along), the
// machine's veth ends, the bridge and the machine's routes of RouteProtocol.
// What is already gone is no error. The nodes' agents and pods must be
// stopped first (kubesvc reset does that).
func Remove(p Plan) error {
	var errs []error
	for _, n := range p.Nodes {
		path := n.NetNSPath()
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("multinode: unmounting %s: %w", path, err))
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("multinode: %w", err))
		}
		// The kernel removes the pair with the namespace, but not at once.
		if l, err := netlink.LinkByName(n.HostVeth); err == nil {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("multinode: removing %s: %w", n.HostVeth, err))
			}
		}
	}
	errs = append(errs, SyncRoutes(p, nil))
	if l, err := netlink.LinkByName(p.Bridge); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("multinode: removing the bridge %s: %w", p.Bridge, err))
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the plan is still on the machine (for reports and
// tests): namespaces, links and routes.
func Leftovers(p Plan) []string {
	var out []string
	for _, n := range p.Nodes {
		if _, err := os.Stat(n.NetNSPath()); err == nil {
			out = append(out, "network namespace "+filepath.Base(n.NetNSPath()))
		}
		if _, err := netlink.LinkByName(n.HostVeth); err == nil {
			out = append(out, "link "+n.HostVeth)
		}
	}
	if _, err := netlink.LinkByName(p.Bridge); err == nil {
		out = append(out, "bridge "+p.Bridge)
	}
	if rs, err := ourRoutes(); err == nil {
		for _, r := range rs {
			out = append(out, "route "+r.Dst.String())
		}
	}
	return out
}
