package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/agent"
	"github.com/kubesvc/kubesvc/internal/agent/images"
	"github.com/kubesvc/kubesvc/internal/agent/podnet"
	"github.com/kubesvc/kubesvc/internal/agent/runner"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
	"github.com/kubesvc/kubesvc/internal/agent/runtime/process"
	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
)

// errNotRoot is the real agent's answer without root.
var errNotRoot = errors.New("the node agent needs root (network namespaces, links, routes, nftables); run it as root, or use --simulate for a simulated node that needs none")

// realAgentFlags are the flags only the real agent uses (the names are a contract).
type realAgentFlags struct {
	rootDir       string
	clusterDNS    []string
	clusterDomain string
	clusterCIDRs  []string
	serviceCIDRs  []string
	imageMaps     []string
	readOnlyPort  int
	disableProxy  bool
	disableDNS    bool
	// trimMemory gives back the memory start-up and bursts used (memtrim).
	trimMemory bool
	// kubeletPort is the kubelet server's port (kubelet's --port).
	kubeletPort int
	// noSocketLB leaves pods' connections to ClusterIPs to the proxy's rules
	// alone (no eBPF socket load balancing).
	noSocketLB bool
}

func (f *realAgentFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.rootDir, "root-dir", "/var/lib/kubesvc/agent", "directory for the agent's state: pod files, network namespaces, IPAM records, container state and logs")
	fs.StringSliceVar(&f.clusterDNS, "cluster-dns", nil, "nameserver addresses of pods with dnsPolicy ClusterFirst (kubelet's --cluster-dns)")
	fs.StringVar(&f.clusterDomain, "cluster-domain", agent.DefaultClusterDomain, "the cluster's DNS domain")
	fs.StringSliceVar(&f.clusterCIDRs, "cluster-cidr", []string{"10.244.0.0/16"}, "the cluster's pod ranges (pod traffic leaving them is masqueraded)")
	fs.StringSliceVar(&f.serviceCIDRs, "service-cluster-ip-range", []string{"10.96.0.0/12"}, "the Service ranges (not masqueraded by the pod network)")
	fs.StringArrayVar(&f.imageMaps, "image-map", nil, "IMAGE=PROGRAM: containers of IMAGE run PROGRAM from this machine (repeatable)")
	fs.BoolVar(&f.disableDNS, "disable-dns", false, "run no cluster DNS server on this node (its pods then use --cluster-dns, or the node's resolvers)")
	fs.BoolVar(&f.disableProxy, "disable-proxy", false, "run no service proxy in the agent (run kubesvc proxy, or another kube-proxy, for this node)")
	fs.BoolVar(&f.trimMemory, "trim-memory", true, "give back the memory that start-up and bursts of pod starts touched and the idle agent does not use: the freed heap and the pages of this (all-component) binary read once (10 s after start, then at most every minute when they are 8 MiB above their level at rest)")
	fs.IntVar(&f.readOnlyPort, "read-only-port", defaultReadOnlyPort, "port of kubelet's read-only endpoints /metrics and /healthz, unauthenticated, on every address (0: none)")
	fs.BoolVar(&f.noSocketLB, "disable-socket-lb", false, "balance pods' TCP connections to ClusterIPs only in the proxy's rules (DNAT), not in connect() with eBPF (docs/architecture.md, \"Socket load balancing\")")
	fs.IntVar(&f.kubeletPort, "kubelet-port", agent.DefaultKubeletPort, "port of the kubelet server (container logs for the API server), HTTPS on every address, advertised in the Node's status.daemonEndpoints; only the API server's kubelet client certificate is served")
}

// realAgentConfig builds the real agent from the flags: the pod network (bridge and
// veths), the process runtime and the image resolver, all rooted in --root-dir.
func realAgentConfig(f *agentFlags, rf *realAgentFlags, reg prometheus.Registerer) (agent.Config, error) {
	if os.Geteuid() != 0 {
		return agent.Config{}, errNotRoot
	}
	if f.kubeconfig == "" {
		return agent.Config{}, errors.New("--kubeconfig is required")
	}
	rc, err := loadKubeconfig(f.kubeconfig)
	if err != nil {
		return agent.Config{}, err
	}
	rc.QPS, rc.Burst = f.kubeAPIQPS, f.kubeAPIBurst
	lvl, err := parseLogLevel(f.logLevel)
	if err != nil {
		return agent.Config{}, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return realAgent{rest: rc, nodeName: f.nodeName, nodeIP: f.nodeIP, maxPods: f.maxPods, flags: rf, log: log, metrics: reg}.config()
}

// realAgent is what a real agent is built from, by `kubesvc agent` or `kubesvc up`.
type realAgent struct {
	rest     *rest.Config
	nodeName string
	nodeIP   string // "" picks one (agentNodeIP)
	maxPods  int
	flags    *realAgentFlags
	log      *slog.Logger
	// metrics receives the agent's metrics (nil: nowhere).
	metrics prometheus.Registerer
}

func (r realAgent) config() (agent.Config, error) {
	if os.Geteuid() != 0 {
		return agent.Config{}, errNotRoot
	}
	rc := rest.CopyConfig(r.rest)
	rc.UserAgent = "kubesvc-agent/" + r.nodeName
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return agent.Config{}, fmt.Errorf("client: %w", err)
	}
	nodeIP, err := agentNodeIP(r.nodeIP)
	if err != nil {
		return agent.Config{}, err
	}
	rf := r.flags
	if rf.kubeletPort < 0 || rf.kubeletPort > 65535 {
		return agent.Config{}, fmt.Errorf("--kubelet-port %d out of range", rf.kubeletPort)
	}
	root, err := filepath.Abs(rf.rootDir)
	if err != nil {
		return agent.Config{}, fmt.Errorf("--root-dir: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return agent.Config{}, fmt.Errorf("finding the kubesvc binary: %w", err)
	}
	dns, err := parseAddrs("--cluster-dns", rf.clusterDNS)
	if err != nil {
		return agent.Config{}, err
	}
	clusterCIDRs, err := parsePrefixes("--cluster-cidr", rf.clusterCIDRs)
	if err != nil {
		return agent.Config{}, err
	}
	serviceCIDRs, err := parsePrefixes("--service-cluster-ip-range", rf.serviceCIDRs)
	if err != nil {
		return agent.Config{}, err
	}
	maps, err := images.ParseImageMap(rf.imageMaps)
	if err != nil {
		return agent.Config{}, fmt.Errorf("--image-map: %w", err)
	}
	netw, err := podnet.NewNetlink(podnet.Config{RootDir: filepath.Join(root, "net"), Log: r.log})
	if err != nil {
		return agent.Config{}, err
	}
	// The small executable that starts containers (internal/agent/runner); without
	// it (a build that skipped `go generate`) containers start as kubesvc itself.
	containerRunner, err := runner.Install(filepath.Join(root, "runner"))
	if err != nil {
		r.log.Warn("containers start as the kubesvc binary itself, which takes longer", "reason", err)
		containerRunner = ""
	}
	cg, cgErr := cgroups.Detect("")
	// The pods' own cgroup, for the proxy's socket load balancing.
	var podCgroup string
	if !rf.noSocketLB && !rf.disableProxy {
		podCgroup, err = socklb.PodCgroup("", root)
		if err == nil {
			if err = socklb.CheckPodCgroup(podCgroup); err != nil {
				_ = socklb.RemovePodCgroup(podCgroup)
			}
		}
		if err != nil {
			r.log.Info("pods' connections to ClusterIPs go through the proxy's rules only (no socket load balancing)", "reason", err)
			podCgroup = ""
		}
	}
	rt, err := process.New(process.Config{RootDir: filepath.Join(root, "runtime"), Self: self, Runner: containerRunner,
		Log: r.log, Cgroups: cg, CgroupsUnavailable: cgErr, PodCgroup: podCgroup})
	if err != nil {
		return agent.Config{}, err
	}
	clusterCA, err := kubeconfigCA(rc)
	if err != nil {
		return agent.Config{}, err
	}
	if len(clusterCA) == 0 {
		r.log.Warn("the kubeconfig names no cluster CA: no kubelet server (kubectl logs will not reach this node)")
	}
	return agent.Config{
		NodeName: r.nodeName, NodeIP: nodeIP, RootDir: filepath.Join(root, "node"),
		ClusterDNS: dns, ClusterDomain: rf.clusterDomain,
		ClusterCIDRs: clusterCIDRs, ServiceCIDRs: serviceCIDRs,
		Client: client, Network: netw, Runtime: rt, Images: images.Resolver{Self: self, Maps: maps},
		Log: r.log, MaxPods: r.maxPods, Registerer: r.metrics,
		KubeletPort: int32(rf.kubeletPort), KubeletClientCA: clusterCA,
		PodCgroup: podCgroup,
	}, nil
}

// kubeconfigCA is the cluster CA of a client configuration (PEM; nil when it has
// none): the kubelet server serves clients whose certificates it signed.
func kubeconfigCA(rc *rest.Config) ([]byte, error) {
	if len(rc.TLSClientConfig.CAData) > 0 {
		return rc.TLSClientConfig.CAData, nil
	}
	if rc.TLSClientConfig.CAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(rc.TLSClientConfig.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return b, nil
}

// agentNodeIP is --node-ip, or else the address of the interface of the default
// route (the address the machine uses to reach other machines), as kubelet picks
// it, or else the first global address of an interface. On a machine with none
// (a sealed network namespace) it is zero: the node's address is then its pod
// network's gateway (see agent.Config.NodeIP).
func agentNodeIP(flag string) (netip.Addr, error) {
	if flag != "" {
		ip, err := netip.ParseAddr(flag)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("--node-ip: %w", err)
		}
		if ip.IsLoopback() || ip.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("--node-ip %s cannot be reached from pods", ip)
		}
		return ip, nil
	}
	// No packet is sent: connecting a UDP socket only asks the kernel for the route.
	if conn, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer conn.Close()
		if ip, ok := netip.AddrFromSlice(conn.LocalAddr().(*net.UDPAddr).IP); ok && ip.Unmap().IsGlobalUnicast() {
			return ip.Unmap(), nil
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("listing this machine's addresses (set --node-ip): %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() && ip.Unmap().IsGlobalUnicast() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, nil
}

func parseAddrs(flag string, values []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(values))
	for _, v := range values {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		out = append(out, ip)
	}
	return out, nil
}

func parsePrefixes(flag string, values []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
