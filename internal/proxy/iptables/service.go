package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// dispatchChain is a shared chain that ServicePorts contribute rules to. The
// shared chains are written in full on every sync (as kube-proxy does: an
// iptables chain cannot be patched by iptables-restore), from each
// ServicePort's rules as rendered when it last changed.
type dispatchChain int

const (
	natServices            dispatchChain = iota // nat KUBE-SERVICES: Service addresses → the Service's chains
	natNodePorts                                // nat KUBE-NODEPORTS: node ports → KUBE-EXT
	filterServices                              // filter KUBE-SERVICES: ClusterIPs without (local) endpoints
	filterExternalServices                      // filter KUBE-EXTERNAL-SERVICES: external traffic without (local) endpoints
	filterNodePorts                             // filter KUBE-NODEPORTS: healthCheckNodePort accepts
	filterProxyFirewall                         // filter KUBE-PROXY-FIREWALL: load-balancer traffic KUBE-FW did not take
	numDispatchChains
)

// dispatchChains names each dispatchChain, in the order they are written.
var dispatchChains = [numDispatchChains]struct {
	table Table
	chain string
}{
	natServices:            {TableNAT, kubeServicesChain},
	natNodePorts:           {TableNAT, kubeNodePortsChain},
	filterServices:         {TableFilter, kubeServicesChain},
	filterExternalServices: {TableFilter, kubeExternalServicesChain},
	filterNodePorts:        {TableFilter, kubeNodePortsChain},
	filterProxyFirewall:    {TableFilter, kubeProxyFirewallChain},
}

// renderedRules are pre-rendered "-A ..." lines.
type renderedRules struct {
	text  string
	lines int
}

// serviceState is what one ServicePort owns: its nat chains, and its rules in
// the shared chains.
type serviceState struct {
	chains   []string
	dispatch [numDispatchChains]renderedRules
}

// servicePlan is one ServicePort resolved for this family: its addresses,
// endpoints, chains, and where each kind of traffic goes. The fields follow
// kube-proxy's syncProxyRules variables of the same names.
type servicePlan struct {
	name     proxy.ServicePortName
	svc      *proxy.ServicePort
	protocol string // "tcp", "udp" or "sctp"
	port     string
	nameStr  string // "ns/name:port", for comments

	clusterIP          netip.Addr
	externalIPs, lbIPs []netip.Addr
	sourceRanges       []netip.Prefix // loadBalancerSourceRanges of this family
	nodePort           string         // "" when none (or NodePorts are off for this family)

	cluster, local, reach []proxy.Endpoint
	epChains              map[netip.AddrPort]string

	clusterChain, localChain, externalChain, firewallChain string
	usesClusterChain, usesLocalChain                       bool
	usesExternalChain, usesFirewallChain                   bool
	hasEndpoints, hasInternal, hasExternal                 bool
	// internalChain and externalPolicyChain are the policy chains internal and
	// external traffic go to.
	internalChain, externalPolicyChain string
	// internalTarget and externalTarget are REJECT (no endpoints at all) or DROP
	// (none under the Local policy) when the traffic has no endpoint, with the
	// comments of those rules.
	internalTarget, internalComment string
	externalTarget, externalComment string
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
	if svc.LocalhostLoadBalancer && b.nodePorts.localhost {
		// A "localhost" ingress is served like a localhost NodePort
		// (route_localnet and KUBE-FIREWALL's martian guard are in place), as an
		// external IP: no loadBalancerSourceRanges for the node itself.
		p.externalIPs = append(p.externalIPs, localhostV4)
	}
	p.sourceRanges = familyPrefixes(svc.LoadBalancerSourceRanges, b.ipv6)
	if svc.NodePort != 0 && b.nodePorts.enabled {
		p.nodePort = strconv.Itoa(int(svc.NodePort))
	}
	var famEps []proxy.Endpoint
	for _, ep := range eps {
		if ep.IP.Unmap().Is6() == b.ipv6 && ep.Port > 0 {
			famEps = append(famEps, ep)
		}
	}
	p.cluster, p.local, p.reach = proxy.CategorizeEndpoints(famEps, svc, node)
	p.hasEndpoints = proxy.HasUsableEndpoints(famEps)

	hash := portProtoHash(name, p.protocol)
	p.clusterChain = clusterPolicyChainPrefix + hash
	p.localChain = localPolicyChainPrefix + hash
	p.externalChain = externalChainPrefix + hash
	p.firewallChain = firewallChainPrefix + hash
	p.epChains = make(map[netip.AddrPort]string, len(p.reach))
	for _, ep := range p.reach {
		p.epChains[netip.AddrPortFrom(ep.IP, uint16(ep.Port))] = endpointChainName(name, p.protocol, ep)
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
	externallyAccessible := p.nodePort != "" || len(p.externalIPs) > 0 || len(p.lbIPs) > 0
	p.usesExternalChain = p.hasEndpoints && externallyAccessible
	// Unlike kube-proxy, ranges only of the other family still make a firewall
	// (that lets nothing of this family through), as the nftables backend does.
	p.usesFirewallChain = p.hasEndpoints && len(p.lbIPs) > 0 && len(svc.LoadBalancerSourceRanges) > 0

	if !p.hasEndpoints {
		p.internalTarget, p.internalComment = "REJECT", p.nameStr+" has no endpoints"
		p.externalTarget, p.externalComment = p.internalTarget, p.internalComment
		return p
	}
	if !p.hasInternal {
		p.internalTarget, p.internalComment = "DROP", p.nameStr+" has no local endpoints"
	}
	if !p.hasExternal {
		p.externalTarget, p.externalComment = "DROP", p.nameStr+" has no local endpoints"
	}
	return p
}

// endpointChain names ep's KUBE-SEP chain.
func (p *servicePlan) endpointChain(ep proxy.Endpoint) string {
	return p.epChains[netip.AddrPortFrom(ep.IP, uint16(ep.Port))]
}

// chains lists the nat chains p uses: policy, external, firewall, endpoints.
func (p *servicePlan) chains() []string {
	var out []string
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
			out = append(out, use.chain)
		}
	}
	for _, ep := range p.reach {
		out = append(out, p.endpointChain(ep))
	}
	return out
}

// renderServicePort writes svc's chains (declarations to w.natChains, rules to
// w.natRules) and returns what it owns, with its rules for the shared chains;
// nil when svc has no ClusterIP of this family.
func (b *Backend) renderServicePort(w *restoreWriter, name proxy.ServicePortName, svc *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo) *serviceState {
	p := b.plan(name, svc, eps, node)
	if p == nil {
		return nil
	}
	st := &serviceState{chains: p.chains()}
	for _, c := range st.chains {
		w.natChains.chain(c)
	}
	var d [numDispatchChains]lineBuffer
	b.writeDispatchRules(&d, p)
	for i := range d {
		st.dispatch[i] = renderedRules{text: d[i].String(), lines: d[i].lines}
	}

	r := &w.natRules
	b.writeInternalRules(r, p)
	b.writeExternalRules(r, p)
	b.writeFirewallRules(r, p, node)
	if p.usesClusterChain {
		b.writeServiceToEndpointRules(r, p, p.clusterChain, p.cluster)
	}
	if p.usesLocalChain {
		b.writeServiceToEndpointRules(r, p, p.localChain, p.local)
	}
	for _, ep := range p.reach {
		b.writeEndpointRules(r, p, ep)
	}
	return st
}

// writeDispatchRules writes p's rules in the shared chains: its addresses in
// nat KUBE-SERVICES and KUBE-NODEPORTS when they have endpoints, else the
// REJECT or DROP in filter; the firewall's final drop; the health-check
// accept. Matches are in kube-proxy's order: "-m PROTO -p PROTO -d ADDR
// --dport PORT".
func (b *Backend) writeDispatchRules(d *[numDispatchChains]lineBuffer, p *servicePlan) {
	proto := p.protocol
	cip := p.clusterIP.String()
	if p.hasInternal {
		d[natServices].commented(kubeServicesChain, p.nameStr+" cluster IP",
			"-m", proto, "-p", proto, "-d", cip, "--dport", p.port, "-j", p.internalChain)
	} else {
		d[filterServices].commented(kubeServicesChain, p.internalComment,
			"-m", proto, "-p", proto, "-d", cip, "--dport", p.port, "-j", p.internalTarget)
	}
	for _, ip := range p.externalIPs {
		if p.hasEndpoints {
			d[natServices].commented(kubeServicesChain, p.nameStr+" external IP",
				"-m", proto, "-p", proto, "-d", ip.String(), "--dport", p.port, "-j", p.externalChain)
		}
		if !p.hasExternal {
			// No endpoints at all (REJECT), or none for external traffic (DROP
			// what the external chain did not short-circuit).
			d[filterExternalServices].commented(kubeExternalServicesChain, p.externalComment,
				"-m", proto, "-p", proto, "-d", ip.String(), "--dport", p.port, "-j", p.externalTarget)
		}
	}
	lbTarget := p.externalChain
	if p.usesFirewallChain {
		lbTarget = p.firewallChain
	}
	for _, ip := range p.lbIPs {
		if p.hasEndpoints {
			d[natServices].commented(kubeServicesChain, p.nameStr+" loadbalancer IP",
				"-m", proto, "-p", proto, "-d", ip.String(), "--dport", p.port, "-j", lbTarget)
		}
		if p.usesFirewallChain {
			d[filterProxyFirewall].commented(kubeProxyFirewallChain, p.nameStr+" traffic not accepted by "+p.firewallChain,
				"-m", proto, "-p", proto, "-d", ip.String(), "--dport", p.port, "-j", "DROP")
		}
	}
	if !p.hasExternal {
		for _, ip := range p.lbIPs {
			d[filterExternalServices].commented(kubeExternalServicesChain, p.externalComment,
				"-m", proto, "-p", proto, "-d", ip.String(), "--dport", p.port, "-j", p.externalTarget)
		}
	}
	if p.nodePort != "" {
		if p.hasEndpoints {
			// NodePorts are not subject to loadBalancerSourceRanges (kube-proxy
			// cannot change that any more).
			d[natNodePorts].commented(kubeNodePortsChain, p.nameStr,
				"-m", proto, "-p", proto, "--dport", p.nodePort, "-j", p.externalChain)
		}
		if !p.hasExternal {
			d[filterExternalServices].commented(kubeExternalServicesChain, p.externalComment,
				"-m", "addrtype", "--dst-type", "LOCAL", "-m", proto, "-p", proto, "--dport", p.nodePort, "-j", p.externalTarget)
		}
	}
	if hc := p.svc.HealthCheckNodePort; hc != 0 {
		// Accepted whether or not the node has a local endpoint: the answer (200
		// or 503) is what the load balancer needs.
		d[filterNodePorts].commented(kubeNodePortsChain, p.nameStr+" health check node port",
			"-m", "tcp", "-p", "tcp", "--dport", strconv.Itoa(int(hc)), "-j", "ACCEPT")
	}
}

// writeInternalRules masquerades ClusterIP traffic that comes from outside the
// cluster (or all of it with MasqueradeAll): a route to the Service range via
// any node works, and replies come back through that node.
func (b *Backend) writeInternalRules(r *lineBuffer, p *servicePlan) {
	if !p.hasInternal {
		return
	}
	proto := p.protocol
	comment := p.nameStr + " cluster IP"
	cip := p.clusterIP.String()
	switch {
	case b.masqAll:
		r.commented(p.internalChain, comment, "-m", proto, "-p", proto, "-d", cip, "--dport", p.port, "-j", kubeMarkMasqChain)
	case b.clusterCIDR.IsValid():
		r.commented(p.internalChain, comment, "-m", proto, "-p", proto, "-d", cip, "--dport", p.port,
			"!", "-s", b.clusterCIDRStr, "-j", kubeMarkMasqChain)
	default:
		// No local-traffic detector: nothing to tell outside traffic by.
	}
}

// writeExternalRules fills the KUBE-EXT chain, where node ports, external IPs
// and load-balancer IPs lead. eTP Cluster: masquerade (the endpoint may be on
// another node), then the cluster policy chain. eTP Local: keep the client's
// address, except for traffic from this node's pods and from the node itself,
// which goes to the cluster policy chain as if it had left the cluster and come
// back through a load balancer.
func (b *Backend) writeExternalRules(r *lineBuffer, p *servicePlan) {
	if !p.usesExternalChain {
		return
	}
	if !p.svc.ExternalPolicyLocal {
		r.commented(p.externalChain, "masquerade traffic for "+p.nameStr+" external destinations", "-j", kubeMarkMasqChain)
	} else {
		if b.clusterCIDR.IsValid() {
			r.commented(p.externalChain, "pod traffic for "+p.nameStr+" external destinations",
				"-s", b.clusterCIDRStr, "-j", p.clusterChain)
		}
		// The node's own traffic has a local source address (the external IP
		// itself, or 127.0.0.1 for a localhost NodePort): masquerade it.
		r.commented(p.externalChain, "masquerade LOCAL traffic for "+p.nameStr+" external destinations",
			"-m", "addrtype", "--src-type", "LOCAL", "-j", kubeMarkMasqChain)
		r.commented(p.externalChain, "route LOCAL traffic for "+p.nameStr+" external destinations",
			"-m", "addrtype", "--src-type", "LOCAL", "-j", p.clusterChain)
	}
	if p.hasExternal {
		r.rule(p.externalChain, "-j", p.externalPolicyChain)
	}
}

// writeFirewallRules fills the KUBE-FW chain: load-balancer traffic from
// loadBalancerSourceRanges goes on to KUBE-EXT; the rest falls off the end,
// is not DNATed, and KUBE-PROXY-FIREWALL (filter) drops it. When a range holds
// a node address, traffic from the load-balancer IPs themselves is allowed
// too: a node that has a VIP as a local address reaches it with the VIP as
// source.
func (b *Backend) writeFirewallRules(r *lineBuffer, p *servicePlan, node proxy.NodeInfo) {
	if !p.usesFirewallChain {
		return
	}
	comment := p.nameStr + " loadbalancer IP"
	nodeIPs := b.familyAddrs(node.IPs)
	allowFromNode := false
	for _, cidr := range p.sourceRanges {
		r.commented(p.firewallChain, comment, "-s", cidr.String(), "-j", p.externalChain)
		if slices.ContainsFunc(nodeIPs, cidr.Contains) {
			allowFromNode = true
		}
	}
	if allowFromNode {
		for _, ip := range p.lbIPs {
			r.commented(p.firewallChain, comment, "-s", ip.String(), "-j", p.externalChain)
		}
	}
	r.commented(p.firewallChain, "other traffic to "+p.nameStr+" will be dropped by KUBE-PROXY-FIREWALL")
}

// writeServiceToEndpointRules fills a policy chain (KUBE-SVC or KUBE-SVL): with
// ClientIP affinity, a client seen recently goes to the endpoint it had; then
// endpoint i of n is taken with probability 1/(n-i), the last always, which
// picks each with probability 1/n.
func (b *Backend) writeServiceToEndpointRules(r *lineBuffer, p *servicePlan, chain string, eps []proxy.Endpoint) {
	if t := p.svc.AffinityTimeout; t > 0 {
		seconds := strconv.FormatInt(int64(t.Seconds()), 10)
		for _, ep := range eps {
			sep := p.endpointChain(ep)
			r.commented(chain, p.nameStr+" -> "+ep.String(),
				"-m", "recent", "--name", sep, "--rcheck", "--seconds", seconds, "--reap", "-j", sep)
		}
	}
	n := len(eps)
	for i, ep := range eps {
		comment := p.nameStr + " -> " + ep.String()
		if i < n-1 {
			r.commented(chain, comment, "-m", "statistic", "--mode", "random", "--probability", b.probability(n-i), "-j", p.endpointChain(ep))
		} else {
			r.commented(chain, comment, "-j", p.endpointChain(ep))
		}
	}
}

// writeEndpointRules fills a KUBE-SEP chain: masquerade hairpin traffic (the
// endpoint reaching itself through the Service, which would otherwise answer
// itself directly), remember the client for affinity, DNAT.
func (b *Backend) writeEndpointRules(r *lineBuffer, p *servicePlan, ep proxy.Endpoint) {
	chain := p.endpointChain(ep)
	r.commented(chain, p.nameStr, "-s", ep.IP.String(), "-j", kubeMarkMasqChain)
	if p.svc.AffinityTimeout > 0 {
		r.commented(chain, p.nameStr, "-m", "recent", "--name", chain, "--set",
			"-m", p.protocol, "-p", p.protocol, "-j", "DNAT", "--to-destination", ep.String())
		return
	}
	r.commented(chain, p.nameStr, "-m", p.protocol, "-p", p.protocol, "-j", "DNAT", "--to-destination", ep.String())
}

// probability is 1/n as kube-proxy prints it ("0.5000000000"), cached.
func (b *Backend) probability(n int) string {
	for len(b.probabilities) <= n {
		b.probabilities = append(b.probabilities, fmt.Sprintf("%0.10f", 1.0/float64(len(b.probabilities))))
	}
	return b.probabilities[n]
}
