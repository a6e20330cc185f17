package endpointslice

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubesvc/kubesvc/internal/controller/controllertest"
	"github.com/kubesvc/kubesvc/internal/controller/endpointslicemirroring"
)

// lookupSlice is a slice of Service svc in ns managed by managedBy, owned by the
// Service when owned.
func lookupSlice(ns, name, svc, managedBy string, owned bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: managedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	if owned {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc, UID: "svc-uid"}}
	}
	return s
}

// lookupFixture: slices that the lookups of a/web must tell apart.
func lookupFixture() []runtime.Object {
	deleting := lookupSlice("a", "web-deleting", "web", ControllerName, true)
	deleting.DeletionTimestamp = &metav1.Time{}
	deleting.Finalizers = []string{"test"}
	return []runtime.Object{
		lookupSlice("a", "web-1", "web", ControllerName, true),
		lookupSlice("a", "web-2", "web", ControllerName, true),
		lookupSlice("a", "web-orphan", "web", ControllerName, false), // orphaned on purpose
		deleting,
		lookupSlice("a", "web-mirror", "web", endpointslicemirroring.ControllerName, false),
		lookupSlice("a", "web-custom", "web", "someone-else", true),
		lookupSlice("a", "web2-1", "web2", ControllerName, true),
		lookupSlice("b", "web-1", "web", ControllerName, true),
	}
}

// TestSliceLookupByService: with the mirroring controller built on the same
// informer factory (both add the slice index), a Service's sync finds exactly its
// own slices — not other Services', other namespaces' or other managers' — and a
// deleted Service's sync deletes exactly its own owned slices.
func TestSliceLookupByService(t *testing.T) {
	tests := []struct {
		name        string
		ns, svc     string
		wantManaged []string // managedSlices of the existing Service
		wantDeleted []string // deleteOrphanedSlices once it is gone
	}{
		{name: "own slices", ns: "a", svc: "web",
			wantManaged: []string{"a/web-1", "a/web-2", "a/web-orphan"},
			wantDeleted: []string{"a/web-1", "a/web-2"}},
		{name: "other namespace", ns: "b", svc: "web",
			wantManaged: []string{"b/web-1"}, wantDeleted: []string{"b/web-1"}},
		{name: "longer name", ns: "a", svc: "web2",
			wantManaged: []string{"a/web2-1"}, wantDeleted: []string{"a/web2-1"}},
		{name: "no slices", ns: "a", svc: "db", wantManaged: []string{}, wantDeleted: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := lookupFixture()
			f := controllertest.NewFake(objs...)
			c, err := New(f.Context)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.queue.ShutDown)
			if _, err := endpointslicemirroring.New(f.Context); err != nil {
				t.Fatalf("second controller on the shared slice informer: %v", err)
			}
			f.Cache(t, objs...)
			ctx := context.Background()

			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: tc.svc, UID: "svc-uid"}}
			got, err := c.managedSlices(ctx, svc)
			if err != nil {
				t.Fatal(err)
			}
			if g := controllertest.ObjectNames(got); !slices.Equal(g, tc.wantManaged) {
				t.Errorf("managedSlices = %q, want %q", g, tc.wantManaged)
			}
			if n := len(f.Client.Actions()); n != 0 {
				t.Errorf("managedSlices made %d API calls, want the cache only", n)
			}

			// The Service is not in the cache: its sync deletes its slices.
			if err := c.sync(ctx, tc.ns+"/"+tc.svc); err != nil {
				t.Fatal(err)
			}
			if g := controllertest.DeletedNames(f.Client.Actions(), "endpointslices"); !slices.Equal(g, tc.wantDeleted) {
				t.Errorf("deleted %q, want %q", g, tc.wantDeleted)
			}
		})
	}
}
