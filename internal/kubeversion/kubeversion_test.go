package kubeversion

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/version"
)

// TestMatchesGoMod checks that the reported version is the one of the Kubernetes
// API kubesvc is built on: every k8s.io module of go.mod that is released with
// Kubernetes (v0.MINOR.PATCH for Kubernetes v1.MINOR.PATCH) has GitVersion's
// minor and patch.
func TestMatchesGoMod(t *testing.T) {
	reported, err := version.ParseSemantic(GitVersion)
	if err != nil {
		t.Fatalf("GitVersion %q: %v", GitVersion, err)
	}
	if want := fmt.Sprintf("v%d.%d.%d", reported.Major(), reported.Minor(), reported.Patch()); !strings.HasPrefix(GitVersion, want) {
		t.Errorf("GitVersion %q does not start with %s", GitVersion, want)
	}
	mods := readGoMod(t)
	// The modules that are tagged with every Kubernetes release.
	for _, mod := range []string{"k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go", "k8s.io/kube-proxy"} {
		t.Run(mod, func(t *testing.T) {
			v, ok := mods[mod]
			if !ok {
				t.Skipf("%s is not required by go.mod", mod)
			}
			mv, err := version.ParseSemantic(v)
			if err != nil {
				t.Fatalf("%s %s: %v", mod, v, err)
			}
			if mv.Major() != 0 || mv.Minor() != reported.Minor() || mv.Patch() != reported.Patch() {
				t.Errorf("go.mod requires %s %s, but kubesvc reports Kubernetes %s (want %s v0.%d.%d, or change kubeversion)",
					mod, v, GitVersion, mod, reported.Minor(), reported.Patch())
			}
		})
	}
}

// TestMajorMinor checks that Major and Minor are GitVersion's, as plain numbers.
func TestMajorMinor(t *testing.T) {
	v, err := version.ParseGeneric(GitVersion)
	if err != nil {
		t.Fatalf("GitVersion %q: %v", GitVersion, err)
	}
	for _, tc := range []struct {
		name, got string
		want      uint
	}{
		{"Major", Major, v.Major()},
		{"Minor", Minor, v.Minor()},
	} {
		if want := strconv.FormatUint(uint64(tc.want), 10); tc.got != want {
			t.Errorf("%s = %q, want %q (from GitVersion %q)", tc.name, tc.got, want, GitVersion)
		}
	}
}

// readGoMod returns the module versions that the repository's go.mod requires.
func readGoMod(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mods := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && strings.HasPrefix(fields[1], "v") {
			mods[fields[0]] = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(mods) == 0 {
		t.Fatal("no requirements found in go.mod")
	}
	return mods
}
