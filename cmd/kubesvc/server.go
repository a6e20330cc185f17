package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kubesvc/kubesvc/internal/apiserver"
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
			srv, err := apiserver.New(f.config(), f.logger())
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f.add(cmd.Flags())
	return cmd
}
