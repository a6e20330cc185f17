// Command dataplane measures what a ClusterIP costs a connection: a client pod
// talks to a server pod once through a ClusterIP Service (balanced in
// connect() by socket load balancing, the agent's default; with
// -disable-socket-lb, the proxy's DNAT and conntrack) and once to the pod's
// own IP, and the two are compared as ratios
// (ClusterIP / direct): bulk throughput (one TCP stream), new connections per
// second (connect, one small request, close), and the p99 latency of a small
// request on a new connection. Both pods run this program (a pod with a
// `command:` runs that program from the machine; the client through `kubectl
// exec`). It runs the node agent, so it refuses a network namespace with more
// than loopback: run it under ../shared/tools/isolated. It reports; it never
// fails because of a number. See docs/benchmarks.md.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/dataplane -bin /tmp/kubesvc [-mode iptables]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
	"github.com/kubesvc/kubesvc/internal/proxy/socklb"
)

type options struct {
	bin      string
	mode     string
	bytes    int64
	duration time.Duration
	parallel int
	rounds   int
	// noSocketLB passes --disable-socket-lb to kubesvc up.
	noSocketLB bool
	// serve: run the server (in the server pod).
	serve string
	// client: run the measurements against these targets (in the client pod).
	client string
}

// figures are one target's measurements.
type figures struct {
	Target        string  `json:"target"`
	MiBPerSec     float64 `json:"throughput_mib_s"`
	ConnsPerSec   float64 `json:"connections_s"`
	P99Micros     float64 `json:"p99_us"`
	P50Micros     float64 `json:"p50_us"`
	FailedConns   int     `json:"failed_connections"`
	LatencySample int     `json:"latency_samples"`
	// Rounds are each round's throughput (MiB/s), connections/s and p99 (µs),
	// in order: the best above hides how much they spread.
	Rounds [][3]float64 `json:"rounds,omitempty"`
}

// median is the median of column col of rounds.
func median(rounds [][3]float64, col int) float64 {
	v := make([]float64, 0, len(rounds))
	for _, r := range rounds {
		v = append(v, r[col])
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the kubesvc binary (required; go build -o /tmp/kubesvc ./cmd/kubesvc)")
	flag.StringVar(&o.mode, "mode", "nftables", "the proxy mode (nftables or iptables)")
	flag.Int64Var(&o.bytes, "bytes", 1<<30, "bytes of the bulk download")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each connection-rate run lasts")
	flag.IntVar(&o.parallel, "parallel", 4, "parallel clients in the connection-rate run")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per target (the best of each is kept)")
	flag.BoolVar(&o.noSocketLB, "disable-socket-lb", false, "run kubesvc up --disable-socket-lb: pods' connections to the ClusterIP go through the proxy's DNAT")
	flag.StringVar(&o.serve, "serve", "", "internal: serve on this address (inside the server pod)")
	flag.StringVar(&o.client, "client", "", "internal: measure these comma-separated host:port targets (inside the client pod)")
	flag.Parse()
	var err error
	switch {
	case o.serve != "":
		err = serve(o.serve)
	case o.client != "":
		err = client(o)
	default:
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/dataplane:", err)
		os.Exit(1)
	}
}

// serve answers /bytes?n=N with N zero bytes and / with "ok".
func serve(addr string) error {
	zeros := make([]byte, 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if _, err := w.Write(zeros[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return http.ListenAndServe(addr, mux)
}

// client measures each target, alternating, and prints JSON. The order of the
// targets is reversed every other round (A B, B A, A B, ...), so that neither
// always follows the other (what the previous measurement left: conntrack
// entries of its connections, warm caches).
func client(o options) error {
	targets := strings.Split(o.client, ",")
	best := make(map[string]*figures)
	for r := range o.rounds {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			f, err := measure(t, o)
			if err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
			round := [3]float64{f.MiBPerSec, f.ConnsPerSec, f.P99Micros}
			b := best[t]
			if b == nil {
				f.Rounds = [][3]float64{round}
				best[t] = &f
				continue
			}
			b.Rounds = append(b.Rounds, round)
			b.MiBPerSec = max(b.MiBPerSec, f.MiBPerSec)
			b.ConnsPerSec = max(b.ConnsPerSec, f.ConnsPerSec)
			b.P99Micros = min(b.P99Micros, f.P99Micros)
			b.P50Micros = min(b.P50Micros, f.P50Micros)
			b.FailedConns += f.FailedConns
			b.LatencySample += f.LatencySample
		}
	}
	var out []figures
	for _, t := range targets {
		out = append(out, *best[t])
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func measure(target string, o options) (figures, error) {
	f := figures{Target: target}
	// Bulk: one stream of o.bytes.
	tr := &http.Transport{DisableKeepAlives: true}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	start := time.Now()
	resp, err := hc.Get("http://" + target + "/bytes?n=" + strconv.FormatInt(o.bytes, 10))
	if err != nil {
		return f, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != o.bytes {
		return f, fmt.Errorf("bulk read %d of %d bytes: %v", n, o.bytes, err)
	}
	f.MiBPerSec = float64(n) / (1 << 20) / time.Since(start).Seconds()

	// Connection rate and latency: connect, GET /, read, close.
	var mu sync.Mutex
	var lat []time.Duration
	total, failed := 0, 0
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for range o.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			var mine []time.Duration
			ok, bad := 0, 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				c, err := net.DialTimeout("tcp", target, time.Second)
				if err != nil {
					bad++
					continue
				}
				// No TIME_WAIT on the client: tens of thousands of short
				// connections would use up its ports.
				_ = c.(*net.TCPConn).SetLinger(0)
				_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if err == nil {
					_, err = readAll(c, buf)
				}
				c.Close()
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
				ok++
			}
			mu.Lock()
			lat = append(lat, mine...)
			total += ok
			failed += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	f.ConnsPerSec = float64(total) / o.duration.Seconds()
	f.FailedConns = failed
	slices.Sort(lat)
	if len(lat) > 0 {
		f.P99Micros = float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())
		f.P50Micros = float64(lat[len(lat)/2].Microseconds())
	}
	f.LatencySample = len(lat)
	return f, nil
}

// readAll reads until EOF.
func readAll(c net.Conn, buf []byte) (int, error) {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	total := 0
	for {
		n, err := c.Read(buf)
		total += n
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
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
	// The pods' cgroups of earlier runs, whose data folders are gone (their
	// pods ended with their isolated namespaces).
	if err := socklb.GCPodCgroups(""); err != nil {
		fmt.Fprintln(os.Stderr, "bench/dataplane:", err)
	}
	upArgs := []string{"--proxy-mode", o.mode}
	if o.noSocketLB {
		upArgs = append(upArgs, "--disable-socket-lb")
	}
	u, err := benchproc.StartUp(o.bin, upArgs...)
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
	cs, err := u.Client()
	if err != nil {
		return err
	}
	log := u.Log
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pods := cs.CoreV1().Pods("default")
	server := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Labels: map[string]string{"app": "server"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "server", Image: "bench", Command: []string{self, "-serve", ":8080"},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
		}}},
	}
	clientPod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}}}},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "server"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "server"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	for _, p := range []*corev1.Pod{server, clientPod} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	created, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	var podIP string
	for {
		s, err1 := pods.Get(ctx, "server", metav1.GetOptions{})
		c, err2 := pods.Get(ctx, "client", metav1.GetOptions{})
		if err1 == nil && err2 == nil && ready(s) && ready(c) {
			podIP = s.Status.PodIP
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods not ready:\n%s", log.Tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
	clusterIP := created.Spec.ClusterIP
	// The Service answers once the proxy has the endpoint.
	for {
		c, err := net.DialTimeout("tcp", clusterIP+":80", 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the Service never answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
	targets := clusterIP + ":80," + podIP + ":8080"
	args := []string{"exec", "client", "--", self, "-client", targets,
		"-bytes", fmt.Sprint(o.bytes), "-duration", o.duration.String(),
		"-parallel", fmt.Sprint(o.parallel), "-rounds", fmt.Sprint(o.rounds)}
	out, err := u.Kubectl(args...)
	if err != nil {
		return err
	}
	var fs []figures
	if err := json.Unmarshal(out, &fs); err != nil || len(fs) != 2 {
		return fmt.Errorf("the client's answer %q: %v", out, err)
	}
	svcF, direct := fs[0], fs[1]
	lb := "socket load balancing on"
	if o.noSocketLB {
		lb = "socket load balancing off (--disable-socket-lb)"
	}
	fmt.Printf("proxy mode %s, %s; pod to pod on one node; best (and median) of %d alternating rounds; host %+v\n", o.mode, lb, o.rounds, benchproc.ReadHost())
	// Which path the ClusterIP connections took: through the proxy's DNAT,
	// each leaves a conntrack entry to the ClusterIP in the node's namespace
	// (for 10 s after its RST); balanced in connect(), none.
	if n, err := conntrackTo(clusterIP); err == nil {
		fmt.Printf("  conntrack entries to the ClusterIP %s in the node's namespace after the rounds: %d\n", clusterIP, n)
	}
	fmt.Printf("  %-28s %10s %12s %10s %10s %7s\n", "target", "MiB/s", "conns/s", "p50 µs", "p99 µs", "failed")
	for _, f := range fs {
		fmt.Printf("  %-28s %10.0f %12.0f %10.0f %10.0f %7d\n", f.Target, f.MiBPerSec, f.ConnsPerSec, f.P50Micros, f.P99Micros, f.FailedConns)
	}
	fmt.Printf("  ratio ClusterIP/direct:      throughput %.2f, connections/s %.2f, p99 latency %.2f (direct/ClusterIP: ≥ 1 would be as fast)\n",
		svcF.MiBPerSec/direct.MiBPerSec, svcF.ConnsPerSec/direct.ConnsPerSec, direct.P99Micros/svcF.P99Micros)
	if len(svcF.Rounds) > 1 && len(direct.Rounds) > 1 {
		fmt.Printf("  ratio of the medians:        throughput %.2f, connections/s %.2f, p99 latency %.2f\n",
			median(svcF.Rounds, 0)/median(direct.Rounds, 0), median(svcF.Rounds, 1)/median(direct.Rounds, 1), median(direct.Rounds, 2)/median(svcF.Rounds, 2))
		for _, f := range fs {
			var b strings.Builder
			for _, r := range f.Rounds {
				fmt.Fprintf(&b, " %.0f/%.0f/%.0f", r[0], r[1], r[2])
			}
			fmt.Printf("  rounds of %s (MiB/s / conns/s / p99 µs):%s\n", f.Target, b.String())
		}
	}
	return nil
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// conntrackTo counts the node namespace's conntrack entries whose original
// destination is ip.
func conntrackTo(ip string) (int, error) {
	b, err := os.ReadFile("/proc/thread-self/net/nf_conntrack")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && slices.Contains(f, "dst="+ip) {
			n++
		}
	}
	return n, nil
}
