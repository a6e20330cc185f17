package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/dns"
)

// newDNSCommand is `kubesvc dns`: the cluster DNS server alone (kubesvc agent
// runs it on every node).
func newDNSCommand() *cobra.Command {
	var (
		kubeconfig, domain, metricsAddr, healthAddr, resolvConf, logLevel string
		listen, upstreams                                                 []string
		ttl, forwardTimeout                                               time.Duration
		cacheSize                                                         int
		queryLog, trimMemory                                              bool
	)
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Run the cluster DNS server (CoreDNS's job)",
		Long: `Run the cluster DNS server: it follows Services, EndpointSlices and Namespaces and
answers the Kubernetes DNS schema for the cluster domain (SVC.NS.svc.cluster.local,
headless endpoints, SRV, PTR, ExternalName CNAMEs, A-B-C-D.NS.pod.cluster.local) the way
CoreDNS's kubernetes plugin does, over UDP and TCP on every --listen address, and forwards
other names to --upstream (default: the nameservers of --resolv-conf) through a cache.
/metrics (CoreDNS's metric names) is on --metrics-addr, /health and /ready on
--health-addr. It needs root only to bind a port below 1024.`,
		Example: `  kubesvc dns --kubeconfig admin.kubeconfig --listen 127.0.0.1:1053
  kubesvc dns --kubeconfig admin.kubeconfig --listen 10.96.0.10:53 --upstream 1.1.1.1 --upstream 8.8.8.8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			rc.UserAgent = "kubesvc-dns"
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return fmt.Errorf("client: %w", err)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			s, err := dns.New(dns.Config{
				Client: client, Domain: domain, ListenAddrs: listen,
				MetricsAddr: metricsAddr, HealthAddr: healthAddr,
				Upstreams: upstreams, ResolvConf: resolvConf,
				TTL: ttl, QueryLog: queryLog, Log: log, Registerer: reg,
				CacheSize: cacheSize, ForwardTimeout: forwardTimeout,
				TrimMemory: trimMemory,
			})
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the API server")
	f.StringSliceVar(&listen, "listen", []string{":53"}, "address to answer on over UDP and TCP, HOST:PORT (repeat for more; HOST empty: every address)")
	f.StringVar(&domain, "domain", dns.DefaultDomain, "the cluster domain")
	f.StringSliceVar(&upstreams, "upstream", nil, "resolver for names outside the cluster domain, IP or IP:PORT (repeat for more; default: the nameservers of --resolv-conf)")
	f.StringVar(&resolvConf, "resolv-conf", dns.DefaultResolvConf, "file to read the upstreams from when no --upstream is given")
	f.DurationVar(&ttl, "ttl", dns.DefaultTTL, "TTL of cluster records (whole seconds, at most 1h)")
	f.StringVar(&metricsAddr, "metrics-addr", ":9153", "address of /metrics (empty: none)")
	f.StringVar(&healthAddr, "health-addr", ":8080", "address of /health and /ready (empty: none)")
	f.IntVar(&cacheSize, "cache-size", dns.DefaultCacheSize, "entries of the cache of forwarded answers (negative: no cache)")
	f.DurationVar(&forwardTimeout, "forward-timeout", dns.DefaultForwardTimeout, "timeout of one attempt at one upstream")
	f.BoolVar(&queryLog, "query-log", false, "log every query")
	f.BoolVar(&trimMemory, "trim-memory", true, "once synced, give back the memory start-up used: the freed heap of the initial lists and the pages of this (all-component) binary touched only at start-up")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
