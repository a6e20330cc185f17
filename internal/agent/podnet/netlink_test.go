package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kubesvc/kubesvc/internal/proxy/nftnl"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

func TestEnsureBridge(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	if _, err := n.AddPod(t.Context(), PodRef{UID: "early"}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("AddPod before Ensure: %v, want ErrNotConfigured", err)
	}
	// The node's uplink has MTU 1400 and carries the default route.
	uplink(t, root, 1400, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"), netip.MustParseAddr("192.0.2.2"))

	ensure(t, n, testNodeNetwork())
	ensure(t, n, testNodeNetwork()) // idempotent
	br, err := netlink.LinkByName(DefaultBridgeName)
	must(t, err)
	if _, ok := br.(*netlink.Bridge); !ok {
		t.Fatalf("%s is a %s", DefaultBridgeName, br.Type())
	}
	if got := br.Attrs().MTU; got != 1400 {
		t.Errorf("bridge MTU %d, want the uplink's 1400", got)
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		t.Error("bridge is not up")
	}
	if got := bridgeAddrs(t, br); got != "10.244.0.1/24" {
		t.Errorf("bridge addresses %q, want 10.244.0.1/24", got)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q", b)
	}
	if got := isolate.Must(t, "ip", "route", "show", "proto", "202"); got != "" {
		t.Errorf("a Service range route %q on a node with a default route", got)
	}

	// An explicit MTU wins; a changed pod CIDR replaces the bridge's address.
	nn := testNodeNetwork()
	nn.MTU = 1280
	nn.PodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.7.0/24")}
	ensure(t, n, nn)
	br, err = netlink.LinkByName(DefaultBridgeName)
	must(t, err)
	if got := br.Attrs().MTU; got != 1280 {
		t.Errorf("bridge MTU %d, want 1280", got)
	}
	if got := bridgeAddrs(t, br); got != "10.244.7.1/24" {
		t.Errorf("bridge addresses %q, want 10.244.7.1/24", got)
	}
}

func TestEnsureDefaultMTUAndValidation(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	n := newTestNetlink(t, "")
	ensure(t, n, testNodeNetwork())
	br, err := netlink.LinkByName(DefaultBridgeName)
	must(t, err)
	if got := br.Attrs().MTU; got != defaultMTU {
		t.Errorf("bridge MTU %d without a default route, want %d", got, defaultMTU)
	}
	// Without a default route the Service range is routed on the bridge, so that
	// the node's own connections to ClusterIPs reach the proxy.
	// ("linkdown" while the bridge has no port: still used for routing)
	if got := isolate.Must(t, "ip", "route", "show", "proto", "202"); !strings.HasPrefix(got, "10.96.0.0/12 dev kubesvc0 scope link") || strings.Count(got, "\n") != 1 {
		t.Errorf("routes of proto 202 = %q, want the Service range on the bridge", got)
	}
	if got := isolate.Must(t, "ip", "-o", "route", "get", "10.96.0.10"); !strings.Contains(got, "dev kubesvc0 src 10.244.0.1") {
		t.Errorf("ip route get 10.96.0.10 = %q", got)
	}
	for name, nn := range map[string]NodeNetwork{
		"no pod CIDR": {},
		"/31":         {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/31")}},
		"not masked":  {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}},
		"two v4":      {PodCIDRs: []netip.Prefix{podCIDR, netip.MustParsePrefix("10.245.0.0/24")}},
		"tiny MTU":    {PodCIDRs: []netip.Prefix{podCIDR}, MTU: 100},
	} {
		if err := n.Ensure(t.Context(), nn); err == nil || errors.Is(err, ErrMasqueradeUnavailable) {
			t.Errorf("%s: Ensure = %v, want an error", name, err)
		}
	}
}

// TestEnsureWithoutNFTCommand: the masquerade table goes over netlink, so a
// machine without the nft command masquerades pod traffic all the same.
func TestEnsureWithoutNFTCommand(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	outside := uplink(t, root, 1500, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"), netip.Addr{})
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir()) // no nft (nor anything else) to be found
	must(t, n.Ensure(t.Context(), testNodeNetwork()))
	t.Setenv("PATH", path) // the helpers below run ip and the echo server
	a := addPod(t, n, "a")
	serveEcho(t, outside)
	mustReach(t, a.NetNSPath, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")) // leaves as the node
}

// TestMasqueradeNetlinkMatchesNft: the table masqueradeBatch writes is the one
// nft makes of renderMasquerade, as the kernel lists it, in both families.
func TestMasqueradeNetlinkMatchesNft(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft is not installed (CI installs nftables)")
	}
	p := netip.MustParsePrefix
	for _, nn := range []NodeNetwork{
		testNodeNetwork(),
		{
			PodCIDRs:     []netip.Prefix{p("10.244.3.0/24"), p("fd00:10:244:3::/64")},
			ClusterCIDRs: []netip.Prefix{p("10.244.0.0/16"), p("fd00:10:244::/56")},
			ServiceCIDRs: []netip.Prefix{p("10.96.0.0/12"), p("fd00:10:96::/112")},
		},
		{PodCIDRs: []netip.Prefix{p("192.168.7.0/30")}}, // no cluster or Service CIDRs
	} {
		must(t, (nftnl.Conn{}).Send(masqueradeBatch(nn)))
		got := isolate.Must(t, "nft", "list", "table", "inet", nftTable)
		if err := applyNFT(t.Context(), nft, renderMasquerade(nn)); err != nil {
			t.Fatal(err)
		}
		want := isolate.Must(t, "nft", "list", "table", "inet", nftTable)
		if got != want {
			t.Errorf("pod CIDRs %v: over netlink:\n%s\nwith nft:\n%s", nn.PodCIDRs, got, want)
		}
	}
}

func bridgeAddrs(t *testing.T, br netlink.Link) string {
	t.Helper()
	addrs, err := netlink.AddrList(br, netlink.FAMILY_ALL)
	must(t, err)
	var s []string
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && !p.Addr().IsLinkLocalUnicast() {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, ",")
}

func TestPodToPod(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	n := newTestNetlink(t, "")
	ensure(t, n, testNodeNetwork())
	a, b := addPod(t, n, "a"), addPod(t, n, "b")
	if len(a.IPs) != 1 || len(b.IPs) != 1 || a.IPs[0] == b.IPs[0] {
		t.Fatalf("pod IPs %v and %v: want one distinct address each", a.IPs, b.IPs)
	}
	for _, pn := range []*PodNetwork{a, b} {
		if !podCIDR.Contains(pn.IPs[0]) || pn.IPs[0] == gatewayPrefix(podCIDR).Addr() {
			t.Errorf("pod IP %s is not a pod address of %s", pn.IPs[0], podCIDR)
		}
		if len(pn.HostVeth) > 15 || pn.HostVeth != HostVethName(pn.Pod.UID) {
			t.Errorf("host veth %q", pn.HostVeth)
		}
		host, err := netlink.LinkByName(pn.HostVeth)
		must(t, err)
		info, err := netlink.LinkGetProtinfo(host)
		must(t, err)
		if !info.Hairpin {
			t.Errorf("%s: hairpin is off", pn.HostVeth)
		}
		if ok, err := isNetNS(pn.NetNSPath); !ok || err != nil {
			t.Errorf("%s is not a network namespace: %v", pn.NetNSPath, err)
		}
		serveEcho(t, pn.NetNSPath)
	}
	serveEcho(t, "")
	bridgeIP := gatewayPrefix(podCIDR).Addr()

	mustReach(t, a.NetNSPath, b.IPs[0], a.IPs[0]) // pod → pod, not masqueraded
	mustReach(t, b.NetNSPath, a.IPs[0], b.IPs[0])
	mustReach(t, "", a.IPs[0], bridgeIP)          // node → pod
	mustReach(t, a.NetNSPath, bridgeIP, a.IPs[0]) // pod → node
	mustReach(t, a.NetNSPath, a.IPs[0], a.IPs[0]) // pod → itself

	// The namespace file is usable by the runtime's tools as it is.
	if _, err := exec.LookPath("nsenter"); err == nil {
		out := isolate.Must(t, "nsenter", "--net="+a.NetNSPath, "ip", "-o", "route")
		if !strings.Contains(out, "default via 10.244.0.1 dev eth0") {
			t.Errorf("pod routes:\n%s\nwant a default route via the bridge", out)
		}
	}
}

func TestDualStack(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("no IPv6 in this kernel")
	}
	v6 := netip.MustParsePrefix("fd00:10:244::/64")
	n := newTestNetlink(t, "")
	nn := testNodeNetwork()
	nn.PodCIDRs = append(nn.PodCIDRs, v6)
	nn.ClusterCIDRs = append(nn.ClusterCIDRs, netip.MustParsePrefix("fd00:10:244::/56"))
	ensure(t, n, nn)
	a, b := addPod(t, n, "a"), addPod(t, n, "b")
	if len(a.IPs) != 2 || !a.IPs[0].Is4() || !a.IPs[1].Is6() || !v6.Contains(a.IPs[1]) {
		t.Fatalf("pod a's IPs %v: want IPv4 then an address of %s", a.IPs, v6)
	}
	serveEcho(t, b.NetNSPath)
	serveEcho(t, "")
	mustReach(t, a.NetNSPath, b.IPs[1], a.IPs[1])
	mustReach(t, "", b.IPs[1], gatewayPrefix(v6).Addr())
	if b, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("IPv6 forwarding = %q", b)
	}
}

func TestAddPodIdempotent(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	n := newTestNetlink(t, "")
	ensure(t, n, testNodeNetwork())
	first := addPod(t, n, "a")
	// Break a part: the pod's address and route go missing.
	ns, err := netns.GetFromPath(first.NetNSPath)
	must(t, err)
	h, err := netlink.NewHandleAt(ns)
	must(t, err)
	eth, err := h.LinkByName("eth0")
	must(t, err)
	must(t, h.AddrDel(eth, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(first.IPs[0], 24))}))
	h.Close()
	ns.Close()

	again := addPod(t, n, "a")
	if fmt.Sprint(*first) != fmt.Sprint(*again) {
		t.Errorf("AddPod again = %+v, want %+v", *again, *first)
	}
	serveEcho(t, again.NetNSPath)
	mustReach(t, "", again.IPs[0], netip.Addr{})
	records, err := n.ipam.list()
	must(t, err)
	if len(records) != 1 {
		t.Errorf("IPAM records %v, want one", records)
	}
}

func TestDelPod(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	ensure(t, n, testNodeNetwork())
	a := addPod(t, n, "a")
	must(t, n.DelPod(t.Context(), a.Pod.UID))
	if _, err := netlink.LinkByName(a.HostVeth); !errors.As(err, new(netlink.LinkNotFoundError)) {
		t.Errorf("%s after DelPod: %v", a.HostVeth, err)
	}
	if _, err := os.Lstat(a.NetNSPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after DelPod: %v", a.NetNSPath, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "ipam", "10.244.0.0_24", a.IPs[0].String())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the IPAM record of %s after DelPod: %v", a.IPs[0], err)
	}
	pods, err := n.ListPods(t.Context())
	must(t, err)
	if len(pods) != 0 {
		t.Errorf("ListPods after DelPod = %v", pods)
	}
	must(t, n.DelPod(t.Context(), a.Pod.UID)) // again
	must(t, n.DelPod(t.Context(), "never-added"))
	if err := n.DelPod(t.Context(), "../x"); err == nil {
		t.Error("DelPod of a UID with a slash: no error")
	}
}

func TestExhaustion(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	nn := testNodeNetwork()
	nn.PodCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/30")} // .1 bridge, .2 the only pod
	ensure(t, n, nn)
	a := addPod(t, n, "a")
	if got := a.IPs[0].String(); got != "10.244.0.2" {
		t.Errorf("the one pod of a /30 got %s, want 10.244.0.2", got)
	}
	_, err := n.AddPod(t.Context(), PodRef{UID: "uid-b"})
	if !errors.Is(err, ErrPodCIDRExhausted) {
		t.Fatalf("AddPod in a full /30: %v, want ErrPodCIDRExhausted", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "netns", "uid-b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed pod left its namespace file: %v", err)
	}
	if _, err := netlink.LinkByName(HostVethName("uid-b")); err == nil {
		t.Error("the failed pod left its veth")
	}
	must(t, n.DelPod(t.Context(), a.Pod.UID))
	b := addPod(t, n, "b")
	if got := b.IPs[0].String(); got != "10.244.0.2" {
		t.Errorf("after the release the pod got %s, want 10.244.0.2", got)
	}
}

func TestRestartKeepsIPAM(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	ensure(t, n, testNodeNetwork())
	a := addPod(t, n, "a")
	// A crash after allocating for pod "ghost" and before its namespace existed.
	ghost, _, err := n.ipam.allocate(podCIDR, PodRef{UID: "uid-ghost"})
	must(t, err)

	// The agent restarts: a new Netlink on the same root dir.
	n2, err := NewNetlink(Config{RootDir: root})
	must(t, err)
	pods, err := n2.ListPods(t.Context())
	must(t, err)
	if len(pods) != 1 || pods[0].Pod != a.Pod || fmt.Sprint(pods[0].IPs) != fmt.Sprint(a.IPs) || pods[0].NetNSPath != a.NetNSPath {
		t.Fatalf("ListPods after a restart = %+v, want pod a %+v", pods, *a)
	}
	ensure(t, n2, testNodeNetwork())
	again := addPod(t, n2, "a")
	if again.IPs[0] != a.IPs[0] {
		t.Errorf("pod a after a restart got %s, had %s", again.IPs[0], a.IPs[0])
	}
	b := addPod(t, n2, "b")
	if b.IPs[0] == a.IPs[0] || b.IPs[0] == ghost {
		t.Errorf("pod b got %s, which is taken", b.IPs[0])
	}
	// Only b is live in the API; a still has its namespace: only the ghost's goes.
	released, err := n2.ReleaseOrphanIPs(t.Context(), map[string]bool{b.Pod.UID: true})
	must(t, err)
	if fmt.Sprint(released) != fmt.Sprint([]netip.Addr{ghost}) {
		t.Errorf("ReleaseOrphanIPs released %v, want %v", released, ghost)
	}
	records, err := n2.ipam.list()
	must(t, err)
	if len(records) != 2 {
		t.Errorf("IPAM records after reconcile: %v, want a's and b's", records)
	}
}

func TestConcurrentAddPods(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	n := newTestNetlink(t, "")
	ensure(t, n, testNodeNetwork())
	const pods = 100
	var wg sync.WaitGroup
	start := time.Now()
	ips := make([]netip.Addr, pods)
	errs := make([]error, pods)
	for i := range pods {
		wg.Go(func() {
			pn, err := n.AddPod(t.Context(), PodRef{UID: fmt.Sprintf("uid-%d", i)})
			if errs[i] = err; err == nil {
				ips[i] = pn.IPs[0]
			}
		})
	}
	wg.Wait()
	t.Logf("%d pods added in %v", pods, time.Since(start))
	seen := map[netip.Addr]bool{}
	for i, ip := range ips {
		if errs[i] != nil {
			t.Fatalf("pod %d: %v", i, errs[i])
		}
		if seen[ip] {
			t.Errorf("%s handed out twice", ip)
		}
		seen[ip] = true
	}
	list, err := n.ListPods(t.Context())
	must(t, err)
	if len(list) != pods {
		t.Errorf("ListPods has %d pods, want %d", len(list), pods)
	}
	for i := range pods {
		wg.Go(func() { errs[i] = n.DelPod(t.Context(), fmt.Sprintf("uid-%d", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("DelPod %d: %v", i, err)
		}
	}
	// Nothing leaks: veths, namespace mounts and files, IPAM records.
	links, err := netlink.LinkList()
	must(t, err)
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "veth") {
			t.Errorf("%s left after DelPod", l.Attrs().Name)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	if got := strings.Count(string(mounts), n.root+"/netns/"); got != 0 {
		t.Errorf("%d namespace mounts left after DelPod", got)
	}
	if entries, err := os.ReadDir(filepath.Join(n.root, "netns")); err != nil || len(entries) != 0 {
		t.Errorf("namespace files left after DelPod: %v, %v", entries, err)
	}
	if records, err := n.ipam.list(); err != nil || len(records) != 0 {
		t.Errorf("IPAM records left after DelPod: %v, %v", records, err)
	}
}

func TestSyncRoutes(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	uplink(t, root, 1500, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.254/24"), netip.MustParseAddr("192.0.2.254"))
	// Someone else's route (an administrator's), which must survive.
	isolate.Must(t, "ip", "route", "add", "10.99.0.0/24", "via", "192.0.2.9", "proto", "static")

	route := func(dst, via string) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
	}
	must(t, n.SyncRoutes(t.Context(), []Route{
		route("10.244.1.0/24", "192.0.2.2"),
		route("10.244.2.0/24", "192.0.2.3"),
		route("10.244.3.0/24", "198.51.100.7"), // only through the default gateway: onlink
	}))
	want := []string{
		"10.244.1.0/24 via 192.0.2.2 dev uplink0 proto 201",
		"10.244.2.0/24 via 192.0.2.3 dev uplink0 proto 201",
		"10.244.3.0/24 via 198.51.100.7 dev uplink0 proto 201 onlink",
	}
	checkRoutes(t, want)

	must(t, n.SyncRoutes(t.Context(), []Route{route("10.244.2.0/24", "192.0.2.4")}))
	checkRoutes(t, []string{"10.244.2.0/24 via 192.0.2.4 dev uplink0 proto 201"})

	err := n.SyncRoutes(t.Context(), []Route{route("10.99.0.0/24", "192.0.2.5"), route("10.244.4.0/24", "192.0.2.5")})
	if err == nil || !strings.Contains(err.Error(), "not ours") {
		t.Errorf("SyncRoutes over someone else's route: %v, want a conflict", err)
	}
	checkRoutes(t, []string{"10.244.4.0/24 via 192.0.2.5 dev uplink0 proto 201"})

	must(t, n.SyncRoutes(t.Context(), nil))
	checkRoutes(t, nil)
}

// checkRoutes compares the main table with want (ours, `ip route` lines) and
// checks that the test's static route is still there.
func checkRoutes(t *testing.T, want []string) {
	t.Helper()
	all := isolate.Must(t, "ip", "-4", "route", "show", "table", "main")
	if !strings.Contains(all, "10.99.0.0/24 via 192.0.2.9 dev uplink0 proto static") {
		t.Errorf("the static route is gone:\n%s", all)
	}
	ours := strings.TrimSpace(isolate.Must(t, "ip", "-4", "route", "show", "table", "main", "proto", "201"))
	var got []string
	for _, l := range strings.Split(ours, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			got = append(got, l)
		}
	}
	// `ip route show proto N` omits the proto; put it back for the comparison.
	for i, l := range got {
		dst, rest, _ := strings.Cut(l, " dev uplink0")
		got[i] = dst + " dev uplink0 proto 201" + rest
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("our routes:\n%s\nwant:\n%s\n(all routes:\n%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), all)
	}
}

func TestMasquerade(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed (CI installs nftables)")
	}
	root := t.TempDir()
	n := newTestNetlink(t, root)
	outside := uplink(t, root, 1500, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"), netip.Addr{})
	must(t, n.Ensure(t.Context(), testNodeNetwork()))
	ruleset := isolate.Must(t, "nft", "list", "table", "inet", "kubesvc-podnet")
	if !strings.Contains(ruleset, "ip saddr 10.244.0.0/24 ip daddr != { 10.96.0.0/12, 10.244.0.0/16, 224.0.0.0/4 } masquerade") {
		t.Errorf("masquerade table:\n%s", ruleset)
	}
	must(t, n.Ensure(t.Context(), testNodeNetwork())) // replaced, not appended
	if again := isolate.Must(t, "nft", "list", "table", "inet", "kubesvc-podnet"); again != ruleset {
		t.Errorf("the table changed on a second Ensure:\n%s", again)
	}

	a, b := addPod(t, n, "a"), addPod(t, n, "b")
	serveEcho(t, outside)
	serveEcho(t, b.NetNSPath)
	mustReach(t, a.NetNSPath, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")) // leaves as the node
	mustReach(t, a.NetNSPath, b.IPs[0], a.IPs[0])                                                 // stays the pod
}

func TestResetLeavesNothing(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	root := t.TempDir()
	n, err := NewNetlink(Config{RootDir: root})
	must(t, err)
	ensure(t, n, testNodeNetwork())
	addPod(t, n, "a")
	must(t, n.Reset(t.Context()))
	links, err := netlink.LinkList()
	must(t, err)
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			t.Errorf("%s left after Reset", l.Attrs().Name)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	if strings.Contains(string(mounts), root) {
		t.Errorf("mounts under %s left after Reset:\n%s", root, mounts)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if out := isolate.Must(t, "nft", "list", "tables"); strings.Contains(out, "kubesvc-podnet") {
			t.Errorf("masquerade table left after Reset: %s", out)
		}
	}
}

// TestServiceThroughBridge plays kube-proxy: a ClusterIP whose one endpoint is pod
// a, DNATed as the proxy's nftables mode does, with its masquerade mark for
// hairpin traffic. Pod a reaches itself through it (hairpin) and pod b reaches a
// through it (the reply crosses the bridge and needs br_netfilter to be un-DNATed).
func TestServiceThroughBridge(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed (CI installs nftables)")
	}
	n := newTestNetlink(t, "")
	must(t, n.Ensure(t.Context(), testNodeNetwork()))
	a, b := addPod(t, n, "a"), addPod(t, n, "b")
	serveEcho(t, a.NetNSPath)
	svc := netip.MustParseAddr("10.96.0.10")
	rules := fmt.Sprintf(`table ip test-proxy {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s tcp dport 7777 ip saddr %[2]s meta mark set 0x4000
		ip daddr %[1]s tcp dport 7777 dnat to %[2]s:7777
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		meta mark 0x4000 masquerade
	}
}
`, svc, a.IPs[0])
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	mustReach(t, a.NetNSPath, svc, gatewayPrefix(podCIDR).Addr()) // hairpin: masqueraded to the bridge
	mustReach(t, b.NetNSPath, svc, b.IPs[0])                      // pod → Service → pod on the bridge
}
