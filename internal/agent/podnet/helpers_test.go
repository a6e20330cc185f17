package podnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The kernel tests run inside isolate.Run's namespaces: the "node" is the test's
// own network namespace, pods are namespaces under a temporary root dir.

var (
	podCIDR     = netip.MustParsePrefix("10.244.0.0/24")
	clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	serviceCIDR = netip.MustParsePrefix("10.96.0.0/12")
)

func testNodeNetwork() NodeNetwork {
	return NodeNetwork{
		PodCIDRs:     []netip.Prefix{podCIDR},
		ClusterCIDRs: []netip.Prefix{clusterCIDR},
		ServiceCIDRs: []netip.Prefix{serviceCIDR},
	}
}

// newTestNetlink returns a Netlink on a temporary root dir whose whole setup is
// removed when the test ends.
func newTestNetlink(t *testing.T, root string) *Netlink {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	n, err := NewNetlink(Config{RootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Reset(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("Reset: %v", err)
		}
	})
	return n
}

// ensure runs Ensure and tolerates only a kernel without nftables.
func ensure(t *testing.T, n *Netlink, nn NodeNetwork) {
	t.Helper()
	if err := n.Ensure(t.Context(), nn); err != nil && !errors.Is(err, ErrMasqueradeUnavailable) {
		t.Fatalf("Ensure: %v", err)
	}
}

func addPod(t *testing.T, n *Netlink, name string) *PodNetwork {
	t.Helper()
	pn, err := n.AddPod(t.Context(), PodRef{UID: "uid-" + name, Namespace: "default", Name: name})
	if err != nil {
		t.Fatalf("AddPod %s: %v", name, err)
	}
	return pn
}

// inNetNS runs fn on a thread in the network namespace at path ("" runs it in
// the test's own).
func inNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			done <- serr
			return // the thread stays locked and ends with the goroutine
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// serveEcho listens on port 7777 (all addresses) in the namespace at path and
// answers each connection with the address it came from.
func serveEcho(t *testing.T, path string) {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(path, func() (err error) {
		ln, err = net.Listen("tcp", ":7777")
		return err
	}); err != nil {
		t.Fatalf("listening in %s: %v", path, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintln(c, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
			_ = c.Close()
		}
	}()
}

// dialEcho connects from the namespace at path to an echo server at ip and
// returns the source address the server saw.
func dialEcho(path string, ip netip.Addr) (netip.Addr, error) {
	var c net.Conn
	if err := inNetNS(path, func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(ip, 7777).String(), 3*time.Second)
		return err
	}); err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(line))
}

// mustReach fails unless from (a namespace path, "" for the node) reaches the
// echo server at to and is seen with the address want (invalid: don't check).
func mustReach(t *testing.T, from string, to netip.Addr, want netip.Addr) {
	t.Helper()
	got, err := dialEcho(from, to)
	if err != nil {
		t.Fatalf("from %s to %s: %v", nsName(from), to, err)
	}
	if want.IsValid() && got != want {
		t.Errorf("from %s to %s: the server saw %s, want %s", nsName(from), to, got, want)
	}
}

func nsName(path string) string {
	if path == "" {
		return "the node"
	}
	return "pod " + filepath.Base(path)
}

// uplink gives the test's namespace an "uplink" veth pair, up, with addr on the
// node end and the other end in a namespace of its own (an outside host) with
// peer; with gw set, a default route via it.
func uplink(t *testing.T, root string, mtu int, addr, peer netip.Prefix, gw netip.Addr) (outside string) {
	t.Helper()
	outside = filepath.Join(root, "outside")
	if err := newNetNS(outside); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNetNS(outside) })
	ns, err := netns.GetFromPath(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink0", MTU: mtu}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	must(t, netlink.LinkAdd(veth))
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	link, err := netlink.LinkByName("uplink0")
	must(t, err)
	must(t, netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(addr)}))
	must(t, netlink.LinkSetUp(link))

	h, err := netlink.NewHandleAt(ns)
	must(t, err)
	defer h.Close()
	eth, err := h.LinkByName("eth0")
	must(t, err)
	must(t, h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(peer)}))
	must(t, h.LinkSetUp(eth))
	lo, err := h.LinkByName("lo")
	must(t, err)
	must(t, h.LinkSetUp(lo))
	if gw.IsValid() {
		must(t, netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.AsSlice())}))
	}
	return outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
