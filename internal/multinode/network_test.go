package multinode

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesvc/kubesvc/internal/testutil"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestNetworkLifecycle makes a plan's network twice (idempotent), routes,
// starts a program in a node's namespace as an agent is started, and removes
// it all, in a network namespace of the test's own.
func TestNetworkLifecycle(t *testing.T) {
	if isolate.Run(t) {
		return
	}
	dir := t.TempDir()
	plan, err := NewPlan(Config{Nodes: 2, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Save(dir); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := EnsureNetwork(plan); err != nil {
			t.Fatal(err)
		}
	}
	if got := isolate.Must(t, "ip", "netns", "list"); !strings.Contains(got, "kubesvc-node-1") || !strings.Contains(got, "kubesvc-node-2") {
		t.Errorf("ip netns list:\n%s", got)
	}
	// node 2 reaches the machine and node 1 over the bridge.
	for _, to := range []string{"172.18.0.1", "172.18.0.2"} {
		if out, err := exec.Command("ip", "netns", "exec", "kubesvc-node-2", "ping", "-c1", "-W2", to).CombinedOutput(); err != nil {
			t.Errorf("ping %s from node 2: %v\n%s", to, err, out)
		}
	}
	if got := isolate.Must(t, "ip", "netns", "exec", "kubesvc-node-1", "ip", "route"); !strings.Contains(got, "default via 172.18.0.1 dev eth0") {
		t.Errorf("node 1's routes:\n%s", got)
	}
	if err := SyncRoutes(plan, []Route{{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: plan.Nodes[1].IP}}); err != nil {
		t.Fatal(err)
	}
	if got := isolate.Must(t, "ip", "route", "show", "proto", "203"); strings.TrimSpace(got) != "10.244.1.0/24 via 172.18.0.3 dev kubesvc-nodes" {
		t.Errorf("routes of proto 203:\n%s", got)
	}

	t.Run("agent in the node's namespace", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "addr")
		a := &AgentProcess{Node: plan.Nodes[0], Path: "/bin/sh", Args: []string{"-c", "ip -o -4 addr show dev eth0 > " + out + "; exec sleep 1000"}, StopGrace: 5 * time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		testutil.Eventually(t, "the program's output", 10*time.Second, func(context.Context) (bool, error) {
			b, err := os.ReadFile(out)
			return err == nil && len(b) > 0, err
		})
		if b, _ := os.ReadFile(out); !strings.Contains(string(b), "172.18.0.2/24") {
			t.Errorf("the program sees eth0 as:\n%s", b)
		}
		if _, err := os.Stat(plan.Nodes[0].PIDFile()); err != nil {
			t.Errorf("PID file: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := os.Stat(plan.Nodes[0].PIDFile()); !os.IsNotExist(err) {
			t.Errorf("PID file after the agent stopped: %v", err)
		}
	})

	if err := Remove(plan); err != nil {
		t.Fatal(err)
	}
	if left := Leftovers(plan); len(left) != 0 {
		t.Errorf("left after Remove: %v", left)
	}
	if err := Remove(plan); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}
