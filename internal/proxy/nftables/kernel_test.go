package nftables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestKernel programs the real kernel, inside the network namespace isolate.Run
// gives the test, with a "pod" in a second namespace behind a veth pair
// (10.244.0.1 here, 10.244.0.2 there) that serves HTTP on :80 and answers with
// the client address it sees. It checks real traffic: ClusterIP, ClusterIP
// hairpin from the pod itself (masqueraded), NodePort on the node address and on
// 127.0.0.1 (route_localnet, masqueraded), an immediate refusal for a Service
// without endpoints and for an invalid port of a ClusterIP, a drop for an
// unallocated address of the Service CIDR, a partial sync that removes and
// restores the endpoint, and Cleanup.
func TestKernel(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft(8)")
	}
	const pod = "ks-pod"
	startPod(t, pod)

	b, err := New(Config{
		Family:       knftables.IPv4Family,
		TableName:    "kubesvc-test",
		NodeName:     testNode,
		ClusterCIDRs: prefixes("10.244.0.0/16"),
		ServiceCIDRs: prefixes("10.96.0.0/16"),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx := context.Background()
	web := spn("default", "web", "http", corev1.ProtocolTCP)
	empty := spn("default", "empty", "", corev1.ProtocolTCP)
	s := newSnap("10.244.0.1").
		add(&proxy.ServicePort{Name: web, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.10"), Port: 80, NodePort: 30001},
			ep("10.244.0.2:80", testNode)).
		add(&proxy.ServicePort{Name: empty, ClusterIPs: addrs("10.96.0.11"), Port: 80}).s
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("full Sync: %v", err)
	}
	if got := strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/conf/all/route_localnet")); got != "1" {
		t.Errorf("route_localnet = %s, want 1", got)
	}
	t.Logf("nft list table:\n%s", isolate.Must(t, "nft", "list", "table", "ip", "kubesvc-test"))

	wantBody, wantRefused := trafficChecks(t)
	wantBody("ClusterIP from the node", "10.96.0.10:80", "pod saw 10.244.0.1")
	wantBody("NodePort on the node address", "10.244.0.1:30001", "pod saw 10.244.0.1")
	wantBody("localhost NodePort (masqueraded)", "127.0.0.1:30001", "pod saw 10.244.0.1")
	wantRefused("Service without endpoints", "10.96.0.11:80")
	wantRefused("invalid port of a ClusterIP", "10.96.0.10:81")
	if c, err := net.DialTimeout("tcp4", "10.96.0.99:80", 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("unallocated Service address: dial succeeded; want a drop (timeout)")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("unallocated Service address: %v; want a timeout (drop)", err)
	}

	// Hairpin: the pod reaches itself through its Service, masqueraded so that
	// its answer goes back through the node.
	var conn net.Conn
	if err := inNetns(pod, func() (err error) {
		conn, err = net.DialTimeout("tcp4", "10.96.0.10:80", 2*time.Second)
		return err
	}); err != nil {
		t.Errorf("hairpin from the pod: %v", err)
	} else if got, err := getOver(conn); err != nil || got != "pod saw 10.244.0.1" {
		t.Errorf("hairpin from the pod: %q, %v; want %q", got, err, "pod saw 10.244.0.1")
	}

	// Partial syncs: the endpoint goes (refused at once), and comes back.
	s.Full = false
	s.Endpoints = map[proxy.ServicePortName][]proxy.Endpoint{}
	s.Changed = map[proxy.ServicePortName]bool{web: true}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("partial Sync (endpoint removed): %v", err)
	}
	wantRefused("ClusterIP after its endpoint went", "10.96.0.10:80")
	wantRefused("localhost NodePort after its endpoint went", "127.0.0.1:30001")
	s.Endpoints = map[proxy.ServicePortName][]proxy.Endpoint{web: {ep("10.244.0.2:80", testNode)}}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatalf("partial Sync (endpoint back): %v", err)
	}
	wantBody("ClusterIP after its endpoint came back", "10.96.0.10:80", "pod saw 10.244.0.1")

	// A second Backend (a restarted proxy) takes the table over with a full sync.
	b2, err := New(Config{Family: knftables.IPv4Family, TableName: "kubesvc-test", ClusterCIDRs: prefixes("10.244.0.0/16"), ServiceCIDRs: prefixes("10.96.0.0/16")})
	if err != nil {
		t.Fatalf("New (restart): %v", err)
	}
	s.Full = true
	if err := b2.Sync(ctx, s); err != nil {
		t.Fatalf("full Sync after restart: %v", err)
	}
	wantBody("ClusterIP after a restart", "10.96.0.10:80", "pod saw 10.244.0.1")

	if err := b2.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if out := isolate.Must(t, "nft", "list", "tables"); strings.Contains(out, "kubesvc-test") {
		t.Errorf("table still there after Cleanup:\n%s", out)
	}
	if err := b2.Cleanup(ctx); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

// startPod makes the "pod": network namespace pod behind a veth pair
// (ks-host0 10.244.0.1/24 here, ks-pod0 10.244.0.2/24 there, its default route
// via 10.244.0.1), with an HTTP server on :80 that answers "pod saw CLIENT-IP".
// It also routes the Service range 10.96.0.0/16 to ks-host0 and turns
// forwarding on (for hairpin traffic).
func startPod(t *testing.T, pod string) {
	t.Helper()
	for _, args := range [][]string{
		{"netns", "add", pod},
		{"link", "add", "ks-host0", "type", "veth", "peer", "name", "ks-pod0", "netns", pod},
		{"addr", "add", "10.244.0.1/24", "dev", "ks-host0"},
		{"link", "set", "ks-host0", "up"},
		{"-n", pod, "link", "set", "lo", "up"},
		{"-n", pod, "addr", "add", "10.244.0.2/24", "dev", "ks-pod0"},
		{"-n", pod, "link", "set", "ks-pod0", "up"},
		{"-n", pod, "route", "add", "default", "via", "10.244.0.1"},
		// The connect's route lookup happens before DNAT: the Service range
		// needs a route (a node's default route, usually).
		{"route", "add", "10.96.0.0/16", "dev", "ks-host0"},
	} {
		isolate.Must(t, "ip", args...)
	}
	// Hairpin traffic is forwarded back out of ks-host0.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", pod).Run() })

	var ln net.Listener
	if err := inNetns(pod, func() (err error) {
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

// trafficChecks returns the test's traffic checks: wantBody (an HTTP GET must
// answer want) and wantRefused (a connection must be refused, in under 100 ms).
func trafficChecks(t *testing.T) (wantBody func(name, addr, want string), wantRefused func(name, addr string)) {
	get := func(addr string) (string, error) {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	wantBody = func(name, addr, want string) {
		t.Helper()
		got, err := get(addr)
		if err != nil || got != want {
			t.Errorf("%s: GET %s = %q, %v; want %q", name, addr, got, err, want)
		}
	}
	wantRefused = func(name, addr string) {
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
	return wantBody, wantRefused
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

// TestKernelAcceptsRulesets feeds the real kernel (in namespaces of its own)
// every golden ruleset, IPv4 and IPv6, then a random sequence of partial syncs
// (the model of TestPartialMatchesFull, with stale chains deleted a clock-second
// later), a restarted Backend that finds stale chains and affinity sets, then
// the IPv6 ruleset with every feature: the kernel must accept every
// transaction, and the table must hold what the Fake holds.
func TestKernelAcceptsRulesets(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft(8)")
	}
	ctx := context.Background()
	clock := newFakeClock()
	newReal := func(family knftables.Family, cidrs, svcCIDRs []netip.Prefix) *Backend {
		b, err := New(Config{Family: family, ClusterCIDRs: cidrs, ServiceCIDRs: svcCIDRs, Now: clock.Now, Sysctl: &fakeSysctl{}})
		if err != nil {
			t.Fatalf("New(%s): %v", family, err)
		}
		return b
	}
	v4 := newReal(knftables.IPv4Family, prefixes("10.0.0.0/8"), prefixes("172.30.0.0/16"))
	if err := v4.Sync(ctx, allGoldenIPv4()); err != nil {
		t.Fatalf("IPv4 goldens: %v", err)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	m := newModel(rand.New(rand.NewPCG(seed, 0)))
	if err := v4.Sync(ctx, m.snapshot(true, nil)); err != nil {
		t.Fatalf("model, full: %v", err)
	}
	fake := newTestEnv(t, nil)
	for step := range 60 {
		changed := map[proxy.ServicePortName]bool{m.mutate(): true, m.mutate(): true}
		if err := v4.Sync(ctx, m.snapshot(false, changed)); err != nil {
			t.Fatalf("seed %d, step %d: partial sync: %v", seed, step, err)
		}
		clock.Step(2 * staleChainDelay)
		if err := v4.Sync(ctx, m.snapshot(false, nil)); err != nil {
			t.Fatalf("seed %d, step %d: stale-chain sync: %v", seed, step, err)
		}
	}
	fake.sync(m.snapshot(true, nil))
	if got, want := sortedLines(unshardBucketMaps(kernelObjects(t, "ip"))), sortedLines(unshardBucketMaps(fakeObjects(fake))); got != want {
		t.Errorf("seed %d: the kernel's table differs from a full sync into the Fake:\n%s", seed, lineDiff(want, got))
	}

	// A restart over that table, to a Snapshot with only the affinity golden
	// case: the full sync flushes what it no longer wants (deleting stale
	// affinity sets at once), a partial sync a second later deletes the chains.
	withAffinity := goldenCases()[5].snap
	restarted := newReal(knftables.IPv4Family, prefixes("10.0.0.0/8"), prefixes("172.30.0.0/16"))
	if err := restarted.Sync(ctx, withAffinity); err != nil {
		t.Fatalf("full sync after a restart: %v", err)
	}
	clock.Step(2 * staleChainDelay)
	withAffinity.Full = false
	if err := restarted.Sync(ctx, withAffinity); err != nil {
		t.Fatalf("stale-chain sync after a restart: %v", err)
	}
	fake = newTestEnv(t, nil)
	fake.sync(goldenCases()[5].snap)
	if got, want := kernelObjects(t, "ip"), fakeObjects(fake); got != want {
		t.Errorf("after a restart, the kernel's table differs from the Fake's:\n%s", lineDiff(want, got))
	}

	c := goldenCases()[8]
	v6 := newReal(knftables.IPv6Family, prefixes("fd00:10::/64"), prefixes("fd00:30::/108"))
	if err := v6.Sync(ctx, c.snap); err != nil {
		t.Fatalf("IPv6 golden: %v", err)
	}
	if err := v6.Sync(ctx, allFeaturesIPv6()); err != nil {
		t.Fatalf("IPv6, every feature: %v", err)
	}
	t.Logf("ip6 table:\n%s", isolate.Must(t, "nft", "list", "table", "ip6", DefaultTableName))
	for _, b := range []*Backend{restarted, v6} {
		if err := b.Cleanup(ctx); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	}
}

// allFeaturesIPv6 has, in IPv6, a load balancer with source ranges, ClientIP
// affinity, eTP Local, iTP Local and a Service without endpoints.
func allFeaturesIPv6() *proxy.Snapshot {
	local := func(s string) proxy.Endpoint { return ep(s, testNode) }
	return newSnap("2001:db8::2").add(&proxy.ServicePort{
		Name: spn("v6", "lb", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
		ClusterIPs: addrs("fd00:30::1"), Port: 80, NodePort: 3101, LoadBalancerIPs: addrs("2001:db8:5::1"),
		LoadBalancerSourceRanges: prefixes("2001:db8:7::/48", "2001:db8::/64"), ExternalPolicyLocal: true,
		AffinityTimeout: time.Hour,
	}, local("[fd00:10::1]:80"), ep("[fd00:10::2]:80", "node-b")).add(&proxy.ServicePort{
		Name: spn("v6", "itp", "dns", corev1.ProtocolUDP), ClusterIPs: addrs("fd00:30::2"), Port: 53,
		InternalPolicyLocal: true, ExternalIPs: addrs("2001:db8:6::1"),
	}, ep("[fd00:10::3]:53", "node-b")).add(&proxy.ServicePort{
		Name: spn("v6", "empty", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
		ClusterIPs: addrs("fd00:30::3"), Port: 80, NodePort: 3103,
	}).s
}

// kernelObjects lists the names of the chains, sets and maps of the kubesvc
// table of family, and the number of rules of each chain, sorted.
func kernelObjects(t *testing.T, family string) string {
	t.Helper()
	var out []string
	for _, kind := range []string{"chains", "sets", "maps"} {
		for _, l := range strings.Split(isolate.Must(t, "nft", "list", kind, family), "\n") {
			l = strings.TrimSpace(l)
			for _, k := range []string{"chain ", "set ", "map "} {
				if name, ok := strings.CutPrefix(l, k); ok && strings.HasSuffix(name, " {") && !strings.HasPrefix(name, family+" ") {
					out = append(out, strings.TrimSpace(k)+" "+strings.TrimSuffix(name, " {"))
				}
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// fakeObjects is kernelObjects for a Fake.
func fakeObjects(env *testEnv) string {
	env.fake.RLock()
	defer env.fake.RUnlock()
	var out []string
	for n := range env.fake.Table.Chains {
		out = append(out, "chain "+n)
	}
	for n := range env.fake.Table.Sets {
		out = append(out, "set "+n)
	}
	for n := range env.fake.Table.Maps {
		out = append(out, "map "+n)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
