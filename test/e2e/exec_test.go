package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestExec is `kubectl exec`, `kubectl port-forward` and the API proxy through
// the API server and the node agent's kubelet server, as in Kubernetes, with
// every kubectl there is (the one on PATH, 1.31, 1.32, 1.33) over WebSocket
// (what kubectl ≥ 1.30 tries first) and SPDY (KUBECTL_REMOTE_COMMAND_WEBSOCKETS
// and KUBECTL_PORT_FORWARD_WEBSOCKETS=false), and client-go's remotecommand
// executors.
func TestExec(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	s := startUp(t)
	k := s.kubectl(t)
	k.ok("create", "deployment", "nginx", "--image=nginx")
	k.ok("expose", "deployment", "nginx", "--port=80")
	applyYAML(t, k, execManifests)
	k.ok("rollout", "status", "deployment/nginx", "--timeout=90s")
	k.ok("wait", "--for=condition=Ready", "pod/box", "pod/two", "pod/files", "--timeout=60s")
	out := k.ok("get", "pod", "-l", "app=nginx", "-o", "jsonpath={.items[0].metadata.name} {.items[0].status.podIP}")
	nginxPod, nginxIP, _ := strings.Cut(out, " ")

	for _, bin := range kubectlBinaries(t) {
		for _, transport := range []string{"websocket", "spdy"} {
			t.Run(filepath.Base(bin)+"/"+transport, func(t *testing.T) {
				k := s.kubectlBinary(t, bin)
				if transport == "spdy" {
					k = k.withEnv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false")
				}
				checkExec(t, k, nginxIP)
				checkExecTTY(t, k)
				checkPortForward(t, k, nginxPod)
			})
		}
	}
	for _, transport := range []string{"websocket", "spdy"} {
		t.Run("seed shell/"+transport, func(t *testing.T) {
			k := k.on(t)
			if transport == "spdy" {
				k = k.withEnv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false")
			}
			checkSeedShell(t, k, nginxIP)
			checkCp(t, k, transport)
		})
	}
	t.Run("proxy", func(t *testing.T) {
		checkAPIProxy(t, k.on(t), nginxPod)
	})
	t.Run("client-go remotecommand", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		checkRemoteCommand(t, cfg)
	})
	t.Run("errors", func(t *testing.T) {
		k := k.on(t)
		k.expectErr("Error from server (NotFound): pods \"nope\" not found\n", "exec", "nope", "--", "true")
		k.expectErr("Error from server (BadRequest): container nope is not valid for pod box\n",
			"exec", "box", "-c", "nope", "--", "true")
		// A command that is not there: the runtime's error, as kubelet reports it.
		r := k.run("exec", "box", "--", "no-such-command")
		if r.code == 0 || !strings.Contains(r.stderr, `executable file not found in $PATH`) {
			t.Errorf("want a non-zero exit and `executable file not found in $PATH`; got:\n%s", r)
		}
	})
}

// kubectlBinaries are the kubectl on PATH and the versioned ones next to it.
func kubectlBinaries(t *testing.T) []string {
	bins := []string{kubectlBin}
	resolved, err := filepath.EvalSymlinks(kubectlBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.31", "1.32", "1.33"} {
		bin := filepath.Join(filepath.Dir(resolved), "kubectl."+v)
		if _, err := exec.LookPath(bin); err == nil {
			bins = append(bins, bin)
		}
	}
	return bins
}

// checkExec: output and its streams, exit codes with kubectl's text, stdin,
// containers by name and by the default-container annotation, and traffic from
// inside a pod.
func checkExec(t *testing.T, k *kubectl, nginxIP string) {
	k.expectOut("box\n", "exec", "box", "--", "hostname")
	r := k.run("exec", "box", "--", "sh", "-c", "echo out; echo err >&2")
	if r.code != 0 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("want stdout out, stderr err; got:\n%s", r)
	}
	r = k.run("exec", "box", "--", "sh", "-c", "exit 3")
	if r.code != 3 || r.stderr != "command terminated with exit code 3\n" {
		t.Errorf("want exit 3 and %q; got:\n%s", "command terminated with exit code 3", r)
	}
	if r := runStdin(t, k, "hi\n", "exec", "-i", "box", "--", "cat"); r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("echo hi | kubectl exec -i box -- cat: %s", r)
	}
	k.expectOut("b\n", "exec", "two", "--", "sh", "-c", "echo $NAME")
	k.expectOut("a\n", "exec", "two", "-c", "a", "--", "sh", "-c", "echo $NAME")
	if out, ok := k.try("exec", "box", "--", "curl", "-s", "http://"+nginxIP); ok && !strings.Contains(out, "Welcome to nginx!") {
		t.Errorf("kubectl exec box -- curl -s http://%s:\n%s", nginxIP, out)
	}
}

// checkExecTTY runs `kubectl exec -it` on a terminal (script(1)'s), whose size
// kubectl sends: the pod's hostname and the size as stty sees it in the pod.
func checkExecTTY(t *testing.T, k *kubectl) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	line := fmt.Sprintf("stty cols 123 rows 45; %s exec -it box -- sh -c 'hostname; stty size; tty; exit 4'", k.bin)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", line, "/dev/null")
	cmd.Dir, cmd.Env = pkgDir, k.environ()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Errorf("kubectl exec -it: want exit 4, got %v\n%s", err, out)
	}
	text := strings.ReplaceAll(string(out), "\r", "")
	for _, want := range []string{"box\n", "45 123\n", "/dev/pts/"} {
		if !strings.Contains(text, want) {
			t.Errorf("kubectl exec -it box -- sh -c 'hostname; stty size; tty': no %q in\n%s", want, text)
		}
	}
}

// checkSeedShell is the seeds' debugging session, typed on a terminal:
// `kubectl exec -it POD -- sh`, then `apk add curl` (the package-manager shim,
// first in the pod's PATH, says the machine has curl), then `curl -s
// http://NGINX_POD_IP:80` (the welcome page), then `exit`.
func checkSeedShell(t *testing.T, k *kubectl, nginxIP string) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed on this machine: a pod runs the machine's programs")
	}
	term := startTerminal(t, k, k.bin+" exec -it box -- sh")
	term.expect("# ", 30*time.Second)
	term.typeLine("apk add curl")
	term.expect("curl is available from this machine", 30*time.Second)
	term.expect("# ", 10*time.Second)
	term.typeLine("curl -s http://" + nginxIP + ":80")
	term.expect("Welcome to nginx!", 30*time.Second)
	term.expect("# ", 10*time.Second)
	term.typeLine("exit")
	if code := term.wait(30 * time.Second); code != 0 {
		t.Errorf("kubectl exec -it box -- sh: exit %d after `exit`, want 0\n%s", code, term.output())
	}
}

// checkCp is `kubectl cp` both ways: tar through exec (the machine's tar, which
// the pod runs), into and out of the emptyDir of pod files.
func checkCp(t *testing.T, k *kubectl, name string) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("tar is not installed on this machine: a pod runs the machine's programs")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	content := strings.Repeat("kubectl cp over "+name+"\n", 10000)
	if err := os.WriteFile(in, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	k.ok("cp", in, "files:/tmp/"+name+".txt")
	if got := k.ok("exec", "files", "--", "cat", "/tmp/"+name+".txt"); got != content {
		t.Errorf("kubectl cp into the pod: the pod has %d bytes, want %d", len(got), len(content))
	}
	out := filepath.Join(dir, "out.txt")
	k.ok("cp", "files:/tmp/"+name+".txt", out)
	if got, err := os.ReadFile(out); err != nil || string(got) != content {
		t.Errorf("kubectl cp out of the pod: %d bytes (%v), want %d", len(got), err, len(content))
	}
}

// terminal is a command line run under script(1)'s pseudo-terminal, typed into
// by the test: what interactive kubectl sessions need.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *syncBuffer
	done chan struct{}
	// seen is how much of the output earlier expects have consumed.
	seen int
}

// startTerminal runs `script -qec LINE /dev/null` with kubectl's environment, on
// an 80x24 terminal; it is killed by the end of the test.
func startTerminal(t *testing.T, k *kubectl, line string) *terminal {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, "script", "-qec", "stty cols 80 rows 24; "+line, "/dev/null")
	cmd.Dir, cmd.Env = pkgDir, k.environ()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, cmd: cmd, in: in, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = term.out, term.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(term.done)
	}()
	t.Cleanup(func() {
		cancel()
		_ = in.Close()
		<-term.done
	})
	return term
}

// output is everything printed so far, without carriage returns.
func (tm *terminal) output() string {
	return strings.ReplaceAll(tm.out.String(), "\r", "")
}

// expect waits until want is printed after what earlier expects matched, and
// fails the test (fatally) when it is not within timeout.
func (tm *terminal) expect(want string, timeout time.Duration) {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exited := false
		select {
		case <-tm.done:
			exited = true // all its output is in
		default:
		}
		out := tm.output()
		if i := strings.Index(out[tm.seen:], want); i >= 0 {
			tm.seen += i + len(want)
			return
		}
		if exited {
			tm.t.Fatalf("%q: exited before printing %q:\n%s", tm.cmd.Args[2], want, out)
		}
		time.Sleep(50 * time.Millisecond)
		if time.Now().After(deadline) {
			tm.t.Fatalf("%q: no %q within %v:\n%s", tm.cmd.Args[2], want, timeout, out)
		}
	}
}

// typeLine types s and Enter.
func (tm *terminal) typeLine(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.in, s+"\n"); err != nil {
		tm.t.Fatalf("typing %q: %v", s, err)
	}
}

// wait waits for the command line to end and returns its exit code (-1 when it
// did not end within timeout).
func (tm *terminal) wait(timeout time.Duration) int {
	select {
	case <-tm.done:
		return tm.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// checkPortForward: a pod, a deployment and a service, one and two ports, the
// welcome page through each.
func checkPortForward(t *testing.T, k *kubectl, nginxPod string) {
	for _, tc := range []struct {
		target string
		ports  []string
	}{
		{target: "pod/" + nginxPod, ports: []string{"18080:80"}},
		{target: "deployment/nginx", ports: []string{"18081:80"}},
		{target: "service/nginx", ports: []string{"18082:80"}},
		{target: "pod/" + nginxPod, ports: []string{"18083:80", "18084:80"}},
	} {
		stop := startPortForward(t, k, tc.target, tc.ports...)
		for _, p := range tc.ports {
			local, _, _ := strings.Cut(p, ":")
			for i := range 2 { // two connections over one session
				body, err := httpGet("http://127.0.0.1:" + local + "/")
				if err != nil || !strings.Contains(body, "Welcome to nginx!") {
					t.Errorf("port-forward %s %s, GET %d: %v\n%s", tc.target, p, i, err, body)
				}
			}
		}
		stop()
	}
}

// startPortForward runs `kubectl port-forward target ports...` until stop, once
// it says it forwards every port.
func startPortForward(t *testing.T, k *kubectl, target string, ports ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"port-forward", target}, ports...)...)
	cmd.Dir, cmd.Env = pkgDir, k.environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		cancel()
		_ = cmd.Wait()
	}
	forwarding := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:\d+ -> \d+$`)
	seen := make(chan struct{})
	go func() {
		n := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if forwarding.MatchString(sc.Text()) {
				if n++; n == len(ports) {
					close(seen)
				}
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		stop()
		t.Fatalf("kubectl port-forward %s %v did not start:\n%s", target, ports, stderr.String())
	}
	return stop
}

// runStdin runs kubectl with stdin.
func runStdin(t *testing.T, k *kubectl, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Dir, cmd.Env = pkgDir, k.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// checkRemoteCommand runs exec with client-go's WebSocket and SPDY executors:
// output, stdin, and the exit code as a CodeExitError.
func checkRemoteCommand(t *testing.T, cfg *rest.Config) {
	u, err := url.Parse(strings.TrimSuffix(cfg.Host, "/") +
		"/api/v1/namespaces/default/pods/box/exec?command=sh&command=-c&command=cat%3B+exit+5&stdin=true&stdout=true&stderr=true")
	if err != nil {
		t.Fatal(err)
	}
	executors := map[string]func() (remotecommand.Executor, error){
		"websocket": func() (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, u.String())
		},
		"spdy": func() (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
		},
	}
	for name, newExec := range executors {
		t.Run(name, func(t *testing.T) {
			ex, err := newExec()
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err = ex.StreamWithContext(t.Context(), remotecommand.StreamOptions{
				Stdin: strings.NewReader("from " + name + "\n"), Stdout: &stdout, Stderr: &stderr})
			var exitErr utilexec.CodeExitError
			if !errors.As(err, &exitErr) || exitErr.Code != 5 {
				t.Errorf("want a CodeExitError with code 5, got %T %v", err, err)
			}
			if stdout.String() != "from "+name+"\n" {
				t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

// checkAPIProxy: services/proxy (Service port to targetPort, 503 without a
// ready endpoint), pods/proxy, nodes/proxy to the kubelet server, and `kubectl
// proxy` in front of them.
func checkAPIProxy(t *testing.T, k *kubectl, nginxPod string) {
	for _, path := range []string{
		"/api/v1/namespaces/default/services/nginx:80/proxy/",
		"/api/v1/namespaces/default/services/http:nginx:80/proxy/index.html",
		"/api/v1/namespaces/default/pods/" + nginxPod + "/proxy/",
		"/api/v1/namespaces/default/pods/" + nginxPod + ":80/proxy/",
	} {
		if out, ok := k.try("get", "--raw", path); ok && !strings.Contains(out, "Welcome to nginx!") {
			t.Errorf("kubectl get --raw %s:\n%s", path, out)
		}
	}
	node := k.ok("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
	k.expectOut("ok", "get", "--raw", "/api/v1/nodes/"+node+"/proxy/healthz")
	k.ok("create", "service", "clusterip", "empty", "--tcp=80:8080")
	k.expectErr("Error from server (ServiceUnavailable): no endpoints available for service \"empty:80\"\n",
		"get", "--raw", "/api/v1/namespaces/default/services/empty:80/proxy/")
	k.expectErr("Error from server (ServiceUnavailable): no service port 81 found for service \"nginx\"\n",
		"get", "--raw", "/api/v1/namespaces/default/services/nginx:81/proxy/")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, "proxy", "--port=18001")
	cmd.Dir, cmd.Env = pkgDir, k.environ()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	eventually(t, "kubectl proxy serves the welcome page", 20*time.Second, func() error {
		body, err := httpGet("http://127.0.0.1:18001/api/v1/namespaces/default/services/nginx:80/proxy/")
		if err != nil || !strings.Contains(body, "Welcome to nginx!") {
			return fmt.Errorf("%v %s\nkubectl proxy: %s", err, body, stderr.String())
		}
		return nil
	})
}

// execManifests: a pod to exec in, one with an emptyDir on /tmp (a folder the
// machine has: a pod's missing mount target would be made on the machine) for
// kubectl cp, and one with two containers whose default is b (each prints its
// name from $NAME).
const execManifests = `apiVersion: v1
kind: Pod
metadata:
  name: box
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: files
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - name: scratch
      mountPath: /tmp
  volumes:
  - name: scratch
    emptyDir: {}
---
apiVersion: v1
kind: Pod
metadata:
  name: two
  annotations:
    kubectl.kubernetes.io/default-container: b
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: busybox
    command: ["sleep", "3600"]
    env:
    - name: NAME
      value: a
  - name: b
    image: busybox
    command: ["sleep", "3600"]
    env:
    - name: NAME
      value: b
`
