package agent

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The agent's metrics, with the kubelet's names, help texts and labels.

// podStartBuckets are the kubelet's buckets of kubelet_pod_start_duration_seconds.
var podStartBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}

type metrics struct {
	// runningPods is kubelet_running_pods: pods with a running container or
	// network.
	runningPods prometheus.Gauge
	// runningContainers is kubelet_running_containers by container_state
	// (created, running, exited, unknown).
	runningContainers *prometheus.GaugeVec
	// podStartDuration is kubelet_pod_start_duration_seconds: from the agent seeing
	// a pod to the pod running.
	podStartDuration prometheus.Histogram
	// probeTotal is prober_probe_total by probe_type, result, container, pod,
	// namespace, pod_uid.
	probeTotal *prometheus.CounterVec
}

// newMetrics creates the metrics and registers them with reg (nil: nowhere).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runningPods: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: "kubelet", Name: "running_pods",
			Help: "Number of pods that have a running pod sandbox",
		}),
		runningContainers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: "kubelet", Name: "running_containers",
			Help: "Number of containers currently running",
		}, []string{"container_state"}),
		podStartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "pod_start_duration_seconds",
			Help:    "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
			Buckets: podStartBuckets,
		}),
		probeTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "prober", Name: "probe_total",
			Help: "Cumulative number of a liveness, readiness or startup probe for a container by result.",
		}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.runningPods, m.runningContainers, m.podStartDuration, m.probeTotal} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return m, nil
}
