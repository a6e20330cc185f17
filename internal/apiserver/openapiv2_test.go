package apiserver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// newOpenAPITestServer prepares a Server (nothing runs: /openapi/v2 needs no
// storage).
func newOpenAPITestServer(tb testing.TB) *Server {
	tb.Helper()
	cfg := Config{DataDir: tb.TempDir(), BindAddress: "127.0.0.1", SecurePort: 0,
		ServiceClusterIPRange: "10.96.0.0/12", ServiceNodePortRange: "30000-32767", Metrics: prometheus.NewRegistry()}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func getOpenAPIV2(s *Server, method string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/openapi/v2", nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.serveOpenAPI(w, r)
	return w
}

// TestOpenAPIV2Negotiation: JSON by default and for JSON or wildcards,
// protobuf under both of kube-openapi's names, 406 otherwise; one ETag for
// both forms; Vary: Accept.
func TestOpenAPIV2Negotiation(t *testing.T) {
	s := newOpenAPITestServer(t)
	if s.openapi.v2.json.plain != nil {
		t.Fatal("the v2 document was generated before it was asked for")
	}
	var etag string
	for _, tc := range []struct {
		accept, wantType string
		wantCode         int
	}{
		{"", "application/json", 200},
		{"*/*", "application/json", 200},
		{"application/json", "application/json", 200},
		{"application/json, */*", "application/json", 200},
		{openapiV2ProtoRequest, openapiV2Proto, 200},
		{openapiV2Proto, openapiV2Proto, 200},
		{"application/json;q=0.5, " + openapiV2ProtoRequest, openapiV2Proto, 200},
		{"text/html", "", http.StatusNotAcceptable},
		{"application/json;q=0", "", http.StatusNotAcceptable},
	} {
		w := getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {tc.accept}})
		if w.Code != tc.wantCode {
			t.Errorf("Accept %q: code %d, want %d", tc.accept, w.Code, tc.wantCode)
			continue
		}
		if w.Header().Values("Vary")[0] != "Accept" {
			t.Errorf("Accept %q: Vary %q", tc.accept, w.Header().Values("Vary"))
		}
		if tc.wantCode != 200 {
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.wantType {
			t.Errorf("Accept %q: Content-Type %q, want %q", tc.accept, got, tc.wantType)
		}
		e := w.Header().Get("Etag")
		if len(e) != 2+128 || e[0] != '"' {
			t.Errorf("Accept %q: ETag %q, want a quoted SHA-512", tc.accept, e)
		}
		if etag == "" {
			etag = e
		} else if e != etag {
			t.Errorf("Accept %q: ETag %s differs from %s", tc.accept, e, etag)
		}
		if got, want := w.Header().Get("Content-Length"), strconv.Itoa(w.Body.Len()); got != want {
			t.Errorf("Accept %q: Content-Length %s, body %s bytes", tc.accept, got, want)
		}
	}
	if w := getOpenAPIV2(s, http.MethodPost, nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: code %d, want 405", w.Code)
	}
}

// TestOpenAPIV2ETag: If-None-Match with the ETag answers 304 without a body,
// for both forms; another ETag gets the document.
func TestOpenAPIV2ETag(t *testing.T) {
	s := newOpenAPITestServer(t)
	first := getOpenAPIV2(s, http.MethodGet, nil)
	etag := first.Header().Get("Etag")
	for _, accept := range []string{"application/json", openapiV2ProtoRequest} {
		w := getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {accept}, "If-None-Match": {etag}})
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("%s If-None-Match current: %d with %d bytes, want 304 and none", accept, w.Code, w.Body.Len())
		}
		if w.Header().Get("Etag") != etag {
			t.Errorf("%s 304: ETag %q", accept, w.Header().Get("Etag"))
		}
		w = getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {accept}, "If-None-Match": {`"0123"`}})
		if w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Errorf("%s If-None-Match stale: %d with %d bytes, want 200 and the document", accept, w.Code, w.Body.Len())
		}
	}
	// The ETag is the document's: a second server of the same build agrees.
	if again := getOpenAPIV2(newOpenAPITestServer(t), http.MethodGet, nil).Header().Get("Etag"); again != etag {
		t.Errorf("another server's ETag %s, want %s", again, etag)
	}
}

// TestOpenAPIV2Gzip: with Accept-Encoding gzip the same bytes come
// compressed.
func TestOpenAPIV2Gzip(t *testing.T) {
	s := newOpenAPITestServer(t)
	for _, accept := range []string{"application/json", openapiV2ProtoRequest} {
		plain := getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {accept}})
		gz := getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {accept}, "Accept-Encoding": {"gzip, deflate"}})
		gzLen := gz.Body.Len()
		if gz.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: Content-Encoding %q", accept, gz.Header().Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, plain.Body.Bytes()) {
			t.Errorf("%s: the gzipped body differs from the plain one", accept)
		}
		if gz.Header().Get("Etag") != plain.Header().Get("Etag") {
			t.Errorf("%s: gzip changes the ETag", accept)
		}
		t.Logf("%s: %d bytes, %d gzipped", accept, plain.Body.Len(), gzLen)
	}
	if w := getOpenAPIV2(s, http.MethodGet, http.Header{"Accept-Encoding": {"gzip;q=0"}}); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
}

// TestOpenAPIV2Document: the JSON and protobuf forms are the same document,
// and every served resource's kind and list kind has a definition (the
// integration test checks the same through discovery and client-go).
func TestOpenAPIV2Document(t *testing.T) {
	s := newOpenAPITestServer(t)
	j := getOpenAPIV2(s, http.MethodGet, nil).Body.Bytes()
	pb := getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {openapiV2ProtoRequest}}).Body.Bytes()
	fromJSON, err := openapiv2.ParseDocument(j)
	if err != nil {
		t.Fatal(err)
	}
	var fromProto openapiv2.Document
	if err := proto.Unmarshal(pb, &fromProto); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(fromJSON, &fromProto) {
		t.Error("the protobuf document is not the JSON document")
	}
	var doc struct {
		Definitions map[string]struct {
			GVK []struct{ Group, Version, Kind string } `json:"x-kubernetes-group-version-kind"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, d := range doc.Definitions {
		for _, g := range d.GVK {
			have[g.Group+"/"+g.Version+"/"+g.Kind] = true
		}
	}
	n := 0
	for gv, hs := range s.byGV {
		for _, h := range hs {
			kinds := []string{h.res.Kind}
			if len(h.res.Verbs) == 0 || slices.Contains(h.res.Verbs, "list") {
				kinds = append(kinds, h.res.Kind+"List")
			}
			for _, kind := range kinds {
				n++
				if !have[gv+"/"+kind] {
					t.Errorf("no definition for %s/%s", gv, kind)
				}
			}
		}
	}
	t.Logf("%d served kinds and lists, %d definitions", n, len(doc.Definitions))
}

// TestOpenAPIV2BuiltOnce: concurrent first requests generate the document
// once and all get it.
func TestOpenAPIV2BuiltOnce(t *testing.T) {
	s := newOpenAPITestServer(t)
	calls := 0
	var mu sync.Mutex
	gen := s.openapi.v2.generate
	s.openapi.v2 = newOpenAPIV2(func() ([]byte, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return gen()
	})
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			accept := "application/json"
			if i%2 == 1 {
				accept = openapiV2ProtoRequest
			}
			codes[i] = getOpenAPIV2(s, http.MethodGet, http.Header{"Accept": {accept}}).Code
		}()
	}
	wg.Wait()
	if calls != 1 {
		t.Errorf("the document was generated %d times", calls)
	}
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d", i, c)
		}
	}
}

// BenchmarkOpenAPIV2FirstRequest is what the first GET /openapi/v2 of a
// protobuf client costs: generating the JSON document from the served types
// and gzipping it (json-ms), then converting it to protobuf and gzipping that
// (proto-ms). It reports what the server keeps afterwards (retained-bytes).
func BenchmarkOpenAPIV2FirstRequest(b *testing.B) {
	s := newOpenAPITestServer(b)
	gen := s.openapi.v2.generate
	var retained int
	var jsonTime, protoTime time.Duration
	for b.Loop() {
		v2 := newOpenAPIV2(gen)
		t0 := time.Now()
		j, err := v2.jsonDoc()
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		p, err := v2.protoDoc()
		if err != nil {
			b.Fatal(err)
		}
		jsonTime += t1.Sub(t0)
		protoTime += time.Since(t1)
		retained = len(j.plain) + len(j.gzipped) + len(p.plain) + len(p.gzipped)
	}
	b.ReportMetric(float64(jsonTime.Milliseconds())/float64(b.N), "json-ms/op")
	b.ReportMetric(float64(protoTime.Milliseconds())/float64(b.N), "proto-ms/op")
	b.ReportMetric(float64(retained), "retained-bytes")
}

// discardResponse is a ResponseWriter that keeps only the headers and the
// status (httptest's recorder would buffer every body).
type discardResponse struct {
	h    http.Header
	code int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(code int)        { d.code = code }

// BenchmarkOpenAPIV2Cached is a later request: the cached protobuf, gzipped.
func BenchmarkOpenAPIV2Cached(b *testing.B) {
	s := newOpenAPITestServer(b)
	h := http.Header{"Accept": {openapiV2ProtoRequest}, "Accept-Encoding": {"gzip"}}
	getOpenAPIV2(s, http.MethodGet, h)
	r := httptest.NewRequest(http.MethodGet, "/openapi/v2", nil)
	r.Header = h
	for b.Loop() {
		w := &discardResponse{h: http.Header{}, code: http.StatusOK}
		s.serveOpenAPI(w, r)
		if w.code != http.StatusOK {
			b.Fatal(w.code)
		}
	}
}
