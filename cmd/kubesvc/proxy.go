package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/proxy/conntrack"
	"github.com/kubesvc/kubesvc/internal/proxy/healthcheck"
	"github.com/kubesvc/kubesvc/internal/proxy/iptables"
	"github.com/kubesvc/kubesvc/internal/proxy/nftables"
)

// Proxy modes (kube-proxy's --proxy-mode values).
const (
	proxyModeNFTables = "nftables"
	proxyModeIPTables = "iptables"
	proxyModeIPVS     = "ipvs"
)

// errIPVS is the answer to --proxy-mode ipvs.
var errIPVS = errors.New(`--proxy-mode ipvs is not supported: kube-proxy deprecated IPVS mode in 1.35; use "nftables" (the default) or "iptables"`)

// proxyFlags are the service proxy's settings, with kube-proxy's flag names, on
// `kubesvc proxy`, `kubesvc agent` and `kubesvc up`.
type proxyFlags struct {
	mode               string
	nodePortAddresses  []string
	masqueradeAll      bool
	syncPeriod         time.Duration
	minSyncPeriod      time.Duration
	healthzBindAddress string
	metricsBindAddress string
}

func (f *proxyFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.mode, "proxy-mode", proxyModeNFTables, `the service proxy's data plane: "nftables" or "iptables" ("ipvs" is refused: deprecated upstream)`)
	fs.StringSliceVar(&f.nodePortAddresses, "nodeport-addresses", nil, `addresses that accept NodePort traffic: CIDRs, or "primary" (the node's addresses; the default)`)
	fs.BoolVar(&f.masqueradeAll, "masquerade-all", false, "masquerade all traffic to Service cluster IPs")
	fs.DurationVar(&f.syncPeriod, "sync-period", proxy.DefaultSyncPeriod, "the longest time between two syncs of the proxy's rules")
	fs.DurationVar(&f.minSyncPeriod, "min-sync-period", proxy.DefaultMinSyncPeriod, "the least time between two syncs of the proxy's rules (changes in between are batched)")
	fs.StringVar(&f.healthzBindAddress, "healthz-bind-address", "0.0.0.0:10256", "address of the proxy's /healthz and /livez (empty: none)")
	fs.StringVar(&f.metricsBindAddress, "metrics-bind-address", "127.0.0.1:10249", "address of the proxy's /metrics (empty: none)")
}

// validate checks the flags on their own.
func (f *proxyFlags) validate() error {
	switch f.mode {
	case proxyModeNFTables, proxyModeIPTables:
	case proxyModeIPVS:
		return errIPVS
	default:
		return fmt.Errorf("--proxy-mode %q is not a proxy mode; use %q or %q", f.mode, proxyModeNFTables, proxyModeIPTables)
	}
	if f.minSyncPeriod < 0 || f.syncPeriod <= 0 || f.syncPeriod < f.minSyncPeriod {
		return fmt.Errorf("--sync-period %v must be positive and not shorter than --min-sync-period %v", f.syncPeriod, f.minSyncPeriod)
	}
	return nil
}

// serviceProxy is one running proxy: the node's name and ranges, the client.
type serviceProxy struct {
	flags        *proxyFlags
	client       kubernetes.Interface
	nodeName     string
	clusterCIDRs []netip.Prefix
	log          *slog.Logger
}

// run builds the backends (one per IP family the Service ranges have) and the
// proxy and runs them with the health and metrics servers until ctx ends.
func (sp serviceProxy) run(ctx context.Context) error {
	if err := sp.flags.validate(); err != nil {
		return err
	}
	serviceCIDRs, err := sp.serviceCIDRs(ctx)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	families := []knftables.Family{knftables.IPv4Family}
	for _, p := range serviceCIDRs {
		if p.Addr().Is6() {
			families = append(families, knftables.IPv6Family)
			break
		}
	}
	sp.cleanupOtherMode(ctx, families, serviceCIDRs)
	var backends multiBackend
	for _, fam := range families {
		b, err := sp.backend(fam, serviceCIDRs)
		if err != nil {
			return err
		}
		backends = append(backends, b)
	}
	health := healthcheck.NewServiceServers()
	p, err := proxy.New(proxy.Config{
		Client: sp.client, NodeName: sp.nodeName,
		Backend: withServiceHealth{
			Backend: withConntrack{Backend: backends, r: conntrack.NewReconciler(conntrack.Netlink{}), log: sp.log},
			servers: health, log: sp.log,
		},
		MinSyncPeriod: sp.flags.minSyncPeriod, SyncPeriod: sp.flags.syncPeriod,
		Log: sp.log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	sp.log.Info("service proxy starting", "mode", sp.flags.mode, "node", sp.nodeName, "serviceCIDRs", serviceCIDRs)
	runs := []func(context.Context) error{p.Run, health.Run}
	if addr := sp.flags.healthzBindAddress; addr != "" {
		hs := healthcheck.NewProxyServer(addr, 2*sp.flags.syncPeriod, proxyStatus{p}, nil)
		runs = append(runs, hs.Run)
	}
	if addr := sp.flags.metricsBindAddress; addr != "" {
		runs = append(runs, func(ctx context.Context) error { return serveMetrics(ctx, addr, reg) })
	}
	return runAll(ctx, runs...)
}

// backend is the data plane of one family for the chosen mode.
func (sp serviceProxy) backend(fam knftables.Family, serviceCIDRs []netip.Prefix) (proxy.Backend, error) {
	switch sp.flags.mode {
	case proxyModeNFTables:
		return nftables.New(nftables.Config{
			Family: fam, NodeName: sp.nodeName,
			ClusterCIDRs: sp.clusterCIDRs, ServiceCIDRs: serviceCIDRs,
			NodePortAddresses: sp.flags.nodePortAddresses, MasqueradeAll: sp.flags.masqueradeAll,
			Log: sp.log,
		})
	case proxyModeIPTables:
		family := corev1.IPv4Protocol
		if fam == knftables.IPv6Family {
			family = corev1.IPv6Protocol
		}
		return iptables.New(iptables.Config{
			Family: family, NodeName: sp.nodeName,
			ClusterCIDRs: sp.clusterCIDRs, ServiceCIDRs: serviceCIDRs,
			NodePortAddresses: sp.flags.nodePortAddresses, MasqueradeAll: sp.flags.masqueradeAll,
			Log: sp.log,
		})
	default:
		return nil, fmt.Errorf("--proxy-mode %s: not implemented", sp.flags.mode)
	}
}

// cleanupOtherMode removes what the other mode left (a node switched from
// iptables to nftables, or back), as kube-proxy does when it starts.
func (sp serviceProxy) cleanupOtherMode(ctx context.Context, families []knftables.Family, serviceCIDRs []netip.Prefix) {
	other := *sp.flags
	other.mode = proxyModeIPTables
	if sp.flags.mode == proxyModeIPTables {
		other.mode = proxyModeNFTables
	}
	o := sp
	o.flags = &other
	for _, fam := range families {
		b, err := o.backend(fam, serviceCIDRs)
		if err == nil {
			err = b.Cleanup(ctx)
		}
		if err != nil {
			sp.log.Debug("cleaning up the other proxy mode", "mode", other.mode, "err", err)
		}
	}
}

// serviceCIDRs are the cluster's Service ranges, from its ServiceCIDR objects (as
// kube-proxy reads them), for the rule that drops traffic to unallocated ones.
func (sp serviceProxy) serviceCIDRs(ctx context.Context) ([]netip.Prefix, error) {
	list, err := sp.client.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing ServiceCIDRs: %w", err)
	}
	var out []netip.Prefix
	for _, sc := range list.Items {
		for _, c := range sc.Spec.CIDRs {
			if p, err := netip.ParsePrefix(c); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out, nil
}

// multiBackend syncs one backend per IP family; all must succeed.
type multiBackend []proxy.Backend

func (m multiBackend) Sync(ctx context.Context, s *proxy.Snapshot) error {
	var errs []error
	for _, b := range m {
		if err := b.Sync(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m multiBackend) Cleanup(ctx context.Context) error {
	var errs []error
	for _, b := range m {
		errs = append(errs, b.Cleanup(ctx))
	}
	return errors.Join(errs...)
}

// withServiceHealth keeps the healthCheckNodePort servers of externalTrafficPolicy
// Local Services in step with each sync.
type withServiceHealth struct {
	proxy.Backend
	servers *healthcheck.ServiceServers
	log     *slog.Logger
}

func (w withServiceHealth) Sync(ctx context.Context, s *proxy.Snapshot) error {
	if err := w.Backend.Sync(ctx, s); err != nil {
		return err
	}
	want := map[int32]healthcheck.ServiceHealth{}
	for name, svc := range s.Services {
		if svc.HealthCheckNodePort == 0 || !svc.ExternalPolicyLocal {
			continue
		}
		_, local, _ := proxy.CategorizeEndpoints(s.Endpoints[name], svc, s.Node)
		h := want[svc.HealthCheckNodePort]
		h.Service = name.NamespacedName
		h.LocalEndpoints += len(local)
		want[svc.HealthCheckNodePort] = h
	}
	if err := w.servers.Sync(want); err != nil {
		w.log.Warn("health check node ports", "err", err)
	}
	return nil
}

// withConntrack deletes the UDP conntrack entries each sync makes stale.
type withConntrack struct {
	proxy.Backend
	r   *conntrack.Reconciler
	log *slog.Logger
}

func (w withConntrack) Sync(ctx context.Context, s *proxy.Snapshot) error {
	if err := w.Backend.Sync(ctx, s); err != nil {
		return err
	}
	if n, err := w.r.Reconcile(ctx, s); err != nil {
		w.log.Warn("conntrack cleanup", "err", err)
	} else if n > 0 {
		w.log.Info("deleted stale UDP conntrack entries", "count", n)
	}
	return nil
}

// proxyStatus adapts the proxy's Healthz to the health server.
type proxyStatus struct{ p *proxy.Proxy }

func (s proxyStatus) Health() (time.Time, time.Time, bool) {
	h := s.p.Healthz()
	return h.LastSynced, h.OldestPending, !h.NodeEligible()
}

// serveMetrics serves reg at /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	}
}

// runAll runs every function until ctx ends or one fails; then it stops the others
// and returns the first error.
func runAll(ctx context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(runs))
	for _, run := range runs {
		go func() { errc <- run(ctx) }()
	}
	var first error
	for range runs {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// newProxyCommand is `kubesvc proxy`: the service proxy alone, for a node whose
// agent is not kubesvc's (kubesvc agent and kubesvc up run it themselves).
func newProxyCommand() *cobra.Command {
	f := &proxyFlags{}
	var kubeconfig, hostname, clusterCIDR, logLevel string
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the service proxy (kube-proxy's job) for one node",
		Long: `Run the service proxy for one node: it follows Services, EndpointSlices and the Node
and programs this machine's nftables (or iptables) so that Service cluster IPs, node
ports, external IPs and load-balancer IPs carry traffic to ready endpoints. It needs root
and programs the network it runs in. kubesvc agent and kubesvc up run it already; this
command is for a node that runs another agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("the service proxy needs root (it programs nftables or iptables)")
			}
			if err := f.validate(); err != nil {
				return err
			}
			if kubeconfig == "" {
				return errors.New("--kubeconfig is required")
			}
			lvl, err := parseLogLevel(logLevel)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
			}
			rc.UserAgent = "kubesvc-proxy/" + hostname
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("client: %w", err)
			}
			cidrs, err := parsePrefixes("--cluster-cidr", splitList(clusterCIDR))
			if err != nil {
				return err
			}
			return serviceProxy{flags: f, client: client, nodeName: hostname, clusterCIDRs: cidrs, log: log}.run(cmd.Context())
		},
	}
	host, _ := os.Hostname()
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the API server")
	cmd.Flags().StringVar(&hostname, "hostname-override", strings.ToLower(host), "the name of this proxy's Node")
	cmd.Flags().StringVar(&clusterCIDR, "cluster-cidr", "10.244.0.0/16", "the cluster's pod ranges: traffic from them to a cluster IP is not masqueraded")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.add(cmd.Flags())
	return cmd
}
