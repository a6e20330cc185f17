package apiserver_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestDryRunKeepsResourceVersion: an update or patch with dryRun=All answers with
// the object's live resourceVersion (nothing was written), as kube-apiserver does, so
// that `kubectl diff` shows no resourceVersion change.
func TestDryRunKeepsResourceVersion(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client.CoreV1().Services("default")
	live, err := c.Create(ctx, svc("dry"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.DryRunAll
	steps := []struct {
		name string
		run  func() (*corev1.Service, error)
	}{
		{"update", func() (*corev1.Service, error) {
			in := live.DeepCopy()
			in.Labels = map[string]string{"changed": "yes"}
			return c.Update(ctx, in, metav1.UpdateOptions{DryRun: []string{dry}})
		}},
		{"update without resourceVersion", func() (*corev1.Service, error) {
			in := live.DeepCopy()
			in.ResourceVersion = ""
			in.Labels = map[string]string{"changed": "yes"}
			return c.Update(ctx, in, metav1.UpdateOptions{DryRun: []string{dry}})
		}},
		{"merge patch", func() (*corev1.Service, error) {
			return c.Patch(ctx, "dry", types.MergePatchType, []byte(`{"metadata":{"labels":{"changed":"yes"}}}`), metav1.PatchOptions{DryRun: []string{dry}})
		}},
		{"strategic merge patch", func() (*corev1.Service, error) {
			return c.Patch(ctx, "dry", types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"changed":"yes"}}}`), metav1.PatchOptions{DryRun: []string{dry}})
		}},
		{"status patch", func() (*corev1.Service, error) {
			return c.Patch(ctx, "dry", types.MergePatchType, []byte(`{"status":{"conditions":[{"type":"T","status":"True","reason":"R","message":"m","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`),
				metav1.PatchOptions{DryRun: []string{dry}}, "status")
		}},
	}
	for _, st := range steps {
		out, err := st.run()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if out.ResourceVersion != live.ResourceVersion {
			t.Errorf("dry-run %s answered resourceVersion %q, want the live %q", st.name, out.ResourceVersion, live.ResourceVersion)
		}
		if st.name != "status patch" && out.Labels["changed"] != "yes" {
			t.Errorf("dry-run %s answered %v, want the change applied", st.name, out.Labels)
		}
	}
	got, err := c.Get(ctx, "dry", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != live.ResourceVersion || got.Labels["changed"] != "" {
		t.Errorf("after the dry runs: resourceVersion %s labels %v, want %s and unchanged", got.ResourceVersion, got.Labels, live.ResourceVersion)
	}
}
