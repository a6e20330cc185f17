// Command proxy benchmarks the service proxy's control plane as a node runs it:
// one `kubesvc server` and one `kubesvc proxy` process, sealed in namespaces of
// their own (the proxy programs the network it runs in, so this command refuses
// to run in a network namespace that has more than loopback). It reports; it
// never fails because of a number. See docs/benchmarks.md.
//
//	go build -o /tmp/kubesvc ./cmd/kubesvc
//	../shared/tools/isolated go run ./bench/proxy -bin /tmp/kubesvc -services 10000 -mode nftables
//	../shared/tools/isolated go run ./bench/proxy -bin /tmp/kubesvc -services 10000 -mode iptables -iptables-backend legacy
//
// In iptables mode the proxy runs the iptables-save/iptables-restore found on
// its PATH (whichever variant the system's alternatives point to);
// -iptables-backend legacy or nft puts a directory first on the proxy's PATH
// whose iptables-save, iptables-restore (and ip6tables-…) are the
// iptables-legacy-… or iptables-nft-… binaries. The whole run is bounded by
// -timeout: a proxy that has not synced by then is reported as such.
//
// Measured, for -services Services (selector-less, one TCP port) with one
// EndpointSlice of -endpoints endpoints each, created before the proxy starts:
//   - start → all rules: from the proxy's exec to the end of its first sync (its
//     kubeproxy_sync_proxy_rules_last_timestamp_seconds), and that sync's duration;
//   - one endpoint change: -changes times, one endpoint of one Service replaced
//     (with the endpoints.kubernetes.io/last-change-trigger-time annotation set
//     to the write); kubeproxy_network_programming_duration_seconds gives write →
//     rules; the partial sync's own duration too;
//   - burst of -burst new Services: from the last create's answer to the end of
//     the sync that has them all;
//   - the proxy's RSS.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/bench/internal/benchproc"
)

type options struct {
	bin       string
	mode      string
	services  int
	endpoints int
	changes   int
	burst     int
	parallel  int
	out       string
	// proxyLog and proxyLogLevel: where the proxy's own log goes ("": only
	// its tail, on failure) and at which level (debug shows the start-up's
	// phases: "service proxy configured", "service proxy starting",
	// "informers synced", the first "synced").
	proxyLog      string
	proxyLogLevel string
	// listProbe rounds of probeLists before the proxy starts (0: none).
	listProbe int
	probePage int64
	// iptablesBackend: "" (the iptables binaries on PATH), "legacy" or "nft".
	iptablesBackend string
	timeout         time.Duration
	// proxyEnv: KEY=VALUE pairs added to the proxy's environment only
	// (GOGC, GODEBUG, ...).
	proxyEnv []string
}

type result struct {
	Host   benchproc.Host `json:"host"`
	Commit string         `json:"commit,omitempty"`
	Mode   string         `json:"mode"`
	// IPTables is the iptables variant the proxy ran (iptables mode only).
	IPTables  string `json:"iptables_backend,omitempty"`
	Services  int    `json:"services"`
	Endpoints int    `json:"endpoints_per_service"`
	// StartToRules is from the proxy's exec to the end of its first sync.
	StartToRules  string  `json:"start_to_all_rules"`
	FirstSync     string  `json:"first_sync_duration"`
	ChangeP50     string  `json:"endpoint_change_write_to_rules_p50"`
	ChangeMax     string  `json:"endpoint_change_write_to_rules_max"`
	PartialSync   string  `json:"partial_sync_duration_mean"`
	Burst         int     `json:"burst_services"`
	BurstToRules  string  `json:"last_burst_create_to_rules"`
	RSSMiB        float64 `json:"proxy_rss_mib"`
	RSSAnonMiB    float64 `json:"proxy_rss_anon_mib"`
	CPUSeconds    float64 `json:"proxy_cpu_seconds"`
	SyncFailures  float64 `json:"sync_failures"`
	CreateSeconds float64 `json:"objects_created_in_seconds"`
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "kubesvc binary (default: build ./cmd/kubesvc)")
	flag.StringVar(&o.mode, "mode", "nftables", "proxy mode: nftables or iptables")
	flag.IntVar(&o.services, "services", 1000, "Services before the proxy starts")
	flag.IntVar(&o.endpoints, "endpoints", 10, "endpoints per Service")
	flag.IntVar(&o.changes, "changes", 10, "single-endpoint changes measured one after the other")
	flag.IntVar(&o.burst, "burst", 100, "Services created at once while the proxy runs")
	flag.IntVar(&o.parallel, "parallel", 16, "concurrent create requests")
	flag.StringVar(&o.out, "out", "", "also write the result as JSON to this file")
	flag.StringVar(&o.proxyLog, "proxy-log", "", "also write the proxy's log to this file")
	flag.IntVar(&o.listProbe, "list-probe", 0, "before the proxy starts, time the initial lists this many times as a list, a paginated list and a streaming list (watch-list)")
	flag.Int64Var(&o.probePage, "probe-page", 500, "page size of -list-probe's paginated list")
	flag.StringVar(&o.iptablesBackend, "iptables-backend", "", "iptables mode: the iptables variant the proxy runs, legacy or nft (default: the iptables-restore on PATH)")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up (and report what was measured) after this long")
	flag.Func("proxy-env", "KEY=VALUE added to the proxy's environment only, not the server's (repeatable; e.g. GOGC=200)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.proxyEnv = append(o.proxyEnv, v)
		return nil
	})
	flag.StringVar(&o.proxyLogLevel, "proxy-log-level", "warn", "the proxy's --log-level (debug shows its start-up phases)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := benchproc.RequireSealedNetwork("the proxy"); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kubesvc-bench-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, built, err := benchproc.PrepareBinary(o.bin, false, "", tmp)
	if err != nil {
		return err
	}
	res := result{Host: benchproc.ReadHost(), Mode: o.mode, Services: o.services, Endpoints: o.endpoints, Burst: o.burst}
	proxyEnv := os.Environ()
	if o.mode == "iptables" {
		var pathDir string
		if res.IPTables, pathDir, err = iptablesVariant(o.iptablesBackend, tmp); err != nil {
			return err
		}
		if pathDir != "" {
			proxyEnv = append(proxyEnv, "PATH="+pathDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
	} else if o.iptablesBackend != "" {
		return errors.New("-iptables-backend needs -mode iptables")
	}
	if built {
		res.Commit = benchproc.GitCommit()
	}
	var procs benchproc.Procs
	defer procs.StopAll()
	srv, err := procs.Start(bin, filepath.Join(tmp, "server"), 0, "--controllers=*,-nodelifecycle")
	if err != nil {
		return err
	}
	if _, err := srv.WaitReady(60 * time.Second); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", srv.Kubeconfig())
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	start := time.Now()
	if err := createServices(ctx, client, "svc", o.services, o.endpoints, o.parallel); err != nil {
		return err
	}
	res.CreateSeconds = math.Round(time.Since(start).Seconds()*10) / 10
	if o.listProbe > 0 {
		if err := probeLists(ctx, rc, o.listProbe, o.probePage); err != nil {
			return fmt.Errorf("list probe: %w", err)
		}
	}

	// The proxy, with its metrics on loopback.
	const metricsAddr = "127.0.0.1:10249"
	cmd := exec.Command(bin, "proxy", "--kubeconfig", srv.Kubeconfig(), "--hostname-override", "node-a",
		"--proxy-mode", o.mode, "--metrics-bind-address", metricsAddr, "--healthz-bind-address", "", "--log-level", o.proxyLogLevel)
	cmd.Env = append(proxyEnv, o.proxyEnv...)
	tail := &benchproc.LineTail{}
	cmd.Stdout, cmd.Stderr = io.Discard, tail
	if o.proxyLog != "" {
		f, err := os.Create(o.proxyLog)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stderr = io.MultiWriter(tail, f)
	}
	exec0 := time.Now()
	if o.proxyLog != "" {
		// The exec's time, in the log's own format, for the phases after it.
		fmt.Fprintf(cmd.Stderr, "time=%s level=BENCH msg=\"proxy exec\"\n", exec0.Format(time.RFC3339Nano))
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	m := metricsReader{url: "http://" + metricsAddr + "/metrics"}
	var first float64
	for {
		select {
		case <-done:
			return fmt.Errorf("the proxy exited:\n%s", tail.Tail())
		case <-ctx.Done():
			return fmt.Errorf("no first sync %s after the proxy started (-timeout %s): %w",
				time.Since(exec0).Round(time.Second), o.timeout, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		v, err := m.read(ctx)
		if err != nil {
			continue
		}
		if first = v["kubeproxy_sync_proxy_rules_last_timestamp_seconds"]; first > 0 {
			res.FirstSync = secs(v["kubeproxy_sync_full_proxy_rules_duration_seconds_sum"])
			break
		}
	}
	res.StartToRules = time.Unix(0, int64(first*1e9)).Sub(exec0).Round(time.Millisecond).String()

	// One endpoint change at a time.
	var lat []float64
	var partialSum, partialN float64
	for i := range o.changes {
		before, err := m.read(ctx)
		if err != nil {
			return err
		}
		if err := changeEndpoint(ctx, client, fmt.Sprintf("svc-%d", (i*7919)%o.services), i); err != nil {
			return err
		}
		after, err := m.waitFor(ctx, func(v map[string]float64) bool {
			return v["kubeproxy_network_programming_duration_seconds_count"] > before["kubeproxy_network_programming_duration_seconds_count"]
		})
		if err != nil {
			return fmt.Errorf("change %d: %w\n%s", i, err, tail.Tail())
		}
		lat = append(lat, after["kubeproxy_network_programming_duration_seconds_sum"]-before["kubeproxy_network_programming_duration_seconds_sum"])
		partialSum += after["kubeproxy_sync_partial_proxy_rules_duration_seconds_sum"] - before["kubeproxy_sync_partial_proxy_rules_duration_seconds_sum"]
		partialN += after["kubeproxy_sync_partial_proxy_rules_duration_seconds_count"] - before["kubeproxy_sync_partial_proxy_rules_duration_seconds_count"]
		time.Sleep(1100 * time.Millisecond) // past minSyncPeriod: each change syncs alone
	}
	if len(lat) > 0 {
		sortFloats(lat)
		res.ChangeP50, res.ChangeMax = secs(lat[len(lat)/2]), secs(lat[len(lat)-1])
	}
	if partialN > 0 {
		res.PartialSync = secs(partialSum / partialN)
	}

	// A burst of new Services while the proxy runs.
	if o.burst > 0 {
		if err := createServices(ctx, client, "burst", o.burst, o.endpoints, o.parallel); err != nil {
			return err
		}
		last := time.Now()
		if _, err := m.waitFor(ctx, func(v map[string]float64) bool {
			return v["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] > float64(last.UnixNano())/1e9 &&
				v["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0 &&
				v["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] == 0
		}); err != nil {
			return err
		}
		v, err := m.read(ctx)
		if err != nil {
			return err
		}
		res.BurstToRules = time.Unix(0, int64(v["kubeproxy_sync_proxy_rules_last_timestamp_seconds"]*1e9)).Sub(last).Round(time.Millisecond).String()
	}
	st, err := benchproc.ProcStatus(cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.RSSMiB, res.RSSAnonMiB = round1(float64(st["VmRSS"])/1024), round1(float64(st["RssAnon"])/1024)
	if res.CPUSeconds, err = benchproc.CPUSeconds(cmd.Process.Pid); err != nil {
		return err
	}
	if v, err := m.read(ctx); err == nil {
		res.SyncFailures = v["kubeproxy_sync_proxy_rules_failures_total"]
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	if o.out != "" {
		return os.WriteFile(o.out, append(b, '\n'), 0o644)
	}
	return nil
}

// createServices creates n selector-less Services named PREFIX-i with one
// EndpointSlice of eps endpoints each.
func createServices(ctx context.Context, client kubernetes.Interface, prefix string, n, eps, parallel int) error {
	work := make(chan int)
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := createService(ctx, client, fmt.Sprintf("%s-%d", prefix, i), i, eps); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		select {
		case work <- i:
		case err := <-errc:
			close(work)
			wg.Wait()
			return err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func createService(ctx context.Context, client kubernetes.Interface, name string, i, eps int) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Service %s: %w", name, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for j := range eps {
		k := i*eps + j
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 128+k/65536%64, k/256%256, k%256)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To("node-b"),
		})
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create EndpointSlice %s: %w", name, err)
	}
	return nil
}

// changeEndpoint replaces the first endpoint of the Service's slice, stamping
// the write time as the change's trigger time.
func changeEndpoint(ctx context.Context, client kubernetes.Interface, name string, i int) error {
	s, err := client.DiscoveryV1().EndpointSlices("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.Endpoints[0].Addresses = []string{fmt.Sprintf("10.250.%d.%d", i/256%256, i%256)}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations["endpoints.kubernetes.io/last-change-trigger-time"] = time.Now().UTC().Format(time.RFC3339Nano)
	_, err = client.DiscoveryV1().EndpointSlices("default").Update(ctx, s, metav1.UpdateOptions{})
	return err
}

// metricsReader reads the proxy's /metrics (untyped: name{labels} value; the
// label-free series and the _sum/_count of histograms are what it needs).
type metricsReader struct{ url string }

func (m metricsReader) read(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}

func (m metricsReader) waitFor(ctx context.Context, cond func(map[string]float64) bool) (map[string]float64, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		v, err := m.read(ctx)
		if err == nil && cond(v) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil, errors.New("the proxy's metrics never showed the change")
}

// iptablesVariant resolves -iptables-backend: the variant's name (as
// `iptables-restore --version` prints it, "legacy" or "nf_tables") and, for
// "legacy" or "nft", a directory under tmp with iptables-save,
// iptables-restore and the ip6tables pair linked to that variant's binaries,
// to put first on the proxy's PATH.
func iptablesVariant(backend, tmp string) (name, dir string, err error) {
	restore := "iptables-restore"
	if backend != "" {
		if backend != "legacy" && backend != "nft" {
			return "", "", fmt.Errorf("-iptables-backend %q: want legacy or nft", backend)
		}
		dir = filepath.Join(tmp, "iptables-"+backend)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", err
		}
		for _, fam := range []string{"iptables", "ip6tables"} {
			for _, tool := range []string{"save", "restore"} {
				target, err := exec.LookPath(fam + "-" + backend + "-" + tool)
				if err != nil {
					return "", "", fmt.Errorf("-iptables-backend %s: %w", backend, err)
				}
				// xtables-*-multi picks its applet by the name it runs under.
				if err := os.Symlink(target, filepath.Join(dir, fam+"-"+tool)); err != nil {
					return "", "", err
				}
			}
		}
		restore = filepath.Join(dir, restore)
	}
	out, err := exec.Command(restore, "--version").CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w: %s", restore, err, out)
	}
	// "iptables-restore v1.8.9 (nf_tables)" or "… (legacy)".
	v := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(v, '('); i >= 0 {
		v = strings.Trim(v[i:], "()")
	}
	return v, dir, nil
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

func sortFloats(v []float64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
