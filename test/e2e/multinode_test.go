package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// multiNodeManifests: a 3-replica agnhost Deployment (each pod answers
// /hostname with its name) behind a NodePort Service, and a client pod per
// node (pinned with nodeName) that has the machine's curl and nslookup.
const multiNodeManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: ["netexec", "--http-port=8080"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client-1}
spec:
  nodeName: kubesvc-node-1
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client-3}
spec:
  nodeName: kubesvc-node-3
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
`

// machineState is what of the machine kubesvc may leave behind: network
// namespaces, links, routes and the kubesvc processes.
type machineState struct {
	netns, links, routes string
	procs                int
}

func readMachineState(t *testing.T) machineState {
	t.Helper()
	run := func(args ...string) string {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	return machineState{
		netns:  run("ip", "netns", "list"),
		links:  run("ip", "-o", "link", "show"),
		routes: run("ip", "route", "show", "table", "all"),
		procs:  kubesvcProcesses(t),
	}
}

// upProcess is a `kubesvc up` of the test's, on a data directory that outlives it.
type upProcess struct {
	srv  *server
	cmd  *exec.Cmd
	done chan struct{}
}

// runUp starts `kubesvc up` on dataDir and waits for its "kubesvc is up" line;
// the test's cleanup kills it if it still runs.
func runUp(t *testing.T, dataDir string, args ...string) *upProcess {
	t.Helper()
	requireKubectl(t)
	cmd := exec.Command(kubesvcBin, append([]string{"up", "--data-dir", dataDir, "--secure-port", "0"}, args...)...)
	log := &syncBuffer{}
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{srv: &server{Kubeconfig: dataDir + "/admin.kubeconfig", DataDir: dataDir, log: log}, cmd: cmd, done: make(chan struct{})}
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
				up <- m[2]
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("kubesvc up log (last 8 KiB):\n%s", tail(log.String(), 8192))
		}
	})
	select {
	case what := <-up:
		if !strings.Contains(what, "3 nodes kubesvc-node-1 ... kubesvc-node-3") {
			t.Errorf("kubesvc up says %q, want 3 nodes", what)
		}
	case <-p.done:
		t.Fatalf("kubesvc up exited before it was up:\n%s", log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("kubesvc up not up after 60s:\n%s", log.String())
	}
	return p
}

// signal sends sig to kubesvc up and waits for it to exit; it returns the exit status.
func (p *upProcess) signal(t *testing.T, sig syscall.Signal) *os.ProcessState {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("kubesvc up did not exit within 60s of %v", sig)
	}
	return p.cmd.ProcessState
}

// agentProcesses counts the kubesvc agent processes.
func agentProcesses(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if args := strings.Split(string(b), "\x00"); err == nil && len(args) > 2 && args[1] == "agent" && filepath.Base(args[0]) == filepath.Base(kubesvcBin) {
			n++
		}
	}
	return n
}

// threeReady waits for the three nodes Ready.
func threeReady(t *testing.T, k *kubectl, nodes []string) {
	t.Helper()
	eventually(t, "three Ready nodes", 60*time.Second, func() error {
		out, err := jsonpath(k, `{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`, "nodes")
		if err != nil {
			return err
		}
		want := ""
		for _, n := range nodes {
			want += n + "=True\n"
		}
		if out != want {
			return fmt.Errorf("nodes:\n%s", out)
		}
		return nil
	})
}

// TestUpNodes is `kubesvc up --nodes=3`: three Ready nodes, each a network
// namespace with its own agent; a Deployment spread over them; a ClusterIP
// reached from a pod on node 1 answered by pods on all three; a NodePort on
// node 2's address reaching a pod on node 3; DNS from a pod on node 3; pods
// reached from the machine. Then kubesvc up is killed (SIGKILL: its agents
// must not outlive it for long, and reset must not need it) and `kubesvc
// reset --yes` leaves the machine as it found it.
func TestUpNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with three real nodes")
	}
	if isolate.Run(t) {
		return
	}
	before := readMachineState(t)
	dataDir := t.TempDir()
	// Registered after TempDir's removal, so it runs before it.
	t.Cleanup(func() { unmountUnder(t, dataDir) })
	start := time.Now()
	up := runUp(t, dataDir, "--nodes=3")
	k := up.srv.kubectl(t)
	nodes := []string{"kubesvc-node-1", "kubesvc-node-2", "kubesvc-node-3"}
	threeReady(t, k, nodes)
	t.Logf("three nodes Ready %v after kubesvc up started", time.Since(start).Round(time.Millisecond))
	t.Logf("kubectl get nodes -o wide:\n%s", k.ok("get", "nodes", "-o", "wide"))
	nodeIP := map[string]string{}
	for _, n := range nodes {
		ip, err := jsonpath(k, `{.status.addresses[?(@.type=="InternalIP")].address}`, "node", n)
		if err != nil {
			t.Fatal(err)
		}
		nodeIP[n] = ip
	}
	if nodeIP["kubesvc-node-1"] != "172.18.0.2" || nodeIP["kubesvc-node-3"] != "172.18.0.4" {
		t.Errorf("node addresses %v, want kubesvc-node-i at 172.18.0.(i+1)", nodeIP)
	}

	applyYAML(t, k, multiNodeManifests)
	k.ok("rollout", "status", "deployment/web", "--timeout=90s")
	k.ok("wait", "--for=condition=Ready", "pod/client-1", "pod/client-3", "--timeout=60s")
	out := k.ok("get", "pods", "-l", "app=web", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,IP:.status.podIP,NODE:.spec.nodeName")
	podOn := map[string]string{} // node → pod name
	podIPs := map[string]string{}
	for _, l := range lines(strings.TrimSpace(out)) {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("pods:\n%s", out)
		}
		podOn[f[2]] = f[0]
		podIPs[f[0]] = f[1]
	}
	if len(podOn) != 3 {
		t.Fatalf("the scheduler did not spread the 3 replicas over the 3 nodes:\n%s", out)
	}
	clusterIP, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "web")
	nodePort, _ := jsonpath(k, "{.spec.ports[0].nodePort}", "svc", "web")

	t.Run("pods answer from the machine", func(t *testing.T) {
		for name, ip := range podIPs {
			eventually(t, "curl "+ip, 30*time.Second, func() error {
				body, err := httpGet("http://" + ip + ":8080/hostname")
				if err != nil || body != name {
					return fmt.Errorf("%q %v, want %q", body, err, name)
				}
				return nil
			})
		}
	})
	t.Run("ClusterIP from a pod on node 1 reaches pods on all nodes", func(t *testing.T) {
		seen := map[string]bool{}
		eventually(t, "answers from the three pods", 60*time.Second, func() error {
			r := k.run("exec", "client-1", "--", "curl", "-s", "-m", "2", "http://"+clusterIP+"/hostname")
			if r.code == 0 {
				seen[r.stdout] = true
			}
			for _, n := range nodes {
				if !seen[podOn[n]] {
					return fmt.Errorf("answers so far %v; want %v (last: %s)", seen, podOn, r)
				}
			}
			return nil
		})
	})
	t.Run("NodePort on node 2 reaches the pod on node 3", func(t *testing.T) {
		// The pod on node 3 answers some of the balanced connections to node 2.
		url := "http://" + nodeIP["kubesvc-node-2"] + ":" + nodePort + "/hostname"
		eventually(t, "the pod on node 3 answering "+url, 60*time.Second, func() error {
			body, err := httpGet(url)
			if err != nil || body != podOn["kubesvc-node-3"] {
				return fmt.Errorf("%q %v", body, err)
			}
			return nil
		})
	})
	t.Run("DNS from a pod on node 3", func(t *testing.T) {
		eventually(t, "nslookup web", 30*time.Second, func() error {
			out, ok := k.try("exec", "client-3", "--", "nslookup", "web.default.svc.cluster.local")
			if !ok || !strings.Contains(out, "Address: "+clusterIP) {
				return fmt.Errorf("nslookup:\n%s", out)
			}
			return nil
		})
	})
	t.Run("ClusterIP from the machine", func(t *testing.T) {
		eventually(t, "curl "+clusterIP, 30*time.Second, func() error {
			_, err := httpGet("http://" + clusterIP + "/hostname")
			return err
		})
	})
	t.Run("NodePort on the machine's localhost, by the machine's proxy", func(t *testing.T) {
		// This machine is not a node, but its own proxy serves NodePorts on
		// localhost, as a one-node kubesvc up does; its rules are here.
		eventually(t, "curl localhost:"+nodePort, 30*time.Second, func() error {
			_, err := httpGet("http://127.0.0.1:" + nodePort + "/hostname")
			return err
		})
		if out, err := exec.Command("nft", "list", "table", "ip", "kubesvc").CombinedOutput(); err != nil || !strings.Contains(string(out), "default/web") {
			t.Errorf("this machine's nftables table does not show the Service default/web: %v\n%s", err, out)
		}
	})

	// A clean stop stops the agents (the pods go on, as with kubelets); a second
	// kubesvc up resumes the cluster with the same pods.
	if st := up.signal(t, syscall.SIGTERM); st.ExitCode() != 0 {
		t.Errorf("kubesvc up exited with %v after SIGTERM, want 0", st)
	}
	if n := agentProcesses(t); n != 0 {
		t.Errorf("%d agents left after kubesvc up stopped", n)
	}
	up = runUp(t, dataDir, "--nodes=3")
	threeReady(t, k, nodes)
	for name, ip := range podIPs {
		eventually(t, "pod "+name+" adopted and answering", 30*time.Second, func() error {
			body, err := httpGet("http://" + ip + ":8080/hostname")
			if err != nil || body != name {
				return fmt.Errorf("%q %v, want %q", body, err, name)
			}
			return nil
		})
	}

	// kubesvc up dies without stopping anything: reset must still remove it all.
	up.signal(t, syscall.SIGKILL)
	out2, err := exec.Command(kubesvcBin, "reset", "--data-dir", dataDir, "--yes").CombinedOutput()
	t.Logf("kubesvc reset --yes:\n%s", out2)
	if err != nil {
		t.Fatalf("kubesvc reset --yes: %v", err)
	}
	if !strings.Contains(string(out2), "removed 3 nodes") {
		t.Errorf("kubesvc reset does not say it removed the 3 nodes")
	}
	after := readMachineState(t)
	if after.netns != before.netns {
		t.Errorf("network namespaces after reset:\n%s\nbefore:\n%s", after.netns, before.netns)
	}
	if sortedLines(after.links) != sortedLines(before.links) {
		t.Errorf("links after reset:\n%s\nbefore:\n%s", after.links, before.links)
	}
	if after.routes != before.routes {
		t.Errorf("routes after reset:\n%s\nbefore:\n%s", after.routes, before.routes)
	}
	if after.procs != before.procs {
		t.Errorf("%d kubesvc processes after reset, %d before", after.procs, before.procs)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data directory after reset: %v", err)
	}
}

// sortedLines sorts the lines of s, without the link indexes that `ip -o
// link` starts them with.
func sortedLines(s string) string {
	ls := lines(s)
	for i, l := range ls {
		if _, rest, ok := strings.Cut(l, ": "); ok {
			ls[i] = rest
		}
	}
	sort.Strings(ls)
	return strings.Join(ls, "\n")
}
