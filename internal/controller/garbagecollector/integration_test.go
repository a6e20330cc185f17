package garbagecollector_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/garbagecollector"
	"github.com/kubesvc/kubesvc/internal/testserver"
	"github.com/kubesvc/kubesvc/internal/testutil"
)

const (
	ns       = "default"
	deadline = 60 * time.Second
	holdFin  = "example.com/hold"
)

// startGC runs a server and the garbage collector on it.
func startGC(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	gc, err := garbagecollector.New(cc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	controllertest.Start(t, cc, gc)
	return s.Client
}

// eventually waits for cond: testutil.Eventually with this package's timeout.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	testutil.Eventually(t, what, deadline, func(context.Context) (bool, error) { return cond() })
}

func ownerRef(apiVersion, kind, name string, uid types.UID, block bool) metav1.OwnerReference {
	ref := metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid}
	if block {
		ref.BlockOwnerDeletion = ptr.To(true)
	}
	return ref
}

func cmOwner(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return ownerRef("v1", "ConfigMap", cm.Name, cm.UID, block)
}

func createCM(t *testing.T, c kubernetes.Interface, name string, finalizers []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := c.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: name, Finalizers: finalizers, OwnerReferences: owners}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap %s: %v", name, err)
	}
	return cm
}

func createPod(t *testing.T, c kubernetes.Interface, name string, owners ...metav1.OwnerReference) *corev1.Pod {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}, OwnerReferences: owners},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.25"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.25"}}},
	}
}

func createRS(t *testing.T, c kubernetes.Interface, name string, owners ...metav1.OwnerReference) *appsv1.ReplicaSet {
	t.Helper()
	rs, err := c.AppsV1().ReplicaSets(ns).Create(context.Background(), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create replicaset %s: %v", name, err)
	}
	return rs
}

func podGone(c kubernetes.Interface, name string) func() (bool, error) {
	return func() (bool, error) {
		_, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}
}

func cmGone(c kubernetes.Interface, name string) func() (bool, error) {
	return func() (bool, error) {
		_, err := c.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}
}

func TestBackgroundDeletion(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()

	owner := createCM(t, c, "owner", nil)
	rs := createRS(t, c, "web")
	createPod(t, c, "cm-dep-1", cmOwner(owner, false))
	createPod(t, c, "cm-dep-2", cmOwner(owner, true))
	createPod(t, c, "rs-dep", ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID, true))
	createPod(t, c, "both", cmOwner(owner, false), ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID, false))
	if err := c.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "configmap dependents to be deleted", func() (bool, error) {
		a, _ := podGone(c, "cm-dep-1")()
		b, _ := podGone(c, "cm-dep-2")()
		return a && b, nil
	})
	// A dependent with a live owner left is kept, without the reference to the gone one.
	eventually(t, "the dangling reference to be removed", func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, "both", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return len(p.OwnerReferences) == 1 && p.OwnerReferences[0].UID == rs.UID, nil
	})

	if err := c.AppsV1().ReplicaSets(ns).Delete(ctx, rs.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replicaset dependents to be deleted", func() (bool, error) {
		a, _ := podGone(c, "rs-dep")()
		b, _ := podGone(c, "both")()
		return a && b, nil
	})
}

func TestDanglingOwnerAtCreation(t *testing.T) {
	c := startGC(t)
	tests := []struct {
		name  string
		owner metav1.OwnerReference
	}{
		{name: "no-such-object", owner: ownerRef("v1", "ConfigMap", "missing", "6b1e1b52-0000-4000-8000-000000000001", false)},
		{name: "uid-mismatch", owner: ownerRef("v1", "Namespace", "default", "6b1e1b52-0000-4000-8000-000000000002", false)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			createCM(t, c, tc.name, nil, tc.owner)
			eventually(t, "the orphan to be collected", cmGone(c, tc.name))
		})
	}
}

func TestForegroundDeletion(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()

	owner := createCM(t, c, "owner", nil)
	createPod(t, c, "blocking", cmOwner(owner, true))
	createPod(t, c, "non-blocking", cmOwner(owner, false))
	// A blocking dependent that cannot go until its own finalizer is removed.
	createCM(t, c, "held", []string{holdFin}, cmOwner(owner, true))

	if err := c.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, owner.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("a foreground delete must keep the owner until its dependents are gone: %v", err)
	}
	if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("owner = deletionTimestamp %v finalizers %v, want marked with foregroundDeletion", got.DeletionTimestamp, got.Finalizers)
	}
	eventually(t, "the dependents to be deleted", func() (bool, error) {
		a, _ := podGone(c, "blocking")()
		b, _ := podGone(c, "non-blocking")()
		held, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "held", metav1.GetOptions{})
		return a && b && err == nil && held.DeletionTimestamp != nil, err
	})
	if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, owner.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("owner must wait for its blocking dependent: %v", err)
	}

	held, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "held", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held.Finalizers = nil
	if _, err := c.CoreV1().ConfigMaps(ns).Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the owner to be deleted after its dependents", cmGone(c, owner.Name))
}

func TestForegroundChain(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()

	d, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template()},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := createRS(t, c, "web-1", ownerRef("apps/v1", "Deployment", d.Name, d.UID, true))
	for i := range 3 {
		createPod(t, c, fmt.Sprintf("web-1-%d", i), ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID, true))
	}
	if err := c.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deployment to be deleted", func() (bool, error) {
		_, err := c.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	// Foreground: by the time the deployment is gone, its whole subtree is.
	if _, err := c.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("replicaset outlived its foreground-deleted deployment: %v", err)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d pods outlived their foreground-deleted deployment", len(pods.Items))
	}
}

func TestOrphanDeletion(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()

	rs := createRS(t, c, "web")
	other := createCM(t, c, "other-owner", nil)
	rsRef := ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID, true)
	createPod(t, c, "only-rs", rsRef)
	createPod(t, c, "two-owners", rsRef, cmOwner(other, false))

	if err := c.AppsV1().ReplicaSets(ns).Delete(ctx, rs.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationOrphan)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the orphaned owner to be deleted", func() (bool, error) {
		_, err := c.AppsV1().ReplicaSets(ns).Get(ctx, rs.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	for name, want := range map[string][]types.UID{"only-rs": nil, "two-owners": {other.UID}} {
		p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("orphaned dependent %s: %v", name, err)
		}
		var got []types.UID
		for _, r := range p.OwnerReferences {
			got = append(got, r.UID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("pod %s owners = %v, want %v", name, got, want)
		}
	}
}

func TestClusterScopedDependentOfNamespacedKind(t *testing.T) {
	c := startGC(t)
	ctx := context.Background()
	owner := createCM(t, c, "owner", nil)
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "invalid-owner", OwnerReferences: []metav1.OwnerReference{cmOwner(owner, false)}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "an OwnerRefInvalidNamespace event", func() (bool, error) {
		evs, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=OwnerRefInvalidNamespace"})
		return err == nil && len(evs.Items) > 0, err
	})
	if _, err := c.CoreV1().Namespaces().Get(ctx, "invalid-owner", metav1.GetOptions{}); err != nil {
		t.Fatalf("the unresolvable dependent must be kept: %v", err)
	}
}
