package apiserver_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubesvc/kubesvc/internal/testserver"
)

// TestPodBinding: pods/binding sets spec.nodeName and the PodScheduled condition (a
// scheduler's write), once; a second binding is a Conflict.
func TestPodBinding(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	pods := s.Client.CoreV1().Pods("default")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(node string) error {
		return pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{})
	}
	if err := bind("node-1"); err != nil {
		t.Fatalf("bind: %v", err)
	}
	got, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "node-1" {
		t.Errorf("spec.nodeName %q, want node-1", got.Spec.NodeName)
	}
	scheduled := false
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			scheduled = true
		}
	}
	if !scheduled {
		t.Errorf("conditions %v: want PodScheduled=True", got.Status.Conditions)
	}
	if err := bind("node-2"); !apierrors.IsConflict(err) {
		t.Errorf("second binding: %v, want Conflict", err)
	}
}
