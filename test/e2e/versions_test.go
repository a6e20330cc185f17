package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kubesvc/kubesvc/internal/kubeversion"
)

// TestKubectlVersions runs the core flow with each versioned kubectl that sits next to
// the resolved kubectl (the gcloud SDK ships kubectl.1.27 … kubectl.1.33). kubectl 1.31
// sends JSON request bodies from its typed clients, 1.32 and 1.33 send protobuf.
//
// kubesvc reports the Kubernetes version whose API it serves (kubeversion, 1.37),
// more than one minor version away from every one of these, so `kubectl version`
// warns about the skew on stderr (and 1.27 also about its deprecated output
// format); no other command does.
func TestKubectlVersions(t *testing.T) {
	t.Parallel()
	requireKubectl(t)
	resolved, err := filepath.EvalSymlinks(kubectlBin)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(resolved)
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
			checkVersionOutput(t, k.run("version"), v)

			// Only `kubectl version` warns about the skew.
			if r := k.run("get", "ns"); r.code != 0 || r.stderr != "" {
				t.Errorf("kubectl.%s get ns: want exit 0 and nothing on stderr:\n%s", v, r)
			} else {
				matchLines(t, r.stdout, []string{
					`NAME              STATUS   AGE`,
					`default           Active   {AGE}`,
					`kube-node-lease   Active   {AGE}`,
					`kube-public       Active   {AGE}`,
					`kube-system       Active   {AGE}`,
				})
			}

			k.expectOut("service/my-service created\n", "apply", "-f", "testdata/seed002-my-service.yaml")
			k.expectOut("service/my-service unchanged\n", "apply", "-f", "testdata/seed002-my-service.yaml")
			if out, ok := k.try("get", "svc"); ok {
				checkSvcRows(t, out, []svcWant{
					{"kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"},
					{"my-service", "ClusterIP", "", "<none>", "80/TCP"},
				})
			}

			if !k.expectOut("deployment.apps/nginx created\n", "create", "deployment", "nginx", "--image=nginx", "--replicas=2") {
				return
			}
			if out, ok := k.try("get", "deploy"); ok {
				checkDeployRow(t, out, "2")
			}
			k.expectOut("deployment.apps/nginx scaled\n", "scale", "deployment", "nginx", "--replicas=3")
			if out, ok := k.try("get", "deploy"); ok {
				checkDeployRow(t, out, "3")
			}
			k.expectOut("service/nginx exposed\n", "expose", "deployment", "nginx", "--port=80")
			if out, ok := k.try("describe", "service", "nginx"); ok {
				for _, want := range []*regexp.Regexp{
					regexp.MustCompile(`(?m)^Name:\s+nginx$`),
					regexp.MustCompile(`(?m)^Selector:\s+app=nginx$`),
					regexp.MustCompile(`(?m)^Port:\s+<unset>\s+80/TCP$`),
				} {
					if !want.MatchString(out) {
						t.Errorf("kubectl.%s describe service nginx lacks %s:\n%s", v, want, out)
					}
				}
			}
			k.expectOut("service \"my-service\" deleted\n", "delete", "-f", "testdata/seed002-my-service.yaml")
			k.expectOut("service \"nginx\" deleted\n", "delete", "service", "nginx")
			k.expectOut("deployment.apps \"nginx\" deleted\n", "delete", "deployment", "nginx")
			if out, ok := k.try("get", "svc,deploy", "-o", "name"); ok && strings.TrimSpace(out) != "service/kubernetes" {
				t.Errorf("kubectl.%s get svc,deploy -o name after the deletes printed %q, want service/kubernetes", v, out)
			}
		})
	}
}

// serverVersionRE matches the gitVersion kubesvc reports, kubeversion.GitVersion.
var serverVersionRE = regexp.QuoteMeta(kubeversion.GitVersion)

// checkVersionOutput checks what `kubectl version` of client minor version v
// ("1.27") printed against kubesvc: both versions on stdout (kubectl 1.27 prints
// them as version.Info structs unless given --short or -o) and, on stderr,
// kubectl's warning that the server is more than one minor version away.
func checkVersionOutput(t *testing.T, r result, v string) {
	t.Helper()
	if r.code != 0 {
		t.Errorf("kubectl.%s version failed:\n%s", v, r)
		return
	}
	var want []*regexp.Regexp
	var wantErr []string
	if v == "1.27" {
		want = []*regexp.Regexp{
			regexp.MustCompile(`^Client Version: version\.Info\{Major:"1", Minor:"27", GitVersion:"v1\.27\.\d+", .*\}$`),
			regexp.MustCompile(`^Kustomize Version: v\d+\.\d+\.\d+$`),
			regexp.MustCompile(`^Server Version: version\.Info\{Major:"` + kubeversion.Major + `", Minor:"` + kubeversion.Minor + `", GitVersion:"` + serverVersionRE + `", .*\}$`),
		}
		wantErr = append(wantErr, "WARNING: This version information is deprecated and will be replaced with the output from kubectl version --short.  Use --output=yaml|json to get the full version.")
	} else {
		want = []*regexp.Regexp{
			regexp.MustCompile(`^Client Version: v` + regexp.QuoteMeta(v) + `\.\d+$`),
			regexp.MustCompile(`^Kustomize Version: v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`),
			regexp.MustCompile(`^Server Version: ` + serverVersionRE + `$`),
		}
	}
	server, err := strconv.Atoi(kubeversion.Minor)
	if err != nil {
		t.Fatalf("kubeversion.Minor: %v", err)
	}
	client, err := strconv.Atoi(strings.TrimPrefix(v, "1."))
	if err != nil {
		t.Fatalf("kubectl version %q: %v", v, err)
	}
	if d := server - client; d > 1 || d < -1 {
		wantErr = append(wantErr, fmt.Sprintf("WARNING: version difference between client (%s) and server (%s.%s) exceeds the supported minor version skew of +/-1", v, kubeversion.Major, kubeversion.Minor))
	}
	got := lines(r.stdout)
	if len(got) != len(want) {
		t.Errorf("kubectl.%s version printed %d lines, want %d:\n%s", v, len(got), len(want), r)
	} else {
		for i, re := range want {
			if !re.MatchString(got[i]) {
				t.Errorf("kubectl.%s version line %d: %q does not match %s", v, i+1, got[i], re)
			}
		}
	}
	if gotErr := strings.FieldsFunc(r.stderr, func(c rune) bool { return c == '\n' }); !slices.Equal(gotErr, wantErr) {
		t.Errorf("kubectl.%s version printed on stderr:\n%q\nwant:\n%q", v, gotErr, wantErr)
	}
}
