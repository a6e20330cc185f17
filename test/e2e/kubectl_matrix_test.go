package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// matrixBase is a Deployment and a Service, applied and created by every
// kubectl of the matrix; matrixChanged changes the Deployment only.
const matrixBase = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
`

var matrixChanged = strings.NewReplacer("replicas: 2", "replicas: 3", "image: nginx:1.25", "image: nginx:1.26").Replace(matrixBase)

// matrixEditor is the EDITOR for kubectl edit: it sets spec.replicas to 5 in
// the file kubectl hands it.
const matrixEditor = `#!/bin/sh
sed -i '/^spec:/,/^[a-z]/ s/^  replicas: .*/  replicas: 5/' "$1"
`

// TestKubectlMatrix runs the commands that read the OpenAPI documents — apply
// (create, unchanged, configured), create -f, replace -f, edit, diff -f and
// explain — with every kubectl from 1.27 to 1.33 found next to the resolved
// kubectl. kubectl 1.27 and 1.28 read /openapi/v2 (protobuf) for validation
// and client-side apply; later ones read /openapi/v3.
func TestKubectlMatrix(t *testing.T) {
	t.Parallel()
	requireKubectl(t)
	resolved, err := filepath.EvalSymlinks(kubectlBin)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(resolved)
	files := t.TempDir()
	base := filepath.Join(files, "base.yaml")
	changed := filepath.Join(files, "changed.yaml")
	editor := filepath.Join(files, "editor.sh")
	for name, content := range map[string]string{base: matrixBase, changed: matrixChanged, editor: matrixEditor} {
		if err := os.WriteFile(name, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"} {
		t.Run("kubectl."+v, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(dir, "kubectl."+v)
			if _, err := os.Stat(bin); err != nil {
				t.Skipf("%s not found", bin)
			}
			if _, err := exec.LookPath(bin); err != nil {
				t.Skipf("%s: %v", bin, err)
			}
			s := startServer(t)
			k := s.kubectlBinary(t, bin)
			kubectlMatrix(t, k, v, base, changed, editor)
		})
	}
}

func kubectlMatrix(t *testing.T, k *kubectl, v, base, changed, editor string) {
	get := func(jsonpath string, what ...string) string {
		t.Helper()
		out, _ := k.try(append(append([]string{"get"}, what...), "-o", "jsonpath="+jsonpath)...)
		return out
	}
	const both = "deployment.apps/web %s\nservice/web %s\n"
	verb := func(d, s string) string { return strings.Replace(strings.Replace(both, "%s", d, 1), "%s", s, 1) }

	// apply: create, then unchanged.
	if !k.expectOut(verb("created", "created"), "apply", "-f", base) {
		return
	}
	k.expectOut(verb("unchanged", "unchanged"), "apply", "-f", base)

	// A container added by someone else survives the next apply: the
	// three-way strategic merge keys containers by name.
	k.expectOut("deployment.apps/web patched\n", "patch", "deployment", "web", "-p",
		`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}`)
	r := k.run("apply", "-f", changed, "-v=6")
	if r.code != 0 || r.stdout != verb("configured", "unchanged") {
		t.Errorf("apply of the changed manifest:\n%s", r)
	}
	if v == "1.27" || v == "1.28" {
		if !regexp.MustCompile(`GET https://\S+/openapi/v2\S* 200 OK`).MatchString(r.stderr) {
			t.Errorf("kubectl.%s apply did not read /openapi/v2:\n%s", v, r.stderr)
		}
	}
	got := strings.Fields(get(`{.spec.replicas} {range .spec.template.spec.containers[*]}{.name}={.image} {end}`, "deployment", "web"))
	if len(got) > 0 {
		slices.Sort(got[1:]) // the order of the containers is strategic merge's business
	}
	if want := []string{"3", "sidecar=busybox", "web=nginx:1.26"}; !slices.Equal(got, want) {
		t.Errorf("after apply: replicas and containers %q, want %q", got, want)
	}

	// diff: nothing to show for the applied manifest (exit 0), a diff for
	// the other one (exit 1).
	if r := k.run("diff", "-f", changed); r.code != 0 || r.stdout != "" {
		t.Errorf("diff of the applied manifest: want exit 0 and no output:\n%s", r)
	}
	if r := k.run("diff", "-f", base); r.code != 1 || !containsLines(r.stdout, "-  replicas: 3", "+  replicas: 2") {
		t.Errorf("diff of the other manifest: want exit 1 and a replicas diff:\n%s", r)
	}

	// create -f and replace -f.
	k.expectOut("deployment.apps \"web\" deleted\nservice \"web\" deleted\n", "delete", "-f", base, "--wait=false")
	if !k.expectOut(verb("created", "created"), "create", "-f", base) {
		return
	}
	k.expectOut(verb("replaced", "replaced"), "replace", "-f", changed)
	if got := get(`{.spec.replicas} {.spec.template.spec.containers[0].image}`, "deployment", "web"); got != "3 nginx:1.26" {
		t.Errorf("after replace: %q, want %q", got, "3 nginx:1.26")
	}

	// edit, with an editor that sets spec.replicas.
	if r := k.withEnv("EDITOR="+editor, "KUBE_EDITOR="+editor).run("edit", "deployment", "web"); r.code != 0 || r.stdout != "deployment.apps/web edited\n" {
		t.Errorf("edit:\n%s", r)
	}
	if got := get(`{.spec.replicas}`, "deployment", "web"); got != "5" {
		t.Errorf("after edit: replicas %q, want 5", got)
	}

	// explain, from whichever document the version reads.
	if out, ok := k.try("explain", "deployment.spec.replicas"); ok {
		if !regexp.MustCompile(`(?m)^FIELD:\s+replicas <integer>$`).MatchString(out) || !strings.Contains(out, "Number of desired pods.") {
			t.Errorf("explain deployment.spec.replicas printed:\n%s", out)
		}
	}
	if out, ok := k.try("explain", "service.spec", "--recursive"); ok {
		for _, re := range []string{`(?m)^FIELD:\s+spec <ServiceSpec>$|^RESOURCE:\s+spec <Object>$`, `(?m)^\s+ports\s+<\[\]`, `(?m)^\s+targetPort\s+<`, `(?m)^\s+sessionAffinityConfig\s+<`, `(?m)^\s+timeoutSeconds\s+<integer>`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("explain service.spec --recursive: no match for %s in:\n%s", re, out)
				break
			}
		}
	}
}
