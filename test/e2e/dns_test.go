package e2e

import (
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
