package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/agent/runtime/cgroups"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// upLine is what `kubesvc up` prints once the API answers.
var upLine = regexp.MustCompile(`^kubesvc is up at (https://\S+) \((.*)\)$`)

// startUp runs `kubesvc up` (API server, controllers, the real node agent) with a
// data dir of the test's and stops it with SIGTERM when the test ends. It must run
// inside namespaces of the test's own (isolate.Run): the node agent programs the
// network it runs in.
func startUp(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	requireKubectl(t)
	dataDir := t.TempDir()
	// Registered after TempDir's removal, so it runs before it: the pods outlive
	// the agent (as with the kubelet) and their network namespaces stay mounted.
	t.Cleanup(func() { unmountUnder(t, dataDir) })
	args := append([]string{"up", "--data-dir", dataDir, "--secure-port", "0"}, extraArgs...)
	cmd := exec.Command(kubesvcBin, args...)
	cmd.Dir = dataDir
	s := &server{cmd: cmd, log: &syncBuffer{}, Kubeconfig: filepath.Join(dataDir, "admin.kubeconfig"), DataDir: dataDir}
	cmd.Stderr = s.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", kubesvcBin, err)
	}
	waitDone := make(chan struct{})
	up := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.log.WriteString(sc.Text() + "\n")
			if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
				up <- m
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(waitDone)
	}()
	stopped := false
	s.stop = func(t *testing.T) {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waitDone:
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("kubesvc up exited with %v after SIGTERM, want 0", cmd.ProcessState)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("kubesvc up (pid %d) did not stop within 30s of SIGTERM; killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-waitDone
		}
	}
	t.Cleanup(func() {
		select {
		case <-waitDone:
			if !stopped {
				t.Errorf("kubesvc up exited during the test (%v)", cmd.ProcessState)
			}
		default:
			s.stop(t)
		}
		if t.Failed() {
			t.Logf("kubesvc up log (last 8 KiB):\n%s", tail(s.log.String(), 8192))
		}
	})
	select {
	case m := <-up:
		s.URL = m[1]
		if !strings.Contains(m[2], "pods run as processes on this machine") {
			t.Errorf("kubesvc up says %q, want a real node", m[2])
		}
	case <-waitDone:
		t.Fatalf("kubesvc up exited before it was up (%v):\n%s", cmd.ProcessState, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("kubesvc up not up after 60s:\n%s", s.log.String())
	}
	return s
}

// unmountUnder detaches every mount under dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// mountinfo escapes space, tab, newline and backslash as octal
		p := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", p, err)
		}
	}
}

// applyYAML writes manifest to a file and runs kubectl apply -f on it.
func applyYAML(t *testing.T, k *kubectl, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	k.ok("apply", "-f", f)
}

// httpGet fetches url from the test's network namespace (the node's, for `kubesvc
// up`) on a new connection and returns the body.
func httpGet(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	// A new connection each time: through a Service, each request is balanced.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// jsonpath runs kubectl get with a jsonpath output.
func jsonpath(k *kubectl, path string, args ...string) (string, error) {
	r := k.run(append(append([]string{"get"}, args...), "-o", "jsonpath="+path)...)
	if r.code != 0 {
		return "", fmt.Errorf("%s", r)
	}
	return r.stdout, nil
}

// TestUpRealNode is the node agent's acceptance on one machine: `kubesvc up` in a
// network namespace with only loopback (as ../shared/tools/isolated gives) makes
// it a Ready Node; nginx and kubernetes-bootcamp pods run with IPs from the Node's
// podCIDR and answer from the node; readiness drives the endpoints, liveness
// restarts, a crashing container backs off, and an unknown image says why it
// cannot run until command: is set.
func TestUpRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if isolate.Run(t) {
		return
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	node := strings.ToLower(host)
	start := time.Now()
	s := startUp(t)
	k := s.kubectl(t)
	eventually(t, "the node Ready", 60*time.Second, func() error {
		st, err := jsonpath(k, `{.status.conditions[?(@.type=="Ready")].status}`, "node", node)
		if err != nil || st != "True" {
			return fmt.Errorf("Ready=%q %v", st, err)
		}
		return nil
	})
	t.Logf("node %s Ready %v after kubesvc up started", node, time.Since(start).Round(time.Millisecond))
	// The machine runs the control plane: kubectl shows the role, as kind's,
	// minikube's and Docker Desktop's one node do.
	eventually(t, "ROLES control-plane", 10*time.Second, func() error {
		out := k.run("get", "node", node).stdout
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(node) + ` +Ready +control-plane +`).MatchString(out) {
			return fmt.Errorf("kubectl get node:\n%s", out)
		}
		return nil
	})
	podCIDR, err := jsonpath(k, "{.spec.podCIDR}", "node", node)
	if err != nil {
		t.Fatal(err)
	}
	cidr, err := netip.ParsePrefix(podCIDR)
	if err != nil {
		t.Fatalf("node podCIDR %q: %v", podCIDR, err)
	}
	nodeIP, err := jsonpath(k, `{.status.addresses[?(@.type=="InternalIP")].address}`, "node", node)
	if err != nil {
		t.Fatal(err)
	}
	// The namespace has no address but loopback: the node's is its pod gateway.
	if want := cidr.Addr().Next().String(); nodeIP != want {
		t.Errorf("node InternalIP %q, want the pod network gateway %s", nodeIP, want)
	}

	dir := t.TempDir() // probe switches: files the containers see (the machine's filesystem)
	for _, f := range []string{"ready", "alive"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k.ok("create", "deployment", "nginx", "--image=nginx", "--replicas=2")
	k.ok("create", "deployment", "kubernetes-bootcamp", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1")
	applyYAML(t, k, fmt.Sprintf(probeManifests, dir))
	k.ok("run", "nope", "--image=example.com/team/app:1.0")
	k.ok("run", "nope-command", "--image=example.com/team/app:1.0", "--command", "--", "sleep", "3600")

	t.Run("nginx", func(t *testing.T) {
		k := k.on(t)
		k.ok("rollout", "status", "deployment/nginx", "--timeout=60s")
		t.Logf("kubectl get pod -l app=nginx -o wide:\n%s", k.ok("get", "pod", "-l", "app=nginx", "-o", "wide"))
		out := k.ok("get", "pod", "-l", "app=nginx", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,STATUS:.status.phase,IP:.status.podIP,NODE:.spec.nodeName")
		rows := lines(strings.TrimSpace(out))
		if len(rows) != 2 {
			t.Fatalf("nginx pods:\n%s", out)
		}
		for _, row := range rows {
			f := strings.Fields(row)
			ip, err := netip.ParseAddr(f[2])
			if f[1] != "Running" || f[3] != node || err != nil || !cidr.Contains(ip) {
				t.Errorf("pod %q, want Running on %s with an IP from %s", row, node, cidr)
				continue
			}
			body, err := httpGet("http://" + ip.String())
			if err != nil || !strings.Contains(body, "<title>Welcome to nginx!</title>") {
				t.Errorf("curl http://%s: %v\n%s", ip, err, body)
			}
		}
	})
	t.Run("built-ins run in the container's init", func(t *testing.T) {
		// A built-in image's program runs in-process in the container's kubesvc
		// process (the binary starts once per container): no `kubesvc
		// builtin-image` process exists; an nginx container is one
		// `containerinit run` process, its own shim (or, with stdin, a tty or
		// runAsUser, the init its shim started).
		inits, builtins := 0, 0
		entries, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil {
				continue
			}
			args := strings.Split(string(b), "\x00")
			if len(args) > 2 && args[1] == "builtin-image" {
				builtins++
			}
			if len(args) > 2 && args[1] == "containerinit" && (args[2] == "init" || args[2] == "run") {
				inits++
			}
		}
		if builtins != 0 || inits < 2 {
			t.Errorf("%d builtin-image processes (want 0), %d container inits (want ≥ 2: the nginx pods)", builtins, inits)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		// kubelet's read-only port: /healthz and /metrics with kubelet's names.
		if body, err := httpGet("http://127.0.0.1:10255/healthz"); err != nil || body != "ok" {
			t.Errorf("GET :10255/healthz = %q, %v", body, err)
		}
		body, err := httpGet("http://127.0.0.1:10255/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"kubelet_running_pods ", `kubelet_running_containers{container_state="running"} `, "kubelet_pod_start_duration_seconds_count "} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
	t.Run("kubernetes-bootcamp", func(t *testing.T) {
		k := k.on(t)
		k.ok("rollout", "status", "deployment/kubernetes-bootcamp", "--timeout=60s")
		out := k.ok("get", "pod", "-l", "app=kubernetes-bootcamp", "-o", "jsonpath={.items[0].metadata.name} {.items[0].status.podIP}")
		name, ip, _ := strings.Cut(out, " ")
		body, err := httpGet("http://" + ip + ":8080")
		if want := "Hello Kubernetes bootcamp! | Running on: " + name + " | v=1\n"; err != nil || body != want {
			t.Errorf("curl %s:8080 = %q, %v; want %q", ip, body, err, want)
		}
	})
	t.Run("readiness", func(t *testing.T) {
		k := k.on(t)
		k.ok("wait", "--for=condition=Ready", "pod/ready", "--timeout=60s")
		podIP, err := jsonpath(k, "{.status.podIP}", "pod", "ready")
		if err != nil {
			t.Fatal(err)
		}
		endpoints := func() string {
			ips, _ := jsonpath(k, "{.subsets[*].addresses[*].ip}", "endpoints", "ready")
			return ips
		}
		eventually(t, "the ready pod in the endpoints", 30*time.Second, func() error {
			if got := endpoints(); got != podIP {
				return fmt.Errorf("endpoints %q, want %q", got, podIP)
			}
			return nil
		})
		// periodSeconds 1 × failureThreshold 2: out of the endpoints within about 3 s.
		failing := time.Now()
		if err := os.Remove(filepath.Join(dir, "ready")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the unready pod out of the endpoints", 30*time.Second, func() error {
			if got := endpoints(); got != "" {
				return fmt.Errorf("endpoints %q", got)
			}
			return nil
		})
		t.Logf("out of the endpoints %v after its readiness probe began to fail (periodSeconds 1 × failureThreshold 2)", time.Since(failing).Round(time.Millisecond))
		passing := time.Now()
		if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pod back in the endpoints", 30*time.Second, func() error {
			if got := endpoints(); got != podIP {
				return fmt.Errorf("endpoints %q, want %q", got, podIP)
			}
			return nil
		})
		t.Logf("back in the endpoints %v after its readiness probe passed again", time.Since(passing).Round(time.Millisecond))
	})
	t.Run("liveness", func(t *testing.T) {
		k := k.on(t)
		k.ok("wait", "--for=condition=Ready", "pod/alive", "--timeout=60s")
		if err := os.Remove(filepath.Join(dir, "alive")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a restart after failed liveness probes", 60*time.Second, func() error {
			n, err := jsonpath(k, "{.status.containerStatuses[0].restartCount}", "pod", "alive")
			if err != nil || n == "0" {
				return fmt.Errorf("restartCount %q %v", n, err)
			}
			return nil
		})
		if err := os.WriteFile(filepath.Join(dir, "alive"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		events := k.ok("get", "events", "--field-selector", "involvedObject.name=alive", "-o", "custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
		for _, want := range []string{"Unhealthy", "Container app failed liveness probe, will be restarted"} {
			if !strings.Contains(events, want) {
				t.Errorf("events of pod alive lack %q:\n%s", want, events)
			}
		}
	})
	t.Run("crash loop", func(t *testing.T) {
		k := k.on(t)
		backOff := regexp.MustCompile(`^back-off (\d+)s restarting failed container=app pod=crash_default\(`)
		seen := map[string]bool{}
		// Two back-offs in a row (10 s, 20 s, 40 s, ...): the pod was created
		// with the others, and under load the subtests before this one may take
		// long enough that the first back-offs have passed when it starts.
		eventually(t, "CrashLoopBackOff with a growing back-off", 150*time.Second, func() error {
			out, err := jsonpath(k, "{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}|{.status.containerStatuses[0].lastState.terminated.exitCode}", "pod", "crash")
			if err != nil {
				return err
			}
			parts := strings.SplitN(out, "|", 3)
			if parts[0] == "CrashLoopBackOff" {
				if m := backOff.FindStringSubmatch(parts[1]); m != nil && parts[2] == "1" {
					seen[m[1]] = true
				}
			}
			for b := range seen {
				n, _ := strconv.Atoi(b)
				if seen[strconv.Itoa(2*n)] {
					return nil
				}
			}
			return fmt.Errorf("back-offs seen %v, want two in a row; now %q", seen, out)
		})
		if f := strings.Fields(k.ok("get", "pod", "crash", "--no-headers")); len(f) < 3 || (f[2] != "CrashLoopBackOff" && f[2] != "Error") {
			t.Errorf("kubectl get pod crash: %q, want STATUS CrashLoopBackOff (or Error between restarts)", f)
		}
	})
	t.Run("unknown image", func(t *testing.T) {
		k := k.on(t)
		eventually(t, "ImagePullBackOff", 60*time.Second, func() error {
			out, err := jsonpath(k, "{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}", "pod", "nope")
			if err != nil {
				return err
			}
			reason, msg, _ := strings.Cut(out, "|")
			if reason != "ImagePullBackOff" {
				return fmt.Errorf("waiting %q", out)
			}
			for _, want := range []string{`image "example.com/team/app:1.0"`, "built-in images are", "set command: in the container"} {
				if !strings.Contains(msg, want) {
					t.Errorf("ImagePullBackOff message lacks %q: %s", want, msg)
				}
			}
			return nil
		})
		k.ok("wait", "--for=condition=Ready", "pod/nope-command", "--timeout=60s")
	})
	t.Run("memory limit", func(t *testing.T) {
		if _, err := cgroups.Detect(""); err != nil {
			t.Skipf("this machine's cgroups cannot enforce limits: %v", err)
		}
		k := k.on(t)
		applyYAML(t, k, oomManifest)
		eventually(t, "OOMKilled", 60*time.Second, func() error {
			out, err := jsonpath(k, "{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}", "pod", "oom")
			if err != nil || out != "OOMKilled 137" {
				return fmt.Errorf("terminated %q %v", out, err)
			}
			return nil
		})
		if f := strings.Fields(k.ok("get", "pod", "oom", "--no-headers")); len(f) < 3 || f[2] != "OOMKilled" {
			t.Errorf("kubectl get pod oom: %q, want STATUS OOMKilled", f)
		}
		// The container's cgroup (on the machine: cgroups are not namespaced
		// here) goes with the pod.
		id, err := jsonpath(k, "{.status.containerStatuses[0].containerID}", "pod", "oom")
		if err != nil || !strings.HasPrefix(id, "kubesvc://") {
			t.Fatalf("containerID %q %v", id, err)
		}
		group := filepath.Join(cgroups.DefaultRoot, "memory", cgroups.Parent, strings.TrimPrefix(id, "kubesvc://"))
		if _, err := os.Stat(filepath.Join(cgroups.DefaultRoot, "cgroup.controllers")); err == nil {
			group = filepath.Join(cgroups.DefaultRoot, cgroups.Parent, strings.TrimPrefix(id, "kubesvc://")) // v2
		}
		k.ok("delete", "pod", "oom", "--wait=true")
		eventually(t, "the container's cgroup removed", 30*time.Second, func() error {
			if _, err := os.Stat(group); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s: %v", group, err)
			}
			return nil
		})
	})
}

// oomManifest is a pod whose shell holds 200 MB in a variable, over its 32 MiB
// memory limit.
const oomManifest = `apiVersion: v1
kind: Pod
metadata:
  name: oom
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]
    resources:
      limits:
        memory: 32Mi
        cpu: 500m
`

// probeManifests are the probe pods of TestUpRealNode; %[1]s is the directory of
// the probe switch files.
const probeManifests = `apiVersion: v1
kind: Service
metadata:
  name: ready
spec:
  selector:
    app: ready
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: ready
  labels:
    app: ready
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
    readinessProbe:
      exec:
        command: ["test", "-e", "%[1]s/ready"]
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: alive
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    livenessProbe:
      exec:
        command: ["test", "-e", "%[1]s/alive"]
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "exit 1"]
`
