package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Metrics are the storage layer's Prometheus collectors: etcd request latency and the
// watch cache's counters and gauges, under kube-apiserver's names
// (k8s.io/apiserver/pkg/storage/etcd3/metrics and .../storage/cacher/metrics) where
// kube-apiserver has the metric, and under kubesvc_ where it has none.
//
// Every method takes the etcd key (or key prefix) the event concerns and derives
// the group and resource labels from it (/registry/<group or "core">/<resource>/...);
// a key outside that layout gets empty labels. Every method is safe on a nil
// *Metrics, which records nothing, so components can take an optional *Metrics.
type Metrics struct {
	etcdDuration *prometheus.HistogramVec // etcd_request_duration_seconds
	etcdRequests *prometheus.CounterVec   // etcd_requests_total
	etcdErrors   *prometheus.CounterVec   // etcd_request_errors_total

	eventsReceived   *prometheus.CounterVec   // apiserver_watch_cache_events_received_total
	eventsDispatched *prometheus.CounterVec   // apiserver_watch_cache_events_dispatched_total
	initEvents       *prometheus.CounterVec   // apiserver_init_events_total
	terminated       *prometheus.CounterVec   // apiserver_terminated_watchers_total
	resourceVersion  *prometheus.GaugeVec     // apiserver_watch_cache_resource_version
	capacity         *prometheus.GaugeVec     // watch_cache_capacity
	initializations  *prometheus.CounterVec   // apiserver_watch_cache_initializations_total
	readWait         *prometheus.HistogramVec // apiserver_watch_cache_read_wait_seconds
	consistentReads  *prometheus.CounterVec   // apiserver_watch_cache_consistent_read_total
	bookmarks        *prometheus.CounterVec   // etcd_bookmark_total
	cacheLists       *prometheus.CounterVec   // apiserver_cache_list_total
	listFetched      *prometheus.CounterVec   // apiserver_cache_list_fetched_objects_total
	listReturned     *prometheus.CounterVec   // apiserver_cache_list_returned_objects_total
	watchers         *prometheus.GaugeVec     // kubesvc_watch_cache_watchers
	expired          *prometheus.CounterVec   // kubesvc_watch_cache_expired_total
}

// RequestBuckets returns kube-apiserver's histogram buckets for request and etcd
// latencies (seconds).
func RequestBuckets() []float64 {
	return []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3,
		4, 5, 6, 8, 10, 15, 20, 30, 45, 60}
}

// NewMetrics creates the storage collectors and registers them on reg. A nil reg
// yields a nil *Metrics (which records nothing). Registering twice on one registry
// fails with prometheus.AlreadyRegisteredError.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	gr := []string{"group", "resource"}
	opGR := []string{"operation", "group", "resource"}
	m := &Metrics{
		etcdDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcd_request_duration_seconds",
			Help:    "Etcd request latency in seconds for each operation and object type.",
			Buckets: RequestBuckets(),
		}, opGR),
		etcdRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_requests_total",
			Help: "Etcd request counts for each operation and object type.",
		}, opGR),
		etcdErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_request_errors_total",
			Help: "Etcd failed request counts for each operation and object type.",
		}, opGR),
		eventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_watch_cache_events_received_total",
			Help: "Counter of events received in watch cache broken by resource type.",
		}, gr),
		eventsDispatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_watch_cache_events_dispatched_total",
			Help: "Counter of events dispatched in watch cache broken by resource type.",
		}, gr),
		initEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_init_events_total",
			Help: "Counter of init events processed in watch cache broken by resource type.",
		}, gr),
		terminated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_terminated_watchers_total",
			Help: "Counter of watchers closed due to unresponsiveness broken by resource type.",
		}, gr),
		resourceVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_watch_cache_resource_version",
			Help: "Current resource version of watch cache broken by resource type.",
		}, gr),
		capacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "watch_cache_capacity",
			Help: "Total capacity of watch cache broken by resource type.",
		}, gr),
		initializations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_watch_cache_initializations_total",
			Help: "Counter of watch cache initializations broken by resource type.",
		}, gr),
		readWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_watch_cache_read_wait_seconds",
			Help:    "Histogram of time spent waiting for a watch cache to become fresh.",
			Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3},
		}, gr),
		consistentReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_watch_cache_consistent_read_total",
			Help: "Counter for consistent reads from cache.",
		}, []string{"group", "resource", "success", "fallback"}),
		bookmarks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_bookmark_total",
			Help: "Number of etcd bookmarks (progress notify events) split by kind.",
		}, gr),
		cacheLists: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_cache_list_total",
			Help: "Number of LIST requests served from watch cache",
		}, []string{"group", "resource", "index"}),
		listFetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_cache_list_fetched_objects_total",
			Help: "Number of objects read from watch cache in the course of serving a LIST request",
		}, []string{"group", "resource", "index"}),
		listReturned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_cache_list_returned_objects_total",
			Help: "Number of objects returned for a LIST request from watch cache",
		}, gr),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubesvc_watch_cache_watchers",
			Help: "Number of watchers registered on the watch cache, by resource.",
		}, gr),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubesvc_watch_cache_expired_total",
			Help: "Watches refused with 410 Expired because the resource version asked for is older than the watch cache's history, by resource.",
		}, gr),
	}
	for _, c := range []prometheus.Collector{m.etcdDuration, m.etcdRequests, m.etcdErrors,
		m.eventsReceived, m.eventsDispatched, m.initEvents, m.terminated, m.resourceVersion,
		m.capacity, m.initializations, m.readWait, m.consistentReads, m.bookmarks, m.cacheLists,
		m.listFetched, m.listReturned, m.watchers, m.expired} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("storage metrics: %w", err)
		}
	}
	return m, nil
}

// keyGroupResource returns the group and resource of an etcd key or key prefix in
// the /registry/<group or "core">/<resource>/... layout, and "", "" for any other
// key (/registry/, /registry/health).
func keyGroupResource(key string) (group, resource string) {
	rest, ok := strings.CutPrefix(key, "/registry/")
	if !ok {
		return "", ""
	}
	group, rest, ok = strings.Cut(rest, "/")
	if !ok || group == "" {
		return "", ""
	}
	resource, _, _ = strings.Cut(rest, "/")
	if resource == "" {
		return "", ""
	}
	if group == "core" {
		group = ""
	}
	return group, resource
}

// ObserveEtcdRequest records one etcd request of operation op (see opName and
// txnName) on key that took d; a non-nil err also counts as an error.
func (m *Metrics) ObserveEtcdRequest(op, key string, d time.Duration, err error) {
	if m == nil {
		return
	}
	g, r := keyGroupResource(key)
	m.etcdDuration.WithLabelValues(op, g, r).Observe(d.Seconds())
	m.etcdRequests.WithLabelValues(op, g, r).Inc()
	if err != nil {
		m.etcdErrors.WithLabelValues(op, g, r).Inc()
	}
}

// EventReceived counts one event the watch cache received from etcd for key.
func (m *Metrics) EventReceived(key string) {
	if m == nil {
		return
	}
	m.eventsReceived.WithLabelValues(keyGroupResource(key)).Inc()
}

// EventDispatched counts one event for key handed to the watchers (once per event,
// however many watchers it goes to, as kube-apiserver counts).
func (m *Metrics) EventDispatched(key string) {
	if m == nil {
		return
	}
	m.eventsDispatched.WithLabelValues(keyGroupResource(key)).Inc()
}

// InitEvents counts n synthetic ADDED events sent to a new watcher under prefix.
func (m *Metrics) InitEvents(prefix string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.initEvents.WithLabelValues(keyGroupResource(prefix)).Add(float64(n))
}

// WatcherAdded and WatcherRemoved track the watchers registered under prefix.
func (m *Metrics) WatcherAdded(prefix string) {
	if m == nil {
		return
	}
	m.watchers.WithLabelValues(keyGroupResource(prefix)).Inc()
}

// WatcherRemoved is the counterpart of WatcherAdded, called once per watcher
// however it ended.
func (m *Metrics) WatcherRemoved(prefix string) {
	if m == nil {
		return
	}
	m.watchers.WithLabelValues(keyGroupResource(prefix)).Dec()
}

// WatcherTerminated counts a watcher under prefix ended because it did not keep up.
func (m *Metrics) WatcherTerminated(prefix string) {
	if m == nil {
		return
	}
	m.terminated.WithLabelValues(keyGroupResource(prefix)).Inc()
}

// WatchExpired counts a watch under prefix refused with 410 Expired.
func (m *Metrics) WatchExpired(prefix string) {
	if m == nil {
		return
	}
	m.expired.WithLabelValues(keyGroupResource(prefix)).Inc()
}

// SetResourceVersion records the revision the cache of prefix reflects.
func (m *Metrics) SetResourceVersion(prefix string, rev int64) {
	if m == nil {
		return
	}
	m.resourceVersion.WithLabelValues(keyGroupResource(prefix)).Set(float64(rev))
}

// SetCapacity records the event history capacity of the cache of prefix.
func (m *Metrics) SetCapacity(prefix string, n int) {
	if m == nil {
		return
	}
	m.capacity.WithLabelValues(keyGroupResource(prefix)).Set(float64(n))
}

// CacheInitialized counts a (re)load of the cache of prefix from etcd.
func (m *Metrics) CacheInitialized(prefix string) {
	if m == nil {
		return
	}
	m.initializations.WithLabelValues(keyGroupResource(prefix)).Inc()
}

// ObserveReadWait records how long a read under prefix waited for the cache to
// reach the revision it needed.
func (m *Metrics) ObserveReadWait(prefix string, d time.Duration) {
	if m == nil {
		return
	}
	m.readWait.WithLabelValues(keyGroupResource(prefix)).Observe(d.Seconds())
}

// ConsistentRead counts a consistent (fresh) read of prefix served by the cache:
// ok says whether the cache caught up with etcd's current revision in time;
// fallback whether the read then went to etcd instead.
func (m *Metrics) ConsistentRead(prefix string, ok, fallback bool) {
	if m == nil {
		return
	}
	g, r := keyGroupResource(prefix)
	m.consistentReads.WithLabelValues(g, r, boolLabel(ok), boolLabel(fallback)).Inc()
}

// ProgressNotify counts a progress notification (etcd bookmark) for prefix.
func (m *Metrics) ProgressNotify(prefix string) {
	if m == nil {
		return
	}
	m.bookmarks.WithLabelValues(keyGroupResource(prefix)).Inc()
}

// CacheList counts a list of prefix served from the cache that read fetched
// objects and returned returned of them.
func (m *Metrics) CacheList(prefix string, fetched, returned int) {
	if m == nil {
		return
	}
	g, r := keyGroupResource(prefix)
	m.cacheLists.WithLabelValues(g, r, "").Inc()
	m.listFetched.WithLabelValues(g, r, "").Add(float64(fetched))
	m.listReturned.WithLabelValues(g, r).Add(float64(returned))
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// ObjectCounts returns the number of stored objects of every resource.
type ObjectCounts func() map[schema.GroupResource]int

// NewObjectCountCollector returns a collector that asks counts on every scrape and
// reports apiserver_storage_objects{resource} (kube-apiserver's stable name, with
// resource as "pods" or "deployments.apps") and apiserver_resource_objects{group,
// resource}, its successor. counts may return nil (nothing to report yet).
func NewObjectCountCollector(counts ObjectCounts) prometheus.Collector {
	return &objectCountCollector{
		counts: counts,
		storageObjects: prometheus.NewDesc("apiserver_storage_objects",
			"Number of stored objects at the time of last check split by kind.", []string{"resource"}, nil),
		resourceObjects: prometheus.NewDesc("apiserver_resource_objects",
			"Number of stored objects at the time of last check split by kind.", []string{"group", "resource"}, nil),
	}
}

type objectCountCollector struct {
	counts                          ObjectCounts
	storageObjects, resourceObjects *prometheus.Desc
}

func (c *objectCountCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.storageObjects
	ch <- c.resourceObjects
}

func (c *objectCountCollector) Collect(ch chan<- prometheus.Metric) {
	for gr, n := range c.counts() {
		ch <- prometheus.MustNewConstMetric(c.storageObjects, prometheus.GaugeValue, float64(n), gr.String())
		ch <- prometheus.MustNewConstMetric(c.resourceObjects, prometheus.GaugeValue, float64(n), gr.Group, gr.Resource)
	}
}

// InstrumentKV wraps kv so that every request it sends to etcd is recorded with
// ObserveEtcdRequest. Install it once, before the client is used:
//
//	client.KV = metrics.InstrumentKV(client.KV)
//
// (the way etcd's namespace package wraps a client). A nil *Metrics returns kv.
func (m *Metrics) InstrumentKV(kv clientv3.KV) clientv3.KV {
	if m == nil {
		return kv
	}
	return &instrumentedKV{KV: kv, m: m}
}

// instrumentedKV times Get, Put, Delete, Do and transactions; Compact and GetStream
// pass through unrecorded.
type instrumentedKV struct {
	clientv3.KV
	m *Metrics
}

func (k *instrumentedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	start := time.Now()
	resp, err := k.KV.Get(ctx, key, opts...)
	k.m.ObserveEtcdRequest(opName(clientv3.OpGet(key, opts...)), key, time.Since(start), err)
	return resp, err
}

func (k *instrumentedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	start := time.Now()
	resp, err := k.KV.Put(ctx, key, val, opts...)
	k.m.ObserveEtcdRequest("put", key, time.Since(start), err)
	return resp, err
}

func (k *instrumentedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	start := time.Now()
	resp, err := k.KV.Delete(ctx, key, opts...)
	k.m.ObserveEtcdRequest("delete", key, time.Since(start), err)
	return resp, err
}

func (k *instrumentedKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	start := time.Now()
	resp, err := k.KV.Do(ctx, op)
	k.m.ObserveEtcdRequest(opName(op), string(op.KeyBytes()), time.Since(start), err)
	return resp, err
}

func (k *instrumentedKV) Txn(ctx context.Context) clientv3.Txn {
	return &instrumentedTxn{txn: k.KV.Txn(ctx), m: k.m}
}

// opName names a single operation as kube-apiserver does where it has the shape:
// get (one key), list (a range), listWithCount (counting a range),
// getCurrentResourceVersion (counting one key: the revision probe of a consistent
// read), put, delete, txn.
func opName(op clientv3.Op) string {
	switch {
	case op.IsPut():
		return "put"
	case op.IsDelete():
		return "delete"
	case op.IsTxn():
		return "txn"
	case op.IsCountOnly() && len(op.RangeBytes()) > 0:
		return "listWithCount"
	case op.IsCountOnly():
		return "getCurrentResourceVersion"
	case len(op.RangeBytes()) > 0:
		return "list"
	default:
		return "get"
	}
}

// instrumentedTxn records a transaction when it commits, named after the Store's
// shapes: create (put under "mod_revision = 0"), update (any other put), delete, and
// txn for anything else.
type instrumentedTxn struct {
	txn  clientv3.Txn
	m    *Metrics
	cmps []clientv3.Cmp
	then []clientv3.Op
}

func (t *instrumentedTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.cmps = append(t.cmps, cs...)
	t.txn = t.txn.If(cs...)
	return t
}

func (t *instrumentedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.then = append(t.then, ops...)
	t.txn = t.txn.Then(ops...)
	return t
}

func (t *instrumentedTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.txn = t.txn.Else(ops...)
	return t
}

func (t *instrumentedTxn) Commit() (*clientv3.TxnResponse, error) {
	start := time.Now()
	resp, err := t.txn.Commit()
	op, key := txnName(t.cmps, t.then)
	t.m.ObserveEtcdRequest(op, key, time.Since(start), err)
	return resp, err
}

func txnName(cmps []clientv3.Cmp, then []clientv3.Op) (op, key string) {
	if len(then) == 0 {
		if len(cmps) > 0 {
			c := cmps[0]
			key = string(c.KeyBytes())
		}
		return "txn", key
	}
	first := then[0]
	key = string(first.KeyBytes())
	switch {
	case first.IsDelete():
		return "delete", key
	case first.IsPut():
		for _, c := range cmps {
			pc := c.GetCompare()
			if string(pc.Key) == key && pc.Target == pb.Compare_MOD && pc.GetModRevision() == 0 {
				return "create", key
			}
		}
		return "update", key
	default:
		return "txn", key
	}
}
