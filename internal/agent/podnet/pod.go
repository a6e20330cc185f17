package podnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// HostVethName is the node-side name of the pod's veth pair: "veth" and 11 hex
// digits of the SHA-256 of the UID (15 bytes, IFNAMSIZ-1), so that it is found
// again from the UID alone after a restart.
func HostVethName(podUID string) string {
	sum := sha256.Sum256([]byte(podUID))
	return "veth" + hex.EncodeToString(sum[:])[:11]
}

// validUID rejects UIDs that cannot name a file under the root dir.
func validUID(uid string) error {
	if uid == "" || uid == "." || uid == ".." || len(uid) > 253 {
		return fmt.Errorf("podnet: invalid pod UID %q", uid)
	}
	for _, c := range uid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("podnet: invalid pod UID %q", uid)
		}
	}
	return nil
}

func (n *Netlink) netnsPath(uid string) string { return filepath.Join(n.root, netnsDir, uid) }

// AddPod gives the pod a network namespace (RootDir/netns/<UID>), a veth pair
// whose host end (HostVethName) is a hairpin port of the bridge and whose pod end
// is eth0 in the namespace, an address from each pod CIDR, and default routes via
// the bridge. For a pod that has them it repairs what is missing and returns what
// exists, keeping its addresses. Before Ensure: ErrNotConfigured; no free address:
// an error wrapping ErrPodCIDRExhausted. On failure a new pod is undone entirely.
func (n *Netlink) AddPod(ctx context.Context, pod PodRef) (*PodNetwork, error) {
	if err := validUID(pod.UID); err != nil {
		return nil, err
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.node == nil {
		return nil, fmt.Errorf("podnet: %w", ErrNotConfigured)
	}
	unlock := n.pods.lock(pod.UID)
	defer unlock()
	if err := n.ensureNetNSDir(); err != nil {
		return nil, err
	}

	pn := &PodNetwork{Pod: pod, NetNSPath: n.netnsPath(pod.UID), HostVeth: HostVethName(pod.UID)}
	var fresh []netip.Addr
	var prefixes []netip.Prefix
	// release undoes this call's allocations; the error returned carries both.
	release := func(err error) error {
		return errors.Join(err, n.ipam.releaseAddrs(pod.UID, fresh))
	}
	for _, cidr := range n.node.podCIDRs {
		ip, isNew, err := n.ipam.allocate(cidr, pod)
		if err != nil {
			return nil, release(err)
		}
		if isNew {
			fresh = append(fresh, ip)
		}
		pn.IPs = append(pn.IPs, ip)
		prefixes = append(prefixes, netip.PrefixFrom(ip, cidr.Bits()))
	}
	sortAddrs(pn.IPs)
	if err := ctx.Err(); err != nil {
		return nil, release(err)
	}

	existed, err := n.ensurePodNetNS(pn.NetNSPath)
	if err == nil {
		err = n.ensureVeth(pn, prefixes)
	}
	if err != nil && !existed {
		return nil, release(errors.Join(err, n.teardown(pod.UID)))
	}
	if err != nil {
		return nil, err // an existing pod keeps what it has: DelPod removes it
	}
	n.log.Debug("pod network set up", "pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID, "ips", pn.IPs, "veth", pn.HostVeth)
	return pn, nil
}

// ensureNetNSDir prepares RootDir/netns once per Netlink.
func (n *Netlink) ensureNetNSDir() error {
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	if n.dirReady {
		return nil
	}
	if err := ensureSharedMountDir(filepath.Join(n.root, netnsDir)); err != nil {
		return err
	}
	n.dirReady = true
	return nil
}

// ensurePodNetNS makes path a network namespace unless it is one already
// (existed); a file that is not (a crash between creating and mounting it) is
// replaced.
func (n *Netlink) ensurePodNetNS(path string) (existed bool, err error) {
	ok, err := isNetNS(path)
	if err != nil {
		return false, err
	}
	if ok {
		return true, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("podnet: %w", err)
	}
	return false, newNetNS(path)
}

// ensureVeth creates or repairs the pod's veth pair, its addresses and routes.
func (n *Netlink) ensureVeth(pn *PodNetwork, prefixes []netip.Prefix) error {
	ns, err := netns.GetFromPath(pn.NetNSPath)
	if err != nil {
		return fmt.Errorf("podnet: opening %s: %w", pn.NetNSPath, err)
	}
	defer ns.Close()
	podNL, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("podnet: netlink in the pod's namespace: %w", err)
	}
	defer podNL.Close()

	host, err := netlink.LinkByName(pn.HostVeth)
	_, podErr := podNL.LinkByName(podIfName)
	if err == nil && podErr != nil {
		// The host end exists but its peer is not in this namespace (a namespace
		// re-created after a crash): start over.
		if err := netlink.LinkDel(host); err != nil {
			return fmt.Errorf("podnet: removing the stale %s: %w", pn.HostVeth, err)
		}
		err = netlink.LinkNotFoundError{}
	}
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: pn.HostVeth, MTU: n.node.mtu, TxQLen: -1},
			PeerName:      podIfName,
			PeerNamespace: netlink.NsFd(ns),
			PeerMTU:       uint32(n.node.mtu),
			PeerTxQLen:    -1,
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("podnet: creating the veth pair %s/%s: %w", pn.HostVeth, podIfName, err)
		}
		host, err = netlink.LinkByName(pn.HostVeth)
	}
	if err != nil {
		return fmt.Errorf("podnet: %s: %w", pn.HostVeth, err)
	}
	if err := n.attachHostVeth(host); err != nil {
		return err
	}
	return configurePodSide(podNL, prefixes)
}

// attachHostVeth makes the host end a hairpin port of the bridge, and up. Hairpin
// (the bridge plugin's hairpinMode) lets a frame leave by the port it came in by:
// a pod reaching itself through a Service whose DNAT the bridge hooks apply.
func (n *Netlink) attachHostVeth(host netlink.Link) error {
	if host.Attrs().MasterIndex != n.node.bridge {
		if err := netlink.LinkSetMasterByIndex(host, n.node.bridge); err != nil {
			return fmt.Errorf("podnet: attaching %s to the bridge: %w", host.Attrs().Name, err)
		}
	}
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("podnet: hairpin on %s: %w", host.Attrs().Name, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("podnet: bringing %s up: %w", host.Attrs().Name, err)
	}
	return nil
}

// configurePodSide brings lo and eth0 up in the pod's namespace with the pod's
// addresses and a default route per family via the bridge.
func configurePodSide(h *netlink.Handle, prefixes []netip.Prefix) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("podnet: lo in the pod: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("podnet: bringing lo up in the pod: %w", err)
	}
	eth, err := h.LinkByName(podIfName)
	if err != nil {
		return fmt.Errorf("podnet: %s in the pod: %w", podIfName, err)
	}
	for _, p := range prefixes {
		if err := h.AddrReplace(eth, bridgeAddr(p)); err != nil {
			return fmt.Errorf("podnet: adding %s to the pod's %s: %w", p, podIfName, err)
		}
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("podnet: bringing the pod's %s up: %w", podIfName, err)
	}
	for _, p := range prefixes {
		gw := gatewayPrefix(p.Masked())
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if p.Addr().Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		route := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(def), Gw: net.IP(gw.Addr().AsSlice())}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("podnet: default route via %s in the pod: %w", gw.Addr(), err)
		}
	}
	return nil
}

// DelPod removes the pod's veth pair (the peer goes with it), unmounts and removes
// its namespace file and releases its addresses. What does not exist is skipped;
// it works before Ensure too (cleaning up after a restart).
func (n *Netlink) DelPod(ctx context.Context, podUID string) error {
	if err := validUID(podUID); err != nil {
		return err
	}
	unlock := n.pods.lock(podUID)
	defer unlock()
	if err := n.teardown(podUID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	released, err := n.ipam.releaseIf(func(r ipamRecord) bool { return r.UID == podUID })
	if err != nil {
		return err
	}
	n.log.Debug("pod network removed", "uid", podUID, "released", released)
	return nil
}

// teardown removes the pod's veth pair and namespace file.
func (n *Netlink) teardown(uid string) error {
	name := HostVethName(uid)
	link, err := netlink.LinkByName(name)
	switch {
	case errors.As(err, new(netlink.LinkNotFoundError)):
	case err != nil:
		return fmt.Errorf("podnet: %s: %w", name, err)
	default:
		if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("podnet: removing %s: %w", name, err)
		}
	}
	return removeNetNS(n.netnsPath(uid))
}

// ListPods returns a PodNetwork for every namespace file under RootDir/netns, by
// UID, with the addresses (and namespace/name) the IPAM records give for it. It
// works before Ensure.
func (n *Netlink) ListPods(ctx context.Context) ([]PodNetwork, error) {
	entries, err := os.ReadDir(filepath.Join(n.root, netnsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("podnet: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	records, err := n.ipam.list()
	if err != nil {
		return nil, err
	}
	byUID := map[string][]ipamRecord{}
	for _, r := range records {
		byUID[r.UID] = append(byUID[r.UID], r)
	}
	var pods []PodNetwork
	for _, e := range entries {
		uid := e.Name()
		if e.IsDir() || validUID(uid) != nil {
			continue
		}
		pn := PodNetwork{Pod: PodRef{UID: uid}, NetNSPath: n.netnsPath(uid), HostVeth: HostVethName(uid)}
		for _, r := range byUID[uid] {
			pn.IPs = append(pn.IPs, r.IP)
			pn.Pod.Namespace, pn.Pod.Name = r.Namespace, r.Name
		}
		sortAddrs(pn.IPs)
		pods = append(pods, pn)
	}
	slices.SortFunc(pods, func(a, b PodNetwork) int { return cmpString(a.Pod.UID, b.Pod.UID) })
	return pods, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ReleaseOrphanIPs releases the addresses whose UID is not in live and has no
// namespace file under RootDir/netns (see Network). live must hold every pod the
// caller may AddPod meanwhile; a pod whose AddPod or DelPod is under way is kept.
func (n *Netlink) ReleaseOrphanIPs(ctx context.Context, live map[string]bool) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	released, err := n.ipam.releaseIf(func(r ipamRecord) bool {
		if live[r.UID] || n.pods.busy(r.UID) {
			return false
		}
		if r.UID == "" || validUID(r.UID) != nil {
			return true // a record cut short by a crash
		}
		_, err := os.Lstat(n.netnsPath(r.UID))
		return errors.Is(err, fs.ErrNotExist)
	})
	if len(released) > 0 {
		n.log.Info("released orphaned pod IPs", "ips", released)
	}
	return released, err
}

// podLocks serialises the operations on one pod.
type podLocks struct {
	mu    sync.Mutex
	locks map[string]*podLock
}

type podLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks uid and returns the unlock.
func (l *podLocks) lock(uid string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*podLock{}
	}
	pl := l.locks[uid]
	if pl == nil {
		pl = &podLock{}
		l.locks[uid] = pl
	}
	pl.refs++
	l.mu.Unlock()
	pl.mu.Lock()
	return func() {
		pl.mu.Unlock()
		l.mu.Lock()
		if pl.refs--; pl.refs == 0 {
			delete(l.locks, uid)
		}
		l.mu.Unlock()
	}
}

// busy tells whether an operation on uid is under way (an AddPod that has
// allocated but not yet created the namespace must not lose its address).
func (l *podLocks) busy(uid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.locks[uid] != nil
}
