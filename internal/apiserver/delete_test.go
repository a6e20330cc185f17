package apiserver_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestNamespaceDeletionLifecycle: deleting a namespace marks it Terminating;
// it goes when namespaces/finalize empties spec.finalizers (what the namespace
// controller does once the namespace is empty).
func TestNamespaceDeletionLifecycle(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	nsc := s.Client.CoreV1().Namespaces()
	if _, err := nsc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nsc.Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := nsc.Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace gone before it was finalized: %v", err)
	}
	if ns.DeletionTimestamp == nil || ns.Status.Phase != corev1.NamespaceTerminating ||
		len(ns.Spec.Finalizers) != 1 || ns.Spec.Finalizers[0] != corev1.FinalizerKubernetes {
		t.Fatalf("deleted namespace: deletionTimestamp %v, phase %q, spec.finalizers %v; want marked, Terminating, [kubernetes]",
			ns.DeletionTimestamp, ns.Status.Phase, ns.Spec.Finalizers)
	}
	ns.Spec.Finalizers = nil
	if _, err := nsc.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if _, err := nsc.Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace after finalize: %v, want NotFound", err)
	}
}

// TestPodGracefulDeletion: a pod on a node is marked with its grace period and
// left for the node agent; a pod on no node, or a deletion with grace 0, goes
// at once.
func TestPodGracefulDeletion(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	pod := func(name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: ptr.To[int64](12),
				Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
	}
	for _, p := range []*corev1.Pod{pod("running", "node-1"), pod("pending", "")} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pods.Get(ctx, "pending", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unscheduled pod after delete: %v, want NotFound", err)
	}
	got, err := pods.Get(ctx, "running", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pod on a node gone at once: %v", err)
	}
	if got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 12 {
		t.Errorf("pod on a node: deletionTimestamp %v, grace %v; want marked with 12 s", got.DeletionTimestamp, got.DeletionGracePeriodSeconds)
	}
	if err := pods.Delete(ctx, "running", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "running", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after delete with grace 0: %v, want NotFound", err)
	}
}
