// Package fake is an in-memory podnet.Network for the agent's unit tests: it
// hands out addresses from the pod CIDRs as the real one does (skipping the
// network, the bridge's and the broadcast address), records every call, and can
// be told to fail a method or to behave as if the pod CIDR were full. Nothing
// touches the kernel or the disk.
package fake

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
)

// Method names a Network method, for Calls and Fail.
type Method string

const (
	MethodEnsure           Method = "Ensure"
	MethodAddPod           Method = "AddPod"
	MethodDelPod           Method = "DelPod"
	MethodListPods         Method = "ListPods"
	MethodSyncRoutes       Method = "SyncRoutes"
	MethodReleaseOrphanIPs Method = "ReleaseOrphanIPs"
)

// Call is one recorded call: the method and its argument (NodeNetwork, PodRef,
// the pod UID string, []podnet.Route, the live set; nil for ListPods).
type Call struct {
	Method Method
	Arg    any
}

// Fake is an in-memory podnet.Network, safe for concurrent use. The zero value
// is not ready: use New.
type Fake struct {
	mu       sync.Mutex
	node     *podnet.NodeNetwork
	pods     map[string]*podnet.PodNetwork
	owner    map[netip.Addr]string // allocated address → pod UID (also orphans)
	last     map[netip.Prefix]netip.Addr
	routes   []podnet.Route
	calls    []Call
	fail     map[Method]error
	full     bool
	nsPrefix string
}

var _ podnet.Network = (*Fake)(nil)

// New returns an unconfigured Fake (AddPod answers ErrNotConfigured until Ensure).
func New() *Fake {
	return &Fake{
		pods:     map[string]*podnet.PodNetwork{},
		owner:    map[netip.Addr]string{},
		last:     map[netip.Prefix]netip.Addr{},
		fail:     map[Method]error{},
		nsPrefix: "/fake/netns/",
	}
}

// Fail makes every later call of m return err (after recording the call); a nil
// err clears it.
func (f *Fake) Fail(m Method, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, m)
		return
	}
	f.fail[m] = err
}

// SetExhausted makes AddPod of a new pod fail with ErrPodCIDRExhausted as long as
// full is true, as if every address were taken.
func (f *Fake) SetExhausted(full bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = full
}

// Orphan records an allocated address of a pod that has no network (what a
// crash between allocating and setting up leaves), for ReleaseOrphanIPs tests.
func (f *Fake) Orphan(ip netip.Addr, podUID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owner[ip] = podUID
}

// Calls returns the calls so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// CallsTo returns the arguments of the calls of m so far, in order.
func (f *Fake) CallsTo(m Method) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var args []any
	for _, c := range f.calls {
		if c.Method == m {
			args = append(args, c.Arg)
		}
	}
	return args
}

// Node returns what the last successful Ensure set up.
func (f *Fake) Node() (podnet.NodeNetwork, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.node == nil {
		return podnet.NodeNetwork{}, false
	}
	return *f.node, true
}

// Routes returns the routes the last successful SyncRoutes set.
func (f *Fake) Routes() []podnet.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

// Dump describes the state, one line per pod, address and route, sorted: for
// golden comparisons and failure messages.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	if f.node != nil {
		lines = append(lines, fmt.Sprintf("node podCIDRs=%v", f.node.PodCIDRs))
	}
	for _, p := range f.pods {
		lines = append(lines, fmt.Sprintf("pod %s %s/%s ips=%v veth=%s", p.Pod.UID, p.Pod.Namespace, p.Pod.Name, p.IPs, p.HostVeth))
	}
	for ip, uid := range f.owner {
		lines = append(lines, fmt.Sprintf("ip %s %s", ip, uid))
	}
	for _, r := range f.routes {
		lines = append(lines, fmt.Sprintf("route %s via %s", r.Dst, r.Via))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// record records a call and returns the error Fail set for m.
func (f *Fake) record(m Method, arg any) error {
	f.calls = append(f.calls, Call{Method: m, Arg: arg})
	return f.fail[m]
}

// Ensure records nn as the node's network.
func (f *Fake) Ensure(ctx context.Context, nn podnet.NodeNetwork) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(MethodEnsure, nn); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(nn.PodCIDRs) == 0 {
		return fmt.Errorf("fake podnet: %w", podnet.ErrNotConfigured)
	}
	nn.PodCIDRs = slices.Clone(nn.PodCIDRs)
	f.node = &nn
	return nil
}

// AddPod allocates an address per pod CIDR (the pod's own when it has one).
func (f *Fake) AddPod(ctx context.Context, pod podnet.PodRef) (*podnet.PodNetwork, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(MethodAddPod, pod); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.node == nil {
		return nil, fmt.Errorf("fake podnet: %w", podnet.ErrNotConfigured)
	}
	if pod.UID == "" {
		return nil, errors.New("fake podnet: empty pod UID")
	}
	if p, ok := f.pods[pod.UID]; ok {
		return clonePod(p), nil
	}
	pn := &podnet.PodNetwork{Pod: pod, NetNSPath: f.nsPrefix + pod.UID, HostVeth: podnet.HostVethName(pod.UID)}
	for _, cidr := range f.node.PodCIDRs {
		ip, err := f.allocate(cidr, pod.UID)
		if err != nil {
			for _, got := range pn.IPs {
				delete(f.owner, got)
			}
			return nil, err
		}
		pn.IPs = append(pn.IPs, ip)
	}
	slices.SortFunc(pn.IPs, func(a, b netip.Addr) int {
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
	f.pods[pod.UID] = pn
	return clonePod(pn), nil
}

// allocate hands out the pod's address in cidr or the next free one after the
// last, skipping the network, the bridge's and the IPv4 broadcast address.
func (f *Fake) allocate(cidr netip.Prefix, uid string) (netip.Addr, error) {
	for ip, owner := range f.owner {
		if owner == uid && cidr.Contains(ip) {
			return ip, nil
		}
	}
	if f.full {
		return netip.Addr{}, fmt.Errorf("fake podnet: %s: %w", cidr, podnet.ErrPodCIDRExhausted)
	}
	first, last := podnet.PodRange(cidr)
	ip := first
	if prev, ok := f.last[cidr]; ok && prev.Compare(last) < 0 {
		ip = prev.Next()
	}
	// A fake serves small tests: it looks at 1<<16 candidates (going round a small
	// range many times) before it calls the range full.
	for range 1 << 16 {
		if _, taken := f.owner[ip]; !taken {
			f.owner[ip] = uid
			f.last[cidr] = ip
			return ip, nil
		}
		if ip == last {
			ip = first
		} else {
			ip = ip.Next()
		}
	}
	return netip.Addr{}, fmt.Errorf("fake podnet: %s: %w", cidr, podnet.ErrPodCIDRExhausted)
}

// DelPod forgets the pod and releases its addresses.
func (f *Fake) DelPod(ctx context.Context, podUID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(MethodDelPod, podUID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	delete(f.pods, podUID)
	for ip, owner := range f.owner {
		if owner == podUID {
			delete(f.owner, ip)
		}
	}
	return nil
}

// ListPods returns the pods, sorted by UID.
func (f *Fake) ListPods(ctx context.Context) ([]podnet.PodNetwork, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(MethodListPods, nil); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]podnet.PodNetwork, 0, len(f.pods))
	for _, p := range f.pods {
		out = append(out, *clonePod(p))
	}
	slices.SortFunc(out, func(a, b podnet.PodNetwork) int { return strings.Compare(a.Pod.UID, b.Pod.UID) })
	return out, nil
}

// SyncRoutes records routes as the node's routes to other nodes.
func (f *Fake) SyncRoutes(ctx context.Context, routes []podnet.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	routes = slices.Clone(routes)
	if err := f.record(MethodSyncRoutes, routes); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.routes = routes
	return nil
}

// ReleaseOrphanIPs releases the addresses whose pod is neither live nor has a
// network.
func (f *Fake) ReleaseOrphanIPs(ctx context.Context, live map[string]bool) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(MethodReleaseOrphanIPs, live); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var released []netip.Addr
	for ip, owner := range f.owner {
		if _, has := f.pods[owner]; !live[owner] && !has {
			delete(f.owner, ip)
			released = append(released, ip)
		}
	}
	slices.SortFunc(released, netip.Addr.Compare)
	return released, nil
}

func clonePod(p *podnet.PodNetwork) *podnet.PodNetwork {
	c := *p
	c.IPs = slices.Clone(p.IPs)
	return &c
}
