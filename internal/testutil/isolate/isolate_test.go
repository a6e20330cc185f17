package isolate

import (
	"os"
	"strings"
	"testing"
)

// TestRunIsolated: the body runs in a network namespace with nothing but lo, and a
// link it creates is not in the outer namespace.
func TestRunIsolated(t *testing.T) {
	if Run(t) {
		if strings.Contains(Must(t, "ip", "-o", "link"), "ks-isolate0") {
			t.Error("the isolated test's link is visible outside")
		}
		return
	}
	if os.Getenv(envKey) != t.Name() {
		t.Fatalf("body ran outside the isolated re-run (%s)", marker(t.Name()))
	}
	links := Must(t, "ip", "-o", "link")
	if n := strings.Count(strings.TrimSpace(links), "\n") + 1; n != 1 || !strings.Contains(links, "lo:") {
		t.Fatalf("a fresh namespace has only lo; got:\n%s", links)
	}
	Must(t, "ip", "link", "add", "ks-isolate0", "type", "veth", "peer", "name", "ks-isolate1")
	Must(t, "ip", "link", "add", "ks-isolate-br", "type", "bridge")
}

func TestRunPattern(t *testing.T) {
	tests := map[string]string{
		"TestA":          "^TestA$",
		"TestA/sub_case": "^TestA$/^sub_case$",
		"TestA/x.y(1)":   `^TestA$/^x\.y\(1\)$`,
	}
	for in, want := range tests {
		if got := runPattern(in); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", in, got, want)
		}
	}
}
