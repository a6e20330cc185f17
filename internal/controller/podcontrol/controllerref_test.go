package podcontrol

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestResolveControllerRef(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", UID: "uid-1"}}
	get := func(name string) (*appsv1.ReplicaSet, error) {
		if name == rs.Name {
			return rs, nil
		}
		return nil, errors.New("not found")
	}
	for _, tc := range []struct {
		name string
		ref  metav1.OwnerReference
		want *appsv1.ReplicaSet
	}{
		{"match", metav1.OwnerReference{Kind: "ReplicaSet", Name: "rs", UID: "uid-1"}, rs},
		{"other kind", metav1.OwnerReference{Kind: "Deployment", Name: "rs", UID: "uid-1"}, nil},
		{"other uid", metav1.OwnerReference{Kind: "ReplicaSet", Name: "rs", UID: "uid-2"}, nil},
		{"missing", metav1.OwnerReference{Kind: "ReplicaSet", Name: "gone", UID: "uid-1"}, nil},
	} {
		if got := ResolveControllerRef(&tc.ref, "ReplicaSet", get); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestControllerRefs(t *testing.T) {
	yes := true
	owned := func(uid types.UID) *appsv1.ReplicaSet {
		rs := &appsv1.ReplicaSet{}
		if uid != "" {
			rs.OwnerReferences = []metav1.OwnerReference{
				{Kind: "Other", Name: "x", UID: "not-controller"},
				{Kind: "Deployment", Name: "d", UID: uid, Controller: &yes},
			}
		}
		return rs
	}
	for _, tc := range []struct {
		name             string
		old, cur         types.UID
		wantOld, wantCur types.UID
		changed          bool
	}{
		{"same", "a", "a", "a", "a", false},
		{"orphaned", "a", "", "a", "", true},
		{"adopted", "", "b", "", "b", true},
		{"changed", "a", "b", "a", "b", true},
		{"orphan", "", "", "", "", false},
	} {
		oldRef, curRef, changed := ControllerRefs(owned(tc.old), owned(tc.cur))
		uid := func(r *metav1.OwnerReference) types.UID {
			if r == nil {
				return ""
			}
			return r.UID
		}
		if uid(oldRef) != tc.wantOld || uid(curRef) != tc.wantCur || changed != tc.changed {
			t.Errorf("%s: got %v, %v, %v; want %v, %v, %v", tc.name, uid(oldRef), uid(curRef), changed, tc.wantOld, tc.wantCur, tc.changed)
		}
	}
}
