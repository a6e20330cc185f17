package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestKubectlVersions runs the core flow with each versioned kubectl that sits next to
// the resolved kubectl (the gcloud SDK ships kubectl.1.27 … kubectl.1.33). kubectl 1.31
// sends JSON request bodies from its typed clients, 1.32 and 1.33 send protobuf.
func TestKubectlVersions(t *testing.T) {
	t.Parallel()
	requireKubectl(t)
	resolved, err := filepath.EvalSymlinks(kubectlBin)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(resolved)
	for _, v := range []string{"1.31", "1.32", "1.33"} {
		t.Run("kubectl."+v, func(t *testing.T) {
			bin := filepath.Join(dir, "kubectl."+v)
			if _, err := os.Stat(bin); err != nil {
				t.Skipf("%s not found", bin)
			}
			if _, err := exec.LookPath(bin); err != nil {
				t.Skipf("%s: %v", bin, err)
			}
			s := startServer(t)
			k := s.kubectlBinary(t, bin)

			out, ok := k.try("version")
			if ok {
				want := []*regexp.Regexp{
					regexp.MustCompile(`^Client Version: v` + regexp.QuoteMeta(v) + `\.\d+$`),
					regexp.MustCompile(`^Kustomize Version: v\d+\.\d+\.\d+$`),
					regexp.MustCompile(`^Server Version: v1\.32\.\d+([-+][0-9A-Za-z.+-]+)?$`),
				}
				got := lines(out)
				if len(got) != len(want) {
					t.Errorf("kubectl.%s version printed:\n%s", v, out)
				} else {
					for i, re := range want {
						if !re.MatchString(got[i]) {
							t.Errorf("kubectl.%s version line %d: %q does not match %s", v, i+1, got[i], re)
						}
					}
				}
			}

			if out, ok := k.try("get", "ns"); ok {
				matchLines(t, out, []string{
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
			k.expectOut("service \"my-service\" deleted\n", "delete", "-f", "testdata/seed002-my-service.yaml")
			k.expectOut("deployment.apps \"nginx\" deleted\n", "delete", "deployment", "nginx")
			if out, ok := k.try("get", "svc,deploy", "-o", "name"); ok && strings.TrimSpace(out) != "service/kubernetes" {
				t.Errorf("kubectl.%s get svc,deploy -o name after the deletes printed %q, want service/kubernetes", v, out)
			}
		})
	}
}
