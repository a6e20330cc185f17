package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// Table is an iptables table.
type Table string

// The tables the Backend writes to.
const (
	// TableFilter holds the rejects and drops (no endpoints, firewall, Service
	// CIDR) and the forward accepts.
	TableFilter Table = "filter"
	// TableNAT holds the dispatch, DNAT and masquerade chains.
	TableNAT Table = "nat"
	// TableMangle holds only the canary chain.
	TableMangle Table = "mangle"
)

// Built-in chains the Backend jumps from.
const (
	chainPrerouting  = "PREROUTING"
	chainInput       = "INPUT"
	chainForward     = "FORWARD"
	chainOutput      = "OUTPUT"
	chainPostrouting = "POSTROUTING"
)

// The fixed chains, with kube-proxy's names (pkg/proxy/iptables/proxier.go), so
// that its documentation, habits and `iptables-save | grep` recipes carry over.
const (
	// kubeServicesChain: nat, one rule per Service address and port (to the
	// Service's chain), then the jump to KUBE-NODEPORTS; filter, the rejects and
	// drops for ClusterIPs without (local) endpoints and the Service-CIDR drop.
	kubeServicesChain = "KUBE-SERVICES"
	// kubeExternalServicesChain (filter): rejects and drops for external IPs,
	// load-balancer IPs and node ports without (local) endpoints.
	kubeExternalServicesChain = "KUBE-EXTERNAL-SERVICES"
	// kubeNodePortsChain: nat, one rule per node port (to the Service's
	// KUBE-EXT chain); filter, accepts for the healthCheckNodePorts.
	kubeNodePortsChain = "KUBE-NODEPORTS"
	// kubePostroutingChain (nat): masquerades packets that carry the mark.
	kubePostroutingChain = "KUBE-POSTROUTING"
	// kubeMarkMasqChain (nat): sets the masquerade mark.
	kubeMarkMasqChain = "KUBE-MARK-MASQ"
	// kubeForwardChain (filter): accepts marked (Service) traffic and its
	// replies in FORWARD, and drops conntrack-INVALID packets.
	kubeForwardChain = "KUBE-FORWARD"
	// kubeProxyFirewallChain (filter): drops load-balancer traffic that its
	// KUBE-FW chain did not accept (and so did not DNAT).
	kubeProxyFirewallChain = "KUBE-PROXY-FIREWALL"
	// kubeProxyCanaryChain (mangle, nat, filter): an empty chain whose
	// disappearance tells that someone flushed iptables.
	kubeProxyCanaryChain = "KUBE-PROXY-CANARY"
	// kubeletFirewallChain (filter): the martian-drop rule that makes
	// route_localnet safe (kubelet has a copy of it in kube-proxy's world).
	kubeletFirewallChain = "KUBE-FIREWALL"
)

// Prefixes of the per-ServicePort chains (nat). The rest of a name is 16
// characters of a hash: iptables chain names are at most 28 characters.
const (
	clusterPolicyChainPrefix = "KUBE-SVC-" // endpoints for the Cluster policy
	localPolicyChainPrefix   = "KUBE-SVL-" // endpoints for the Local policy
	externalChainPrefix      = "KUBE-EXT-" // node ports, external and load-balancer IPs
	firewallChainPrefix      = "KUBE-FW-"  // loadBalancerSourceRanges
	endpointChainPrefix      = "KUBE-SEP-" // one endpoint: hairpin masquerade and DNAT
)

var serviceChainPrefixes = []string{
	clusterPolicyChainPrefix, localPolicyChainPrefix, externalChainPrefix,
	firewallChainPrefix, endpointChainPrefix,
}

// isServiceChainName reports whether chain is a per-ServicePort chain.
func isServiceChainName(chain string) bool {
	for _, p := range serviceChainPrefixes {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// ownedFixedChains are the fixed chains per table, in the order they are
// declared. Cleanup removes them (and every per-ServicePort chain).
var ownedFixedChains = map[Table][]string{
	TableFilter: {kubeNodePortsChain, kubeServicesChain, kubeExternalServicesChain, kubeletFirewallChain,
		kubeForwardChain, kubeProxyFirewallChain, kubeProxyCanaryChain},
	TableNAT:    {kubeNodePortsChain, kubeServicesChain, kubeMarkMasqChain, kubePostroutingChain, kubeProxyCanaryChain},
	TableMangle: {kubeProxyCanaryChain},
}

// isOwnedChain reports whether chain in table is one the Backend creates.
func isOwnedChain(table Table, chain string) bool {
	if table == TableNAT && isServiceChainName(chain) {
		return true
	}
	for _, c := range ownedFixedChains[table] {
		if c == chain {
			return true
		}
	}
	return false
}

// jumpRule is a rule in a built-in chain that jumps to one of ours; args are
// the matches before "-j dst".
type jumpRule struct {
	table    Table
	src, dst string
	args     []string
}

// spec is the rule's arguments after "-A src", comment included.
func (j jumpRule) spec() []string {
	return append(append([]string{}, j.args...), "-j", j.dst)
}

// Comments of the jump rules (kube-proxy's; Cleanup finds jumps by target, not
// by comment, so a change here strands nothing).
const (
	commentServicePortals  = "kubernetes service portals"
	commentExternalPortals = "kubernetes externally-visible service portals"
	commentHealthCheck     = "kubernetes health check service ports"
	commentForward         = "kubernetes forwarding rules"
	commentLBFirewall      = "kubernetes load balancer firewall"
	commentPostrouting     = "kubernetes postrouting rules"
)

var ctStateNew = []string{"-m", "conntrack", "--ctstate", "NEW"}

// withComment returns args with a comment match added (unquoted: the writer
// quotes).
func withComment(args []string, comment string) []string {
	return append(append([]string{}, args...), "-m", "comment", "--comment", comment)
}

// jumpRules are kube-proxy's jumps from the built-in chains
// (iptablesJumpChains), inserted at the top of their chain in this order.
// Filter chains see connections after DNAT (OUTPUT and FORWARD) or at the node
// (INPUT); nat PREROUTING and OUTPUT catch the first packet of a connection.
var jumpRules = []jumpRule{
	{TableFilter, chainInput, kubeExternalServicesChain, withComment(ctStateNew, commentExternalPortals)},
	{TableFilter, chainForward, kubeExternalServicesChain, withComment(ctStateNew, commentExternalPortals)},
	{TableFilter, chainInput, kubeNodePortsChain, withComment(nil, commentHealthCheck)},
	{TableFilter, chainForward, kubeServicesChain, withComment(ctStateNew, commentServicePortals)},
	{TableFilter, chainOutput, kubeServicesChain, withComment(ctStateNew, commentServicePortals)},
	{TableFilter, chainForward, kubeForwardChain, withComment(nil, commentForward)},
	{TableFilter, chainInput, kubeProxyFirewallChain, withComment(ctStateNew, commentLBFirewall)},
	{TableFilter, chainOutput, kubeProxyFirewallChain, withComment(ctStateNew, commentLBFirewall)},
	{TableFilter, chainForward, kubeProxyFirewallChain, withComment(ctStateNew, commentLBFirewall)},
	{TableNAT, chainOutput, kubeServicesChain, withComment(nil, commentServicePortals)},
	{TableNAT, chainPrerouting, kubeServicesChain, withComment(nil, commentServicePortals)},
	{TableNAT, chainPostrouting, kubePostroutingChain, withComment(nil, commentPostrouting)},
}

// localnetJumpRules jump to the martian-drop chain (kubelet's shape: no
// matches, no comment); only with localhost NodePorts.
var localnetJumpRules = []jumpRule{
	{TableFilter, chainInput, kubeletFirewallChain, nil},
	{TableFilter, chainOutput, kubeletFirewallChain, nil},
}

// portProtoHash is kube-proxy's: the first 16 characters of the base32
// (RFC 4648, padded alphabet) encoding of sha256(servicePortName + protocol),
// where servicePortName is "ns/name:port" (or "ns/name" for an unnamed port)
// and protocol is lower case ("tcp"). Chains of the same ServicePort share it.
func portProtoHash(name proxy.ServicePortName, protocol string) string {
	return hash16(name.String() + protocol)
}

// endpointChainName is kube-proxy's KUBE-SEP name: the hash also covers the
// endpoint's "IP:PORT" ("[IP]:PORT" for IPv6).
func endpointChainName(name proxy.ServicePortName, protocol string, ep proxy.Endpoint) string {
	return endpointChainPrefix + hash16(name.String()+protocol+ep.String())
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}
