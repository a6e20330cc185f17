package iptables

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

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

// testEnv is a Backend over a Fake.
type testEnv struct {
	t      *testing.T
	b      *Backend
	fake   *Fake
	sysctl *fakeSysctl
}

// newTestEnv makes a Backend over a Fake with the test cluster's defaults
// (IPv4, cluster CIDR 10.0.0.0/8, no Service CIDR), then mutate's changes.
func newTestEnv(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	cfg := Config{
		Family:       corev1.IPv4Protocol,
		NodeName:     testNode,
		ClusterCIDRs: prefixes("10.0.0.0/8"),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	env := &testEnv{t: t, fake: NewFake(), sysctl: &fakeSysctl{}}
	cfg.Executor, cfg.Sysctl = env.fake, env.sysctl
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

// lastRestore is the input of the last Restore.
func (e *testEnv) lastRestore() string {
	r := e.fake.Restores()
	if len(r) == 0 {
		return ""
	}
	return string(r[len(r)-1])
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

// add adds a ServicePort (its Protocol and Type defaulted) and its endpoints.
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

// normalize trims lines and drops blank ones and comments.
func normalize(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// assertLines compares two iptables-save texts line by line (the Fake's dump
// is deterministic).
func assertLines(t *testing.T, what, got, want string) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !slices.Equal(g, w) {
		t.Errorf("%s differs (-want +got):\n%s\ngot:\n%s", what, cmp.Diff(w, g), strings.Join(g, "\n"))
	}
}
