package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/component"
	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/manager"
	"github.com/kubesvc/kubesvc/internal/controller/servicelb"
)

// serverFlags are the flags of `kubesvc server` (the names are a contract).
type serverFlags struct {
	dataDir          string
	bindAddress      string
	advertiseAddress string
	securePort       int
	etcdServers      []string
	serviceCIDR      string
	nodePortRange    string
	tokenFile        string
	logLevel         string
	controllers      []string
	leaderElect      bool
	ctrl             controller.Options
}

func (f *serverFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", "/var/lib/kubesvc", "directory for embedded etcd data, the generated PKI and admin.kubeconfig")
	fs.StringVar(&f.bindAddress, "bind-address", "0.0.0.0", "IP address the HTTPS API listens on")
	fs.StringVar(&f.advertiseAddress, "advertise-address", "", "IP address the kubernetes Service's endpoints carry, where pods reach the API (default: the bind address when it is not 0.0.0.0 or loopback, else the address of the default route's interface)")
	fs.IntVar(&f.securePort, "secure-port", 6443, "port the HTTPS API listens on (0 picks a free port)")
	fs.StringSliceVar(&f.etcdServers, "etcd-servers", nil, "etcd client URLs of an external cluster (default: an embedded member)")
	fs.StringVar(&f.serviceCIDR, "service-cluster-ip-range", "10.96.0.0/12", "CIDR(s) for Service cluster IPs (v4cidr[,v6cidr])")
	fs.StringVar(&f.nodePortRange, "service-node-port-range", "30000-32767", "port range for NodePort Services")
	fs.StringVar(&f.tokenFile, "token-auth-file", "", "CSV file of bearer tokens: token,user,uid,\"group1,group2\"")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	d := controller.DefaultOptions()
	fs.StringSliceVar(&f.controllers, "controllers", []string{"*"}, "controllers to run: '*' for all, 'name' to enable, '-name' to disable (kube-controller-manager's syntax)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "run the controllers only while holding the kube-system/kube-controller-manager Lease")
	fs.StringVar(&f.ctrl.ClusterCIDR, "cluster-cidr", d.ClusterCIDR, "pod network; each node gets a --node-cidr-mask-size block of it")
	fs.IntVar(&f.ctrl.NodeCIDRMaskSize, "node-cidr-mask-size", d.NodeCIDRMaskSize, "prefix length of each node's pod CIDR")
	fs.IntVar(&f.ctrl.MaxEndpointsPerSlice, "max-endpoints-per-slice", d.MaxEndpointsPerSlice, "maximum endpoints in one EndpointSlice (1-1000)")
	fs.DurationVar(&f.ctrl.NodeMonitorGracePeriod, "node-monitor-grace-period", d.NodeMonitorGracePeriod, "a node whose Lease is older than this is marked Ready=Unknown")
	fs.DurationVar(&f.ctrl.PodEvictionTimeout, "pod-eviction-timeout", d.PodEvictionTimeout, "pods on an unreachable node are deleted after this (unless they tolerate longer)")
	fs.IntVar(&f.ctrl.Workers, "concurrent-syncs", d.Workers, "concurrent syncs per controller")
	fs.StringArrayVar(&f.ctrl.LoadBalancerIPRanges, "loadbalancer-ip-range", nil, "address pool of LoadBalancer Services, a CIDR or FIRST-LAST, IPv4 or IPv6 (repeatable); without it LoadBalancer Services get the ready nodes' InternalIPs")
}

// runner builds the API server and a component runner holding it ("server") and the
// controllers ("controllers"), in that order: the runner stops components in
// reverse, so the controllers stop and release their leader Lease while the API
// server still answers. onReady, when set, is called once the server answers.
func (f *serverFlags) runner(onReady func(*apiserver.Server)) (*apiserver.Server, *component.Runner, error) {
	log, err := f.logger()
	if err != nil {
		return nil, nil, err
	}
	if err := servicelb.ValidateRanges(f.ctrl.LoadBalancerIPRanges); err != nil {
		return nil, nil, err
	}
	reg, err := newMetricsRegistry()
	if err != nil {
		return nil, nil, err
	}
	cfg := f.config()
	cfg.Metrics = reg
	srv, err := apiserver.New(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	r := &component.Runner{}
	r.Add(serverComponent(srv, onReady))
	if len(manager.All()) > 0 {
		r.Add(component.Component{Name: "controllers", Run: func(ctx context.Context) error {
			return f.runControllers(ctx, srv, log, reg)
		}})
	}
	return srv, r, nil
}

// serverComponent runs the API server; onReady, when set, is called once it answers.
func serverComponent(srv *apiserver.Server, onReady func(*apiserver.Server)) component.Component {
	return component.Component{Name: "server", Run: func(ctx context.Context) error {
		if onReady != nil {
			watchCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				if waitReady(watchCtx, srv) == nil {
					onReady(srv)
				}
			}()
		}
		return srv.Run(ctx)
	}}
}

// runControllers waits for the API server, then runs the controllers until ctx ends.
func (f *serverFlags) runControllers(ctx context.Context, srv *apiserver.Server, log *slog.Logger, reg prometheus.Registerer) error {
	if err := waitReady(ctx, srv); err != nil {
		return err
	}
	rc, err := srv.ClientConfig("system:kube-controller-manager", nil)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("controller client: %w", err)
	}
	m, err := manager.New(manager.Config{Client: client, RestConfig: rc, Controllers: f.controllers,
		Options: f.ctrl, LeaderElect: f.leaderElect, Log: log, Registerer: reg}, manager.All())
	if err != nil {
		return err
	}
	return m.Run(ctx)
}

// waitReady returns nil once srv answers requests, or ctx's error if ctx ends first.
func waitReady(ctx context.Context, srv *apiserver.Server) error {
	select {
	case <-srv.Ready():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newMetricsRegistry is the registry the API server serves at /metrics: the
// server's own collectors, the controllers' work queues, and the Go runtime and
// process collectors that every Kubernetes component exposes.
func newMetricsRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

func (f *serverFlags) config() apiserver.Config {
	return apiserver.Config{
		DataDir: f.dataDir, BindAddress: f.bindAddress, AdvertiseAddress: f.advertiseAddress, SecurePort: f.securePort,
		EtcdServers: f.etcdServers, ServiceClusterIPRange: f.serviceCIDR,
		ServiceNodePortRange: f.nodePortRange, TokenAuthFile: f.tokenFile,
		Version: apiserver.DefaultVersion(),
	}
}

func (f *serverFlags) logger() (*slog.Logger, error) {
	lvl, err := parseLogLevel(f.logLevel)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}

func newServerCommand() *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Kubernetes-compatible API server (embedded etcd by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, r, err := f.runner(nil)
			if err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	f.add(cmd.Flags())
	return cmd
}
