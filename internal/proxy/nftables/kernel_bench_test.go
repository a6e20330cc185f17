package nftables

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/kubesvc/kubesvc/internal/proxy"
)

// benchSnapshot is bench/proxy's cluster: n selector-less ClusterIP Services of
// one TCP port, each with eps ready endpoints on another node.
func benchSnapshot(n, eps int) *proxy.Snapshot {
	b := newSnap("10.0.0.1")
	for i := range n {
		var list []proxy.Endpoint
		for j := range eps {
			k := i*eps + j
			list = append(list, proxy.Endpoint{
				IP:   netip.AddrFrom4([4]byte{10, byte(128 + k/65536%64), byte(k / 256), byte(k)}),
				Port: 8080, Ready: true, Serving: true, NodeName: "node-b",
			})
		}
		b.add(&proxy.ServicePort{
			Name:       spn("default", fmt.Sprintf("svc-%d", i), "http", corev1.ProtocolTCP),
			ClusterIPs: []netip.Addr{netip.AddrFrom4([4]byte{10, byte(96 + i>>16), byte(i >> 8), byte(i)})},
			Port:       80,
		}, list...)
	}
	return b.s
}

// onlyLoopback reports whether this network namespace has no interface but lo:
// the benchmarks below program the kernel and refuse to run anywhere else
// (run them under /work/shared/tools/isolated).
func onlyLoopback() bool {
	ifs, err := net.Interfaces()
	return err == nil && len(ifs) == 1 && ifs[0].Name == "lo"
}

// cpuTimes is this process's user and system CPU time.
func cpuTimes(b *testing.B) (user, sys time.Duration) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkKernelFullSync is the proxy's first sync at 10,000 Services × 10
// endpoints (and 1,000): a new Backend programs an empty table over netlink.
// Besides ns/op it reports the process's user and system CPU per sync
// (user-ms/op, sys-ms/op; the kernel's work happens in the sendmsg of the
// batch). It needs root and a network namespace with only lo:
//
//	go test -c -o /tmp/nft.test ./internal/proxy/nftables
//	/work/shared/tools/isolated /tmp/nft.test -test.run '^$' -test.bench KernelFullSync -test.benchmem -test.cpuprofile /tmp/cpu.out
func BenchmarkKernelFullSync(b *testing.B) {
	if unix.Geteuid() != 0 || !onlyLoopback() {
		b.Skip("needs root in a network namespace with only lo (/work/shared/tools/isolated)")
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			s := benchSnapshot(n, 10)
			ctx := context.Background()
			cfg := Config{
				Family:       knftables.IPv4Family,
				TableName:    "kubesvc-bench",
				NodeName:     testNode,
				ClusterCIDRs: prefixes("10.244.0.0/16"),
				ServiceCIDRs: prefixes("10.96.0.0/12"),
				Sysctl:       &fakeSysctl{},
			}
			var user, sys time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				be, err := New(cfg)
				if err != nil {
					b.Fatalf("New: %v", err)
				}
				if err := be.Cleanup(ctx); err != nil {
					b.Fatalf("Cleanup: %v", err)
				}
				u0, s0 := cpuTimes(b)
				b.StartTimer()
				if err := be.Sync(ctx, s); err != nil {
					b.Fatalf("Sync: %v", err)
				}
				b.StopTimer()
				u1, s1 := cpuTimes(b)
				user, sys = user+u1-u0, sys+s1-s0
				b.StartTimer()
			}
			b.ReportMetric(float64(user.Milliseconds())/float64(b.N), "user-ms/op")
			b.ReportMetric(float64(sys.Milliseconds())/float64(b.N), "sys-ms/op")
		})
	}
}

// BenchmarkKernelPartialSync is one endpoint change at 10,000 Services × 10
// endpoints: after a full sync (not timed), each iteration replaces the first
// endpoint of one Service and runs a partial sync. BenchmarkKernelScaleSync
// adds or removes one instead (with the interval maps, that too changes only
// map elements, not the Service's policy rule). Same requirements as
// BenchmarkKernelFullSync.
func BenchmarkKernelPartialSync(b *testing.B) {
	benchmarkKernelPartialSync(b, func(eps []proxy.Endpoint, i int) []proxy.Endpoint {
		eps[0].IP = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		return eps
	})
}

// BenchmarkKernelScaleSync: as BenchmarkKernelPartialSync, but each iteration
// gives one Service an eleventh endpoint, or takes it away again.
func BenchmarkKernelScaleSync(b *testing.B) {
	benchmarkKernelPartialSync(b, func(eps []proxy.Endpoint, i int) []proxy.Endpoint {
		if len(eps) > 10 {
			return eps[:10]
		}
		ep := eps[0]
		ep.IP = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		return append(eps, ep)
	})
}

func benchmarkKernelPartialSync(b *testing.B, change func(eps []proxy.Endpoint, i int) []proxy.Endpoint) {
	if unix.Geteuid() != 0 || !onlyLoopback() {
		b.Skip("needs root in a network namespace with only lo (/work/shared/tools/isolated)")
	}
	const n = 10000
	s := benchSnapshot(n, 10)
	ctx := context.Background()
	heapBefore := liveHeap()
	be, err := New(Config{
		Family:       knftables.IPv4Family,
		TableName:    "kubesvc-bench",
		NodeName:     testNode,
		ClusterCIDRs: prefixes("10.244.0.0/16"),
		ServiceCIDRs: prefixes("10.96.0.0/12"),
		Sysctl:       &fakeSysctl{},
	})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	if err := be.Cleanup(ctx); err != nil {
		b.Fatalf("Cleanup: %v", err)
	}
	if err := be.Sync(ctx, s); err != nil {
		b.Fatalf("full Sync: %v", err)
	}
	// What the Backend keeps after its first full sync (its own state: names,
	// element stores, windows, reference counts).
	state := liveHeap() - heapBefore
	writeStateProfile(b)
	s.Full = false
	var user, sys time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Each Service twice in a row (a scale up, then down again).
		name := spn("default", fmt.Sprintf("svc-%d", (i/2*7919)%n), "http", corev1.ProtocolTCP)
		s.Endpoints[name] = change(slices.Clone(s.Endpoints[name]), i)
		s.Changed = map[proxy.ServicePortName]bool{name: true}
		u0, s0 := cpuTimes(b)
		if err := be.Sync(ctx, s); err != nil {
			b.Fatalf("partial Sync: %v", err)
		}
		u1, s1 := cpuTimes(b)
		user, sys = user+u1-u0, sys+s1-s0
	}
	b.ReportMetric(float64(user.Microseconds())/float64(b.N)/1000, "user-ms/op")
	b.ReportMetric(float64(sys.Microseconds())/float64(b.N)/1000, "sys-ms/op")
	b.ReportMetric(float64(state)/(1<<20), "state-MiB")
}

// stateProfile is where BenchmarkKernelPartialSync writes a heap profile taken
// while the Backend's state after its full sync is live (the profile
// -test.memprofile writes comes after the benchmark, when it is garbage).
var stateProfile = flag.String("state-memprofile", "", "write a heap profile of the Backend's state after the full sync of BenchmarkKernelPartialSync to this file")

// writeStateProfile writes the heap profile of -state-memprofile, if set.
func writeStateProfile(b *testing.B) {
	if *stateProfile == "" {
		return
	}
	f, err := os.Create(*stateProfile)
	if err != nil {
		b.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatalf("heap profile: %v", err)
	}
}

// liveHeap is the heap in use after a collection, in bytes.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
