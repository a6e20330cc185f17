package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestClusterDNS: `kubesvc up` runs the cluster DNS on its node behind the
// kube-system/kube-dns Service (10.96.0.10); pods get it as their nameserver,
// and Service names resolve from the node and from a pod, a new Service at once.
func TestClusterDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if isolate.Run(t) {
		return
	}
	s := startUp(t)
	k := s.kubectl(t)
	if ip, err := jsonpath(k, "{.spec.clusterIP}", "svc", "-n", "kube-system", "kube-dns"); err != nil || ip != "10.96.0.10" {
		t.Fatalf("kube-system/kube-dns cluster IP %q (%v), want 10.96.0.10", ip, err)
	}
	dig := func(name string) (string, error) {
		out, err := exec.Command("dig", "+short", "+time=2", "+tries=1", "@10.96.0.10", name).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	eventually(t, "the cluster DNS answering from the node", 60*time.Second, func() error {
		out, err := dig("kubernetes.default.svc.cluster.local")
		if err != nil || out != "10.96.0.1" {
			return fmt.Errorf("dig kubernetes.default.svc.cluster.local = %q (%v)", out, err)
		}
		return nil
	})
	// As on a kubeadm cluster: the DNS server shows as a pod per node with the
	// k8s-app=kube-dns label, and kube-dns's Endpoints list it.
	node, _ := jsonpath(k, "{.items[0].metadata.name}", "nodes")
	eventually(t, "the node's DNS pod ready and in kube-dns's endpoints", 30*time.Second, func() error {
		pods, err := jsonpath(k, `{range .items[*]}{.metadata.name} {.status.phase} {.status.podIP} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`,
			"pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")
		if err != nil {
			return err
		}
		f := strings.Fields(pods)
		if len(f) != 4 || f[0] != "kube-dns-"+node || f[1] != "Running" || f[3] != "True" {
			return fmt.Errorf("kube-dns pods: %q", pods)
		}
		eps, err := jsonpath(k, "{.subsets[0].addresses[0].ip} {.subsets[0].addresses[0].targetRef.name}", "endpoints", "-n", "kube-system", "kube-dns")
		if err != nil || eps != f[2]+" kube-dns-"+node {
			return fmt.Errorf("kube-dns endpoints %q (%v), want the pod's %s", eps, err, f[2])
		}
		return nil
	})
	k.ok("delete", "pod", "-n", "kube-system", "kube-dns-"+node)
	eventually(t, "the deleted DNS pod made again", 30*time.Second, func() error {
		st, err := jsonpath(k, `{.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}`, "pod", "-n", "kube-system", "kube-dns-"+node)
		if err != nil || strings.TrimSpace(st) != "Running True" {
			return fmt.Errorf("pod %q (%v)", st, err)
		}
		return nil
	})
	eventually(t, "the cluster DNS answering after its pod was made again", 30*time.Second, func() error {
		if out, err := dig("kubernetes.default.svc.cluster.local"); err != nil || out != "10.96.0.1" {
			return fmt.Errorf("dig = %q (%v)", out, err)
		}
		return nil
	})

	k.ok("create", "service", "clusterip", "my-service", "--tcp=80")
	created := time.Now()
	ip, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "my-service")
	eventually(t, "the new Service resolving", 30*time.Second, func() error {
		out, err := dig("my-service.default.svc.cluster.local")
		if err != nil || out != ip {
			return fmt.Errorf("dig = %q (%v), want %s", out, err, ip)
		}
		return nil
	})
	t.Logf("my-service resolved %v after its create returned (kubectl and dig included)", time.Since(created).Round(time.Millisecond))
	k.ok("delete", "service", "my-service")
	eventually(t, "the deleted Service gone from DNS", 30*time.Second, func() error {
		if out, _ := dig("my-service.default.svc.cluster.local"); out != "" {
			return fmt.Errorf("still answers %q", out)
		}
		return nil
	})

	// From a pod, as the Kubernetes docs show (without -it: the answer is read
	// from the pod's log).
	k.ok("run", "dnsutils", "--image=busybox", "--restart=Never", "--", "sh", "-c", "cat /etc/resolv.conf; nslookup kubernetes.default")
	eventually(t, "nslookup in a pod", 60*time.Second, func() error {
		phase, _ := jsonpath(k, "{.status.phase}", "pod", "dnsutils")
		if phase != "Succeeded" {
			return fmt.Errorf("pod phase %q", phase)
		}
		return nil
	})
	out := k.ok("logs", "dnsutils")
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "Name:\tkubernetes.default.svc.cluster.local", "Address: 10.96.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the pod's output lacks %q:\n%s", want, out)
		}
	}
}

// TestClusterDNSFromPods is the DNS issue's acceptance from pods: the four name
// forms of a Service from a pod in its namespace, a headless Service's pods,
// SRV for a named port, PTR for a Service IP, an ExternalName's CNAME, and the
// Kubernetes docs' `kubectl run -it --rm dnsutils --image=busybox -- nslookup
// kubernetes.default` (attach on a terminal).
func TestClusterDNSFromPods(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if isolate.Run(t) {
		return
	}
	s := startUp(t)
	k := s.kubectl(t)
	k.ok("create", "namespace", "my-ns")
	applyYAML(t, k, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: my-ns}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: my-service, namespace: my-ns}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: my-ns}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: my-db, namespace: my-ns}
spec: {type: ExternalName, externalName: my.database.example.com}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: my-ns}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
`)
	k.ok("rollout", "status", "-n", "my-ns", "deployment/web", "--timeout=90s")
	k.ok("wait", "-n", "my-ns", "--for=condition=Ready", "pod/client", "--timeout=60s")
	clusterIP, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "-n", "my-ns", "my-service")
	podIPs, _ := jsonpath(k, "{.items[*].status.podIP}", "pods", "-n", "my-ns", "-l", "app=web")
	nslookup := func(args ...string) (string, error) {
		out, ok := k.try(append([]string{"exec", "-n", "my-ns", "client", "--", "nslookup"}, args...)...)
		if !ok {
			return out, fmt.Errorf("nslookup %v failed:\n%s", args, out)
		}
		return out, nil
	}
	for _, name := range []string{"my-service", "my-service.my-ns", "my-service.my-ns.svc", "my-service.my-ns.svc.cluster.local"} {
		eventually(t, "nslookup "+name, 30*time.Second, func() error {
			out, err := nslookup(name)
			if err != nil || !strings.Contains(out, "Name:\tmy-service.my-ns.svc.cluster.local") || !strings.Contains(out, "Address: "+clusterIP) {
				return fmt.Errorf("%v\n%s", err, out)
			}
			return nil
		})
	}
	t.Run("headless lists each pod", func(t *testing.T) {
		out, err := nslookup("headless")
		for _, ip := range strings.Fields(podIPs) {
			if err != nil || !strings.Contains(out, "Address: "+ip) {
				t.Errorf("nslookup headless lacks %s (%v):\n%s", ip, err, out)
			}
		}
	})
	t.Run("SRV for a named port", func(t *testing.T) {
		out, err := nslookup("-type=srv", "_http._tcp.my-service.my-ns.svc.cluster.local")
		if err != nil || !strings.Contains(out, "80 my-service.my-ns.svc.cluster.local") {
			t.Errorf("SRV: %v\n%s", err, out)
		}
	})
	t.Run("PTR for the Service IP", func(t *testing.T) {
		out, err := nslookup(clusterIP)
		if err != nil || !strings.Contains(out, "name = my-service.my-ns.svc.cluster.local") {
			t.Errorf("PTR: %v\n%s", err, out)
		}
	})
	t.Run("ExternalName CNAME", func(t *testing.T) {
		out, err := exec.Command("dig", "+short", "@10.96.0.10", "my-db.my-ns.svc.cluster.local").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "my.database.example.com." {
			t.Errorf("dig my-db: %v\n%s", err, out)
		}
	})
	t.Run("kubectl run -it --rm dnsutils", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("script(1) is not installed")
		}
		line := k.bin + " run -it --rm dnsutils --image=busybox --restart=Never -- nslookup kubernetes.default"
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "script", "-qec", line, "/dev/null")
		cmd.Dir, cmd.Env = pkgDir, k.environ()
		out, err := cmd.CombinedOutput()
		text := strings.ReplaceAll(string(out), "\r", "")
		if err != nil || !strings.Contains(text, "Name:\tkubernetes.default.svc.cluster.local") || !strings.Contains(text, "Address: 10.96.0.1") ||
			!strings.Contains(text, `pod "dnsutils" deleted`) {
			t.Errorf("kubectl run -it --rm dnsutils: %v\n%s", err, text)
		}
	})
}
