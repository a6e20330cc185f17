package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestReset: after `kubesvc up` ran pods behind a Service and stopped (its pods
// go on running, as a kubelet's do), `kubesvc reset` asks first, and with --yes
// removes the pods' processes, the pod network, the proxy's rules and the data
// directory; the next `kubesvc up` starts a new cluster.
func TestReset(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubesvc up with a real node")
	}
	if isolate.Run(t) {
		return
	}
	for _, mode := range []string{"nftables", "iptables"} {
		t.Run(mode, func(t *testing.T) { testReset(t, mode) })
	}
}

func testReset(t *testing.T, mode string) {
	s := startUp(t, "--proxy-mode="+mode)
	k := s.kubectl(t)
	k.ok("create", "deployment", "nginx", "--image=nginx", "--replicas=2")
	k.ok("expose", "deployment", "nginx", "--port=80")
	var podIPs []string
	eventually(t, "two ready nginx pods", 60*time.Second, func() error {
		out, err := jsonpath(k, `{range .items[*]}{.status.podIP} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`, "pods", "-l", "app=nginx")
		if err != nil {
			return err
		}
		podIPs = nil
		for _, l := range lines(out) {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "True" {
				podIPs = append(podIPs, f[0])
			}
		}
		if len(podIPs) != 2 {
			return fmt.Errorf("pods: %q", out)
		}
		return nil
	})
	clusterIP, _ := jsonpath(k, "{.spec.clusterIP}", "svc", "nginx")
	eventually(t, "the Service answering", 30*time.Second, func() error {
		_, err := httpGet("http://" + clusterIP)
		return err
	})
	s.stop(t)
	// The pods outlive kubesvc up, as they outlive a kubelet.
	if _, err := httpGet("http://" + podIPs[0]); err != nil {
		t.Fatalf("a pod after kubesvc up stopped: %v", err)
	}
	if n := kubesvcProcesses(t); n == 0 {
		t.Fatal("no kubesvc process (the pods' containers) left after kubesvc up stopped")
	}

	reset := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(kubesvcBin, append([]string{"reset", "--data-dir", s.DataDir}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// It asks; anything but yes removes nothing.
	out, err := reset("n\n")
	if err == nil || !strings.Contains(out, "Continue? [y/N]") || !strings.Contains(out, "aborted: nothing was removed") {
		t.Fatalf("kubesvc reset answered n: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "admin.kubeconfig")); err != nil {
		t.Fatalf("after an aborted reset: %v", err)
	}
	out, err = reset("", "--yes")
	t.Logf("kubesvc reset --yes:\n%s", out)
	if err != nil {
		t.Fatalf("kubesvc reset --yes: %v", err)
	}
	for _, want := range []string{"stopped and removed 2 containers", "removed the pod network", "removed the service proxy's rules", "removed " + s.DataDir} {
		if !strings.Contains(out, want) {
			t.Errorf("kubesvc reset's output lacks %q", want)
		}
	}

	// Nothing is left: no process, no pod answering, no bridge or veth, no
	// nftables table, no KUBE chain, no data directory.
	if n := kubesvcProcesses(t); n != 0 {
		t.Errorf("%d kubesvc processes left after reset", n)
	}
	if _, err := httpGet("http://" + podIPs[0]); err == nil {
		t.Errorf("pod %s still answers after reset", podIPs[0])
	}
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); bytes.Contains(out, []byte("veth")) || bytes.Contains(out, []byte("bridge")) || strings.Count(string(out), "\n") > 1 {
		t.Errorf("links left after reset:\n%s", out)
	}
	// iptables' own tables (filter, nat, mangle: iptables-nft makes them) stay,
	// as kube-proxy's cleanup leaves them; the KUBE chains in them are checked
	// below.
	tables, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Errorf("nft list tables: %v\n%s", err, tables)
	}
	for _, l := range lines(string(tables)) {
		switch f := strings.Fields(l); {
		case len(f) == 0:
		case len(f) == 3 && (f[1] == "ip" || f[1] == "ip6") && (f[2] == "filter" || f[2] == "nat" || f[2] == "mangle"):
		default:
			t.Errorf("nftables table left after reset: %s", l)
		}
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		if out, _ := exec.Command(save).CombinedOutput(); bytes.Contains(out, []byte("KUBE")) {
			t.Errorf("%s shows KUBE chains after reset:\n%s", save, out)
		}
	}
	if _, err := os.Stat(s.DataDir); !os.IsNotExist(err) {
		t.Errorf("data directory after reset: %v", err)
	}
	// Again: nothing to do is no error.
	if out, err := reset("", "--yes"); err != nil || !strings.Contains(out, "not present: data directory") {
		t.Errorf("a second reset: %v\n%s", err, out)
	}
}

// kubesvcProcesses counts the processes of the kubesvc binary and its runner (a pod's
// containers run it), the test's own namespace being the test's alone.
func kubesvcProcesses(t *testing.T) int {
	t.Helper()
	want, err := filepath.EvalSymlinks(kubesvcBin)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		exe = strings.TrimSuffix(exe, " (deleted)")
		// Containers run in kubesvc-runner, which kubesvc installs under its data
		// directory (internal/agent/runner), or in kubesvc itself.
		if err == nil && (exe == want || strings.HasPrefix(filepath.Base(exe), "kubesvc-runner-")) {
			n++
		}
	}
	return n
}
