package e2e

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil"
)

// startAgent runs `kubesvc agent --simulate` for node name against s until the test
// ends (or stop is called); stop ends it with SIGTERM.
func startAgent(t *testing.T, s *server, name string) (stop func()) {
	t.Helper()
	cmd := exec.Command(kubesvcBin, "agent", "--simulate", "--kubeconfig", s.Kubeconfig, "--node-name", name)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("agent %s log (last 2 KiB):\n%s", name, tail(log.String(), 2048))
		}
	})
	return stop
}

// eventually polls check until it returns nil (testutil.Eventually), failing the
// test with check's last error after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	testutil.Eventually(t, what, timeout, func(context.Context) (bool, error) {
		err := check()
		return err == nil, err
	})
}

var epAddr = regexp.MustCompile(`\b10\.244\.\d+\.\d+:80\b`)

// endpointCount returns how many IP:80 pairs `kubectl get ep NAME` shows (with the
// "+ N more..." suffix counted).
func endpointCount(k *kubectl, name string) (int, string, error) {
	r := k.run("get", "ep", name)
	if r.code != 0 {
		return 0, r.stdout, fmt.Errorf("kubectl get ep %s failed: %s", name, r)
	}
	out := r.stdout
	n := len(epAddr.FindAllString(out, -1))
	if m := regexp.MustCompile(`\+ (\d+) more\.\.\.`).FindStringSubmatch(out); m != nil {
		more, _ := strconv.Atoi(m[1])
		n += more
	}
	return n, out, nil
}

// TestControllersSeedFlow is the seeds' flow on a server with two simulated nodes:
// create deployment, expose as NodePort, endpoints follow scale up and down, pods show
// IPs and nodes, a deleted pod is replaced, and deleting the deployment empties the
// endpoints.
func TestControllersSeedFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)
	startAgent(t, s, "node-1")
	startAgent(t, s, "node-2")
	eventually(t, "two Ready nodes", 30*time.Second, func() error {
		out := k.run("get", "nodes").stdout
		if strings.Count(out, " Ready ") != 2 {
			return fmt.Errorf("kubectl get nodes:\n%s", out)
		}
		return nil
	})

	k.expectOut("deployment.apps/nginx created\n", "create", "deployment", "nginx", "--image=nginx", "--replicas=2")
	k.expectOut("service/nginx exposed\n", "expose", "deployment", "nginx", "--port=80", "--type=NodePort")
	follow := func(want int) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d endpoints", want), 30*time.Second, func() error {
			n, out, err := endpointCount(k, "nginx")
			if err != nil {
				return err
			}
			if n != want {
				return fmt.Errorf("kubectl get ep nginx shows %d endpoints:\n%s", n, out)
			}
			return nil
		})
	}
	follow(2)
	out := k.ok("get", "svc", "nginx")
	if !regexp.MustCompile(`(?m)^nginx   NodePort   10\.\d+\.\d+\.\d+   <none>        80:3\d{4}/TCP   \d+s$`).MatchString(out) {
		t.Errorf("kubectl get svc nginx:\n%s", out)
	}
	eventually(t, "one endpointslice", 10*time.Second, func() error {
		out := k.run("get", "endpointslices", "-l", "kubernetes.io/service-name=nginx").stdout
		if len(lines(out)) != 2 || !strings.Contains(out, "IPv4") || !strings.Contains(out, "80") {
			return fmt.Errorf("kubectl get endpointslices:\n%s", out)
		}
		return nil
	})

	k.expectOut("deployment.apps/nginx scaled\n", "scale", "deployment", "nginx", "--replicas=3")
	follow(3)
	out = k.ok("get", "pod", "-l", "app=nginx", "-o", "wide")
	rows := lines(out)[1:]
	if len(rows) != 3 {
		t.Fatalf("get pod -o wide:\n%s", out)
	}
	nodes := map[string]bool{}
	for _, r := range rows {
		f := strings.Fields(r)
		if len(f) < 7 || f[2] != "Running" || !strings.HasPrefix(f[5], "10.244.") {
			t.Errorf("pod row %q: want Running with a 10.244 IP", r)
			continue
		}
		nodes[f[6]] = true
	}
	if len(nodes) != 2 {
		t.Errorf("pods not spread over both nodes:\n%s", out)
	}

	k.expectOut("deployment.apps/nginx scaled\n", "scale", "deployment", "nginx", "--replicas=1")
	follow(1)

	victim := strings.Fields(lines(k.ok("get", "pod", "-l", "app=nginx", "--no-headers"))[0])[0]
	k.ok("delete", "pod", victim, "--wait=false")
	eventually(t, "a replacement pod", 30*time.Second, func() error {
		out := k.run("get", "pod", "-l", "app=nginx", "--no-headers").stdout
		for _, l := range lines(out) {
			f := strings.Fields(l)
			if len(f) > 2 && f[0] != victim && f[2] == "Running" {
				return nil
			}
		}
		return fmt.Errorf("pods:\n%s", out)
	})
	follow(1)

	k.ok("delete", "deployment", "nginx")
	// The pods take their 30 s grace period on the simulated nodes: a hang guard
	// well beyond it (30 s raced it under load).
	eventually(t, "replicasets and pods gone", 90*time.Second, func() error {
		out := k.run("get", "rs,pods", "-l", "app=nginx", "--no-headers").stdout
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("still there:\n%s", out)
		}
		return nil
	})
	eventually(t, "empty endpoints", 10*time.Second, func() error {
		out := k.ok("get", "ep", "nginx")
		if !strings.Contains(out, "<none>") {
			return fmt.Errorf("kubectl get ep nginx:\n%s", out)
		}
		return nil
	})

	k.ok("create", "namespace", "x")
	k.ok("create", "deployment", "web", "--image=nginx", "-n", "x")
	// kubectl waits until the namespace is gone; its pods take their 30 s grace.
	k.expectOut("namespace \"x\" deleted\n", "delete", "namespace", "x", "--timeout=55s")
	if r := k.run("get", "namespace", "x"); !strings.Contains(r.stderr, `namespaces "x" not found`) {
		t.Errorf("namespace x still there after delete:\n%s", r)
	}
}

// TestControllersRollout: set image, rollout status, rollout undo on two simulated
// nodes; during the rolling update (maxUnavailable 0 for 2 replicas) the ready
// endpoints never drop below the replica count.
func TestControllersRollout(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)
	startAgent(t, s, "node-1")
	startAgent(t, s, "node-2")
	k.expectOut("deployment.apps/nginx created\n", "create", "deployment", "nginx", "--image=nginx:1.24", "--replicas=2")
	k.expectOut("service/nginx exposed\n", "expose", "deployment", "nginx", "--port=80")
	k.ok("rollout", "status", "deployment/nginx", "--timeout=60s")
	readyCount := func() int {
		r := k.run("get", "endpointslices", "-l", "kubernetes.io/service-name=nginx", "-o",
			`jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}`)
		return len(lines(strings.TrimSpace(r.stdout)))
	}
	eventually(t, "two ready endpoints", 30*time.Second, func() error {
		if n := readyCount(); n != 2 {
			return fmt.Errorf("%d ready endpoints", n)
		}
		return nil
	})

	stop := make(chan struct{})
	minReady := make(chan int, 1)
	go func() {
		low := 2
		for {
			select {
			case <-stop:
				minReady <- low
				return
			default:
			}
			if n := readyCount(); n < low {
				low = n
			}
		}
	}()
	k.expectOut("deployment.apps/nginx image updated\n", "set", "image", "deployment/nginx", "nginx=nginx:1.25")
	out := k.ok("rollout", "status", "deployment/nginx", "--timeout=90s")
	close(stop)
	if low := <-minReady; low < 2 {
		t.Errorf("ready endpoints dropped to %d during the rolling update", low)
	}
	if !strings.HasSuffix(out, "deployment \"nginx\" successfully rolled out\n") {
		t.Errorf("rollout status printed:\n%s", out)
	}
	k.expectOut("nginx:1.25", "get", "deploy", "nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	out = k.ok("rollout", "history", "deployment/nginx")
	if !regexp.MustCompile(`(?m)^1 +<none>$`).MatchString(out) || !regexp.MustCompile(`(?m)^2 +<none>$`).MatchString(out) {
		t.Errorf("rollout history:\n%s", out)
	}
	k.expectOut("deployment.apps/nginx rolled back\n", "rollout", "undo", "deployment/nginx")
	k.ok("rollout", "status", "deployment/nginx", "--timeout=90s")
	k.expectOut("nginx:1.24", "get", "deploy", "nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	k.expectOut("3", "get", "deploy", "nginx", "-o", `jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}`)
	out = k.ok("get", "rs", "-l", "app=nginx", "--no-headers")
	if len(lines(out)) != 2 {
		t.Errorf("want the two ReplicaSets of revisions 2 and 3:\n%s", out)
	}
}

// TestControllersSelectorlessMirroring: the seeds' test-app-no-selector with a
// hand-written Endpoints: the Endpoints stay as written and a mirrored EndpointSlice
// appears.
func TestControllersSelectorlessMirroring(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)
	k.ok("apply", "-f", "testdata/seed003-test-app-no-selector.yaml")
	k.ok("apply", "-f", "testdata/extra-test-app-no-selector-endpoints.yaml")
	eventually(t, "a mirrored slice", 20*time.Second, func() error {
		out := k.run("get", "endpointslices", "-l", "kubernetes.io/service-name=test-app-no-selector",
			"-o", `jsonpath={range .items[*]}{.metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.endpoints[0].addresses[0]} {.ports[0].port}{"\n"}{end}`).stdout
		if out != "endpointslicemirroring-controller.k8s.io 192.0.2.42 30050\n" {
			return fmt.Errorf("slices: %q", out)
		}
		return nil
	})
	out := k.ok("get", "ep", "test-app-no-selector")
	if !regexp.MustCompile(`(?m)^test-app-no-selector   192\.0\.2\.42:30050   \d+s$`).MatchString(out) {
		t.Errorf("kubectl get ep:\n%s", out)
	}
}

// TestControllersNodeLost: when a simulated node stops, its pods leave the ready
// endpoints once --node-monitor-grace-period passes, and are then evicted and replaced
// on the other node after --pod-eviction-timeout.
func TestControllersNodeLost(t *testing.T) {
	t.Parallel()
	// The grace period outlasts the simulated nodes' 10 s lease renewals: with a
	// shorter one node-2 went Unknown between renewals, and when both nodes were
	// down at once (FullDisruption) eviction paused, as it should, past the wait.
	s := startServer(t, "--node-monitor-grace-period=20s", "--pod-eviction-timeout=6s")
	k := s.kubectl(t)
	stop1 := startAgent(t, s, "node-1")
	startAgent(t, s, "node-2")
	eventually(t, "two Ready nodes", 30*time.Second, func() error {
		if out := k.run("get", "nodes").stdout; strings.Count(out, " Ready ") != 2 {
			return fmt.Errorf("nodes:\n%s", out)
		}
		return nil
	})
	k.ok("create", "deployment", "web", "--image=nginx", "--replicas=4")
	k.ok("expose", "deployment", "web", "--port=80")
	k.ok("rollout", "status", "deployment/web", "--timeout=60s")
	onNode1 := func() int {
		out := k.run("get", "pods", "-l", "app=web", "--field-selector=spec.nodeName=node-1", "--no-headers").stdout
		return len(lines(strings.TrimSpace(out)))
	}
	n1 := onNode1()
	if n1 == 0 || n1 == 4 {
		t.Fatalf("pods not spread: %d of 4 on node-1", n1)
	}
	ready := func() int {
		r := k.run("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
			`jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.nodeName}{"\n"}{end}`)
		return strings.Count(r.stdout, "node-1")
	}
	eventually(t, "node-1's pods in the ready endpoints", 20*time.Second, func() error {
		if got := ready(); got != n1 {
			return fmt.Errorf("%d ready endpoints on node-1, want %d", got, n1)
		}
		return nil
	})
	stop1()
	eventually(t, "node-1 NotReady", 45*time.Second, func() error {
		if out := k.run("get", "node", "node-1").stdout; !strings.Contains(out, "NotReady") {
			return fmt.Errorf("node:\n%s", out)
		}
		return nil
	})
	eventually(t, "node-1's pods out of the ready endpoints", 20*time.Second, func() error {
		if got := ready(); got != 0 {
			return fmt.Errorf("%d ready endpoints still on node-1", got)
		}
		return nil
	})
	eventually(t, "4 ready endpoints on node-2", 60*time.Second, func() error {
		r := k.run("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
			`jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.nodeName}{"\n"}{end}`)
		if n := strings.Count(r.stdout, "node-2"); n != 4 {
			return fmt.Errorf("%d ready endpoints on node-2", n)
		}
		return nil
	})
}
