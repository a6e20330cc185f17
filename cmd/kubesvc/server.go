package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/controller"
	"github.com/kubesvc/kubesvc/internal/controller/manager"
)

// serverFlags are the flags of `kubesvc server` (the names are a contract).
type serverFlags struct {
	dataDir       string
	bindAddress   string
	securePort    int
	etcdServers   []string
	serviceCIDR   string
	nodePortRange string
	tokenFile     string
	logLevel      string
	controllers   []string
	leaderElect   bool
	ctrl          controller.Options
}

func (f *serverFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", "/var/lib/kubesvc", "directory for embedded etcd data, the generated PKI and admin.kubeconfig")
	fs.StringVar(&f.bindAddress, "bind-address", "0.0.0.0", "IP address the HTTPS API listens on")
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
}

// run starts the API server and, once it is ready, the controllers; it returns when
// ctx ends or either fails.
func (f *serverFlags) run(ctx context.Context, ready func(*apiserver.Server)) error {
	log := f.logger()
	srv, err := apiserver.New(f.config(), log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-srv.Ready():
	}
	if ready != nil {
		ready(srv)
	}
	if len(manager.All()) > 0 {
		rc, err := srv.ClientConfig("system:kube-controller-manager", nil)
		if err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("controller client: %w", err)
		}
		m, err := manager.New(manager.Config{Client: client, RestConfig: rc, Controllers: f.controllers,
			Options: f.ctrl, LeaderElect: f.leaderElect, Log: log}, manager.All())
		if err != nil {
			return err
		}
		go func() {
			if err := m.Run(ctx); err != nil {
				errc <- fmt.Errorf("controllers: %w", err)
			}
		}()
	}
	err = <-errc
	cancel()
	return err
}

func (f *serverFlags) config() apiserver.Config {
	return apiserver.Config{
		DataDir: f.dataDir, BindAddress: f.bindAddress, SecurePort: f.securePort,
		EtcdServers: f.etcdServers, ServiceClusterIPRange: f.serviceCIDR,
		ServiceNodePortRange: f.nodePortRange, TokenAuthFile: f.tokenFile,
		Version: apiserver.DefaultVersion(),
	}
}

func (f *serverFlags) logger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(f.logLevel)))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func newServerCommand() *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Kubernetes-compatible API server (embedded etcd by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), nil)
		},
	}
	f.add(cmd.Flags())
	return cmd
}
