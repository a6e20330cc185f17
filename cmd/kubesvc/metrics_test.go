package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubesvc/kubesvc/internal/apiserver"
)

// TestServerMetrics runs `kubesvc server` (API server and every controller, as the
// command wires them), makes a few requests, and scrapes /metrics with the admin
// client certificate: the output must parse as the Prometheus text format and hold
// request, storage, watch and work queue metrics.
func TestServerMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server with embedded etcd")
	}
	dir := t.TempDir()
	f := &serverFlags{}
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	f.add(fs)
	if err := fs.Parse([]string{"--data-dir=" + dir, "--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false", "--log-level=error"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *apiserver.Server, 1)
	done := make(chan struct{})
	var runErr error
	_, r, err := f.runner(func(s *apiserver.Server) { ready <- s })
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		runErr = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("server failed: %v", runErr)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready after 60s")
	}

	rc, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "scraped"}, Data: map[string]string{"k": "v"}}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Anonymous scrapes are refused like every other non-public path.
	anon, err := rest.HTTPClientFor(rest.AnonymousClientConfig(rc))
	if err != nil {
		t.Fatal(err)
	}
	if code := get(t, anon, rc.Host+"/metrics", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /metrics: %d, want 401", code)
	}

	admin, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	checks := metricChecks()
	var failed []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		var families map[string]*dto.MetricFamily
		code := get(t, admin, rc.Host+"/metrics", func(resp *http.Response) {
			parser := expfmt.NewTextParser(model.UTF8Validation)
			var err error
			if families, err = parser.TextToMetricFamilies(resp.Body); err != nil {
				t.Fatalf("/metrics is not in the Prometheus text format: %v", err)
			}
		})
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", code)
		}
		failed = failed[:0]
		for _, c := range checks {
			if err := c.check(families); err != nil {
				failed = append(failed, c.name+": "+err.Error())
			}
		}
		// Work queues, watches and their events appear as the controllers start.
		if len(failed) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, f := range failed {
		t.Error(f)
	}
}

type metricCheck struct {
	name  string
	check func(map[string]*dto.MetricFamily) error
}

func metricChecks() []metricCheck {
	list := map[string]string{"verb": "LIST", "group": "", "version": "v1", "resource": "pods",
		"subresource": "", "scope": "namespace", "component": "apiserver"}
	checks := []metricCheck{
		{"LIST pods counted with code 200", atLeast("apiserver_request_total", dto.MetricType_COUNTER, with(list, "code", "200"), 1)},
		{"request duration histogram", atLeast("apiserver_request_duration_seconds", dto.MetricType_HISTOGRAM, list, 1)},
		{"watches are long-running requests", atLeast("apiserver_longrunning_requests", dto.MetricType_GAUGE, map[string]string{"verb": "WATCH"}, 1)},
		{"watch events sent", atLeast("apiserver_watch_events_total", dto.MetricType_COUNTER, nil, 1)},
		{"stored configmaps", atLeast("apiserver_storage_objects", dto.MetricType_GAUGE, map[string]string{"resource": "configmaps"}, 1)},
		{"stored namespaces", atLeast("apiserver_resource_objects", dto.MetricType_GAUGE, map[string]string{"group": "", "resource": "namespaces"}, 4)},
		{"etcd create latency", atLeast("etcd_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"operation": "create", "resource": "configmaps"}, 1)},
		{"Go runtime", atLeast("go_goroutines", dto.MetricType_GAUGE, nil, 1)},
		{"serviceaccount queue took namespaces", atLeast("workqueue_adds_total", dto.MetricType_COUNTER, map[string]string{"name": "serviceaccount"}, 1)},
	}
	// The work queues of every controller `kubesvc server` runs
	// (kube-controller-manager's names).
	for _, q := range []string{"deployment", "endpoint", "endpoint_slice", "endpoint_slice_mirroring",
		"garbage_collector", "namespace", "nodeipam", "nodelifecycle", "replicaset",
		"root_ca_cert_publisher", "scheduler", "serviceaccount"} {
		checks = append(checks, metricCheck{"work queue " + q, atLeast("workqueue_depth", dto.MetricType_GAUGE, map[string]string{"name": q}, 0)})
	}
	// The watch cache's own metrics (storage.Metrics), which must appear once the
	// server runs (any type, any value).
	for _, family := range []string{
		"apiserver_watch_cache_events_received_total",
		"apiserver_watch_cache_events_dispatched_total",
		"apiserver_watch_cache_resource_version",
		"watch_cache_capacity",
		"kubesvc_watch_cache_watchers",
		"apiserver_watch_cache_initializations_total",
		"apiserver_init_events_total",
		"apiserver_cache_list_total",
	} {
		checks = append(checks, metricCheck{"watch cache " + family, atLeast(family, -1, nil, 0)})
	}
	return checks
}

// atLeast checks that family has type typ (-1: any) and that the values of its
// series whose labels include labels (histograms: their sample counts) add up to
// at least min; with min 0 such a series need only exist.
func atLeast(family string, typ dto.MetricType, labels map[string]string, min float64) func(map[string]*dto.MetricFamily) error {
	return func(families map[string]*dto.MetricFamily) error {
		mf := families[family]
		if mf == nil {
			return fmt.Errorf("no family %s", family)
		}
		if typ >= 0 && mf.GetType() != typ {
			return fmt.Errorf("%s has type %v, want %v", family, mf.GetType(), typ)
		}
		sum, n := 0.0, 0
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if label(m, k) != v {
					continue series
				}
			}
			n++
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				sum += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				sum += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		if n == 0 || sum < min {
			return fmt.Errorf("%s%s: %d series adding up to %v, want at least %v (have %s)", family, fmtLabels(labels), n, sum, min, seriesOf(mf))
		}
		return nil
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

func fmtLabels(labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// seriesOf lists a family's label sets, for failure messages.
func seriesOf(mf *dto.MetricFamily) string {
	var out []string
	for i, m := range mf.GetMetric() {
		if i == 10 {
			out = append(out, "...")
			break
		}
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out = append(out, fmtLabels(labels))
	}
	return strings.Join(out, " ")
}

// get sends GET url and hands a 200 response to body (if set); it returns the
// status code.
func get(t *testing.T, c *http.Client, url string, body func(*http.Response)) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && body != nil {
		body(resp)
	}
	return resp.StatusCode
}
