package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// DefaultTableName is the table the backend owns when Config.TableName is empty.
const DefaultTableName = "kubesvc"

// Object names. The table is ours alone, so names need no prefix of their own.
// The names, and the hooks and priorities of the base chains, are kube-proxy's
// (pkg/proxy/nftables/proxier.go), so its documentation and habits carry over.
const (
	// base chains
	filterPreroutingChain     = "filter-prerouting"
	filterInputChain          = "filter-input"
	filterForwardChain        = "filter-forward"
	filterOutputChain         = "filter-output"
	filterOutputPostDNATChain = "filter-output-post-dnat"
	natPreroutingChain        = "nat-prerouting"
	natOutputChain            = "nat-output"
	natPostroutingChain       = "nat-postrouting"

	// service dispatch
	servicesChain       = "services"
	serviceIPsMap       = "service-ips"
	serviceNodePortsMap = "service-nodeports"

	// addresses that accept NodePort traffic (when not "any local address")
	nodePortIPsSet = "nodeport-ips"

	// active ClusterIPs
	clusterIPsSet = "cluster-ips"
	// ClusterIP . protocol . port of the ServicePorts with endpoints for
	// internal traffic: such traffic from outside the cluster is masqueraded
	clusterIPsMasqSet = "cluster-ips-masquerade"

	// Services without (usable) endpoints
	serviceEndpointsCheckChain  = "service-endpoints-check"
	nodePortEndpointsCheckChain = "nodeport-endpoints-check"
	noEndpointServicesMap       = "no-endpoint-services"
	noEndpointNodePortsMap      = "no-endpoint-nodeports"
	rejectChain                 = "reject-chain"

	// invalid ports of ClusterIPs and unallocated addresses in the Service CIDRs
	clusterIPsCheckChain = "cluster-ips-check"

	// loadBalancerSourceRanges
	firewallIPsMap     = "firewall-ips"
	firewallCheckChain = "firewall-check"

	// masquerading
	markMasqChain     = "mark-for-masquerade"
	masqueradingChain = "masquerading"

	// endpoint selection without a chain per endpoint: each policy chain owns
	// a window of endpoint-buckets-PROTO (see bucketsPerWindow), and every
	// endpoint address is in hairpin-endpoints as "addr . addr"
	endpointBucketsMapPrefix = "endpoint-buckets-" // + PROTO-SHARD, see bucketMapName
	hairpinSet               = "hairpin-endpoints"
)

// A policy chain (service-… or local-…) without ClientIP affinity picks its
// endpoint with one rule, "dnat to numgen random mod bucketsPerWindow offset
// O map @endpoint-buckets", where O is the chain's window: endpoint i of n owns
// the buckets [O + i·W/n, O + (i+1)·W/n). Changing, adding or removing an
// endpoint then changes only elements of a data map, which the kernel applies
// without validating the whole table (it does so for every new rule with a
// jump, goto, nat, masquerade or reject and every new jump/goto element of a
// verdict map: 200–280 ms at 10,000 Services in kube-proxy's layout). The
// spread is equal within 1/W (n ≤ W; a chain with more endpoints, or with
// affinity, keeps kube-proxy's endpoint chains).
//
// There is a map per protocol because its "typeof" names the port field, and
// nft 1.0.6 refuses to add a rule that uses a map typed "th dport" once the map
// is in the kernel ("conflicting protocols specified: tcp vs. th").
const (
	bucketsPerWindow = 1 << 16
	maxWindows       = 1 << 16 // bucketsPerWindow · maxWindows = 2^32, numgen's range
)

// Prefixes of the per-ServicePort chains and sets. A per-ServicePort name is
// prefix + "HASH8-ns/name/proto/port" (endpoint chains and affinity sets add
// "__IP/PORT"); "/" never occurs in the fixed names above, which is how
// isServiceChainName tells them apart.
const (
	clusterPolicyChainPrefix = "service-"
	localPolicyChainPrefix   = "local-"
	externalChainPrefix      = "external-"
	firewallChainPrefix      = "firewall-"
	endpointChainPrefix      = "endpoint-"
	affinitySetPrefix        = "affinity-"

	// chainNamePrefixLengthMax bounds the prefixes above, hyphen included.
	chainNamePrefixLengthMax = 16
	// chainNameBaseLengthMax bounds what follows the prefix.
	chainNameBaseLengthMax = knftables.NameLengthMax - chainNamePrefixLengthMax
)

// bucketShards is the number of endpoint-buckets maps per protocol; window w
// is in shard w % bucketShards. One map for all would cost the kernel
// O(elements × rules) in a full sync: every element added to a map is checked
// against every rule bound to it (nft_add_set_elem walks the set's bindings;
// 10,000 Services × 10 endpoints took 7–14 s of kernel CPU). A map per
// ServicePort would cost O(operations × sets) instead: the kernel finds a set
// by name in a list. 256 shards keep both small at 10,000 Services (~40 rules
// per map, ~300 sets).
const bucketShards = 256

// bucketMapName is the endpoint-buckets map of window win for protocol proto,
// "endpoint-buckets-tcp-17". Shard maps are created when first needed and
// deleted by the next full sync that does not need them.
func bucketMapName(proto string, win uint32) string {
	return endpointBucketsMapPrefix + proto + "-" + strconv.Itoa(int(win%bucketShards))
}

// isBucketMapName reports whether set is an endpoint-buckets map.
func isBucketMapName(set string) bool {
	return strings.HasPrefix(set, endpointBucketsMapPrefix)
}

// baseChain is a chain attached to a netfilter hook.
type baseChain struct {
	name      string
	chainType knftables.BaseChainType
	hook      knftables.BaseChainHook
	priority  knftables.BaseChainPriority
}

// Base chain priorities, as numbers: kube-proxy writes "dstnat-10", "dstnat" and
// "dstnat+10", but nft before 1.0.7 accepts the name "dstnat" only on the
// prerouting hook ("invalid priority expression value in this context" on
// input, forward and output), so we write the values (dstnat = -100, srcnat = 100).
const (
	priorityFilterPreDNAT  knftables.BaseChainPriority = "-110" // dstnat-10: before DNAT, sees the service address
	priorityFilterPostDNAT knftables.BaseChainPriority = "-90"  // dstnat+10: after DNAT
	priorityDNAT           knftables.BaseChainPriority = "-100" // dstnat
	prioritySNAT           knftables.BaseChainPriority = "100"  // srcnat
)

// baseChains are created on every full sync, in this order. Filter chains run
// before DNAT so that they see the address the client used (a Service IP).
var baseChains = []baseChain{
	{filterPreroutingChain, knftables.FilterType, knftables.PreroutingHook, priorityFilterPreDNAT},
	{filterInputChain, knftables.FilterType, knftables.InputHook, priorityFilterPreDNAT},
	{filterForwardChain, knftables.FilterType, knftables.ForwardHook, priorityFilterPreDNAT},
	{filterOutputChain, knftables.FilterType, knftables.OutputHook, priorityFilterPreDNAT},
	{filterOutputPostDNATChain, knftables.FilterType, knftables.OutputHook, priorityFilterPostDNAT},
	{natPreroutingChain, knftables.NATType, knftables.PreroutingHook, priorityDNAT},
	{natOutputChain, knftables.NATType, knftables.OutputHook, priorityDNAT},
	{natPostroutingChain, knftables.NATType, knftables.PostroutingHook, prioritySNAT},
}

// jumpChain is a rule "[match] jump dst" in the base chain src.
type jumpChain struct {
	dst, src, match string
}

// jumpChains are the top-level regular chains and where they are jumped to from.
// The endpoint checks are not in filter-prerouting (as the firewall check is)
// because reject is valid only on the input, forward and output hooks before
// kernel 5.9.
var jumpChains = []jumpChain{
	{nodePortEndpointsCheckChain, filterInputChain, "ct state new"},
	{serviceEndpointsCheckChain, filterInputChain, "ct state new"},
	{serviceEndpointsCheckChain, filterForwardChain, "ct state new"},
	{serviceEndpointsCheckChain, filterOutputChain, "ct state new"},

	{firewallCheckChain, filterPreroutingChain, "ct state new"},
	{firewallCheckChain, filterOutputChain, "ct state new"},

	{servicesChain, natOutputChain, ""},
	{servicesChain, natPreroutingChain, ""},
	{masqueradingChain, natPostroutingChain, ""},

	{clusterIPsCheckChain, filterForwardChain, "ct state new"},
	{clusterIPsCheckChain, filterOutputPostDNATChain, "ct state new"},
}

// hashAndTruncate prefixes name with a hash of name and salt, and truncates the
// result to chainNameBaseLengthMax. The hash keeps the name unique when the end
// is cut, and tells apart at a glance names that differ in one digit.
func hashAndTruncate(name, salt string) string {
	hash := sha256.Sum256([]byte(name + salt))
	encoded := base32.StdEncoding.EncodeToString(hash[:])
	name = encoded[:8] + "-" + name
	if len(name) > chainNameBaseLengthMax {
		name = name[:chainNameBaseLengthMax-3] + "..."
	}
	return name
}

// servicePortChainBase is "HASH-ns/name/proto/port" for a ServicePort, e.g.
// "ULMVA6XW-ns1/svc1/tcp/p80". Namespace, Service and port names are
// [a-z0-9-], so they are safe in nft names; "/" separates them.
func servicePortChainBase(name proxy.ServicePortName, protocol string) string {
	return hashAndTruncate(servicePortNameParts(name, protocol), "")
}

func servicePortNameParts(name proxy.ServicePortName, protocol string) string {
	return fmt.Sprintf("%s/%s/%s/%s", name.Namespace, name.Name, protocol, name.Port)
}

// endpointParts is the "ns/name/proto/port__IP/PORT" part of an endpoint's
// chain and affinity set names. An IPv6 address has colons, which nft names do
// not allow; they become dots.
func endpointParts(name proxy.ServicePortName, protocol string, ep proxy.Endpoint) string {
	ip := strings.ReplaceAll(ep.IP.String(), ":", ".")
	return fmt.Sprintf("%s__%s/%d", servicePortNameParts(name, protocol), ip, ep.Port)
}

// endpointChainName is "endpoint-HASH-ns/name/proto/port__IP/PORT".
func endpointChainName(name proxy.ServicePortName, protocol string, ep proxy.Endpoint) string {
	return endpointChainPrefix + hashAndTruncate(endpointParts(name, protocol, ep), "")
}

// affinitySetName is "affinity-HASH-ns/name/proto/port__IP/PORT". Unlike
// kube-proxy, the hash also covers the timeout: a set's timeout cannot be
// changed by "add set" on every kernel, so a new timeout makes a new set (the old
// one is deleted as stale) instead of a transaction that fails on every retry.
func affinitySetName(name proxy.ServicePortName, protocol string, ep proxy.Endpoint, timeoutSeconds int64) string {
	return affinitySetPrefix + hashAndTruncate(endpointParts(name, protocol, ep), fmt.Sprintf("/timeout=%d", timeoutSeconds))
}

// isServiceChainName reports whether chain is a per-ServicePort chain (service-,
// local-, external-, firewall- or endpoint-): only those have a "/".
func isServiceChainName(chain string) bool {
	return strings.Contains(chain, "/")
}

// isAffinitySetName reports whether set is a per-endpoint affinity set.
func isAffinitySetName(set string) bool {
	return strings.HasPrefix(set, affinitySetPrefix)
}

// chainKind is one of a ServicePort's own chains (endpoint chains apart).
type chainKind uint8

const (
	kindCluster  chainKind = iota // service-…: the Cluster policy chain
	kindLocal                     // local-…: the Local policy chain
	kindExternal                  // external-…
	kindFirewall                  // firewall-…
	numChainKinds
)

// chainKindPrefixes are the name prefixes of the chain kinds.
var chainKindPrefixes = [numChainKinds]string{
	kindCluster:  clusterPolicyChainPrefix,
	kindLocal:    localPolicyChainPrefix,
	kindExternal: externalChainPrefix,
	kindFirewall: firewallChainPrefix,
}

// protoName is p as nft writes it: "tcp", "udp", "sctp" (without the
// allocation of strings.ToLower for the three).
func protoName(p corev1.Protocol) string {
	switch p {
	case corev1.ProtocolTCP:
		return "tcp"
	case corev1.ProtocolUDP:
		return "udp"
	case corev1.ProtocolSCTP:
		return "sctp"
	}
	return strings.ToLower(string(p))
}
