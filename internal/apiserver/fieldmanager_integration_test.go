package apiserver_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestServerSideApplyRequests covers the apply requests' edges as
// kube-apiserver answers them, over HTTP with client-go.
func TestServerSideApplyRequests(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	c := s.Client.CoreV1().ConfigMaps("default")
	cm := func(name string, data map[string]string) *corev1ac.ConfigMapApplyConfiguration {
		return corev1ac.ConfigMap(name, "default").WithData(data)
	}
	patch := func(name, contentType, body string, params map[string]string) rest.Result {
		req := s.Client.CoreV1().RESTClient().Patch(types.PatchType(contentType)).
			Namespace("default").Resource("configmaps").Name(name).Body([]byte(body))
		for k, v := range params {
			req = req.Param(k, v)
		}
		return req.Do(ctx)
	}

	for _, tc := range []struct {
		name  string
		run   func() error
		check func(error) bool
		want  string
	}{
		{"dry run creates nothing", func() error {
			if _, err := c.Apply(ctx, cm("dry", map[string]string{"a": "1"}), metav1.ApplyOptions{FieldManager: "t", DryRun: []string{"All"}}); err != nil {
				return err
			}
			_, err := c.Get(ctx, "dry", metav1.GetOptions{})
			return err
		}, apierrors.IsNotFound, `configmaps "dry" not found`},
		{"fieldManager is required", func() error {
			return patch("x", string(types.ApplyYAMLPatchType), `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`, nil).Error()
		}, apierrors.IsInvalid, `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`},
		{"name must match the URL", func() error {
			return patch("x", string(types.ApplyYAMLPatchType), `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y"}}`,
				map[string]string{"fieldManager": "t"}).Error()
		}, apierrors.IsBadRequest, `the name of the object (y) does not match the name on the URL (x)`},
		{"kind must be the resource's", func() error {
			return patch("x", string(types.ApplyYAMLPatchType), `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}`,
				map[string]string{"fieldManager": "t"}).Error()
		}, apierrors.IsBadRequest, `invalid object type: /v1, Kind=Secret`},
		{"managedFields may not be applied", func() error {
			return patch("x", string(types.ApplyYAMLPatchType),
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","managedFields":[{"manager":"m"}]}}`,
				map[string]string{"fieldManager": "t"}).Error()
		}, apierrors.IsBadRequest, `metadata.managedFields must be nil`},
		{"unknown field in strict mode", func() error {
			return patch("x", string(types.ApplyYAMLPatchType), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\ndata: {}\n",
				map[string]string{"fieldManager": "t", "fieldValidation": "Strict"}).Error()
		}, apierrors.IsBadRequest, `error strict decoding patch: error converting YAML to JSON: yaml: unmarshal errors:` + "\n" +
			`  line 6: key "data" already set in map`},
		{"CBOR apply is not served", func() error {
			return patch("x", string(types.ApplyCBORPatchType), "\xa0", map[string]string{"fieldManager": "t"}).Error()
		}, apierrors.IsUnsupportedMediaType, ""},
		{"status of a missing object", func() error {
			_, err := s.Client.CoreV1().Services("default").ApplyStatus(ctx, corev1ac.Service("nope", "default").
				WithStatus(corev1ac.ServiceStatus()), metav1.ApplyOptions{FieldManager: "t"})
			return err
		}, apierrors.IsNotFound, `services "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !tc.check(err) || (tc.want != "" && err.Error() != tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("updates are recorded under the user agent", func(t *testing.T) {
		cfg := rest.CopyConfig(s.Config)
		cfg.UserAgent = "my-controller/v0.1 (linux/amd64)"
		client := kubernetes.NewForConfigOrDie(cfg).CoreV1().ConfigMaps("default")
		created, err := client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ua"}, Data: map[string]string{"a": "1"}},
			metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if mf := created.ManagedFields; len(mf) != 1 || mf[0].Manager != "my-controller" || mf[0].Operation != metav1.ManagedFieldsOperationUpdate ||
			!strings.Contains(string(mf[0].FieldsV1.Raw), `"f:data":{".":{},"f:a":{}}`) {
			t.Fatalf("managedFields after create: %+v", mf)
		}
		applied, err := c.Apply(ctx, cm("ua", map[string]string{"b": "2"}), metav1.ApplyOptions{FieldManager: "applier"})
		if err != nil {
			t.Fatal(err)
		}
		if len(applied.ManagedFields) != 2 || applied.Data["a"] != "1" || applied.Data["b"] != "2" {
			t.Errorf("after apply: data %v, managedFields %+v", applied.Data, applied.ManagedFields)
		}
		// Applying a value an Update manager set is a conflict too.
		_, err = c.Apply(ctx, cm("ua", map[string]string{"a": "3"}), metav1.ApplyOptions{FieldManager: "applier"})
		want := `Apply failed with 1 conflict: conflict with "my-controller" using v1: .data.a`
		if !apierrors.IsConflict(err) || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
}
