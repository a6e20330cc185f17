// Package socklb balances pods' connections to ClusterIPs in connect(), before
// any packet exists: an eBPF program on the cgroup (v2) of a node's pods
// rewrites the destination of a TCP socket that connects to a Service's
// ClusterIP and port into one of the Service's endpoints, chosen at random
// among those the proxy's rules would choose from. The connection then runs
// from pod to pod as if the client had dialled the endpoint: no DNAT, no
// conntrack NAT, no br_netfilter re-routing of its packets. getpeername()
// still shows the Service's address. Cilium calls this socket-LB.
//
// It is an accelerator in front of the proxy's rules, never a replacement:
// every case it leaves alone goes to the nftables or iptables rules as before —
// UDP and SCTP, IPv6, ClientIP session affinity, a Service without endpoints
// (the rules reject it), the node's own processes, NodePorts, external and
// load-balancer IPs, and everything while the maps are empty or the program
// is not attached. Backend wraps the proxy's Backend: after each successful
// sync of the rules it writes the same endpoints into the programs' maps, in a
// few batched bpf(2) calls.
//
// What it changes that a user can see: a pod's connection to a ClusterIP
// leaves no NAT entry in conntrack and meets no rule (counters, traces), and a
// pod that reaches itself through its Service sees its own IP as the client
// where the rules' hairpin masquerade shows the node's.
package socklb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// Map sizes: Service ports (each ClusterIP and port one entry), endpoints of
// all of them, and connections whose Service address getpeername shows (the
// oldest are forgotten first). The kernel allocates a hash map's buckets for
// all of its entries at once (16 bytes each) and the LRU map's entries too:
// about 4 MB for these sizes, enough for 10,000 Services of 10 endpoints
// with room. A port whose endpoints do not fit is left to the rules.
const (
	maxServices    = 1 << 15
	maxBackends    = 1 << 17
	maxRevNATConns = 1 << 14
)

// key is a services-map key or a backends-map value: an IPv4 address and a
// port as the programs read them from struct bpf_sock_addr (the address's
// bytes in network order, the port's two bytes in network order in the low
// half of a native 32-bit word).
type key [8]byte

func addrKey(ip netip.Addr, port int32) key {
	var k key
	a := ip.As4()
	copy(k[:4], a[:])
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(port))
	binary.NativeEndian.PutUint32(k[4:], uint32(binary.NativeEndian.Uint16(p[:])))
	return k
}

func pairKey(a, b uint32) key {
	var k key
	binary.NativeEndian.PutUint32(k[:4], a)
	binary.NativeEndian.PutUint32(k[4:], b)
	return k
}

// LB is the programs, attached to one cgroup, and their maps.
type LB struct {
	services, backends, revnat int
	progs, links               []int
	cgroup                     int
	// ports is what the maps hold, per Service port.
	ports  map[proxy.ServicePortName]portState
	nextID uint32
	// maxServices and maxBackends are the maps' sizes (the constants; tests
	// lower them); usedServices and usedBackends count the entries ports
	// hold.
	maxServices, maxBackends   int
	usedServices, usedBackends int
	// Skipped counts the Service ports the last Sync left to the rules
	// because the maps were full.
	Skipped int
}

// portState is what the maps hold for one Service port: its keys in the
// services map, the id of its endpoint list and their count, and a hash of the
// list to tell a change.
type portState struct {
	keys []key
	id   uint32
	n    uint32
	sum  uint64
}

// Open loads the programs and attaches them to the cgroup v2 folder dir. They
// stay attached until Close (or until this process ends). An error says why
// the kernel refused (no BPF, no cgroup v2, a verifier's complaint); nothing
// is left behind then.
func Open(dir string) (_ *LB, err error) {
	lb := &LB{services: -1, backends: -1, revnat: -1, cgroup: -1, ports: map[proxy.ServicePortName]portState{},
		maxServices: maxServices, maxBackends: maxBackends}
	defer func() {
		if err != nil {
			lb.Close()
		}
	}()
	lb.cgroup, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket load balancing: open cgroup %s: %w", dir, err)
	}
	if lb.services, err = createMap("kubesvc_svc", unix.BPF_MAP_TYPE_HASH, 8, 8, maxServices, unix.BPF_F_NO_PREALLOC); err != nil {
		return nil, fmt.Errorf("socket load balancing: %w", err)
	}
	if lb.backends, err = createMap("kubesvc_be", unix.BPF_MAP_TYPE_HASH, 8, 8, maxBackends, unix.BPF_F_NO_PREALLOC); err != nil {
		return nil, fmt.Errorf("socket load balancing: %w", err)
	}
	if lb.revnat, err = createMap("kubesvc_revnat", unix.BPF_MAP_TYPE_LRU_HASH, 8, 16, maxRevNATConns, 0); err != nil {
		return nil, fmt.Errorf("socket load balancing: %w", err)
	}
	fds := map[string]int{mapServices: lb.services, mapBackends: lb.backends, mapRevNAT: lb.revnat}
	for _, p := range []struct {
		name   string
		attach uint32
		prog   []insn
	}{
		{"kubesvc_connect4", unix.BPF_CGROUP_INET4_CONNECT, connectProgram()},
		{"kubesvc_peer4", unix.BPF_CGROUP_INET4_GETPEERNAME, getpeernameProgram()},
	} {
		code, err := encode(p.prog, fds)
		if err != nil {
			return nil, fmt.Errorf("socket load balancing: %w", err)
		}
		fd, err := loadProgram(p.name, p.attach, code)
		if err != nil {
			return nil, fmt.Errorf("socket load balancing: %w", err)
		}
		lb.progs = append(lb.progs, fd)
		link, err := attachCgroup(fd, lb.cgroup, p.attach)
		if err != nil {
			return nil, fmt.Errorf("socket load balancing: %s: %w", dir, err)
		}
		lb.links = append(lb.links, link)
	}
	return lb, nil
}

// Close detaches the programs and frees the maps. Connections made through
// them go on; new ones go to the proxy's rules.
func (lb *LB) Close() {
	for _, fd := range append(append(lb.links, lb.progs...), lb.services, lb.backends, lb.revnat, lb.cgroup) {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	lb.links, lb.progs = nil, nil
	lb.services, lb.backends, lb.revnat, lb.cgroup = -1, -1, -1, -1
}

// update is one sync's writes, in the order that keeps every lookup of the
// programs consistent: new endpoint lists first, then the Services that point
// to them, then the removals.
type update struct {
	backendKeys, backendValues []byte
	serviceKeys, serviceValues []byte
	serviceDeletes             []byte
	backendDeletes             []byte
	// freeServices and freeBackends are the entries the maps have room for
	// while this update's new entries are written (its removals come last).
	freeServices, freeBackends int
}

func (u *update) apply(lb *LB) error {
	// A key one port gives up and another takes in the same sync (a ClusterIP
	// reused at once) is written, not deleted.
	if len(u.serviceDeletes) > 0 && len(u.serviceKeys) > 0 {
		written := make(map[key]bool, len(u.serviceKeys)/8)
		for i := 0; i < len(u.serviceKeys); i += 8 {
			written[key(u.serviceKeys[i:i+8])] = true
		}
		kept := u.serviceDeletes[:0]
		for i := 0; i < len(u.serviceDeletes); i += 8 {
			if !written[key(u.serviceDeletes[i:i+8])] {
				kept = append(kept, u.serviceDeletes[i:i+8]...)
			}
		}
		u.serviceDeletes = kept
	}
	return errors.Join(
		updateBatch(lb.backends, u.backendKeys, u.backendValues, len(u.backendKeys)/8),
		updateBatch(lb.services, u.serviceKeys, u.serviceValues, len(u.serviceKeys)/8),
		deleteBatch(lb.services, u.serviceDeletes, 8, len(u.serviceDeletes)/8),
		deleteBatch(lb.backends, u.backendDeletes, 8, len(u.backendDeletes)/8),
	)
}

// Sync makes the maps match s for the ports that changed (every port when
// s.Full): the endpoints that traffic from a pod of this node gets under the
// port's internal traffic policy (see proxy.CategorizeEndpoints).
func (lb *LB) Sync(s *proxy.Snapshot) error {
	u := update{freeServices: lb.maxServices - lb.usedServices, freeBackends: lb.maxBackends - lb.usedBackends}
	lb.Skipped = 0
	touch := func(name proxy.ServicePortName) {
		lb.plan(&u, name, s.Services[name], s.Endpoints[name], s.Node)
	}
	if s.Full {
		for name := range lb.ports {
			if _, ok := s.Services[name]; !ok {
				touch(name)
			}
		}
		for name := range s.Services {
			touch(name)
		}
	} else {
		for name := range s.Changed {
			touch(name)
		}
	}
	if err := u.apply(lb); err != nil {
		// The maps may hold part of this sync: forget them, so that the next
		// sync rewrites everything, and leave the Services to the rules now.
		if cerr := lb.clear(); cerr != nil {
			// Stale entries could send connections to gone endpoints: stop
			// balancing in connect() altogether.
			lb.detach()
			return fmt.Errorf("%w; emptying the maps failed too (%w): the programs are detached, the rules take every connection", err, cerr)
		}
		return err
	}
	return nil
}

// clear empties the services map (connections then go to the proxy's rules)
// and forgets what the maps held.
func (lb *LB) clear() error {
	var keys []byte
	for _, st := range lb.ports {
		for _, k := range st.keys {
			keys = append(keys, k[:]...)
		}
	}
	lb.ports = map[proxy.ServicePortName]portState{}
	lb.usedServices, lb.usedBackends = 0, 0
	return deleteBatch(lb.services, keys, 8, len(keys)/8)
}

// detach closes the programs' links: connect() is no longer changed.
func (lb *LB) detach() {
	for _, fd := range lb.links {
		_ = unix.Close(fd)
	}
	lb.links = nil
}

// plan adds to u what makes the maps hold svc's endpoints (none when svc is
// nil or left to the rules).
func (lb *LB) plan(u *update, name proxy.ServicePortName, svc *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo) {
	old, had := lb.ports[name]
	var want portState
	var backends []key
	if handled(svc) {
		for _, ip := range svc.ClusterIPs {
			if ip.Is4() {
				want.keys = append(want.keys, addrKey(ip, svc.Port))
			}
		}
		cluster, local, _ := proxy.CategorizeEndpoints(eps, svc, node)
		if svc.InternalPolicyLocal {
			cluster = local
		}
		h := fnv.New64a()
		for _, ep := range cluster {
			if ep.IP.Is4() {
				k := addrKey(ep.IP, ep.Port)
				backends = append(backends, k)
				_, _ = h.Write(k[:])
			}
		}
		want.n, want.sum = uint32(len(backends)), h.Sum64()
	}
	if len(want.keys) == 0 || want.n == 0 {
		// Nothing to balance here: the rules take the port's connections.
		if had {
			for _, k := range old.keys {
				u.serviceDeletes = append(u.serviceDeletes, k[:]...)
			}
			u.deleteList(old)
			lb.forget(name, old)
		}
		return
	}
	if had && old.n == want.n && old.sum == want.sum && slices.Equal(old.keys, want.keys) {
		return
	}
	newKeys := 0
	for _, k := range want.keys {
		if !slices.Contains(old.keys, k) {
			newKeys++
		}
	}
	if newKeys > u.freeServices || len(backends) > u.freeBackends {
		// The maps are full: the rules take this port.
		lb.Skipped++
		if had {
			for _, k := range old.keys {
				u.serviceDeletes = append(u.serviceDeletes, k[:]...)
			}
			u.deleteList(old)
			lb.forget(name, old)
		}
		return
	}
	u.freeServices -= newKeys
	u.freeBackends -= len(backends)
	lb.nextID++
	if lb.nextID == 0 {
		lb.nextID++
	}
	want.id = lb.nextID
	for i, b := range backends {
		k := pairKey(want.id, uint32(i))
		u.backendKeys = append(u.backendKeys, k[:]...)
		u.backendValues = append(u.backendValues, b[:]...)
	}
	v := pairKey(want.n, want.id)
	for _, k := range want.keys {
		u.serviceKeys = append(u.serviceKeys, k[:]...)
		u.serviceValues = append(u.serviceValues, v[:]...)
	}
	if had {
		for _, k := range old.keys {
			if !slices.Contains(want.keys, k) {
				u.serviceDeletes = append(u.serviceDeletes, k[:]...)
			}
		}
		u.deleteList(old)
		lb.forget(name, old)
	}
	lb.ports[name] = want
	lb.usedServices += len(want.keys)
	lb.usedBackends += int(want.n)
}

// forget drops name's state (st) from what the maps are known to hold.
func (lb *LB) forget(name proxy.ServicePortName, st portState) {
	delete(lb.ports, name)
	lb.usedServices -= len(st.keys)
	lb.usedBackends -= int(st.n)
}

// deleteList removes st's endpoint list.
func (u *update) deleteList(st portState) {
	for i := range st.n {
		k := pairKey(st.id, i)
		u.backendDeletes = append(u.backendDeletes, k[:]...)
	}
}

// handled reports whether connections to svc's ClusterIPs may be balanced in
// connect(): TCP without session affinity (the rules keep ClientIP affinity's
// per-client memory).
func handled(svc *proxy.ServicePort) bool {
	return svc != nil && svc.Protocol == corev1.ProtocolTCP && svc.AffinityTimeout == 0
}

// Lookup returns the endpoint list the services map holds for ip:port, in
// the maps' order (nil when none): for tests and diagnostics.
func (lb *LB) Lookup(ip netip.Addr, port int32) ([]netip.AddrPort, error) {
	k := addrKey(ip, port)
	var v [8]byte
	ok, err := lookupElem(lb.services, k[:], v[:])
	if err != nil || !ok {
		return nil, err
	}
	n, id := binary.NativeEndian.Uint32(v[:4]), binary.NativeEndian.Uint32(v[4:])
	out := make([]netip.AddrPort, 0, n)
	for i := range n {
		bk := pairKey(id, i)
		var bv [8]byte
		ok, err := lookupElem(lb.backends, bk[:], bv[:])
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("endpoint %d of %s:%d is missing from the map", i, ip, port)
		}
		var p [2]byte
		binary.NativeEndian.PutUint16(p[:], uint16(binary.NativeEndian.Uint32(bv[4:])))
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte(bv[:4])), binary.BigEndian.Uint16(p[:])))
	}
	return out, nil
}

// Backend runs LB.Sync after each successful sync of the proxy's Backend
// (with no LB, it is the proxy's Backend alone; set LB before the proxy runs). An
// error of the maps does not fail the sync: the rules are in place and take
// every connection the maps no longer hold; it is logged, and the next sync
// writes the maps again from scratch.
type Backend struct {
	proxy.Backend
	LB  *LB
	Log *slog.Logger
	// failed: the last LB.Sync failed; the next one rewrites every port.
	failed bool
	// skipped is the last sync's LB.Skipped (logged when it changes).
	skipped int
	// held, endpoints and skippedPorts are what the maps hold after the last
	// sync, for the metrics (read while the next sync runs).
	held, endpoints, skippedPorts atomic.Int64
	attached                      atomic.Bool
}

// Metric descriptions (Backend is a prometheus.Collector): attached, ports,
// endpoints, skipped.
func metricDescs() [4]*prometheus.Desc {
	return [4]*prometheus.Desc{
		prometheus.NewDesc("kubesvc_socket_lb_attached",
			"1 when pods' TCP connections to ClusterIPs are balanced in connect() (socket load balancing), 0 when they go through the proxy's rules", nil, nil),
		prometheus.NewDesc("kubesvc_socket_lb_service_ports",
			"Service ports whose pods' connections are balanced in connect()", nil, nil),
		prometheus.NewDesc("kubesvc_socket_lb_endpoints",
			"Endpoints in the socket load balancing maps", nil, nil),
		prometheus.NewDesc("kubesvc_socket_lb_skipped_service_ports",
			"Service ports left to the proxy's rules because the socket load balancing maps are full", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (b *Backend) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metricDescs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (b *Backend) Collect(ch chan<- prometheus.Metric) {
	d := metricDescs()
	attached := 0.0
	if b.attached.Load() {
		attached = 1
	}
	for i, v := range []float64{attached, float64(b.held.Load()), float64(b.endpoints.Load()), float64(b.skippedPorts.Load())} {
		ch <- prometheus.MustNewConstMetric(d[i], prometheus.GaugeValue, v)
	}
}

// Sync implements proxy.Backend.
func (b *Backend) Sync(ctx context.Context, s *proxy.Snapshot) error {
	if err := b.Backend.Sync(ctx, s); err != nil {
		return err
	}
	if b.LB == nil {
		return nil
	}
	if b.failed && !s.Full {
		full := *s
		full.Full = true
		s = &full
	}
	err := b.LB.Sync(s)
	b.failed = err != nil
	if err != nil {
		b.Log.Error("socket load balancing: the maps could not follow; pods' connections go through the rules until the next sync", "err", err)
	}
	if n := b.LB.Skipped; n > 0 && n != b.skipped {
		b.Log.Warn("socket load balancing: the maps are full; these Service ports go through the rules", "ports", n, "maxServicePorts", b.LB.maxServices, "maxEndpoints", b.LB.maxBackends)
	}
	b.skipped = b.LB.Skipped
	b.held.Store(int64(len(b.LB.ports)))
	b.endpoints.Store(int64(b.LB.usedBackends))
	b.skippedPorts.Store(int64(b.LB.Skipped))
	b.attached.Store(len(b.LB.links) > 0)
	return nil
}

// Cleanup implements proxy.Backend: the rules' cleanup, and empty maps.
func (b *Backend) Cleanup(ctx context.Context) error {
	if b.LB != nil {
		if err := b.LB.clear(); err != nil {
			b.LB.detach()
		}
	}
	return b.Backend.Cleanup(ctx)
}
