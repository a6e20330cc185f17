// Command dns measures the cluster DNS as pods see it: on a fresh `kubesvc up`
// with -services ClusterIP Services, a pod runs this same program (through
// `kubectl exec`: a pod sees the machine's files) to send A queries for the
// Services' names to the kube-dns Service (10.96.0.10, through the proxy's
// rules) and, for comparison, to the node's DNS server directly (the pod's
// gateway). It reports latency percentiles of sequential queries and the rate
// of -concurrency parallel clients. It runs the node agent, so it refuses a
// network namespace with more than loopback: run it under
// ../shared/tools/isolated. It reports; it never fails because of a number. See
// docs/benchmarks.md.
//
// With -side-by-side it compares `kubesvc dns` with CoreDNS instead: see
// sidebyside.go.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/dns -bin /tmp/kubesvc
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type options struct {
	bin         string
	services    int
	queries     int
	concurrency int
	duration    time.Duration
	// child mode: run the queries (inside the pod) and print JSON.
	child   bool
	servers string
}

// measure is one server's figures.
type measure struct {
	Server  string  `json:"server"`
	Queries int     `json:"queries"`
	Errors  int     `json:"errors"`
	P50     string  `json:"p50"`
	P90     string  `json:"p90"`
	P99     string  `json:"p99"`
	Max     string  `json:"max"`
	QPS     float64 `json:"parallel_qps"`
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the kubesvc binary (required; go build -o /tmp/kubesvc ./cmd/kubesvc)")
	flag.IntVar(&o.services, "services", 100, "ClusterIP Services to create (their names are queried)")
	flag.IntVar(&o.queries, "queries", 5000, "sequential queries per server (latency)")
	flag.IntVar(&o.concurrency, "concurrency", 8, "parallel clients for the rate")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long the parallel clients run")
	flag.BoolVar(&o.child, "child", false, "internal: run the queries and print JSON (inside the pod)")
	flag.StringVar(&o.servers, "servers", "", "internal: the servers to query, comma-separated")
	var so sideOptions
	sideBySide := flag.Bool("side-by-side", false, "run the side-by-side comparison with CoreDNS instead (see sidebyside.go)")
	flag.StringVar(&so.coredns, "coredns", "", "side-by-side: the CoreDNS binary (cd bench/dns/coredns && go build -o /tmp/coredns .)")
	flag.IntVar(&so.headlessEvery, "headless-every", 10, "side-by-side: every Nth Service is headless with a 3-endpoint slice (0: none)")
	flag.IntVar(&so.nxEvery, "nxdomain-every", 100, "side-by-side: one NXDOMAIN name in the query file per N Services (0: none)")
	flag.DurationVar(&so.perfDuration, "perf-duration", 10*time.Second, "side-by-side: dnsperf -l (whole seconds)")
	flag.IntVar(&so.perfClients, "perf-clients", 8, "side-by-side: dnsperf -c")
	flag.IntVar(&so.perfThreads, "perf-threads", 2, "side-by-side: dnsperf -T")
	flag.IntVar(&so.outstanding, "perf-outstanding", 100, "side-by-side: dnsperf -q")
	flag.IntVar(&so.rounds, "rounds", 2, "side-by-side: dnsperf rounds per server (interleaved)")
	flag.IntVar(&so.creates, "creates", 100, "side-by-side: Services created for create -> resolvable")
	flag.IntVar(&so.createsCached, "creates-cached", 10, "side-by-side: of those, how many CoreDNS with the cache is measured on (each waits out a negative TTL)")
	flag.StringVar(&so.cpus, "cpus", "0,1", "side-by-side: taskset -c list for every DNS server (empty: no taskset)")
	flag.IntVar(&so.ttl, "ttl", 5, "side-by-side: TTL of cluster records, seconds, for both servers")
	flag.Parse()
	var err error
	if *sideBySide {
		err = runSideBySide(o, so)
	} else if o.child {
		err = child(o)
	} else {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/dns:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.bin == "" {
		return errors.New("-bin is required")
	}
	if err := benchproc.RequireSealedNetwork("the node agent"); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	u, err := benchproc.StartUp(o.bin)
	if err != nil {
		return err
	}
	defer func() {
		if err := u.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if _, err := u.WaitUp(60 * time.Second); err != nil {
		return err
	}
	client, err := u.Client()
	if err != nil {
		return err
	}
	log := u.Log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range o.services {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "none"}},
		}
		if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating %s: %w", svc.Name, err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dnsbench"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "busybox", Command: []string{"sleep", "3600"},
		}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return err
	}
	var gateway string
	for gateway == "" {
		p, err := client.CoreV1().Pods("default").Get(ctx, "dnsbench", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			gw, gerr := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
			if gerr == nil && len(gw.Items) == 1 && gw.Items[0].Status.PodIP != "" {
				gateway = gw.Items[0].Status.PodIP
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the pod never ran:\n%s", log.Tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Wait until the kube-dns Service answers from the node (the proxy has its rules).
	dc := &dns.Client{Timeout: 200 * time.Millisecond}
	for {
		q := new(dns.Msg).SetQuestion(fmt.Sprintf("svc-%d.default.svc.cluster.local.", o.services-1), dns.TypeA)
		if r, _, err := dc.ExchangeContext(ctx, q, "10.96.0.10:53"); err == nil && len(r.Answer) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the cluster DNS never answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
	args := []string{"exec", "dnsbench", "--", self, "-child",
		"-servers", "10.96.0.10:53," + gateway + ":53",
		"-services", fmt.Sprint(o.services), "-queries", fmt.Sprint(o.queries),
		"-concurrency", fmt.Sprint(o.concurrency), "-duration", o.duration.String()}
	out, err := u.Kubectl(args...)
	if err != nil {
		return err
	}
	var ms []measure
	if err := json.Unmarshal(out, &ms); err != nil {
		return fmt.Errorf("the pod's answer %q: %w", out, err)
	}
	fmt.Printf("cluster DNS from a pod (%d Services; %d sequential A queries per server, then %d parallel clients for %v)\n",
		o.services, o.queries, o.concurrency, o.duration)
	fmt.Printf("host: %+v, load before: %s\n", benchproc.ReadHost(), benchproc.LoadAvg())
	for _, m := range ms {
		fmt.Printf("  %-22s p50 %s  p90 %s  p99 %s  max %s  errors %d  parallel %.0f queries/s\n", m.Server, m.P50, m.P90, m.P99, m.Max, m.Errors, m.QPS)
	}
	return nil
}

// child runs inside the pod: for each server, sequential queries for latency,
// then parallel clients for the rate; JSON on stdout.
func child(o options) error {
	var out []measure
	for _, server := range strings.Split(o.servers, ",") {
		m := measure{Server: server}
		names := make([]string, o.services)
		for i := range names {
			names[i] = fmt.Sprintf("svc-%d.default.svc.cluster.local.", i)
		}
		c := &dns.Client{Timeout: time.Second}
		conn, err := c.Dial(server)
		if err != nil {
			return err
		}
		var lat []time.Duration
		for i := range o.queries {
			q := new(dns.Msg).SetQuestion(names[i%len(names)], dns.TypeA)
			start := time.Now()
			r, _, err := c.ExchangeWithConn(q, conn)
			d := time.Since(start)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				m.Errors++
				continue
			}
			lat = append(lat, d)
		}
		conn.Close()
		m.Queries = o.queries
		slices.Sort(lat)
		if len(lat) > 0 {
			pct := func(p float64) string {
				return lat[min(len(lat)-1, int(float64(len(lat))*p))].Round(time.Microsecond).String()
			}
			m.P50, m.P90, m.P99, m.Max = pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1].Round(time.Microsecond).String()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		deadline := time.Now().Add(o.duration)
		for w := range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &dns.Client{Timeout: time.Second}
				conn, err := c.Dial(server)
				if err != nil {
					return
				}
				defer conn.Close()
				n := 0
				for i := w; time.Now().Before(deadline); i++ {
					q := new(dns.Msg).SetQuestion(names[i%len(names)], dns.TypeA)
					if r, _, err := c.ExchangeWithConn(q, conn); err == nil && len(r.Answer) == 1 {
						n++
					}
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		m.QPS = float64(total) / o.duration.Seconds()
		out = append(out, m)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
