package garbagecollector

import (
	"errors"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

func TestResourceSet(t *testing.T) {
	std := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	rs := newResourceSet([]*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "namespaces", Kind: "Namespace", Verbs: metav1.Verbs{"create", "delete", "get", "list", "watch"}},
			{Name: "namespaces/finalize", Kind: "Namespace", Verbs: metav1.Verbs{"update"}},
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: std},
			{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "patch", "update"}},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
			{Name: "events", Kind: "Event", Namespaced: true, Verbs: std},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "replicasets", Kind: "ReplicaSet", Namespaced: true, Verbs: std},
		}},
		{GroupVersion: "events.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "events", Kind: "Event", Namespaced: true, Verbs: std},
		}},
		{GroupVersion: "not/a/group/version", APIResources: []metav1.APIResource{{Name: "x", Kind: "X", Verbs: std}}},
	})
	var watched []string
	for _, r := range rs.Watched {
		watched = append(watched, r.GVR.String())
	}
	want := []string{"/v1, Resource=namespaces", "/v1, Resource=pods", "/v1, Resource=events", "apps/v1, Resource=replicasets"}
	if fmt.Sprint(watched) != fmt.Sprint(want) {
		t.Errorf("watched = %v, want %v", watched, want)
	}

	tests := []struct {
		name       string
		ref        metav1.OwnerReference
		want       schema.GroupVersionResource
		namespaced bool
		err        error
	}{
		{name: "core kind", ref: metav1.OwnerReference{APIVersion: "v1", Kind: "Pod"}, want: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, namespaced: true},
		{name: "other version of the group", ref: metav1.OwnerReference{APIVersion: "apps/v1beta2", Kind: "ReplicaSet"}, want: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, namespaced: true},
		{name: "cluster-scoped", ref: metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace"}, want: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}},
		{name: "served but not watched", ref: metav1.OwnerReference{APIVersion: "v1", Kind: "Binding"}, want: schema.GroupVersionResource{Version: "v1", Resource: "bindings"}, namespaced: true},
		{name: "unknown kind", ref: metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job"}, err: errUnknownKind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := rs.forOwner(tc.ref)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && (r.GVR != tc.want || r.Namespaced != tc.namespaced) {
				t.Errorf("forOwner = %v namespaced=%v, want %v namespaced=%v", r.GVR, r.Namespaced, tc.want, tc.namespaced)
			}
		})
	}
}

func TestAbsentCache(t *testing.T) {
	c := newAbsentCache(2)
	a, b, d := ownerKey{UID: "a"}, ownerKey{Namespace: "ns", UID: "b"}, ownerKey{UID: "d"}
	c.Add(a)
	c.Add(a) // no second slot
	c.Add(b)
	if !c.Has(a) || !c.Has(b) || c.Has(ownerKey{UID: "b"}) {
		t.Fatalf("cache lost an entry or ignored the namespace")
	}
	c.Add(d)
	if c.Has(a) || !c.Has(b) || !c.Has(d) {
		t.Errorf("the oldest entry should be evicted first")
	}
}

func TestIndexAndSlim(t *testing.T) {
	now := metav1.Now()
	full := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "x"},
		Finalizers:      []string{"f"},
		OwnerReferences: refs("o1", "o2"),
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "m"}},
	}}
	got, err := slim(full)
	if err != nil {
		t.Fatal(err)
	}
	m := got.(*metav1.PartialObjectMetadata)
	if m.Labels != nil || m.Annotations != nil || m.ManagedFields != nil {
		t.Errorf("slim kept labels, annotations or managed fields: %+v", m.ObjectMeta)
	}
	if m.UID != "u" || m.ResourceVersion != "7" || m.DeletionTimestamp == nil || len(m.Finalizers) != 1 || len(m.OwnerReferences) != 2 {
		t.Errorf("slim dropped what the collector reads: %+v", m.ObjectMeta)
	}
	for _, obj := range []any{full, cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: full}} {
		keys, err := indexByOwnerUID(obj)
		if err != nil || fmt.Sprint(keys) != "[o1 o2]" {
			t.Errorf("indexByOwnerUID(%T) = %v, %v", obj, keys, err)
		}
	}
	if keys, _ := indexByOwnerUID("not an object"); len(keys) != 0 {
		t.Errorf("indexByOwnerUID of a foreign object = %v", keys)
	}
}
