package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// ssaConflictingService is seed002-my-service.yaml with another targetPort.
const ssaConflictingService = `apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  ports:
    - protocol: TCP
      port: 80
      targetPort: 8080
`

// TestServerSideApply runs the real kubectl's server-side apply: apply of the
// seed manifests (created, then re-applied without a new resourceVersion), a
// conflicting apply by another field manager (exit 1 with Kubernetes' conflict
// text), --force-conflicts, the managedFields entries every write leaves
// (shown only with --show-managed-fields), and client-go's typed Apply and
// ApplyStatus.
func TestServerSideApply(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kubectl(t)

	seeds := []struct{ file, object string }{
		{"testdata/seed002-my-service.yaml", "service/my-service"},
		{"testdata/seed002-my-nginx.yaml", "service/my-nginx"},
		{"testdata/seed003-test-app.yaml", "service/test-app"},
		{"testdata/seed001-node-port-service.yaml", "service/myapp"},
	}
	t.Run("apply", func(t *testing.T) {
		k := k.on(t)
		for _, sd := range seeds {
			k.expectOut(sd.object+" serverside-applied\n", "apply", "--server-side", "-f", sd.file)
		}
		rv := k.ok("get", "service", "my-service", "-o", "jsonpath={.metadata.resourceVersion}")
		k.expectOut("service/my-service serverside-applied\n", "apply", "--server-side", "-f", seeds[0].file)
		k.expectOut(rv, "get", "service", "my-service", "-o", "jsonpath={.metadata.resourceVersion}")
	})

	conflicting := filepath.Join(t.TempDir(), "conflicting.yaml")
	if err := os.WriteFile(conflicting, []byte(ssaConflictingService), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("conflict", func(t *testing.T) {
		r := k.on(t).run("apply", "--server-side", "--field-manager=other", "-f", conflicting)
		want := `error: Apply failed with 1 conflict: conflict with "kubectl": .spec.ports[port=80,protocol="TCP"].targetPort`
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "--force-conflicts") {
			t.Errorf("conflicting apply: want exit 1 and %q:\n%s", want, r)
		}
		k.on(t).expectOut("9376", "get", "service", "my-service", "-o", "jsonpath={.spec.ports[0].targetPort}")
	})

	t.Run("force-conflicts", func(t *testing.T) {
		k := k.on(t)
		k.expectOut("service/my-service serverside-applied\n", "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", conflicting)
		k.expectOut("8080", "get", "service", "my-service", "-o", "jsonpath={.spec.ports[0].targetPort}")
	})

	t.Run("managedFields", func(t *testing.T) {
		k := k.on(t)
		k.ok("label", "service", "my-service", "tier=web")
		if out := k.ok("get", "service", "my-service", "-o", "yaml"); strings.Contains(out, "managedFields") {
			t.Errorf("kubectl get -o yaml shows managedFields without --show-managed-fields:\n%s", out)
		}
		var svc corev1.Service
		if err := json.Unmarshal([]byte(k.ok("get", "service", "my-service", "-o", "json", "--show-managed-fields")), &svc); err != nil {
			t.Fatal(err)
		}
		want := map[string]struct {
			op     metav1.ManagedFieldsOperationType
			fields []string
			absent []string
		}{
			// kubectl's apply lost targetPort to "other" but keeps the rest.
			"kubectl": {metav1.ManagedFieldsOperationApply,
				[]string{`"f:selector":{}`, `"k:{\"port\":80,\"protocol\":\"TCP\"}":{`, `"f:protocol":{}`},
				[]string{`"f:targetPort"`}},
			"other":         {metav1.ManagedFieldsOperationApply, []string{`"f:targetPort":{}`}, []string{`"f:selector"`}},
			"kubectl-label": {metav1.ManagedFieldsOperationUpdate, []string{`"f:labels":{".":{},"f:tier":{}}`}, nil},
		}
		if len(svc.ManagedFields) != len(want) {
			t.Errorf("managedFields has %d entries, want %d: %+v", len(svc.ManagedFields), len(want), svc.ManagedFields)
		}
		for _, e := range svc.ManagedFields {
			w, ok := want[e.Manager]
			if !ok {
				t.Errorf("unexpected manager %q", e.Manager)
				continue
			}
			// kubectl prints fieldsV1 indented.
			var buf bytes.Buffer
			if e.FieldsV1 != nil {
				if err := json.Compact(&buf, e.FieldsV1.Raw); err != nil {
					t.Errorf("fieldsV1 of %s: %v", e.Manager, err)
				}
			}
			fields := buf.String()
			if e.Operation != w.op || e.APIVersion != "v1" || e.FieldsType != "FieldsV1" || e.Subresource != "" ||
				e.Time == nil || time.Since(e.Time.Time) > time.Hour {
				t.Errorf("entry of %s: %+v", e.Manager, e)
			}
			for _, f := range w.fields {
				if !strings.Contains(fields, f) {
					t.Errorf("fieldsV1 of %s has no %s: %s", e.Manager, f, fields)
				}
			}
			for _, f := range w.absent {
				if strings.Contains(fields, f) {
					t.Errorf("fieldsV1 of %s has %s: %s", e.Manager, f, fields)
				}
			}
		}
	})

	t.Run("create records kubectl-create", func(t *testing.T) {
		k := k.on(t)
		k.ok("create", "configmap", "ssa-created", "--from-literal=a=b")
		k.expectOut("kubectl-create Update v1", "get", "configmap", "ssa-created", "--show-managed-fields", "-o",
			"jsonpath={.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation} {.metadata.managedFields[0].apiVersion}")
	})

	t.Run("client-go Apply", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		c := kubernetes.NewForConfigOrDie(cfg).CoreV1().Services("default")
		ctx := context.Background()
		ac := corev1ac.Service("lb", "default").WithSpec(corev1ac.ServiceSpec().
			// Of a class that kubesvc's load balancer controller leaves alone,
			// so that the status is the test's.
			WithType(corev1.ServiceTypeLoadBalancer).WithLoadBalancerClass("example.com/other").
			WithSelector(map[string]string{"app": "lb"}).
			WithPorts(corev1ac.ServicePort().WithPort(443)))
		created, err := c.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "go-client"})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if created.Spec.ClusterIP == "" || created.Spec.Ports[0].Protocol != corev1.ProtocolTCP || len(created.ManagedFields) != 1 {
			t.Errorf("applied Service: %+v", created)
		}
		status := corev1ac.Service("lb", "default").WithStatus(corev1ac.ServiceStatus().
			WithLoadBalancer(corev1ac.LoadBalancerStatus().WithIngress(corev1ac.LoadBalancerIngress().WithIP("192.0.2.10"))))
		got, err := c.ApplyStatus(ctx, status, metav1.ApplyOptions{FieldManager: "lb-controller"})
		if err != nil {
			t.Fatalf("ApplyStatus: %v", err)
		}
		if len(got.Status.LoadBalancer.Ingress) != 1 || got.Status.LoadBalancer.Ingress[0].IP != "192.0.2.10" {
			t.Errorf("status after ApplyStatus: %+v", got.Status)
		}
		var statusEntry *metav1.ManagedFieldsEntry
		for i, e := range got.ManagedFields {
			if e.Manager == "lb-controller" {
				statusEntry = &got.ManagedFields[i]
			}
		}
		if statusEntry == nil || statusEntry.Subresource != "status" || statusEntry.Operation != metav1.ManagedFieldsOperationApply ||
			!strings.Contains(string(statusEntry.FieldsV1.Raw), `"f:status":{"f:loadBalancer":{"f:ingress":{}}}`) {
			t.Errorf("status manager entry: %+v", got.ManagedFields)
		}
		// The main resource's apply does not take the status over (reset fields):
		// the go-client's apply again leaves the ingress alone.
		again, err := c.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "go-client"})
		if err != nil || len(again.Status.LoadBalancer.Ingress) != 1 || again.ResourceVersion != got.ResourceVersion {
			t.Errorf("re-apply: %v %+v (resourceVersion %s, was %s)", err, again.Status, again.ResourceVersion, got.ResourceVersion)
		}
	})
}
