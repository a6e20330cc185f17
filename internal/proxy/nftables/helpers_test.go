package nftables

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

const testNode = "node-a"

// fakeSysctl records writes.
type fakeSysctl struct {
	mu  sync.Mutex
	set map[string]string
}

func (f *fakeSysctl) Set(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil {
		f.set = make(map[string]string)
	}
	f.set[name] = value
	return nil
}

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time        { return c.t }
func (c *fakeClock) Step(d time.Duration)  { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock             { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func addr(s string) netip.Addr             { return netip.MustParseAddr(s) }
func addrs(ss ...string) []netip.Addr      { return mapSlice(ss, addr) }
func prefixes(ss ...string) []netip.Prefix { return mapSlice(ss, netip.MustParsePrefix) }
func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// testEnv is a Backend over a knftables.Fake.
type testEnv struct {
	t      *testing.T
	b      *Backend
	fake   *knftables.Fake
	sysctl *fakeSysctl
	clock  *fakeClock
}

// newTestEnv makes a Backend over a Fake with the test cluster's defaults (IPv4,
// cluster CIDR 10.0.0.0/8, Service CIDR 172.30.0.0/16), then mutate's changes.
func newTestEnv(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	cfg := Config{
		Family:       knftables.IPv4Family,
		NodeName:     testNode,
		ClusterCIDRs: prefixes("10.0.0.0/8"),
		ServiceCIDRs: prefixes("172.30.0.0/16"),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	table := cfg.TableName
	if table == "" {
		table = DefaultTableName
	}
	env := &testEnv{t: t, fake: knftables.NewFake(cfg.Family, table), sysctl: &fakeSysctl{}, clock: newFakeClock()}
	cfg.NFT, cfg.Sysctl, cfg.Now = env.fake, env.sysctl, env.clock.Now
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	env.b = b
	return env
}

// sync runs a Sync and fails the test on error.
func (e *testEnv) sync(s *proxy.Snapshot) {
	e.t.Helper()
	if err := e.b.Sync(context.Background(), s); err != nil {
		e.t.Fatalf("Sync: %v", err)
	}
}

// lastOps is the number of operations of the last transaction run.
func (e *testEnv) lastOps() int {
	e.fake.RLock()
	defer e.fake.RUnlock()
	if e.fake.LastTransaction == nil {
		return 0
	}
	return e.fake.LastTransaction.NumOperations()
}

// snap builds Snapshots.
type snap struct{ s *proxy.Snapshot }

func newSnap(nodeIPs ...string) *snap {
	return &snap{s: &proxy.Snapshot{
		Services:  make(map[proxy.ServicePortName]*proxy.ServicePort),
		Endpoints: make(map[proxy.ServicePortName][]proxy.Endpoint),
		Node:      proxy.NodeInfo{Name: testNode, IPs: addrs(nodeIPs...)},
		Full:      true,
		Changed:   make(map[proxy.ServicePortName]bool),
	}}
}

func spn(ns, name, port string, proto corev1.Protocol) proxy.ServicePortName {
	return proxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: proto}
}

// add adds a ServicePort (its Name, Protocol default from name) and its endpoints.
func (b *snap) add(sp *proxy.ServicePort, eps ...proxy.Endpoint) *snap {
	if sp.Protocol == "" {
		sp.Protocol = sp.Name.Protocol
	}
	if sp.Type == "" {
		sp.Type = corev1.ServiceTypeClusterIP
	}
	b.s.Services[sp.Name] = sp
	if len(eps) > 0 {
		b.s.Endpoints[sp.Name] = eps
	}
	return b
}

// ep is a ready endpoint; local when node is testNode.
func ep(ipPort string, node string) proxy.Endpoint {
	ap := netip.MustParseAddrPort(ipPort)
	return proxy.Endpoint{IP: ap.Addr(), Port: int32(ap.Port()), Ready: true, Serving: true, NodeName: node, IsLocal: node == testNode}
}

// normalizeDump makes a Fake dump (or a golden) comparable whatever the order
// of map iteration: lines are trimmed, and sorted, except that the rules of a
// chain keep their order (a stable sort by chain name).
func normalizeDump(s string) string {
	var other, rules []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "add rule "):
			rules = append(rules, l)
		default:
			other = append(other, l)
		}
	}
	slices.Sort(other)
	chainOf := func(rule string) string { return strings.Fields(rule)[4] }
	slices.SortStableFunc(rules, func(a, b string) int { return strings.Compare(chainOf(a), chainOf(b)) })
	return strings.Join(append(other, rules...), "\n")
}

// assertDump compares the Fake's table with want, order-insensitively for
// elements.
func (e *testEnv) assertDump(want string) {
	e.t.Helper()
	got, exp := normalizeDump(e.fake.Dump()), normalizeDump(want)
	if got != exp {
		e.t.Errorf("ruleset differs (-want +got):\n%s\nfull ruleset:\n%s", cmp.Diff(strings.Split(exp, "\n"), strings.Split(got, "\n")), got)
	}
}
