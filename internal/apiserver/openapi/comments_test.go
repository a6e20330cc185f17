package openapi

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Required properties follow kube-openapi: the +required/+optional markers,
// else the absence of omitempty, pointers included.
func TestRequired(t *testing.T) {
	core, apps := coreDoc(t), appsDoc(t)
	networking := parse(t, testDocs(t)["apis/networking.k8s.io/v1"])
	for _, c := range []struct {
		doc       obj
		component string
		want      []any
	}{
		{apps, "io.k8s.api.core.v1.Container", []any{"name"}},
		{apps, "io.k8s.api.core.v1.PodSpec", []any{"containers"}},
		{core, "io.k8s.api.core.v1.ServicePort", []any{"port"}},
		// Pointer without omitempty: required.
		{apps, "io.k8s.api.apps.v1.DeploymentSpec", []any{"selector", "template"}},
		// +required on an omitempty field.
		{apps, "io.k8s.api.apps.v1.Deployment", []any{"spec"}},
		// +optional on fields without omitempty.
		{core, "io.k8s.api.authentication.v1.TokenRequest", nil},
		{networking, "io.k8s.api.networking.v1.NetworkPolicySpec", nil},
		// omitempty (with omitzero): not required.
		{core, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", nil},
	} {
		got, _ := componentOf(t, c.doc, c.component)["required"].([]any)
		if !reflect.DeepEqual(got, c.want) && (len(got) != 0 || len(c.want) != 0) {
			t.Errorf("%s required %v, want %v", c.component, got, c.want)
		}
	}
}

// Properties of +enum types carry "enum" and kube-openapi's "Possible enum
// values" paragraph; array items and map values carry only the enum.
func TestEnums(t *testing.T) {
	core := coreDoc(t)
	spec := componentOf(t, core, "io.k8s.api.core.v1.ServiceSpec")
	typ := get(spec, "properties", "type").(obj)
	if !reflect.DeepEqual(typ["enum"], []any{"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"}) {
		t.Errorf("ServiceSpec.type enum %v", typ["enum"])
	}
	want := corev1.ServiceSpec{}.SwaggerDoc()["type"] + "\n\nPossible enum values:\n" +
		" - `\"ClusterIP\"` means a service will only be accessible inside the cluster, via the cluster IP.\n" +
		" - `\"ExternalName\"` means a service consists of only a reference to an external name that kubedns or equivalent will return as a CNAME record, with no exposing or proxying of any pods involved.\n" +
		" - `\"LoadBalancer\"` means a service will be exposed via an external load balancer (if the cloud provider supports it), in addition to 'NodePort' type.\n" +
		" - `\"NodePort\"` means a service will be exposed on one port of every node, in addition to 'ClusterIP' type."
	if typ["description"] != want {
		t.Errorf("ServiceSpec.type description\n%q\nwant\n%q", typ["description"], want)
	}
	// A pointer to an enum type.
	if p := get(spec, "properties", "ipFamilyPolicy").(obj); !reflect.DeepEqual(p["enum"], []any{"PreferDualStack", "RequireDualStack", "SingleStack"}) ||
		!strings.Contains(p["description"].(string), "\n\nPossible enum values:\n - `\"PreferDualStack\"` indicates") {
		t.Errorf("ServiceSpec.ipFamilyPolicy %v", p)
	}
	// Array items: the enum (IPFamilyUnknown is "") but no description.
	fam := get(spec, "properties", "ipFamilies").(obj)
	if !reflect.DeepEqual(get(fam, "items", "enum"), []any{"", "IPv4", "IPv6"}) || get(fam, "items", "description") != nil ||
		strings.Contains(fam["description"].(string), "Possible enum values") {
		t.Errorf("ServiceSpec.ipFamilies %v", fam)
	}
	proto := get(componentOf(t, core, "io.k8s.api.core.v1.ServicePort"), "properties", "protocol").(obj)
	if !reflect.DeepEqual(proto["enum"], []any{"SCTP", "TCP", "UDP"}) {
		t.Errorf("ServicePort.protocol enum %v", proto["enum"])
	}
	// Not an enum type.
	if e := get(spec, "properties", "clusterIP", "enum"); e != nil {
		t.Errorf("ServiceSpec.clusterIP enum %v", e)
	}
}

func TestEnumOf(t *testing.T) {
	e := enumOf(reflect.TypeFor[corev1.ServiceAffinity]())
	if e == nil || !reflect.DeepEqual(e.values, []string{"ClientIP", "None"}) {
		t.Fatalf("ServiceAffinity enum %+v", e)
	}
	if got, want := e.describe(""), "Possible enum values:\n - `\"ClientIP\"` is the Client IP based.\n - `\"None\"` - no session affinity."; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[string](), reflect.TypeFor[corev1.ResourceName](), reflect.TypeFor[corev1.ServiceSpec]()} {
		if e := enumOf(typ); e != nil {
			t.Errorf("%v: enum %+v", typ, e)
		}
	}
}

// Every struct type the documents describe belongs to a package whose
// comments gen/ has read; a new group needs adding to the go:generate line.
func TestCommentsCoverComponents(t *testing.T) {
	g := NewGenerator()
	for gv, rs := range testGroups() {
		if _, err := g.Document(gv, rs); err != nil {
			t.Fatal(err)
		}
	}
	for typ := range g.components {
		if specialSchema(typ) == nil && !parsedPackage(typ.PkgPath()) {
			t.Errorf("%v: package %s is not in the go:generate line of comments.go", typ, typ.PkgPath())
		}
	}
}

// zz_generated_comments.go is what the go:generate line of comments.go
// writes from the k8s.io module versions in go.mod.
func TestGeneratedCommentsUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run ./gen")
	}
	args := generateArgs(t)
	out := filepath.Join(t.TempDir(), "zz.go")
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkedIn, err := os.ReadFile("zz_generated_comments.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, checkedIn) {
		t.Error("zz_generated_comments.go is stale: run go generate ./internal/apiserver/openapi/")
	}
}

// generateArgs returns the arguments of go in comments.go's go:generate line.
func generateArgs(t *testing.T) []string {
	f, err := os.Open("comments.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate go "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("no go:generate line in comments.go")
	return nil
}
