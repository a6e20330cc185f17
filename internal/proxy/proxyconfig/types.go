package proxyconfig

import (
	"errors"
	"net/netip"
	"strconv"
	"time"
)

// Mode is the proxy's data plane (KubeProxyConfiguration.mode).
type Mode string

// The proxy modes. An empty mode in a KubeProxyConfiguration means ModeNFTables
// (kube-proxy's blank means iptables; kubesvc's best data plane is nftables).
const (
	// ModeNFTables programs one nftables table that kubesvc owns.
	ModeNFTables Mode = "nftables"
	// ModeIPTables programs kube-proxy's KUBE-* iptables chains.
	ModeIPTables Mode = "iptables"
	// ModeIPVS is refused: kube-proxy deprecated IPVS mode in 1.35.
	ModeIPVS Mode = "ipvs"
)

// LocalMode is how the proxy tells traffic from this cluster's pods
// (KubeProxyConfiguration.detectLocalMode).
type LocalMode string

// The local-traffic detection modes.
const (
	// LocalModeClusterCIDR: a source in clusterCIDR is a pod (the default).
	LocalModeClusterCIDR LocalMode = "ClusterCIDR"
	// LocalModeNodeCIDR: a source in the Node's spec.podCIDRs is a pod.
	LocalModeNodeCIDR LocalMode = "NodeCIDR"
	// LocalModeBridgeInterface is refused (kubesvc's backends match addresses).
	LocalModeBridgeInterface LocalMode = "BridgeInterface"
	// LocalModeInterfaceNamePrefix is refused (as LocalModeBridgeInterface).
	LocalModeInterfaceNamePrefix LocalMode = "InterfaceNamePrefix"
)

// NodePortPrimary is the nodePortAddresses keyword for the Node's own
// addresses; the data planes take it as it is. The keywords "localhost" and
// "all" are expanded into CIDRs by Complete.
const NodePortPrimary = "primary"

// ErrInvalid is wrapped by every error about a configuration's content: one
// that does not decode or does not validate. Errors that do not wrap it (an API
// server that does not answer) say nothing about the configuration.
var ErrInvalid = errors.New("invalid kube-proxy configuration")

// IsInvalid reports whether err is about a configuration's content.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Config is a complete, validated configuration: what the proxy and its data
// planes are built from. Complete makes it; nothing changes it afterwards
// (callers must not modify its slices).
type Config struct {
	// Mode is ModeNFTables or ModeIPTables.
	Mode Mode
	// HostnameOverride is the node name the configuration asks for ("": the
	// caller's). The caller decides whether it applies (see Supervisor).
	HostnameOverride string
	// NodeIPOverride are the bindAddress addresses other than the unspecified
	// ones (kube-proxy's "node IP override"); empty when bindAddress is 0.0.0.0
	// or ::.
	NodeIPOverride []netip.Addr
	// HealthzBindAddress is the host:port of /healthz and /livez ("": none).
	HealthzBindAddress string
	// MetricsBindAddress is the host:port of /metrics ("": none; only a flag
	// can say so, a file's "" is the default).
	MetricsBindAddress string
	// BindAddressHardFail: a health or metrics server that cannot listen stops
	// the proxy (false: it is logged and the proxy runs without it).
	BindAddressHardFail bool
	// NodePortAddresses are "primary" and CIDRs, keywords expanded; empty is
	// the data plane's default ("primary" in nftables mode, every address in
	// iptables mode, as kube-proxy).
	NodePortAddresses []string
	// DetectLocalMode is LocalModeClusterCIDR or LocalModeNodeCIDR.
	DetectLocalMode LocalMode
	// ClusterCIDRs are clusterCIDR's prefixes (masked); with
	// LocalModeClusterCIDR they detect local traffic.
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all traffic to ClusterIPs (the mode's
	// section's masqueradeAll, as kube-proxy reads it).
	MasqueradeAll bool
	// MasqueradeBit is the mode's section's masqueradeBit, 1..31.
	MasqueradeBit int
	// LocalhostNodePorts is iptables.localhostNodePorts (iptables mode only).
	LocalhostNodePorts bool
	// SyncPeriod and MinSyncPeriod are the mode's section's.
	SyncPeriod    time.Duration
	MinSyncPeriod time.Duration
	// Conntrack holds the conntrack settings.
	Conntrack Conntrack
}

// Conntrack is KubeProxyConfiguration.conntrack, resolved. MaxPerCore and Min
// are read and validated but not applied: nf_conntrack_max is one value for the
// whole machine (read-only outside the initial network namespace) and its hash
// size a module parameter, and kubesvc's proxy may run in a network namespace
// of its own. The timeouts and tcpBeLiberal are per network namespace and are
// applied (Sysctls).
type Conntrack struct {
	MaxPerCore            int32
	Min                   int32
	TCPEstablishedTimeout time.Duration
	TCPCloseWaitTimeout   time.Duration
	TCPBeLiberal          bool
	UDPTimeout            time.Duration
	UDPStreamTimeout      time.Duration
}

// Sysctl is one kernel parameter, in sysctl(8)'s dotted form.
type Sysctl struct {
	Name, Value string
}

// Sysctls are the parameters c sets in the node's network namespace, as
// kube-proxy sets them: each timeout only when positive, tcpBeLiberal only
// when true. None is set for a zero Conntrack.
func (c Conntrack) Sysctls() []Sysctl {
	var out []Sysctl
	secs := func(name string, d time.Duration) {
		if d > 0 {
			out = append(out, Sysctl{Name: "net.netfilter." + name, Value: strconv.Itoa(int(d / time.Second))})
		}
	}
	secs("nf_conntrack_tcp_timeout_established", c.TCPEstablishedTimeout)
	secs("nf_conntrack_tcp_timeout_close_wait", c.TCPCloseWaitTimeout)
	if c.TCPBeLiberal {
		out = append(out, Sysctl{Name: "net.netfilter.nf_conntrack_tcp_be_liberal", Value: "1"})
	}
	secs("nf_conntrack_udp_timeout", c.UDPTimeout)
	secs("nf_conntrack_udp_timeout_stream", c.UDPStreamTimeout)
	return out
}
