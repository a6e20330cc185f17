package proxyconfig

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"
	v1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
)

// The nodePortAddresses keywords Complete expands (kube-proxy's).
const (
	nodePortLocalhost = "localhost"
	nodePortAll       = "all"
)

// Messages kube-proxy has no equivalent of.
const (
	msgIPVS = `IPVS mode is not supported: kube-proxy deprecated it in 1.35; use "nftables" (the default) or "iptables"`
	msgMode = "must be iptables, nftables or blank (blank means the best-available proxy [currently nftables])"
	msgBit0 = "bit 0 is not supported by kubesvc's data planes: use 1..31 (the default is 14)"
	msgLoc  = `not supported by kubesvc: its data planes detect local traffic by source address; use "ClusterCIDR" or "NodeCIDR"`
)

// Validate checks a defaulted configuration (SetDefaults) with kube-proxy's
// rules and, where kube-proxy has one, its message; the paths are the fields'
// names in the YAML (nftables.syncPeriod). It also refuses what kubesvc cannot
// do: mode ipvs, detectLocalMode BridgeInterface and InterfaceNamePrefix, and a
// masqueradeBit of 0 in the mode in use. An empty list means valid.
func Validate(cfg *v1alpha1.KubeProxyConfiguration) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateMode(cfg)...)
	errs = append(errs, validateMasqueradeBit(cfg.IPTables.MasqueradeBit, Mode(cfg.Mode) == ModeIPTables, field.NewPath("iptables", "masqueradeBit"))...)
	if Mode(cfg.Mode) == ModeNFTables {
		errs = append(errs, validateMasqueradeBit(cfg.NFTables.MasqueradeBit, true, field.NewPath("nftables", "masqueradeBit"))...)
	}
	errs = append(errs, validateConntrack(cfg.Conntrack, field.NewPath("conntrack"))...)
	if cfg.OOMScoreAdj != nil && (*cfg.OOMScoreAdj < -1000 || *cfg.OOMScoreAdj > 1000) {
		errs = append(errs, field.Invalid(field.NewPath("oomScoreAdj"), *cfg.OOMScoreAdj, "must be within the range [-1000, 1000]"))
	}
	if cfg.ClientConnection.Burst < 0 {
		errs = append(errs, field.Invalid(field.NewPath("clientConnection", "burst"), cfg.ClientConnection.Burst, "must be greater than or equal to 0"))
	}
	if cfg.ConfigSyncPeriod.Duration <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("configSyncPeriod"), cfg.ConfigSyncPeriod.Duration.String(), "must be greater than 0"))
	}
	for _, a := range strings.Split(cfg.BindAddress, ",") {
		if _, err := netip.ParseAddr(a); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("bindAddress"), a, "not a valid textual representation of an IP address"))
		}
	}
	if cfg.HealthzBindAddress != "" {
		errs = append(errs, validateHostPort(cfg.HealthzBindAddress, field.NewPath("healthzBindAddress"))...)
	}
	// "" comes only from a flag (SetDefaults fills it in): no metrics server.
	if cfg.MetricsBindAddress != "" {
		errs = append(errs, validateHostPort(cfg.MetricsBindAddress, field.NewPath("metricsBindAddress"))...)
	}
	if _, err := utilnet.ParsePortRange(cfg.PortRange); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("portRange"), cfg.PortRange, "must be a valid port range (e.g. 300-2000)"))
	}
	errs = append(errs, validateNodePortAddresses(cfg.NodePortAddresses, field.NewPath("nodePortAddresses"))...)
	errs = append(errs, validateDetectLocal(cfg)...)
	return errs
}

// validateMode checks the mode and the sync periods of its section (kube-proxy
// reads syncPeriod and minSyncPeriod from the section of the mode in use).
func validateMode(cfg *v1alpha1.KubeProxyConfiguration) field.ErrorList {
	p := field.NewPath("mode")
	switch Mode(cfg.Mode) {
	case ModeNFTables:
		return validatePeriods(cfg.NFTables.SyncPeriod, cfg.NFTables.MinSyncPeriod, field.NewPath("nftables"))
	case ModeIPTables:
		return validatePeriods(cfg.IPTables.SyncPeriod, cfg.IPTables.MinSyncPeriod, field.NewPath("iptables"))
	case ModeIPVS:
		return field.ErrorList{field.Invalid(p, string(cfg.Mode), msgIPVS)}
	default:
		return field.ErrorList{field.Invalid(p, string(cfg.Mode), msgMode)}
	}
}

func validatePeriods(sync, minSync metav1.Duration, section *field.Path) field.ErrorList {
	var errs field.ErrorList
	if sync.Duration <= 0 {
		errs = append(errs, field.Invalid(section.Child("syncPeriod"), sync.Duration.String(), "must be greater than 0"))
	}
	if minSync.Duration < 0 {
		errs = append(errs, field.Invalid(section.Child("minSyncPeriod"), minSync.Duration.String(), "must be greater than or equal to 0"))
	}
	if minSync.Duration > sync.Duration {
		errs = append(errs, field.Invalid(section.Child("syncPeriod"), sync.Duration.String(),
			fmt.Sprintf("must be greater than or equal to %s (%s)", section.Child("minSyncPeriod"), minSync.Duration)))
	}
	return errs
}

func validateMasqueradeBit(bit *int32, inUse bool, p *field.Path) field.ErrorList {
	switch {
	case bit == nil:
		return nil
	case *bit < 0 || *bit > 31:
		return field.ErrorList{field.Invalid(p, *bit, "must be within the range [0, 31]")}
	case *bit == 0 && inUse:
		return field.ErrorList{field.Invalid(p, *bit, msgBit0)}
	}
	return nil
}

func validateConntrack(c v1alpha1.KubeProxyConntrackConfiguration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	counts := []struct {
		name string
		v    *int32
	}{{"maxPerCore", c.MaxPerCore}, {"min", c.Min}}
	for _, n := range counts {
		if n.v != nil && *n.v < 0 {
			errs = append(errs, field.Invalid(p.Child(n.name), *n.v, "must be greater than or equal to 0"))
		}
	}
	durations := []struct {
		name string
		d    *metav1.Duration
	}{
		{"tcpEstablishedTimeout", c.TCPEstablishedTimeout}, {"tcpCloseWaitTimeout", c.TCPCloseWaitTimeout},
		{"udpTimeout", &c.UDPTimeout}, {"udpStreamTimeout", &c.UDPStreamTimeout},
	}
	for _, d := range durations {
		if d.d != nil && d.d.Duration < 0 {
			errs = append(errs, field.Invalid(p.Child(d.name), d.d.Duration.String(), "must be greater than or equal to 0"))
		}
	}
	return errs
}

// validateHostPort is kube-proxy's check of healthzBindAddress and
// metricsBindAddress.
func validateHostPort(input string, p *field.Path) field.ErrorList {
	host, port, err := net.SplitHostPort(input)
	if err != nil {
		return field.ErrorList{field.Invalid(p, input, "must be IP:port")}
	}
	var errs field.ErrorList
	if _, err := netip.ParseAddr(host); err != nil {
		errs = append(errs, field.Invalid(p, host, "must be a valid IP"))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, field.Invalid(p, port, "must be a valid port"))
	}
	return errs
}

func validateNodePortAddresses(addrs []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, a := range addrs {
		switch a {
		case NodePortPrimary, nodePortLocalhost, nodePortAll:
			continue
		}
		if _, err := netip.ParsePrefix(a); err != nil {
			errs = append(errs, field.Invalid(p.Index(i), a, `must be a valid CIDR, or one of "primary", "localhost" and "all"`))
		}
	}
	return errs
}

func validateDetectLocal(cfg *v1alpha1.KubeProxyConfiguration) field.ErrorList {
	p := field.NewPath("detectLocalMode")
	var errs field.ErrorList
	switch LocalMode(cfg.DetectLocalMode) {
	case LocalModeClusterCIDR, LocalModeNodeCIDR:
	case LocalModeBridgeInterface, LocalModeInterfaceNamePrefix:
		errs = append(errs, field.Invalid(p, string(cfg.DetectLocalMode), msgLoc))
	default:
		errs = append(errs, field.NotSupported(p, string(cfg.DetectLocalMode), []string{string(LocalModeClusterCIDR), string(LocalModeNodeCIDR)}))
	}
	if cfg.ClusterCIDR == "" {
		return errs
	}
	cp := field.NewPath("clusterCIDR")
	parts := strings.Split(cfg.ClusterCIDR, ",")
	var prefixes []netip.Prefix
	for _, c := range parts {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			errs = append(errs, field.Invalid(cp, c, "must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)"))
			continue
		}
		prefixes = append(prefixes, pfx)
	}
	if len(parts) > 2 || (len(prefixes) == 2 && prefixes[0].Addr().Is4() == prefixes[1].Addr().Is4()) {
		errs = append(errs, field.Invalid(cp, cfg.ClusterCIDR, "must be either a single CIDR or a dual-stack pair of CIDRs (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"))
	}
	return errs
}

// Complete validates a defaulted configuration and resolves it into a Config:
// the mode's section gives the sync periods, masqueradeAll and masqueradeBit
// (as kube-proxy reads them), the nodePortAddresses keywords "localhost" and
// "all" become CIDRs. The error wraps ErrInvalid and lists every problem. The
// warnings name what is read but has no effect.
func Complete(cfg *v1alpha1.KubeProxyConfiguration) (Config, []string, error) {
	if errs := Validate(cfg); len(errs) > 0 {
		return Config{}, nil, fmt.Errorf("%w: %w", ErrInvalid, errs.ToAggregate())
	}
	c := Config{
		Mode:                Mode(cfg.Mode),
		HostnameOverride:    strings.ToLower(strings.TrimSpace(cfg.HostnameOverride)),
		HealthzBindAddress:  cfg.HealthzBindAddress,
		MetricsBindAddress:  cfg.MetricsBindAddress,
		BindAddressHardFail: cfg.BindAddressHardFail,
		DetectLocalMode:     LocalMode(cfg.DetectLocalMode),
		LocalhostNodePorts:  cfg.IPTables.LocalhostNodePorts == nil || *cfg.IPTables.LocalhostNodePorts,
	}
	for _, a := range strings.Split(cfg.BindAddress, ",") {
		if ip := netip.MustParseAddr(a); !ip.IsUnspecified() {
			c.NodeIPOverride = append(c.NodeIPOverride, ip)
		}
	}
	switch c.Mode {
	case ModeNFTables:
		c.SyncPeriod, c.MinSyncPeriod = cfg.NFTables.SyncPeriod.Duration, cfg.NFTables.MinSyncPeriod.Duration
		c.MasqueradeAll, c.MasqueradeBit = cfg.NFTables.MasqueradeAll, int(ptrOr(cfg.NFTables.MasqueradeBit, DefaultMasqueradeBit))
	case ModeIPTables:
		c.SyncPeriod, c.MinSyncPeriod = cfg.IPTables.SyncPeriod.Duration, cfg.IPTables.MinSyncPeriod.Duration
		c.MasqueradeAll, c.MasqueradeBit = cfg.IPTables.MasqueradeAll, int(ptrOr(cfg.IPTables.MasqueradeBit, DefaultMasqueradeBit))
	}
	for _, a := range cfg.NodePortAddresses {
		switch a {
		case nodePortLocalhost:
			c.NodePortAddresses = append(c.NodePortAddresses, "127.0.0.0/8", "::1/128")
		case nodePortAll:
			c.NodePortAddresses = append(c.NodePortAddresses, "0.0.0.0/0", "::/0")
		default:
			c.NodePortAddresses = append(c.NodePortAddresses, a)
		}
	}
	if cfg.ClusterCIDR != "" {
		for _, s := range strings.Split(cfg.ClusterCIDR, ",") {
			c.ClusterCIDRs = append(c.ClusterCIDRs, netip.MustParsePrefix(s).Masked())
		}
	}
	ct := cfg.Conntrack
	c.Conntrack = Conntrack{
		MaxPerCore: ptrOr(ct.MaxPerCore, 0), Min: ptrOr(ct.Min, 0),
		TCPBeLiberal: ct.TCPBeLiberal, UDPTimeout: ct.UDPTimeout.Duration, UDPStreamTimeout: ct.UDPStreamTimeout.Duration,
	}
	if ct.TCPEstablishedTimeout != nil {
		c.Conntrack.TCPEstablishedTimeout = ct.TCPEstablishedTimeout.Duration
	}
	if ct.TCPCloseWaitTimeout != nil {
		c.Conntrack.TCPCloseWaitTimeout = ct.TCPCloseWaitTimeout.Duration
	}
	return c, warnings(cfg), nil
}

// warnings name the settings that are read but change nothing.
func warnings(cfg *v1alpha1.KubeProxyConfiguration) []string {
	var out []string
	if len(cfg.FeatureGates) > 0 {
		out = append(out, "featureGates are ignored: kubesvc's proxy has no feature gates")
	}
	if cfg.ClusterCIDR == "" && LocalMode(cfg.DetectLocalMode) == LocalModeClusterCIDR {
		out = append(out, "detectLocalMode is ClusterCIDR but clusterCIDR is empty: traffic from pods is not told apart (as kube-proxy, no local-traffic detection)")
	}
	return out
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
