package storage

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestKeyGroupResource(t *testing.T) {
	for _, tc := range []struct {
		key          string
		wantGroup    string
		wantResource string
	}{
		{key: "/registry/core/pods/default/nginx", wantResource: "pods"},
		{key: "/registry/core/pods/", wantResource: "pods"},
		{key: "/registry/core/pods", wantResource: "pods"},
		{key: "/registry/apps/deployments/default/", wantGroup: "apps", wantResource: "deployments"},
		{key: "/registry/core/namespaces/kube-system", wantResource: "namespaces"},
		{key: "/registry/networking.k8s.io/ipaddresses/10.96.0.1", wantGroup: "networking.k8s.io", wantResource: "ipaddresses"},
		{key: "/registry/"},
		{key: "/registry/health"},
		{key: "/registry//pods/x"},
		{key: "/other/core/pods/x"},
		{key: ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			g, r := keyGroupResource(tc.key)
			if g != tc.wantGroup || r != tc.wantResource {
				t.Errorf("keyGroupResource(%q) = %q, %q; want %q, %q", tc.key, g, r, tc.wantGroup, tc.wantResource)
			}
		})
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.ObserveEtcdRequest("get", "/registry/core/pods/a/b", time.Millisecond, nil)
	m.EventReceived("/registry/core/pods/a/b")
	m.EventDispatched("/registry/core/pods/a/b")
	m.InitEvents("/registry/core/pods/", 3)
	m.WatcherAdded("/registry/core/pods/")
	m.WatcherRemoved("/registry/core/pods/")
	m.WatcherTerminated("/registry/core/pods/")
	m.WatchExpired("/registry/core/pods/")
	m.SetResourceVersion("/registry/core/pods/", 5)
	m.SetCapacity("/registry/core/pods/", 5)
	m.CacheInitialized("/registry/core/pods/")
	m.ObserveReadWait("/registry/core/pods/", time.Millisecond)
	m.ConsistentRead("/registry/core/pods/", true, false)
	m.ProgressNotify("/registry/core/pods/")
	m.CacheList("/registry/core/pods/", 2, 1)
	kv := fakeKV{}
	if got := m.InstrumentKV(kv); got != clientv3.KV(kv) {
		t.Errorf("nil Metrics wrapped the KV: %T", got)
	}
	if m, err := NewMetrics(nil); m != nil || err != nil {
		t.Errorf("NewMetrics(nil) = %v, %v; want nil, nil", m, err)
	}
}

func TestNewMetricsTwiceOnOneRegistryFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatalf("first NewMetrics: %v", err)
	}
	_, err := NewMetrics(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second NewMetrics: err = %v, want an AlreadyRegisteredError", err)
	}
}

func TestWatchCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.EventReceived("/registry/core/pods/default/a")
	m.EventDispatched("/registry/core/pods/default/a")
	m.EventDispatched("/registry/apps/deployments/default/d")
	m.WatcherAdded("/registry/core/pods/")
	m.WatcherAdded("/registry/core/pods/default/")
	m.WatcherRemoved("/registry/core/pods/")
	m.WatcherTerminated("/registry/core/pods/default/")
	m.WatchExpired("/registry/core/services/")
	m.SetResourceVersion("/registry/core/pods/", 42)
	m.SetCapacity("/registry/core/pods/", 100)
	m.CacheList("/registry/core/pods/default/", 10, 4)
	m.ConsistentRead("/registry/core/pods/", true, false)

	got := gather(t, reg)
	for _, want := range []string{
		`apiserver_watch_cache_events_received_total{group="",resource="pods"} 1`,
		`apiserver_watch_cache_events_dispatched_total{group="",resource="pods"} 1`,
		`apiserver_watch_cache_events_dispatched_total{group="apps",resource="deployments"} 1`,
		`kubesvc_watch_cache_watchers{group="",resource="pods"} 1`,
		`apiserver_terminated_watchers_total{group="",resource="pods"} 1`,
		`kubesvc_watch_cache_expired_total{group="",resource="services"} 1`,
		`apiserver_watch_cache_resource_version{group="",resource="pods"} 42`,
		`watch_cache_capacity{group="",resource="pods"} 100`,
		`apiserver_cache_list_total{group="",index="",resource="pods"} 1`,
		`apiserver_cache_list_fetched_objects_total{group="",index="",resource="pods"} 10`,
		`apiserver_cache_list_returned_objects_total{group="",resource="pods"} 4`,
		`apiserver_watch_cache_consistent_read_total{fallback="false",group="",resource="pods",success="true"} 1`,
	} {
		if !got[want] {
			t.Errorf("missing sample %s", want)
		}
	}
}

func TestInstrumentKVNamesOperations(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv := m.InstrumentKV(fakeKV{err: errors.New("boom"), errKey: "/registry/core/secrets/ns/s"})
	pod := "/registry/core/pods/default/a"
	_, _ = kv.Get(ctx, pod)
	_, _ = kv.Get(ctx, "/registry/core/pods/", clientv3.WithPrefix())
	_, _ = kv.Get(ctx, "/registry/health", clientv3.WithCountOnly())
	_, _ = kv.Get(ctx, "/registry/core/pods/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	_, _ = kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(pod), "=", 0)).
		Then(clientv3.OpPut(pod, "x")).Else(clientv3.OpGet(pod)).Commit()
	_, _ = kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(pod), "=", 7)).
		Then(clientv3.OpPut(pod, "y")).Commit()
	_, _ = kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(pod), "=", 8)).
		Then(clientv3.OpDelete(pod)).Commit()
	_, _ = kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/apps/deployments/ns/d"), "=", 0)).Commit()
	_, _ = kv.Get(ctx, "/registry/core/secrets/ns/s")

	got := gather(t, reg)
	for _, want := range []string{
		`etcd_requests_total{group="",operation="get",resource="pods"} 1`,
		`etcd_requests_total{group="",operation="list",resource="pods"} 1`,
		`etcd_requests_total{group="",operation="getCurrentResourceVersion",resource=""} 1`,
		`etcd_requests_total{group="",operation="listWithCount",resource="pods"} 1`,
		`etcd_requests_total{group="",operation="create",resource="pods"} 1`,
		`etcd_requests_total{group="",operation="update",resource="pods"} 1`,
		`etcd_requests_total{group="",operation="delete",resource="pods"} 1`,
		`etcd_requests_total{group="apps",operation="txn",resource="deployments"} 1`,
		`etcd_requests_total{group="",operation="get",resource="secrets"} 1`,
		`etcd_request_errors_total{group="",operation="get",resource="secrets"} 1`,
		`etcd_request_duration_seconds_count{group="",operation="create",resource="pods"} 1`,
	} {
		if !got[want] {
			t.Errorf("missing sample %s", want)
		}
	}
	for s := range got {
		if strings.HasPrefix(s, "etcd_request_errors_total") && !strings.Contains(s, "secrets") {
			t.Errorf("unexpected error sample %s", s)
		}
	}
}

func TestObjectCountCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	counts := map[schema.GroupResource]int{{Resource: "pods"}: 3, {Group: "apps", Resource: "deployments"}: 1}
	if err := reg.Register(NewObjectCountCollector(func() map[schema.GroupResource]int { return counts })); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	var samples []string
	for s := range got {
		samples = append(samples, s)
	}
	sort.Strings(samples)
	want := []string{
		`apiserver_resource_objects{group="",resource="pods"} 3`,
		`apiserver_resource_objects{group="apps",resource="deployments"} 1`,
		`apiserver_storage_objects{resource="deployments.apps"} 1`,
		`apiserver_storage_objects{resource="pods"} 3`,
	}
	if d := cmp.Diff(want, samples); d != "" {
		t.Errorf("samples (-want +got):\n%s", d)
	}
	counts = nil // nothing to report yet: no samples, no error
	if got := gather(t, reg); len(got) != 0 {
		t.Errorf("samples for nil counts: %v", got)
	}
}

// gather returns the registry's counter, gauge and histogram-count samples as
// `name{label="value",...} value` lines (labels sorted, as Gather sorts them).
func gather(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name, v := mf.GetName(), 0.0
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				name += "_count"
				v = float64(m.GetHistogram().GetSampleCount())
			default:
				continue
			}
			out[name+"{"+strings.Join(labels, ",")+"} "+strconv.FormatFloat(v, 'g', -1, 64)] = true
		}
	}
	return out
}

// fakeKV answers every request with an empty response, and with err for errKey.
type fakeKV struct {
	clientv3.KV
	err    error
	errKey string
}

func (f fakeKV) Get(_ context.Context, key string, _ ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if key == f.errKey {
		return nil, f.err
	}
	return &clientv3.GetResponse{}, nil
}

func (f fakeKV) Txn(context.Context) clientv3.Txn { return fakeTxn{} }

type fakeTxn struct{}

func (t fakeTxn) If(...clientv3.Cmp) clientv3.Txn  { return t }
func (t fakeTxn) Then(...clientv3.Op) clientv3.Txn { return t }
func (t fakeTxn) Else(...clientv3.Op) clientv3.Txn { return t }
func (fakeTxn) Commit() (*clientv3.TxnResponse, error) {
	return &clientv3.TxnResponse{}, nil
}
