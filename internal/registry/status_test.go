package registry

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestPrepareForStatusUpdate(t *testing.T) {
	meta := func(label string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "x", Labels: map[string]string{"l": label}, Annotations: map[string]string{"a": label},
			Finalizers: []string{"example.com/" + label}}
	}
	tests := []struct {
		name     string
		obj, old runtime.Object
		want     runtime.Object
	}{
		{name: "pod: conditions without observedGeneration keep the old ones, by type and order",
			old: &corev1.Pod{ObjectMeta: meta("old"), Status: corev1.PodStatus{ObservedGeneration: 3, QOSClass: corev1.PodQOSBurstable,
				Conditions:            []corev1.PodCondition{{Type: corev1.PodReady, ObservedGeneration: 2}, {Type: corev1.PodReady, ObservedGeneration: 3}},
				ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "claim"}}}},
			obj: &corev1.Pod{ObjectMeta: meta("new"), Spec: corev1.PodSpec{NodeName: "n"}, Status: corev1.PodStatus{
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady}, {Type: corev1.PodReady}, {Type: corev1.PodScheduled, ObservedGeneration: 5}}}},
			want: &corev1.Pod{ObjectMeta: meta("new"), Status: corev1.PodStatus{ObservedGeneration: 3, QOSClass: corev1.PodQOSBurstable,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, ObservedGeneration: 2}, {Type: corev1.PodReady, ObservedGeneration: 3},
					{Type: corev1.PodScheduled, ObservedGeneration: 5}},
				ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "claim"}}}}},
		{name: "pod: an empty resource claim list clears them",
			old:  &corev1.Pod{Status: corev1.PodStatus{ResourceClaimStatuses: []corev1.PodResourceClaimStatus{{Name: "claim"}}}},
			obj:  &corev1.Pod{Status: corev1.PodStatus{ResourceClaimStatuses: []corev1.PodResourceClaimStatus{}}},
			want: &corev1.Pod{Status: corev1.PodStatus{ResourceClaimStatuses: []corev1.PodResourceClaimStatus{}}}},
		{name: "node: status.config only when the node already reports one",
			old:  &corev1.Node{ObjectMeta: meta("old"), Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"}},
			obj:  &corev1.Node{ObjectMeta: meta("new"), Status: corev1.NodeStatus{Config: &corev1.NodeConfigStatus{Error: "x"}, Phase: corev1.NodeRunning}},
			want: &corev1.Node{ObjectMeta: meta("new"), Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"}, Status: corev1.NodeStatus{Phase: corev1.NodeRunning}}},
		{name: "deployment: labels reset, annotations and finalizers kept",
			old: &appsv1.Deployment{ObjectMeta: meta("old"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)}},
			obj: &appsv1.Deployment{ObjectMeta: meta("new"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](5)},
				Status: appsv1.DeploymentStatus{Replicas: 1}},
			want: &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"l": "old"},
				Annotations: map[string]string{"a": "new"}, Finalizers: []string{"example.com/new"}},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)}, Status: appsv1.DeploymentStatus{Replicas: 1}}},
		{name: "kind without a strategy of its own (DefaultStrategy): spec and metadata reset",
			old: &appsv1.StatefulSet{ObjectMeta: meta("old"), Spec: appsv1.StatefulSetSpec{ServiceName: "old"}},
			obj: &appsv1.StatefulSet{ObjectMeta: meta("new"), Spec: appsv1.StatefulSetSpec{ServiceName: "new"},
				Status: appsv1.StatefulSetStatus{Replicas: 2}},
			want: &appsv1.StatefulSet{ObjectMeta: meta("old"), Spec: appsv1.StatefulSetSpec{ServiceName: "old"},
				Status: appsv1.StatefulSetStatus{Replicas: 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.old.DeepCopyObject()
			strategyFor(tc.obj).PrepareForStatusUpdate(tc.obj, tc.old)
			if !equality.Semantic.DeepEqual(tc.obj, tc.want) {
				t.Errorf("got  %+v\nwant %+v", tc.obj, tc.want)
			}
			if !equality.Semantic.DeepEqual(tc.old, old) {
				t.Errorf("old was modified: %+v", tc.old)
			}
		})
	}
}

func TestPrepareForFinalize(t *testing.T) {
	old := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{"l": "x"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	PrepareForFinalize(obj, old)
	want := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{"l": "x"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	if !equality.Semantic.DeepEqual(obj, want) {
		t.Errorf("got %+v, want %+v", obj, want)
	}
}
