package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type obj = map[string]any

func parse(t testing.TB, b []byte) obj {
	t.Helper()
	var m obj
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	return m
}

// get follows keys through nested objects.
func get(m any, keys ...string) any {
	for _, k := range keys {
		o, ok := m.(obj)
		if !ok {
			return nil
		}
		m = o[k]
	}
	return m
}

func componentOf(t testing.TB, doc obj, name string) obj {
	t.Helper()
	c, ok := get(doc, "components", "schemas", name).(obj)
	if !ok {
		t.Fatalf("component %s missing", name)
	}
	return c
}

func coreDoc(t testing.TB) obj { return parse(t, testDocs(t)["api/v1"]) }
func appsDoc(t testing.TB) obj { return parse(t, testDocs(t)["apis/apps/v1"]) }

// (a) kubectl's strict-validation probe: every patch operation of a kind
// carries the GVK and a fieldValidation query parameter, and supports SMP.
func TestPatchOperationsHaveGVKAndFieldValidation(t *testing.T) {
	docs := testDocs(t)
	for gv, rs := range testGroups() {
		doc := parse(t, docs[GroupVersionPath(gv)])
		paths := doc["paths"].(obj)
		for _, r := range rs {
			want := obj{"group": gv.Group, "version": gv.Version, "kind": r.Kind}
			found := 0
			for p, item := range paths {
				op, ok := get(item, "patch").(obj)
				if !ok || !reflect.DeepEqual(op["x-kubernetes-group-version-kind"], want) {
					continue
				}
				found++
				if op["x-kubernetes-action"] != "patch" {
					t.Errorf("%s patch: action %v", p, op["x-kubernetes-action"])
				}
				params := map[string]bool{}
				for _, prm := range op["parameters"].([]any) {
					if prm.(obj)["in"] == "query" {
						params[prm.(obj)["name"].(string)] = true
					}
				}
				for _, n := range []string{"fieldValidation", "fieldManager", "dryRun", "force"} {
					if !params[n] {
						t.Errorf("%s patch: no %s query parameter", p, n)
					}
				}
				if get(op, "requestBody", "content", "application/strategic-merge-patch+json") == nil {
					t.Errorf("%s patch: no strategic merge patch body", p)
				}
			}
			if found == 0 {
				t.Errorf("%s %s: no patch operation with its GVK", gv, r.Kind)
			}
			// create and update carry the write parameters too.
			coll := "/" + GroupVersionPath(gv)
			if r.Namespaced {
				coll += "/namespaces/{namespace}"
			}
			coll += "/" + r.Name
			for path, verb := range map[string]string{coll: "post", coll + "/{name}": "put"} {
				op, ok := get(paths, path, verb).(obj)
				if !ok {
					t.Errorf("%s %s missing", verb, path)
					continue
				}
				var names []string
				for _, prm := range op["parameters"].([]any) {
					names = append(names, prm.(obj)["name"].(string))
				}
				if got := strings.Join(names, ","); got != "dryRun,fieldManager,fieldValidation" {
					t.Errorf("%s %s parameters: %s", verb, path, got)
				}
				if !reflect.DeepEqual(op["x-kubernetes-group-version-kind"], want) {
					t.Errorf("%s %s GVK: %v", verb, path, op["x-kubernetes-group-version-kind"])
				}
			}
		}
	}
}

// (b) strategic merge patch metadata from the struct tags.
func TestPatchMetadata(t *testing.T) {
	core, apps := coreDoc(t), appsDoc(t)
	cases := []struct {
		doc                        obj
		component, field           string
		strategy, mergeKey, listTy string
		keys                       []any
	}{
		{core, "io.k8s.api.core.v1.ServiceSpec", "ports", "merge", "port", "map", []any{"port", "protocol"}},
		{core, "io.k8s.api.core.v1.PodSpec", "containers", "merge", "name", "map", []any{"name"}},
		{core, "io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys", "name", "map", []any{"name"}},
		{core, "io.k8s.api.core.v1.Container", "env", "merge", "name", "map", []any{"name"}},
		{core, "io.k8s.api.core.v1.Container", "ports", "merge", "containerPort", "map", []any{"containerPort", "protocol"}},
		{core, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", "", "set", nil},
		{core, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "merge", "uid", "map", []any{"uid"}},
		{apps, "io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys", "", "", nil},
		{apps, "io.k8s.api.core.v1.PodSpec", "containers", "merge", "name", "map", []any{"name"}},
	}
	for _, c := range cases {
		p, ok := get(componentOf(t, c.doc, c.component), "properties", c.field).(obj)
		if !ok {
			t.Errorf("%s.%s missing", c.component, c.field)
			continue
		}
		str, _ := p["x-kubernetes-patch-strategy"].(string)
		key, _ := p["x-kubernetes-patch-merge-key"].(string)
		lt, _ := p["x-kubernetes-list-type"].(string)
		keys, _ := p["x-kubernetes-list-map-keys"].([]any)
		if str != c.strategy || key != c.mergeKey || lt != c.listTy || !reflect.DeepEqual(keys, c.keys) {
			t.Errorf("%s.%s: strategy %q merge key %q list type %q keys %v; want %q %q %q %v",
				c.component, c.field, str, key, lt, keys, c.strategy, c.mergeKey, c.listTy, c.keys)
		}
	}
	// The items of spec.ports reference ServicePort the way Kubernetes does.
	ports := get(componentOf(t, core, "io.k8s.api.core.v1.ServiceSpec"), "properties", "ports").(obj)
	want := obj{"allOf": []any{obj{"$ref": "#/components/schemas/io.k8s.api.core.v1.ServicePort"}}, "default": obj{}}
	if !reflect.DeepEqual(ports["items"], want) || ports["type"] != "array" {
		t.Errorf("ServiceSpec.ports = %v", ports)
	}
}

// (c) descriptions come from SwaggerDoc, for types, fields and inlined fields.
func TestDescriptions(t *testing.T) {
	core := coreDoc(t)
	svc := componentOf(t, core, "io.k8s.api.core.v1.Service")
	if svc["description"] != (corev1.Service{}).SwaggerDoc()[""] || svc["description"] == "" {
		t.Errorf("Service description %q", svc["description"])
	}
	checks := []struct {
		component, field, want string
	}{
		{"io.k8s.api.core.v1.Service", "spec", corev1.Service{}.SwaggerDoc()["spec"]},
		{"io.k8s.api.core.v1.Service", "apiVersion", metav1.TypeMeta{}.SwaggerDoc()["apiVersion"]},
		{"io.k8s.api.core.v1.Service", "metadata", corev1.Service{}.SwaggerDoc()["metadata"]},
		{"io.k8s.api.core.v1.ServiceSpec", "ports", corev1.ServiceSpec{}.SwaggerDoc()["ports"]},
		{"io.k8s.api.core.v1.ServiceSpec", "clusterIP", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
		{"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "name", metav1.ObjectMeta{}.SwaggerDoc()["name"]},
		// Volume inlines VolumeSource: its fields keep VolumeSource's docs.
		{"io.k8s.api.core.v1.Volume", "configMap", corev1.VolumeSource{}.SwaggerDoc()["configMap"]},
	}
	for _, c := range checks {
		got := get(componentOf(t, core, c.component), "properties", c.field, "description")
		if got != c.want || c.want == "" {
			t.Errorf("%s.%s description = %q, want %q", c.component, c.field, got, c.want)
		}
	}
	for _, n := range []string{"Time", "MicroTime"} {
		c := componentOf(t, core, "io.k8s.apimachinery.pkg.apis.meta.v1."+n)
		if c["description"] == "" || c["type"] != "string" || c["format"] != "date-time" {
			t.Errorf("%s = %v", n, c)
		}
	}
}

func TestSchemaShapes(t *testing.T) {
	core := coreDoc(t)
	svc := componentOf(t, core, "io.k8s.api.core.v1.Service")
	if !reflect.DeepEqual(svc["x-kubernetes-group-version-kind"], []any{obj{"group": "", "version": "v1", "kind": "Service"}}) {
		t.Errorf("Service GVK %v", svc["x-kubernetes-group-version-kind"])
	}
	props := svc["properties"].(obj)
	var names []string
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "apiVersion,kind,metadata,spec,status" {
		t.Errorf("Service properties %s", got)
	}
	meta := props["metadata"].(obj)
	if !reflect.DeepEqual(meta["allOf"], []any{obj{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}}) ||
		!reflect.DeepEqual(meta["default"], obj{}) {
		t.Errorf("Service.metadata %v", meta)
	}
	port := componentOf(t, core, "io.k8s.api.core.v1.ServicePort")
	if !reflect.DeepEqual(port["required"], []any{"port"}) {
		t.Errorf("ServicePort required %v", port["required"])
	}
	if p := get(port, "properties", "port").(obj); p["type"] != "integer" || p["format"] != "int32" || p["default"] != 0.0 {
		t.Errorf("ServicePort.port %v", p)
	}
	if p := get(port, "properties", "targetPort", "allOf").([]any); !reflect.DeepEqual(p, []any{obj{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}}) {
		t.Errorf("ServicePort.targetPort %v", p)
	}
	ios := componentOf(t, core, "io.k8s.apimachinery.pkg.util.intstr.IntOrString")
	if ios["format"] != "int-or-string" || ios["x-kubernetes-int-or-string"] != true ||
		!reflect.DeepEqual(ios["oneOf"], []any{obj{"type": "integer"}, obj{"type": "string"}}) {
		t.Errorf("IntOrString %v", ios)
	}
	q := componentOf(t, core, "io.k8s.apimachinery.pkg.api.resource.Quantity")
	if !reflect.DeepEqual(q["oneOf"], []any{obj{"type": "string"}, obj{"type": "number"}}) || q["description"] == "" {
		t.Errorf("Quantity %v", q)
	}
	limits := get(componentOf(t, core, "io.k8s.api.core.v1.ResourceRequirements"), "properties", "limits").(obj)
	if limits["type"] != "object" || !reflect.DeepEqual(limits["additionalProperties"], obj{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}) {
		t.Errorf("ResourceRequirements.limits %v", limits)
	}
	labels := get(componentOf(t, core, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"), "properties", "labels").(obj)
	if labels["type"] != "object" || !reflect.DeepEqual(labels["additionalProperties"], obj{"type": "string", "default": ""}) {
		t.Errorf("ObjectMeta.labels %v", labels)
	}
	data := get(componentOf(t, core, "io.k8s.api.core.v1.Secret"), "properties", "data", "additionalProperties").(obj)
	if data["type"] != "string" || data["format"] != "byte" {
		t.Errorf("Secret.data values %v", data)
	}
	if c := componentOf(t, appsDoc(t), "io.k8s.apimachinery.pkg.runtime.RawExtension"); c["type"] != "object" || c["description"] == "" {
		t.Errorf("RawExtension %v", c)
	}
	if c := componentOf(t, core, "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"); c["type"] != "object" || c["properties"] != nil {
		t.Errorf("FieldsV1 %v", c)
	}
	// Scale is served in the core group (replicationcontrollers/scale) with its own GVK.
	scale := componentOf(t, core, "io.k8s.api.autoscaling.v1.Scale")
	if !reflect.DeepEqual(scale["x-kubernetes-group-version-kind"], []any{obj{"group": "autoscaling", "version": "v1", "kind": "Scale"}}) {
		t.Errorf("Scale GVK %v", scale["x-kubernetes-group-version-kind"])
	}
	// Lists carry their own GVK.
	if g := componentOf(t, core, "io.k8s.api.core.v1.ServiceList")["x-kubernetes-group-version-kind"]; !reflect.DeepEqual(g, []any{obj{"group": "", "version": "v1", "kind": "ServiceList"}}) {
		t.Errorf("ServiceList GVK %v", g)
	}
	if g := componentOf(t, appsDoc(t), "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")["x-kubernetes-group-version-kind"]; len(g.([]any)) != 2 {
		t.Errorf("DeleteOptions GVK %v", g)
	}
}

// Every $ref resolves, every component is referenced (or a kind), and each
// component GVK is listed once: kubectl picks the first component matching.
func TestReferencesResolve(t *testing.T) {
	for path, b := range testDocs(t) {
		doc := parse(t, b)
		schemas := doc["components"].(obj)["schemas"].(obj)
		used := map[string]bool{}
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case obj:
				if r, ok := v["$ref"].(string); ok {
					name := strings.TrimPrefix(r, componentRefPrefix)
					if _, ok := schemas[name]; !ok || name == r {
						t.Errorf("%s: dangling $ref %s", path, r)
					}
					used[name] = true
				}
				for _, x := range v {
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(doc)
		gvks := map[string]string{}
		for name, s := range schemas {
			list, _ := s.(obj)["x-kubernetes-group-version-kind"].([]any)
			if !used[name] && len(list) == 0 {
				t.Errorf("%s: component %s is unreferenced", path, name)
			}
			for _, g := range list {
				k := fmt.Sprint(g)
				if other, ok := gvks[k]; ok {
					t.Errorf("%s: GVK %s on both %s and %s", path, k, other, name)
				}
				gvks[k] = name
			}
		}
		if doc["openapi"] != "3.0.0" {
			t.Errorf("%s: openapi %v", path, doc["openapi"])
		}
	}
}

func TestDeterministic(t *testing.T) {
	gv := schema.GroupVersion{Group: "apps", Version: "v1"}
	rs := testGroups()[gv]
	a, err := Document(gv, rs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewGenerator().Document(gv, rs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("Document output differs between runs")
	}
	// Keys are sorted at every level: re-encoding the parsed document (maps
	// are written sorted) gives the same bytes, modulo HTML escaping.
	var v any
	if err := json.Unmarshal(a, &v); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(buf.Bytes()), a) {
		t.Error("document keys are not sorted")
	}
}

func TestIndex(t *testing.T) {
	docs := map[string][]byte{"api/v1": []byte(`{"a":1}`), "apis/apps/v1": []byte(`{"b":2}`)}
	b, err := Index(docs)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(docs["apis/apps/v1"])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	want := `{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=` + Hash(docs["api/v1"]) +
		`"},"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=` + h + `"}}}`
	if string(b) != want {
		t.Errorf("Index = %s\nwant %s", b, want)
	}
	if len(h) != 128 {
		t.Errorf("hash length %d", len(h))
	}
	docs["api/v1"] = []byte(`{"a":2}`)
	b2, _ := Index(docs)
	if bytes.Equal(b, b2) {
		t.Error("index unchanged after a document changed")
	}
}

func TestPaths(t *testing.T) {
	core := coreDoc(t)
	paths := core["paths"].(obj)
	for p, verbs := range map[string]string{
		"/api/v1/namespaces/{namespace}/services":               "delete,get,post",
		"/api/v1/namespaces/{namespace}/services/{name}":        "delete,get,patch,put",
		"/api/v1/namespaces/{namespace}/services/{name}/status": "get,patch,put",
		"/api/v1/services":                                                   "get",
		"/api/v1/namespaces":                                                 "get,post",
		"/api/v1/namespaces/{name}":                                          "delete,get,patch,put",
		"/api/v1/namespaces/{namespace}/pods/{name}/binding":                 "post",
		"/api/v1/namespaces/{namespace}/pods/{name}/eviction":                "post",
		"/api/v1/namespaces/{namespace}/pods/{name}/log":                     "get",
		"/api/v1/namespaces/{namespace}/pods/{name}/exec":                    "get,post",
		"/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale": "get,patch,put",
		"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token":        "post",
	} {
		item, ok := paths[p].(obj)
		if !ok {
			t.Errorf("path %s missing", p)
			continue
		}
		var got []string
		for k := range item {
			if k != "parameters" {
				got = append(got, k)
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != verbs {
			t.Errorf("%s: operations %v, want %s", p, got, verbs)
		}
	}
	if _, ok := paths["/api/v1/namespaces/{name}/finalize"]; ok {
		t.Error("unknown subresource finalize described")
	}
	list := get(paths, "/api/v1/namespaces/{namespace}/services", "get").(obj)
	if list["operationId"] != "listCoreV1NamespacedService" || list["x-kubernetes-action"] != "list" {
		t.Errorf("list op %v %v", list["operationId"], list["x-kubernetes-action"])
	}
	if r := get(list, "responses", "200", "content", "application/json", "schema", "$ref"); r != "#/components/schemas/io.k8s.api.core.v1.ServiceList" {
		t.Errorf("list response %v", r)
	}
	scale := get(paths, "/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale", "patch").(obj)
	if !reflect.DeepEqual(scale["x-kubernetes-group-version-kind"], obj{"group": "autoscaling", "version": "v1", "kind": "Scale"}) {
		t.Errorf("scale GVK %v", scale["x-kubernetes-group-version-kind"])
	}
	apps := appsDoc(t)["paths"].(obj)
	if id := get(apps, "/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patch", "operationId"); id != "patchAppsV1NamespacedDeployment" {
		t.Errorf("deployment patch operationId %v", id)
	}
	rbac := parse(t, testDocs(t)["apis/rbac.authorization.k8s.io/v1"])
	if tags := get(rbac, "paths", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "get", "tags"); !reflect.DeepEqual(tags, []any{"rbacAuthorization_v1"}) {
		t.Errorf("rbac tags %v", tags)
	}
}

func TestVerbsLimitOperations(t *testing.T) {
	gv := schema.GroupVersion{Version: "v1"}
	b, err := Document(gv, []Resource{{Name: "events", Kind: "Event", Namespaced: true, Object: &corev1.Event{}, List: &corev1.EventList{}, Verbs: []string{"get", "list"}}})
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, b)
	if item := get(doc, "paths", "/api/v1/namespaces/{namespace}/events/{name}").(obj); item["patch"] != nil || item["get"] == nil {
		t.Errorf("read-only resource item %v", item)
	}
	if get(doc, "components", "schemas", "io.k8s.apimachinery.pkg.apis.meta.v1.Patch") != nil {
		t.Error("Patch component without patch operations")
	}
	if _, err := Document(gv, []Resource{{Name: "x", Object: nil}}); err == nil {
		t.Error("nil Object accepted")
	}
}

// TestGeneratorCache: a generator builds each named type's schema once. A second
// pass over a kube-apiserver-sized set of group-versions builds no component again
// and yields the same documents. How long generation takes is measured by
// BenchmarkDocumentsCold, not asserted: a loaded machine would fail a time limit.
func TestGeneratorCache(t *testing.T) {
	groups := testGroups()
	g := NewGenerator()
	first := map[schema.GroupVersion][]byte{}
	for gv, rs := range groups {
		b, err := g.Document(gv, rs)
		if err != nil {
			t.Fatal(err)
		}
		first[gv] = b
	}
	built := maps.Clone(g.components)
	if len(built) == 0 {
		t.Fatal("no component schema built")
	}
	for gv, rs := range groups {
		b, err := g.Document(gv, rs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first[gv]) {
			t.Errorf("%v: the second document differs from the first", gv)
		}
	}
	if len(g.components) != len(built) {
		t.Errorf("second pass: %d component schemas, want the first pass's %d", len(g.components), len(built))
	}
	for typ, c := range g.components {
		if built[typ] != c {
			t.Errorf("component schema of %v built again", typ)
		}
	}
	t.Logf("%d group-versions, %d component schemas", len(groups), len(built))
}

// BenchmarkDocumentsCold generates every group-version of a kube-apiserver-sized
// set with a fresh generator, as a server does at start-up.
func BenchmarkDocumentsCold(b *testing.B) {
	groups := testGroups()
	for b.Loop() {
		g := NewGenerator()
		for gv, rs := range groups {
			if _, err := g.Document(gv, rs); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkDocumentCore(b *testing.B) {
	gv := schema.GroupVersion{Version: "v1"}
	rs := testGroups()[gv]
	for i := 0; i < b.N; i++ {
		if _, err := NewGenerator().Document(gv, rs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConcurrentDocuments(t *testing.T) {
	groups := testGroups()
	want := map[schema.GroupVersion][]byte{}
	for gv, rs := range groups {
		b, err := Document(gv, rs)
		if err != nil {
			t.Fatal(err)
		}
		want[gv] = b
	}
	g := NewGenerator() // shared, cold
	errs := make(chan error, 4*len(groups))
	for i := 0; i < 4; i++ {
		for gv, rs := range groups {
			go func() {
				b, err := g.Document(gv, rs)
				if err == nil && !bytes.Equal(b, want[gv]) {
					err = fmt.Errorf("%s: concurrent generation differs", gv)
				}
				errs <- err
			}()
		}
	}
	for i := 0; i < 4*len(groups); i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
