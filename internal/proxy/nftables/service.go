package nftables

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// serviceState is what one ServicePort owns in the table besides map and set
// elements (which the element stores track by owner).
type serviceState struct {
	// chains are its per-service chains: policy, external, firewall, endpoint.
	chains []string
	// affinitySets are its per-endpoint ClientIP affinity sets.
	affinitySets []string
}

// syncServicePort rebuilds one ServicePort in tx from s: its chains (added and
// flushed, then filled), affinity sets and element contributions. A ServicePort
// that is gone from s, or has no ClusterIP of this family, loses everything; the
// chains it no longer needs are flushed and left for deleteStaleChains, its
// affinity sets no longer needed are deleted.
func (b *Backend) syncServicePort(tx *txn, s *proxy.Snapshot, name proxy.ServicePortName, now time.Time) {
	old := b.services[name]
	var st *serviceState
	if svc := s.Services[name]; svc != nil {
		st = b.writeServicePort(tx, name, svc, s.Endpoints[name], s.Node)
	}
	if st == nil {
		for _, es := range b.serviceStores() {
			es.set(name, nil)
		}
		delete(b.services, name)
		st = &serviceState{}
	} else {
		b.services[name] = st
	}
	if old == nil {
		return
	}
	for _, c := range old.chains {
		if !slices.Contains(st.chains, c) {
			tx.Flush(&knftables.Chain{Name: c})
			b.staleChains[c] = now
		}
	}
	// After the flushes: a set can be deleted once no rule refers to it.
	for _, set := range old.affinitySets {
		if !slices.Contains(st.affinitySets, set) {
			tx.Delete(&knftables.Set{Name: set})
		}
	}
}

// serviceStores are the element stores ServicePorts contribute to.
func (b *Backend) serviceStores() []*elementStore {
	return []*elementStore{
		b.clusterIPs, b.serviceIPs, b.serviceNodePorts,
		b.firewallIPs, b.noEndpointServices, b.noEndpointNodePorts,
	}
}

// servicePlan is one ServicePort, resolved for this family: its addresses,
// endpoints, which chains it uses and where each kind of traffic goes.
type servicePlan struct {
	name     proxy.ServicePortName
	svc      *proxy.ServicePort
	protocol string // "tcp", "udp" or "sctp"
	port     string
	nameStr  string // "ns/name:port", for comments

	clusterIP              netip.Addr
	externalIPs, lbIPs     []netip.Addr
	cluster, local, reach  []proxy.Endpoint
	epChains, affinitySets map[netip.AddrPort]string

	clusterChain, localChain, externalChain, firewallChain string
	usesClusterChain, usesLocalChain, usesExternalChain    bool
	usesFirewallChain                                      bool
	hasEndpoints, hasInternal, hasExternal                 bool
	// internalChain and externalPolicyChain are the policy chains internal and
	// external traffic go to.
	internalChain, externalPolicyChain string
	// internalVerdict and externalVerdict are the no-endpoint verdicts ("goto
	// reject-chain" or "drop") when there is no endpoint for that traffic.
	internalVerdict, externalVerdict string
	affinityTimeout                  time.Duration
}

// plan resolves svc for this family; nil when it has no ClusterIP of it.
func (b *Backend) plan(name proxy.ServicePortName, svc *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo) *servicePlan {
	p := &servicePlan{
		name:     name,
		svc:      svc,
		protocol: strings.ToLower(string(svc.Protocol)),
		port:     strconv.Itoa(int(svc.Port)),
		nameStr:  name.String(),
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
	var famEps []proxy.Endpoint
	for _, ep := range eps {
		if ep.IP.Unmap().Is6() == b.ipv6 && ep.Port > 0 {
			famEps = append(famEps, ep)
		}
	}
	p.cluster, p.local, p.reach = proxy.CategorizeEndpoints(famEps, svc, node)
	p.hasEndpoints = proxy.HasUsableEndpoints(famEps)

	base := servicePortChainBase(name, p.protocol)
	p.clusterChain = clusterPolicyChainPrefix + base
	p.localChain = localPolicyChainPrefix + base
	p.externalChain = externalChainPrefix + base
	p.firewallChain = firewallChainPrefix + base
	p.affinityTimeout = svc.AffinityTimeout
	p.epChains = make(map[netip.AddrPort]string, len(p.reach))
	if p.affinityTimeout > 0 {
		p.affinitySets = make(map[netip.AddrPort]string, len(p.reach))
	}
	for _, ep := range p.reach {
		k := netip.AddrPortFrom(ep.IP, uint16(ep.Port))
		p.epChains[k] = endpointChainName(name, p.protocol, ep)
		if p.affinityTimeout > 0 {
			p.affinitySets[k] = affinitySetName(name, p.protocol, ep, int64(p.affinityTimeout/time.Second))
		}
	}

	p.usesClusterChain = len(p.cluster) > 0 && svc.UsesClusterEndpoints()
	p.usesLocalChain = len(p.local) > 0 && svc.UsesLocalEndpoints()
	p.internalChain, p.hasInternal = p.clusterChain, p.hasEndpoints
	if svc.InternalPolicyLocal {
		p.internalChain, p.hasInternal = p.localChain, p.hasEndpoints && len(p.local) > 0
	}
	p.externalPolicyChain, p.hasExternal = p.clusterChain, p.hasEndpoints
	if svc.ExternalPolicyLocal {
		p.externalPolicyChain, p.hasExternal = p.localChain, p.hasEndpoints && len(p.local) > 0
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

// endpointChain and affinitySet name ep's objects.
func (p *servicePlan) endpointChain(ep proxy.Endpoint) string {
	return p.epChains[netip.AddrPortFrom(ep.IP, uint16(ep.Port))]
}

func (p *servicePlan) affinitySet(ep proxy.Endpoint) string {
	return p.affinitySets[netip.AddrPortFrom(ep.IP, uint16(ep.Port))]
}

// writeServicePort adds to tx everything svc needs and sets its element
// contributions; it returns what it owns, nil when svc has no ClusterIP of this
// family. Every chain is added and flushed before any rule, and affinity sets
// before the rules that use them.
func (b *Backend) writeServicePort(tx *txn, name proxy.ServicePortName, svc *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo) *serviceState {
	p := b.plan(name, svc, eps, node)
	if p == nil {
		return nil
	}
	st := &serviceState{}
	for _, use := range []struct {
		used  bool
		chain string
	}{
		{p.usesClusterChain, p.clusterChain},
		{p.usesLocalChain, p.localChain},
		{p.usesExternalChain, p.externalChain},
		{p.usesFirewallChain, p.firewallChain},
	} {
		if use.used {
			st.chains = append(st.chains, use.chain)
		}
	}
	for _, ep := range p.reach {
		st.chains = append(st.chains, p.endpointChain(ep))
	}
	for _, c := range st.chains {
		tx.Add(&knftables.Chain{Name: c})
		tx.Flush(&knftables.Chain{Name: c})
		delete(b.staleChains, c)
	}
	for _, ep := range p.reach {
		if set := p.affinitySet(ep); set != "" {
			tx.Add(b.affinitySet(set, p.affinityTimeout))
			st.affinitySets = append(st.affinitySets, set)
		}
	}

	b.setServiceElements(p)
	b.writeInternalRules(tx, p)
	b.writeExternalRules(tx, p)
	b.writeFirewallRules(tx, p, node)
	if p.usesClusterChain {
		b.writeServiceToEndpointRules(tx, p, p.clusterChain, p.cluster)
	}
	if p.usesLocalChain {
		b.writeServiceToEndpointRules(tx, p, p.localChain, p.local)
	}
	for _, ep := range p.reach {
		b.writeEndpointRules(tx, p, ep)
	}
	return st
}

// setServiceElements sets p's contributions to every map and set: where each of
// its addresses goes (a chain, or the no-endpoint verdict).
func (b *Backend) setServiceElements(p *servicePlan) {
	var clusterIPs, serviceIPs, nodePorts, firewall, noEPServices, noEPNodePorts []storedElement
	key := func(ip netip.Addr) []string { return []string{ip.String(), p.protocol, p.port} }
	goTo := func(chain string) []string { return []string{"goto " + chain} }

	clusterIPs = append(clusterIPs, storedElement{key: []string{p.clusterIP.String()}})
	if p.hasInternal {
		serviceIPs = append(serviceIPs, storedElement{key: key(p.clusterIP), value: goTo(p.internalChain)})
	} else {
		noEPServices = append(noEPServices, storedElement{key: key(p.clusterIP), value: []string{p.internalVerdict}, comment: p.nameStr})
	}
	for _, ip := range slices.Concat(p.externalIPs, p.lbIPs) {
		if p.usesExternalChain {
			serviceIPs = append(serviceIPs, storedElement{key: key(ip), value: goTo(p.externalChain)})
		}
		if !p.hasExternal {
			// No endpoint at all (reject), or none for external traffic (drop
			// what the external chain did not short-circuit).
			noEPServices = append(noEPServices, storedElement{key: key(ip), value: []string{p.externalVerdict}, comment: p.nameStr})
		}
	}
	if p.usesFirewallChain {
		for _, ip := range p.lbIPs {
			firewall = append(firewall, storedElement{key: key(ip), value: goTo(p.firewallChain)})
		}
	}
	if np := p.svc.NodePort; np != 0 && b.nodePorts.enabled {
		// NodePorts are not subject to loadBalancerSourceRanges (kube-proxy
		// cannot change that any more).
		k := []string{p.protocol, strconv.Itoa(int(np))}
		if p.usesExternalChain {
			nodePorts = append(nodePorts, storedElement{key: k, value: goTo(p.externalChain)})
		}
		if !p.hasExternal {
			noEPNodePorts = append(noEPNodePorts, storedElement{key: k, value: []string{p.externalVerdict}, comment: p.nameStr})
		}
	}
	b.clusterIPs.set(p.name, clusterIPs)
	b.serviceIPs.set(p.name, serviceIPs)
	b.serviceNodePorts.set(p.name, nodePorts)
	b.firewallIPs.set(p.name, firewall)
	b.noEndpointServices.set(p.name, noEPServices)
	b.noEndpointNodePorts.set(p.name, noEPNodePorts)
}

// writeInternalRules masquerades ClusterIP traffic that comes from outside the
// cluster (or all of it with MasqueradeAll): a route to the Service range via
// any node works, and replies come back through that node.
func (b *Backend) writeInternalRules(tx *txn, p *servicePlan) {
	if !p.hasInternal {
		return
	}
	match := knftables.Concat(b.ipX, "daddr", p.clusterIP, p.protocol, "dport", p.port)
	switch {
	case b.masqAll:
	case len(b.clusterCI) > 0:
		match = knftables.Concat(match, b.ipX, "saddr !=", anonSet(b.clusterCI))
	default:
		return // no local-traffic detector: nothing to tell outside traffic by
	}
	tx.Add(&knftables.Rule{Chain: p.internalChain, Rule: knftables.Concat(match, "jump", markMasqChain)})
}

// writeExternalRules fills the external chain, where node ports, external IPs
// and load-balancer IPs lead. eTP Cluster: masquerade (the endpoint may be on
// another node), then the cluster policy chain. eTP Local: keep the client's
// address, except for traffic from this node's pods and from the node itself,
// which goes to the cluster policy chain as if it had left the cluster and come
// back through a load balancer.
func (b *Backend) writeExternalRules(tx *txn, p *servicePlan) {
	if !p.usesExternalChain {
		return
	}
	add := func(rule, comment string) {
		r := &knftables.Rule{Chain: p.externalChain, Rule: rule}
		if comment != "" {
			r.Comment = knftables.PtrTo(comment)
		}
		tx.Add(r)
	}
	if !p.svc.ExternalPolicyLocal {
		add(knftables.Concat("jump", markMasqChain), "")
	} else {
		if len(b.clusterCI) > 0 {
			add(knftables.Concat(b.ipX, "saddr", anonSet(b.clusterCI), "goto", p.clusterChain), "short-circuit pod traffic")
		}
		// The node's own traffic has a local source address (the external IP
		// itself, or 127.0.0.1 for a localhost NodePort): masquerade it.
		add(knftables.Concat("fib saddr type local jump", markMasqChain), "masquerade local traffic")
		add(knftables.Concat("fib saddr type local goto", p.clusterChain), "short-circuit local traffic")
	}
	if p.hasExternal {
		add(knftables.Concat("goto", p.externalPolicyChain), "")
	}
}

// writeFirewallRules fills the firewall chain: drop load-balancer traffic from
// outside loadBalancerSourceRanges. When a range holds a node address, traffic
// from the load-balancer IPs themselves is allowed too: a node that has a VIP as
// a local address reaches it with the VIP as source.
func (b *Backend) writeFirewallRules(tx *txn, p *servicePlan, node proxy.NodeInfo) {
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
	tx.Add(&knftables.Rule{Chain: p.firewallChain, Rule: rule})
}

// writeServiceToEndpointRules fills a policy chain: with ClientIP affinity, a
// client seen recently goes to the endpoint it had; otherwise an endpoint at
// random.
func (b *Backend) writeServiceToEndpointRules(tx *txn, p *servicePlan, chain string, eps []proxy.Endpoint) {
	if p.affinityTimeout > 0 {
		for _, ep := range eps {
			tx.Add(&knftables.Rule{
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
			tx.Add(&knftables.Rule{
				Chain: chain,
				Rule:  knftables.Concat("numgen random mod", left, "== 0 goto", p.endpointChain(ep)),
			})
			continue
		}
		tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("goto", p.endpointChain(ep))})
	}
}

// writeEndpointRules fills an endpoint chain: masquerade hairpin traffic (the
// endpoint reaching itself through the Service, which would otherwise answer
// itself directly), remember the client for affinity, DNAT.
func (b *Backend) writeEndpointRules(tx *txn, p *servicePlan, ep proxy.Endpoint) {
	chain := p.endpointChain(ep)
	tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat(b.ipX, "saddr", ep.IP, "jump", markMasqChain)})
	if set := p.affinitySet(ep); set != "" {
		tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("update", "@", set, "{", b.ipX, "saddr }")})
	}
	tx.Add(&knftables.Rule{
		Chain: chain,
		Rule:  knftables.Concat("meta l4proto", p.protocol, "dnat to", netip.AddrPortFrom(ep.IP, uint16(ep.Port)).String()),
	})
}
