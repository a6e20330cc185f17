package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// The LAN of TestTwoNodes: a bridge in the test's own network namespace, where the
// API server listens on the gateway address; each node is a network namespace with
// one leg on it.
const (
	lanBridge  = "lan0"
	lanGateway = "198.51.100.1"
	lanNetnsFS = "/run/netns" // where ip netns keeps its namespaces
)

// TestTwoNodes runs two real node agents, each in a network namespace of its own
// ("node-a" 198.51.100.11 and "node-b" 198.51.100.12) on one LAN with the API
// server (198.51.100.1), and checks what issue 8 promises of a multi-node cluster:
// both Nodes become Ready; a 5-replica agnhost netexec deployment spreads over both;
// a pod on one node reaches a pod on the other by its IP (host-gateway routes, no
// masquerade) and each node reaches its own pods; SIGKILL to node-a's agent under
// traffic to its pods loses no request, and the restarted agent adopts the pods
// (same container IDs, restart counts, IPs, Ready); deleting the deployment leaves
// no process, network namespace, veth or IPAM record of its pods on either node.
func TestTwoNodes(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	requireKubectl(t)
	c := startLANCluster(t, "node-a", "node-b")
	c.waitNodesReady()
	base := c.countAll()
	pods := c.deployWeb(5, base)
	c.checkPodTraffic(pods)
	if t.Failed() {
		t.FailNow()
	}
	c.killAndAdopt(c.nodes[0], pods)
	c.deleteWeb(base)
}

// lanCluster is the API server on the LAN and a real agent per node namespace.
type lanCluster struct {
	t       *testing.T
	k       *kubectl
	nodes   []*lanNode
	podCIDR map[string]netip.Prefix // by node name, once Ready
}

func startLANCluster(t *testing.T, names ...string) *lanCluster {
	t.Helper()
	nodes := lanTopology(t, names...)
	s := lanStartServer(t)
	for _, n := range nodes {
		n.kubeconfig = s.Kubeconfig
		n.startAgent(t)
	}
	return &lanCluster{t: t, k: s.kubectl(t), nodes: nodes, podCIDR: map[string]netip.Prefix{}}
}

func (c *lanCluster) node(name string) *lanNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// waitNodesReady waits until kubectl shows every Node Ready, then checks each
// Node's InternalIP (its LAN address) and its agent's routes to the other nodes'
// pod CIDRs via their addresses.
func (c *lanCluster) waitNodesReady() {
	t, k := c.t, c.k
	readyAfter := map[string]time.Duration{}
	eventually(t, "every Node Ready", 2*time.Minute, func() error {
		r := k.run("get", "nodes")
		tb, err := parseTable(r.stdout)
		if r.code != 0 || err != nil {
			return fmt.Errorf("kubectl get nodes: %v\n%s", err, r)
		}
		for _, n := range c.nodes {
			if row, ok := tb.row(n.name); ok && row["STATUS"] == "Ready" {
				if _, seen := readyAfter[n.name]; !seen {
					readyAfter[n.name] = time.Since(n.agent.started)
				}
			}
		}
		if len(readyAfter) != len(c.nodes) {
			return fmt.Errorf("not every node is Ready:\n%s", r.stdout)
		}
		return nil
	})
	for _, n := range c.nodes {
		t.Logf("timing: node %s Ready %v after its agent started", n.name, readyAfter[n.name].Round(time.Millisecond))
		addr := k.ok("get", "node", n.name, "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
		if addr != n.ip {
			t.Errorf("node %s InternalIP %q, want %s (its address on the LAN)", n.name, addr, n.ip)
		}
		cidr, err := netip.ParsePrefix(k.ok("get", "node", n.name, "-o", "jsonpath={.spec.podCIDR}"))
		if err != nil {
			t.Fatalf("node %s podCIDR: %v", n.name, err)
		}
		c.podCIDR[n.name] = cidr
	}
	for _, n := range c.nodes {
		for _, peer := range c.nodes {
			if peer == n {
				continue
			}
			want := c.podCIDR[peer.name].String() + " via " + peer.ip
			eventually(t, "route on "+n.name+" to "+want, time.Minute, func() error {
				if routes := n.routes(); !strings.Contains(routes, want) {
					return fmt.Errorf("ip -n %s route show proto 201:\n%s", n.name, routes)
				}
				return nil
			})
		}
	}
}

// countAll counts what every node holds for pods.
func (c *lanCluster) countAll() map[string]nodeCounts {
	c.t.Helper()
	counts := map[string]nodeCounts{}
	for _, n := range c.nodes {
		nc, err := n.counts()
		if err != nil {
			c.t.Fatal(err)
		}
		counts[n.name] = nc
	}
	return counts
}

// deployWeb creates the web deployment (agnhost netexec on 8080) and waits for its
// pods. They must be spread over every node, each with an IP from its node's pod
// CIDR, and each node must hold one network namespace, veth and IPAM record and a
// shim and a program per pod more than base.
func (c *lanCluster) deployWeb(replicas int, base map[string]nodeCounts) []nodePod {
	t, k := c.t, c.k
	t.Logf("counts before the deployment: %+v", base)
	start := time.Now()
	k.ok("create", "deployment", "web", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53",
		"--replicas="+strconv.Itoa(replicas), "--", "/agnhost", "netexec", "--http-port=8080")
	var pods []nodePod
	eventually(t, "the web pods Running and Ready", 3*time.Minute, func() error {
		var err error
		if pods, err = listNodePods(k); err != nil {
			return err
		}
		if len(pods) != replicas {
			return fmt.Errorf("%d pods, want %d: %+v", len(pods), replicas, pods)
		}
		for _, p := range pods {
			if p.ready != "True" || p.ip == "" || p.containerID == "" {
				return fmt.Errorf("pod %s not Ready yet: %+v", p.name, p)
			}
		}
		return nil
	})
	t.Logf("timing: %d pods Ready %v after kubectl create deployment", replicas, time.Since(start).Round(time.Millisecond))
	k.ok("rollout", "status", "deployment/web", "--timeout=55s")
	t.Logf("timing: rollout complete %v after kubectl create deployment", time.Since(start).Round(time.Millisecond))

	wide := k.ok("get", "pods", "-l", "app=web", "-o", "wide")
	t.Logf("kubectl get pods -o wide:\n%s", wide)
	shown := map[string]int{} // pods per node, as kubectl shows them
	for _, l := range lines(wide)[1:] {
		// NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES
		f := strings.Fields(l)
		if len(f) < 7 || f[1] != "1/1" || f[2] != "Running" || !strings.HasPrefix(f[5], "10.244.") {
			t.Errorf("pod row %q: want 1/1 Running with a 10.244 IP", l)
			continue
		}
		shown[f[6]]++
	}
	for _, n := range c.nodes {
		on := podsOn(pods, n.name)
		if len(on) == 0 || len(on) != shown[n.name] {
			t.Fatalf("the web pods are not spread over every node (kubectl shows %v; %d on %s):\n%s", shown, len(on), n.name, wide)
		}
		for _, p := range on {
			if ip, err := netip.ParseAddr(p.ip); err != nil || !c.podCIDR[n.name].Contains(ip) {
				t.Errorf("pod %s on %s has IP %s, not from the node's pod CIDR %s", p.name, n.name, p.ip, c.podCIDR[n.name])
			}
		}
		nc, err := n.counts()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node %s with %d pods: %+v", n.name, len(on), nc)
		b, np := base[n.name], len(on)
		if nc.NetNS != b.NetNS+np || nc.Veths != b.Veths+np || nc.IPAM != b.IPAM+np || nc.Processes < b.Processes+np {
			t.Errorf("node %s with %d pods: %+v, before them %+v; want one netns, veth and IPAM record and at least one process (a built-in nginx container is one) more per pod",
				n.name, np, nc, b)
		}
	}
	return pods
}

func podsOn(pods []nodePod, node string) []nodePod {
	var on []nodePod
	for _, p := range pods {
		if p.node == node {
			on = append(on, p)
		}
	}
	return on
}

// checkPodTraffic: pod to pod across nodes by pod IP — a node asks its own pod
// (netexec /dial) to reach a pod of the other node, which answers with its hostname
// (its name) and sees the caller's pod IP (no masquerade inside the cluster's pod
// range) — and node to pod on the same node, for every pod.
func (c *lanCluster) checkPodTraffic(pods []nodePod) {
	t := c.t
	a, b := c.nodes[0], c.nodes[1]
	podA, podB := podsOn(pods, a.name)[0], podsOn(pods, b.name)[0]
	for _, tc := range []struct {
		name     string
		node     *lanNode
		from, to nodePod
	}{
		{name: "pod on " + a.name + " to pod on " + b.name, node: a, from: podA, to: podB},
		{name: "pod on " + b.name + " to pod on " + a.name, node: b, from: podB, to: podA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, tc.name, time.Minute, func() error { return checkNodeDial(tc.node, tc.from, tc.to) })
		})
	}
	for _, p := range pods {
		n := c.node(p.node)
		t.Run("node "+p.node+" to pod "+p.name, func(t *testing.T) {
			eventually(t, "GET /hostname of "+p.name, 30*time.Second, func() error {
				out, err := n.curl("http://" + net.JoinHostPort(p.ip, "8080") + "/hostname")
				if err != nil || out != p.name {
					return fmt.Errorf("curl /hostname of %s from %s: %q %v", p.ip, n.name, out, err)
				}
				return nil
			})
		})
	}
}

// killAndAdopt sends SIGKILL to n's agent while requests go from n to its pods,
// and restarts it. No request may fail, no pod may be seen not Ready, and after the
// restart every pod keeps its container ID, restart count, IP and node.
func (c *lanCluster) killAndAdopt(n *lanNode, pods []nodePod) {
	t, k := c.t, c.k
	targets := map[string]string{} // pod IP -> pod name
	for _, p := range podsOn(pods, n.name) {
		targets[p.ip] = p.name
	}
	watch := startNodePodsWatch(t, k)
	load := startNodeLoad(t, n, targets)
	load.waitSent(t, 20)
	n.killAgent(t)
	load.waitSent(t, load.sentCount()+100) // requests while the node has no agent
	down := time.Since(n.agent.killed)
	n.startAgent(t)
	adopted := regexp.MustCompile(`msg="adopted the running pods" .*\bpods=(\d+)`)
	eventually(t, "the restarted agent adopts the pods of "+n.name, time.Minute, func() error {
		m := adopted.FindStringSubmatch(n.agent.log.String())
		if m == nil {
			return fmt.Errorf("no %q line in the agent's log yet", adopted)
		}
		if m[1] != strconv.Itoa(len(targets)) {
			return fmt.Errorf("the agent adopted %s pods, %s has %d", m[1], n.name, len(targets))
		}
		return nil
	})
	t.Logf("timing: the agent of %s was down for %v; adoption logged %v after the restart",
		n.name, down.Round(time.Millisecond), time.Since(n.agent.started).Round(time.Millisecond))
	// The restarted agent syncs the adopted pods meanwhile: look a few times.
	settle := time.Now().Add(5 * time.Second)
	for looks := 0; time.Now().Before(settle) || looks < 3; looks++ {
		now, err := listNodePods(k)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(now, pods) {
			t.Fatalf("pods changed after the agent of %s was restarted:\nbefore %+v\nafter  %+v", n.name, pods, now)
		}
		time.Sleep(500 * time.Millisecond)
	}
	load.stop(t)
	watch.stop(t)
	eventually(t, n.name+" Ready after the restart", time.Minute, func() error {
		out := k.run("get", "node", n.name).stdout
		if tb, err := parseTable(out); err != nil || len(tb.rows) != 1 || tb.rows[0][1] != "Ready" {
			return fmt.Errorf("kubectl get node %s:\n%s", n.name, out)
		}
		return nil
	})
}

// deleteWeb deletes the deployment and waits until its pods are gone and every
// node holds what it held before the deployment (base).
func (c *lanCluster) deleteWeb(base map[string]nodeCounts) {
	t, k := c.t, c.k
	k.ok("delete", "deployment", "web")
	start := time.Now()
	eventually(t, "the web pods are gone", 3*time.Minute, func() error {
		r := k.run("get", "pods", "-l", "app=web")
		if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "No resources found") {
			return fmt.Errorf("pods left:\n%s", r)
		}
		return nil
	})
	for _, n := range c.nodes {
		eventually(t, "node "+n.name+" back to its counts before the deployment", time.Minute, func() error {
			nc, err := n.counts()
			if err != nil {
				return err
			}
			if nc != base[n.name] {
				return fmt.Errorf("node %s: %+v, before the deployment %+v", n.name, nc, base[n.name])
			}
			return nil
		})
	}
	t.Logf("timing: pods and their processes, namespaces, veths and addresses gone %v after kubectl delete deployment",
		time.Since(start).Round(time.Millisecond))
}

// nodePod is what the test follows of one pod of the deployment.
type nodePod struct {
	name, node, ip, containerID, restarts, ready string
}

// nodePodsTemplate lists the web pods, one per line, tab-separated as nodePod.
const nodePodsTemplate = `jsonpath={range .items[*]}{.metadata.name}{"\t"}{.spec.nodeName}{"\t"}{.status.podIP}{"\t"}` +
	`{.status.containerStatuses[0].containerID}{"\t"}{.status.containerStatuses[0].restartCount}{"\t"}` +
	`{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`

// listNodePods returns the web pods, sorted by name.
func listNodePods(k *kubectl) ([]nodePod, error) {
	r := k.run("get", "pods", "-l", "app=web", "--sort-by=.metadata.name", "-o", nodePodsTemplate)
	if r.code != 0 {
		return nil, fmt.Errorf("listing the web pods: %s", r)
	}
	var pods []nodePod
	for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("pod line %q: want 6 tab-separated fields", l)
		}
		pods = append(pods, nodePod{name: f[0], node: f[1], ip: f[2], containerID: f[3], restarts: f[4], ready: f[5]})
	}
	return pods, nil
}

// checkNodeDial asks from's netexec, from from's node, to GET /hostname and
// /clientip of to's netexec by pod IP.
func checkNodeDial(node *lanNode, from, to nodePod) error {
	dial := func(request string) (string, error) {
		url := fmt.Sprintf("http://%s/dial?request=%s&host=%s&port=8080&protocol=http",
			net.JoinHostPort(from.ip, "8080"), request, to.ip)
		out, err := node.curl(url)
		if err != nil {
			return "", err
		}
		var answer struct {
			Responses []string `json:"responses"`
			Errors    []string `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &answer); err != nil {
			return "", fmt.Errorf("%s: %q: %w", url, out, err)
		}
		if len(answer.Responses) != 1 {
			return "", fmt.Errorf("%s: %q (routes on %s:\n%s)", url, out, node.name, node.routes())
		}
		return answer.Responses[0], nil
	}
	host, err := dial("hostname")
	if err != nil {
		return err
	}
	if host != to.name {
		return fmt.Errorf("pod %s reached %s's IP %s and got hostname %q", from.name, to.name, to.ip, host)
	}
	client, err := dial("clientip")
	if err != nil {
		return err
	}
	if ip, _, err := net.SplitHostPort(client); err != nil || ip != from.ip {
		return fmt.Errorf("pod %s saw the client %q, want pod %s's IP %s", to.name, client, from.name, from.ip)
	}
	return nil
}

// lanNode is one node of the LAN: a network namespace with an agent in it.
type lanNode struct {
	name       string
	ip         string // on the LAN
	netns      string // the namespace's bind mount (ip netns)
	root       string // the agent's --root-dir
	kubeconfig string
	agent      *nodeAgent // the latest agent started
}

// lanTopology builds the LAN in the test's network namespace: bridge lan0 with
// 198.51.100.1/24, and per name a network namespace (ip netns) joined to it by a
// veth pair, its end eth0 with 198.51.100.11/24, .12, ..., lo up and a default
// route via the bridge. ip netns keeps namespaces in /run/netns: a tmpfs of the
// test's mount namespace is mounted there first, so that nothing is left in the
// machine's /run/netns.
func lanTopology(t *testing.T, names ...string) []*lanNode {
	t.Helper()
	if err := os.MkdirAll(lanNetnsFS, 0o755); err != nil {
		t.Fatal(err)
	}
	isolate.Must(t, "mount", "-t", "tmpfs", "-o", "mode=0755", "lan-netns", lanNetnsFS)
	t.Cleanup(func() {
		if err := unix.Unmount(lanNetnsFS, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", lanNetnsFS, err)
		}
	})
	isolate.Must(t, "ip", "link", "add", lanBridge, "type", "bridge")
	isolate.Must(t, "ip", "addr", "add", lanGateway+"/24", "dev", lanBridge)
	isolate.Must(t, "ip", "link", "set", lanBridge, "up")
	var nodes []*lanNode
	for i, name := range names {
		n := &lanNode{name: name, ip: fmt.Sprintf("198.51.100.%d", 11+i), netns: filepath.Join(lanNetnsFS, name), root: t.TempDir()}
		// Runs after the agents are stopped, before the root dir is removed.
		t.Cleanup(func() { n.releaseRoot(t) })
		uplink := "lan-" + name
		isolate.Must(t, "ip", "netns", "add", name)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", name, err, out)
			}
		})
		isolate.Must(t, "ip", "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", name)
		isolate.Must(t, "ip", "link", "set", uplink, "master", lanBridge, "up")
		isolate.Must(t, "ip", "-n", name, "addr", "add", n.ip+"/24", "dev", "eth0")
		isolate.Must(t, "ip", "-n", name, "link", "set", "eth0", "up")
		isolate.Must(t, "ip", "-n", name, "link", "set", "lo", "up")
		isolate.Must(t, "ip", "-n", name, "route", "add", "default", "via", lanGateway)
		nodes = append(nodes, n)
	}
	return nodes
}

// curl runs curl in the node's network namespace and returns its stdout.
func (n *lanNode) curl(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+n.netns, "curl", "-sS", "--max-time", "10", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("curl %s in %s: %w: %s", url, n.name, err, stderr.String())
	}
	return string(out), nil
}

// routes is what `ip -n NODE route show proto 201` prints: the agent's routes to
// the other nodes' pod CIDRs.
func (n *lanNode) routes() string {
	out, err := exec.Command("ip", "-n", n.name, "route", "show", "proto", "201").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(ip route: %v: %s)", err, out)
	}
	return string(out)
}

// nodeAgent is one run of `kubesvc agent` in a node's namespace.
type nodeAgent struct {
	cmd     *exec.Cmd
	log     *syncBuffer
	done    chan struct{}
	started time.Time
	killed  time.Time
}

// startAgent runs the real agent in the node's network namespace (nsenter --net,
// not ip netns exec: that makes a mount namespace of its own, and the pod network
// namespaces the agent bind-mounts under its root dir must stay visible to a
// restarted agent). It is stopped with SIGTERM when the test ends.
func (n *lanNode) startAgent(t *testing.T) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+n.netns, "--", kubesvcBin, "agent",
		"--kubeconfig", n.kubeconfig, "--node-name", n.name, "--root-dir", n.root)
	ag := &nodeAgent{cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, ag.log
	ag.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the agent of %s: %v", n.name, err)
	}
	go func() { _ = cmd.Wait(); close(ag.done) }()
	n.agent = ag
	// nsenter --net execs the agent in its own process (it forks only to enter a
	// PID namespace), so the signals of killAgent and the cleanup reach the agent.
	eventually(t, "nsenter executing the agent of "+n.name, 10*time.Second, func() error {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		if err != nil || exe != kubesvcBin {
			return fmt.Errorf("pid %d runs %q (%v), want %s", cmd.Process.Pid, exe, err, kubesvcBin)
		}
		return nil
	})
	t.Cleanup(func() {
		select {
		case <-ag.done:
			if ag.killed.IsZero() {
				t.Errorf("the agent of %s exited during the test (%v)", n.name, cmd.ProcessState)
			}
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-ag.done:
				if code := cmd.ProcessState.ExitCode(); code != 0 {
					t.Errorf("the agent of %s exited with %v after SIGTERM, want 0", n.name, cmd.ProcessState)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("the agent of %s (pid %d) did not stop within 15s of SIGTERM; killing it", n.name, cmd.Process.Pid)
				_ = cmd.Process.Kill()
				<-ag.done
			}
		}
		if t.Failed() {
			t.Logf("agent %s log (pid %d, last 6 KiB):\n%s", n.name, cmd.Process.Pid, tail(ag.log.String(), 6144))
		}
	})
}

// killAgent sends SIGKILL to the node's agent and waits until it is gone.
func (n *lanNode) killAgent(t *testing.T) {
	t.Helper()
	ag := n.agent
	ag.killed = time.Now()
	if err := ag.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL the agent of %s: %v", n.name, err)
	}
	select {
	case <-ag.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the agent of %s (pid %d) still runs 15s after SIGKILL", n.name, ag.cmd.Process.Pid)
	}
}

// nodeCounts is what a node holds for its pods, counted from the kernel and the
// agent's root dir.
type nodeCounts struct {
	Processes int // live processes of the pods' containers (podProcesses)
	NetNS     int // pod network namespaces bind-mounted under ROOT/net/netns
	Veths     int // veth links in the node's namespace (its LAN leg is one)
	IPAM      int // address records under ROOT/net/ipam/CIDR/
}

func (n *lanNode) counts() (nodeCounts, error) {
	var c nodeCounts
	procs, err := n.podProcesses()
	if err != nil {
		return c, err
	}
	c.Processes = len(procs)
	if entries, err := os.ReadDir(filepath.Join(n.root, "net", "netns")); err == nil {
		c.NetNS = len(entries)
	} else if !os.IsNotExist(err) {
		return c, err
	}
	out, err := exec.Command("ip", "-n", n.name, "-o", "link", "show", "type", "veth").CombinedOutput()
	if err != nil {
		return c, fmt.Errorf("ip -n %s link show type veth: %w: %s", n.name, err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		c.Veths = len(strings.Split(s, "\n"))
	}
	ranges, err := filepath.Glob(filepath.Join(n.root, "net", "ipam", "*", "*"))
	if err != nil {
		return c, err
	}
	for _, f := range ranges {
		if net.ParseIP(filepath.Base(f)) != nil {
			c.IPAM++
		}
	}
	return c, nil
}

// podProcesses returns the pids of the live processes of the containers this
// node's agents started: the shims (`kubesvc containerinit shim ROOT/runtime/...`,
// each the leader of a session of its own, as the runtime starts them) and every
// process of their sessions (the container's program: init execs it), and the
// built-in containers that are their own shim (`kubesvc containerinit run
// ROOT/runtime/...`, also session leaders). Zombies are
// left out: in the test's PID namespace the test binary is init, and it reaps no
// shim whose agent was killed.
func (n *lanNode) podProcesses() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	type proc struct {
		pid, sid int
		shim     bool
	}
	var procs []proc
	shims := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 4 || f[0] == "Z" {
			continue
		}
		sid, _ := strconv.Atoi(f[3])
		p := proc{pid: pid, sid: sid}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil {
			argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
			p.shim = len(argv) == 4 && argv[1] == "containerinit" && (argv[2] == "shim" || argv[2] == "run") && strings.HasPrefix(argv[3], n.root+"/")
		}
		if p.shim {
			shims[pid] = true
		}
		procs = append(procs, p)
	}
	var pids []int
	for _, p := range procs {
		if shims[p.sid] || p.shim {
			pids = append(pids, p.pid)
		}
	}
	return pids, nil
}

// releaseRoot, when the test ends, kills what is left of the node's pods (a
// failed test leaves them running, as a stopped agent does) and unmounts what the
// agent mounted under its root dir — the pod network namespaces and the shared
// bind mount of their folder (podnet's README) — so that the root dir can be
// removed.
func (n *lanNode) releaseRoot(t *testing.T) {
	t.Helper()
	if pids, err := n.podProcesses(); err == nil {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	dir := filepath.Join(n.root, "net", "netns")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = unix.Unmount(filepath.Join(dir, e.Name()), unix.MNT_DETACH) // EINVAL: not mounted
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		t.Errorf("unmount %s: %v", dir, err)
	}
}

// lanStartServer starts `kubesvc server` on the LAN's gateway address, where the
// agents in the node namespaces reach it, and stops it with SIGTERM when the test
// ends. The kubeconfig it writes names that address, and its serving certificate
// must cover it (kubectl and the agents verify it).
func lanStartServer(t *testing.T) *server {
	t.Helper()
	dataDir := t.TempDir()
	cmd := exec.Command(kubesvcBin, "server", "--data-dir", dataDir, "--bind-address", lanGateway, "--secure-port", "0")
	cmd.Dir = dataDir
	s := &server{cmd: cmd, log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = io.Discard, s.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", kubesvcBin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
			t.Errorf("kubesvc server exited during the test (%v)", cmd.ProcessState)
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
				if code := cmd.ProcessState.ExitCode(); code != 0 {
					t.Errorf("kubesvc server exited with %v after SIGTERM, want 0", cmd.ProcessState)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("kubesvc server (pid %d) did not stop within 15s of SIGTERM; killing it", cmd.Process.Pid)
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("kubesvc server log (last 4 KiB):\n%s", tail(s.log.String(), 4096))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := readyLine.FindStringSubmatch(s.log.String()); m != nil {
			s.URL, s.Kubeconfig = unquoteLogValue(m[1]), unquoteLogValue(m[2])
			break
		}
		select {
		case <-done:
			t.Fatalf("kubesvc server exited before it was ready (%v):\n%s", cmd.ProcessState, s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubesvc server not ready after 60s:\n%s", s.log.String())
		}
	}
	if !strings.HasPrefix(s.URL, "https://"+lanGateway+":") {
		t.Fatalf("ready line address %q is not https://%s:PORT", s.URL, lanGateway)
	}
	return s
}

// nodeLoad sends GET /hostname to the targets (pod IP -> pod name) in turn, one
// request at a time on a new connection each, from a node's network namespace,
// until stopped (or for at most five minutes), and records every failure.
type nodeLoad struct {
	node     string
	mu       sync.Mutex
	sent     int
	failed   int
	failures []string // the first few
	quit     chan struct{}
	done     chan struct{}
	stopped  bool
}

// startNodeLoad starts the requests from n's network namespace: a socket belongs
// to the namespace of the thread that creates it, so the loop runs on an OS thread
// of its own that has joined the namespace (never unlocked: the thread ends with
// the loop), and dials and speaks HTTP itself (http.Client would dial on other
// goroutines).
func startNodeLoad(t *testing.T, n *lanNode, targets map[string]string) *nodeLoad {
	t.Helper()
	ips := slices.Sorted(maps.Keys(targets))
	l := &nodeLoad{node: n.name, quit: make(chan struct{}), done: make(chan struct{})}
	joined := make(chan error, 1)
	go func() {
		defer close(l.done)
		runtime.LockOSThread()
		f, err := os.Open(n.netns)
		if err != nil {
			joined <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if joined <- err; err != nil {
			return
		}
		start := time.Now()
		for i := 0; time.Since(start) < 5*time.Minute; i++ {
			select {
			case <-l.quit:
				return
			default:
			}
			ip := ips[i%len(ips)]
			err := nodeGetHostname(ip, targets[ip])
			l.mu.Lock()
			l.sent++
			if err != nil {
				l.failed++
				if len(l.failures) < 10 {
					l.failures = append(l.failures, fmt.Sprintf("%v after the start: %v", time.Since(start).Round(time.Millisecond), err))
				}
			}
			l.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := <-joined; err != nil {
		t.Fatalf("joining the network namespace of %s: %v", n.name, err)
	}
	t.Cleanup(func() { l.stop(t) })
	return l
}

// nodeGetHostname sends GET /hostname to ip:8080 on a connection of its own and
// checks that the answer is want.
func nodeGetHostname(ip, want string) error {
	addr := net.JoinHostPort(ip, "8080")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(conn, "GET /hostname HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return fmt.Errorf("GET http://%s/hostname: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return fmt.Errorf("GET http://%s/hostname: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET http://%s/hostname: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		return fmt.Errorf("GET http://%s/hostname: %s %q, want 200 %q", addr, resp.Status, body, want)
	}
	return nil
}

func (l *nodeLoad) sentCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// waitSent waits until n requests have been sent.
func (l *nodeLoad) waitSent(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d requests sent", n), time.Minute, func() error {
		select {
		case <-l.done:
			return fmt.Errorf("the request loop ended after %d requests", l.sentCount())
		default:
		}
		if s := l.sentCount(); s < n {
			return fmt.Errorf("%d requests sent", s)
		}
		return nil
	})
}

// stop ends the requests and fails the test if any failed.
func (l *nodeLoad) stop(t *testing.T) {
	t.Helper()
	if l.stopped {
		return
	}
	l.stopped = true
	close(l.quit)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("requests from %s to its pods: %d sent, %d failed", l.node, l.sent, l.failed)
	if l.failed > 0 {
		t.Errorf("%d of %d requests failed; the first:\n%s", l.failed, l.sent, strings.Join(l.failures, "\n"))
	}
}

// nodePodsWatch is `kubectl get pods -w` on the web pods, printing the Ready
// condition of every version of a pod it sees, until stopped.
type nodePodsWatch struct {
	cancel context.CancelFunc
	out    *syncBuffer
	errb   *syncBuffer
	done   chan struct{}
}

func startNodePodsWatch(t *testing.T, k *kubectl) *nodePodsWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &nodePodsWatch{cancel: cancel, out: &syncBuffer{}, errb: &syncBuffer{}, done: make(chan struct{})}
	cmd := exec.CommandContext(ctx, k.bin, "get", "pods", "-l", "app=web", "--watch-only", "-o",
		`jsonpath={.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}`)
	cmd.Env = k.environ()
	cmd.Stdout, cmd.Stderr = w.out, w.errb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("kubectl get pods --watch-only: %v", err)
	}
	go func() { _ = cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop ends the watch and fails the test if a pod was not Ready in any version
// the watch saw.
func (w *nodePodsWatch) stop(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
		if w.cancel == nil {
			return
		}
		t.Errorf("kubectl get pods --watch-only ended early: %s", w.errb.String())
	default:
	}
	w.cancel()
	w.cancel = nil
	<-w.done
	out := w.out.String()
	if out != "" {
		t.Logf("pod versions seen by kubectl get pods --watch-only while node-a's agent was killed and restarted:\n%s", out)
	}
	for _, l := range lines(out) {
		if f := strings.Fields(l); l != "" && (len(f) != 2 || f[1] != "True") {
			t.Errorf("a pod was not Ready while node-a's agent was killed and restarted: %q", l)
		}
	}
}
