package dns

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Label values as CoreDNS sets them for the kubeadm Corefile's one server
// block ".:53": zone is the server block's zone, view is unused.
const (
	metricsZone = "."
	metricsView = ""
)

// metrics are the server's collectors, with CoreDNS's names and labels.
type metrics struct {
	requests     *prometheus.CounterVec   // server, zone, view, proto, family, type
	responses    *prometheus.CounterVec   // server, zone, view, rcode, plugin
	duration     *prometheus.HistogramVec // server, zone, view, type
	requestSize  *prometheus.HistogramVec // server, zone, view, proto
	responseSize *prometheus.HistogramVec // server, zone, view, proto
	panics       prometheus.Counter
	pluginOn     *prometheus.GaugeVec // server, zone, view, name

	cacheEntries   *prometheus.GaugeVec   // server, type, zones, view
	cacheRequests  *prometheus.CounterVec // server, zones, view
	cacheHits      *prometheus.CounterVec // server, type, zones, view
	cacheMisses    *prometheus.CounterVec // server, zones, view
	cacheEvictions *prometheus.CounterVec // server, type, zones, view

	forwardRequests  *prometheus.CounterVec   // to
	forwardResponses *prometheus.CounterVec   // to, rcode
	forwardDuration  *prometheus.HistogramVec // to, rcode
	forwardRejects   prometheus.Counter

	programming *prometheus.HistogramVec // service_kind
}

// newMetrics creates the collectors and registers them with reg (nil: none).
// It fails when reg already has collectors of these names.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	// CoreDNS's buckets (plugin/metrics/vars.go, plugin.TimeBuckets).
	timeBuckets := prometheus.ExponentialBuckets(0.00025, 2, 16) // 0.25 ms to 8 s
	sizeBuckets := []float64{0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "requests_total",
			Help: "Counter of DNS requests made per zone, protocol and family.",
		}, []string{"server", "zone", "view", "proto", "family", "type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "responses_total",
			Help: "Counter of response status codes.",
		}, []string{"server", "zone", "view", "rcode", "plugin"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "request_duration_seconds",
			Buckets: timeBuckets, Help: "Histogram of the time (in seconds) each request took per zone.",
		}, []string{"server", "zone", "view", "type"}),
		requestSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "request_size_bytes",
			Buckets: sizeBuckets, Help: "Size of the request in bytes per zone and protocol.",
		}, []string{"server", "zone", "view", "proto"}),
		responseSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "dns", Name: "response_size_bytes",
			Buckets: sizeBuckets, Help: "Size of the returned response in bytes.",
		}, []string{"server", "zone", "view", "proto"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns", Name: "panics_total", Help: "A metrics that counts the number of panics.",
		}),
		pluginOn: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "coredns", Name: "plugin_enabled", Help: "A metric that indicates whether a plugin is enabled on per server and zone basis.",
		}, []string{"server", "zone", "view", "name"}),
		cacheEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "entries", Help: "The number of elements in the cache.",
		}, []string{"server", "type", "zones", "view"}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "requests_total", Help: "The count of cache requests.",
		}, []string{"server", "zones", "view"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "hits_total", Help: "The count of cache hits.",
		}, []string{"server", "type", "zones", "view"}),
		cacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "misses_total", Help: "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
		}, []string{"server", "zones", "view"}),
		cacheEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "cache", Name: "evictions_total", Help: "The count of cache evictions.",
		}, []string{"server", "type", "zones", "view"}),
		forwardRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "requests_total", Help: "Counter of requests made per upstream.",
		}, []string{"to"}),
		forwardResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "responses_total", Help: "Counter of responses received per upstream.",
		}, []string{"to", "rcode"}),
		forwardDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "request_duration_seconds",
			Buckets: timeBuckets, Help: "Histogram of the time each request took.",
		}, []string{"to", "rcode"}),
		forwardRejects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "coredns", Subsystem: "forward", Name: "max_concurrent_rejects_total",
			Help: "Counter of the number of queries rejected because the concurrent queries were at maximum.",
		}),
		programming: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "coredns", Subsystem: "kubernetes", Name: "dns_programming_duration_seconds",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
			Help:    "Histogram of the time (in seconds) it took to program a dns instance.",
		}, []string{"service_kind"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.requests, m.responses, m.duration, m.requestSize, m.responseSize, m.panics, m.pluginOn,
		m.cacheEntries, m.cacheRequests, m.cacheHits, m.cacheMisses, m.cacheEvictions,
		m.forwardRequests, m.forwardResponses, m.forwardDuration, m.forwardRejects, m.programming,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dns: registering metrics: %w", err)
	}
	return m, nil
}

// typeLabel is the "type" label of a query type: CoreDNS counts these types
// by name and all others as "other" (plugin/metrics/vars monitorType).
func typeLabel(t uint16) string {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeSOA, dns.TypeCNAME, dns.TypePTR, dns.TypeTXT,
		dns.TypeNS, dns.TypeSRV, dns.TypeDS, dns.TypeDNSKEY, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3,
		dns.TypeHTTPS, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY:
		return dns.TypeToString[t]
	}
	return "other"
}

func rcodeLabel(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprint(rcode)
}

// metricsHandler is CoreDNS's prometheus plugin: it counts each query, and
// times, sizes and counts its answer by rcode and by the handler that wrote
// it. It keeps the labelled children it has used, so that a query costs map
// lookups rather than label hashing (the label sets are few: listeners ×
// transports × families × counted types, and rcodes × handlers).
type metricsHandler struct {
	m         *metrics
	queries   sync.Map // queryKey → *queryObservers
	responses sync.Map // responseKey → prometheus.Counter
}

type queryKey struct {
	server string
	proto  Proto
	family int
	qtype  string
}

type queryObservers struct {
	requests     prometheus.Counter
	requestSize  prometheus.Observer
	duration     prometheus.Observer
	responseSize prometheus.Observer
}

type responseKey struct {
	server, rcode, plugin string
}

var _ Handler = (*metricsHandler)(nil)

func (*metricsHandler) Name() string { return "prometheus" }

func (h *metricsHandler) ServeDNS(ctx context.Context, r *Request, next Next) *dns.Msg {
	start := time.Now()
	resp := next.Serve(ctx, r)
	if r.Deferred {
		return nil
	}
	h.observe(r, resp, time.Since(start))
	return resp
}

func (h *metricsHandler) observe(r *Request, resp *dns.Msg, d time.Duration) {
	qk := queryKey{server: r.Server, proto: r.Proto, family: r.Family(), qtype: typeLabel(r.Type)}
	v, ok := h.queries.Load(qk)
	if !ok {
		p := string(qk.proto)
		v, _ = h.queries.LoadOrStore(qk, &queryObservers{
			requests:     h.m.requests.WithLabelValues(qk.server, metricsZone, metricsView, p, strconv.Itoa(qk.family), qk.qtype),
			requestSize:  h.m.requestSize.WithLabelValues(qk.server, metricsZone, metricsView, p),
			duration:     h.m.duration.WithLabelValues(qk.server, metricsZone, metricsView, qk.qtype),
			responseSize: h.m.responseSize.WithLabelValues(qk.server, metricsZone, metricsView, p),
		})
	}
	q := v.(*queryObservers)
	q.requests.Inc()
	q.requestSize.Observe(float64(r.Len))
	q.duration.Observe(d.Seconds())
	if resp == nil {
		return
	}
	rk := responseKey{server: r.Server, rcode: rcodeLabel(resp.Rcode), plugin: r.AnsweredBy}
	c, ok := h.responses.Load(rk)
	if !ok {
		c, _ = h.responses.LoadOrStore(rk, h.m.responses.WithLabelValues(rk.server, metricsZone, metricsView, rk.rcode, rk.plugin))
	}
	c.(prometheus.Counter).Inc()
	q.responseSize.Observe(float64(len(r.Wire)))
}
