package iptables

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// discardExecutor accepts every restore and has empty tables: it measures the
// Backend's own work.
type discardExecutor struct{ bytes int }

func (d *discardExecutor) Save(context.Context, Table) ([]byte, error) { return nil, nil }
func (d *discardExecutor) Restore(_ context.Context, data []byte) error {
	d.bytes = len(data)
	return nil
}

// scaleSnapshot is n ClusterIP Services with eps endpoints each.
func scaleSnapshot(n, eps int) *proxy.Snapshot {
	s := newSnap(goldenNodeIP)
	for i := range n {
		name := spn(fmt.Sprintf("ns%d", i%100), fmt.Sprintf("svc-%d", i), "http", corev1.ProtocolTCP)
		var e []proxy.Endpoint
		for j := range eps {
			e = append(e, ep(fmt.Sprintf("10.%d.%d.%d:8080", i/256%256, i%256, j+1), "node-b"))
		}
		s.add(&proxy.ServicePort{Name: name, ClusterIPs: addrs(fmt.Sprintf("172.30.%d.%d", i/256, i%256)), Port: 80}, e...)
	}
	return s.s
}

func benchmarkSync(b *testing.B, n int, partial bool) {
	exe := &discardExecutor{}
	be, err := New(Config{Family: corev1.IPv4Protocol, ClusterCIDRs: prefixes("10.0.0.0/8"), Executor: exe, Sysctl: &fakeSysctl{}})
	if err != nil {
		b.Fatal(err)
	}
	s := scaleSnapshot(n, 10)
	ctx := context.Background()
	if err := be.Sync(ctx, s); err != nil {
		b.Fatal(err)
	}
	name := spn("ns7", "svc-7", "http", corev1.ProtocolTCP)
	s.Full = !partial
	s.Changed = map[proxy.ServicePortName]bool{name: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Endpoints[name][0].Port = int32(8080 + i%2)
		if err := be.Sync(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(exe.bytes), "restore-bytes")
}

func BenchmarkFullSync10000(b *testing.B)    { benchmarkSync(b, 10000, false) }
func BenchmarkPartialSync1000(b *testing.B)  { benchmarkSync(b, 1000, true) }
func BenchmarkPartialSync10000(b *testing.B) { benchmarkSync(b, 10000, true) }
