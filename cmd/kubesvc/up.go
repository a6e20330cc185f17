package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/sim"
	"github.com/kubesvc/kubesvc/internal/apiserver"
	"github.com/kubesvc/kubesvc/internal/component"
	"github.com/kubesvc/kubesvc/internal/multinode"
	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
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
shows as the pod kube-system/kube-proxy-XXXXX: delete it to apply an edited ConfigMap.

With --nodes=N (N >= 2) this machine is not a node: it runs the API server and the
controllers, and N nodes named kubesvc-node-1 ... kubesvc-node-N (NAME-1 ... NAME-N
with --node-name NAME), each a network namespace of the same name with its own agent,
proxy and DNS (a child process of kubesvc up), joined to this machine by the bridge
kubesvc-nodes on --nodes-range (this machine has its first address, node i the
(i+1)th). This machine routes each node's podCIDR via the node, and the Service
ranges via the first node. Each node's state is under DATA-DIR/nodes/NAME. This
machine runs a service proxy of its own too (no pod; it applies an edit of the
ConfigMap at once), so that cluster IPs, localhost NodePorts and localhost
LoadBalancers work here as on one node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := o.proxy.validate(splitList(f.ctrl.ClusterCIDR)); err != nil && !o.disableProxy {
				return err
			}
			if cmd.Flags().Changed("node-name") {
				o.namePrefix = o.nodeName
			}
			switch {
			case o.nodes < 1:
				return fmt.Errorf("--nodes %d: at least one node", o.nodes)
			case o.nodes > 1 && (disableAgent || os.Geteuid() != 0):
				return errors.New("--nodes runs real nodes: it needs root, and no --disable-agent")
			case o.nodes > 1 && o.nodeIP != "":
				return errors.New("--node-ip is for one node: with --nodes the nodes' addresses come from --nodes-range")
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
	cmd.Flags().BoolVar(&o.noSocketLB, "disable-socket-lb", false, "balance pods' TCP connections to ClusterIPs only in the proxy's rules (DNAT), not in connect() with eBPF (docs/architecture.md, \"Socket load balancing\")")
	cmd.Flags().BoolVar(&o.disableDNS, "disable-dns", false, "run no cluster DNS server on this machine's node")
	cmd.Flags().IntVar(&o.nodes, "nodes", 1, "run this many real nodes: 1 is this machine; N >= 2 runs N nodes, each in a network namespace of its own on the bridge kubesvc-nodes (needs root)")
	cmd.Flags().StringVar(&o.nodesRange, "nodes-range", multinode.DefaultRange, "with --nodes >= 2: the nodes' IPv4 network on the bridge kubesvc-nodes; this machine gets its first address, node i the (i+1)th")
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
	// noSocketLB: --disable-socket-lb.
	noSocketLB bool
	disableDNS bool
	// nodes >= 2 runs that many nodes in network namespaces (multinode) instead
	// of the agent for this machine; namePrefix names them ("" the default).
	nodes      int
	nodesRange string
	namePrefix string
}

// upRunner is everything `kubesvc up` runs: the API server and the controllers
// (see runner), the real node agent when o.agent, then the simulated nodes. Once
// the server answers, it tells out where it is.
func (f *serverFlags) upRunner(o upOptions, out io.Writer) (*component.Runner, error) {
	// This machine proxies (it is the one node, or it holds the nodes of
	// --nodes): node-mode LoadBalancer Services are reachable on its localhost
	// too, as on Docker Desktop.
	f.ctrl.LoadBalancerLocalhost = o.agent && !o.disableProxy && o.simulated == 0
	plan, err := f.nodeSet(o)
	if err != nil {
		return nil, err
	}
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
	switch {
	case o.agent && o.nodes > 1:
		r.Add(f.nodeRoutes(srv, o, plan, log))
		if o.proxy != nil && !o.disableProxy {
			r.Add(f.machineProxy(srv, o, plan, log))
		}
		for _, n := range plan.Nodes {
			r.Add(f.childNode(srv, o, plan, n))
		}
	case o.agent:
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
			disableProxy:  o.proxy == nil || o.disableProxy,
			noSocketLB:    o.noSocketLB,
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
		admin, err := srv.ClientConfig("kubernetes-admin", []string{"system:masters"})
		if err != nil {
			return err
		}
		adminClient, err := kubernetes.NewForConfig(admin)
		if err != nil {
			return err
		}
		runs := []func(context.Context) error{a.Run, func(ctx context.Context) error { return serveAgentHTTP(ctx, defaultReadOnlyPort, reg) },
			func(ctx context.Context) error {
				return markControlPlane(ctx, adminClient, cfg.NodeName, 100*time.Millisecond, log.With("component", "up"))
			}}
		if o.proxy != nil && !o.disableProxy {
			sp := serviceProxy{flags: o.proxy, client: cfg.Client, nodeName: cfg.NodeName, clusterCIDRs: cfg.ClusterCIDRs, podCgroup: cfg.PodCgroup, log: log.With("component", "proxy")}
			runs = append(runs, sp.run)
		}
		if !o.disableDNS {
			nd := nodeDNS{client: cfg.Client, nodeName: cfg.NodeName, domain: cfg.ClusterDomain, log: log.With("component", "dns")}
			runs = append(runs, nd.run)
		}
		err = runAll(ctx, runs...)
		if cfg.PodCgroup != "" {
			// Gone with the last pod; pods that outlive the agent keep it.
			err = errors.Join(err, socklb.RemovePodCgroup(cfg.PodCgroup))
		}
		return err
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
	if o.agent && o.nodes > 1 {
		if p, err := netip.ParsePrefix(o.nodesRange); err == nil {
			p = p.Masked()
			fmt.Fprintf(&w, "Nodes:          %s on the bridge %s: this machine %s, %s-i at the (i+1)th address; network namespaces named after the nodes\n",
				p, multinode.DefaultBridge, p.Addr().Next(), namePrefix(o))
		}
	}
	switch {
	case len(f.ctrl.LoadBalancerIPRanges) > 0:
		fmt.Fprintf(&w, "LoadBalancers:  an address each from %s\n", strings.Join(f.ctrl.LoadBalancerIPRanges, ", "))
	case f.ctrl.LoadBalancerLocalhost && o.nodes > 1:
		fmt.Fprintln(&w, "LoadBalancers:  on the nodes' addresses and on this machine's localhost")
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
	case o.agent && o.nodes > 1:
		nodes = append(nodes, fmt.Sprintf("%d nodes %s-1 ... %s-%d: pods run as processes on this machine, each node in a network namespace of its own",
			o.nodes, namePrefix(o), namePrefix(o), o.nodes))
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

// namePrefix names the nodes of --nodes: --node-name when given, else
// multinode.DefaultNamePrefix (not the host name: in this mode this machine is
// not a node, as kind's host is not).
func namePrefix(o upOptions) string {
	if o.namePrefix != "" {
		return o.namePrefix
	}
	return multinode.DefaultNamePrefix
}

// nodeSet, for --nodes >= 2, lays the nodes out, records the plan in the data
// directory (for kubesvc reset) and makes the machine's side of their network:
// before the API server starts, so that the bridge's address is among the
// serving certificate's addresses; the server advertises it (pods reach the API
// there) unless --advertise-address says otherwise. For one node it checks that
// the data directory is not a cluster of several.
func (f *serverFlags) nodeSet(o upOptions) (multinode.Plan, error) {
	dir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return multinode.Plan{}, fmt.Errorf("--data-dir: %w", err)
	}
	old, err := multinode.Load(dir)
	switch {
	case errors.Is(err, multinode.ErrNoPlan):
	case err != nil:
		return multinode.Plan{}, err
	case len(old.Nodes) != o.nodes || (o.nodes > 1 && old.Nodes[0].Name != namePrefix(o)+"-1"):
		return multinode.Plan{}, fmt.Errorf("%s is a cluster of %d nodes %s ... (kubesvc up --nodes=%d): start it so, or remove it with kubesvc reset",
			dir, len(old.Nodes), old.Nodes[0].Name, len(old.Nodes))
	}
	if !o.agent || o.nodes <= 1 {
		return multinode.Plan{}, nil
	}
	rng, err := netip.ParsePrefix(o.nodesRange)
	if err != nil {
		return multinode.Plan{}, fmt.Errorf("--nodes-range: %w", err)
	}
	plan, err := multinode.NewPlan(multinode.Config{Nodes: o.nodes, NamePrefix: namePrefix(o), Range: rng, DataDir: dir})
	if err != nil {
		return multinode.Plan{}, err
	}
	if err := plan.Save(dir); err != nil {
		return multinode.Plan{}, err
	}
	if err := multinode.EnsureNetwork(plan); err != nil {
		return multinode.Plan{}, err
	}
	if f.advertiseAddress == "" {
		f.advertiseAddress = plan.Machine.String()
	}
	return plan, nil
}

// kubeProxyClient waits for the API server and returns a client as
// system:kube-proxy (kube-proxy's QPS and burst), for what this machine runs
// beside the nodes of --nodes.
func kubeProxyClient(ctx context.Context, srv *apiserver.Server) (kubernetes.Interface, error) {
	if err := waitReady(ctx, srv); err != nil {
		return nil, err
	}
	rc, err := srv.ClientConfig("system:kube-proxy", nil)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 50, 100
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return client, nil
}

// nodeRoutes keeps this machine's routes to the nodes' podCIDRs, and to the
// Service ranges via the first node when it runs a proxy ("nodes/routes").
func (f *serverFlags) nodeRoutes(srv *apiserver.Server, o upOptions, plan multinode.Plan, log *slog.Logger) component.Component {
	return component.Component{Name: "nodes/routes", Run: func(ctx context.Context) error {
		client, err := kubeProxyClient(ctx, srv)
		if err != nil {
			return err
		}
		rs := &multinode.RouteSyncer{Plan: plan, Client: client, Log: log.With("component", "nodes/routes")}
		if !o.disableProxy {
			if rs.ServiceCIDRs, err = parsePrefixes("--service-cluster-ip-range", splitList(f.serviceCIDR)); err != nil {
				return err
			}
			rs.ServiceVia = plan.Nodes[0].IP
		}
		return rs.Run(ctx)
	}}
}

// machineProxy is this machine's service proxy under --nodes ("proxy/machine"),
// where this machine is not a node: the nodes' proxies serve the cluster, and
// this one makes the machine a client of it as a one-node kubesvc up is (and
// as Docker Desktop's host is): cluster IPs, NodePorts on localhost and on this
// machine's addresses (nodePortAddresses permitting), load balancers on
// localhost, and kube-proxy's rules in this machine's iptables-save or nft
// list ruleset. It reads the same ConfigMap as the nodes' proxies; with no
// kube-proxy pod of its own to delete, an edit applies to it at once.
func (f *serverFlags) machineProxy(srv *apiserver.Server, o upOptions, plan multinode.Plan, log *slog.Logger) component.Component {
	return component.Component{Name: "proxy/machine", Run: func(ctx context.Context) error {
		client, err := kubeProxyClient(ctx, srv)
		if err != nil {
			return err
		}
		cidrs, err := parsePrefixes("--cluster-cidr", splitList(f.ctrl.ClusterCIDR))
		if err != nil {
			return err
		}
		// It counts the first node's endpoints as local (the machine's route to
		// the Service ranges went there before it proxied): kube-dns, whose
		// internalTrafficPolicy is Local (each node's DNS server), answers the
		// machine from node 1, and externalTrafficPolicy Local Services are
		// reached through node 1's pods. Its "primary" NodePort address is the
		// machine's own, not node 1's: the one kubelet would pick here.
		sp := serviceProxy{flags: o.proxy, client: client, nodeName: plan.Nodes[0].Name, clusterCIDRs: cidrs,
			log: log.With("component", "proxy/machine"), machine: true}
		if ip, err := agentNodeIP(""); err == nil && ip.IsValid() {
			sp.nodeIPs = []netip.Addr{ip}
		}
		return sp.run(ctx)
	}}
}

// childNode runs node n's agent (with its proxy and DNS) as a child process in
// the node's network namespace ("agent/NAME"): with a kubeconfig of its own
// (system:node:NAME) that reaches the server at this machine's address on the
// bridge, its state under DATA-DIR/nodes/NAME, and the flags of `kubesvc up`
// that concern a node. The agent starts at once, while the API server starts
// (starting the binary is most of an agent's start-up), and waits for its
// kubeconfig, written once the server answers (with the port it listens on).
func (f *serverFlags) childNode(srv *apiserver.Server, o upOptions, plan multinode.Plan, n multinode.Node) component.Component {
	return component.Component{Name: "agent/" + n.Name, Run: func(ctx context.Context) error {
		// The kubeconfig of an earlier start names an earlier port.
		if err := os.Remove(n.Kubeconfig()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the kubesvc binary: %w", err)
		}
		args := []string{"agent", "--kubeconfig", n.Kubeconfig(), "--wait-for-kubeconfig", "10m",
			"--node-name", n.Name, "--node-ip", n.IP.String(),
			"--root-dir", n.Dir, "--cluster-cidr", f.ctrl.ClusterCIDR, "--service-cluster-ip-range", f.serviceCIDR,
			"--log-level", f.logLevel}
		for _, m := range o.imageMaps {
			args = append(args, "--image-map", m)
		}
		if o.disableProxy {
			args = append(args, "--disable-proxy")
		}
		if o.disableDNS {
			args = append(args, "--disable-dns")
		}
		if o.proxy != nil {
			args = append(args, proxyArgs(o.proxy)...)
		}
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		kcErr := make(chan error, 1)
		go func() {
			err := writeNodeKubeconfig(actx, srv, plan, n)
			if err != nil {
				cancel()
			}
			kcErr <- err
		}()
		a := &multinode.AgentProcess{Node: n, Path: self, Args: args, Output: os.Stderr}
		runErr := a.Run(actx)
		if err := <-kcErr; err != nil && ctx.Err() == nil {
			return err
		}
		return runErr
	}}
}

// writeNodeKubeconfig writes node n's kubeconfig once the API server answers.
func writeNodeKubeconfig(ctx context.Context, srv *apiserver.Server, plan multinode.Plan, n multinode.Node) error {
	if err := waitReady(ctx, srv); err != nil {
		return err
	}
	rc, err := srv.ClientConfig("system:node:"+n.Name, []string{"system:nodes"})
	if err != nil {
		return err
	}
	port := srv.Addr().(*net.TCPAddr).Port
	rc.Host = "https://" + net.JoinHostPort(plan.Machine.String(), strconv.Itoa(port))
	return writeKubeconfig(n.Kubeconfig(), rc, n.Name)
}

// writeKubeconfig writes rc (CA data, client certificate files) as a kubeconfig,
// at once (a waiting agent never reads half of it).
func writeKubeconfig(path string, rc *rest.Config, name string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubesvc"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.TLSClientConfig.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: rc.TLSClientConfig.CertFile, ClientKey: rc.TLSClientConfig.KeyFile}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: "kubesvc", AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path+".tmp"); err != nil {
		return fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	return nil
}

// proxyArgs are the proxy flags given to `kubesvc up`, for a node's agent (the
// agent creates the ConfigMap kube-system/kube-proxy from them on first start).
func proxyArgs(p *proxyFlags) []string {
	if p.fs == nil {
		return nil
	}
	var out []string
	if p.fs.Changed("config") {
		if abs, err := filepath.Abs(p.configFile); err == nil {
			out = append(out, "--config="+abs)
		}
	}
	for _, name := range proxyFlagNames() {
		fl := p.fs.Lookup(name)
		if fl == nil || !fl.Changed {
			continue
		}
		v := fl.Value.String()
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		out = append(out, "--"+name+"="+v)
	}
	return out
}
