package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// accessLine matches the nginx access-log line of a GET of path from the node.
func accessLine(path string) *regexp.Regexp {
	return regexp.MustCompile(`^\S+ - - \[[^]]+\] "GET ` + regexp.QuoteMeta(path) + ` HTTP/1\.1" 200 \d+ "-" "Go-http-client/1\.1"`)
}

// timestamped matches a line of `kubectl logs --timestamps`: kubelet's RFC 3339
// time with nine fractional digits, a space, the line.
var timestamped = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (.*)$`)

// TestLogs is `kubectl logs` through the API server and the node agent's kubelet
// server, as in Kubernetes: nginx's access log after a request, --tail,
// --timestamps, -f following a new request, --previous after a crash, and the
// errors kube-apiserver and the kubelet give.
func TestLogs(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	s := startUp(t)
	k := s.kubectl(t)
	k.ok("create", "deployment", "nginx", "--image=nginx")
	applyYAML(t, k, logsManifests)
	k.ok("rollout", "status", "deployment/nginx", "--timeout=90s")
	out := k.ok("get", "pod", "-l", "app=nginx", "-o", "jsonpath={.items[0].metadata.name} {.items[0].status.podIP}")
	pod, ip, _ := strings.Cut(out, " ")
	if _, err := httpGet("http://" + ip + "/"); err != nil {
		t.Fatalf("curl http://%s/: %v", ip, err)
	}

	t.Run("deploy/nginx shows the access-log line", func(t *testing.T) {
		k := k.on(t)
		eventually(t, "the access-log line in kubectl logs deploy/nginx", 10*time.Second, func() error {
			out := k.ok("logs", "deploy/nginx")
			for _, l := range lines(out) {
				if accessLine("/").MatchString(l) {
					return nil
				}
			}
			return fmt.Errorf("kubectl logs deploy/nginx:\n%s", out)
		})
		t.Logf("kubectl logs deploy/nginx:\n%s", k.ok("logs", "deploy/nginx"))
	})
	t.Run("--tail=1", func(t *testing.T) {
		k := k.on(t)
		out := k.ok("logs", pod, "--tail=1")
		if l := lines(out); len(l) != 1 || !accessLine("/").MatchString(l[0]) {
			t.Errorf("kubectl logs %s --tail=1:\n%s", pod, out)
		}
	})
	t.Run("--timestamps", func(t *testing.T) {
		k := k.on(t)
		out := k.ok("logs", pod, "--timestamps", "--tail=1")
		m := timestamped.FindStringSubmatch(strings.TrimSuffix(out, "\n"))
		if m == nil || !accessLine("/").MatchString(m[1]) {
			t.Errorf("kubectl logs %s --timestamps --tail=1:\n%s", pod, out)
			return
		}
		t.Logf("kubectl logs %s --timestamps --tail=1: %s", pod, out)
	})
	t.Run("--limit-bytes and --since", func(t *testing.T) {
		k := k.on(t)
		k.expectOut(strings.TrimSuffix(k.ok("logs", pod), "\n")[:5], "logs", pod, "--limit-bytes=5")
		if out := k.ok("logs", pod, "--since=1h"); !strings.Contains(out, `"GET / HTTP/1.1" 200`) {
			t.Errorf("kubectl logs --since=1h:\n%s", out)
		}
	})
	t.Run("-f follows a new request", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, k.bin, "logs", "-f", pod, "--tail=1")
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
		seen := make(chan string, 16)
		go func() {
			defer close(seen)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				seen <- sc.Text()
			}
		}()
		wait := func(re *regexp.Regexp) {
			t.Helper()
			for {
				select {
				case l, ok := <-seen:
					if !ok {
						t.Fatalf("kubectl logs -f ended: %v\n%s", cmd.Wait(), stderr.String())
					}
					if re.MatchString(l) {
						return
					}
				case <-ctx.Done():
					t.Fatalf("kubectl logs -f did not show %s\nstderr:\n%s", re, stderr.String())
				}
			}
		}
		wait(accessLine("/")) // --tail=1: the last request
		start := time.Now()
		if _, err := httpGet("http://" + ip + "/index.html?follow"); err != nil {
			t.Fatal(err)
		}
		wait(accessLine("/index.html?follow"))
		t.Logf("kubectl logs -f showed the new request %v after it", time.Since(start).Round(time.Millisecond))
		cancel()
		_ = cmd.Wait()
	})
	t.Run("two containers: -c, --all-containers, --since-time", func(t *testing.T) {
		k := k.on(t)
		// kubectl fetches the containers' logs in no fixed order (its requests
		// are a map: kubernetes/kubernetes#113869), so the lines are compared
		// sorted.
		eventually(t, "both containers' lines", 60*time.Second, func() error {
			if r := k.run("logs", "two", "--all-containers"); r.code != 0 || sortedOutput(r.stdout) != "from-a\nfrom-b\n" {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		k.expectOut("from-b\n", "logs", "two", "-c", "b")
		if r := k.run("logs", "two", "--all-containers", "--prefix"); r.code != 0 || sortedOutput(r.stdout) != "[pod/two/a] from-a\n[pod/two/b] from-b\n" {
			t.Errorf("want exit 0 and the lines [pod/two/a] from-a and [pod/two/b] from-b; got:\n%s", r)
		}
		k.expectOut("from-a\n", "logs", "two", "-c", "a", "--since-time=2020-01-01T00:00:00Z")
		k.expectOut("", "logs", "two", "-c", "a", "--since-time="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	})
	t.Run("--previous after a crash", func(t *testing.T) {
		k := k.on(t)
		eventually(t, "the crash pod restarted", 60*time.Second, func() error {
			n, err := jsonpath(k, "{.status.containerStatuses[0].restartCount}", "pod", "crash")
			if err != nil || n == "0" || n == "" {
				return fmt.Errorf("restartCount %q %v", n, err)
			}
			return nil
		})
		k.expectOut("hello\n", "logs", "crash", "--previous")
		// the current instance: the last one that ended (in the back-off), or a
		// new one that has printed its line
		eventually(t, "kubectl logs crash", 10*time.Second, func() error {
			if r := k.run("logs", "crash"); r.code != 0 || r.stdout != "hello\n" {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		k.expectErr("Error from server (BadRequest): previous terminated container \"nginx\" in pod \""+pod+"\" not found\n",
			"logs", pod, "--previous")
	})
	t.Run("errors", func(t *testing.T) {
		k := k.on(t)
		eventually(t, "the creating pod ContainerCreating", 30*time.Second, func() error {
			r, err := jsonpath(k, "{.status.containerStatuses[0].state.waiting.reason}", "pod", "creating")
			if err != nil || r != "ContainerCreating" {
				return fmt.Errorf("waiting reason %q %v", r, err)
			}
			return nil
		})
		k.expectErr("Error from server (BadRequest): container \"app\" in pod \"creating\" is waiting to start: ContainerCreating\n",
			"logs", "creating")
		k.expectErr("error: container nope is not valid for pod "+pod+"\n", "logs", pod, "-c", "nope")
		k.expectErr("Error from server (BadRequest): a container name must be specified for pod two, choose one of: [a b]\n",
			"get", "--raw", "/api/v1/namespaces/default/pods/two/log")
		k.expectErr("The PodLogOptions \""+pod+"\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0\n",
			"get", "--raw", "/api/v1/namespaces/default/pods/"+pod+"/log?tailLines=-1")
		k.expectErr("error: error from server (NotFound): pods \"nope\" not found in namespace \"default\"\n", "logs", "nope")
		// A node whose kubelet server does not answer.
		k.ok("patch", "node", "ghost", "--subresource=status", "--type=merge", "-p",
			`{"status":{"addresses":[{"type":"InternalIP","address":"192.0.2.1"}],"daemonEndpoints":{"kubeletEndpoint":{"port":10250}}}}`)
		r := k.run("logs", "ghost-pod")
		want := `Error from server: Get "https://192.0.2.1:10250/containerLogs/default/ghost-pod/app": dial tcp 192.0.2.1:10250: connect: network is unreachable` + "\n"
		if r.code == 0 || r.stderr != want {
			t.Errorf("want a non-zero exit and stderr %q; got:\n%s", want, r)
		}
	})
}

// logsManifests: a pod that crashes after a line of output, one that stays
// ContainerCreating (a volume type kubesvc does not mount), one with two
// containers, and a pod on a node whose kubelet server does not answer.
const logsManifests = `apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo hello; exit 1"]
---
apiVersion: v1
kind: Pod
metadata:
  name: creating
spec:
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    nfs:
      server: 192.0.2.9
      path: /exports
---
apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: busybox
    command: ["sh", "-c", "echo from-a; exec sleep 3600"]
  - name: b
    image: busybox
    command: ["sh", "-c", "echo from-b; exec sleep 3600"]
---
apiVersion: v1
kind: Node
metadata:
  name: ghost
---
apiVersion: v1
kind: Pod
metadata:
  name: ghost-pod
spec:
  nodeName: ghost
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
`

// sortedOutput is s's lines sorted, each ended by a newline.
func sortedOutput(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
