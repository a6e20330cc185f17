package validation

import (
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func ptr[T any](v T) *T { return &v }

func errStrings(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// expectErrors checks that errs holds exactly want (order-insensitive; Go map
// iteration makes some orders random in Kubernetes too).
func expectErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := errStrings(errs)
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("errors mismatch\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// expectContains checks that every wanted message is among errs.
func expectContains(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := errStrings(errs)
	for _, w := range want {
		found := false
		for _, g := range got {
			if g == w {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("missing error %q\n got:\n  %s", w, strings.Join(got, "\n  "))
		}
	}
}

func expectNoErrors(t *testing.T, errs field.ErrorList) {
	t.Helper()
	if len(errs) != 0 {
		t.Errorf("unexpected errors:\n  %s", strings.Join(errStrings(errs), "\n  "))
	}
}

// expectPrefix checks that one error starts with prefix (for messages that end
// in a diff).
func expectPrefix(t *testing.T, errs field.ErrorList, prefix string) {
	t.Helper()
	for _, g := range errStrings(errs) {
		if strings.HasPrefix(g, prefix) {
			return
		}
	}
	t.Errorf("no error starts with %q\n got:\n  %s", prefix, strings.Join(errStrings(errs), "\n  "))
}
