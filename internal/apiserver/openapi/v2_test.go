package openapi

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	protomodels "k8s.io/kube-openapi/pkg/util/proto"
	"sigs.k8s.io/yaml"
)

var (
	swaggerOnce  sync.Once
	swaggerJSON  []byte
	swaggerProto []byte
	swaggerErr   error
)

// sortedTestGroups is testGroups in the form SwaggerDocument takes.
func sortedTestGroups() []GroupVersionResources {
	var out []GroupVersionResources
	for gv, rs := range testGroups() {
		out = append(out, GroupVersionResources{GroupVersion: gv, Resources: rs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupVersion.String() < out[j].GroupVersion.String() })
	return out
}

// testSwagger returns the v2 document of testGroups, JSON and protobuf.
func testSwagger(t testing.TB) (jsonDoc, protoDoc []byte) {
	t.Helper()
	swaggerOnce.Do(func() {
		swaggerJSON, swaggerErr = NewGenerator().SwaggerDocument(sortedTestGroups())
		if swaggerErr == nil {
			swaggerProto, swaggerErr = SwaggerProto(swaggerJSON)
		}
	})
	if swaggerErr != nil {
		t.Fatal(swaggerErr)
	}
	return swaggerJSON, swaggerProto
}

// testModels decodes the protobuf document as client-go does (gnostic) and
// parses it with kube-openapi's proto package, as kubectl ≤ 1.28 does before
// apply, create -f, edit, diff and explain.
func testModels(t testing.TB) (*openapiv2.Document, protomodels.Models) {
	t.Helper()
	_, pb := testSwagger(t)
	doc := &openapiv2.Document{}
	if err := proto.Unmarshal(pb, doc); err != nil {
		t.Fatalf("unmarshal protobuf: %v", err)
	}
	models, err := protomodels.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("kube-openapi proto models: %v", err)
	}
	return doc, models
}

// modelGVKs is how kubectl's openapi.Resources indexes models: by the
// x-kubernetes-group-version-kind of each definition.
func modelGVKs(t testing.TB, models protomodels.Models) map[schema.GroupVersionKind]string {
	t.Helper()
	out := map[schema.GroupVersionKind]string{}
	for _, name := range models.ListModels() {
		ext, ok := models.LookupModel(name).GetExtensions()["x-kubernetes-group-version-kind"]
		if !ok {
			continue
		}
		list, ok := ext.([]any)
		if !ok {
			t.Fatalf("%s: x-kubernetes-group-version-kind is %T, want a list", name, ext)
		}
		for _, e := range list {
			// kube-openapi decodes the YAML extensions with yaml.v2, as kubectl's
			// openapi.Resources expects them.
			m, ok := e.(map[any]any)
			if !ok {
				t.Fatalf("%s: x-kubernetes-group-version-kind entry is %T", name, e)
			}
			gvk := schema.GroupVersionKind{}
			gvk.Group, _ = m["group"].(string)
			gvk.Version, _ = m["version"].(string)
			gvk.Kind, _ = m["kind"].(string)
			if prev, dup := out[gvk]; dup && prev != name {
				t.Errorf("%v is claimed by %s and %s", gvk, prev, name)
			}
			out[gvk] = name
		}
	}
	return out
}

// TestSwaggerShape: the v2 document is Swagger 2.0 in kube-apiserver's v2
// form — definitions referenced as #/definitions/, no v3-only constructs.
func TestSwaggerShape(t *testing.T) {
	j, _ := testSwagger(t)
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["swagger"] != "2.0" {
		t.Errorf("swagger = %v, want 2.0", doc["swagger"])
	}
	for _, bad := range []string{`"#/components/`, `"allOf"`, `"oneOf"`, `"default":{}`, `"default":""`, `"default":0`, `"default":false`, `"enum"`, `"requestBody"`, `"content"`, `Possible enum values`, `"x-kubernetes-int-or-string"`} {
		if bytes.Contains(j, []byte(bad)) {
			t.Errorf("document contains %s", bad)
		}
	}
	defs := doc["definitions"].(map[string]any)
	def := func(name string) map[string]any {
		d, ok := defs[name].(map[string]any)
		if !ok {
			t.Fatalf("no definition %s", name)
		}
		return d
	}
	prop := func(def, p string) map[string]any {
		v, ok := get(defs, def, "properties", p).(map[string]any)
		if !ok {
			t.Fatalf("%s has no property %s", def, p)
		}
		return v
	}
	checkJSON := func(what string, got any, want string) {
		t.Helper()
		g, _ := json.Marshal(got)
		var w any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		wb, _ := json.Marshal(w)
		if !bytes.Equal(g, wb) {
			t.Errorf("%s:\n got %s\nwant %s", what, g, wb)
		}
	}
	// As in kube-apiserver's swagger.json.
	checkJSON("Deployment GVK", def("io.k8s.api.apps.v1.Deployment")["x-kubernetes-group-version-kind"],
		`[{"group":"apps","kind":"Deployment","version":"v1"}]`)
	strategy := prop("io.k8s.api.apps.v1.DeploymentSpec", "strategy")
	delete(strategy, "description")
	checkJSON("DeploymentSpec.strategy", strategy,
		`{"$ref":"#/definitions/io.k8s.api.apps.v1.DeploymentStrategy","x-kubernetes-patch-strategy":"retainKeys"}`)
	containers := prop("io.k8s.api.core.v1.PodSpec", "containers")
	delete(containers, "description")
	checkJSON("PodSpec.containers", containers,
		`{"items":{"$ref":"#/definitions/io.k8s.api.core.v1.Container"},"type":"array","x-kubernetes-list-map-keys":["name"],"x-kubernetes-list-type":"map","x-kubernetes-patch-merge-key":"name","x-kubernetes-patch-strategy":"merge"}`)
	ports := prop("io.k8s.api.core.v1.ServiceSpec", "ports")
	delete(ports, "description")
	checkJSON("ServiceSpec.ports", ports,
		`{"items":{"$ref":"#/definitions/io.k8s.api.core.v1.ServicePort"},"type":"array","x-kubernetes-list-map-keys":["port","protocol"],"x-kubernetes-list-type":"map","x-kubernetes-patch-merge-key":"port","x-kubernetes-patch-strategy":"merge"}`)
	ios := def("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
	delete(ios, "description")
	checkJSON("IntOrString", ios, `{"format":"int-or-string","type":"string"}`)
	q := def("io.k8s.apimachinery.pkg.api.resource.Quantity")
	delete(q, "description")
	checkJSON("Quantity", q, `{"type":"string"}`)
	if d, _ := prop("io.k8s.api.core.v1.ServiceSpec", "type")["description"].(string); !strings.HasPrefix(d, "type determines how the Service is exposed.") {
		t.Errorf("ServiceSpec.type description %q", d)
	}
	// Path items: a body parameter, consumes/produces, schemas on responses,
	// fieldValidation inline on patch (cli-runtime's v2 verifier does not follow
	// parameter references).
	patch, ok := get(doc, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patch").(map[string]any)
	if !ok {
		t.Fatal("no deployment patch operation")
	}
	checkJSON("patch consumes", patch["consumes"],
		`["application/json-patch+json","application/merge-patch+json","application/strategic-merge-patch+json","application/apply-patch+yaml"]`)
	checkJSON("patch GVK", patch["x-kubernetes-group-version-kind"], `{"group":"apps","kind":"Deployment","version":"v1"}`)
	checkJSON("patch 200", get(patch, "responses", "200"), `{"description":"OK","schema":{"$ref":"#/definitions/io.k8s.api.apps.v1.Deployment"}}`)
	params, _ := patch["parameters"].([]any)
	if len(params) == 0 {
		t.Fatal("patch has no parameters")
	}
	checkJSON("patch body", params[0], `{"in":"body","name":"body","required":true,"schema":{"$ref":"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}`)
	list, _ := get(doc, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments", "get").(map[string]any)
	checkJSON("list produces", list["produces"], `["application/json","application/yaml","application/json;stream=watch"]`)
}

// TestSwaggerParses: gnostic accepts the document (it validates against the
// Swagger 2.0 model) and kube-openapi's proto parser, which kubectl runs over
// it, resolves every definition and reference.
func TestSwaggerParses(t *testing.T) {
	j, pb := testSwagger(t)
	fromJSON, err := openapiv2.ParseDocument(j)
	if err != nil {
		t.Fatal(err)
	}
	doc, models := testModels(t)
	if !proto.Equal(fromJSON, doc) {
		t.Error("the protobuf document differs from the parsed JSON")
	}
	if len(models.ListModels()) != len(doc.GetDefinitions().GetAdditionalProperties()) {
		t.Errorf("%d models for %d definitions", len(models.ListModels()), len(doc.GetDefinitions().GetAdditionalProperties()))
	}
	t.Logf("JSON %d bytes, protobuf %d bytes, %d definitions, %d paths", len(j), len(pb),
		len(doc.GetDefinitions().GetAdditionalProperties()), len(doc.GetPaths().GetPath()))
}

// TestSwaggerGVKs: every served kind and its list resolve to a model by GVK
// (kubectl's openapi.Resources.LookupResource), and every patchable kind has
// a patch operation with the fieldValidation query parameter, found the way
// cli-runtime's v2 QueryParamVerifier looks for it.
func TestSwaggerGVKs(t *testing.T) {
	doc, models := testModels(t)
	byGVK := modelGVKs(t, models)
	for gv, rs := range testGroups() {
		for _, r := range rs {
			for _, kind := range []string{r.Kind, r.Kind + "List"} {
				gvk := gv.WithKind(kind)
				if _, ok := byGVK[gvk]; !ok {
					t.Errorf("no definition for %v", gvk)
				}
			}
			if err := supportsQueryParamV2(doc, gv.WithKind(r.Kind), "fieldValidation"); err != nil {
				t.Error(err)
			}
		}
	}
}

// supportsQueryParamV2 mirrors cli-runtime's supportsQueryParam over the v2
// document: the first patch operation for the GVK must list the parameter.
func supportsQueryParamV2(doc *openapiv2.Document, gvk schema.GroupVersionKind, param string) error {
	for _, path := range doc.GetPaths().GetPath() {
		op := path.GetValue().GetPatch()
		if op == nil || !hasGVKExtension(op.VendorExtension, gvk) {
			continue
		}
		for _, p := range op.GetParameters() {
			if p.GetParameter().GetNonBodyParameter().GetQueryParameterSubSchema().GetName() == param {
				return nil
			}
		}
		return &paramError{gvk: gvk, msg: "patch operation without " + param}
	}
	return &paramError{gvk: gvk, msg: "no patch operation"}
}

type paramError struct {
	gvk schema.GroupVersionKind
	msg string
}

func (e *paramError) Error() string { return e.gvk.String() + ": " + e.msg }

func hasGVKExtension(ext []*openapiv2.NamedAny, gvk schema.GroupVersionKind) bool {
	for _, e := range ext {
		if e.GetName() != "x-kubernetes-group-version-kind" {
			continue
		}
		var m map[string]string
		if err := yaml.Unmarshal([]byte(e.GetValue().GetYaml()), &m); err != nil {
			return false
		}
		return m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind
	}
	return false
}

// TestSwaggerStrategicMerge: kubectl ≤ 1.28's client-side apply computes its
// three-way strategic merge patch from the v2 models (overwrite true, as
// apply's default --overwrite); it must equal the patch computed from the Go
// types' patch tags, merge keys and retainKeys included.
func TestSwaggerStrategicMerge(t *testing.T) {
	_, models := testModels(t)
	byGVK := modelGVKs(t, models)
	cases := []struct {
		gvk                         schema.GroupVersionKind
		obj                         any
		original, modified, current string
	}{
		{
			gvk: appsv1.SchemeGroupVersion.WithKind("Deployment"), obj: appsv1.Deployment{},
			original: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"a":"1"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1","ports":[{"containerPort":80}]},{"name":"side","image":"busybox","env":[{"name":"A","value":"1"}]}]}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}}`,
			modified: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"a":"2"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:2","ports":[{"containerPort":80},{"containerPort":443}]},{"name":"side","image":"busybox","env":[{"name":"B","value":"2"}]}]}},"strategy":{"type":"Recreate"}}}`,
			current:  `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"a":"1","other":"x"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1","ports":[{"containerPort":80,"protocol":"TCP"}]},{"name":"side","image":"busybox","env":[{"name":"A","value":"1"}]}],"dnsPolicy":"ClusterFirst"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":"25%"}}}}`,
		},
		{
			gvk: corev1.SchemeGroupVersion.WithKind("Service"), obj: corev1.Service{},
			original: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}}`,
			modified: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web2"},"ports":[{"port":80,"targetPort":9090},{"port":443,"name":"https"}]}}`,
			current:  `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"clusterIP":"10.96.0.10","selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080,"protocol":"TCP"}],"type":"ClusterIP"}}`,
		},
	}
	for _, c := range cases {
		name, ok := byGVK[c.gvk]
		if !ok {
			t.Fatalf("no model for %v", c.gvk)
		}
		fromOpenAPI, err := strategicpatch.CreateThreeWayMergePatch([]byte(c.original), []byte(c.modified), []byte(c.current),
			strategicpatch.NewPatchMetaFromOpenAPI(models.LookupModel(name)), true)
		if err != nil {
			t.Fatalf("%v: patch from the OpenAPI v2 model: %v", c.gvk, err)
		}
		meta, err := strategicpatch.NewPatchMetaFromStruct(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		fromStruct, err := strategicpatch.CreateThreeWayMergePatch([]byte(c.original), []byte(c.modified), []byte(c.current), meta, true)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, fromOpenAPI, fromStruct) {
			t.Errorf("%v: patch from the OpenAPI v2 model\n %s\ndiffers from the patch from the Go type\n %s", c.gvk, fromOpenAPI, fromStruct)
		}
		if !bytes.Contains(fromOpenAPI, []byte("$setElementOrder")) {
			t.Errorf("%v: patch %s has no $setElementOrder: the merge keys were not seen", c.gvk, fromOpenAPI)
		}
	}
}

// TestSwaggerDeterministic: a second generator gives the same bytes (the
// ETag must not change across restarts of the same build).
func TestSwaggerDeterministic(t *testing.T) {
	j, _ := testSwagger(t)
	again, err := NewGenerator().SwaggerDocument(sortedTestGroups())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(j, again) {
		t.Error("two generations of the v2 document differ")
	}
}

// TestSwaggerLeavesV3Alone: generating the v2 document with a generator that
// already made v3 documents does not change them (the cached component
// schemas are shared and must not be modified).
func TestSwaggerLeavesV3Alone(t *testing.T) {
	g := NewGenerator()
	gv := schema.GroupVersion{Group: "apps", Version: "v1"}
	before, err := g.Document(gv, testGroups()[gv])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SwaggerDocument(sortedTestGroups()); err != nil {
		t.Fatal(err)
	}
	after, err := g.Document(gv, testGroups()[gv])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the v3 document changed after the v2 document was generated")
	}
}

// BenchmarkSwaggerDocument generates the v2 JSON document of a
// kube-apiserver-sized set of group-versions with a fresh generator, as the
// server does on the first GET /openapi/v2.
func BenchmarkSwaggerDocument(b *testing.B) {
	groups := sortedTestGroups()
	for b.Loop() {
		if _, err := NewGenerator().SwaggerDocument(groups); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSwaggerProto converts the v2 JSON document to protobuf, as the
// server does on the first protobuf request.
func BenchmarkSwaggerProto(b *testing.B) {
	j, _ := testSwagger(b)
	b.SetBytes(int64(len(j)))
	for b.Loop() {
		if _, err := SwaggerProto(j); err != nil {
			b.Fatal(err)
		}
	}
}
