package nftables

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// tableComment is the table's comment, shown by "nft list table".
const tableComment = "rules for kubesvc's service proxy (kube-proxy nftables layout)"

// writeTable adds to tx the fixed part of the table: the table itself (flushed:
// every chain emptied), the base chains, the top-level chains with their rules
// and the jumps to them, and the sets and maps (their elements come from the
// element stores).
func (b *Backend) writeTable(tx *txn) {
	// The flush names the comment too: knftables.Fake re-creates a flushed
	// table from the flush's object.
	table := &knftables.Table{Comment: knftables.PtrTo(tableComment)}
	tx.Add(table)
	tx.Flush(table)

	if !b.baseChainsRecreated {
		// "add chain" cannot change the priority of an existing base chain, so the
		// first sync deletes them (an add first, so that the delete cannot fail).
		for _, bc := range baseChains {
			tx.Add(&knftables.Chain{Name: bc.name})
			tx.Delete(&knftables.Chain{Name: bc.name})
		}
		b.baseChainsRecreated = true
	}
	for _, bc := range baseChains {
		tx.Add(&knftables.Chain{
			Name:     bc.name,
			Type:     knftables.PtrTo(bc.chainType),
			Hook:     knftables.PtrTo(bc.hook),
			Priority: knftables.PtrTo(bc.priority),
		})
	}

	// The martian drop comes first in filter-input, before anything can accept.
	b.writeLocalnetGuard(tx)

	added := make(map[string]bool)
	addChain := func(name string) {
		if !added[name] {
			tx.Add(&knftables.Chain{Name: name})
			added[name] = true
		}
	}
	for _, j := range jumpChains {
		addChain(j.dst)
		tx.Add(&knftables.Rule{Chain: j.src, Rule: knftables.Concat(j.match, "jump", j.dst)})
	}
	for _, c := range []string{markMasqChain, rejectChain} {
		addChain(c)
	}

	b.writeSetsAndMaps(tx)
	b.writeMasquerade(tx) // after the sets: it uses hairpin-endpoints
	b.writeDispatch(tx)
	b.writeNoEndpointChecks(tx)
	b.writeClusterIPsCheck(tx)
}

// writeLocalnetGuard is kube-proxy iptables mode's defence for route_localnet
// (CVE-2020-8558): with it set, the kernel would accept packets for 127.0.0.0/8
// from other hosts; drop those that did not arrive on lo and are not replies of
// a DNATed connection (a localhost NodePort's replies come back on the pod's
// interface to the masquerade address and are de-NATed to 127.0.0.1).
func (b *Backend) writeLocalnetGuard(tx *txn) {
	if !b.localhostNodePorts() {
		return
	}
	tx.Add(&knftables.Rule{
		Chain:   filterInputChain,
		Rule:    knftables.Concat("ip daddr", loopbackV4, `iifname != "lo"`, "ct status & dnat == 0", "drop"),
		Comment: knftables.PtrTo("block incoming localnet connections"),
	})
}

// writeMasquerade fills mark-for-masquerade (sets the mark bit) and
// masquerading (in postrouting: masquerade marked packets, clearing the bit so
// that it does not leak to an encapsulating tunnel).
func (b *Backend) writeMasquerade(tx *txn) {
	// Hairpin: an endpoint that reached itself through a Service would answer
	// itself directly; masquerade it (kube-proxy does it in each endpoint chain:
	// "ip saddr EP jump mark-for-masquerade"). Here after DNAT, with one set of
	// every endpoint address, so that endpoint changes touch no rule.
	tx.Add(&knftables.Rule{
		Chain:   masqueradingChain,
		Rule:    knftables.Concat("ct status dnat", b.ipX, "saddr .", b.ipX, "daddr", "@", hairpinSet, "jump", markMasqChain),
		Comment: knftables.PtrTo("hairpin"),
	})
	tx.Add(&knftables.Rule{Chain: markMasqChain, Rule: knftables.Concat("mark set mark or", b.masqMark)})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: knftables.Concat("mark and", b.masqMark, "== 0 return")})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: knftables.Concat("mark set mark xor", b.masqMark)})
	tx.Add(&knftables.Rule{Chain: masqueradingChain, Rule: "masquerade fully-random"})
}

// writeSetsAndMaps adds the sets and maps (flushed by the element stores' reset).
func (b *Backend) writeSetsAndMaps(tx *txn) {
	ipProtoPort := b.addrType + " . inet_proto . inet_service : verdict"
	tx.Add(&knftables.Set{Name: clusterIPsSet, Type: b.addrType, Comment: knftables.PtrTo("Active ClusterIPs")})
	tx.Add(&knftables.Set{
		Name:    clusterIPsMasqSet,
		Type:    b.addrType + " . inet_proto . inet_service",
		Comment: knftables.PtrTo("ClusterIP traffic to masquerade when it comes from outside the cluster"),
	})
	tx.Add(&knftables.Set{
		Name:    nodePortIPsSet,
		Type:    b.addrType,
		Flags:   []knftables.SetFlag{knftables.IntervalFlag},
		Comment: knftables.PtrTo("IPs that accept NodePort traffic"),
	})
	tx.Add(&knftables.Set{
		Name:    hairpinSet,
		Type:    b.addrType + " . " + b.addrType,
		Comment: knftables.PtrTo("endpoint . endpoint: masquerade an endpoint that reached itself"),
	})
	tx.Add(&knftables.Map{Name: serviceIPsMap, Type: ipProtoPort, Comment: knftables.PtrTo("ClusterIP, ExternalIP and LoadBalancer IP traffic")})
	tx.Add(&knftables.Map{Name: serviceNodePortsMap, Type: "inet_proto . inet_service : verdict", Comment: knftables.PtrTo("NodePort traffic")})
	tx.Add(&knftables.Map{Name: firewallIPsMap, Type: ipProtoPort, Comment: knftables.PtrTo("destinations that are subject to LoadBalancerSourceRanges")})
	tx.Add(&knftables.Map{Name: noEndpointServicesMap, Type: ipProtoPort, Comment: knftables.PtrTo("vmap to drop or reject packets to services with no endpoints")})
	tx.Add(&knftables.Map{Name: noEndpointNodePortsMap, Type: "inet_proto . inet_service : verdict", Comment: knftables.PtrTo("vmap to drop or reject packets to service nodeports with no endpoints")})
}

// writeDispatch fills services (Service IPs, then node ports), firewall-check,
// and the localhost NodePort rule of nat-output.
func (b *Backend) writeDispatch(tx *txn) {
	if match, ok := b.masqMatch(); ok {
		// Before the dispatch: it marks the packets the policy chains DNAT.
		tx.Add(&knftables.Rule{
			Chain:   servicesChain,
			Rule:    knftables.Concat(match, b.ipX, "daddr . meta l4proto . th dport", "@", clusterIPsMasqSet, "jump", markMasqChain),
			Comment: knftables.PtrTo("ClusterIP traffic from outside the cluster"),
		})
	}
	tx.Add(&knftables.Rule{
		Chain: servicesChain,
		Rule:  knftables.Concat(b.ipX, "daddr . meta l4proto . th dport vmap", "@", serviceIPsMap),
	})
	if m := b.nodePortMatch(); m != "" {
		tx.Add(&knftables.Rule{
			Chain: servicesChain,
			Rule:  knftables.Concat(m, "meta l4proto . th dport vmap", "@", serviceNodePortsMap),
		})
	}
	if b.localhostNodePorts() {
		// nat-output only: from the node itself. Both external chains masquerade
		// such traffic (eTP Cluster always, eTP Local as "fib saddr type local"),
		// so replies never need 127.0.0.1 routed off the node.
		tx.Add(&knftables.Rule{
			Chain:   natOutputChain,
			Rule:    knftables.Concat(b.loopbackMatch(), "meta l4proto . th dport vmap", "@", serviceNodePortsMap),
			Comment: knftables.PtrTo("localhost NodePorts (route_localnet)"),
		})
	}
	tx.Add(&knftables.Rule{
		Chain: firewallCheckChain,
		Rule:  knftables.Concat(b.ipX, "daddr . meta l4proto . th dport vmap", "@", firewallIPsMap),
	})
}

// writeNoEndpointChecks fills reject-chain and the endpoint-check chains that
// look up no-endpoint-services and no-endpoint-nodeports.
func (b *Backend) writeNoEndpointChecks(tx *txn) {
	// A TCP reset refuses a connection at once on every client stack; other
	// protocols get ICMP port unreachable (reject is not a verdict a map may
	// hold, hence the chain).
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "meta l4proto tcp reject with tcp reset"})
	tx.Add(&knftables.Rule{Chain: rejectChain, Rule: "reject"})

	tx.Add(&knftables.Rule{
		Chain: serviceEndpointsCheckChain,
		Rule:  knftables.Concat(b.ipX, "daddr . meta l4proto . th dport vmap", "@", noEndpointServicesMap),
	})
	if m := b.nodePortMatch(); m != "" {
		tx.Add(&knftables.Rule{
			Chain: nodePortEndpointsCheckChain,
			Rule:  knftables.Concat(m, "meta l4proto . th dport vmap", "@", noEndpointNodePortsMap),
		})
	}
	if b.localhostNodePorts() {
		tx.Add(&knftables.Rule{
			Chain: nodePortEndpointsCheckChain,
			Rule:  knftables.Concat(b.loopbackMatch(), "meta l4proto . th dport vmap", "@", noEndpointNodePortsMap),
		})
	}
}

// writeClusterIPsCheck fills cluster-ips-check, which runs after DNAT, so that
// only traffic no Service took still has a ClusterIP destination.
func (b *Backend) writeClusterIPsCheck(tx *txn) {
	tx.Add(&knftables.Rule{
		Chain:   clusterIPsCheckChain,
		Rule:    knftables.Concat(b.ipX, "daddr", "@", clusterIPsSet, "reject"),
		Comment: knftables.PtrTo("Reject traffic to invalid ports of ClusterIPs"),
	})
	if len(b.serviceCI) > 0 {
		tx.Add(&knftables.Rule{
			Chain:   clusterIPsCheckChain,
			Rule:    knftables.Concat(b.ipX, "daddr", anonSet(b.serviceCI), "drop"),
			Comment: knftables.PtrTo("Drop traffic to unallocated ClusterIPs"),
		})
	}
}

// nodePortMatch is the match of the NodePort dispatch and check rules: a local
// destination (every one, or those in nodeport-ips), never a loopback one (those
// have their own rule in nat-output, and must not be reachable from other
// hosts). "" when NodePorts are disabled for this family.
func (b *Backend) nodePortMatch() string {
	npa := b.nodePorts
	noLoopback := b.ipX + " daddr != 127.0.0.0/8"
	if b.ipv6 {
		noLoopback = "ip6 daddr != ::1"
	}
	switch {
	case !npa.enabled:
		return ""
	case npa.matchAll:
		return "fib daddr type local " + noLoopback
	}
	m := b.ipX + " daddr @" + nodePortIPsSet
	if len(npa.cidrs) > 0 {
		// A CIDR stands for the node's addresses in it.
		m = "fib daddr type local " + m
	}
	if npa.overlapsLoopback {
		m = noLoopback + " " + m
	}
	return m
}

// loopbackMatch matches the loopback destinations of localhost NodePorts.
func (b *Backend) loopbackMatch() string {
	return "ip daddr " + anonSet(b.nodePorts.loopback)
}

// anonSet writes prefixes as nft does: one alone, or an anonymous set.
func anonSet(ps []netip.Prefix) string {
	if len(ps) == 1 {
		return ps[0].String()
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// affinitySet is the definition of a per-endpoint ClientIP affinity set: source
// addresses that expire timeout after their last connection. A zero timeout
// gives a definition fit only for a delete.
func (b *Backend) affinitySet(name string, timeout time.Duration) *knftables.Set {
	set := &knftables.Set{
		Name: name,
		Type: b.addrType,
		// "dynamic" is needed by some kernels (RHEL 8) that would add it
		// themselves and then refuse an "add set" without it as a change.
		Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
	}
	if timeout > 0 {
		set.Timeout = knftables.PtrTo(timeout)
	}
	return set
}

// bucketMap is the definition of the endpoint-buckets map name
// ("endpoint-buckets-PROTO-SHARD"); nil for a name of another form.
func (b *Backend) bucketMap(name string) *knftables.Map {
	proto, _, ok := strings.Cut(strings.TrimPrefix(name, endpointBucketsMapPrefix), "-")
	if !ok || !isBucketMapName(name) || !slices.Contains([]string{"tcp", "udp", "sctp"}, proto) {
		return nil
	}
	return &knftables.Map{
		Name:    name,
		TypeOf:  knftables.Concat("numgen random mod", bucketsPerWindow, ":", b.ipX, "daddr .", proto, "dport"),
		Flags:   []knftables.SetFlag{knftables.IntervalFlag},
		Comment: knftables.PtrTo("endpoints of policy chains, by random bucket"),
	}
}
