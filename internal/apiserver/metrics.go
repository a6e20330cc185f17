package apiserver

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubesvc/kubesvc/internal/storage"
)

// Request metrics follow kube-apiserver (k8s.io/apiserver/pkg/endpoints/metrics):
// the same names, labels and buckets, and the same label values — uppercase verbs
// (GET and LIST told apart by scope, WATCH for watch=true, APPLY for server-side
// apply patches, CONNECT for exec/attach/portforward/proxy/log, DELETE for deletes
// of one object or a collection), scope "resource", "namespace" or "cluster", and
// component "apiserver". Unlike kube-apiserver's, requests for resources the
// server does not serve and paths outside nonResourcePath are not recorded, so that
// arbitrary URLs cannot grow the series without bound.
const metricsComponent = "apiserver"

// requestMetrics are the API server's request collectors.
type requestMetrics struct {
	requests    *prometheus.CounterVec   // apiserver_request_total
	duration    *prometheus.HistogramVec // apiserver_request_duration_seconds
	sizes       *prometheus.HistogramVec // apiserver_response_sizes
	longRunning *prometheus.GaugeVec     // apiserver_longrunning_requests
	watchEvents *prometheus.CounterVec   // apiserver_watch_events_total
}

func newRequestMetrics(reg prometheus.Registerer) (*requestMetrics, error) {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
		}, []string{"verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
			Buckets: storage.RequestBuckets(),
		}, []string{"verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"}),
		sizes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_response_sizes",
			Help:    "Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component.",
			Buckets: prometheus.ExponentialBuckets(1000, 10, 7),
		}, []string{"verb", "group", "version", "resource", "subresource", "scope", "component"}),
		longRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_longrunning_requests",
			Help: "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
		}, []string{"verb", "group", "version", "resource", "subresource", "scope", "component"}),
		watchEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_watch_events_total",
			Help: "Number of events sent in watch clients",
		}, []string{"group", "version", "resource"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.sizes, m.longRunning, m.watchEvents} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("request metrics: %w", err)
		}
	}
	return m, nil
}

// watchEvent counts one event sent to a watch client of gvr (nil-safe).
func (m *requestMetrics) watchEvent(gvr schema.GroupVersionResource) {
	if m == nil {
		return
	}
	m.watchEvents.WithLabelValues(gvr.Group, gvr.Version, gvr.Resource).Inc()
}

// requestLabels are the labels kube-apiserver gives a request's metrics.
type requestLabels struct {
	Verb, DryRun, Group, Version, Resource, Subresource, Scope string
}

// longRunning reports whether the request is one kube-apiserver tracks in
// apiserver_longrunning_requests (watches and connections).
func (l requestLabels) longRunning() bool { return l.Verb == "WATCH" || l.Verb == "CONNECT" }

// isConnectSubresource: these are reported with verb CONNECT, as kube-apiserver
// does.
func isConnectSubresource(sub string) bool {
	switch sub {
	case "attach", "exec", "log", "portforward", "proxy":
		return true
	}
	return false
}

// requestMetricLabels computes a request's labels. served says whether the server
// serves a resource (version "" asks about a group, resource "" about a group
// version); ok is false for requests that are not recorded.
func requestMetricLabels(r *http.Request, served func(group, version, resource string) bool) (requestLabels, bool) {
	p := r.URL.Path
	if path, ok := nonResourcePath(p); ok {
		return requestLabels{Verb: methodVerb(r.Method), DryRun: dryRunLabel(r), Subresource: path}, true
	}
	if !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/apis/") {
		return requestLabels{}, false
	}
	ri := parseRequestInfo(r)
	if !ri.IsResource {
		// Discovery of one group (/apis/g) or group version (/api/v1, /apis/g/v).
		group, version := ri.Group, ri.Version
		if g, ok := strings.CutPrefix(strings.Trim(p, "/"), "apis/"); ok && !strings.Contains(g, "/") {
			group, version = g, ""
		}
		if group == "" && version == "" || !served(group, version, "") {
			return requestLabels{}, false
		}
		return requestLabels{Verb: methodVerb(r.Method), DryRun: dryRunLabel(r), Subresource: strings.TrimSuffix(p, "/")}, true
	}
	if !served(ri.Group, ri.Version, ri.Resource) {
		return requestLabels{}, false
	}
	l := requestLabels{DryRun: dryRunLabel(r), Group: ri.Group, Version: ri.Version,
		Resource: ri.Resource, Subresource: ri.Subresource}
	switch {
	case ri.Name != "" || ri.Verb == "create":
		l.Scope = "resource"
	case ri.Namespace != "":
		l.Scope = "namespace"
	default:
		l.Scope = "cluster"
	}
	switch {
	case isConnectSubresource(ri.Subresource):
		l.Verb = "CONNECT"
	case ri.Verb == "watch":
		l.Verb = "WATCH"
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		l.Verb = "LIST"
		if l.Scope == "resource" {
			l.Verb = "GET"
		}
	case r.Method == http.MethodPatch && contentMediaType(r.Header.Get("Content-Type")) == "application/apply-patch+yaml":
		l.Verb = "APPLY"
	default:
		l.Verb = methodVerb(r.Method)
	}
	return l, true
}

// methodVerb is the verb of a request by its method alone: GET (for HEAD too),
// POST, PUT, PATCH, DELETE, or "other" for the rest.
func methodVerb(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "GET"
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return method
	}
	return "other"
}

// nonResourcePath returns the subresource label of a non-resource path that is
// recorded: one value per endpoint (/healthz/etcd counts as /healthz, every
// OpenAPI v3 document as /openapi/v3).
func nonResourcePath(p string) (string, bool) {
	for _, root := range []string{"/healthz", "/livez", "/readyz", "/openapi/v3"} {
		if p == root || strings.HasPrefix(p, root+"/") {
			return root, true
		}
	}
	switch p {
	case "/", "/metrics", "/openapi/v2", "/version", "/api", "/apis":
		return p, true
	case "/version/", "/api/", "/apis/":
		return strings.TrimSuffix(p, "/"), true
	}
	return "", false
}

// dryRunLabel is kube-apiserver's dry_run label: "" without dryRun, "All" for
// dryRun=All (however often given), "invalid" otherwise.
func dryRunLabel(r *http.Request) string {
	if !strings.Contains(r.URL.RawQuery, "dryRun") {
		return ""
	}
	values := r.URL.Query()["dryRun"]
	if len(values) == 0 {
		return ""
	}
	for _, v := range values {
		if v != "All" {
			return "invalid"
		}
	}
	return "All"
}

// contentMediaType is a Content-Type without its parameters, lowercased.
func contentMediaType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// servedForMetrics answers requestMetricLabels' question from the server's
// resources.
func (s *Server) servedForMetrics(group, version, resource string) bool {
	switch {
	case resource != "":
		return s.handlers[group+"/"+version+"/"+resource] != nil
	case version != "":
		return len(s.byGV[group+"/"+version]) > 0
	default:
		for gv := range s.byGV {
			if g, _, _ := strings.Cut(gv, "/"); g == group {
				return true
			}
		}
		return false
	}
}

// withMetrics records every request next serves in the request metrics.
func (s *Server) withMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, ok := requestMetricLabels(r, s.servedForMetrics)
		if !ok || s.reqMetrics == nil {
			next.ServeHTTP(w, r)
			return
		}
		m := s.reqMetrics
		start := time.Now()
		if l.longRunning() {
			g := m.longRunning.WithLabelValues(l.Verb, l.Group, l.Version, l.Resource, l.Subresource, l.Scope, metricsComponent)
			g.Inc()
			defer g.Dec()
		}
		rw := &responseRecorder{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		elapsed := time.Since(start).Seconds()
		m.requests.WithLabelValues(l.Verb, l.DryRun, l.Group, l.Version, l.Resource, l.Subresource, l.Scope,
			metricsComponent, strconv.Itoa(rw.status())).Inc()
		m.duration.WithLabelValues(l.Verb, l.DryRun, l.Group, l.Version, l.Resource, l.Subresource, l.Scope,
			metricsComponent).Observe(elapsed)
		if l.Verb == "GET" || l.Verb == "LIST" {
			m.sizes.WithLabelValues(l.Verb, l.Group, l.Version, l.Resource, l.Subresource, l.Scope,
				metricsComponent).Observe(float64(rw.written))
		}
	})
}

// responseRecorder notes a response's status and size. It passes Flush and
// Hijack through (watches flush; upgrades hijack) and unwraps for
// http.ResponseController.
type responseRecorder struct {
	http.ResponseWriter
	code    int
	written int64
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.code == 0 || w.code < http.StatusOK && w.code != http.StatusSwitchingProtocols {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Flush implements http.Flusher; it does nothing if the connection cannot flush.
func (w *responseRecorder) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker; it fails where the connection cannot be
// hijacked (HTTP/2). A hijacked request is recorded as 101 Switching Protocols.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the response's status code (200 when the handler wrote nothing).
func (w *responseRecorder) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// setupMetrics registers the server's collectors on reg (a new registry when nil)
// and builds the /metrics handler.
func (s *Server) setupMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if s.reqMetrics, err = newRequestMetrics(reg); err != nil {
		return err
	}
	if s.storageMetrics, err = storage.NewMetrics(reg); err != nil {
		return err
	}
	if err := reg.Register(storage.NewObjectCountCollector(s.storedObjectCounts)); err != nil {
		return fmt.Errorf("object count metrics: %w", err)
	}
	// A collector that fails is logged and left out; the rest are still served.
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
	return nil
}

// storedObjectCounts counts the objects of every stored resource in the watch
// cache, for apiserver_storage_objects; nil until the server is ready.
func (s *Server) storedObjectCounts() map[schema.GroupResource]int {
	select {
	case <-s.ready:
	default:
		return nil
	}
	out := map[schema.GroupResource]int{}
	for _, h := range s.handlers {
		res := h.res
		if res.Storage != nil || !slices.Contains(res.Verbs, "list") {
			continue // a view of another resource's objects, or nothing stored
		}
		out[res.GroupResource()] = s.cache.Count(res.ListPrefix(""))
	}
	return out
}
