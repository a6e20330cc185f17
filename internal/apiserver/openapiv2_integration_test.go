package apiserver_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	protomodels "k8s.io/kube-openapi/pkg/util/proto"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestOpenAPIV2ThroughClientGo reads /openapi/v2 the way kubectl 1.27 and
// 1.28 do (client-go's discovery OpenAPISchema: protobuf, decoded with
// gnostic; then kube-openapi's proto models) and checks that every kind the
// server lists in discovery, and the list kind of every listable resource,
// resolves to a model by its x-kubernetes-group-version-kind.
func TestOpenAPIV2ThroughClientGo(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	doc, err := s.Client.Discovery().OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	if doc.GetSwagger() != "2.0" {
		t.Errorf("swagger %q", doc.GetSwagger())
	}
	models, err := protomodels.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("proto models: %v", err)
	}
	byGVK := map[schema.GroupVersionKind]bool{}
	for _, name := range models.ListModels() {
		list, _ := models.LookupModel(name).GetExtensions()["x-kubernetes-group-version-kind"].([]any)
		for _, e := range list {
			m, _ := e.(map[any]any)
			g, _ := m["group"].(string)
			v, _ := m["version"].(string)
			k, _ := m["kind"].(string)
			byGVK[schema.GroupVersionKind{Group: g, Version: v, Kind: k}] = true
		}
	}
	_, lists, err := s.Client.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			kinds := []string{r.Kind}
			if slices.Contains(r.Verbs, "list") {
				kinds = append(kinds, r.Kind+"List")
			}
			for _, k := range kinds {
				n++
				if gvk := gv.WithKind(k); !byGVK[gvk] {
					t.Errorf("%s (%s): no OpenAPI v2 definition for %v", r.Name, l.GroupVersion, gvk)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("discovery listed no resources")
	}
	t.Logf("%d kinds from discovery, %d models", n, len(models.ListModels()))
}

// TestOpenAPIV2ETagOverHTTPS: over the server's TLS listener, a request
// with the ETag of the last answer gets 304 Not Modified.
func TestOpenAPIV2ETagOverHTTPS(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	hc, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	get := func(etag string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, s.Config.Host+"/openapi/v2", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	first := get("")
	body, err := io.ReadAll(first.Body)
	if err != nil {
		t.Fatal(err)
	}
	if first.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET /openapi/v2: %s with %d bytes", first.Status, len(body))
	}
	if ct := first.Header.Get("Content-Type"); ct != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Errorf("Content-Type %q", ct)
	}
	etag := first.Header.Get("Etag")
	if again := get(etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %s, want 304 Not Modified", etag, again.Status)
	}
}
