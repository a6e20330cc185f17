package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// proxyPodLine is a line of `kubectl get pods -A | grep proxy` for a running
// kube-proxy pod: kube-system, kube-proxy-XXXXX, 1/1, Running, 0 restarts.
var proxyPodLine = regexp.MustCompile(`^kube-system\s+(kube-proxy-[bcdfghjklmnpqrstvwxz2456789]{5})\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+$`)

// TestProxyConfig is the third seed's flow against `kubesvc up`, verbatim: a
// NodePort Service answers on the node's address and on 127.0.0.1; `kubectl -n
// kube-system get cm kube-proxy -o yaml` shows config.conf; nodePortAddresses:
// ["127.0.0.0/8"] is set in it (what `kubectl edit` does: the object, edited,
// written back); `kubectl get pods -A | grep proxy` shows one kube-proxy pod;
// it is deleted; a new kube-proxy pod with another name appears Running; the
// NodePort answers on 127.0.0.1 and no longer on the node's address. Then an
// invalid configuration keeps the rules and the new pod shows the error, and a
// mode change (nftables → iptables) replaces the nftables table with iptables
// rules.
func TestProxyConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if isolate.Run(t) {
		return
	}
	s := startUp(t)
	k := s.kubectl(t)
	eventually(t, "the node Ready", 60*time.Second, func() error {
		out, err := jsonpath(k, `{.items[0].status.conditions[?(@.type=="Ready")].status}`, "nodes")
		if err != nil || out != "True" {
			return fmt.Errorf("Ready=%q %v", out, err)
		}
		return nil
	})
	nodeIP, err := jsonpath(k, `{.items[0].status.addresses[?(@.type=="InternalIP")].address}`, "nodes")
	if err != nil || nodeIP == "" {
		t.Fatalf("node InternalIP %q: %v", nodeIP, err)
	}
	applyYAML(t, k, seedNodePortManifests)
	k.ok("rollout", "status", "deployment/myapp", "--timeout=90s")
	onNode := "http://" + net.JoinHostPort(nodeIP, "30007")
	onLoopback := "http://127.0.0.1:30007"
	answers := func(u string) error {
		body, err := httpGet(u)
		if err != nil {
			return err
		}
		if !strings.Contains(body, "Welcome to nginx!") {
			return fmt.Errorf("GET %s: %q", u, body)
		}
		return nil
	}
	for _, u := range []string{onNode, onLoopback} {
		eventually(t, "the NodePort answers on "+u, 30*time.Second, func() error { return answers(u) })
	}

	// conntrack's timeouts as kube-proxy sets them (the node's namespace's)
	for name, want := range map[string]string{"nf_conntrack_tcp_timeout_established": "86400", "nf_conntrack_tcp_timeout_close_wait": "3600"} {
		eventually(t, "conntrack "+name, 30*time.Second, func() error {
			b, err := os.ReadFile("/proc/sys/net/netfilter/" + name)
			if err != nil || strings.TrimSpace(string(b)) != want {
				return fmt.Errorf("%s = %q (%v), want %s", name, b, err, want)
			}
			return nil
		})
	}

	// kubectl -n kube-system edit cm kube-proxy
	cmYAML := k.ok("-n", "kube-system", "get", "cm", "kube-proxy", "-o", "yaml")
	t.Logf("kubectl -n kube-system get cm kube-proxy -o yaml:\n%s", cmYAML)
	for _, want := range []string{"config.conf: |", "apiVersion: kubeproxy.config.k8s.io/v1alpha1", "kind: KubeProxyConfiguration",
		"mode: nftables", "nodePortAddresses: null"} {
		if !strings.Contains(cmYAML, want) {
			t.Fatalf("the ConfigMap lacks %q", want)
		}
	}
	replaceEdited(t, k, cmYAML, "nodePortAddresses: null", `nodePortAddresses: ["127.0.0.0/8"]`)

	// kubectl get pods -A | grep proxy
	before := proxyPods(t, k)
	if len(before) != 1 || before[0].ready != "1/1" || before[0].status != "Running" || before[0].restarts != "0" {
		t.Fatalf("kubectl get pods -A | grep proxy: %+v", before)
	}
	// its status is written when it changes, not at every event it causes
	rv := func() string {
		v, err := jsonpath(k, "{.metadata.resourceVersion}", "pod", "-n", "kube-system", before[0].name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rv1 := rv()
	time.Sleep(time.Second)
	if rv2 := rv(); rv2 != rv1 {
		t.Errorf("the kube-proxy pod changed from resourceVersion %s to %s in a steady state", rv1, rv2)
	}
	// kubectl delete pod --namespace=kube-system kube-proxy-XXXXX
	k.ok("delete", "pod", "--namespace=kube-system", before[0].name)
	after := waitProxyPod(t, k, before[0].name, "1/1", "Running")
	t.Logf("kube-proxy pod %s replaced by %s", before[0].name, after.name)

	eventually(t, "the NodePort on 127.0.0.1 only", 30*time.Second, func() error {
		if err := answers(onLoopback); err != nil {
			return err
		}
		if err := answers(onNode); err == nil {
			return fmt.Errorf("%s still answers", onNode)
		}
		return nil
	})
	if _, err := httpGet(onNode); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("GET %s: %v, want connection refused", onNode, err)
	}

	t.Cleanup(func() {
		var proxyLog []string
		for _, l := range lines(s.log.String()) {
			if strings.Contains(l, "component=proxy") && !strings.Contains(l, "level=DEBUG") {
				proxyLog = append(proxyLog, l)
			}
		}
		t.Logf("the proxy's log:\n%s", tail(strings.Join(proxyLog, "\n"), 8192))
	})

	t.Run("an invalid configuration keeps the rules and the pod shows it", func(t *testing.T) {
		k := k.on(t)
		cm := k.ok("-n", "kube-system", "get", "cm", "kube-proxy", "-o", "yaml")
		replaceEdited(t, k, cm, "nodePortAddresses:", "nodePortAdresses:")
		k.ok("delete", "pod", "--namespace=kube-system", after.name)
		bad := waitProxyPod(t, k, after.name, "0/1", "CreateContainerConfigError")
		t.Logf("kubectl get events:\n%s", k.ok("-n", "kube-system", "get", "events"))
		describe := k.ok("-n", "kube-system", "describe", "pod", bad.name)
		t.Logf("kubectl describe pod:\n%s", describe)
		if !strings.Contains(describe, `unknown field "nodePortAdresses"`) {
			t.Errorf("kubectl describe pod does not show the error")
		}
		if err := answers(onLoopback); err != nil {
			t.Errorf("the previous rules are gone: %v", err)
		}
		if err := answers(onNode); err == nil {
			t.Errorf("%s answers: the previous configuration is not kept", onNode)
		}
		after = bad
	})

	t.Run("mode iptables replaces the nftables rules", func(t *testing.T) {
		k := k.on(t)
		cm := k.ok("-n", "kube-system", "get", "cm", "kube-proxy", "-o", "yaml")
		cm = strings.Replace(cm, "nodePortAdresses:", "nodePortAddresses:", 1)
		replaceEdited(t, k, cm, "mode: nftables", "mode: iptables")
		k.ok("delete", "pod", "--namespace=kube-system", after.name)
		waitProxyPod(t, k, after.name, "1/1", "Running")
		eventually(t, "iptables rules for the NodePort, no nftables table", 30*time.Second, func() error {
			out, err := exec.Command("sh", "-c", "iptables-save | grep KUBE-NODEPORTS | grep default/test-service").CombinedOutput()
			if err != nil {
				return fmt.Errorf("iptables-save: %v: %s", err, out)
			}
			if out, err := exec.Command("nft", "list", "table", "ip", "kubesvc").CombinedOutput(); err == nil {
				return fmt.Errorf("the nftables table is still there:\n%.300s", out)
			}
			return answers(onLoopback)
		})
		if err := answers(onNode); err == nil {
			t.Errorf("%s answers in iptables mode with nodePortAddresses 127.0.0.0/8", onNode)
		}
	})
}

// replaceEdited replaces old by new in obj (a `kubectl get -o yaml`) and writes
// the object back with kubectl replace: what `kubectl edit` does.
func replaceEdited(t *testing.T, k *kubectl, obj, old, new string) {
	t.Helper()
	if !strings.Contains(obj, old) {
		t.Fatalf("%q is not in:\n%s", old, obj)
	}
	f := filepath.Join(t.TempDir(), "edited.yaml")
	if err := os.WriteFile(f, []byte(strings.Replace(obj, old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	k.ok("replace", "-f", f)
}

// proxyPod is one line of `kubectl get pods -A | grep proxy`.
type proxyPod struct{ name, ready, status, restarts string }

// proxyPods runs `kubectl get pods -A` and keeps the lines with "proxy", as
// grep does; a line that is not a kube-proxy pod's fails the test.
func proxyPods(t *testing.T, k *kubectl) []proxyPod {
	t.Helper()
	out := k.ok("get", "pods", "-A")
	var pods []proxyPod
	for _, line := range lines(out) {
		if !strings.Contains(line, "proxy") {
			continue
		}
		t.Logf("kubectl get pods -A | grep proxy: %s", line)
		m := proxyPodLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected line %q", line)
		}
		pods = append(pods, proxyPod{name: m[1], ready: m[2], status: m[3], restarts: m[4]})
	}
	return pods
}

// waitProxyPod waits for one kube-proxy pod, not named old, with READY ready
// and STATUS status.
func waitProxyPod(t *testing.T, k *kubectl, old, ready, status string) proxyPod {
	t.Helper()
	var p proxyPod
	eventually(t, "a new kube-proxy pod "+ready+" "+status, 30*time.Second, func() error {
		pods := proxyPods(t, k)
		if len(pods) != 1 || pods[0].name == old {
			return fmt.Errorf("kube-proxy pods %+v (old %s)", pods, old)
		}
		p = pods[0]
		if p.ready != ready || p.status != status || p.restarts != "0" {
			return fmt.Errorf("pod %+v, want %s %s 0", p, ready, status)
		}
		return nil
	})
	return p
}

// seedNodePortManifests are the seed's NodePort Service (nodePort 30007,
// selector app.kubernetes.io/name: MyApp) and nginx pods for it.
const seedNodePortManifests = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: myapp
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: MyApp
  template:
    metadata:
      labels:
        app.kubernetes.io/name: MyApp
    spec:
      containers:
      - name: nginx
        image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: test-service
spec:
  type: NodePort
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - port: 80
      targetPort: 80
      nodePort: 30007
`
