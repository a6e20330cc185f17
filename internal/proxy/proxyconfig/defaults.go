package proxyconfig

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	v1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"
)

// kubesvc's defaults: kube-proxy's (pkg/proxy/apis/config/v1alpha1/defaults.go),
// but for the mode and the nftables mode's minSyncPeriod.
const (
	DefaultMode          = ModeNFTables
	DefaultBindAddress   = "0.0.0.0"
	DefaultHealthzPort   = 10256
	DefaultMetricsPort   = 10249
	DefaultSyncPeriod    = 30 * time.Second
	DefaultMinSyncPeriod = 1 * time.Second
	// DefaultNFTablesMinSyncPeriod is the nftables section's minSyncPeriod
	// (kube-proxy's is 1s in both modes). kube-proxy's 1s dates from
	// iptables-restore runs of several seconds; kubesvc's nftables syncs are
	// partial (only the changed Services' elements, rules and chains: a few
	// milliseconds at 10,000 Services, tens when Services are added), so
	// batching for a whole second only delays rules: the last Service of a
	// burst of creates waited up to a second for its rules. At 100ms a
	// continuous stream of changes still costs at most one sync per 100ms.
	DefaultNFTablesMinSyncPeriod = 100 * time.Millisecond
	DefaultMasqueradeBit         = 14
	DefaultConfigSyncPeriod      = 15 * time.Minute
	DefaultOOMScoreAdj           = -999
	DefaultConntrackMaxPerCore   = 32 * 1024
	DefaultConntrackMin          = 128 * 1024
	DefaultTCPEstablished        = 24 * time.Hour
	DefaultTCPCloseWait          = 1 * time.Hour
)

// SetDefaults fills in what cfg leaves unset, as kube-proxy defaults a v1alpha1
// configuration: a zero duration, a nil pointer or an empty string is unset. A
// blank mode becomes nftables (kube-proxy's becomes iptables); detectLocalMode
// ClusterCIDR; a healthz or metrics address without a port gets the default
// port. It does not validate.
func SetDefaults(cfg *v1alpha1.KubeProxyConfiguration) {
	if cfg.Mode == "" {
		cfg.Mode = v1alpha1.ProxyMode(DefaultMode)
	}
	if cfg.BindAddress == "" {
		cfg.BindAddress = DefaultBindAddress
	}
	healthzHost, metricsHost := "0.0.0.0", "127.0.0.1"
	if ip, err := netip.ParseAddr(strings.Split(cfg.BindAddress, ",")[0]); err == nil && ip.Is6() {
		healthzHost, metricsHost = "::", "::1"
	}
	if cfg.HealthzBindAddress == "" {
		cfg.HealthzBindAddress = net.JoinHostPort(healthzHost, strconv.Itoa(DefaultHealthzPort))
	} else {
		cfg.HealthzBindAddress = appendPortIfNeeded(cfg.HealthzBindAddress, DefaultHealthzPort)
	}
	if cfg.MetricsBindAddress == "" {
		cfg.MetricsBindAddress = net.JoinHostPort(metricsHost, strconv.Itoa(DefaultMetricsPort))
	} else {
		cfg.MetricsBindAddress = appendPortIfNeeded(cfg.MetricsBindAddress, DefaultMetricsPort)
	}
	if cfg.OOMScoreAdj == nil {
		cfg.OOMScoreAdj = ptr.To(int32(DefaultOOMScoreAdj))
	}
	defaultPeriods(&cfg.IPTables.SyncPeriod, &cfg.IPTables.MinSyncPeriod, DefaultMinSyncPeriod)
	if cfg.IPTables.MasqueradeBit == nil {
		cfg.IPTables.MasqueradeBit = ptr.To(int32(DefaultMasqueradeBit))
	}
	if cfg.IPTables.LocalhostNodePorts == nil {
		cfg.IPTables.LocalhostNodePorts = ptr.To(true)
	}
	defaultPeriods(&cfg.NFTables.SyncPeriod, &cfg.NFTables.MinSyncPeriod, DefaultNFTablesMinSyncPeriod)
	if cfg.NFTables.MasqueradeBit == nil {
		cfg.NFTables.MasqueradeBit = ptr.To(int32(DefaultMasqueradeBit))
	}
	if cfg.IPVS.SyncPeriod.Duration == 0 {
		cfg.IPVS.SyncPeriod = metav1.Duration{Duration: DefaultSyncPeriod}
	}
	ct := &cfg.Conntrack
	if ct.MaxPerCore == nil {
		ct.MaxPerCore = ptr.To(int32(DefaultConntrackMaxPerCore))
	}
	if ct.Min == nil {
		ct.Min = ptr.To(int32(DefaultConntrackMin))
	}
	if ct.TCPEstablishedTimeout == nil {
		ct.TCPEstablishedTimeout = &metav1.Duration{Duration: DefaultTCPEstablished}
	}
	if ct.TCPCloseWaitTimeout == nil {
		ct.TCPCloseWaitTimeout = &metav1.Duration{Duration: DefaultTCPCloseWait}
	}
	if cfg.ConfigSyncPeriod.Duration == 0 {
		cfg.ConfigSyncPeriod.Duration = DefaultConfigSyncPeriod
	}
	if cfg.DetectLocalMode == "" {
		cfg.DetectLocalMode = v1alpha1.LocalMode(LocalModeClusterCIDR)
	}
	cc := &cfg.ClientConnection
	if cc.ContentType == "" {
		cc.ContentType = "application/vnd.kubernetes.protobuf"
	}
	if cc.QPS == 0 {
		cc.QPS = 5
	}
	if cc.Burst == 0 {
		cc.Burst = 10
	}
	if cfg.FeatureGates == nil {
		cfg.FeatureGates = map[string]bool{}
	}
}

// defaultPeriods gives a mode's section its default sync periods. As in
// kube-proxy, a minSyncPeriod of 0s is unset too (and becomes minDefault).
func defaultPeriods(sync, minSync *metav1.Duration, minDefault time.Duration) {
	if sync.Duration == 0 {
		sync.Duration = DefaultSyncPeriod
	}
	if minSync.Duration == 0 {
		minSync.Duration = minDefault
	}
}

// appendPortIfNeeded is kube-proxy's proxyutil.AppendPortIfNeeded: an address
// without a port gets port; anything else (host:port, or not an address) is
// kept for Validate to judge.
func appendPortIfNeeded(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}
