package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyWhatContainersNeed guards the runner's reason to exist: a start in
// a few milliseconds. Linking the API types, client-go, etcd or gRPC (an import
// added to the process runtime or the built-in images) would bring their package
// initialisers back into every container's start.
func TestLinksOnlyWhatContainersNeed(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{"k8s.io/api/", "k8s.io/apimachinery/", "k8s.io/client-go/", "go.etcd.io/", "google.golang.org/grpc", "google.golang.org/protobuf", "github.com/prometheus/"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("kubesvc-runner links %s: keep it out of internal/agent/images and internal/agent/runtime/process", pkg)
			}
		}
	}
}
