package e2e

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
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

// TestProxyResilience is the service proxy's acceptance under disturbance (issue
// 10), on two real nodes (TestTwoNodes' LAN: node-a 198.51.100.11 and node-b
// 198.51.100.12, `kubesvc server` on 198.51.100.1), in each proxy mode:
//   - SIGKILL to node-a's agent (the proxy runs in it) while node-a sends ~20
//     requests/s to a ClusterIP, a new connection each, and keeps one HTTP
//     keep-alive connection to it busy every 100 ms; the agent is restarted with
//     the same flags: no request fails, and the kept-alive connection still works
//     (on the same pod);
//   - a rolling update of the deployment behind the Service while node-a sends
//     50 requests/s to its ClusterIP, a new connection each: no request fails;
//   - NODE_IP:NODEPORT of both nodes, asked from the LAN, reaches every pod of a
//     deployment pinned to node-a, also on node-b, which runs none of them.
func TestProxyResilience(t *testing.T) {
	for _, mode := range []string{"nftables", "iptables"} {
		t.Run(mode, func(t *testing.T) {
			if isolate.Run(t) {
				return
			}
			requireKubectl(t)
			testProxyResilience(t, mode)
		})
	}
}

func testProxyResilience(t *testing.T, mode string) {
	nodes := lanTopology(t, "node-a", "node-b")
	s := lanStartServer(t)
	rc := &resCluster{owner: t, mode: mode}
	for _, n := range nodes {
		n.kubeconfig = s.Kubeconfig
		rc.startAgent(t, n)
	}
	c := &lanCluster{t: t, k: s.kubectl(t), nodes: nodes, podCIDR: map[string]netip.Prefix{}}
	rc.lanCluster = c
	c.waitNodesReady()
	k := c.k
	start := time.Now()
	applyYAML(t, k, resManifests)
	k.ok("rollout", "status", "deployment/res-web", "--timeout=150s")
	k.ok("rollout", "status", "deployment/res-pinned", "--timeout=150s")
	t.Logf("timing: both deployments rolled out %v after kubectl apply", time.Since(start).Round(time.Millisecond))
	t.Logf("kubectl get pods -o wide:\n%s", k.ok("get", "pods", "-o", "wide"))
	clusterIP, err := jsonpath(k, "{.spec.clusterIP}", "svc", "res-web")
	if err != nil || net.ParseIP(clusterIP) == nil {
		t.Fatalf("ClusterIP of res-web %q: %v", clusterIP, err)
	}
	addr := net.JoinHostPort(clusterIP, "80")
	a := c.node("node-a")
	// Every pod of res-web answers on the ClusterIP from node-a before anything is
	// disturbed: the proxy has programmed the Service.
	webPods := resPodNames(t, k, "app=res-web")
	eventually(t, "every res-web pod answers on the ClusterIP from node-a", time.Minute, func() error {
		seen, err := resSpread(a, addr, 40)
		if err != nil {
			return err
		}
		for _, p := range webPods {
			if seen[p] == 0 {
				return fmt.Errorf("pod %s did not answer: %v", p, seen)
			}
		}
		return nil
	})

	t.Run("SIGKILL the agent under traffic", func(t *testing.T) {
		rc.killUnderTraffic(t, a, addr)
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Run("rolling update under 50 requests per second", func(t *testing.T) {
		rc.rollingUpdate(t, k.on(t), a, addr)
	})
	t.Run("NodePort on every node", func(t *testing.T) {
		rc.nodePorts(t, k.on(t))
	})
}

// resCluster is TestProxyResilience's two-node cluster and every agent run it
// started (a restarted agent's log lacks what the killed one logged).
type resCluster struct {
	*lanCluster
	owner  *testing.T // the agents run until it ends
	mode   string     // --proxy-mode
	agents []*nodeAgent
}

// killUnderTraffic sends SIGKILL to n's agent while n sends ~20 requests/s to
// addr (a new connection each) and one kept-alive connection asks every 100 ms,
// and restarts the agent with the same flags once 3 s passed (it runs until owner
// ends).
func (rc *resCluster) killUnderTraffic(t *testing.T, n *lanNode, addr string) {
	load := resStartLoad(t, n, "new connections to "+addr, addr, 50*time.Millisecond)
	keep := resStartKeepAlive(t, n, addr, 100*time.Millisecond)
	load.waitSent(t, 40)
	keep.waitSent(t, 20)
	keptPod := keep.firstHost()

	n.killAgent(t)
	killed := n.agent.killed
	load.mark("SIGKILL")
	keep.mark("SIGKILL")
	// The node has no proxy (and no agent) for 3 s: the rules it left must carry
	// the traffic meanwhile.
	time.Sleep(3 * time.Second)
	load.mark("restart")
	keep.mark("restart")
	rc.startAgent(t, n)
	restarted := n.agent.started
	var m map[string]float64
	eventually(t, "the restarted proxy's first sync (kubeproxy_sync_proxy_rules_duration_seconds_count ≥ 1)", time.Minute, func() error {
		var err error
		if m, err = resMetrics(n); err != nil {
			return err
		}
		if syncs := m["kubeproxy_sync_proxy_rules_duration_seconds_count"]; syncs < 1 {
			return fmt.Errorf("%v syncs", syncs)
		}
		return nil
	})
	seen := time.Since(restarted)
	load.mark("first sync seen")
	keep.mark("first sync seen")
	// Traffic goes on over the restarted proxy's rules for 3 s more.
	sentBefore, keptBefore := load.sentCount(), keep.sentCount()
	load.waitSent(t, sentBefore+60)
	keep.waitSent(t, keptBefore+30)
	first := fmt.Sprintf("seen %v after the restart", seen.Round(time.Millisecond))
	if syncs := m["kubeproxy_sync_proxy_rules_duration_seconds_count"]; syncs == 1 {
		// The only sync yet: its timestamp is the first sync's.
		at := time.UnixMicro(int64(m["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] * 1e6))
		first = fmt.Sprintf("done %v after the restart", at.Sub(restarted).Round(time.Millisecond))
	}
	t.Logf("timing (%s mode): the agent was down %v; the restarted proxy's first sync %s (full syncs by then: %v, taking %v in all)",
		rc.mode, restarted.Sub(killed).Round(time.Millisecond), first, m["kubeproxy_sync_full_proxy_rules_duration_seconds_count"],
		time.Duration(m["kubeproxy_sync_full_proxy_rules_duration_seconds_sum"]*float64(time.Second)).Round(10*time.Microsecond))
	if !strings.Contains(n.agent.log.String(), "informers synced; starting syncs") {
		t.Errorf("the restarted agent's log lacks %q", "informers synced; starting syncs")
	}
	load.stop(t)
	keep.stop(t)
	if hosts := keep.hostCounts(); len(hosts) != 1 || hosts[keptPod] == 0 {
		t.Errorf("the kept-alive connection was answered by %v, want only %s (one connection, one pod)", hosts, keptPod)
	}
	if after := keep.sentAfter("first sync seen"); after < 10 {
		t.Errorf("only %d requests on the kept-alive connection after the restarted proxy's first sync", after)
	}
}

// rollingUpdate changes res-web's pod template (an env var) while n sends 50
// requests/s to addr, a new connection each, and keeps sending until the old pods
// are gone (at least 20 s): no request may fail.
func (rc *resCluster) rollingUpdate(t *testing.T, k *kubectl, n *lanNode, addr string) {
	oldPods := resPodNames(t, k, "app=res-web")
	before, _ := resMetrics(n)
	load := resStartLoad(t, n, "new connections to "+addr+" during the rollout", addr, 20*time.Millisecond)
	load.waitSent(t, 50)
	start := time.Now()
	load.mark("set env")
	k.ok("set", "env", "deployment/res-web", "ROLLOUT=2")
	k.ok("rollout", "status", "deployment/res-web", "--timeout=120s")
	load.mark("rollout status done")
	rolled := time.Since(start)
	// The old pods leave the ready set at once but serve until --delay-shutdown
	// ends: keep sending until they are gone, and at least 20 s in all.
	eventually(t, "the old res-web pods gone", 2*time.Minute, func() error {
		now := resPodNames(t, k, "app=res-web")
		for _, p := range now {
			if slices.Contains(oldPods, p) {
				return fmt.Errorf("old pod %s still exists (pods %v)", p, now)
			}
		}
		return nil
	})
	gone := time.Since(start)
	load.mark("old pods gone")
	if rest := 20*time.Second - time.Since(start); rest > 0 {
		time.Sleep(rest)
	} else {
		time.Sleep(2 * time.Second)
	}
	load.stop(t)
	t.Logf("timing: rollout status done %v after kubectl set env; the old pods gone %v after it", rolled.Round(time.Millisecond), gone.Round(time.Millisecond))
	newPods := resPodNames(t, k, "app=res-web")
	hosts := load.hostCounts()
	for _, p := range newPods {
		if hosts[p] == 0 {
			t.Errorf("new pod %s never answered: %v", p, hosts)
		}
	}
	// When the old pods got their last request, against when their program got
	// SIGTERM (the pod was deleted just before) and when it was gone: a request
	// after SIGTERM reached a terminating pod, one after its exit would fail.
	times := rc.containerTimes()
	for _, p := range oldPods {
		ct := times[p]
		last, ok := load.lastAnswer(p)
		switch {
		case !ok:
			t.Logf("old pod %s answered no request during the rollout", p)
		case ct.sigterm.IsZero():
			t.Logf("old pod %s answered %d requests, the last %v after kubectl set env (no SIGTERM in the agents' logs)", p, hosts[p], last.Sub(start).Round(time.Millisecond))
		default:
			t.Logf("old pod %s: SIGTERM %v after kubectl set env, its last answer %v after SIGTERM, its container removed %v after SIGTERM (%d answers)",
				p, ct.sigterm.Sub(start).Round(time.Millisecond), last.Sub(ct.sigterm).Round(time.Millisecond), ct.removed.Sub(ct.sigterm).Round(time.Millisecond), hosts[p])
		}
	}
	if after, err := resMetrics(n); err == nil {
		cnt := after["kubeproxy_network_programming_duration_seconds_count"] - before["kubeproxy_network_programming_duration_seconds_count"]
		sum := after["kubeproxy_network_programming_duration_seconds_sum"] - before["kubeproxy_network_programming_duration_seconds_sum"]
		syncs := after["kubeproxy_sync_proxy_rules_duration_seconds_count"] - before["kubeproxy_sync_proxy_rules_duration_seconds_count"]
		if cnt > 0 {
			t.Logf("node-a's proxy during the rollout: %.0f syncs; network programming latency mean %v over %.0f observations",
				syncs, time.Duration(sum/cnt*float64(time.Second)).Round(time.Millisecond), cnt)
		} else {
			t.Logf("node-a's proxy during the rollout: %.0f syncs", syncs)
		}
	}
}

// nodePorts asks NODE_IP:NODEPORT of every node from the LAN (the test's own
// namespace) 30 times each: every pod of res-pinned (all on node-a) answers, on
// node-b too, and the pods see the requests come from the node that was asked
// (masqueraded: the answer must go back through it).
func (rc *resCluster) nodePorts(t *testing.T, k *kubectl) {
	out := k.ok("get", "pods", "-l", "app=res-pinned", "-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}`)
	var pods []string
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) != 2 || f[1] != "node-a" {
			t.Fatalf("res-pinned pod %q: want one on node-a", l)
		}
		pods = append(pods, f[0])
	}
	nodePort, err := jsonpath(k, "{.spec.ports[0].nodePort}", "svc", "res-pinned")
	if err != nil || nodePort == "" {
		t.Fatalf("nodePort of res-pinned %q: %v", nodePort, err)
	}
	for _, n := range rc.nodes {
		base := "http://" + net.JoinHostPort(n.ip, nodePort)
		var seen map[string]int
		start := time.Now()
		eventually(t, "every res-pinned pod answers on "+base, time.Minute, func() error {
			seen = map[string]int{}
			for range 30 {
				host, err := httpGet(base + "/hostname")
				if err != nil {
					return err
				}
				seen[host]++
			}
			for _, p := range pods {
				if seen[p] == 0 {
					return fmt.Errorf("pod %s did not answer: %v", p, seen)
				}
			}
			return nil
		})
		// Masqueraded to the address of the node asked that faces the pod: its LAN
		// address towards a pod on another node, its pod gateway (the bridge)
		// towards a local one.
		gateway := rc.podCIDR[n.name].Addr().Next().String()
		client, err := httpGet(base + "/clientip")
		if err != nil {
			t.Errorf("%s/clientip: %v", base, err)
		} else if ip, _, _ := net.SplitHostPort(client); ip != n.ip && ip != gateway {
			t.Errorf("%s/clientip: the pod saw %q, want %s or %s (masqueraded to an address of the node asked)", base, client, n.ip, gateway)
		}
		local := 0
		if n.name == "node-a" {
			local = len(pods)
		}
		t.Logf("%s (%s runs %d of the %d pods): 30 requests answered by %v; the pod saw the client %s (all answered within %v)",
			base, n.name, local, len(pods), seen, client, time.Since(start).Round(time.Millisecond))
	}
}

// resContainer is when the agents logged a pod's container started, stopping
// with SIGTERM, and removed (after its program exited).
type resContainer struct{ started, sigterm, removed time.Time }

var (
	resStartedLine  = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="container started" id=(\w+) pod=[^/\s]+/(\S+) `)
	resStoppingLine = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="stopping container" id=(\w+) .*signal=SIGTERM`)
	resRemovedLine  = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="container removed" id=(\w+)`)
)

// containerTimes reads every agent's log: the times of each pod's container, by
// pod name.
func (rc *resCluster) containerTimes() map[string]resContainer {
	pods := map[string]string{} // container ID -> pod name
	byID := map[string]*resContainer{}
	parse := func(s string) time.Time {
		at, _ := time.Parse(time.RFC3339Nano, s)
		return at
	}
	logs := make([]string, len(rc.agents))
	for i, ag := range rc.agents {
		logs[i] = ag.log.String()
	}
	for _, l := range logs {
		for _, m := range resStartedLine.FindAllStringSubmatch(l, -1) {
			pods[m[2]] = m[3]
			byID[m[2]] = &resContainer{started: parse(m[1])}
		}
	}
	for _, l := range logs {
		for _, m := range resStoppingLine.FindAllStringSubmatch(l, -1) {
			if c := byID[m[2]]; c != nil {
				c.sigterm = parse(m[1])
			}
		}
		for _, m := range resRemovedLine.FindAllStringSubmatch(l, -1) {
			if c := byID[m[2]]; c != nil {
				c.removed = parse(m[1])
			}
		}
	}
	out := map[string]resContainer{}
	for id, c := range byID {
		out[pods[id]] = *c
	}
	return out
}

// resManifests: res-web (4 agnhost netexec pods anywhere, readiness on /readyz
// every second, 5 s of --delay-shutdown: a terminating pod serves on while the
// proxies drop it) behind a ClusterIP Service, and res-pinned (2 pods on node-a)
// behind a NodePort Service. Without --delay-shutdown a rollout loses a request
// or two, as it would with kube-proxy: a deleted pod leaves the ready set of a
// proxy up to a --min-sync-period (100 ms in nftables mode, 1 s in iptables mode) plus the controllers' delay after its
// deletion, while its program exits at SIGTERM at once and its network namespace
// goes a few hundred ms later (a SYN then is refused, or dropped and its
// retransmissions pinned to the gone pod by its conntrack entry: a dial timeout).
const resManifests = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: res-web
spec:
  replicas: 4
  selector:
    matchLabels:
      app: res-web
  template:
    metadata:
      labels:
        app: res-web
    spec:
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: ["netexec", "--http-port=8080", "--delay-shutdown=5"]
        env:
        - name: ROLLOUT
          value: "1"
        readinessProbe:
          httpGet:
            path: /readyz
            port: 8080
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata:
  name: res-web
spec:
  selector:
    app: res-web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: res-pinned
spec:
  replicas: 2
  selector:
    matchLabels:
      app: res-pinned
  template:
    metadata:
      labels:
        app: res-pinned
    spec:
      nodeSelector:
        kubernetes.io/hostname: node-a
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: ["netexec", "--http-port=8080"]
        readinessProbe:
          httpGet:
            path: /readyz
            port: 8080
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: res-pinned
spec:
  type: NodePort
  selector:
    app: res-pinned
  ports:
  - port: 80
    targetPort: 8080
`

// startAgent runs `kubesvc agent --proxy-mode MODE` in n's network namespace, as
// lanNode.startAgent does (nsenter --net: the agent is the process started), and
// stops it with SIGTERM when rc.owner ends (t, rc.owner or a subtest of it,
// reports failures to start it).
func (rc *resCluster) startAgent(t *testing.T, n *lanNode) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+n.netns, "--", kubesvcBin, "agent",
		"--kubeconfig", n.kubeconfig, "--node-name", n.name, "--root-dir", n.root, "--proxy-mode", rc.mode)
	ag := &nodeAgent{cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	rc.agents = append(rc.agents, ag)
	cmd.Stdout, cmd.Stderr = io.Discard, ag.log
	ag.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the agent of %s: %v", n.name, err)
	}
	go func() { _ = cmd.Wait(); close(ag.done) }()
	n.agent = ag
	eventually(t, "nsenter executing the agent of "+n.name, 10*time.Second, func() error {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		if err != nil || exe != kubesvcBin {
			return fmt.Errorf("pid %d runs %q (%v), want %s", cmd.Process.Pid, exe, err, kubesvcBin)
		}
		return nil
	})
	t = rc.owner
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

// resPodNames lists the names of the pods with the label selector, sorted.
func resPodNames(t *testing.T, k *kubectl, selector string) []string {
	t.Helper()
	out := k.ok("get", "pods", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}")
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// resInNetns runs f on an OS thread that has joined n's network namespace (the
// sockets f makes belong to it) and returns its error. The thread is never
// unlocked: it ends with f.
func resInNetns(n *lanNode, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := resJoin(n); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func resJoin(n *lanNode) error {
	f, err := os.Open(n.netns)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("joining the network namespace of %s: %w", n.name, err)
	}
	return nil
}

// resSpread sends count requests for /hostname to addr from n, a new connection
// each, and counts the answers by pod.
func resSpread(n *lanNode, addr string, count int) (map[string]int, error) {
	seen := map[string]int{}
	err := resInNetns(n, func() error {
		for range count {
			host, err := resGet(addr, "/hostname")
			if err != nil {
				return err
			}
			seen[host]++
		}
		return nil
	})
	return seen, err
}

// resGet sends GET path to addr on a connection of its own (the caller's thread
// must be in the right network namespace) and returns the body of a 200 answer.
func resGet(addr, path string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		return "", fmt.Errorf("GET http://%s%s: %w", addr, path, err)
	}
	return resReadAnswer(bufio.NewReader(conn), addr, path)
}

func resReadAnswer(br *bufio.Reader, addr, path string) (string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", fmt.Errorf("GET http://%s%s: %w", addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET http://%s%s: %w", addr, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET http://%s%s: %s %q", addr, path, resp.Status, body)
	}
	return string(body), nil
}

// resConntrack is what the kernel tracks of connections to addr (IP:port) in the
// calling thread's network namespace, leaving out the ESTABLISHED and TIME_WAIT
// ones: for a failed request, where a SYN went (the reply tuple's source is the
// endpoint it was DNATed to).
func resConntrack(addr string) string {
	ip, port, _ := net.SplitHostPort(addr)
	b, err := os.ReadFile("/proc/thread-self/net/nf_conntrack")
	if err != nil {
		return "\t\t" + err.Error()
	}
	var out []string
	for _, l := range lines(string(b)) {
		if strings.Contains(l, " dst="+ip+" ") && strings.Contains(l, " dport="+port+" ") &&
			!strings.Contains(l, " ESTABLISHED ") && !strings.Contains(l, " TIME_WAIT ") {
			out = append(out, "\t\t"+strings.Join(strings.Fields(l), " "))
		}
	}
	if len(out) == 0 {
		return "\t\t(none)"
	}
	return strings.Join(out, "\n")
}

// resMetrics reads the proxy's /metrics on 127.0.0.1:10249 in n's namespace:
// the value of every sample without labels, by name.
func resMetrics(n *lanNode) (map[string]float64, error) {
	var body string
	err := resInNetns(n, func() error {
		var err error
		body, err = resGet("127.0.0.1:10249", "/metrics")
		return err
	})
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, l := range lines(body) {
		if strings.HasPrefix(l, "#") || strings.Contains(l, "{") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m, nil
}

// resLoad is a stream of requests from a node's network namespace, paced at one
// per interval, on a thread of its own; it records every answer and failure.
type resLoad struct {
	name     string
	mu       sync.Mutex
	start    time.Time
	sent     int
	failed   int
	failures []string // the first few
	hosts    map[string]int
	last     map[string]time.Time // the last answer of each pod
	lat      []time.Duration
	marks    []resMark
	quit     chan struct{}
	done     chan struct{}
	stopped  bool
}

// resMark is a named moment of a load (SIGKILL, restart, ...) and how many
// requests had been sent by then.
type resMark struct {
	name string
	at   time.Time
	sent int
}

func newResLoad(name string) *resLoad {
	return &resLoad{name: name, hosts: map[string]int{}, last: map[string]time.Time{}, quit: make(chan struct{}), done: make(chan struct{})}
}

// resStartLoad sends GET /hostname to addr from n, a new connection each, one
// per interval (catching up when a request took longer, at most 1 s behind),
// until stopped or for at most five minutes.
func resStartLoad(t *testing.T, n *lanNode, name, addr string, interval time.Duration) *resLoad {
	t.Helper()
	l := newResLoad(name)
	l.run(t, n, func(quit <-chan struct{}) {
		next := time.Now()
		for time.Since(l.start) < 5*time.Minute {
			select {
			case <-quit:
				return
			default:
			}
			begin := time.Now()
			host, err := resGet(addr, "/hostname")
			if err != nil && l.failedCount() < 10 {
				err = fmt.Errorf("%w\n\t\tconntrack entries to %s then, but for ESTABLISHED and TIME_WAIT ones:\n%s", err, addr, resConntrack(addr))
			}
			l.record(begin, host, err)
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-quit:
					return
				case <-time.After(d):
				}
			} else if d < -time.Second {
				next = time.Now()
			}
		}
	})
	t.Cleanup(func() { l.stop(t) })
	return l
}

// resStartKeepAlive opens one connection to addr from n and sends GET /hostname
// on it every interval (HTTP/1.1 keep-alive) until stopped. A failed request is
// recorded and the connection opened anew.
func resStartKeepAlive(t *testing.T, n *lanNode, addr string, interval time.Duration) *resLoad {
	t.Helper()
	l := newResLoad("one kept-alive connection to " + addr)
	l.run(t, n, func(quit <-chan struct{}) {
		var conn net.Conn
		var br *bufio.Reader
		defer func() {
			if conn != nil {
				conn.Close()
			}
		}()
		for time.Since(l.start) < 5*time.Minute {
			begin := time.Now()
			var host string
			var err error
			if conn == nil {
				if conn, err = net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
					br = bufio.NewReader(conn)
				} else {
					conn = nil
				}
			}
			if conn != nil {
				if err = conn.SetDeadline(time.Now().Add(5 * time.Second)); err == nil {
					if _, err = fmt.Fprintf(conn, "GET /hostname HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err == nil {
						host, err = resReadAnswer(br, addr, "/hostname")
					}
				}
				if err != nil {
					err = fmt.Errorf("on the kept-alive connection %s: %w", conn.LocalAddr(), err)
					conn.Close()
					conn = nil
				}
			}
			l.record(begin, host, err)
			select {
			case <-quit:
				return
			case <-time.After(interval):
			}
		}
	})
	t.Cleanup(func() { l.stop(t) })
	return l
}

// run starts loop on a thread in n's network namespace.
func (l *resLoad) run(t *testing.T, n *lanNode, loop func(quit <-chan struct{})) {
	t.Helper()
	joined := make(chan error, 1)
	l.start = time.Now() // before the loop's goroutine: it reads start unlocked
	go func() {
		defer close(l.done)
		runtime.LockOSThread()
		err := resJoin(n)
		if joined <- err; err != nil {
			return
		}
		loop(l.quit)
	}()
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
}

func (l *resLoad) record(begin time.Time, host string, err error) {
	took := time.Since(begin)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	l.lat = append(l.lat, took)
	if err != nil {
		l.failed++
		if len(l.failures) < 10 {
			l.failures = append(l.failures, fmt.Sprintf("at %v%s: %v", begin.Sub(l.start).Round(time.Millisecond), l.since(begin), err))
		}
		return
	}
	l.hosts[host]++
	l.last[host] = time.Now()
}

// since says how long after the latest mark before at it was (mu held).
func (l *resLoad) since(at time.Time) string {
	for i := len(l.marks) - 1; i >= 0; i-- {
		if !l.marks[i].at.After(at) {
			return fmt.Sprintf(" (%v after %s)", at.Sub(l.marks[i].at).Round(time.Millisecond), l.marks[i].name)
		}
	}
	return ""
}

func (l *resLoad) mark(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks = append(l.marks, resMark{name: name, at: time.Now(), sent: l.sent})
}

func (l *resLoad) failedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

func (l *resLoad) sentCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// sentAfter is how many requests were sent after the named mark.
func (l *resLoad) sentAfter(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.marks {
		if m.name == name {
			return l.sent - m.sent
		}
	}
	return 0
}

func (l *resLoad) hostCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.hosts)
}

func (l *resLoad) lastAnswer(host string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.last[host]
	return at, ok
}

// firstHost is the pod that answered (the only one, for a kept-alive connection).
func (l *resLoad) firstHost() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for h := range l.hosts {
		return h
	}
	return ""
}

// waitSent waits until n requests have been sent.
func (l *resLoad) waitSent(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d requests sent (%s)", n, l.name), 2*time.Minute, func() error {
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

// stop ends the requests, logs the figures and fails the test if any failed.
func (l *resLoad) stop(t *testing.T) {
	t.Helper()
	if l.stopped {
		return
	}
	l.stopped = true
	close(l.quit)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	took := time.Since(l.start)
	lat := slices.Clone(l.lat)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))].Round(10 * time.Microsecond)
	}
	var marks []string
	for _, m := range l.marks {
		marks = append(marks, fmt.Sprintf("%s at %v (request %d)", m.name, m.at.Sub(l.start).Round(time.Millisecond), m.sent))
	}
	t.Logf("%s: %d sent in %v (%.1f/s), %d failed; latency p50 %v p99 %v max %v; answered by %v; %s",
		l.name, l.sent, took.Round(time.Millisecond), float64(l.sent)/took.Seconds(), l.failed,
		pct(0.5), pct(0.99), pct(1), l.hosts, strings.Join(marks, ", "))
	if l.failed > 0 {
		t.Errorf("%s: %d of %d requests failed; the first:\n%s", l.name, l.failed, l.sent, strings.Join(l.failures, "\n"))
	}
}
