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
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/memtrim"
	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/proxy/conntrack"
	"github.com/kubesvc/kubesvc/internal/proxy/healthcheck"
	"github.com/kubesvc/kubesvc/internal/proxy/iptables"
	"github.com/kubesvc/kubesvc/internal/proxy/nftables"
	"github.com/kubesvc/kubesvc/internal/proxy/proxyconfig"
	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
)

// Proxy modes (kube-proxy's --proxy-mode values).
const (
	proxyModeNFTables = string(proxyconfig.ModeNFTables)
	proxyModeIPVS     = string(proxyconfig.ModeIPVS)
)

// errIPVS is the answer to --proxy-mode ipvs.
var errIPVS = errors.New(`--proxy-mode ipvs is not supported: kube-proxy deprecated IPVS mode in 1.35; use "nftables" (the default) or "iptables"`)

// proxyFlags are the service proxy's settings, with kube-proxy's flag names, on
// `kubesvc proxy`, `kubesvc agent` and `kubesvc up`. They make the flags'
// KubeProxyConfiguration; --config names a file that replaces them, and the
// ConfigMap kube-system/kube-proxy, when it exists, replaces both (see
// proxyconfig.Source: the file or the flags create it when it is missing).
type proxyFlags struct {
	configFile         string
	mode               string
	nodePortAddresses  []string
	masqueradeAll      bool
	syncPeriod         time.Duration
	minSyncPeriod      time.Duration
	healthzBindAddress string
	metricsBindAddress string
	// fs is the flag set they were added to (which of them were given).
	fs *pflag.FlagSet
}

// proxyFlagNames are the flags that make the flags' configuration.
func proxyFlagNames() []string {
	return []string{"proxy-mode", "nodeport-addresses", "masquerade-all", "sync-period", "min-sync-period", "healthz-bind-address", "metrics-bind-address"}
}

func (f *proxyFlags) add(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.configFile, "config", "", "the service proxy's KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1), used instead of the proxy flags; the ConfigMap kube-system/kube-proxy takes precedence when it exists and is created from this file (or the flags) when it does not")
	fs.StringVar(&f.mode, "proxy-mode", proxyModeNFTables, `the service proxy's data plane: "nftables" or "iptables" ("ipvs" is refused: deprecated upstream)`)
	fs.StringSliceVar(&f.nodePortAddresses, "nodeport-addresses", nil, `addresses that accept NodePort traffic: CIDRs, "primary" (the node's addresses; the nftables default), "localhost" or "all" (the iptables default)`)
	fs.BoolVar(&f.masqueradeAll, "masquerade-all", false, "masquerade all traffic to Service cluster IPs")
	fs.DurationVar(&f.syncPeriod, "sync-period", proxyconfig.DefaultSyncPeriod, "the longest time between two syncs of the proxy's rules")
	fs.DurationVar(&f.minSyncPeriod, "min-sync-period", 0, "the least time between two syncs of the proxy's rules (changes in between are batched; 0: 100ms in nftables mode, 1s in iptables mode)")
	fs.StringVar(&f.healthzBindAddress, "healthz-bind-address", "0.0.0.0:10256", "address of the proxy's /healthz and /livez (empty: none)")
	fs.StringVar(&f.metricsBindAddress, "metrics-bind-address", "127.0.0.1:10249", "address of the proxy's /metrics (empty: none)")
}

// flagsSet names the proxy flags given on the command line.
func (f *proxyFlags) flagsSet() []string {
	var out []string
	for _, name := range proxyFlagNames() {
		if f.fs != nil && f.fs.Changed(name) {
			out = append(out, "--"+name)
		}
	}
	return out
}

// source is where the proxy's configuration comes from: the ConfigMap, else
// --config (read now), else the flags (with clusterCIDRs, the cluster's pod
// ranges, as clusterCIDR).
func (f *proxyFlags) source(client kubernetes.Interface, clusterCIDRs []string, log *slog.Logger) (proxyconfig.Source, error) {
	src := proxyconfig.Source{Client: client, FlagsSet: f.flagsSet(), Log: log, Flags: proxyconfig.Flags{
		Mode: f.mode, NodePortAddresses: f.nodePortAddresses, MasqueradeAll: f.masqueradeAll,
		SyncPeriod: f.syncPeriod, MinSyncPeriod: f.minSyncPeriod,
		HealthzBindAddress: f.healthzBindAddress, MetricsBindAddress: f.metricsBindAddress, ClusterCIDRs: clusterCIDRs,
	}.Versioned()}
	if f.configFile != "" {
		data, err := os.ReadFile(f.configFile)
		if err != nil {
			return src, fmt.Errorf("--config: %w", err)
		}
		src.File, src.FileData = f.configFile, data
	}
	return src, nil
}

// validate checks the flags, or the --config file, as a usage error at start
// (the ConfigMap's content is checked when it is read: an error there is shown
// on the mirror pod and keeps the running proxy). It returns their
// configuration.
func (f *proxyFlags) validate(clusterCIDRs []string) (proxyconfig.Loaded, error) {
	if f.configFile == "" && f.mode == proxyModeIPVS {
		return proxyconfig.Loaded{}, errIPVS
	}
	src, err := f.source(nil, clusterCIDRs, nil)
	if err != nil {
		return proxyconfig.Loaded{}, err
	}
	l, _, err := src.Seed()
	return l, err
}

// serviceProxy is the node's service proxy: its configuration's source and
// what it is built from.
type serviceProxy struct {
	flags  *proxyFlags
	client kubernetes.Interface
	// nodeName is the node the proxy serves.
	nodeName string
	// clusterCIDRs are the cluster's pod ranges (the flags' clusterCIDR).
	clusterCIDRs []netip.Prefix
	log          *slog.Logger
	// machine is the proxy of a machine that is not a node (kubesvc up
	// --nodes=N): no mirror pod; a change of the ConfigMap applies at once.
	machine bool
	// nodeIPs are the machine's addresses, for a proxy with no Node (the
	// "primary" NodePort addresses).
	nodeIPs []netip.Addr
	// trimMemory gives back what start-up used (memtrim.Trim) after each
	// proxy's first successful full sync: for `kubesvc proxy`, whose process
	// is the proxy alone (the agent trims its whole process periodically).
	trimMemory bool
	// startupDone, when set, is called after each proxy's first successful
	// full sync, before the trim (startupGC.end, memtrim.FaultAroundOff).
	startupDone func()
	// sources are the Services, EndpointSlices and Node that every proxy
	// run builds follows: set by run, which starts them at once.
	sources *proxy.Sources
	// podCgroup is the cgroup v2 folder of the node's pods (the agent's):
	// each proxy attaches its socket load balancing there while it runs
	// (package socklb). "": none (kubesvc proxy, a machine's proxy).
	podCgroup string
}

// run runs the proxy under a proxyconfig.Supervisor until ctx ends: the
// configuration from the ConfigMap, --config or the flags, the mirror pod
// kube-system/kube-proxy-XXXXX, and a new proxy each time that pod is deleted.
// The machine's proxy (sp.machine) runs under a proxyconfig.Follower instead.
// Every proxy follows the same proxy.Sources, which run starts before the
// first configuration is read.
func (sp serviceProxy) run(ctx context.Context) error {
	cidrs := make([]string, 0, len(sp.clusterCIDRs))
	for _, p := range sp.clusterCIDRs {
		cidrs = append(cidrs, p.String())
	}
	src, err := sp.flags.source(sp.client, cidrs, sp.log)
	if err != nil {
		return err
	}
	if src.File != "" && len(src.FlagsSet) > 0 {
		sp.log.Warn("proxy flags are ignored: --config replaces them", "flags", src.FlagsSet, "config", src.File)
	}
	// The lists of Services, EndpointSlices and the Node start now, while the
	// configuration is read and the first proxy built (at 10,000 Services
	// they are most of the time before the first sync), and every proxy the
	// configuration builds follows them: a new one does not list again.
	sp.sources, err = proxy.NewSources(proxy.SourcesConfig{Client: sp.client, NodeName: sp.nodeName, NodeIPs: sp.nodeIPs, Log: sp.log})
	if err != nil {
		return err
	}
	supervise := func(ctx context.Context) error {
		if sp.machine {
			return (&proxyconfig.Follower{Source: src, Build: sp.build, Log: sp.log}).Run(ctx)
		}
		sup := &proxyconfig.Supervisor{Client: sp.client, NodeName: sp.nodeName, Source: src, Build: sp.build, Command: os.Args, Log: sp.log}
		return sup.Run(ctx)
	}
	return runAll(ctx, sp.sources.Run, supervise)
}

// build makes the proxy of cfg (proxyconfig.BuildFunc): one backend per IP
// family the Service ranges have, the proxy, the health and metrics servers.
// Nothing runs and nothing on the node changes before the returned function
// runs; then it removes the other mode's rules and runs everything until ctx
// ends.
func (sp serviceProxy) build(ctx context.Context, cfg proxyconfig.Config) (func(context.Context) error, error) {
	serviceCIDRs, err := sp.serviceCIDRs(ctx)
	if err != nil {
		return nil, err
	}
	clusterCIDRs := cfg.ClusterCIDRs
	if cfg.DetectLocalMode == proxyconfig.LocalModeNodeCIDR {
		if clusterCIDRs, err = sp.nodePodCIDRs(ctx); err != nil {
			return nil, err
		}
	}
	families := []knftables.Family{knftables.IPv4Family}
	for _, p := range serviceCIDRs {
		if p.Addr().Is6() {
			families = append(families, knftables.IPv6Family)
			break
		}
	}
	var backends multiBackend
	for _, fam := range families {
		b, err := sp.backend(cfg.Mode, cfg, fam, serviceCIDRs, clusterCIDRs)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", proxyconfig.ErrInvalid, err)
		}
		backends = append(backends, b)
	}
	reg := prometheus.NewRegistry()
	health := healthcheck.NewServiceServers()
	var backend proxy.Backend = &withConntrackSysctls{
		Backend: withServiceHealth{
			Backend: withConntrack{Backend: backends, r: conntrack.NewReconciler(conntrack.Netlink{}), log: sp.log},
			servers: health, log: sp.log,
		},
		sysctls: cfg.Conntrack.Sysctls(), set: nftables.ProcSysctl{}.Set, log: sp.log,
	}
	// Pods' connections to ClusterIPs, balanced in connect(): the programs
	// are attached when this proxy runs (nothing on the node changes before),
	// and not under masqueradeAll, whose point is that endpoints see the
	// node's address.
	var sockLB *socklb.Backend
	if sp.podCgroup != "" && !cfg.MasqueradeAll {
		sockLB = &socklb.Backend{Backend: backend, Log: sp.log}
		backend = sockLB
		if err := reg.Register(sockLB); err != nil {
			return nil, fmt.Errorf("socket load balancing metrics: %w", err)
		}
	}
	// firstSynced tells trimAfterFirstSync that the first full sync is done.
	var firstSynced chan struct{}
	if sp.trimMemory {
		firstSynced = make(chan struct{}, 1)
		backend = &withFirstSyncSignal{Backend: backend, done: firstSynced}
	}
	pcfg := proxy.Config{
		Sources: sp.sources, NodeName: sp.nodeName,
		Backend:       backend,
		MinSyncPeriod: cfg.MinSyncPeriod, SyncPeriod: cfg.SyncPeriod,
		Log: sp.log, Registerer: reg,
	}
	if sp.sources == nil {
		// Built without run (tests): the proxy follows the API itself.
		pcfg.Client, pcfg.NodeIPs = sp.client, sp.nodeIPs
	}
	p, err := proxy.New(pcfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", proxyconfig.ErrInvalid, err)
	}
	runs := []func(context.Context) error{p.Run, health.Run}
	if firstSynced != nil {
		trim := memtrim.Trim
		if done := sp.startupDone; done != nil {
			trim = func() (int64, error) {
				done()
				return memtrim.Trim()
			}
		}
		runs = append(runs, trimAfterFirstSync(firstSynced, trim, sp.log))
	}
	if addr := cfg.HealthzBindAddress; addr != "" {
		hs := healthcheck.NewProxyServer(addr, 2*cfg.SyncPeriod, proxyStatus{p}, nil)
		runs = append(runs, sp.server("health", addr, cfg.BindAddressHardFail, hs.Run))
	}
	if addr := cfg.MetricsBindAddress; addr != "" {
		runs = append(runs, sp.server("metrics", addr, cfg.BindAddressHardFail, func(ctx context.Context) error { return serveMetrics(ctx, addr, reg) }))
	}
	return func(ctx context.Context) error {
		sp.cleanupOtherMode(ctx, cfg, families, serviceCIDRs, clusterCIDRs)
		if sockLB != nil {
			lb, err := socklb.Open(sp.podCgroup)
			if err != nil {
				sp.log.Warn("pods' connections to ClusterIPs go through the rules only (no socket load balancing)", "err", err)
			} else {
				sockLB.LB = lb
				defer lb.Close()
				sp.log.Info("socket load balancing: pods' TCP connections to ClusterIPs go to an endpoint in connect()", "cgroup", sp.podCgroup)
			}
		}
		sp.log.Info("service proxy starting", "mode", cfg.Mode, "node", sp.nodeName, "serviceCIDRs", serviceCIDRs, "clusterCIDRs", clusterCIDRs)
		return runAll(ctx, runs...)
	}, nil
}

// server runs a health or metrics server; one that fails (its address in use)
// stops the proxy only with bindAddressHardFail, as kube-proxy.
func (sp serviceProxy) server(name, addr string, hardFail bool, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := run(ctx)
		if err == nil || hardFail {
			return err
		}
		sp.log.Error("the proxy's "+name+" server failed; the proxy runs without it (bindAddressHardFail is false)", "address", addr, "err", err)
		<-ctx.Done()
		return nil
	}
}

// backend is the data plane of one family for mode.
func (sp serviceProxy) backend(mode proxyconfig.Mode, cfg proxyconfig.Config, fam knftables.Family, serviceCIDRs, clusterCIDRs []netip.Prefix) (proxy.Backend, error) {
	switch mode {
	case proxyconfig.ModeNFTables:
		return nftables.New(nftables.Config{
			Family: fam, NodeName: sp.nodeName,
			ClusterCIDRs: clusterCIDRs, ServiceCIDRs: serviceCIDRs,
			NodePortAddresses: cfg.NodePortAddresses, MasqueradeAll: cfg.MasqueradeAll, MasqueradeBit: cfg.MasqueradeBit,
			Log: sp.log,
		})
	case proxyconfig.ModeIPTables:
		family := corev1.IPv4Protocol
		if fam == knftables.IPv6Family {
			family = corev1.IPv6Protocol
		}
		localhost := cfg.LocalhostNodePorts
		return iptables.New(iptables.Config{
			Family: family, NodeName: sp.nodeName,
			ClusterCIDRs: clusterCIDRs, ServiceCIDRs: serviceCIDRs,
			NodePortAddresses: cfg.NodePortAddresses, MasqueradeAll: cfg.MasqueradeAll, MasqueradeBit: cfg.MasqueradeBit,
			LocalhostNodePorts: &localhost,
			Log:                sp.log,
		})
	default:
		return nil, fmt.Errorf("proxy mode %q: not implemented", mode)
	}
}

// cleanupOtherMode removes what the other mode left (a node switched from
// iptables to nftables, or back, by a restart or a new configuration), as
// kube-proxy does when it starts.
func (sp serviceProxy) cleanupOtherMode(ctx context.Context, cfg proxyconfig.Config, families []knftables.Family, serviceCIDRs, clusterCIDRs []netip.Prefix) {
	other := proxyconfig.ModeIPTables
	if cfg.Mode == proxyconfig.ModeIPTables {
		other = proxyconfig.ModeNFTables
	}
	for _, fam := range families {
		b, err := sp.backend(other, cfg, fam, serviceCIDRs, clusterCIDRs)
		if err == nil {
			err = b.Cleanup(ctx)
		}
		if err != nil {
			sp.log.Debug("cleaning up the other proxy mode", "mode", other, "err", err)
		}
	}
}

// nodePodCIDRs are the Node's spec.podCIDRs, for detectLocalMode NodeCIDR; as
// kube-proxy, it waits until the Node has them.
func (sp serviceProxy) nodePodCIDRs(ctx context.Context) ([]netip.Prefix, error) {
	logged := false
	for {
		node, err := sp.client.CoreV1().Nodes().Get(ctx, sp.nodeName, metav1.GetOptions{})
		if err == nil && len(node.Spec.PodCIDRs) > 0 {
			out, err := parsePrefixes("the Node's podCIDRs", node.Spec.PodCIDRs)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", proxyconfig.ErrInvalid, err)
			}
			return out, nil
		}
		if !logged {
			sp.log.Info("waiting for the Node's podCIDRs (detectLocalMode NodeCIDR)", "node", sp.nodeName, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
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

// withConntrackSysctls sets the configuration's conntrack parameters in the
// node's network namespace after the first successful sync (which has loaded
// nf_conntrack, so that they exist). A parameter that cannot be set is logged.
type withConntrackSysctls struct {
	proxy.Backend
	sysctls []proxyconfig.Sysctl
	set     func(name, value string) error
	log     *slog.Logger
	done    bool // only the runner's goroutine calls Sync
}

func (w *withConntrackSysctls) Sync(ctx context.Context, s *proxy.Snapshot) error {
	if err := w.Backend.Sync(ctx, s); err != nil {
		return err
	}
	if !w.done {
		w.done = true
		for _, sc := range w.sysctls {
			if err := w.set(sc.Name, sc.Value); err != nil {
				w.log.Warn("conntrack setting not applied", "sysctl", sc.Name, "value", sc.Value, "err", err)
			}
		}
	}
	return nil
}

// withFirstSyncSignal sends on done once, after the first full sync that
// succeeded.
type withFirstSyncSignal struct {
	proxy.Backend
	done chan<- struct{} // buffered: the send never blocks a sync
	sent bool            // only the runner's goroutine calls Sync
}

func (w *withFirstSyncSignal) Sync(ctx context.Context, s *proxy.Snapshot) error {
	if err := w.Backend.Sync(ctx, s); err != nil {
		return err
	}
	if s.Full && !w.sent {
		w.sent = true
		select {
		case w.done <- struct{}{}:
		default:
		}
	}
	return nil
}

// trimAfterFirstSync returns a run that waits for the first full sync (a
// receive on synced) and then gives back the memory start-up used and serving
// does not, once (trim, memtrim.Trim): the freed heap of the initial lists and
// of the first sync's transaction, and the pages of this all-component binary
// that start-up touched once (at 10,000 Services, with the periodic trim, the
// binary's resident pages go from 51-55 MiB to 12-16 MiB at rest;
// docs/benchmarks.md, "Memory"). A page the proxy uses again comes back on its
// next access. It runs beside the sync loop, so that no sync waits for
// it or counts its time. A failed trim is logged; the run returns nil.
func trimAfterFirstSync(synced <-chan struct{}, trim func() (int64, error), log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-synced:
		}
		n, err := trim()
		if err != nil {
			log.Warn("giving back unused memory after the first sync", "err", err)
		} else {
			log.Debug("gave back unused memory after the first sync", "executableBytesPagedOut", n)
		}
		return nil
	}
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
	var trimMemory bool
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the service proxy (kube-proxy's job) for one node",
		Long: `Run the service proxy for one node: it follows Services, EndpointSlices and the Node
and programs this machine's nftables (or iptables) so that Service cluster IPs, node
ports, external IPs and load-balancer IPs carry traffic to ready endpoints. It needs root
and programs the network it runs in. kubesvc agent and kubesvc up run it already; this
command is for a node that runs another agent.

Its configuration is kube-proxy's KubeProxyConfiguration: the ConfigMap
kube-system/kube-proxy (key config.conf) when it exists, else --config FILE, else the
flags; when the ConfigMap is missing it is created from the file or the flags. The proxy
shows itself as the pod kube-system/kube-proxy-XXXXX on its node; deleting that pod makes
it read its configuration again and restart with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("the service proxy needs root (it programs nftables or iptables)")
			}
			cidrs, err := parsePrefixes("--cluster-cidr", splitList(clusterCIDR))
			if err != nil {
				return err
			}
			seed, err := f.validate(splitList(clusterCIDR))
			if err != nil {
				return err
			}
			// As kube-proxy: --hostname-override, else the file's
			// hostnameOverride, else the host name. (The ConfigMap is the
			// cluster's, so its hostnameOverride names no node of its own.)
			if h := seed.Config.HostnameOverride; h != "" && f.configFile != "" && !cmd.Flags().Changed("hostname-override") {
				hostname = h
			}
			if kubeconfig == "" {
				return errors.New("--kubeconfig is required")
			}
			lvl, err := parseLogLevel(logLevel)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			rc, err := loadKubeconfig(kubeconfig)
			if err != nil {
				return err
			}
			rc.UserAgent = "kubesvc-proxy/" + hostname
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("client: %w", err)
			}
			sp := serviceProxy{flags: f, client: client, nodeName: hostname, clusterCIDRs: cidrs, log: log, trimMemory: trimMemory}
			if !trimMemory {
				return sp.run(cmd.Context())
			}
			// As the agent: later bursts of work (a full sync every hour, a
			// new configuration) leave pages too.
			trim := &memtrim.Periodic{First: time.Minute, Every: time.Minute, Check: 10 * time.Second, Growth: 8 << 20, Log: log.With("component", "memtrim")}
			gc := raiseGCForStartup(startupGCPercent, debug.SetGCPercent)
			// From the first trim on, the binary's pages come back without
			// the kernel's fault-around (memtrim.NoFaultAround): the API
			// server or the agent on the same machine keeps most of them in
			// the page cache.
			var noFaultAround memtrim.FaultAroundOff
			defer noFaultAround.Close()
			sp.startupDone = func() {
				gc.end()
				if err := noFaultAround.Do(); err != nil {
					log.Info("fault-around stays on for the executable's pages", "err", err)
				}
			}
			return runAll(cmd.Context(), sp.run, trim.Run, gc.run(startupGCLimit))
		},
	}
	host, _ := os.Hostname()
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the API server")
	cmd.Flags().StringVar(&hostname, "hostname-override", strings.ToLower(host), "the name of this proxy's Node")
	cmd.Flags().StringVar(&clusterCIDR, "cluster-cidr", "10.244.0.0/16", "the cluster's pod ranges: traffic from them to a cluster IP is not masqueraded")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().BoolVar(&trimMemory, "trim-memory", true, "after the first full sync, a minute after start, and then at most once a minute when the binary's resident pages are 8 MiB above their level at rest, give back the memory start-up and bursts used: the freed heap (the initial lists, the first sync's transaction) and the pages of this (all-component) binary touched only then; until the first full sync the garbage collector runs at GOGC 400 (unless GOGC is set)")
	f.add(cmd.Flags())
	return cmd
}

// The collector's target while `kubesvc proxy` starts (startupGC), and how
// long the start may take at most.
const (
	startupGCPercent = 400
	startupGCLimit   = 2 * time.Minute
)

// startupGC has the garbage collector run less often while the proxy starts:
// the initial lists and the first sync allocate mostly what the proxy keeps
// (its trackers' state), so a collection then finds little garbage and
// rescans a growing heap — at the binary's GOGC of 50 it was a third of the
// proxy's CPU before its first sync at 10,000 Services (docs/benchmarks.md).
// end restores the percent the process had; the trim after the first sync
// then collects and gives the start-up's heap back. An explicit GOGC in the
// environment is left alone.
type startupGC struct {
	once       sync.Once
	prev       int
	raised     bool
	setPercent func(int) int
}

// raiseGCForStartup sets the GC percent to percent with set
// (debug.SetGCPercent) until end, unless GOGC is set.
func raiseGCForStartup(percent int, set func(int) int) *startupGC {
	g := &startupGC{setPercent: set}
	if os.Getenv("GOGC") == "" {
		g.prev, g.raised = g.setPercent(percent), true
	}
	return g
}

// end restores the GC percent, once.
func (g *startupGC) end() {
	g.once.Do(func() {
		if g.raised {
			g.setPercent(g.prev)
		}
	})
}

// run returns a run that ends the start-up after limit (a proxy whose first
// sync does not come keeps the percent it had) or when ctx ends.
func (g *startupGC) run(limit time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		g.end()
		return nil
	}
}
