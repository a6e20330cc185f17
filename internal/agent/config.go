package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/agent/runtime"
)

// Defaults, the kubelet's where it has one.
const (
	DefaultClusterDomain             = "cluster.local"
	DefaultMaxPods                   = 110
	DefaultLeaseDuration             = 40 * time.Second
	DefaultLeaseRenewInterval        = 10 * time.Second
	DefaultNodeStatusUpdateFrequency = 10 * time.Second
	DefaultNodeStatusReportFrequency = 5 * time.Minute
	// DefaultRelistPeriod is how often the runtime's containers are listed to notice
	// exits (kubelet's PLEG relist period).
	DefaultRelistPeriod = time.Second
	// DefaultKubeletPort is the port the Node advertises in
	// status.daemonEndpoints.kubeletEndpoint (the agent's streaming server).
	DefaultKubeletPort = 10250
	// DefaultResolvConf is the host resolver configuration pods with dnsPolicy
	// Default (and hostNetwork pods with ClusterFirst) inherit.
	DefaultResolvConf = "/etc/resolv.conf"
	// systemdResolvConf is the upstream configuration of systemd-resolved, used
	// instead of /etc/resolv.conf when that only names the local stub (127.0.0.53),
	// which a pod in its own network namespace cannot reach (kubeadm does the same).
	systemdResolvConf = "/run/systemd/resolve/resolv.conf"
	// DefaultHostsFile is the node's hosts file, the base of hostNetwork pods'.
	DefaultHostsFile = "/etc/hosts"
)

// ImageResolver turns the image a container names, with its command and args
// (already $(VAR)-expanded), into the program the runtime runs. Package images'
// Resolver implements it; an image it cannot run yields an error wrapping
// images.ErrUnknownImage, which the agent reports as ErrImagePull/ImagePullBackOff.
type ImageResolver interface {
	Resolve(image string, command, args []string) (runtime.Program, error)
}

// Config configures an Agent. Required: NodeName, RootDir, Client, Network,
// Runtime, Images. Zero values of the rest take the defaults above.
type Config struct {
	// NodeName is the Node's name (a DNS subdomain).
	NodeName string
	// NodeIP is the node's InternalIP, also every pod's hostIP. Zero is for a
	// machine with no address of its own (a sealed network namespace): the node's
	// address is then its pod network's gateway, the first host address of its
	// first pod CIDR, and the Node reports it once the pod network is configured.
	NodeIP netip.Addr
	// RootDir holds the agent's state: pods/<uid>/ (etc-hosts, resolv.conf,
	// hostname, volumes/) and logs/ (container logs). It must be absolute.
	RootDir string
	// ClusterDNS are the nameservers of ClusterFirst pods (kubelet --cluster-dns);
	// empty: such pods fall back to dnsPolicy Default, with a MissingClusterDNS
	// event, as with the kubelet.
	ClusterDNS []netip.Addr
	// ClusterDomain is the DNS domain of the cluster (default cluster.local).
	ClusterDomain string
	// ClusterCIDRs and ServiceCIDRs are passed to the pod network (masquerade
	// decisions); see podnet.NodeNetwork.
	ClusterCIDRs, ServiceCIDRs []netip.Prefix

	Client  kubernetes.Interface
	Network podnet.Network
	Runtime runtime.Runtime
	Images  ImageResolver

	// Version is the kubeletVersion the Node reports (and, as kubesvc://VERSION,
	// its containerRuntimeVersion); empty: the API server's gitVersion.
	Version string
	// Log receives the agent's log; nil discards it.
	Log *slog.Logger
	// Clock drives every timer of the agent; nil is the real clock.
	Clock clock.WithTicker
	// Registerer receives the agent's metrics; nil registers nowhere.
	Registerer prometheus.Registerer

	// MaxPods is the node's pod capacity (kubelet --max-pods).
	MaxPods                   int
	LeaseDuration             time.Duration
	LeaseRenewInterval        time.Duration
	NodeStatusUpdateFrequency time.Duration
	NodeStatusReportFrequency time.Duration
	RelistPeriod              time.Duration
	// KubeletPort is the port the Node advertises in
	// status.daemonEndpoints.kubeletEndpoint, where the kubelet server listens
	// (every address) when KubeletClientCA is set.
	KubeletPort int32
	// KubeletClientCA (PEM) runs the kubelet server (package kubeletserver): HTTPS
	// with a self-signed certificate, serving only clients whose certificate
	// chains to it and names pki.KubeletClientUser (the API server). It is the
	// cluster CA, the one in the agent's kubeconfig. Empty: no kubelet server.
	KubeletClientCA []byte
	// PodCgroup is the cgroup v2 folder the Runtime starts this node's pods in
	// (process.Config.PodCgroup), for the node's service proxy to attach its
	// socket load balancing to; "" when there is none. The agent itself does
	// not use it.
	PodCgroup string
	// ResolvConf is the host resolver configuration (kubelet --resolv-conf);
	// empty: /etc/resolv.conf, or systemd-resolved's upstream file when
	// /etc/resolv.conf only names its local stub (decided when Run starts).
	ResolvConf string
	// HostsFile is the node's hosts file (default /etc/hosts).
	HostsFile string
}

// complete validates c and fills in the defaults.
func (c Config) complete() (Config, error) {
	if errs := validation.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		return c, fmt.Errorf("agent: invalid node name %q: %v", c.NodeName, errs)
	}
	if c.NodeIP.IsValid() && (c.NodeIP.IsLoopback() || c.NodeIP.IsUnspecified()) {
		return c, fmt.Errorf("agent: Config.NodeIP %s cannot be reached from pods", c.NodeIP)
	}
	if c.RootDir == "" || !filepath.IsAbs(c.RootDir) {
		return c, fmt.Errorf("agent: Config.RootDir must be an absolute path, not %q", c.RootDir)
	}
	switch {
	case c.Client == nil:
		return c, errors.New("agent: Config.Client is required")
	case c.Network == nil:
		return c, errors.New("agent: Config.Network is required")
	case c.Runtime == nil:
		return c, errors.New("agent: Config.Runtime is required")
	case c.Images == nil:
		return c, errors.New("agent: Config.Images is required")
	}
	for _, ip := range c.ClusterDNS {
		if !ip.IsValid() {
			return c, errors.New("agent: invalid Config.ClusterDNS address")
		}
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	if errs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(errs) > 0 {
		return c, fmt.Errorf("agent: invalid cluster domain %q: %v", c.ClusterDomain, errs)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.MaxPods <= 0 {
		c.MaxPods = DefaultMaxPods
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&c.LeaseDuration, DefaultLeaseDuration)
	setDur(&c.LeaseRenewInterval, DefaultLeaseRenewInterval)
	setDur(&c.NodeStatusUpdateFrequency, DefaultNodeStatusUpdateFrequency)
	setDur(&c.NodeStatusReportFrequency, DefaultNodeStatusReportFrequency)
	setDur(&c.RelistPeriod, DefaultRelistPeriod)
	if c.KubeletPort <= 0 {
		c.KubeletPort = DefaultKubeletPort
	}
	if len(c.KubeletClientCA) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.KubeletClientCA) {
		return c, errors.New("agent: Config.KubeletClientCA holds no PEM certificate")
	}
	if c.HostsFile == "" {
		c.HostsFile = DefaultHostsFile
	}
	return c, nil
}

// hostResolvConf picks the host resolver configuration: /etc/resolv.conf, unless
// it names only systemd-resolved's stub 127.0.0.53 and the upstream file exists.
func hostResolvConf() string {
	f, err := os.Open(DefaultResolvConf)
	if err != nil {
		return DefaultResolvConf
	}
	defer f.Close()
	servers, _, _, err := parseResolvConf(f)
	if err != nil || len(servers) != 1 || servers[0] != "127.0.0.53" {
		return DefaultResolvConf
	}
	if _, err := os.Stat(systemdResolvConf); err != nil {
		return DefaultResolvConf
	}
	return systemdResolvConf
}
