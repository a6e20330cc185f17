package iptables

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
	"github.com/kubesvc/kubesvc/internal/testutil/isolate"
)

// TestKernelScale times, in the real kernel, a full sync of N ClusterIP
// Services with 10 endpoints each and then a partial sync of one endpoint
// change, for each iptables variant. It runs only when
// KUBESVC_IPTABLES_SCALE is set to N (e.g. 1000 or 10000): it takes minutes
// (KUBESVC_IPTABLES_VARIANT=legacy or nft runs one variant).
func TestKernelScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KUBESVC_IPTABLES_SCALE"))
	if n <= 0 {
		t.Skip("set KUBESVC_IPTABLES_SCALE=N to time syncs of N Services")
	}
	if isolate.Run(t) {
		return
	}
	for _, v := range []struct {
		name, save, restore string
		batch               int // as NewCommandExecutor sets it
	}{
		{"legacy", "iptables-legacy-save", "iptables-legacy-restore", 0},
		{"nft", "iptables-nft-save", "iptables-nft-restore", NFTBatchServices},
	} {
		t.Run(v.name, func(t *testing.T) {
			if only := os.Getenv("KUBESVC_IPTABLES_VARIANT"); only != "" && only != v.name {
				t.Skipf("KUBESVC_IPTABLES_VARIANT=%s", only)
			}
			if out, err := exec.Command(v.save, "-t", "nat").CombinedOutput(); err != nil {
				t.Skipf("%s does not work here: %v: %s", v.save, err, out)
			}
			exe := &CommandExecutor{SaveCommand: v.save, RestoreCommand: v.restore, BatchServices: v.batch}
			b, err := New(Config{Family: corev1.IPv4Protocol, ClusterCIDRs: prefixes("10.0.0.0/8"), Executor: exe})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			s := scaleSnapshot(n, 10)
			start := time.Now()
			if err := b.Sync(ctx, s); err != nil {
				t.Fatalf("full sync: %v", err)
			}
			t.Logf("%s: full sync of %d Services x 10 endpoints: %v", v.name, n, time.Since(start))
			name := spn("ns7", "svc-7", "http", corev1.ProtocolTCP)
			s.Full = false
			s.Changed = map[proxy.ServicePortName]bool{name: true}
			for i := range 3 {
				s.Endpoints[name][0].Port = int32(9000 + i)
				start = time.Now()
				if err := b.Sync(ctx, s); err != nil {
					t.Fatalf("partial sync: %v", err)
				}
				t.Logf("%s: one endpoint change at %d Services: %v", v.name, n, time.Since(start))
			}
			start = time.Now()
			if err := b.Cleanup(ctx); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			t.Logf("%s: cleanup: %v", v.name, time.Since(start))
			if out, err := exec.Command(v.save, "-t", "nat").CombinedOutput(); err != nil {
				t.Errorf("%s -t nat: %v: %s", v.save, err, out)
			} else if strings.Contains(string(out), "KUBE-S") {
				t.Errorf("KUBE-SVC/SEP/SERVICES chains left after Cleanup:\n%.2000s", out)
			}
		})
	}
}
