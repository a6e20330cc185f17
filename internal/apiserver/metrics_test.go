package apiserver

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// servedForTest serves core v1 pods, namespaces and bindings, and apps/v1
// deployments.
func servedForTest(group, version, resource string) bool {
	switch group + "/" + version + "/" + resource {
	case "/v1/pods", "/v1/namespaces", "/v1/bindings", "apps/v1/deployments", "/v1/", "apps/v1/", "apps//":
		return true
	}
	return false
}

func TestRequestMetricLabels(t *testing.T) {
	for _, tc := range []struct {
		name        string
		method      string
		target      string
		contentType string
		want        requestLabels
		notRecorded bool
	}{
		{name: "list in namespace", method: "GET", target: "/api/v1/namespaces/default/pods",
			want: requestLabels{Verb: "LIST", Version: "v1", Resource: "pods", Scope: "namespace"}},
		{name: "list across namespaces", method: "GET", target: "/api/v1/pods?limit=500",
			want: requestLabels{Verb: "LIST", Version: "v1", Resource: "pods", Scope: "cluster"}},
		{name: "get", method: "GET", target: "/api/v1/namespaces/default/pods/nginx",
			want: requestLabels{Verb: "GET", Version: "v1", Resource: "pods", Scope: "resource"}},
		{name: "head is a get", method: "HEAD", target: "/api/v1/namespaces/default/pods/nginx",
			want: requestLabels{Verb: "GET", Version: "v1", Resource: "pods", Scope: "resource"}},
		{name: "watch", method: "GET", target: "/api/v1/namespaces/default/pods?watch=true&resourceVersion=5",
			want: requestLabels{Verb: "WATCH", Version: "v1", Resource: "pods", Scope: "namespace"}},
		{name: "watch=1", method: "GET", target: "/api/v1/pods?watch=1",
			want: requestLabels{Verb: "WATCH", Version: "v1", Resource: "pods", Scope: "cluster"}},
		{name: "watch of one object", method: "GET", target: "/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name%3Dx",
			want: requestLabels{Verb: "WATCH", Version: "v1", Resource: "pods", Scope: "namespace"}},
		{name: "create has resource scope", method: "POST", target: "/apis/apps/v1/namespaces/default/deployments",
			want: requestLabels{Verb: "POST", Group: "apps", Version: "v1", Resource: "deployments", Scope: "resource"}},
		{name: "update", method: "PUT", target: "/apis/apps/v1/namespaces/default/deployments/web",
			want: requestLabels{Verb: "PUT", Group: "apps", Version: "v1", Resource: "deployments", Scope: "resource"}},
		{name: "status subresource", method: "PUT", target: "/api/v1/namespaces/default/pods/nginx/status",
			want: requestLabels{Verb: "PUT", Version: "v1", Resource: "pods", Subresource: "status", Scope: "resource"}},
		{name: "patch", method: "PATCH", target: "/apis/apps/v1/namespaces/default/deployments/web",
			contentType: "application/strategic-merge-patch+json",
			want:        requestLabels{Verb: "PATCH", Group: "apps", Version: "v1", Resource: "deployments", Scope: "resource"}},
		{name: "server-side apply", method: "PATCH", target: "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl",
			contentType: "application/apply-patch+yaml; charset=utf-8",
			want:        requestLabels{Verb: "APPLY", Group: "apps", Version: "v1", Resource: "deployments", Scope: "resource"}},
		{name: "delete", method: "DELETE", target: "/api/v1/namespaces/default/pods/nginx",
			want: requestLabels{Verb: "DELETE", Version: "v1", Resource: "pods", Scope: "resource"}},
		{name: "delete collection", method: "DELETE", target: "/api/v1/namespaces/default/pods",
			want: requestLabels{Verb: "DELETE", Version: "v1", Resource: "pods", Scope: "namespace"}},
		{name: "dry run", method: "POST", target: "/api/v1/namespaces/default/pods?dryRun=All",
			want: requestLabels{Verb: "POST", DryRun: "All", Version: "v1", Resource: "pods", Scope: "resource"}},
		{name: "invalid dry run", method: "POST", target: "/api/v1/namespaces/default/pods?dryRun=All&dryRun=Some",
			want: requestLabels{Verb: "POST", DryRun: "invalid", Version: "v1", Resource: "pods", Scope: "resource"}},
		{name: "exec is a connect", method: "POST", target: "/api/v1/namespaces/default/pods/nginx/exec?command=ls",
			want: requestLabels{Verb: "CONNECT", Version: "v1", Resource: "pods", Subresource: "exec", Scope: "resource"}},
		{name: "log is a connect", method: "GET", target: "/api/v1/namespaces/default/pods/nginx/log",
			want: requestLabels{Verb: "CONNECT", Version: "v1", Resource: "pods", Subresource: "log", Scope: "resource"}},
		{name: "namespace itself", method: "GET", target: "/api/v1/namespaces/kube-system",
			want: requestLabels{Verb: "GET", Version: "v1", Resource: "namespaces", Scope: "resource"}},
		{name: "namespace list", method: "GET", target: "/api/v1/namespaces",
			want: requestLabels{Verb: "LIST", Version: "v1", Resource: "namespaces", Scope: "cluster"}},
		{name: "bindings", method: "POST", target: "/api/v1/namespaces/default/bindings",
			want: requestLabels{Verb: "POST", Version: "v1", Resource: "bindings", Scope: "resource"}},
		{name: "unusual method", method: "OPTIONS", target: "/api/v1/pods",
			want: requestLabels{Verb: "other", Version: "v1", Resource: "pods", Scope: "cluster"}},
		{name: "group version discovery", method: "GET", target: "/apis/apps/v1",
			want: requestLabels{Verb: "GET", Subresource: "/apis/apps/v1"}},
		{name: "group discovery", method: "GET", target: "/apis/apps/",
			want: requestLabels{Verb: "GET", Subresource: "/apis/apps"}},
		{name: "core discovery", method: "GET", target: "/api/v1",
			want: requestLabels{Verb: "GET", Subresource: "/api/v1"}},
		{name: "api root", method: "GET", target: "/api",
			want: requestLabels{Verb: "GET", Subresource: "/api"}},
		{name: "healthz check", method: "GET", target: "/healthz/etcd",
			want: requestLabels{Verb: "GET", Subresource: "/healthz"}},
		{name: "readyz", method: "GET", target: "/readyz?verbose",
			want: requestLabels{Verb: "GET", Subresource: "/readyz"}},
		{name: "openapi v3 document", method: "GET", target: "/openapi/v3/apis/apps/v1",
			want: requestLabels{Verb: "GET", Subresource: "/openapi/v3"}},
		{name: "metrics", method: "GET", target: "/metrics",
			want: requestLabels{Verb: "GET", Subresource: "/metrics"}},
		{name: "version", method: "GET", target: "/version/",
			want: requestLabels{Verb: "GET", Subresource: "/version"}},
		{name: "unknown resource", method: "GET", target: "/api/v1/namespaces/default/widgets", notRecorded: true},
		{name: "unknown group version", method: "GET", target: "/apis/example.com/v1", notRecorded: true},
		{name: "unknown version of a known resource", method: "GET", target: "/apis/apps/v1beta1/deployments", notRecorded: true},
		{name: "unknown path", method: "GET", target: "/favicon.ico", notRecorded: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			got, ok := requestMetricLabels(r, servedForTest)
			if ok == tc.notRecorded {
				t.Fatalf("recorded = %v, want %v (labels %+v)", ok, !tc.notRecorded, got)
			}
			if got != tc.want {
				t.Errorf("labels = %+v\nwant     %+v", got, tc.want)
			}
		})
	}
}

func TestWithMetricsRecordsRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newRequestMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{reqMetrics: m, handlers: map[string]*resourceHandler{"/v1/pods": {}}}
	inWatch := make(chan float64, 1)
	h := s.withMetrics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("watch") == "true":
			inWatch <- sample(t, reg, "apiserver_longrunning_requests", map[string]string{"verb": "WATCH"})
			w.(http.Flusher).Flush()
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusConflict)
		default:
			_, _ = w.Write([]byte(strings.Repeat("x", 1500)))
		}
	}))
	for _, target := range []struct{ method, url string }{
		{"GET", "/api/v1/namespaces/default/pods"},
		{"GET", "/api/v1/namespaces/default/pods"},
		{"POST", "/api/v1/namespaces/default/pods"},
		{"GET", "/api/v1/pods?watch=true"},
		{"GET", "/api/v1/namespaces/default/widgets"}, // not served: not recorded
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(target.method, target.url, nil))
	}
	if got := <-inWatch; got != 1 {
		t.Errorf("apiserver_longrunning_requests during a watch = %v, want 1", got)
	}
	list := map[string]string{"verb": "LIST", "resource": "pods", "scope": "namespace", "component": "apiserver"}
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{family: "apiserver_request_total", labels: with(list, "code", "200"), want: 2},
		{family: "apiserver_request_duration_seconds", labels: list, want: 2},
		{family: "apiserver_response_sizes", labels: list, want: 2},
		{family: "apiserver_request_total", labels: map[string]string{"verb": "POST", "scope": "resource", "code": "409"}, want: 1},
		{family: "apiserver_request_total", labels: map[string]string{"verb": "WATCH", "scope": "cluster", "code": "200"}, want: 1},
		{family: "apiserver_longrunning_requests", labels: map[string]string{"verb": "WATCH"}, want: 0},
		{family: "apiserver_request_total", labels: map[string]string{"resource": "widgets"}, want: -1},
	} {
		if got := sample(t, reg, tc.family, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
		}
	}
}

func TestResponseRecorder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{name: "nothing written", write: func(http.ResponseWriter) {}, want: 200},
		{name: "body only", write: func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, want: 200},
		{name: "status", write: func(w http.ResponseWriter) { w.WriteHeader(404) }, want: 404},
		{name: "first status wins", write: func(w http.ResponseWriter) { w.WriteHeader(201); w.WriteHeader(500) }, want: 201},
		{name: "informational then final", write: func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(204) }, want: 204},
		{name: "flush", write: func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, want: 200},
		{name: "hijack", write: func(w http.ResponseWriter) {
			if _, _, err := w.(http.Hijacker).Hijack(); err != nil {
				t.Errorf("hijack: %v", err)
			}
		}, want: 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := &responseRecorder{ResponseWriter: &hijackableRecorder{httptest.NewRecorder()}}
			tc.write(rw)
			if got := rw.status(); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
		})
	}
}

// hijackableRecorder is an httptest.ResponseRecorder that can be hijacked.
type hijackableRecorder struct{ *httptest.ResponseRecorder }

func (h *hijackableRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, bufio.NewReadWriter(bufio.NewReader(c1), bufio.NewWriter(c1)), nil
}

func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

// sample returns the value of the one series of family whose labels include
// labels (a histogram's sample count), 0 for an empty family and -1 when none
// matches; it fails the test when several do.
func sample(t *testing.T, reg *prometheus.Registry, family string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got, n := -1.0, 0
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			n++
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				got = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				got = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				got = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if n > 1 {
		t.Fatalf("%s%v matches %d series", family, labels, n)
	}
	return got
}
