package proxy

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The proxy's metrics carry kube-proxy's names, help texts and buckets
// (pkg/proxy/metrics), so dashboards and clusterloader2 queries work unchanged.
// kube-proxy labels them by ip_family because it runs one proxier per family;
// kubesvc syncs both families in one Snapshot, so they have no label.

// syncBuckets are kube-proxy's sync duration buckets: 1 ms doubling 15 times.
func syncBuckets() []float64 { return prometheus.ExponentialBuckets(0.001, 2, 15) }

// programmingBuckets are kube-proxy's network programming buckets: 0.25 s,
// 0.5 s, 1..59 s, 60..115 s by 5 s, 120..300 s by 30 s.
func programmingBuckets() []float64 {
	b := prometheus.LinearBuckets(0.25, 0.25, 2)
	b = append(b, prometheus.LinearBuckets(1, 1, 59)...)
	b = append(b, prometheus.LinearBuckets(60, 5, 12)...)
	return append(b, prometheus.LinearBuckets(120, 30, 7)...)
}

type metrics struct {
	syncDuration        prometheus.Histogram
	fullSyncDuration    prometheus.Histogram
	partialSyncDuration prometheus.Histogram
	lastSync            prometheus.Gauge
	lastQueued          prometheus.Gauge
	programming         prometheus.Histogram
	serviceChanges      prometheus.Counter
	servicePending      prometheus.Gauge
	endpointChanges     prometheus.Counter
	endpointPending     prometheus.Gauge
	syncFailures        prometheus.Counter
}

// newMetrics creates the metrics and registers them with reg (nil: nowhere).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const sub = "kubeproxy"
	m := &metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: sub, Name: "sync_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds", Buckets: syncBuckets(),
		}),
		fullSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: sub, Name: "sync_full_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds for full resyncs", Buckets: syncBuckets(),
		}),
		partialSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: sub, Name: "sync_partial_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds for partial resyncs", Buckets: syncBuckets(),
		}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: sub, Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced",
		}),
		lastQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: sub, Name: "sync_proxy_rules_last_queued_timestamp_seconds",
			Help: "The last time a sync of proxy rules was queued",
		}),
		programming: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: sub, Name: "network_programming_duration_seconds",
			Help: "In Cluster Network Programming Latency in seconds", Buckets: programmingBuckets(),
		}),
		serviceChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: sub, Name: "sync_proxy_rules_service_changes_total",
			Help: "Cumulative proxy rules Service changes",
		}),
		servicePending: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: sub, Name: "sync_proxy_rules_service_changes_pending",
			Help: "Pending proxy rules Service changes",
		}),
		endpointChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: sub, Name: "sync_proxy_rules_endpoint_changes_total",
			Help: "Cumulative proxy rules Endpoint changes",
		}),
		endpointPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: sub, Name: "sync_proxy_rules_endpoint_changes_pending",
			Help: "Pending proxy rules Endpoint changes",
		}),
		// kube-proxy counts failures per mode
		// (sync_proxy_rules_nftables_sync_failures_total,
		// sync_proxy_rules_iptables_restore_failures_total); the proxy core does
		// not know the mode, so it counts every failed Backend.Sync here and
		// leaves the mode-specific names to the backends.
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: sub, Name: "sync_proxy_rules_failures_total",
			Help: "Cumulative failed proxy rules syncs",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.syncDuration, m.fullSyncDuration, m.partialSyncDuration, m.lastSync, m.lastQueued,
		m.programming, m.serviceChanges, m.servicePending, m.endpointChanges, m.endpointPending,
		m.syncFailures,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("proxy: registering metrics: %w", err)
	}
	return m, nil
}
