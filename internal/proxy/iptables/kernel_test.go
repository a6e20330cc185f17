package iptables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestKernel programs the real kernel, inside the network namespace isolate.Run
// gives the test, with a "pod" in a second namespace behind a veth pair
// (10.244.0.1 here, 10.244.0.2 there) that serves HTTP on :80 and answers with
// the client address it sees. For each iptables variant on the machine (the
// one `iptables` is, and the other when it works) it checks real traffic:
// ClusterIP from the node, hairpin from the pod itself, NodePort on the node
// address and on 127.0.0.1, an external IP, a load-balancer IP whose source
// ranges hold the node and one whose ranges do not (dropped), an immediate
// refusal for a Service without endpoints, a drop for an unallocated Service
// address, `iptables-save | grep KUBE | grep NAME`, partial syncs that remove
// and restore the endpoint, a restart's full sync, the canary, Cleanup, and
// every golden rule shape (IPv4 and IPv6) accepted by the kernel.
func TestKernel(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("needs iptables-restore")
	}
	setupPod(t)
	for _, variant := range []struct{ name, save, restore string }{
		{"default", "iptables-save", "iptables-restore"},
		{"legacy", "iptables-legacy-save", "iptables-legacy-restore"},
		{"nft", "iptables-nft-save", "iptables-nft-restore"},
	} {
		t.Run(variant.name, func(t *testing.T) {
			if _, err := exec.LookPath(variant.restore); err != nil {
				t.Skipf("no %s", variant.restore)
			}
			if out, err := exec.Command(variant.save, "-t", "nat").CombinedOutput(); err != nil {
				t.Skipf("%s does not work here: %v: %s", variant.save, err, out)
			}
			testKernelVariant(t, &CommandExecutor{SaveCommand: variant.save, RestoreCommand: variant.restore})
		})
	}
}

const podNS = "ks-pod"

// setupPod makes the pod namespace, its veth and its HTTP server.
func setupPod(t *testing.T) {
	for _, args := range [][]string{
		{"netns", "add", podNS},
		{"link", "add", "ks-host0", "type", "veth", "peer", "name", "ks-pod0", "netns", podNS},
		{"addr", "add", "10.244.0.1/24", "dev", "ks-host0"},
		{"link", "set", "ks-host0", "up"},
		{"-n", podNS, "link", "set", "lo", "up"},
		{"-n", podNS, "addr", "add", "10.244.0.2/24", "dev", "ks-pod0"},
		{"-n", podNS, "link", "set", "ks-pod0", "up"},
		{"-n", podNS, "route", "add", "default", "via", "10.244.0.1"},
		// The connect's route lookup happens before DNAT: the Service range
		// needs a route (a node's default route, usually).
		{"route", "add", "10.96.0.0/16", "dev", "ks-host0"},
		// External and load-balancer addresses (documentation ranges) route
		// the same way, as a node's default route would take them.
		{"route", "add", "192.0.2.0/24", "dev", "ks-host0"},
		{"route", "add", "203.0.113.0/24", "dev", "ks-host0"},
	} {
		isolate.Must(t, "ip", args...)
	}
	// Hairpin traffic is forwarded back out of ks-host0.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", podNS).Run() })

	var ln net.Listener
	if err := inNetns(podNS, func() (err error) {
		ln, err = net.Listen("tcp4", "0.0.0.0:80")
		return err
	}); err != nil {
		t.Fatalf("listening in the pod: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "pod saw %s", host)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// testKernelVariant runs the kernel checks with one variant's binaries.
func testKernelVariant(t *testing.T, exe *CommandExecutor) {
	b, s := kernelFirstSync(t, exe)
	kernelPartialSyncs(t, exe, b, s)
	kernelRuleShapes(t, exe)
}

// newKernelBackend is a Backend over exe with the test namespace's CIDRs.
func newKernelBackend(t *testing.T, exe *CommandExecutor) *Backend {
	t.Helper()
	b, err := New(Config{
		Family:       corev1.IPv4Protocol,
		NodeName:     testNode,
		ClusterCIDRs: prefixes("10.244.0.0/16"),
		ServiceCIDRs: prefixes("10.96.0.0/16"),
		Executor:     exe,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// kernelFirstSync programs nginx (NodePort, endpoint in the pod) and a
// Service without endpoints, and checks the traffic and iptables-save.
func kernelFirstSync(t *testing.T, exe *CommandExecutor) (*Backend, *proxy.Snapshot) {
	b := newKernelBackend(t, exe)
	ctx := context.Background()
	nginx := spn("default", "nginx", "http", corev1.ProtocolTCP)
	empty := spn("default", "empty", "", corev1.ProtocolTCP)
	s := newSnap("10.244.0.1").
		add(&proxy.ServicePort{Name: nginx, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.10"), Port: 80, NodePort: 30001},
			ep("10.244.0.2:80", testNode)).
		add(&proxy.ServicePort{Name: empty, ClusterIPs: addrs("10.96.0.11"), Port: 80}).
		add(&proxy.ServicePort{Name: spn("default", "ext", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.12"), Port: 80,
			ExternalIPs: addrs("192.0.2.10")}, ep("10.244.0.2:80", testNode)).
		// Source ranges that hold the node: its own traffic passes.
		add(&proxy.ServicePort{Name: spn("default", "lb-open", "", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
			ClusterIPs: addrs("10.96.0.13"), Port: 80, NodePort: 30013, LoadBalancerIPs: addrs("203.0.113.13"),
			LoadBalancerSourceRanges: prefixes("10.244.0.0/24")}, ep("10.244.0.2:80", testNode)).
		// Source ranges without the node: its traffic is dropped.
		add(&proxy.ServicePort{Name: spn("default", "lb-closed", "", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
			ClusterIPs: addrs("10.96.0.14"), Port: 80, NodePort: 30014, LoadBalancerIPs: addrs("203.0.113.14"),
			LoadBalancerSourceRanges: prefixes("198.51.100.0/24")}, ep("10.244.0.2:80", testNode)).s
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("full Sync: %v", err)
	}
	if got := strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/conf/all/route_localnet")); got != "1" {
		t.Errorf("route_localnet = %s, want 1", got)
	}
	saved := isolate.Must(t, exe.SaveCommand)
	t.Logf("%s:\n%s", exe.SaveCommand, saved)
	var grepped []string
	for _, l := range strings.Split(saved, "\n") {
		if strings.Contains(l, "KUBE") && strings.Contains(l, "nginx") {
			grepped = append(grepped, l)
		}
	}
	t.Logf("iptables-save | grep KUBE | grep nginx:\n%s", strings.Join(grepped, "\n"))
	svcChain := "KUBE-SVC-" + portProtoHash(nginx, "tcp")
	if !strings.Contains(strings.Join(grepped, "\n"), "-j "+svcChain) || len(grepped) < 4 {
		t.Errorf("iptables-save | grep KUBE | grep nginx does not show the Service's rules (want a jump to %s)", svcChain)
	}

	wantBody("ClusterIP from the node", t, "10.96.0.10:80", "pod saw 10.244.0.1")
	wantBody("NodePort on the node address", t, "10.244.0.1:30001", "pod saw 10.244.0.1")
	wantBody("localhost NodePort (masqueraded)", t, "127.0.0.1:30001", "pod saw 10.244.0.1")
	wantRefused("Service without endpoints", t, "10.96.0.11:80")
	wantDropped("unallocated Service address", t, "10.96.0.99:80")
	wantBody("external IP (masqueraded)", t, "192.0.2.10:80", "pod saw 10.244.0.1")
	wantBody("load-balancer IP, source in range", t, "203.0.113.13:80", "pod saw 10.244.0.1")
	wantDropped("load-balancer IP, source out of range", t, "203.0.113.14:80")
	wantBody("NodePort of that load balancer (no source ranges)", t, "10.244.0.1:30014", "pod saw 10.244.0.1")

	// Hairpin: the pod reaches itself through its Service, masqueraded so that
	// its answer goes back through the node.
	var conn net.Conn
	if err := inNetns(podNS, func() (err error) {
		conn, err = net.DialTimeout("tcp4", "10.96.0.10:80", 2*time.Second)
		return err
	}); err != nil {
		t.Errorf("hairpin from the pod: %v", err)
	} else if got, err := getOver(conn); err != nil || got != "pod saw 10.244.0.1" {
		t.Errorf("hairpin from the pod: %q, %v; want %q", got, err, "pod saw 10.244.0.1")
	}

	return b, s
}

// kernelPartialSyncs removes and restores nginx's endpoint by partial syncs,
// restarts, repairs a flush, and cleans up.
func kernelPartialSyncs(t *testing.T, exe *CommandExecutor, b *Backend, s *proxy.Snapshot) {
	ctx := context.Background()
	nginx := spn("default", "nginx", "http", corev1.ProtocolTCP)
	// Partial syncs: the endpoint goes (refused at once), and comes back.
	s.Full = false
	s.Endpoints = map[proxy.ServicePortName][]proxy.Endpoint{}
	s.Changed = map[proxy.ServicePortName]bool{nginx: true}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("partial Sync (endpoint removed): %v", err)
	}
	wantRefused("ClusterIP after its endpoint went", t, "10.96.0.10:80")
	wantRefused("localhost NodePort after its endpoint went", t, "127.0.0.1:30001")
	sep := endpointChainName(nginx, "tcp", ep("10.244.0.2:80", testNode))
	if out := isolate.Must(t, exe.SaveCommand, "-t", "nat"); strings.Contains(out, sep) {
		t.Errorf("endpoint chain %s left after the partial sync:\n%s", sep, out)
	}
	s.Endpoints = map[proxy.ServicePortName][]proxy.Endpoint{nginx: {ep("10.244.0.2:80", testNode)}}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("partial Sync (endpoint back): %v", err)
	}
	wantBody("ClusterIP after its endpoint came back", t, "10.96.0.10:80", "pod saw 10.244.0.1")

	// Nothing changed: only the canary is checked.
	s.Changed = map[proxy.ServicePortName]bool{}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("partial Sync (no change): %v", err)
	}

	// A second Backend (a restarted proxy) takes over with a full sync, and
	// adds no second copy of the jumps.
	b2 := newKernelBackend(t, exe)
	s.Full = true
	if err := b2.Sync(ctx, s); err != nil {
		t.Fatalf("full Sync after restart: %v", err)
	}
	wantBody("ClusterIP after a restart", t, "10.96.0.10:80", "pod saw 10.244.0.1")
	filter := isolate.Must(t, exe.SaveCommand, "-t", "filter")
	if n := strings.Count(filter, "-j KUBE-SERVICES"); n != 2 {
		t.Errorf("filter has %d jumps to KUBE-SERVICES after a restart, want 2 (FORWARD, OUTPUT):\n%s", n, filter)
	}

	// Someone flushes iptables: the next sync without changes sees the canary
	// gone and rebuilds.
	for _, table := range []string{"mangle", "filter", "nat"} {
		isolate.Must(t, strings.TrimSuffix(exe.SaveCommand, "-save"), "-t", table, "-F")
		isolate.Must(t, strings.TrimSuffix(exe.SaveCommand, "-save"), "-t", table, "-X")
	}
	s.Full = false
	if err := b2.Sync(ctx, s); err != nil {
		t.Fatalf("Sync after a flush: %v", err)
	}
	wantBody("ClusterIP after a flush and a resync", t, "10.96.0.10:80", "pod saw 10.244.0.1")

	// A bad input is reported with its line: the legacy variant names the
	// rule's, the nft one the COMMIT's (it checks the batch as a whole).
	bad := "*nat\n:KUBE-TEST - [0:0]\n-A KUBE-TEST -j KUBE-NO-SUCH-CHAIN\nCOMMIT\n"
	if re, ok := IsRestoreError(exe.Restore(ctx, []byte(bad))); !ok || (re.Line != 3 && re.Line != 4) {
		t.Errorf("bad restore input: %v, want a RestoreError on line 3 or 4", re)
	} else {
		t.Logf("bad restore input: %v", re)
	}

	if err := b2.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if out := isolate.Must(t, exe.SaveCommand); strings.Contains(out, "KUBE-") {
		t.Errorf("KUBE- rules or chains left after Cleanup:\n%s", out)
	}
	if err := b2.Cleanup(ctx); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

// kernelRuleShapes: every rule shape of the golden cases (affinity,
// statistic, addrtype, the firewall's rule without target, REJECT and DROP,
// UDP) goes into the kernel, for IPv4 and for IPv6.
func kernelRuleShapes(t *testing.T, exe *CommandExecutor) {
	ctx := context.Background()
	all := newSnap(goldenNodeIP)
	for i, c := range goldenCases() {
		for name, sp := range c.snap.Services {
			cp := *sp
			cp.Name.Namespace = fmt.Sprintf("case%d", i)
			all.add(&cp, c.snap.Endpoints[name]...)
		}
	}
	ipv6 := &CommandExecutor{
		SaveCommand:    strings.Replace(exe.SaveCommand, "iptables", "ip6tables", 1),
		RestoreCommand: strings.Replace(exe.RestoreCommand, "iptables", "ip6tables", 1),
	}
	for _, fam := range []struct {
		family corev1.IPFamily
		exe    *CommandExecutor
		snap   *proxy.Snapshot
	}{
		{corev1.IPv4Protocol, exe, all.s},
		{corev1.IPv6Protocol, ipv6, goldenIPv6Snapshot()},
	} {
		b, err := New(Config{Family: fam.family, ClusterCIDRs: prefixes("10.0.0.0/8", "fd00:10::/64"),
			ServiceCIDRs: prefixes("172.30.0.0/16", "fd00:30::/112"), Executor: fam.exe})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx, fam.snap); err != nil {
			t.Errorf("%s: full Sync of every golden shape: %v", fam.family, err)
			continue
		}
		nat := isolate.Must(t, fam.exe.SaveCommand, "-t", "nat")
		for _, want := range []string{"--rcheck --seconds 10800 --reap", "--probability 0.50000000000", "KUBE-SVC-"} {
			if fam.family == corev1.IPv4Protocol && !strings.Contains(nat, want) {
				t.Errorf("%s: nat table lacks %q:\n%s", fam.family, want, nat)
			}
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Errorf("%s: Cleanup: %v", fam.family, err)
		}
	}
}

func httpGet(addr string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func wantBody(name string, t *testing.T, addr, want string) {
	t.Helper()
	got, err := httpGet(addr)
	if err != nil || got != want {
		t.Errorf("%s: GET %s = %q, %v; want %q", name, addr, got, err, want)
	}
}

func wantRefused(name string, t *testing.T, addr string) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Errorf("%s: dial %s succeeded; want connection refused", name, addr)
		return
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%s: dial %s: %v; want connection refused", name, addr, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("%s: refusal took %v; want < 100ms", name, d)
	}
}

// wantDropped checks that a connection to addr times out (a drop, not a
// refusal).
func wantDropped(name string, t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Errorf("%s: dial %s succeeded; want a drop (timeout)", name, addr)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("%s: dial %s: %v; want a timeout (drop)", name, addr, err)
	}
}

// inNetns runs f on an OS thread in the named network namespace; sockets f
// creates stay in that namespace.
func inNetns(name string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	defer func() { _ = netns.Set(orig) }()
	return f()
}

// getOver sends one GET over conn (dialled in another namespace) and returns
// the body.
func getOver(conn net.Conn) (string, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}}
	resp, err := c.Get("http://pod/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
