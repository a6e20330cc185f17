package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// (d) the documents parse with kube-openapi's spec3 types, which is what
// kubectl decodes them into.
func TestParsesAsSpec3(t *testing.T) {
	for path, b := range testDocs(t) {
		var doc spec3.OpenAPI
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc.Version != "3.0.0" || doc.Paths == nil || len(doc.Paths.Paths) == 0 || doc.Components == nil || len(doc.Components.Schemas) == 0 {
			t.Fatalf("%s: incomplete document", path)
		}
		for p, item := range doc.Paths.Paths {
			if item.Patch == nil {
				continue
			}
			var g map[string]string
			if err := item.Patch.Extensions.GetObject("x-kubernetes-group-version-kind", &g); err != nil || g["kind"] == "" {
				t.Errorf("%s %s: patch GVK %v %v", path, p, g, err)
			}
		}
	}
}

// kubectlClient returns client-go's OpenAPI v3 root (what kubectl builds from
// its discovery client) talking to the fake server.
func kubectlClient(t *testing.T) openapi3.Root {
	srv, _ := newFakeAPIServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return openapi3.NewRoot(dc.OpenAPIV3())
}

// supportsFieldValidation mirrors cli-runtime's supportsQueryParamV3: the
// first patch operation found for the GVK decides.
func supportsFieldValidation(doc *spec3.OpenAPI, gvk schema.GroupVersionKind) error {
	for _, path := range doc.Paths.Paths {
		op := path.Patch
		if op == nil || !gvkMatches(op.Extensions, gvk) {
			continue
		}
		for _, p := range op.Parameters {
			if p.Name == "fieldValidation" && p.In == "query" {
				return nil
			}
		}
		return fmt.Errorf("%v: patch without fieldValidation", gvk)
	}
	return fmt.Errorf("%v: no patch path", gvk)
}

func gvkMatches(ext spec.Extensions, gvk schema.GroupVersionKind) bool {
	var m map[string]string
	if err := ext.GetObject("x-kubernetes-group-version-kind", &m); err != nil {
		return false
	}
	return m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind
}

func gvkListMatches(ext spec.Extensions, gvk schema.GroupVersionKind) bool {
	var l []map[string]string
	if err := ext.GetObject("x-kubernetes-group-version-kind", &l); err != nil {
		return false
	}
	for _, m := range l {
		if m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind {
			return true
		}
	}
	return false
}

// (e) kubectl's own machinery: client-go's openapi3 root fetches the index and
// documents over HTTP, and apimachinery's strategic merge patch computes
// apply patches from the v3 schema (kubectl apply's Patcher does exactly this)
// that equal those computed from the Go structs.
func TestKubectlApplyMachinery(t *testing.T) {
	root := kubectlClient(t)
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	if len(gvs) != len(testGroups()) {
		t.Fatalf("group versions %v", gvs)
	}
	for gv, rs := range testGroups() {
		doc, err := root.GVSpec(gv)
		if err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		for _, r := range rs {
			gvk := gv.WithKind(r.Kind)
			// kubectl's validation probe (create -f / apply) ...
			if err := supportsFieldValidation(doc, gvk); err != nil {
				t.Error(err)
			}
			// ... and the apply Patcher's SMP probe.
			ok := false
			for _, p := range doc.Paths.Paths {
				if p.Patch != nil && gvkMatches(p.Patch.Extensions, gvk) && p.Patch.RequestBody != nil {
					_, ok = p.Patch.RequestBody.Content["application/strategic-merge-patch+json"]
					break
				}
			}
			if !ok {
				t.Errorf("%v: strategic merge patch not advertised", gvk)
			}
			n := 0
			for _, c := range doc.Components.Schemas {
				if gvkListMatches(c.Extensions, gvk) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%v: %d component schemas carry the GVK", gvk, n)
			}
		}
	}

	cases := []struct {
		gvk                         schema.GroupVersionKind
		obj                         any
		original, modified, current string
		want                        []string // substrings of the patch
	}{
		{
			gvk: schema.GroupVersionKind{Version: "v1", Kind: "Service"}, obj: &corev1.Service{},
			original: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}`,
			modified: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web","tier":"fe"}},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8081},{"name":"https","port":443,"targetPort":8443}]}}`,
			current:  `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"},"resourceVersion":"7"},"spec":{"type":"ClusterIP","clusterIP":"10.0.0.9","selector":{"app":"web"},"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]}}`,
			want:     []string{`"$setElementOrder/ports":[{"port":80},{"port":443}]`, `"port":80,"targetPort":8081`},
		},
		{
			gvk: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, obj: &appsv1.Deployment{},
			original: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},"template":{"spec":{"containers":[{"name":"app","image":"nginx:1","env":[{"name":"A","value":"1"}]},{"name":"side","image":"busybox"}]}}}}`,
			modified: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"strategy":{"type":"Recreate"},"template":{"spec":{"containers":[{"name":"app","image":"nginx:2","env":[{"name":"B","value":"2"}]}]}}}}`,
			current:  `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":3,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":"25%"}},"template":{"spec":{"containers":[{"name":"app","image":"nginx:1","env":[{"name":"A","value":"1"}]},{"name":"side","image":"busybox"}]}}}}`,
			want:     []string{`"$retainKeys":["type"]`, `"$patch":"delete"`, `"name":"side"`, `"image":"nginx:2"`},
		},
		{
			gvk: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, obj: &corev1.Pod{},
			original: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"a":"1"}},"spec":{"volumes":[{"name":"cfg","configMap":{"name":"c1"}}],"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80},{"containerPort":53,"protocol":"UDP"}],"resources":{"limits":{"cpu":"1"}}}]}}`,
			modified: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"b":"2"}},"spec":{"volumes":[{"name":"cfg","secret":{"secretName":"s1"}}],"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80},{"containerPort":8080}],"resources":{"limits":{"cpu":"2","memory":"1Gi"}}}]}}`,
			current:  `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"a":"1"},"uid":"u"},"spec":{"nodeName":"n1","volumes":[{"name":"cfg","configMap":{"name":"c1","defaultMode":420}}],"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"}],"resources":{"limits":{"cpu":"1"}}}]},"status":{"phase":"Running","podIP":"10.1.0.5"}}`,
			want:     []string{`"$retainKeys":["name","secret"]`, `"containerPort":8080`, `"memory":"1Gi"`},
		},
		{
			gvk: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, obj: &corev1.ConfigMap{},
			original: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","b":"2"}}`,
			modified: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","c":"3"},"binaryData":{"x":"AAE="}}`,
			current:  `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","resourceVersion":"3"},"data":{"a":"1","b":"2"}}`,
			want:     []string{`"b":null`, `"c":"3"`, `"binaryData":{"x":"AAE="}`},
		},
	}
	for _, c := range cases {
		doc, err := root.GVSpec(c.gvk.GroupVersion())
		if err != nil {
			t.Fatal(err)
		}
		var fromV3 []byte
		for _, s := range doc.Components.Schemas {
			if !gvkListMatches(s.Extensions, c.gvk) {
				continue
			}
			meta := strategicpatch.PatchMetaFromOpenAPIV3{Schema: s, SchemaList: doc.Components.Schemas}
			fromV3, err = strategicpatch.CreateThreeWayMergePatch([]byte(c.original), []byte(c.modified), []byte(c.current), meta, true)
			if err != nil {
				t.Fatalf("%v: patch from OpenAPI v3: %v", c.gvk, err)
			}
		}
		structMeta, err := strategicpatch.NewPatchMetaFromStruct(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		fromStruct, err := strategicpatch.CreateThreeWayMergePatch([]byte(c.original), []byte(c.modified), []byte(c.current), structMeta, true)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, fromV3, fromStruct) {
			t.Errorf("%v: patch from OpenAPI v3\n%s\ndiffers from the struct patch\n%s", c.gvk, fromV3, fromStruct)
		}
		for _, w := range c.want {
			if !bytes.Contains(fromV3, []byte(w)) {
				t.Errorf("%v: patch %s lacks %s", c.gvk, fromV3, w)
			}
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// explainField resolves a field path the way kubectl explain's template does
// (GVK from the resource's path operations, component by GVK, then
// properties through $ref, allOf, items and additionalProperties) and returns
// the field's schema and the resolved schema of its type.
func explainField(t *testing.T, doc obj, gvr schema.GroupVersionResource, fields ...string) (field, resolved obj) {
	t.Helper()
	prefix := "/api/"
	if gvr.Group != "" {
		prefix = "/apis/" + gvr.Group + "/"
	}
	var gvk any
	for _, p := range []string{gvr.Resource, gvr.Resource + "/{name}", "namespaces/{namespace}/" + gvr.Resource, "namespaces/{namespace}/" + gvr.Resource + "/{name}"} {
		for _, m := range []string{"get", "post", "put", "patch", "delete"} {
			if g := get(doc, "paths", prefix+gvr.Version+"/"+p, m, "x-kubernetes-group-version-kind"); g != nil && gvk == nil {
				gvk = g
			}
		}
	}
	if gvk == nil {
		t.Fatalf("%v: no GVK on the resource paths", gvr)
	}
	schemas := get(doc, "components", "schemas").(obj)
	resolve := func(s obj) obj {
		for {
			if r, ok := s["$ref"].(string); ok {
				s = schemas[strings.TrimPrefix(r, componentRefPrefix)].(obj)
				continue
			}
			if a, ok := s["allOf"].([]any); ok && s["properties"] == nil {
				s = a[0].(obj)
				continue
			}
			if it, ok := s["items"].(obj); ok {
				s = it
				continue
			}
			if ap, ok := s["additionalProperties"].(obj); ok {
				s = ap
				continue
			}
			return s
		}
	}
	for _, s := range schemas {
		list, _ := get(s, "x-kubernetes-group-version-kind").([]any)
		for _, g := range list {
			if reflect.DeepEqual(g, gvk) {
				resolved = s.(obj)
			}
		}
		if resolved != nil {
			break
		}
	}
	if resolved == nil {
		t.Fatalf("%v: no component with GVK %v", gvr, gvk)
	}
	for _, f := range fields {
		p, ok := get(resolved, "properties", f).(obj)
		if !ok {
			t.Fatalf("%v: field %s not found", gvr, f)
		}
		field, resolved = p, resolve(p)
	}
	return field, resolved
}

func TestExplainResolution(t *testing.T) {
	core := coreDoc(t)
	f, r := explainField(t, core, schema.GroupVersionResource{Version: "v1", Resource: "services"}, "spec", "ports", "targetPort")
	if f["description"] != (corev1.ServicePort{}).SwaggerDoc()["targetPort"] || r["format"] != "int-or-string" {
		t.Errorf("service.spec.ports.targetPort: %v / %v", f, r)
	}
	_, r = explainField(t, appsDoc(t), schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "spec", "template", "spec", "containers", "resources", "limits")
	if !strings.HasPrefix(r["description"].(string), "Quantity") {
		t.Errorf("deployment...resources.limits: %v", r)
	}
}

// Integration: the real kubectl explain against a loopback server serving
// discovery and these documents.
func TestKubectlExplain(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	if testing.Short() {
		t.Skip("runs kubectl")
	}
	srv, seen := newFakeAPIServer(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Fatalf("test server is not on loopback: %s", srv.URL)
	}
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args = append(args, "--server="+srv.URL, "--cache-dir="+filepath.Join(home, "cache"), "--request-timeout=30s")
		cmd := exec.CommandContext(ctx, kubectl, args...)
		// No kubeconfig, no proxy: kubectl talks to srv only.
		cmd.Env = []string{"HOME=" + home, "KUBECONFIG=" + filepath.Join(home, "none"), "PATH=" + os.Getenv("PATH"), "NO_PROXY=*", "no_proxy=*"}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}

	out := run("explain", "service.spec")
	for _, want := range []string{
		"KIND:       Service",
		"VERSION:    v1",
		"FIELD: spec <ServiceSpec>",
		"ports\t<[]ServicePort>",
		"selector\t<map[string]string>",
		"The list of ports that are exposed by this service.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain service.spec lacks %q:\n%s", want, out)
		}
	}

	out = run("explain", "service.spec.ports")
	for _, want := range []string{"FIELD: ports <[]ServicePort>", "port\t<integer> -required-", "targetPort\t<IntOrString>", "ServicePort contains information on service's port."} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain service.spec.ports lacks %q:\n%s", want, out)
		}
	}

	out = run("explain", "service", "--recursive")
	for _, want := range []string{"metadata\t<ObjectMeta>", "    ports\t<[]ServicePort>", "      targetPort\t<IntOrString>", "creationTimestamp\t<string>"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain service --recursive lacks %q:\n%s", want, out)
		}
	}

	out = run("explain", "deployments.spec.template.spec.containers.resources")
	for _, want := range []string{"GROUP:      apps", "KIND:       Deployment", "limits\t<map[string]Quantity>"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain deployments...resources lacks %q:\n%s", want, out)
		}
	}

	var sawIndex, sawDoc bool
	for _, r := range *seen {
		sawIndex = sawIndex || r == "GET /openapi/v3" || strings.HasPrefix(r, "GET /openapi/v3?")
		sawDoc = sawDoc || strings.HasPrefix(r, "GET /openapi/v3/api/v1?hash=")
	}
	if !sawIndex || !sawDoc {
		t.Errorf("kubectl did not fetch the v3 index and document; requests: %v", *seen)
	}
}
