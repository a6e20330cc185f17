package namespace_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/namespace"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

const (
	deadline = 60 * time.Second
	holdFin  = "example.com/hold"
)

func start(t *testing.T) (kubernetes.Interface, metadata.Interface) {
	t.Helper()
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	c, err := namespace.New(cc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	controllertest.Start(t, cc, c)
	mc, err := metadata.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	return s.Client, mc
}

// eventually waits for cond: testutil.Eventually with this package's timeout.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	testutil.Eventually(t, what, deadline, func(context.Context) (bool, error) { return cond() })
}

// createNamespace creates a namespace carrying the "kubernetes" finalizer. It is set
// explicitly because the kubesvc API server does not default it yet (create sets
// creationTimestamp before defaulting, which then takes the namespace for an old one).
func createNamespace(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
}

func namespaceGone(c kubernetes.Interface, name string) func() (bool, error) {
	return func() (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.25"}}}
}

// populate creates one object of every kind kubesvc serves in ns.
func populate(t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
	creates := []struct {
		kind   string
		create func() error
	}{
		{"configmap", func() error {
			_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{})
			return err
		}},
		{"secret", func() error {
			_, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
			return err
		}},
		{"serviceaccount", func() error {
			_, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "sa"}}, metav1.CreateOptions{})
			return err
		}},
		{"service", func() error {
			_, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{})
			return err
		}},
		{"endpoints", func() error {
			_, err := c.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{})
			return err
		}},
		{"endpointslice", func() error {
			_, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1"},
				AddressType: discoveryv1.AddressTypeIPv4}, metav1.CreateOptions{})
			return err
		}},
		{"pod", func() error {
			_, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: labels}, Spec: podSpec()}, metav1.CreateOptions{})
			return err
		}},
		{"deployment", func() error {
			_, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"replicaset", func() error {
			_, err := c.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1"},
				Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
			return err
		}},
		{"lease", func() error {
			_, err := c.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l"}}, metav1.CreateOptions{})
			return err
		}},
		{"event", func() error {
			_, err := c.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p"}, Reason: "Test", Type: corev1.EventTypeNormal}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, cr := range creates {
		if err := cr.create(); err != nil {
			t.Fatalf("create %s: %v", cr.kind, err)
		}
	}
}

// contentLeft counts the objects of every served namespaced kind left in ns.
func contentLeft(ctx context.Context, mc metadata.Interface, ns string) (map[string]int, error) {
	resources := []schema.GroupVersionResource{
		{Version: "v1", Resource: "configmaps"},
		{Version: "v1", Resource: "secrets"},
		{Version: "v1", Resource: "serviceaccounts"},
		{Version: "v1", Resource: "services"},
		{Version: "v1", Resource: "endpoints"},
		{Version: "v1", Resource: "pods"},
		{Version: "v1", Resource: "events"},
		{Group: "apps", Version: "v1", Resource: "deployments"},
		{Group: "apps", Version: "v1", Resource: "replicasets"},
		{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
		{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
	}
	left := map[string]int{}
	for _, gvr := range resources {
		l, err := mc.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		if len(l.Items) > 0 {
			left[gvr.Resource] = len(l.Items)
		}
	}
	return left, nil
}

func TestNamespaceDeletionRemovesContent(t *testing.T) {
	c, mc := start(t)
	ctx := context.Background()
	createNamespace(t, c, "doomed")
	populate(t, c, "doomed")
	// A namespace nobody deletes keeps its content.
	createNamespace(t, c, "kept")
	populate(t, c, "kept")

	// kubectl delete namespace doomed
	if err := c.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace to be removed", namespaceGone(c, "doomed"))
	left, err := contentLeft(ctx, mc, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("content left in the deleted namespace: %v", left)
	}
	left, err = contentLeft(ctx, mc, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 11 {
		t.Errorf("the namespace nobody deleted lost content: %v", left)
	}
}

func TestNamespaceDeletionWaitsForPodsThenContent(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	const ns = "ordered"
	createNamespace(t, c, ns)
	if _, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{holdFin}},
		Spec: podSpec()}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{holdFin}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	eventually(t, "the pod to be deleted", func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, "held", metav1.GetOptions{})
		return err == nil && p.DeletionTimestamp != nil, err
	})
	// Pods go first: nothing else is touched while one remains.
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "held", metav1.GetOptions{})
	if err != nil || cm.DeletionTimestamp != nil {
		t.Fatalf("configmap deleted before the pods were gone: %v %v", cm.DeletionTimestamp, err)
	}
	release(t, c, ns, "pods")

	eventually(t, "the configmap to be deleted", func() (bool, error) {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "held", metav1.GetOptions{})
		return err == nil && cm.DeletionTimestamp != nil, err
	})
	got, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the namespace must wait for its content: %v", err)
	}
	if got.Status.Phase != corev1.NamespaceTerminating || len(got.Spec.Finalizers) != 1 {
		t.Errorf("namespace phase %q spec.finalizers %v, want Terminating [kubernetes]", got.Status.Phase, got.Spec.Finalizers)
	}
	release(t, c, ns, "configmaps")
	eventually(t, "the namespace to be removed", namespaceGone(c, ns))
}

// release removes the hold finalizer from the object named "held".
func release(t *testing.T, c kubernetes.Interface, ns, resource string) {
	t.Helper()
	ctx := context.Background()
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	var err error
	switch resource {
	case "pods":
		_, err = c.CoreV1().Pods(ns).Patch(ctx, "held", "application/merge-patch+json", patch, metav1.PatchOptions{})
	case "configmaps":
		_, err = c.CoreV1().ConfigMaps(ns).Patch(ctx, "held", "application/merge-patch+json", patch, metav1.PatchOptions{})
	}
	if err != nil {
		t.Fatalf("release %s: %v", resource, err)
	}
}
