// Command up measures how long `kubesvc up` takes to make a working cluster
// (one node, or -nodes N: `kubesvc up --nodes=N`, N nodes in network namespaces)
// from nothing: a fresh data directory each run, from the exec of
// `kubesvc up` to (a) its "kubesvc is up" line, (b) every Node Ready, (c) the
// cluster DNS answering kubernetes.default.svc.cluster.local at the kube-dns
// Service's address from the node (through the proxy; with -nodes N from the
// machine, whose route to the Service range goes through the first node's
// proxy), and (d) all of these.
// Between runs `kubesvc reset --yes` removes what the run made, so every start
// is a first one. It runs the node agent, so it refuses a network namespace with
// more than loopback: run it under ../shared/tools/isolated. It reports; it never
// fails because of a number. See docs/benchmarks.md.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/up -bin /tmp/kubesvc -runs 10
//	../shared/tools/isolated go run ./bench/up -bin /tmp/kubesvc -runs 10 -nodes 3
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type options struct {
	bin     string
	runs    int
	dnsAddr string
	timeout time.Duration
	out     string
	nodes   int
}

// sample is one start.
type sample struct {
	UpLine    time.Duration
	NodeReady time.Duration
	DNS       time.Duration
	All       time.Duration
}

// summary is the distribution of one measure.
type summary struct {
	Median string `json:"median"`
	Min    string `json:"min"`
	Max    string `json:"max"`
}

type result struct {
	Host      benchproc.Host `json:"host"`
	Commit    string         `json:"commit,omitempty"`
	LoadAvg   string         `json:"loadavg_before"`
	Runs      int            `json:"runs"`
	Nodes     int            `json:"nodes"`
	UpLine    summary        `json:"up_line"`
	NodeReady summary        `json:"node_ready"`
	DNS       summary        `json:"dns_answers"`
	All       summary        `json:"ready_and_dns"`
	Samples   []string       `json:"samples"`
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the kubesvc binary (required; go build -o /tmp/kubesvc ./cmd/kubesvc)")
	flag.IntVar(&o.runs, "runs", 10, "fresh starts to measure")
	flag.StringVar(&o.dnsAddr, "dns", "10.96.0.10:53", "the kube-dns Service's address")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up on a start after this long")
	flag.StringVar(&o.out, "out", "", "also write the result as JSON to this file")
	flag.IntVar(&o.nodes, "nodes", 1, "nodes to start (kubesvc up --nodes=N) and wait for Ready")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/up:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.bin == "" {
		return errors.New("-bin is required")
	}
	if o.nodes < 1 {
		return errors.New("-nodes must be at least 1")
	}
	if err := benchproc.RequireSealedNetwork("kubesvc up"); err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	res := result{Host: benchproc.ReadHost(), Commit: benchproc.GitCommit(), LoadAvg: benchproc.LoadAvg(), Runs: o.runs, Nodes: o.nodes}
	var samples []sample
	for i := range o.runs {
		s, err := once(bin, o)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		samples = append(samples, s)
		line := fmt.Sprintf("up line %v, nodes Ready %v, DNS answers %v, both %v", ms(s.UpLine), ms(s.NodeReady), ms(s.DNS), ms(s.All))
		res.Samples = append(res.Samples, line)
		fmt.Printf("run %d: %s\n", i+1, line)
	}
	pick := func(f func(sample) time.Duration) summary {
		var v []time.Duration
		for _, s := range samples {
			v = append(v, f(s))
		}
		slices.Sort(v)
		med := v[len(v)/2]
		if len(v)%2 == 0 {
			med = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return summary{Median: ms(med), Min: ms(v[0]), Max: ms(v[len(v)-1])}
	}
	res.UpLine = pick(func(s sample) time.Duration { return s.UpLine })
	res.NodeReady = pick(func(s sample) time.Duration { return s.NodeReady })
	res.DNS = pick(func(s sample) time.Duration { return s.DNS })
	res.All = pick(func(s sample) time.Duration { return s.All })
	fmt.Printf("\n%d fresh starts of kubesvc up --nodes=%d (median [min, max]):\n", o.runs, o.nodes)
	for _, m := range []struct {
		name string
		s    summary
	}{{"\"kubesvc is up\" line", res.UpLine}, {"nodes Ready", res.NodeReady}, {"kube-dns answers", res.DNS}, {"Ready and DNS", res.All}} {
		fmt.Printf("  %-22s %s [%s, %s]\n", m.name, m.s.Median, m.s.Min, m.s.Max)
	}
	if o.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// once measures one fresh start, then stops kubesvc up and resets the machine.
func once(bin string, o options) (sample, error) {
	var s sample
	var args []string
	if o.nodes > 1 {
		args = append(args, fmt.Sprintf("--nodes=%d", o.nodes))
	}
	u, err := benchproc.StartUp(bin, args...)
	if err != nil {
		return s, err
	}
	defer func() {
		if err := u.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if s.UpLine, err = u.WaitUp(o.timeout); err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	client, err := u.Client()
	if err != nil {
		return s, err
	}
	start := u.Started()
	dc := &dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}
	q := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	for s.NodeReady == 0 || s.DNS == 0 {
		if s.NodeReady == 0 && nodesReady(ctx, client, o.nodes) {
			s.NodeReady = time.Since(start)
		}
		if s.DNS == 0 {
			if r, _, err := dc.ExchangeContext(ctx, q, o.dnsAddr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
				s.DNS = time.Since(start)
			}
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("after %v: node Ready %v, DNS %v:\n%s", o.timeout, s.NodeReady, s.DNS, u.Log.Tail())
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.All = max(s.NodeReady, s.DNS)
	return s, nil
}

// nodesReady tells whether n Nodes exist and all are Ready.
func nodesReady(ctx context.Context, client kubernetes.Interface, n int) bool {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != n {
		return false
	}
	for _, node := range nodes.Items {
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		if !ready {
			return false
		}
	}
	return true
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
