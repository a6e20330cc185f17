package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/memtrim"
	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
)

// agentFlags are the flags of `kubesvc agent` (the names are a contract).
type agentFlags struct {
	simulate     bool
	kubeconfig   string
	nodeName     string
	nodeIP       string
	maxPods      int
	cpu          string
	memory       string
	kubeAPIQPS   float32
	kubeAPIBurst int
	logLevel     string
	// kubeconfigWait is how long to wait for --kubeconfig to appear: `kubesvc
	// up --nodes` starts its agents while the API server starts, and writes
	// their kubeconfigs once it answers.
	kubeconfigWait time.Duration
}

func (f *agentFlags) add(fs *pflag.FlagSet) {
	host, _ := os.Hostname()
	fs.BoolVar(&f.simulate, "simulate", false, "run a simulated node: register the Node, heartbeat, and report bound pods Running without running anything (no root needed)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file of the API server (for example DATA-DIR/admin.kubeconfig)")
	fs.StringVar(&f.nodeName, "node-name", strings.ToLower(host), "name of the Node")
	fs.StringVar(&f.nodeIP, "node-ip", "", "the node's InternalIP (default: the address of the default route's interface; with --simulate, derived from the node name in 192.0.2.0/24)")
	fs.IntVar(&f.maxPods, "max-pods", sim.DefaultMaxPods, "number of pods the node can run")
	fs.StringVar(&f.cpu, "cpu", sim.DefaultCPU, "CPU capacity the simulated node reports")
	fs.StringVar(&f.memory, "memory", sim.DefaultMemory, "memory capacity the simulated node reports")
	fs.Float32Var(&f.kubeAPIQPS, "kube-api-qps", 200, "queries per second to the API server")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 400, "burst of queries to the API server")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.kubeconfigWait, "wait-for-kubeconfig", 0, "wait this long for the --kubeconfig file to appear before giving up (kubesvc up --nodes starts its agents before the API server answers)")
	_ = fs.MarkHidden("wait-for-kubeconfig")
}

// waitForKubeconfig waits until --kubeconfig exists, for --wait-for-kubeconfig
// at most; at once when that is 0.
func (f *agentFlags) waitForKubeconfig(ctx context.Context) error {
	if f.kubeconfigWait <= 0 || f.kubeconfig == "" {
		return nil
	}
	deadline := time.Now().Add(f.kubeconfigWait)
	for {
		if _, err := os.Stat(f.kubeconfig); err == nil {
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("kubeconfig %s: %w", f.kubeconfig, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kubeconfig %s: not there after %v", f.kubeconfig, f.kubeconfigWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func newAgentCommand() *cobra.Command {
	f := &agentFlags{}
	rf := &realAgentFlags{}
	pf := &proxyFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: pods as processes, each in its own network namespace",
		Long: `Run the node agent (kubelet's job) for one Node: it registers the Node, renews its
Lease, gives each pod bound to it a network namespace with an IP from the Node's podCIDR
on the bridge kubesvc0, and runs the pod's containers as processes (built-in images:
nginx, httpd, kubernetes-bootcamp, agnhost, pause; other images run their command from
this machine). It needs root and programs this machine's network: run it only on a
machine (or in a network namespace) meant to be a node. A pod is processes on this
machine, not a sandbox. Stopping the agent leaves the pods running; a restarted agent
adopts them. The agent runs the node's service proxy too (unless --disable-proxy),
configured by the ConfigMap kube-system/kube-proxy (created from --config or the proxy
flags on first start) and shown as the pod kube-system/kube-proxy-XXXXX: delete it to
apply an edited ConfigMap.

With --simulate the agent registers the Node, renews its Lease, and reports the pods
bound to it Running with IPs from the Node's podCIDR, without running any process; it
needs no root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.waitForKubeconfig(cmd.Context()); err != nil {
				return err
			}
			if !f.simulate {
				if _, err := pf.validate(rf.clusterCIDRs); err != nil && !rf.disableProxy {
					return err
				}
				reg, err := agentRegistry()
				if err != nil {
					return err
				}
				cfg, err := realAgentConfig(f, rf, reg)
				if err != nil {
					return err
				}
				if !rf.disableDNS {
					if err := withClusterDNS(cmd.Context(), &cfg); err != nil {
						return err
					}
				}
				a, err := agent.New(cfg)
				if err != nil {
					return err
				}
				runs := []func(context.Context) error{a.Run, func(ctx context.Context) error { return serveAgentHTTP(ctx, rf.readOnlyPort, reg) }}
				if !rf.disableProxy {
					sp := serviceProxy{flags: pf, client: cfg.Client, nodeName: cfg.NodeName, clusterCIDRs: cfg.ClusterCIDRs, podCgroup: cfg.PodCgroup, log: cfg.Log.With("component", "proxy")}
					runs = append(runs, sp.run)
				}
				if !rf.disableDNS {
					nd := nodeDNS{client: cfg.Client, nodeName: cfg.NodeName, domain: cfg.ClusterDomain, log: cfg.Log.With("component", "dns")}
					runs = append(runs, nd.run)
				}
				if rf.trimMemory {
					// RssFile read every 10 s; trimmed at most every minute, when
					// 8 MiB above its level at rest. An agent at rest comes back to
					// 4-7 MiB above that level within a minute of a trim (its
					// periodic work, mapped in fault-around blocks), so at
					// rest it is seldom trimmed; a burst of pod starts leaves 10-15
					// MiB above it, which the next check gives back. Random: the
					// pages a trim evicted come back one by one, not with the
					// kernel's read-around (whole large folios of the page cache,
					// which Linux 6.18 maps entirely on a fault): 4 KiB instead of
					// 64 KiB-2 MiB per page the periodic work touches, for the
					// pages no other process maps (docs/benchmarks.md).
					// NoFaultAround: and the pages another process keeps in the
					// page cache (the API server running the same binary) come
					// back without the 64 KiB around each.
					trim := &memtrim.Periodic{First: 10 * time.Second, Every: time.Minute, Check: 10 * time.Second, Growth: 8 << 20, Random: true, NoFaultAround: true, Log: cfg.Log.With("component", "memtrim")}
					runs = append(runs, trim.Run)
				}
				err = runAll(cmd.Context(), runs...)
				if cfg.PodCgroup != "" {
					// Gone with the last pod; pods that outlive the agent keep it.
					err = errors.Join(err, socklb.RemovePodCgroup(cfg.PodCgroup))
				}
				return err
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			a, err := sim.New(cfg)
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f.add(cmd.Flags())
	rf.add(cmd.Flags())
	pf.add(cmd.Flags())
	return cmd
}

func (f *agentFlags) config() (sim.Config, error) {
	if f.kubeconfig == "" {
		return sim.Config{}, errors.New("--kubeconfig is required")
	}
	rc, err := loadKubeconfig(f.kubeconfig)
	if err != nil {
		return sim.Config{}, err
	}
	rc.QPS, rc.Burst = f.kubeAPIQPS, f.kubeAPIBurst
	rc.UserAgent = "kubesvc-agent/" + f.nodeName
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return sim.Config{}, fmt.Errorf("client: %w", err)
	}
	cpu, err := resource.ParseQuantity(f.cpu)
	if err != nil {
		return sim.Config{}, fmt.Errorf("--cpu: %w", err)
	}
	mem, err := resource.ParseQuantity(f.memory)
	if err != nil {
		return sim.Config{}, fmt.Errorf("--memory: %w", err)
	}
	lvl, err := parseLogLevel(f.logLevel)
	if err != nil {
		return sim.Config{}, err
	}
	return sim.Config{
		Client:   client,
		NodeName: f.nodeName,
		NodeIP:   f.nodeIP,
		Log:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
		MaxPods:  f.maxPods,
		CPU:      cpu,
		Memory:   mem,
	}, nil
}
