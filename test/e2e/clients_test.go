package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClients runs the official Kubernetes clients for Python (Debian's
// python3-kubernetes, testdata/clients/python/clients.py) and JavaScript
// (@kubernetes/client-node, pinned by testdata/clients/js/package-lock.json and
// installed there by `npm ci`, testdata/clients/js/clients.mjs; 1.4.0, the newest
// that runs on node 20: 2.x needs node 22) against a server
// of their own: list, create, list with a label selector, patch, a watch and an
// informer on Services, and delete. Each script fails on the first thing that
// goes wrong; the test checks that it ran to the end and that both its watch and
// its informer saw the Service added, modified by every patch, and deleted.
//
// A client that is not installed skips the test, except in CI (CI=true), where
// .ci/run installs both and a missing one fails.
func TestClients(t *testing.T) {
	t.Parallel()
	requireKubectl(t)
	t.Run("python", func(t *testing.T) {
		t.Parallel()
		// The Debian package is for the system's interpreter, not whatever
		// python3 comes first on PATH (a pyenv shim, for example).
		python := "/usr/bin/python3"
		if out, err := exec.Command(python, "-c", "import kubernetes; print(kubernetes.__version__)").CombinedOutput(); err != nil {
			missingClient(t, "the Python client (apt-get install python3-kubernetes)", string(out), err)
		}
		s := startServer(t)
		runClient(t, s, []string{python, filepath.Join(pkgDir, "testdata", "clients", "python", "clients.py")},
			"watch: ADDED MODIFIED MODIFIED DELETED", "informer: ADDED MODIFIED MODIFIED DELETED")
	})
	t.Run("javascript", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(pkgDir, "testdata", "clients", "js")
		node, err := exec.LookPath("node")
		if err != nil {
			missingClient(t, "node", "", err)
		}
		if err := clientNodeInstalled(dir); err != nil {
			missingClient(t, "@kubernetes/client-node (npm ci --prefix test/e2e/testdata/clients/js)", "", err)
		}
		s := startServer(t)
		runClient(t, s, []string{node, filepath.Join(dir, "clients.mjs")},
			"watch: ADDED MODIFIED MODIFIED DELETED", "informer: add update update delete")
	})
}

// missingClient fails the test in CI and skips it elsewhere.
func missingClient(t *testing.T, what, out string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (.ci/run installs it): %v\n%s", what, err, out)
	}
	t.Skipf("%s is not installed: %v\n%s", what, err, out)
}

// clientNodeInstalled checks that node_modules in dir has the
// @kubernetes/client-node version that package.json pins.
func clientNodeInstalled(dir string) error {
	var pkg struct {
		Version      string            `json:"version"`
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return err
	}
	want := pkg.Dependencies["@kubernetes/client-node"]
	data, err = os.ReadFile(filepath.Join(dir, "node_modules", "@kubernetes", "client-node", "package.json"))
	if err != nil {
		return err
	}
	pkg.Version = ""
	if err := json.Unmarshal(data, &pkg); err != nil {
		return err
	}
	if pkg.Version != want {
		return fmt.Errorf("node_modules has @kubernetes/client-node %s, package.json pins %s", pkg.Version, want)
	}
	return nil
}

// runClient runs a client script with the server's kubeconfig and checks that
// it exits 0 and prints each of want as a line.
func runClient(t *testing.T, s *server, argv []string, want ...string) {
	t.Helper()
	// A guard against a hang, not a speed check.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = filepath.Dir(argv[1])
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"KUBECONFIG=" + s.Kubeconfig,
		"LANG=C.UTF-8",
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s: %v\n--- stdout ---\n%s--- stderr ---\n%s", strings.Join(argv, " "), err, stdout.String(), stderr.String())
	}
	got := lines(stdout.String())
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s printed no line %q:\n%s", filepath.Base(argv[1]), w, stdout.String())
		}
	}
}
