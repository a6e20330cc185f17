package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/component"
)

func newUpCommand() *cobra.Command {
	f := &serverFlags{}
	o := upOptions{proxy: &proxyFlags{}}
	var disableAgent bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start everything kubesvc has on this machine with embedded defaults",
		Long: `Start kubesvc on this machine: the API server with embedded etcd, the controllers,
and a node agent that makes this machine a Node (named after its host name): pods run as
processes, each in a network namespace of its own with an IP from the Node's podCIDR on
the bridge kubesvc0. The node agent needs root and programs this machine's network (or
that of the network namespace kubesvc up runs in); without root, or with
--disable-agent, no node runs and pods stay Pending. --simulated-nodes=N adds N
simulated nodes that report pods Running with pod IPs but run nothing. The admin
kubeconfig is written to DATA-DIR/admin.kubeconfig; the node's state is under
DATA-DIR/agent. The node's service proxy is configured by the ConfigMap
kube-system/kube-proxy (created from --config or the proxy flags on first start) and
shows as the pod kube-system/kube-proxy-XXXXX: delete it to apply an edited ConfigMap.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := o.proxy.validate(splitList(f.ctrl.ClusterCIDR)); err != nil && !o.disableProxy {
				return err
			}
			switch {
			case disableAgent:
			case os.Geteuid() != 0:
				o.noAgentReason = "the node agent needs root"
			default:
				o.agent = true
			}
			r, err := f.upRunner(o, os.Stdout)
			if err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	f.add(cmd.Flags())
	host, _ := os.Hostname()
	cmd.Flags().IntVar(&o.simulated, "simulated-nodes", 0, "run this many simulated nodes (kubesvc agent --simulate) in the same process")
	cmd.Flags().BoolVar(&disableAgent, "disable-agent", false, "run no node agent: only the API server and the controllers (and any --simulated-nodes)")
	cmd.Flags().StringVar(&o.nodeName, "node-name", strings.ToLower(host), "name of this machine's Node")
	cmd.Flags().StringVar(&o.nodeIP, "node-ip", "", "the node's InternalIP (default: the address of the default route's interface, else the first global address, else the pod network's gateway)")
	cmd.Flags().StringArrayVar(&o.imageMaps, "image-map", nil, "IMAGE=PROGRAM: containers of IMAGE run PROGRAM from this machine (repeatable)")
	cmd.Flags().BoolVar(&o.disableProxy, "disable-proxy", false, "run no service proxy on this machine's node")
	cmd.Flags().BoolVar(&o.disableDNS, "disable-dns", false, "run no cluster DNS server on this machine's node")
	o.proxy.add(cmd.Flags())
	cmd.Flags().Lookup("data-dir").DefValue = defaultUpDataDir()
	_ = cmd.Flags().Set("data-dir", defaultUpDataDir())
	return cmd
}

// upOptions are what `kubesvc up` runs besides the server and the controllers.
type upOptions struct {
	// simulated is the number of simulated nodes ("agent/sim-node-N").
	simulated int
	// agent runs the real node agent for this machine ("agent/NAME").
	agent bool
	// noAgentReason, when agent is false, says why in the start-up message.
	noAgentReason string
	nodeName      string
	nodeIP        string
	imageMaps     []string
	// proxy configures the node's service proxy (nil or disableProxy: none).
	proxy        *proxyFlags
	disableProxy bool
	disableDNS   bool
}

// upRunner is everything `kubesvc up` runs: the API server and the controllers
// (see runner), the real node agent when o.agent, then the simulated nodes. Once
// the server answers, it tells out where it is.
func (f *serverFlags) upRunner(o upOptions, out io.Writer) (*component.Runner, error) {
	// One node that proxies, this machine: its node-mode LoadBalancer Services are
	// reachable on localhost too, as on Docker Desktop.
	f.ctrl.LoadBalancerLocalhost = o.agent && !o.disableProxy && o.simulated == 0
	cfg := f.config()
	kubeconfig := cfg.KubeconfigPath()
	log, err := f.logger()
	if err != nil {
		return nil, err
	}
	srv, r, err := f.runner(func(srv *apiserver.Server) {
		printUp(out, srv, kubeconfig, o, clusterSummary(f, o))
	})
	if err != nil {
		return nil, err
	}
	if o.agent {
		r.Add(f.realNode(srv, o, log))
	}
	for i := 1; i <= o.simulated; i++ {
		r.Add(simulatedNode(srv, fmt.Sprintf("sim-node-%d", i)))
	}
	return r, nil
}

// realNode is the node agent for this machine ("agent/NAME") in this process, with
// its own client certificate (system:node:NAME), its state under DATA-DIR/agent, and
// the server's cluster and Service ranges; it starts once the API server answers.
func (f *serverFlags) realNode(srv *apiserver.Server, o upOptions, log *slog.Logger) component.Component {
	return component.Component{Name: "agent/" + o.nodeName, Run: func(ctx context.Context) error {
		if err := waitReady(ctx, srv); err != nil {
			return err
		}
		rc, err := srv.ClientConfig("system:node:"+o.nodeName, []string{"system:nodes"})
		if err != nil {
			return err
		}
		rc.QPS, rc.Burst = 200, 400
		flags := &realAgentFlags{
			rootDir:       filepath.Join(f.dataDir, "agent"),
			clusterDomain: agent.DefaultClusterDomain,
			clusterCIDRs:  splitList(f.ctrl.ClusterCIDR),
			serviceCIDRs:  splitList(f.serviceCIDR),
			imageMaps:     o.imageMaps,
		}
		reg, err := agentRegistry()
		if err != nil {
			return err
		}
		cfg, err := realAgent{rest: rc, nodeName: o.nodeName, nodeIP: o.nodeIP, maxPods: sim.DefaultMaxPods,
			flags: flags, log: log.With("component", "agent"), metrics: reg}.config()
		if err != nil {
			return err
		}
		if !o.disableDNS {
			if err := withClusterDNS(ctx, &cfg); err != nil {
				return err
			}
		}
		a, err := agent.New(cfg)
		if err != nil {
			return err
		}
		runs := []func(context.Context) error{a.Run, func(ctx context.Context) error { return serveAgentHTTP(ctx, defaultReadOnlyPort, reg) }}
		if o.proxy != nil && !o.disableProxy {
			sp := serviceProxy{flags: o.proxy, client: cfg.Client, nodeName: cfg.NodeName, clusterCIDRs: cfg.ClusterCIDRs, log: log.With("component", "proxy")}
			runs = append(runs, sp.run)
		}
		if !o.disableDNS {
			nd := nodeDNS{client: cfg.Client, nodeName: cfg.NodeName, domain: cfg.ClusterDomain, log: log.With("component", "dns")}
			runs = append(runs, nd.run)
		}
		return runAll(ctx, runs...)
	}}
}

// splitList splits a comma-separated flag value ("v4cidr,v6cidr").
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// clusterSummary tells the cluster's ranges and where its DNS and load balancer
// addresses are (for printUp).
func clusterSummary(f *serverFlags, o upOptions) string {
	var w strings.Builder
	fmt.Fprintf(&w, "Services:       %s\n", strings.Join(splitList(f.serviceCIDR), ", "))
	fmt.Fprintf(&w, "Pods:           %s (each node gets a range of it)\n", strings.Join(splitList(f.ctrl.ClusterCIDR), ", "))
	if o.agent && !o.disableDNS {
		if cidrs := splitList(f.serviceCIDR); len(cidrs) > 0 {
			if p, err := netip.ParsePrefix(cidrs[0]); err == nil {
				fmt.Fprintf(&w, "Cluster DNS:    %s (kube-system/kube-dns, domain %s)\n", apiserver.KubeDNSServiceIP(p), agent.DefaultClusterDomain)
			}
		}
	}
	switch {
	case len(f.ctrl.LoadBalancerIPRanges) > 0:
		fmt.Fprintf(&w, "LoadBalancers:  an address each from %s\n", strings.Join(f.ctrl.LoadBalancerIPRanges, ", "))
	case f.ctrl.LoadBalancerLocalhost:
		fmt.Fprintln(&w, "LoadBalancers:  on the node's address and on localhost")
	default:
		fmt.Fprintln(&w, "LoadBalancers:  on the nodes' addresses")
	}
	return w.String()
}

// printUp tells the user where the cluster is and how to reach it.
func printUp(w io.Writer, srv *apiserver.Server, kubeconfig string, o upOptions, summary string) {
	var nodes []string
	switch {
	case o.agent:
		nodes = append(nodes, fmt.Sprintf("node %s: pods run as processes on this machine", o.nodeName))
	case o.noAgentReason != "":
		nodes = append(nodes, "no node agent ("+o.noAgentReason+"): pods stay Pending")
	case o.simulated == 0:
		nodes = append(nodes, "no node agent (--disable-agent): pods stay Pending")
	}
	if o.simulated > 0 {
		nodes = append(nodes, fmt.Sprintf("%d simulated node(s): pods are reported Running but run nothing", o.simulated))
	}
	addr := srv.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1" // listening on every address; the kubeconfig uses loopback
	}
	fmt.Fprintf(w, "kubesvc is up at https://%s (%s)\n\n%s\nTo use it:\n  export KUBECONFIG=%s\n  kubectl get nodes\n\nStop it with Ctrl-C.\n",
		net.JoinHostPort(host, strconv.Itoa(addr.Port)), strings.Join(nodes, "; "), summary, kubeconfig)
}

// simulatedNode is a simulated node agent ("agent/NAME") in this process, with its
// own client certificate (system:node:NAME); it starts once the API server answers.
func simulatedNode(srv *apiserver.Server, name string) component.Component {
	return component.Component{Name: "agent/" + name, Run: func(ctx context.Context) error {
		if err := waitReady(ctx, srv); err != nil {
			return err
		}
		rc, err := srv.ClientConfig("system:node:"+name, []string{"system:nodes"})
		if err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		a, err := sim.New(sim.Config{Client: client, NodeName: name})
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}}
}

// defaultUpDataDir is /var/lib/kubesvc for root, ~/.kubesvc otherwise.
func defaultUpDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kubesvc"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return home + "/.kubesvc"
	}
	return ".kubesvc"
}
