// Package bench holds in-process Go benchmarks of the kubesvc API server (server and
// client in one process, so that `go test -cpuprofile/-memprofile` sees the server),
// and, in bench/apiserver, the out-of-process benchmark harness. See
// docs/benchmarks.md.
//
//	go test ./bench -run '^$' -bench Create -benchtime 2000x
//	go test ./bench -run '^$' -bench List10k -benchtime 10x -cpuprofile /tmp/list.cpu
//	go test ./bench -run '^$' -bench Startup -benchtime 5x
//	go test ./bench -run '^$' -bench Watchers100Memory -benchtime 1x
//
// Give each its own -benchtime: an op of List10k is a LIST of 10,000 objects, an op of
// Watchers100Memory a whole set-up. They report numbers and never fail on one.
package bench

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

const protobuf = "application/vnd.kubernetes.protobuf"

// client returns a clientset on its own connection (a distinct Dial function keeps
// client-go from sharing one cached transport).
func client(tb testing.TB, base *rest.Config, proto bool) *kubernetes.Clientset {
	tb.Helper()
	rc := rest.CopyConfig(base)
	rc.QPS, rc.Burst = 1e6, 1e6
	// Explicit both ways: left empty, client-go v0.37's typed clients default to
	// protobuf for built-in types.
	rc.ContentType, rc.AcceptContentTypes = "application/json", "application/json"
	if proto {
		rc.ContentType, rc.AcceptContentTypes = protobuf, protobuf
	}
	rc.Dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func service(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

// createServices creates svc-from .. svc-(from+n-1) with 8 protobuf clients.
func createServices(tb testing.TB, s *testserver.Server, from, n int) {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		c := client(tb, s.Config, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := c.CoreV1().Services("default").Create(context.Background(),
					service(fmt.Sprintf("svc-%d", from+i)), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("create: %v", err)
	}
}

// BenchmarkCreate: parallel creates (8 goroutines, one protobuf client and connection
// each) of ConfigMaps and Services. ns/op is wall time per create over all goroutines,
// so 1e9/(ns/op) is creates per second.
func BenchmarkCreate(b *testing.B) {
	for _, kind := range []string{"configmaps", "services"} {
		b.Run(kind, func(b *testing.B) {
			s := testserver.Start(b, testserver.Options{Protobuf: true})
			var id atomic.Int64
			clients := make(chan *kubernetes.Clientset, 64)
			for i := 0; i < cap(clients); i++ {
				clients <- client(b, s.Config, true)
			}
			b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := <-clients
				ctx := context.Background()
				for pb.Next() {
					i := id.Add(1)
					var err error
					if kind == "services" {
						_, err = c.CoreV1().Services("default").Create(ctx, service(fmt.Sprintf("svc-%d", i)), metav1.CreateOptions{})
					} else {
						_, err = c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
							ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)},
							Data:       map[string]string{"key": fmt.Sprintf("value-%d", i)},
						}, metav1.CreateOptions{})
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkList10k: one full LIST (no limit, served from the watch cache) of 10,000
// Services per op, with client-go typed decoding, in JSON and protobuf; "bytes" does the
// same request but keeps the raw body (server + transfer, no client decoding).
func BenchmarkList10k(b *testing.B) {
	const n = 10000
	s := testserver.Start(b, testserver.Options{Protobuf: true})
	createServices(b, s, 0, n)
	for _, tc := range []struct {
		name  string
		proto bool
		raw   bool
	}{{"json", false, false}, {"protobuf", true, false}, {"json-bytes", false, true}, {"protobuf-bytes", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			c := client(b, s.Config, tc.proto)
			ctx := context.Background()
			accept := "application/json"
			if tc.proto {
				accept = protobuf
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if tc.raw {
					body, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/services").
						SetHeader("Accept", accept).DoRaw(ctx)
					if err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(len(body)))
					continue
				}
				l, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if len(l.Items) < n {
					b.Fatalf("listed %d Services, want %d", len(l.Items), n)
				}
			}
		})
	}
}

// BenchmarkStartup: in-process start-up (scheme, OpenAPI, embedded etcd on a fresh
// directory, PKI, watch cache, bootstrap) until Ready, then shutdown outside the timer.
// Use -benchtime 5x; with -cpuprofile it shows where start-up time goes.
func BenchmarkStartup(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := testserver.Start(b, testserver.Options{})
		b.StopTimer()
		s.Stop()
		b.StartTimer()
	}
}

// BenchmarkWatchers100Memory reports the Go heap (after a GC) of a server holding
// 10,000 Services with 100 watches open (one op: a full setup; run with -benchtime 1x).
// Client and server share the process, so the figure includes the 100 client-go watch
// streams; the out-of-process RSS figure, and heap profiles taken at that moment, come
// from bench/apiserver's watch scenario (-profile-dir).
func BenchmarkWatchers100Memory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := testserver.Start(b, testserver.Options{Protobuf: true})
		createServices(b, s, 0, 10000)
		c := client(b, s.Config, true)
		l, err := c.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rv := l.ResourceVersion
		l = nil
		ctx, cancel := context.WithCancel(context.Background())
		for w := 0; w < 100; w++ {
			wi, err := client(b, s.Config, true).CoreV1().Services("").Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for range wi.ResultChan() {
				}
			}()
		}
		if i == 0 { // later iterations would see the heap the earlier ones left behind
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-live-MiB")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MiB")
		}
		cancel()
		b.StopTimer()
		s.Stop()
		b.StartTimer()
	}
}

// BenchmarkConsistentListAfterForeignWrite: one op is a write outside /registry/ (what
// the NodePort repair loop or another tenant of a shared etcd does) followed by a
// consistent LIST (resourceVersion ""), which must wait for the watch cache to reach
// etcd's revision. Reports the LIST's p50/p99/max; before the cacher requested
// progress from etcd, each such LIST waited 5 s and failed with 504.
//
//	go test ./bench -run '^$' -bench ConsistentListAfterForeignWrite -benchtime 1000x
func BenchmarkConsistentListAfterForeignWrite(b *testing.B) {
	s := testserver.Start(b, testserver.Options{})
	c := client(b, s.Config, true)
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Etcd().Put(ctx, fmt.Sprintf("/other-tenant/key-%d", i%10), "v"); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(durations[len(durations)/2]), "p50-ms")
	b.ReportMetric(ms(durations[len(durations)*99/100]), "p99-ms")
	b.ReportMetric(ms(durations[len(durations)-1]), "max-ms")
}
