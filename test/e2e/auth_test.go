package e2e

import (
	"strings"
	"testing"
)

// TestAuthCanIAndWhoami: `kubectl auth can-i` (SelfSubjectAccessReview, and
// SelfSubjectRulesReview for --list) and `kubectl auth whoami` (SelfSubjectReview)
// answer for today's policy, every authenticated user may do everything.
func TestAuthCanIAndWhoami(t *testing.T) {
	s := startServer(t)
	k := s.kubectl(t)

	k.expectOut("yes\n", "auth", "can-i", "create", "pods")
	k.expectOut("yes\n", "auth", "can-i", "delete", "deployments.apps", "--all-namespaces")
	k.expectOut("yes\n", "auth", "can-i", "get", "/metrics")

	// whoami prints the admin certificate's user and groups (system:authenticated
	// added by the server, as kube-apiserver does).
	out := k.ok("auth", "whoami")
	want := [][]string{
		{"ATTRIBUTE", "VALUE"},
		{"Username", "kubernetes-admin"},
		{"Groups", "[system:masters", "system:authenticated]"},
	}
	got := lines(strings.TrimSpace(out))
	if len(got) != len(want) {
		t.Fatalf("kubectl auth whoami printed %q, want the lines %v", out, want)
	}
	for i, w := range want {
		if f := strings.Fields(got[i]); strings.Join(f, " ") != strings.Join(w, " ") {
			t.Errorf("kubectl auth whoami line %d: %q, want %q", i+1, got[i], strings.Join(w, " "))
		}
	}

	// can-i --list shows the rule that allows everything.
	list := k.ok("auth", "can-i", "--list")
	found := false
	for _, l := range lines(list) {
		if strings.Join(strings.Fields(l), " ") == "*.* [] [] [*]" {
			found = true
		}
	}
	if !found {
		t.Errorf("kubectl auth can-i --list printed %q, want a row *.* [] [] [*]", list)
	}
}
