package namespace_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/garbagecollector"
	"github.com/kubesvc/kubesvc/internal/controller/namespace"
	"github.com/kubesvc/kubesvc/internal/controller/rootcacert"
	"github.com/kubesvc/kubesvc/internal/controller/serviceaccount"
	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestNamespaceLifecycle runs the four namespace-related controllers together: a new
// namespace gets its default ServiceAccount and CA ConfigMap, owned objects are
// collected, and deleting the namespace removes everything (the controllers that
// populate namespaces must not fight the deletion).
func TestNamespaceLifecycle(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	cc := controllertest.NewContext(t, s)
	var runners []controllertest.Runner
	for _, build := range []func() (controllertest.Runner, error){
		func() (controllertest.Runner, error) { return namespace.New(cc) },
		func() (controllertest.Runner, error) { return garbagecollector.New(cc) },
		func() (controllertest.Runner, error) { return serviceaccount.New(cc) },
		func() (controllertest.Runner, error) { return rootcacert.New(cc) },
	} {
		r, err := build()
		if err != nil {
			t.Fatal(err)
		}
		runners = append(runners, r)
	}
	controllertest.Start(t, cc, runners...)
	c := s.Client
	mc, err := metadata.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "app"
	createNamespace(t, c, ns)
	eventually(t, "the default service account and the CA configmap", func() (bool, error) {
		if _, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, serviceaccount.DefaultName, metav1.GetOptions{}); err != nil {
			return false, err
		}
		_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, rootcacert.ConfigMapName, metav1.GetOptions{})
		return err == nil, err
	})
	populate(t, c, ns)
	owner, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "owned",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, BlockOwnerDeletion: ptr.To(true)}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the owned secret and then its owner to be collected", func() (bool, error) {
		_, err1 := c.CoreV1().Secrets(ns).Get(ctx, "owned", metav1.GetOptions{})
		_, err2 := c.CoreV1().ConfigMaps(ns).Get(ctx, owner.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), nil
	})

	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace to be removed", namespaceGone(c, ns))
	left, err := contentLeft(ctx, mc, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("content left in the deleted namespace: %v", left)
	}
}
