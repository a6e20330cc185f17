package namespace

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeletableResources(t *testing.T) {
	std := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	tests := []struct {
		name  string
		lists []*metav1.APIResourceList
		want  string
	}{
		{
			name: "pods first, subresources and undeletable resources skipped",
			lists: []*metav1.APIResourceList{
				{GroupVersion: "v1", APIResources: []metav1.APIResource{
					{Name: "services", Namespaced: true, Verbs: metav1.Verbs{"create", "delete", "get", "list"}},
					{Name: "bindings", Namespaced: true, Verbs: metav1.Verbs{"create"}},
					{Name: "pods", Namespaced: true, Verbs: std},
					{Name: "pods/status", Namespaced: true, Verbs: metav1.Verbs{"get", "update"}},
					{Name: "nodes", Namespaced: false, Verbs: std},
				}},
				{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
					{Name: "replicasets", Namespaced: true, Verbs: std},
				}},
			},
			want: "[{/v1, Resource=pods true} {/v1, Resource=services false} {apps/v1, Resource=replicasets true}]",
		},
		{
			name:  "nothing",
			lists: nil,
			want:  "[]",
		},
		{
			name:  "bad group version",
			lists: []*metav1.APIResourceList{{GroupVersion: "a/b/c", APIResources: []metav1.APIResource{{Name: "x", Namespaced: true, Verbs: std}}}},
			want:  "[]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(deletableResources(tc.lists)); got != tc.want {
				t.Errorf("deletableResources = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestContentRemaining(t *testing.T) {
	now := time.Now()
	in := func(d time.Duration) *metav1.Time { tm := metav1.NewTime(now.Add(d)); return &tm }
	tests := []struct {
		name     string
		objects  []metav1.ObjectMeta
		estimate time.Duration
		wait     time.Duration
	}{
		{name: "deleted, not yet gone", objects: []metav1.ObjectMeta{{}}, estimate: 0, wait: time.Second},
		{name: "held by a finalizer", objects: []metav1.ObjectMeta{{Finalizers: []string{"x"}, DeletionTimestamp: in(0)}}, estimate: 15 * time.Second, wait: 8500 * time.Millisecond},
		{name: "graceful pod", objects: []metav1.ObjectMeta{{DeletionTimestamp: in(30 * time.Second)}, {DeletionTimestamp: in(4 * time.Second)}}, estimate: 30 * time.Second, wait: 16 * time.Second},
		{name: "grace already over", objects: []metav1.ObjectMeta{{DeletionTimestamp: in(-time.Minute)}}, estimate: 0, wait: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &contentRemainingError{}
			for i := range tc.objects {
				e.add(&tc.objects[i], now)
			}
			if e.Remaining != len(tc.objects) || e.Estimate != tc.estimate || e.Wait() != tc.wait {
				t.Errorf("remaining %d estimate %v wait %v, want %d %v %v", e.Remaining, e.Estimate, e.Wait(), len(tc.objects), tc.estimate, tc.wait)
			}
		})
	}
}
