package nftables

import (
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// serviceState is what one ServicePort owns in the table, by id (Backend.svcs).
// It is kept small (10,000 of them at 10,000 Services): chain names are
// derived from base, endpoints are packed bytes, and what is rare (endpoint
// chains, affinity sets) sits behind a pointer.
type serviceState struct {
	name proxy.ServicePortName
	// base is "HASH-ns/name/proto/port", its chains' names without the prefix.
	base string
	// chains are its chains of each kind (a bit per chainKind); hashes a hash
	// of each one's rules, so that a partial sync rewrites only the chains
	// whose rules changed (an endpoint change then adds no rule, and the
	// kernel does not validate the table).
	chains uint8
	hashes [numChainKinds]uint64
	// windows are its policy chains that own a window of endpoint-buckets,
	// in chain-kind order; hairpin its endpoint addresses (in
	// hairpin-endpoints), packed (packAddrs).
	windows []windowState
	hairpin string
	// epObjects are its endpoint chains and affinity sets (ClientIP
	// affinity, or no window); nil without.
	epObjects *endpointObjects
	// elems are the keys it has in the element stores (their values are
	// derived from it).
	elems []ownedElem
}

// endpointObjects are the per-endpoint chains of a ServicePort that uses them,
// with a hash of each one's rules, and its affinity sets.
type endpointObjects struct {
	chains       []string
	hashes       []uint64
	affinitySets []string
}

func (st *serviceState) has(k chainKind) bool { return st.chains&(1<<k) != 0 }

// chainName is the name of its chain of kind k.
func (st *serviceState) chainName(k chainKind) string { return chainKindPrefixes[k] + st.base }

// chainNames are the names of all its chains.
func (st *serviceState) chainNames() []string {
	var out []string
	for k := range numChainKinds {
		if st.has(k) {
			out = append(out, st.chainName(k))
		}
	}
	if st.epObjects != nil {
		out = append(out, st.epObjects.chains...)
	}
	return out
}

func (st *serviceState) affinitySets() []string {
	if st.epObjects == nil {
		return nil
	}
	return st.epObjects.affinitySets
}

// window is its window for the policy chain of kind k.
func (st *serviceState) window(k chainKind) (windowState, bool) {
	for _, w := range st.windows {
		if w.kind == k {
			return w, true
		}
	}
	return windowState{}, false
}

// syncServicePort rebuilds one ServicePort in tx from s: its chains (added and
// flushed, then filled), affinity sets and element contributions. A ServicePort
// that is gone from s, or has no ClusterIP of this family, loses everything; the
// chains it no longer needs are flushed and left for deleteStaleChains, its
// affinity sets no longer needed are deleted.
func (b *Backend) syncServicePort(tx *txn, s *proxy.Snapshot, name proxy.ServicePortName, now time.Time) {
	id, had := b.ids[name]
	var old serviceState
	if had {
		old = b.svcs[id]
	}
	var st serviceState
	var elems []ownedElem
	ok := false
	if svc := s.Services[name]; svc != nil {
		st, elems, ok = b.writeServicePort(tx, name, svc, s.Endpoints[name], s.Node, &old)
	}
	switch {
	case !ok && had:
		b.setElements(id, nil)
		delete(b.ids, name)
		b.releasedIDs = append(b.releasedIDs, id)
		// The name stays until the id is reused: the stores may still name
		// it in this sync.
		b.svcs[id] = serviceState{name: name}
	case ok:
		if !had {
			id = b.newID(name)
		}
		st.elems = b.svcs[id].elems
		b.svcs[id] = st
		b.setElements(id, elems)
	}
	b.buckets.update(old.windows, st.windows, protoName(name.Protocol))
	b.hairpin.update(old.hairpin, st.hairpin)
	for k := range numChainKinds {
		if old.has(k) && !st.has(k) {
			c := old.chainName(k)
			tx.Flush(&knftables.Chain{Name: c})
			b.staleChains[c] = now
		}
	}
	if old.epObjects != nil {
		var cur []string
		if st.epObjects != nil {
			cur = st.epObjects.chains
		}
		for _, c := range old.epObjects.chains {
			if !slices.Contains(cur, c) {
				tx.Flush(&knftables.Chain{Name: c})
				b.staleChains[c] = now
			}
		}
	}
	// After the flushes: a set can be deleted once no rule refers to it.
	for _, set := range old.affinitySets() {
		if !slices.Contains(st.affinitySets(), set) {
			tx.Delete(&knftables.Set{Name: set})
		}
	}
	for _, w := range old.windows {
		if _, ok := st.window(w.kind); !ok {
			b.windows.release(w.win)
		}
	}
}

// newID gives name an id: a free one, or a new one.
func (b *Backend) newID(name proxy.ServicePortName) uint32 {
	var id uint32
	if n := len(b.freeIDs); n > 0 {
		id = b.freeIDs[n-1]
		b.freeIDs = b.freeIDs[:n-1]
		b.svcs[id] = serviceState{}
	} else {
		id = uint32(len(b.svcs))
		b.svcs = append(b.svcs, serviceState{})
	}
	b.ids[name] = id
	return id
}

// owner is the state of id, for the element stores.
func (b *Backend) owner(id uint32) *serviceState { return &b.svcs[id] }

// setElements makes elems everything id wants in the element stores (none:
// the owner is gone). Operations are emitted by the stores' flushTo.
func (b *Backend) setElements(id uint32, elems []ownedElem) {
	st := &b.svcs[id]
	for _, e := range st.elems {
		b.stores[e.store].remove(id, e.key)
	}
	for _, e := range elems {
		b.stores[e.store].add(id, e.key, e.val)
	}
	st.elems = elems
}

// servicePlan is one ServicePort, resolved for this family: its addresses,
// endpoints, which chains it uses and where each kind of traffic goes.
type servicePlan struct {
	name     proxy.ServicePortName
	svc      *proxy.ServicePort
	protocol string // "tcp", "udp" or "sctp"

	clusterIP              netip.Addr
	externalIPs, lbIPs     []netip.Addr
	cluster, local, reach  []proxy.Endpoint
	epChains, affinitySets map[netip.AddrPort]string

	// chains are the names of its chains by kind, made when first needed
	// (chain); 40,000 names at 10,000 Services, most never used.
	chains [numChainKinds]string

	usesClusterChain, usesLocalChain, usesExternalChain bool
	usesFirewallChain                                   bool
	hasEndpoints, hasInternal, hasExternal              bool
	// internalKind and externalPolicyKind are the policy chains internal and
	// external traffic go to.
	internalKind, externalPolicyKind chainKind
	// internalVerdict and externalVerdict are the no-endpoint verdicts ("goto
	// reject-chain" or "drop") when there is no endpoint for that traffic.
	internalVerdict, externalVerdict string
	affinityTimeout                  time.Duration
	// windowed: the policy chains pick their endpoint in windows of
	// endpoint-buckets (win, by chain kind: kindCluster and kindLocal), not
	// through endpoint chains (ClientIP affinity, or no window left).
	windowed bool
	win      [2]uint32
	// base is the per-ServicePort part of its chains' names; proto its
	// protocol as an l4Proto.
	base  string
	proto uint8
}

// plan resolves svc for this family; nil when it has no ClusterIP of it.
//
// The plan is built into *p, which the caller owns (a servicePlan of its
// stack: 10,000 of them in a full sync at 10,000 Services need not be on the
// heap).
func (b *Backend) plan(p *servicePlan, name proxy.ServicePortName, svc *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo) *servicePlan {
	*p = servicePlan{
		name:     name,
		svc:      svc,
		protocol: protoName(svc.Protocol),
	}
	// The Service's first ClusterIP of this family (its primary, for its family).
	for _, ip := range svc.ClusterIPs {
		if ip = ip.Unmap(); ip.IsValid() && ip.Is6() == b.ipv6 {
			p.clusterIP = ip
			break
		}
	}
	if !p.clusterIP.IsValid() {
		return nil
	}
	p.externalIPs = b.familyAddrs(svc.ExternalIPs)
	p.lbIPs = b.familyAddrs(svc.LoadBalancerIPs)
	if svc.LocalhostLoadBalancer && b.localhostLB() {
		// As an external IP: no loadBalancerSourceRanges for the node itself.
		p.externalIPs = append(p.externalIPs, localhostV4)
	}
	famEps := eps
	if slices.ContainsFunc(eps, func(ep proxy.Endpoint) bool { return !b.usableEndpoint(&ep) }) {
		famEps = nil
		for _, ep := range eps {
			if b.usableEndpoint(&ep) {
				famEps = append(famEps, ep)
			}
		}
	}
	p.cluster, p.local, p.reach = proxy.CategorizeEndpoints(famEps, svc, node)
	p.hasEndpoints = proxy.HasUsableEndpoints(famEps)

	p.proto = l4ProtoOf(p.protocol)
	p.base = servicePortChainBase(name, p.protocol)
	p.affinityTimeout = svc.AffinityTimeout

	p.usesClusterChain = len(p.cluster) > 0 && svc.UsesClusterEndpoints()
	p.usesLocalChain = len(p.local) > 0 && svc.UsesLocalEndpoints()
	p.internalKind, p.hasInternal = kindCluster, p.hasEndpoints
	if svc.InternalPolicyLocal {
		p.internalKind, p.hasInternal = kindLocal, p.hasEndpoints && len(p.local) > 0
	}
	p.externalPolicyKind, p.hasExternal = kindCluster, p.hasEndpoints
	if svc.ExternalPolicyLocal {
		p.externalPolicyKind, p.hasExternal = kindLocal, p.hasEndpoints && len(p.local) > 0
	}
	// The external chain exists whenever there are endpoints anywhere, even none
	// for external traffic: it holds the short-circuits for pod and node traffic.
	externallyAccessible := svc.NodePort != 0 && b.nodePorts.enabled || len(p.externalIPs) > 0 || len(p.lbIPs) > 0
	p.usesExternalChain = p.hasEndpoints && externallyAccessible
	p.usesFirewallChain = len(p.lbIPs) > 0 && len(svc.LoadBalancerSourceRanges) > 0

	reject := "goto " + rejectChain
	switch {
	case !p.hasEndpoints:
		p.internalVerdict, p.externalVerdict = reject, reject
	default:
		if !p.hasInternal {
			p.internalVerdict = "drop" // iTP Local, no local endpoint
		}
		if !p.hasExternal {
			p.externalVerdict = "drop" // eTP Local, no local endpoint
		}
	}
	return p
}

// windowKind reports whether chain is one of p's policy chains with a window,
// and which.
func (p *servicePlan) windowKind(chain string) (chainKind, bool) {
	if !p.windowed {
		return 0, false
	}
	for _, k := range []chainKind{kindCluster, kindLocal} {
		if p.chains[k] == chain {
			return k, true
		}
	}
	return 0, false
}

// chain is the name of p's chain of kind k.
func (p *servicePlan) chain(k chainKind) string {
	if p.chains[k] == "" {
		p.chains[k] = chainKindPrefixes[k] + p.base
	}
	return p.chains[k]
}

// usableEndpoint reports whether ep has an address of this family and a port.
func (b *Backend) usableEndpoint(ep *proxy.Endpoint) bool {
	return ep.IP.Unmap().Is6() == b.ipv6 && ep.Port > 0
}

// nameEndpointObjects names the endpoint chains and affinity sets of p's
// endpoints: for a ServicePort that uses endpoint chains (no window), after
// allocWindows (hashing 100,000 names it does not use was a tenth of a full
// sync at 10,000 Services).
func (p *servicePlan) nameEndpointObjects() {
	p.epChains = make(map[netip.AddrPort]string, len(p.reach))
	if p.affinityTimeout > 0 {
		p.affinitySets = make(map[netip.AddrPort]string, len(p.reach))
	}
	for _, ep := range p.reach {
		k := netip.AddrPortFrom(ep.IP, uint16(ep.Port))
		p.epChains[k] = endpointChainName(p.name, p.protocol, ep)
		if p.affinityTimeout > 0 {
			p.affinitySets[k] = affinitySetName(p.name, p.protocol, ep, int64(p.affinityTimeout/time.Second))
		}
	}
}

// endpointChain and affinitySet name ep's objects.
func (p *servicePlan) endpointChain(ep proxy.Endpoint) string {
	return p.epChains[netip.AddrPortFrom(ep.IP, uint16(ep.Port))]
}

func (p *servicePlan) affinitySet(ep proxy.Endpoint) string {
	return p.affinitySets[netip.AddrPortFrom(ep.IP, uint16(ep.Port))]
}

// chainRules collects the rules of a ServicePort's chains before they are
// written, so that a partial sync can leave chains whose rules are the same.
type chainRules map[string][]*knftables.Rule

func (c chainRules) add(r *knftables.Rule) { c[r.Chain] = append(c[r.Chain], r) }

// hash is a hash of chain's rules (text and comments).
func (c chainRules) hash(chain string) uint64 {
	h := fnv.New64a()
	for _, r := range c[chain] {
		h.Write([]byte(r.Rule))
		h.Write([]byte{0})
		if r.Comment != nil {
			h.Write([]byte(*r.Comment))
		}
		h.Write([]byte{1})
	}
	return h.Sum64()
}

// allocWindows gives each policy chain p uses a window of endpoint-buckets:
// the one it had in old, else a new one; none (endpoint chains) with ClientIP
// affinity, more endpoints than a window has buckets, or no window left. A
// window of old it no longer uses is released by syncServicePort.
func (b *Backend) allocWindows(p *servicePlan, old *serviceState) {
	if p.affinityTimeout > 0 || len(p.reach) > bucketsPerWindow {
		return
	}
	var got []uint32 // new ones, to give back if one is missing
	for _, u := range []struct {
		used bool
		kind chainKind
	}{{p.usesClusterChain, kindCluster}, {p.usesLocalChain, kindLocal}} {
		if !u.used {
			continue
		}
		if w, ok := old.window(u.kind); ok {
			p.win[u.kind] = w.win
			continue
		}
		win, ok := b.windows.get()
		if !ok {
			for _, w := range got {
				b.windows.release(w)
			}
			return
		}
		got = append(got, win)
		p.win[u.kind] = win
	}
	p.windowed = true
}

// writeServicePort adds to tx everything svc needs and returns what it owns
// and the elements it wants; ok is false when svc has no ClusterIP of this
// family. Chains whose rules are the same as in old are left alone; the others
// are added and flushed before any rule (added only, in a full sync: its
// "flush table" emptied every chain), and affinity sets and endpoint-buckets
// maps are added before the rules that use them.
func (b *Backend) writeServicePort(tx *txn, name proxy.ServicePortName, svc *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo, old *serviceState) (st serviceState, elems []ownedElem, ok bool) {
	var plan servicePlan
	p := b.plan(&plan, name, svc, eps, node)
	if p == nil {
		return serviceState{}, nil, false
	}
	b.allocWindows(p, old)
	if !p.windowed {
		p.nameEndpointObjects()
	}
	st = serviceState{name: name, base: p.base}
	if old.base == p.base {
		st.base = old.base // one copy of the string
	}
	for _, use := range []struct {
		used bool
		kind chainKind
	}{
		{p.usesClusterChain, kindCluster},
		{p.usesLocalChain, kindLocal},
		{p.usesExternalChain, kindExternal},
		{p.usesFirewallChain, kindFirewall},
	} {
		if use.used {
			st.chains |= 1 << use.kind
		}
	}
	if p.windowed {
		for _, k := range []chainKind{kindCluster, kindLocal} {
			if !st.has(k) {
				continue
			}
			eps := p.cluster
			if k == kindLocal {
				eps = p.local
			}
			st.windows = append(st.windows, windowState{kind: k, win: p.win[k], eps: packEndpoints(eps, b.ipv6)})
		}
	} else if len(p.reach) > 0 {
		st.epObjects = &endpointObjects{}
		for _, ep := range p.reach {
			st.epObjects.chains = append(st.epObjects.chains, p.endpointChain(ep))
			if set := p.affinitySet(ep); set != "" {
				st.epObjects.affinitySets = append(st.epObjects.affinitySets, set)
			}
		}
	}
	if p.usesClusterChain || p.usesLocalChain {
		st.hairpin = packAddrsIf(p.reach, b.ipv6, b.hairpinFilter(p, node))
	}

	rules := make(chainRules, 4)
	b.writeExternalRules(rules, p)
	b.writeFirewallRules(rules, p, node)
	if p.usesClusterChain {
		b.writeServiceToEndpointRules(rules, p, kindCluster, p.cluster)
	}
	if p.usesLocalChain {
		b.writeServiceToEndpointRules(rules, p, kindLocal, p.local)
	}
	if !p.windowed {
		for _, ep := range p.reach {
			b.writeEndpointRules(rules, p, ep)
		}
	}

	var changed []string
	change := func(c string) {
		changed = append(changed, c)
		tx.Add(&knftables.Chain{Name: c})
		if !tx.full {
			tx.Flush(&knftables.Chain{Name: c})
		}
		delete(b.staleChains, c)
	}
	for k := range numChainKinds {
		if !st.has(k) {
			continue
		}
		c := p.chain(k)
		h := rules.hash(c)
		st.hashes[k] = h
		if !old.has(k) || old.hashes[k] != h || old.base != st.base {
			change(c)
		}
	}
	if st.epObjects != nil {
		var oldChains []string
		var oldHashes []uint64
		if old.epObjects != nil {
			oldChains, oldHashes = old.epObjects.chains, old.epObjects.hashes
		}
		for _, c := range st.epObjects.chains {
			h := rules.hash(c)
			st.epObjects.hashes = append(st.epObjects.hashes, h)
			if i := slices.Index(oldChains, c); i < 0 || oldHashes[i] != h {
				change(c)
			}
		}
		for _, set := range st.epObjects.affinitySets {
			tx.Add(b.affinitySet(set, p.affinityTimeout))
		}
	}
	if len(changed) > 0 {
		// Before the rules that use them (an add of an existing map is a no-op).
		for _, w := range st.windows {
			tx.addBucketMap(b, bucketMapName(p.protocol, w.win))
		}
	}
	for _, c := range changed {
		if k, ok := p.windowKind(c); ok && len(rules[c]) == 1 {
			tx.bucketRule(rules[c][0], p.proto, p.win[k], bucketMapName(p.protocol, p.win[k]))
			continue
		}
		for _, r := range rules[c] {
			tx.Add(r)
		}
	}
	return st, b.serviceElements(p), true
}

// serviceElements are p's contributions to the maps and sets: where each of
// its addresses goes (one of its chains, or the no-endpoint verdict).
func (b *Backend) serviceElements(p *servicePlan) []ownedElem {
	elems := make([]ownedElem, 0, 3)
	put := func(store storeID, k elemKey, v elemVal) {
		elems = append(elems, ownedElem{store: store, key: k, val: v})
	}
	port := uint16(p.svc.Port)
	put(storeClusterIPs, addrKey(p.clusterIP), valNone)
	if p.hasInternal {
		put(storeServiceIPs, servKey(p.clusterIP, p.proto, port), gotoChain(p.internalKind))
		if _, ok := b.masqMatch(); ok {
			// Masquerade ClusterIP traffic from outside the cluster (or all of
			// it with MasqueradeAll): a route to the Service range via any node
			// works, and replies come back through that node. One rule in
			// services over this set, not a rule in each policy chain as
			// kube-proxy writes it: 10,000 rules fewer to write and for the
			// kernel to parse at 10,000 Services.
			put(storeMasqClusterIPs, servKey(p.clusterIP, p.proto, port), valNone)
		}
	} else {
		put(storeNoEndpointServices, servKey(p.clusterIP, p.proto, port), verdictVal(p.internalVerdict))
	}
	for _, ip := range slices.Concat(p.externalIPs, p.lbIPs) {
		if p.usesExternalChain {
			put(storeServiceIPs, servKey(ip, p.proto, port), gotoChain(kindExternal))
		}
		if !p.hasExternal {
			// No endpoint at all (reject), or none for external traffic (drop
			// what the external chain did not short-circuit).
			put(storeNoEndpointServices, servKey(ip, p.proto, port), verdictVal(p.externalVerdict))
		}
	}
	if p.usesFirewallChain {
		for _, ip := range p.lbIPs {
			put(storeFirewallIPs, servKey(ip, p.proto, port), gotoChain(kindFirewall))
		}
	}
	if np := p.svc.NodePort; np != 0 && b.nodePorts.enabled {
		// NodePorts are not subject to loadBalancerSourceRanges (kube-proxy
		// cannot change that any more).
		k := portKey(p.proto, uint16(np))
		if p.usesExternalChain {
			put(storeServiceNodePorts, k, gotoChain(kindExternal))
		}
		if !p.hasExternal {
			put(storeNoEndpointNodePorts, k, verdictVal(p.externalVerdict))
		}
	}
	return elems
}

// verdictVal is the elemVal of a no-endpoint verdict.
func verdictVal(v string) elemVal {
	if v == "drop" {
		return valDrop
	}
	return valReject
}

// writeExternalRules fills the external chain, where node ports, external IPs
// and load-balancer IPs lead. eTP Cluster: masquerade (the endpoint may be on
// another node), then the cluster policy chain. eTP Local: keep the client's
// address, except for traffic from this node's pods and from the node itself,
// which goes to the cluster policy chain as if it had left the cluster and come
// back through a load balancer.
func (b *Backend) writeExternalRules(tx chainRules, p *servicePlan) {
	if !p.usesExternalChain {
		return
	}
	add := func(rule, comment string) {
		r := &knftables.Rule{Chain: p.chain(kindExternal), Rule: rule}
		if comment != "" {
			r.Comment = knftables.PtrTo(comment)
		}
		tx.add(r)
	}
	if !p.svc.ExternalPolicyLocal {
		add(knftables.Concat("jump", markMasqChain), "")
	} else {
		if len(b.clusterCI) > 0 {
			add(knftables.Concat(b.ipX, "saddr", anonSet(b.clusterCI), "goto", p.chain(kindCluster)), "short-circuit pod traffic")
		}
		// The node's own traffic has a local source address (the external IP
		// itself, or 127.0.0.1 for a localhost NodePort): masquerade it.
		add(knftables.Concat("fib saddr type local jump", markMasqChain), "masquerade local traffic")
		add(knftables.Concat("fib saddr type local goto", p.chain(kindCluster)), "short-circuit local traffic")
	}
	if p.hasExternal {
		add(knftables.Concat("goto", p.chain(p.externalPolicyKind)), "")
	}
}

// writeFirewallRules fills the firewall chain: drop load-balancer traffic from
// outside loadBalancerSourceRanges. When a range holds a node address, traffic
// from the load-balancer IPs themselves is allowed too: a node that has a VIP as
// a local address reaches it with the VIP as source.
func (b *Backend) writeFirewallRules(tx chainRules, p *servicePlan, node proxy.NodeInfo) {
	if !p.usesFirewallChain {
		return
	}
	var sources []string
	allowFromNode := false
	nodeIPs := b.familyAddrs(node.IPs)
	for _, r := range p.svc.LoadBalancerSourceRanges {
		if r.Addr().Unmap().Is6() != b.ipv6 {
			continue
		}
		sources = append(sources, r.Masked().String())
		if slices.ContainsFunc(nodeIPs, r.Contains) {
			allowFromNode = true
		}
	}
	if allowFromNode {
		for _, ip := range p.lbIPs {
			sources = append(sources, ip.String())
		}
	}
	rule := knftables.Concat(b.ipX, "saddr != {", strings.Join(sources, ", "), "} drop")
	if len(sources) == 0 {
		// Only ranges of the other family: nothing of this family may pass.
		rule = "drop"
	}
	tx.add(&knftables.Rule{Chain: p.chain(kindFirewall), Rule: rule})
}

// writeServiceToEndpointRules fills a policy chain: with ClientIP affinity, a
// client seen recently goes to the endpoint it had; otherwise an endpoint at
// random — in the chain's window of endpoint-buckets when it has one (and its
// elements go to p.buckets), else through endpoint chains.
func (b *Backend) writeServiceToEndpointRules(tx chainRules, p *servicePlan, kind chainKind, eps []proxy.Endpoint) {
	chain := p.chain(kind)
	if p.windowed {
		win := p.win[kind]
		base := uint64(win) * bucketsPerWindow
		rule := "meta l4proto " + p.protocol + " dnat " + b.ipX + " to numgen random mod " + strconv.Itoa(bucketsPerWindow)
		if base > 0 {
			rule += " offset " + strconv.FormatUint(base, 10)
		}
		tx.add(&knftables.Rule{Chain: chain, Rule: rule + " map @" + bucketMapName(p.protocol, win)})
		return
	}
	if p.affinityTimeout > 0 {
		for _, ep := range eps {
			tx.add(&knftables.Rule{
				Chain: chain,
				Rule:  knftables.Concat(b.ipX, "saddr", "@", p.affinitySet(ep), "goto", p.endpointChain(ep)),
			})
		}
	}
	// Endpoint i of n is taken with probability 1/(n-i) when the ones before it
	// were not (as kube-proxy's iptables mode does with -m statistic): an equal
	// spread with one rule per endpoint. kube-proxy's nftables mode writes one
	// "numgen random mod n vmap { ... }" instead, but every such anonymous map
	// makes the kernel scan all the table's sets to name it: a full sync grew
	// quadratically (187 s at 10,000 Services × 10 endpoints here, against
	// 15.6 s with these rules; see the README).
	for i, ep := range eps {
		if left := len(eps) - i; left > 1 {
			tx.add(&knftables.Rule{
				Chain: chain,
				Rule:  knftables.Concat("numgen random mod", left, "== 0 goto", p.endpointChain(ep)),
			})
			continue
		}
		tx.add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("goto", p.endpointChain(ep))})
	}
}

// writeEndpointRules fills an endpoint chain: remember the client for
// affinity, DNAT. (Hairpin traffic is masqueraded in postrouting, through
// hairpin-endpoints.)
func (b *Backend) writeEndpointRules(tx chainRules, p *servicePlan, ep proxy.Endpoint) {
	chain := p.endpointChain(ep)
	if set := p.affinitySet(ep); set != "" {
		tx.add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("update", "@", set, "{", b.ipX, "saddr }")})
	}
	tx.add(&knftables.Rule{
		Chain: chain,
		Rule:  knftables.Concat("meta l4proto", p.protocol, "dnat to", netip.AddrPortFrom(ep.IP, uint16(ep.Port)).String()),
	})
}

// hairpinFilter says which of p's endpoints need a hairpin-endpoints element on
// this node: those that can be the client of a connection this node DNATs back
// to them. A connection to a ClusterIP, an external IP or a load-balancer IP is
// DNATed on the client's own node (every node holds those addresses), so an
// endpoint on another node never meets this node's DNAT as a client that way;
// kube-proxy 1.37's nftables mode keeps only local endpoints in its
// hairpin-connections set for that reason. Kept here:
//   - local endpoints (NodeName is this node);
//   - endpoints without a node name (hand-written slices) whose address is one
//     of this node's pod CIDRs or addresses;
//   - with externalTrafficPolicy Local and a NodePort, endpoints in the cluster
//     CIDRs: a pod on another node that connects to this node's address and
//     NodePort is short-circuited to the Cluster-policy chain unmasqueraded
//     ("short-circuit pod traffic"), which may pick the client itself.
func (b *Backend) hairpinFilter(p *servicePlan, node proxy.NodeInfo) func(*proxy.Endpoint) bool {
	nodePortShortCircuit := p.svc.ExternalPolicyLocal && p.svc.NodePort != 0 && b.nodePorts.enabled && len(b.clusterCI) > 0
	return func(ep *proxy.Endpoint) bool {
		if ep.IsLocal {
			return true
		}
		ip := ep.IP.Unmap()
		if ep.NodeName == "" && (slices.Contains(node.IPs, ip) || slices.ContainsFunc(node.PodCIDRs, func(c netip.Prefix) bool { return c.Contains(ip) })) {
			return true
		}
		return nodePortShortCircuit && slices.ContainsFunc(b.clusterCI, func(c netip.Prefix) bool { return c.Contains(ip) })
	}
}
